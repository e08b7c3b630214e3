/* The C API on a real test sysroot, the way an update daemon uses it: the
 * program loads and locks the sysroot itself, stages, unstages, locks
 * finalization, reads the status, and gets typed errors. The real ostree CLI
 * is the peer that must agree with what stagehand reports.
 *
 * Run by `stagehand-testbed run` (see rust/testbed), which builds the
 * sysroot and passes:
 *   STAGEHAND_TEST_BOOTED        1 inside a booted machine, 0 on the host
 *   STAGEHAND_TEST_SYSROOT       the sysroot path
 *   STAGEHAND_TEST_COMMIT_1_0    the deployed (and booted) commit
 *   STAGEHAND_TEST_COMMIT_2_0    a commit to stage, on STAGEHAND_TEST_BRANCH
 *   STAGEHAND_TEST_COMMIT_3_0    a commit without a kernel
 *   STAGEHAND_TEST_BRANCH        the branch 2.0 is on
 *   STAGEHAND_TEST_BOOT, _BOOTS  which boot of how many (booted only)
 *
 * In a run of one boot (tests/c/meson.build: sysroot-booted), the staging,
 * finalization-lock and guard tests; not booted (sysroot-deploy), the full
 * deploy and what needs a booted system refusing; in a run of two boots
 * (cleanup-booted, with 0.9 deployed as the rollback of 1.0), the cleanup
 * stamp's whole cycle: the shutdown steps around the real `ostree admin
 * finalize-staged` in boot 1, the cleanup in boot 2.
 */
#include <stagehand.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#define FINALIZATION_LOCK_FILE "/run/ostree/staged-deployment-locked"

static const char *
env (const char *name)
{
  const char *v = g_getenv (name);
  if (v == NULL || *v == '\0')
    g_error ("%s is not set: run this test with stagehand-testbed run", name);
  return v;
}

static gboolean
booted (void)
{
  return g_str_equal (env ("STAGEHAND_TEST_BOOTED"), "1");
}

/* Load the sysroot as a daemon does. */
static OstreeSysroot *
load_sysroot (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) path = g_file_new_for_path (env ("STAGEHAND_TEST_SYSROOT"));
  OstreeSysroot *sysroot = ostree_sysroot_new (path);

  ostree_sysroot_load (sysroot, NULL, &error);
  g_assert_no_error (error);
  return sysroot;
}

/* Load and lock it with libostree's own lock, as eos-updater does. */
static OstreeSysroot *
load_and_lock (void)
{
  g_autoptr(GError) error = NULL;
  OstreeSysroot *sysroot = load_sysroot ();

  ostree_sysroot_lock (sysroot, &error);
  g_assert_no_error (error);
  return sysroot;
}

static void
unlock_and_free (OstreeSysroot *sysroot)
{
  ostree_sysroot_unlock (sysroot);
  g_object_unref (sysroot);
}

/* Run a command to completion; fail the test unless it exits with 0. */
static void
spawn_ok (const char *const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int wait_status = 0;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                &out, &err, &wait_status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (wait_status, &error))
    g_error ("%s failed: %s\n%s%s", argv[0], error->message, out, err);
}

static void
write_file (const char *path, const char *content)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, content, -1, &error);
  g_assert_no_error (error);
}

static char *
read_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  char *content = NULL;

  g_file_get_contents (path, &content, NULL, &error);
  g_assert_no_error (error);
  return content;
}

static guint
strv_len (const char *const *strv)
{
  g_assert_nonnull (strv);
  return g_strv_length ((char **) strv);
}

/* `ostree admin status`: the real CLI's view. */
static char *
ostree_admin_status (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int wait_status = 0;
  const char *argv[] = { "ostree", "admin", "status", NULL, NULL };
  g_autofree char *sysroot_arg = NULL;

  if (!booted ())
    argv[3] = sysroot_arg = g_strdup_printf ("--sysroot=%s", env ("STAGEHAND_TEST_SYSROOT"));
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                &out, &err, &wait_status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (wait_status, &error))
    g_error ("ostree admin status failed: %s\n%s", error->message, err);
  return g_steal_pointer (&out);
}

static char *
expected_id (const char *checksum, guint serial)
{
  return g_strdup_printf ("%s:%s.%u", env ("STAGEHAND_TEST_STATEROOT"), checksum, serial);
}

static guint
n_deployments (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StagehandStatus) status = stagehand_status (sysroot, NULL, &error);
  g_assert_no_error (error);
  return stagehand_status_get_n_deployments (status);
}

/* Every deployment object of the sysroot is referenced by its deployment
 * list, and the booted and staged ones by their field too: nothing else. */
static void
assert_sysroot_refs_only (OstreeSysroot *sysroot)
{
  g_autoptr(GPtrArray) deployments = ostree_sysroot_get_deployments (sysroot);

  for (guint i = 0; i < deployments->len; i++)
    {
      OstreeDeployment *d = deployments->pdata[i];
      guint expected = 1 /* the sysroot's list */ + 1 /* our array */;

      if (d == ostree_sysroot_get_booted_deployment (sysroot) ||
          d == ostree_sysroot_get_staged_deployment (sysroot))
        expected++;
      g_assert_cmpuint (G_OBJECT (d)->ref_count, ==, expected);
    }
}

/* Info messages in the "stagehand" domain, recorded while a call runs.
 * g_test_expect_message() requires the expected message to be the *next* one
 * of its level; a call logs several (staging also reports the health trial
 * and the deployments it keeps), so the tests record them all and assert
 * that the one they are about is among them, in the right domain and level. */
typedef struct
{
  GPtrArray *messages;
  guint handler;
} LogRecorder;

static void
record_message (const char *log_domain G_GNUC_UNUSED, GLogLevelFlags log_level G_GNUC_UNUSED,
                const char *message, gpointer user_data)
{
  LogRecorder *recorder = user_data;

  g_ptr_array_add (recorder->messages, g_strdup (message));
}

static void
log_recorder_start_levels (LogRecorder *recorder, GLogLevelFlags levels)
{
  recorder->messages = g_ptr_array_new_with_free_func (g_free);
  /* GLib looks for a handler whose mask covers the level *and* its flags;
   * under GTest warnings carry G_LOG_FLAG_FATAL. */
  recorder->handler = g_log_set_handler ("stagehand", levels | G_LOG_FLAG_FATAL, record_message, recorder);
}

static void
log_recorder_start (LogRecorder *recorder)
{
  log_recorder_start_levels (recorder, G_LOG_LEVEL_INFO);
}

/* Stop recording; fail unless an info message matched @pattern (a
 * g_pattern_match_simple() glob), listing what was logged. */
static void
log_recorder_finish (LogRecorder *recorder, const char *pattern)
{
  gboolean seen = FALSE;
  g_autoptr(GString) all = g_string_new (NULL);

  g_log_remove_handler ("stagehand", recorder->handler);
  for (guint i = 0; i < recorder->messages->len; i++)
    {
      const char *m = recorder->messages->pdata[i];
      seen = seen || g_pattern_match_simple (pattern, m);
      g_string_append_printf (all, "  %s\n", m);
    }
  g_clear_pointer (&recorder->messages, g_ptr_array_unref);
  if (!seen)
    g_error ("no message \"%s\" in the stagehand domain; logged:\n%s", pattern, all->str);
}

/* ------------------------------------------------------------ booted ---- */

static void
test_stage_status_unstage (void)
{
  g_autoptr(GError) error = NULL;
  OstreeSysroot *sysroot = load_and_lock ();
  const char *v1 = env ("STAGEHAND_TEST_COMMIT_1_0");
  const char *v2 = env ("STAGEHAND_TEST_COMMIT_2_0");
  g_autoptr(StagehandStageOptions) options = NULL;
  g_autoptr(StagehandStageResult) result = NULL;
  g_autoptr(StagehandStageResult) again = NULL;
  g_autoptr(StagehandStatus) status = NULL;
  g_autofree char *id = NULL;
  g_autofree char *unstaged = NULL;
  g_autofree char *cli = NULL;
  g_autofree char *staged_line = NULL;
  g_autofree char *want_id = NULL;
  OstreeDeployment *staged_obj = NULL;
  const StagehandDeploymentStatus *d;
  LogRecorder recorder;

  /* Before: one deployment, booted. */
  status = stagehand_status (sysroot, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stagehand_status_get_n_deployments (status), ==, 1);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_cmpstr (stagehand_deployment_status_get_checksum (d), ==, v1);
  g_assert_cmpstr (stagehand_deployment_status_get_stateroot (d), ==, env ("STAGEHAND_TEST_STATEROOT"));
  g_assert_cmpstr (stagehand_deployment_status_get_version (d), ==, "1.0");
  g_assert_true (stagehand_deployment_status_get_booted (d));
  g_assert_false (stagehand_deployment_status_get_staged (d));
  g_assert_false (stagehand_deployment_status_get_pinned (d));
  g_assert_false (stagehand_deployment_status_get_unvetted (d));
  id = stagehand_deployment_status_dup_id (d);
  want_id = expected_id (v1, stagehand_deployment_status_get_serial (d));
  g_assert_cmpstr (id, ==, want_id);
  g_clear_pointer (&id, g_free);
  g_clear_pointer (&want_id, g_free);
  g_clear_pointer (&status, stagehand_status_free);

  /* Stage the branch (2.0) by its ref. What stagehand logs arrives through
   * g_log() in the "stagehand" domain: first the known-good 1.0 is pinned
   * for the trial 2.0 starts (health's two known-good), then 2.0 is staged. */
  options = stagehand_stage_options_new (env ("STAGEHAND_TEST_BRANCH"));
  log_recorder_start (&recorder);
  result = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  log_recorder_finish (&recorder, "staged testos:*");
  g_assert_nonnull (result);
  g_assert_cmpint (stagehand_stage_result_get_method (result), ==, STAGEHAND_STAGE_METHOD_STAGED);
  g_assert_cmpstr (stagehand_stage_result_get_checksum (result), ==, v2);
  g_assert_cmpstr (stagehand_stage_result_get_stateroot (result), ==, env ("STAGEHAND_TEST_STATEROOT"));
  g_assert_false (stagehand_stage_result_get_unchanged (result));
  g_assert_false (stagehand_stage_result_get_finalization_locked (result));
  id = stagehand_stage_result_dup_id (result);
  want_id = expected_id (v2, stagehand_stage_result_get_serial (result));
  g_assert_cmpstr (id, ==, want_id);

  /* stagehand keeps no reference to libostree's deployment objects: each is
   * held by the sysroot's deployment list and its booted/staged field, no
   * more. (This is what tells a leak of stagehand's apart from libostree
   * 2022.7's own; see valgrind.supp.) */
  assert_sysroot_refs_only (sysroot);

  /* The real ostree CLI sees it staged. */
  cli = ostree_admin_status ();
  staged_line = g_strdup_printf ("%s %s.%u (staged)", env ("STAGEHAND_TEST_STATEROOT"), v2,
                                 stagehand_stage_result_get_serial (result));
  g_assert_nonnull (strstr (cli, staged_line));
  g_clear_pointer (&cli, g_free);

  /* stagehand's status agrees: staged first, then the booted one. */
  status = stagehand_status (sysroot, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stagehand_status_get_n_deployments (status), ==, 2);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_cmpstr (stagehand_deployment_status_get_checksum (d), ==, v2);
  g_assert_cmpstr (stagehand_deployment_status_get_version (d), ==, "2.0");
  g_assert_true (stagehand_deployment_status_get_staged (d));
  g_assert_false (stagehand_deployment_status_get_booted (d));
  g_assert_false (stagehand_deployment_status_get_finalization_locked (d));
  d = stagehand_status_get_deployment (status, 1);
  g_assert_cmpstr (stagehand_deployment_status_get_checksum (d), ==, v1);
  g_assert_true (stagehand_deployment_status_get_booted (d));
  g_test_expect_message ("stagehand", G_LOG_LEVEL_CRITICAL,
                         "stagehand_status_get_deployment: assertion 'index < stagehand_status_get_n_deployments (status)' failed");
  g_assert_null (stagehand_status_get_deployment (status, 2));
  g_test_assert_expected_messages ();
  g_clear_pointer (&status, stagehand_status_free);

  /* The same again writes nothing. */
  again = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_stage_result_get_unchanged (again));
  g_assert_cmpstr (stagehand_stage_result_get_checksum (again), ==, v2);
  g_assert_cmpuint (stagehand_stage_result_get_serial (again), ==, stagehand_stage_result_get_serial (result));

  assert_sysroot_refs_only (sysroot);

  /* Unstage: the id of what was removed, and the CLI sees nothing staged. */
  staged_obj = g_object_ref (ostree_sysroot_get_staged_deployment (sysroot));
  log_recorder_start (&recorder);
  g_assert_true (stagehand_unstage (sysroot, &unstaged, NULL, &error));
  g_assert_no_error (error);
  log_recorder_finish (&recorder, "unstaged testos:*");
  /* Ours, and the one libostree 2022.7 leaks when it unstages (its
   * write_deployments sets sysroot->staged_deployment to NULL without
   * unref'ing it); a third would be stagehand's. */
  g_assert_cmpuint (G_OBJECT (staged_obj)->ref_count, ==, 2);
  g_clear_object (&staged_obj);
  assert_sysroot_refs_only (sysroot);
  g_assert_cmpstr (unstaged, ==, id);
  g_clear_pointer (&unstaged, g_free);
  cli = ostree_admin_status ();
  g_assert_null (strstr (cli, "(staged)"));
  g_assert_null (strstr (cli, v2));
  g_assert_cmpuint (n_deployments (sysroot), ==, 1);

  /* Nothing staged: success, and NULL for the id. */
  unstaged = (char *) "not cleared"; /* not allocated: the call must overwrite it */
  g_assert_true (stagehand_unstage (sysroot, &unstaged, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (unstaged);
  /* The out parameter is optional. */
  g_assert_true (stagehand_unstage (sysroot, NULL, NULL, &error));
  g_assert_no_error (error);

  unlock_and_free (sysroot);
}

static void
test_finalization_lock (void)
{
  g_autoptr(GError) error = NULL;
  OstreeSysroot *sysroot = load_and_lock ();
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (env ("STAGEHAND_TEST_COMMIT_2_0"));
  g_autoptr(StagehandStageResult) result = NULL;
  g_autoptr(StagehandStatus) status = NULL;
  g_autofree char *cli = NULL;
  gboolean was_locked = FALSE;
  int finalize_status = -1;
  const char *finalize[] = { "ostree", "admin", "finalize-staged", NULL };

  g_assert_false (stagehand_is_finalization_locked (sysroot));
  g_assert_true (stagehand_lock_finalization (sysroot, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (stagehand_is_finalization_locked (sysroot));
  /* libostree's lock file is what finalize-staged reads. */
  g_assert_true (g_file_test (FINALIZATION_LOCK_FILE, G_FILE_TEST_EXISTS));
  g_assert_true (stagehand_unlock_finalization (sysroot, &was_locked, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (was_locked);
  g_assert_false (g_file_test (FINALIZATION_LOCK_FILE, G_FILE_TEST_EXISTS));
  g_assert_true (stagehand_unlock_finalization (sysroot, &was_locked, NULL, &error));
  g_assert_false (was_locked);
  g_assert_true (stagehand_unlock_finalization (sysroot, NULL, NULL, &error));
  g_assert_no_error (error);

  /* Stage held: it stays staged through a finalize (what the shutdown unit runs). */
  stagehand_stage_options_set_lock_finalization (options, TRUE);
  result = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_stage_result_get_finalization_locked (result));
  status = stagehand_status (sysroot, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_deployment_status_get_finalization_locked (stagehand_status_get_deployment (status, 0)));
  g_assert_false (stagehand_deployment_status_get_finalization_locked (stagehand_status_get_deployment (status, 1)));

  ostree_sysroot_unlock (sysroot);
  g_spawn_sync (NULL, (char **) finalize, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                NULL, NULL, NULL, NULL, &finalize_status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (finalize_status, NULL));
  ostree_sysroot_lock (sysroot, &error);
  g_assert_no_error (error);
  cli = ostree_admin_status ();
  g_assert_nonnull (strstr (cli, "(staged)"));

  /* Unstaging removes the lock with the deployment. */
  g_assert_true (stagehand_unstage (sysroot, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (stagehand_is_finalization_locked (sysroot));
  unlock_and_free (sysroot);
}

/* Nothing staged, and no deployment directory left behind on disk. */
static void
assert_nothing_staged (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *cli = ostree_admin_status ();
  g_autofree char *deploy_dir = g_build_filename (env ("STAGEHAND_TEST_SYSROOT"), "ostree/deploy",
                                                  env ("STAGEHAND_TEST_STATEROOT"), "deploy", NULL);
  g_autoptr(GDir) dir = g_dir_open (deploy_dir, 0, &error);
  const char *name;
  guint checkouts = 0;

  g_assert_null (strstr (cli, "(staged)"));
  g_assert_cmpuint (n_deployments (sysroot), ==, 1);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (!g_str_has_suffix (name, ".origin"))
      checkouts++;
  g_assert_cmpuint (checkouts, ==, 1);
}

static void
test_stage_errors (void)
{
  g_autoptr(GError) error = NULL;
  OstreeSysroot *sysroot = load_and_lock ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000";
  const char *v3 = env ("STAGEHAND_TEST_COMMIT_3_0");
  struct {
    const char *revision;
    const char *stateroot;
    StagehandError code;
    const char *in_message;
  } cases[] = {
    { zeros, NULL, STAGEHAND_ERROR_UNKNOWN_REVISION, zeros },
    { "no/such/ref", NULL, STAGEHAND_ERROR_UNKNOWN_REVISION, "\"no/such/ref\"" },
    { "", NULL, STAGEHAND_ERROR_INVALID_ARGUMENT, "empty revision" },
    { v3, NULL, STAGEHAND_ERROR_NOT_BOOTABLE, v3 },
    { env ("STAGEHAND_TEST_COMMIT_2_0"), "nosuchos", STAGEHAND_ERROR_UNKNOWN_STATEROOT, "\"nosuchos\"" },
    { env ("STAGEHAND_TEST_COMMIT_2_0"), "a/b", STAGEHAND_ERROR_INVALID_ARGUMENT, "\"a/b\"" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (cases[i].revision);
      g_autoptr(StagehandStageResult) result = NULL;

      stagehand_stage_options_set_stateroot (options, cases[i].stateroot);
      result = stagehand_stage (sysroot, options, NULL, &error);
      g_assert_null (result);
      g_assert_error (error, STAGEHAND_ERROR, (gint) cases[i].code);
      if (strstr (error->message, cases[i].in_message) == NULL)
        g_error ("case %" G_GSIZE_FORMAT ": message \"%s\" lacks \"%s\"", i, error->message, cases[i].in_message);
      g_clear_error (&error);
      /* error == NULL: the same failure, silently. */
      g_assert_null (stagehand_stage (sysroot, options, NULL, NULL));
      assert_nothing_staged (sysroot);
    }

  /* Cancelled before it starts: CANCELLED, and nothing left behind. */
  {
    g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (env ("STAGEHAND_TEST_COMMIT_2_0"));
    g_autoptr(StagehandStageResult) result = NULL;

    g_cancellable_cancel (cancellable);
    result = stagehand_stage (sysroot, options, cancellable, &error);
    g_assert_null (result);
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CANCELLED);
    g_clear_error (&error);
    assert_nothing_staged (sysroot);
    g_assert_false (stagehand_is_finalization_locked (sysroot));
  }
  unlock_and_free (sysroot);
}

/* A daemon that forgot ostree_sysroot_lock(): every function that needs the
 * caller's lock refuses with NOT_LOCKED, naming itself and
 * ostree_sysroot_lock(), before it reads or writes anything (not even the
 * lock file is created), and works once the sysroot is locked. */
static void
assert_not_locked (GError **error, const char *function)
{
  g_assert_error (*error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_LOCKED);
  if (strstr ((*error)->message, function) == NULL ||
      strstr ((*error)->message, "ostree_sysroot_lock()") == NULL ||
      strstr ((*error)->message, env ("STAGEHAND_TEST_SYSROOT")) == NULL)
    g_error ("%s: message \"%s\" lacks the function, the sysroot or ostree_sysroot_lock()",
             function, (*error)->message);
  g_clear_error (error);
}

static void
test_not_locked (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (env ("STAGEHAND_TEST_COMMIT_2_0"));
  g_autofree char *lock_file = g_build_filename (env ("STAGEHAND_TEST_SYSROOT"), "ostree/lock", NULL);
  g_autofree char *cli_before = ostree_admin_status ();
  g_autofree char *cli_after = NULL;
  g_autofree char *unstaged = NULL;
  gboolean lock_file_existed = g_file_test (lock_file, G_FILE_TEST_EXISTS);

  g_assert_null (stagehand_stage (sysroot, options, NULL, &error));
  assert_not_locked (&error, "stagehand_stage");
  g_assert_false (stagehand_unstage (sysroot, NULL, NULL, &error));
  assert_not_locked (&error, "stagehand_unstage");
  /* Forced: without the check this would prune at once. */
  g_assert_null (stagehand_run_cleanup (sysroot, TRUE, NULL, &error));
  assert_not_locked (&error, "stagehand_run_cleanup");
  g_assert_false (stagehand_health_reset (sysroot, NULL, NULL, &error));
  assert_not_locked (&error, "stagehand_health_reset");
  g_assert_false (stagehand_hooks_recover (sysroot, NULL, NULL, &error));
  assert_not_locked (&error, "stagehand_hooks_recover");
  if (booted ())
    {
      g_assert_null (stagehand_mark_good (sysroot, NULL, NULL, &error));
      assert_not_locked (&error, "stagehand_mark_good");
    }

  /* Nothing changed: the CLI's view, the checkouts, no lock file made. */
  cli_after = ostree_admin_status ();
  g_assert_cmpstr (cli_after, ==, cli_before);
  if (booted ())
    assert_nothing_staged (sysroot);
  g_assert_cmpint (g_file_test (lock_file, G_FILE_TEST_EXISTS), ==, lock_file_existed);

  /* Locked with libostree's own lock (in this very process): accepted. */
  ostree_sysroot_lock (sysroot, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_unstage (sysroot, &unstaged, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (unstaged);
  g_assert_true (stagehand_hooks_recover (sysroot, NULL, NULL, &error));
  g_assert_no_error (error);
  ostree_sysroot_unlock (sysroot);
}

static void
test_sysroot_lock (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) holder = load_sysroot ();
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gint64 start;

  /* Another writer (a second sysroot object has its own lock fd) holds it. */
  ostree_sysroot_lock (holder, &error);
  g_assert_no_error (error);
  start = g_get_monotonic_time ();
  g_assert_false (stagehand_sysroot_lock (sysroot, 300, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_LOCKED);
  g_assert_nonnull (strstr (error->message, "locked by another process"));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * 1000);
  g_clear_error (&error);

  g_cancellable_cancel (cancellable);
  g_assert_false (stagehand_sysroot_lock (sysroot, 60 * 1000, cancellable, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CANCELLED);
  g_clear_error (&error);

  /* Released: taken at once, and held until ostree_sysroot_unlock(). */
  ostree_sysroot_unlock (holder);
  g_assert_true (stagehand_sysroot_lock (sysroot, 1000, NULL, &error));
  g_assert_no_error (error);
  {
    gboolean acquired = TRUE;
    g_assert_true (ostree_sysroot_try_lock (holder, &acquired, &error));
    g_assert_no_error (error);
    g_assert_false (acquired);
  }
  ostree_sysroot_unlock (sysroot);
}


/* ------------------------------------------------------------- guard ---- */

#define GUARD_DIR "/run/stagehand-test-guard"

static void
make_guard_dir (void)
{
  g_assert_cmpint (g_mkdir_with_parents (GUARD_DIR, 0700), ==, 0);
}

/* A configuration file and its digest, computed by stagehand and, as a
 * check, by GLib. */
static char *
config_digest (const char *content)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = g_compute_checksum_for_string (G_CHECKSUM_SHA256, content, -1);
  char *digest;

  write_file (GUARD_DIR "/config.json", content);
  digest = stagehand_guard_file_digest (GUARD_DIR "/config.json", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (digest, ==, expected);
  return digest;
}

static void
assert_rfc3339 (const char *t)
{
  g_autoptr(GDateTime) parsed = NULL;

  g_assert_nonnull (t);
  g_assert_true (g_str_has_suffix (t, "Z"));
  parsed = g_date_time_new_from_iso8601 (t, NULL);
  g_assert_nonnull (parsed);
}

static void
assert_guard_error (GError **error, StagehandError code, const char *in_message)
{
  g_assert_error (*error, STAGEHAND_ERROR, (gint) code);
  if (in_message != NULL && strstr ((*error)->message, in_message) == NULL)
    g_error ("error \"%s\" lacks \"%s\"", (*error)->message, in_message);
  g_clear_error (error);
}

static void
test_guard_cycle (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *digest = NULL;
  g_autofree char *other = NULL;
  g_autofree char *run = NULL;
  g_autofree char *stamp_text = NULL;
  g_autoptr(StagehandGuardToken) token = NULL;
  g_autoptr(StagehandGuardToken) again = NULL;
  g_autoptr(StagehandGuardToken) resumed = NULL;
  g_autoptr(StagehandGuardToken) forced = NULL;
  g_autoptr(StagehandGuardStamp) stamp = NULL;
  g_autoptr(StagehandGuardStamp) done = NULL;
  const StagehandGuardStamp *started;
  gboolean removed = FALSE;

  make_guard_dir ();
  digest = config_digest ("{\"disk\": \"/dev/vda\"}\n");
  other = config_digest ("{\"disk\": \"/dev/vdb\"}\n");

  /* Never begun: no record. */
  g_assert_true (stagehand_guard_status (GUARD_DIR, "reprovision", &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (stamp);

  /* Begin: a durable started stamp and a token that describes it. */
  token = stagehand_guard_begin (GUARD_DIR, "reprovision", digest, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (token);
  g_assert_cmpstr (stagehand_guard_token_get_path (token), ==, GUARD_DIR "/reprovision.stamp");
  g_assert_null (stagehand_guard_token_get_replaced_stamp (token));
  g_assert_null (stagehand_guard_token_get_replaced_unreadable (token));
  started = stagehand_guard_token_get_stamp (token);
  g_assert_cmpstr (stagehand_guard_stamp_get_name (started), ==, "reprovision");
  g_assert_cmpint (stagehand_guard_stamp_get_phase (started), ==, STAGEHAND_GUARD_PHASE_STARTED);
  g_assert_cmpstr (stagehand_guard_stamp_get_digest (started), ==, digest);
  g_assert_cmpuint (strlen (stagehand_guard_stamp_get_run (started)), ==, 36);
  assert_rfc3339 (stagehand_guard_stamp_get_started (started));
  g_assert_null (stagehand_guard_stamp_get_completed (started));
  run = g_strdup (stagehand_guard_stamp_get_run (started));
  stamp_text = read_file (GUARD_DIR "/reprovision.stamp");
  g_assert_true (g_str_has_prefix (stamp_text, "stagehand-redline 1\nname=reprovision\nstate=started\n"));

  g_assert_true (stagehand_guard_status (GUARD_DIR, "reprovision", &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_guard_stamp_get_phase (stamp), ==, STAGEHAND_GUARD_PHASE_STARTED);
  g_assert_cmpstr (stagehand_guard_stamp_get_run (stamp), ==, run);
  g_clear_pointer (&stamp, stagehand_guard_stamp_free);

  /* Started and not committed: any begin is refused, whatever the digest. */
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "reprovision", digest, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INTERRUPTED, "\"reprovision\"");
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "reprovision", other, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INTERRUPTED, NULL);

  /* Commit: complete, durable, same run. */
  done = stagehand_guard_commit (token, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_guard_stamp_get_phase (done), ==, STAGEHAND_GUARD_PHASE_COMPLETE);
  g_assert_cmpstr (stagehand_guard_stamp_get_run (done), ==, run);
  g_assert_cmpstr (stagehand_guard_stamp_get_digest (done), ==, digest);
  assert_rfc3339 (stagehand_guard_stamp_get_completed (done));
  g_clear_pointer (&done, stagehand_guard_stamp_free);
  g_assert_true (stagehand_guard_status (GUARD_DIR, "reprovision", &stamp, NULL, &error));
  g_assert_cmpint (stagehand_guard_stamp_get_phase (stamp), ==, STAGEHAND_GUARD_PHASE_COMPLETE);
  assert_rfc3339 (stagehand_guard_stamp_get_completed (stamp));
  g_clear_pointer (&stamp, stagehand_guard_stamp_free);

  /* Complete: the same configuration is skipped, another one refused. */
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "reprovision", digest, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_ALREADY_COMPLETE, "\"reprovision\"");
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "reprovision", other, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_CONFIG_CHANGED, other);
  /* No digest is a value of its own. */
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "reprovision", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_CONFIG_CHANGED, "(none)");
  g_assert_null (stagehand_guard_resume (GUARD_DIR, "reprovision", digest, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_ALREADY_COMPLETE, NULL);
  g_assert_null (stagehand_guard_resume (GUARD_DIR, "reprovision", other, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_CONFIG_CHANGED, NULL);

  /* Reset forgets it; nothing to resume then. */
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "reprovision", &removed, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (removed);
  g_assert_false (g_file_test (GUARD_DIR "/reprovision.stamp", G_FILE_TEST_EXISTS));
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "reprovision", &removed, NULL, &error));
  g_assert_false (removed);
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "reprovision", NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (stagehand_guard_resume (GUARD_DIR, "reprovision", digest, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "not started");

  /* Begin in one "process", resume and commit in another: the digest must
   * be the one begun with. Upper-case hex is the same digest. */
  g_clear_pointer (&token, stagehand_guard_token_free);
  {
    g_autofree char *upper = g_ascii_strup (digest, -1);
    token = stagehand_guard_begin (GUARD_DIR, "reprovision", upper, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (stagehand_guard_stamp_get_digest (stagehand_guard_token_get_stamp (token)), ==, digest);
  }
  g_assert_null (stagehand_guard_resume (GUARD_DIR, "reprovision", other, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_CONFIG_CHANGED, NULL);
  resumed = stagehand_guard_resume (GUARD_DIR, "reprovision", digest, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_guard_stamp_get_run (stagehand_guard_token_get_stamp (resumed)), ==,
                   stagehand_guard_stamp_get_run (stagehand_guard_token_get_stamp (token)));
  done = stagehand_guard_commit (resumed, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&done, stagehand_guard_stamp_free);
  /* The first token's step is complete now. */
  g_assert_null (stagehand_guard_commit (token, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_ALREADY_COMPLETE, NULL);

  /* Forced: overrides the complete record and says what it overrode; a
   * token of the overridden run cannot commit the new one. */
  g_clear_pointer (&token, stagehand_guard_token_free);
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "reprovision", NULL, NULL, &error));
  token = stagehand_guard_begin (GUARD_DIR, "reprovision", digest, NULL, &error);
  g_assert_no_error (error);
  g_test_expect_message ("stagehand", G_LOG_LEVEL_WARNING, "forcing step \"reprovision\": overriding its started record*");
  forced = stagehand_guard_begin_forced (GUARD_DIR, "reprovision", other, NULL, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_nonnull (stagehand_guard_token_get_replaced_stamp (forced));
  g_assert_cmpint (stagehand_guard_stamp_get_phase (stagehand_guard_token_get_replaced_stamp (forced)), ==,
                   STAGEHAND_GUARD_PHASE_STARTED);
  g_assert_cmpstr (stagehand_guard_stamp_get_run (stagehand_guard_token_get_replaced_stamp (forced)), ==,
                   stagehand_guard_stamp_get_run (stagehand_guard_token_get_stamp (token)));
  g_assert_null (stagehand_guard_token_get_replaced_unreadable (forced));
  g_assert_null (stagehand_guard_commit (token, NULL, &error));
  /* Its digest is not the one of the forced run... */
  assert_guard_error (&error, STAGEHAND_ERROR_CONFIG_CHANGED, NULL);
  /* ...and with the same digest, its run is not the current one. */
  g_clear_pointer (&token, stagehand_guard_token_free);
  g_test_expect_message ("stagehand", G_LOG_LEVEL_WARNING, "forcing step*");
  again = stagehand_guard_begin_forced (GUARD_DIR, "reprovision", other, NULL, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_null (stagehand_guard_commit (forced, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "begun again");
  done = stagehand_guard_commit (again, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_guard_stamp_get_digest (done), ==, other);
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "reprovision", NULL, NULL, &error));
  g_assert_no_error (error);
}

/* The previous run of the step began and died before it committed: the
 * child process (the same test, re-run by GTest) is SIGKILLed right after
 * begin returned. */
static void
test_guard_interrupted (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *digest = NULL;
  g_autoptr(StagehandGuardStamp) stamp = NULL;
  g_autoptr(StagehandGuardStamp) done = NULL;
  g_autoptr(StagehandGuardToken) token = NULL;

  make_guard_dir ();
  if (g_test_subprocess ())
    {
      digest = config_digest ("partition: sda\n");
      token = stagehand_guard_begin (GUARD_DIR, "crashing-step", digest, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (token);
      /* The destructive part starts here, and the machine dies. */
      kill (getpid (), SIGKILL);
      g_assert_not_reached ();
    }

  g_assert_true (stagehand_guard_reset (GUARD_DIR, "crashing-step", NULL, NULL, &error));
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  digest = config_digest ("partition: sda\n");

  /* What it left: a started stamp, with the child's digest. */
  g_assert_true (stagehand_guard_status (GUARD_DIR, "crashing-step", &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (stamp);
  g_assert_cmpint (stagehand_guard_stamp_get_phase (stamp), ==, STAGEHAND_GUARD_PHASE_STARTED);
  g_assert_cmpstr (stagehand_guard_stamp_get_digest (stamp), ==, digest);

  /* Every later begin says so, with when it started, and writes nothing. */
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "crashing-step", digest, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INTERRUPTED, stagehand_guard_stamp_get_started (stamp));
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "crashing-step", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INTERRUPTED, "never completed");

  /* An administrator who finished the step by hand marks it complete. */
  token = stagehand_guard_resume (GUARD_DIR, "crashing-step", digest, NULL, &error);
  g_assert_no_error (error);
  done = stagehand_guard_commit (token, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_guard_stamp_get_run (done), ==, stagehand_guard_stamp_get_run (stamp));
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "crashing-step", digest, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_ALREADY_COMPLETE, NULL);
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "crashing-step", NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
test_guard_errors (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(StagehandGuardStamp) stamp = NULL;
  g_autoptr(StagehandGuardToken) token = NULL;
  g_autoptr(StagehandGuardStamp) done = NULL;
  g_autofree char *long_name = g_strnfill (129, 'a');
  g_autofree char *long_digest = g_strnfill (130, 'a');
  g_autofree char *garbage = NULL;
  const char *bad_names[] = { "", "-x", ".hidden", "a/b", "a b", "../up", long_name };
  const char *bad_digests[] = { "xyz", "abc", "0123456789a", "not-hex!", long_digest };

  make_guard_dir ();

  /* Invalid names and digests: INVALID_ARGUMENT from every function, nothing written. */
  for (gsize i = 0; i < G_N_ELEMENTS (bad_names); i++)
    {
      g_assert_null (stagehand_guard_begin (GUARD_DIR, bad_names[i], NULL, NULL, &error));
      assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "step name");
      g_assert_null (stagehand_guard_begin_forced (GUARD_DIR, bad_names[i], NULL, NULL, &error));
      assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "step name");
      g_assert_null (stagehand_guard_resume (GUARD_DIR, bad_names[i], NULL, NULL, &error));
      assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "step name");
      g_assert_false (stagehand_guard_status (GUARD_DIR, bad_names[i], &stamp, NULL, &error));
      assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "step name");
      g_assert_false (stagehand_guard_reset (GUARD_DIR, bad_names[i], NULL, NULL, &error));
      assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "step name");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_digests); i++)
    {
      g_assert_null (stagehand_guard_begin (GUARD_DIR, "step", bad_digests[i], NULL, &error));
      assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "digest");
      g_assert_null (stagehand_guard_resume (GUARD_DIR, "step", bad_digests[i], NULL, &error));
      assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "digest");
    }
  g_assert_true (stagehand_guard_status (GUARD_DIR, "step", &stamp, NULL, &error));
  g_assert_null (stamp);

  /* A missing directory is IO, never "no record": stagehand does not create it. */
  g_assert_null (stagehand_guard_begin ("/run/stagehand-test-no-such-dir", "step", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_IO, "stagehand never creates it");
  g_assert_false (stagehand_guard_status ("/run/stagehand-test-no-such-dir", "step", &stamp, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_IO, "/run/stagehand-test-no-such-dir");
  g_assert_false (stagehand_guard_reset ("/run/stagehand-test-no-such-dir", "step", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_IO, NULL);
  g_assert_false (g_file_test ("/run/stagehand-test-no-such-dir", G_FILE_TEST_EXISTS));
  /* NULL is the default directory, not created either. */
  g_assert_null (stagehand_guard_begin (NULL, "step", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_IO, "/var/lib/stagehand/guard");
  g_assert_cmpint (g_mkdir_with_parents ("/var/lib/stagehand/guard", 0700), ==, 0);
  token = stagehand_guard_begin (NULL, "step", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_guard_token_get_path (token), ==, "/var/lib/stagehand/guard/step.stamp");
  g_assert_true (stagehand_guard_reset (NULL, "step", NULL, NULL, &error));
  g_clear_pointer (&token, stagehand_guard_token_free);
  g_assert_cmpint (g_rmdir ("/var/lib/stagehand/guard"), ==, 0);

  /* A read-only directory: begin refuses to run the step unrecorded; status
   * still reads. (A private mount namespace: the machine's.) */
  g_assert_cmpint (g_mkdir_with_parents ("/run/stagehand-test-ro", 0700), ==, 0);
  if (mount ("tmpfs", "/run/stagehand-test-ro", "tmpfs", MS_RDONLY, NULL) != 0)
    g_error ("mounting a read-only tmpfs: %s", g_strerror (errno));
  g_assert_null (stagehand_guard_begin ("/run/stagehand-test-ro", "step", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_READ_ONLY, "/run/stagehand-test-ro");
  g_assert_true (stagehand_guard_status ("/run/stagehand-test-ro", "step", &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (stamp);
  g_assert_cmpint (umount ("/run/stagehand-test-ro"), ==, 0);

  /* A stamp that cannot be trusted is CORRUPT and kept; a forced begin says
   * why it overrode it. */
  write_file (GUARD_DIR "/bad.stamp", "stagehand-redline 1\nname=bad\nstate=complete\n");
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "bad", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_CORRUPT, GUARD_DIR "/bad.stamp");
  g_assert_false (stagehand_guard_status (GUARD_DIR, "bad", &stamp, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_CORRUPT, "truncated");
  garbage = read_file (GUARD_DIR "/bad.stamp");
  g_assert_cmpstr (garbage, ==, "stagehand-redline 1\nname=bad\nstate=complete\n");
  g_test_expect_message ("stagehand", G_LOG_LEVEL_WARNING, "forcing step \"bad\": overriding an unreadable stamp*");
  token = stagehand_guard_begin_forced (GUARD_DIR, "bad", NULL, NULL, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_null (stagehand_guard_token_get_replaced_stamp (token));
  g_assert_nonnull (strstr (stagehand_guard_token_get_replaced_unreadable (token), "bad.stamp"));
  done = stagehand_guard_commit (token, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "bad", NULL, NULL, &error));

  /* One written by a newer stagehand: UNSUPPORTED. */
  write_file (GUARD_DIR "/future.stamp", "stagehand-redline 2\nwhatever comes next\n");
  g_assert_false (stagehand_guard_status (GUARD_DIR, "future", &stamp, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_UNSUPPORTED, "newer stagehand");
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "future", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_UNSUPPORTED, NULL);
  g_assert_true (stagehand_guard_reset (GUARD_DIR, "future", NULL, NULL, &error));
  g_assert_no_error (error);

  /* Cancelled before it starts: nothing written. */
  g_cancellable_cancel (cancellable);
  g_assert_null (stagehand_guard_begin (GUARD_DIR, "step", NULL, cancellable, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_CANCELLED, NULL);
  g_assert_true (stagehand_guard_status (GUARD_DIR, "step", &stamp, NULL, &error));
  g_assert_null (stamp);

  /* The digest of a file that cannot be read. */
  g_assert_null (stagehand_guard_file_digest (GUARD_DIR "/no-such-config", NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_IO, GUARD_DIR "/no-such-config");
}


/* ------------------------------------------------ pre-upgrade hooks ---- */

/* testos/hooked (4.0) ships two vendor hooks: 10-pass (exits 0) and 20-veto
 * (exits 3 with a message); testos/badhook (5.0) ships a hook that is not
 * executable (see testbed_sysroot in tests/c/meson.build). */
static void
test_hooks (void)
{
  g_autoptr(GError) error = NULL;
  OstreeSysroot *sysroot = load_and_lock ();
  g_autoptr(StagehandStageOptions) hooked = stagehand_stage_options_new ("testos/hooked");
  g_autoptr(StagehandStageOptions) badhook = stagehand_stage_options_new ("testos/badhook");
  g_autoptr(StagehandStageOptions) plain = stagehand_stage_options_new (env ("STAGEHAND_TEST_BRANCH"));
  g_autoptr(StagehandHookReport) report = NULL;
  g_autoptr(StagehandHookReport) none = NULL;
  g_autofree char *old_id = expected_id (env ("STAGEHAND_TEST_COMMIT_1_0"), 0);
  char *removed = (char *) "untouched";
  const StagehandHookRun *run;

  /* Under valgrind 3.19, which does not implement pidfd_open(), this also
   * covers the runner's fallback (polling for the sandbox's exit). */
  /* The dry run: every hook ran, in name order, the veto reported, not an
   * error; nothing left behind. */
  report = stagehand_hooks_check (sysroot, hooked, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (report);
  g_assert_false (stagehand_hook_report_get_passed (report));
  g_assert_cmpstr (stagehand_hook_report_get_checksum (report), ==, env ("STAGEHAND_TEST_COMMIT_4_0"));
  g_assert_cmpstr (stagehand_hook_report_get_stateroot (report), ==, env ("STAGEHAND_TEST_STATEROOT"));
  g_assert_cmpstr (stagehand_hook_report_get_version (report), ==, "4.0");
  g_assert_cmpstr (stagehand_hook_report_get_old (report), ==, old_id);
  g_assert_cmpuint (stagehand_hook_report_get_n_hooks (report), ==, 2);
  run = stagehand_hook_report_get_hook (report, 0);
  g_assert_cmpstr (stagehand_hook_run_get_name (run), ==, "10-pass");
  g_assert_cmpstr (stagehand_hook_run_get_path (run), ==, "/usr/lib/stagehand/pre-upgrade.d/10-pass");
  g_assert_cmpint (stagehand_hook_run_get_origin (run), ==, STAGEHAND_HOOK_ORIGIN_VENDOR);
  g_assert_true (stagehand_hook_run_get_passed (run));
  g_assert_cmpint (stagehand_hook_run_get_end (run), ==, STAGEHAND_HOOK_END_PASSED);
  g_assert_cmpint (stagehand_hook_run_get_exit_status (run), ==, 0);
  g_assert_null (stagehand_hook_run_get_description (run));
  /* It saw the old and new versions in its environment. */
  g_assert_cmpstr (stagehand_hook_run_get_output_tail (run), ==, "pass: from 1.0 to 4.0\n");
  g_assert_cmpuint (stagehand_hook_run_get_output_bytes (run), ==, strlen ("pass: from 1.0 to 4.0\n"));
  run = stagehand_hook_report_get_hook (report, 1);
  g_assert_cmpstr (stagehand_hook_run_get_name (run), ==, "20-veto");
  g_assert_false (stagehand_hook_run_get_passed (run));
  g_assert_cmpint (stagehand_hook_run_get_end (run), ==, STAGEHAND_HOOK_END_EXITED);
  g_assert_cmpint (stagehand_hook_run_get_exit_status (run), ==, 3);
  g_assert_cmpint (stagehand_hook_run_get_signal (run), ==, 0);
  g_assert_cmpstr (stagehand_hook_run_get_description (run), ==, "exit status 3");
  g_assert_nonnull (strstr (stagehand_hook_run_get_output_tail (run),
                            "cannot upgrade from 1.0 to 4.0: update to 1.5 first"));
  assert_nothing_staged (sysroot);

  /* A revision without hooks passes with an empty report. */
  none = stagehand_hooks_check (sysroot, plain, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_hook_report_get_passed (none));
  g_assert_cmpuint (stagehand_hook_report_get_n_hooks (none), ==, 0);
  assert_nothing_staged (sysroot);

  /* Staging it: the veto is HOOK_VETOED naming the hook, how it ended and
   * its output; nothing staged, finalization not left locked. */
  g_assert_null (stagehand_stage (sysroot, hooked, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_HOOK_VETOED);
  g_assert_nonnull (strstr (error->message, "/usr/lib/stagehand/pre-upgrade.d/20-veto"));
  g_assert_nonnull (strstr (error->message, "exit status 3"));
  g_assert_nonnull (strstr (error->message, "update to 1.5 first"));
  g_clear_error (&error);
  assert_nothing_staged (sysroot);
  g_assert_false (stagehand_is_finalization_locked (sysroot));

  /* Nothing to recover (after a veto). */
  g_assert_true (stagehand_hooks_recover (sysroot, &removed, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (removed);
  g_assert_true (stagehand_hooks_recover (sysroot, NULL, NULL, &error));
  g_assert_no_error (error);

  /* A hook that is not executable refuses the update, from the dry run and
   * from staging: HOOK_INVALID naming the file. */
  g_assert_null (stagehand_hooks_check (sysroot, badhook, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_HOOK_INVALID, "10-pass");
  g_assert_null (stagehand_stage (sysroot, badhook, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_HOOK_INVALID, "10-pass");
  assert_nothing_staged (sysroot);

  /* The dry run's own errors. */
  {
    g_autoptr(StagehandStageOptions) unknown = stagehand_stage_options_new ("testos/nope");
    g_autoptr(GCancellable) cancelled = g_cancellable_new ();

    g_assert_null (stagehand_hooks_check (sysroot, unknown, NULL, &error));
    assert_guard_error (&error, STAGEHAND_ERROR_UNKNOWN_REVISION, "testos/nope");
    g_cancellable_cancel (cancelled);
    g_assert_null (stagehand_hooks_check (sysroot, hooked, cancelled, &error));
    assert_guard_error (&error, STAGEHAND_ERROR_CANCELLED, NULL);
    assert_nothing_staged (sysroot);
  }
  unlock_and_free (sysroot);
}

/* ---------------------------------------------------------- health ---- */

static StagehandStatus *
status_of (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  StagehandStatus *status = stagehand_status (sysroot, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (status);
  return status;
}

static char *
stage_with (OstreeSysroot *sysroot, StagehandStageOptions *options)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StagehandStageResult) result = stagehand_stage (sysroot, options, NULL, &error);

  g_assert_no_error (error);
  return stagehand_stage_result_dup_id (result);
}

/* GTest makes warnings fatal; the health transitions warn on purpose (a
 * deployment marked bad, a denylisted commit staged anyway), which the test
 * records and checks instead. Criticals stay fatal. */
static gboolean
stagehand_warnings_not_fatal (const char *log_domain, GLogLevelFlags log_level,
                              const char *message G_GNUC_UNUSED, gpointer user_data G_GNUC_UNUSED)
{
  return !(g_strcmp0 (log_domain, "stagehand") == 0 && (log_level & G_LOG_LEVEL_WARNING) != 0);
}

/* The transitions on one booted deployment (1.0) and an update (2.0):
 * stage → untested, mark-bad of the staged one → unstaged and denylisted,
 * re-stage refused, allowed explicitly, mark-bad of the only deployment
 * refused, mark-good, assess, the denylist, reset. */
static void
test_health (void)
{
  g_autoptr(GError) error = NULL;
  OstreeSysroot *sysroot = load_and_lock ();
  const char *v2 = env ("STAGEHAND_TEST_COMMIT_2_0");
  g_autofree char *booted_id = expected_id (env ("STAGEHAND_TEST_COMMIT_1_0"), 0);
  g_autofree char *staged_id = NULL;
  g_autofree char *again_id = NULL;
  g_autofree char *unstaged = NULL;
  g_autofree char *prefix = g_strndup (v2, 10);
  char *previous_error = (char *) "untouched"; /* not allocated: the call must overwrite it */
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (env ("STAGEHAND_TEST_BRANCH"));
  g_autoptr(StagehandStatus) status = NULL;
  g_autoptr(StagehandMarkBadResult) bad = NULL;
  g_autoptr(StagehandMarkGoodResult) good = NULL;
  g_autoptr(StagehandVerdict) verdict = NULL;
  g_autoptr(StagehandDenylist) denylist = NULL;
  g_autoptr(StagehandDenylistEntry) removed = NULL;
  const StagehandDeploymentStatus *d;
  const StagehandDenylistEntry *entry;
  LogRecorder recorder;

  g_test_log_set_fatal_handler (stagehand_warnings_not_fatal, NULL);

  /* Before: stagehand has no record of 1.0, which reads good-fallback. */
  status = status_of (sysroot);
  g_assert_null (stagehand_status_get_health_error (status));
  d = stagehand_status_get_deployment (status, 0);
  g_assert_cmpint (stagehand_deployment_status_get_health (d), ==, STAGEHAND_HEALTH_STATE_GOOD_FALLBACK);
  g_assert_false (stagehand_deployment_status_get_on_trial (d));
  g_assert_cmpuint (stagehand_deployment_status_get_attempts (d), ==, 0);
  g_assert_null (stagehand_deployment_status_get_health_reason (d));
  g_assert_null (stagehand_deployment_status_get_health_changed (d));
  g_assert_false (stagehand_deployment_status_get_pinned_by_stagehand (d));
  g_assert_cmpuint (stagehand_status_get_n_denylisted (status), ==, 0);
  g_assert_null (stagehand_status_get_last_rollback (status));
  g_clear_pointer (&status, stagehand_status_free);

  /* Staged: untested, on trial; 1.0, the known-good one, pinned by
   * stagehand for the trial (libostree's own pin flag agrees). */
  staged_id = stage_with (sysroot, options);
  status = status_of (sysroot);
  g_assert_cmpuint (stagehand_status_get_n_deployments (status), ==, 2);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_true (stagehand_deployment_status_get_staged (d));
  g_assert_cmpint (stagehand_deployment_status_get_health (d), ==, STAGEHAND_HEALTH_STATE_UNTESTED);
  g_assert_true (stagehand_deployment_status_get_on_trial (d));
  g_assert_cmpuint (stagehand_deployment_status_get_attempts (d), ==, 0);
  assert_rfc3339 (stagehand_deployment_status_get_health_changed (d));
  d = stagehand_status_get_deployment (status, 1);
  g_assert_cmpint (stagehand_deployment_status_get_health (d), ==, STAGEHAND_HEALTH_STATE_GOOD_FALLBACK);
  g_assert_true (stagehand_deployment_status_get_pinned_by_stagehand (d));
  g_assert_true (stagehand_deployment_status_get_pinned (d));
  g_clear_pointer (&status, stagehand_status_free);

  /* mark-bad the staged one: unstaged, its commit denylisted with the
   * reason, no reboot needed; the trial's pin released. */
  log_recorder_start_levels (&recorder, G_LOG_LEVEL_WARNING);
  bad = stagehand_mark_bad (sysroot, staged_id, "smoke test failed", NULL, NULL, &error);
  g_assert_no_error (error);
  log_recorder_finish (&recorder, "marked testos:* bad: smoke test failed; commit * denylisted");
  g_assert_cmpstr (stagehand_mark_bad_result_get_deployment (bad), ==, staged_id);
  g_assert_cmpstr (stagehand_mark_bad_result_get_reason (bad), ==, "smoke test failed");
  g_assert_cmpstr (stagehand_mark_bad_result_get_denylisted (bad), ==, v2);
  g_assert_true (stagehand_mark_bad_result_get_unstaged (bad));
  g_assert_false (stagehand_mark_bad_result_get_already_failed (bad));
  g_assert_false (stagehand_mark_bad_result_get_reboot_needed (bad));
  g_assert_null (stagehand_mark_bad_result_get_staged (bad));
  g_clear_pointer (&bad, stagehand_mark_bad_result_free);
  assert_nothing_staged (sysroot);
  status = status_of (sysroot);
  g_assert_cmpuint (stagehand_status_get_n_denylisted (status), ==, 1);
  entry = stagehand_status_get_denylisted (status, 0);
  g_assert_cmpstr (stagehand_denylist_entry_get_checksum (entry), ==, v2);
  g_assert_cmpstr (stagehand_denylist_entry_get_reason (entry), ==, "smoke test failed");
  g_assert_cmpstr (stagehand_denylist_entry_get_deployment (entry), ==, staged_id);
  assert_rfc3339 (stagehand_denylist_entry_get_since (entry));
  d = stagehand_status_get_deployment (status, 0);
  g_assert_false (stagehand_deployment_status_get_pinned_by_stagehand (d));
  g_assert_false (stagehand_deployment_status_get_pinned (d));
  g_clear_pointer (&status, stagehand_status_free);

  /* Staging it again: DENYLISTED, nothing written. */
  g_assert_null (stagehand_stage (sysroot, options, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_DENYLISTED, v2);
  assert_nothing_staged (sysroot);
  /* A person's deliberate retry: allowed, a new trial. */
  stagehand_stage_options_set_allow_denylisted (options, TRUE);
  log_recorder_start_levels (&recorder, G_LOG_LEVEL_WARNING);
  again_id = stage_with (sysroot, options);
  log_recorder_finish (&recorder, "staging denylisted commit * as explicitly allowed (failed *: smoke test failed)");
  status = status_of (sysroot);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_true (stagehand_deployment_status_get_staged (d));
  g_assert_cmpint (stagehand_deployment_status_get_health (d), ==, STAGEHAND_HEALTH_STATE_UNTESTED);
  g_clear_pointer (&status, stagehand_status_free);
  g_assert_true (stagehand_unstage (sysroot, &unstaged, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (unstaged, ==, again_id);
  assert_nothing_staged (sysroot);

  /* The booted one is the only deployment: no known-good one to roll back
   * to, NO_KNOWN_GOOD, and nothing changed. */
  g_assert_null (stagehand_mark_bad (sysroot, NULL, "broken", NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_NO_KNOWN_GOOD, NULL);
  status = status_of (sysroot);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_cmpint (stagehand_deployment_status_get_health (d), ==, STAGEHAND_HEALTH_STATE_GOOD_FALLBACK);
  g_assert_null (stagehand_deployment_status_get_health_reason (d));
  g_assert_cmpuint (stagehand_status_get_n_denylisted (status), ==, 1);
  g_clear_pointer (&status, stagehand_status_free);
  /* A deployment that does not exist. */
  g_assert_null (stagehand_mark_bad (sysroot, "testos:0123456789abcdef", NULL, NULL, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT, NULL);

  /* mark-good: the booted deployment is good, the boot counted. */
  good = stagehand_mark_good (sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_mark_good_result_get_deployment (good), ==, booted_id);
  g_assert_cmpint (stagehand_mark_good_result_get_previous (good), ==, STAGEHAND_HEALTH_STATE_GOOD_FALLBACK);
  g_assert_cmpuint (stagehand_mark_good_result_get_attempts (good), ==, 1);
  g_assert_false (stagehand_mark_good_result_get_undenylisted (good));
  /* No trial was open, so no pin of stagehand's is waiting to be released
   * (the TRUE case: test-boot-counter.c, boot 2). */
  g_assert_false (stagehand_mark_good_result_get_retention_pending (good));
  status = status_of (sysroot);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_cmpint (stagehand_deployment_status_get_health (d), ==, STAGEHAND_HEALTH_STATE_GOOD);
  g_assert_false (stagehand_deployment_status_get_on_trial (d));
  g_assert_cmpuint (stagehand_deployment_status_get_attempts (d), ==, 1);
  g_clear_pointer (&status, stagehand_status_free);

  /* assess in the same boot: good, the boot not counted twice. */
  verdict = stagehand_assess (sysroot, STAGEHAND_BOOT_EVIDENCE_UNKNOWN, 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_verdict_get_outcome (verdict), ==, STAGEHAND_ASSESS_OUTCOME_GOOD);
  g_assert_cmpstr (stagehand_verdict_get_booted (verdict), ==, booted_id);
  g_assert_cmpint (stagehand_verdict_get_health (verdict), ==, STAGEHAND_HEALTH_STATE_GOOD);
  g_assert_false (stagehand_verdict_get_counted (verdict));
  g_assert_cmpuint (stagehand_verdict_get_attempts (verdict), ==, 1);
  g_assert_false (stagehand_verdict_get_reboot_needed (verdict));
  g_assert_cmpuint (strv_len (stagehand_verdict_get_newer (verdict)), ==, 0);
  g_assert_cmpuint (strv_len (stagehand_verdict_get_failed (verdict)), ==, 0);
  g_assert_false (stagehand_verdict_get_retention_pending (verdict));
  g_assert_nonnull (stagehand_verdict_get_message (verdict));

  /* The denylist: list, remove by prefix, and its errors. */
  denylist = stagehand_denylist_list (sysroot, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stagehand_denylist_get_n_entries (denylist), ==, 1);
  g_assert_cmpstr (stagehand_denylist_entry_get_checksum (stagehand_denylist_get_entry (denylist, 0)), ==, v2);
  g_clear_pointer (&denylist, stagehand_denylist_free);
  g_assert_null (stagehand_denylist_remove (sysroot, "not-hex", NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "not a commit checksum");
  removed = stagehand_denylist_remove (sysroot, prefix, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_denylist_entry_get_checksum (removed), ==, v2);
  g_assert_cmpstr (stagehand_denylist_entry_get_reason (removed), ==, "smoke test failed");
  g_assert_null (stagehand_denylist_remove (sysroot, v2, NULL, &error));
  assert_guard_error (&error, STAGEHAND_ERROR_INVALID_ARGUMENT, "not on the denylist");
  denylist = stagehand_denylist_list (sysroot, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stagehand_denylist_get_n_entries (denylist), ==, 0);

  /* Reset: everything forgotten, 1.0 reads good-fallback again. */
  log_recorder_start_levels (&recorder, G_LOG_LEVEL_WARNING);
  g_assert_true (stagehand_health_reset (sysroot, &previous_error, NULL, &error));
  log_recorder_finish (&recorder, "health store * reset");
  g_assert_no_error (error);
  g_assert_null (previous_error);
  status = status_of (sysroot);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_cmpint (stagehand_deployment_status_get_health (d), ==, STAGEHAND_HEALTH_STATE_GOOD_FALLBACK);
  g_assert_cmpuint (stagehand_deployment_status_get_attempts (d), ==, 0);
  unlock_and_free (sysroot);
  g_test_log_set_fatal_handler (NULL, NULL);
}

/* ------------------------------------------ cleanup stamp, two boots ---- */

#define STAMP "/sysroot/.cleanup"
#define RECORD "/run/stagehand/finalize-record"
#define FAILURE_STAMP "/boot/ostree/finalize-failure.stamp"

/* 0.9 was deployed first (serial 0), then 1.0, which boot 1 runs. */
static char *
id_of_0_9 (void)
{
  return expected_id (env ("STAGEHAND_TEST_COMMIT_0_9"), 0);
}

static char *
commit_object (const char *checksum)
{
  return g_strdup_printf ("/sysroot/ostree/repo/objects/%.2s/%s.commit", checksum, checksum + 2);
}

/* Loose objects of the sysroot repository and their size, counted here
 * independently of stagehand (lstat: symlink objects are not followed). */
static void
repo_usage (guint64 *objects, guint64 *bytes)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) top = g_dir_open ("/sysroot/ostree/repo/objects", 0, &error);
  const char *sub;

  g_assert_no_error (error);
  *objects = *bytes = 0;
  while ((sub = g_dir_read_name (top)) != NULL)
    {
      g_autofree char *subdir = g_build_filename ("/sysroot/ostree/repo/objects", sub, NULL);
      g_autoptr(GDir) d = g_dir_open (subdir, 0, NULL);
      const char *name;

      if (d == NULL)
        continue;
      while ((name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *path = g_build_filename (subdir, name, NULL);
          GStatBuf st;

          g_assert_cmpint (g_lstat (path, &st), ==, 0);
          (*objects)++;
          *bytes += (guint64) st.st_size;
        }
    }
}

/* stagehand_status()'s view of the stamp. */
static gboolean
status_cleanup_pending (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StagehandStatus) status = stagehand_status (sysroot, NULL, &error);

  g_assert_no_error (error);
  return stagehand_status_get_cleanup_pending (status);
}

static StagehandFinalizeResult *
record_finalized_locked (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  StagehandFinalizeResult *result;

  ostree_sysroot_lock (sysroot, &error);
  g_assert_no_error (error);
  result = stagehand_record_finalized (sysroot, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  /* No reference to libostree's deployment objects kept (valgrind.supp). */
  assert_sysroot_refs_only (sysroot);
  ostree_sysroot_unlock (sysroot);
  /* Only a stamped outcome writes the stamp; every outcome consumes the record. */
  g_assert_cmpint (g_file_test (STAMP, G_FILE_TEST_EXISTS), ==, stagehand_finalize_result_get_stamped (result));
  g_assert_false (g_file_test (RECORD, G_FILE_TEST_EXISTS));
  return result;
}

static char *
record_staged (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  char *id = NULL;

  g_assert_true (stagehand_record_staged (sysroot, &id, NULL, &error));
  g_assert_no_error (error);
  assert_sysroot_refs_only (sysroot);
  return id;
}

static char *
stage_2_0 (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (env ("STAGEHAND_TEST_COMMIT_2_0"));
  g_autoptr(StagehandStageResult) result = NULL;

  /* Without the health trial's retention: by default stagehand pins the two
   * known-good deployments (1.0 and 0.9) while 2.0 is on trial, so
   * finalization would drop nothing. The cycle this test follows is
   * libostree's own: finalization drops 0.9, the cleanup frees it. */
  stagehand_stage_options_set_keep_known_good (options, FALSE);
  ostree_sysroot_lock (sysroot, &error);
  g_assert_no_error (error);
  result = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  ostree_sysroot_unlock (sysroot);
  return stagehand_stage_result_dup_id (result);
}

/* Boot 1: every outcome of the shutdown steps that writes no stamp. */
static void
test_cycle_outcomes (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandCleanupStamp) stamp = NULL;
  g_autoptr(StagehandFinalizeResult) result = NULL;
  g_autofree char *id = NULL;
  g_autofree char *staged = NULL;
  g_autofree char *stamp_path = stagehand_dup_cleanup_stamp_path (sysroot);

  g_assert_cmpstr (env ("STAGEHAND_TEST_BOOTED_COMMIT"), ==, env ("STAGEHAND_TEST_COMMIT_1_0"));
  /* On the booted system the stamp is in the physical sysroot, where
   * eos-updater's units put it too. */
  g_assert_cmpstr (stamp_path, ==, STAMP);
  g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (stamp);
  g_assert_false (status_cleanup_pending (sysroot));

  /* Nothing staged: nothing recorded, nothing concluded. */
  id = (char *) "not cleared";
  g_assert_true (stagehand_record_staged (sysroot, &id, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (id);
  g_assert_true (stagehand_record_staged (sysroot, NULL, NULL, &error));
  result = record_finalized_locked (sysroot);
  g_assert_cmpint (stagehand_finalize_result_get_outcome (result), ==, STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED);
  g_assert_false (stagehand_finalize_result_get_stamped (result));
  g_assert_null (stagehand_finalize_result_get_deployment (result));
  g_assert_cmpuint (strv_len (stagehand_finalize_result_get_dropped (result)), ==, 0);
  g_assert_null (stagehand_finalize_result_get_message (result));
  g_assert_nonnull (strstr (stagehand_finalize_result_get_description (result), "no staged deployment was recorded"));
  g_clear_pointer (&result, stagehand_finalize_result_free);

  /* Staged, recorded, not finalized: still staged. */
  staged = stage_2_0 (sysroot);
  id = record_staged (sysroot);
  g_assert_cmpstr (id, ==, staged);
  g_clear_pointer (&id, g_free);
  g_assert_true (g_file_test (RECORD, G_FILE_TEST_EXISTS));
  result = record_finalized_locked (sysroot);
  g_assert_cmpint (stagehand_finalize_result_get_outcome (result), ==, STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED);
  g_assert_cmpstr (stagehand_finalize_result_get_deployment (result), ==, staged);
  g_assert_false (stagehand_finalize_result_get_finalization_locked (result));
  g_clear_pointer (&result, stagehand_finalize_result_free);

  /* ...and with finalization locked, it says so. */
  g_assert_true (stagehand_lock_finalization (sysroot, NULL, &error));
  g_assert_no_error (error);
  g_free (record_staged (sysroot));
  result = record_finalized_locked (sysroot);
  g_assert_cmpint (stagehand_finalize_result_get_outcome (result), ==, STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED);
  g_assert_true (stagehand_finalize_result_get_finalization_locked (result));
  g_assert_nonnull (strstr (stagehand_finalize_result_get_description (result), "(finalization locked)"));
  g_clear_pointer (&result, stagehand_finalize_result_free);
  g_assert_true (stagehand_unlock_finalization (sysroot, NULL, NULL, &error));

  /* libostree recorded a failure during this shutdown (its failure stamp
   * appeared after the record): FAILED, with libostree's message. */
  g_free (record_staged (sysroot));
  write_file (FAILURE_STAMP, "error: Finalizing deployment: simulated failure\n");
  result = record_finalized_locked (sysroot);
  g_assert_cmpint (stagehand_finalize_result_get_outcome (result), ==, STAGEHAND_FINALIZE_OUTCOME_FAILED);
  g_assert_cmpstr (stagehand_finalize_result_get_deployment (result), ==, staged);
  g_assert_cmpstr (stagehand_finalize_result_get_message (result), ==, "error: Finalizing deployment: simulated failure");
  g_clear_pointer (&result, stagehand_finalize_result_free);
  g_assert_cmpint (g_unlink (FAILURE_STAMP), ==, 0);

  /* Unstaged after the record: the staged state is gone, but the deployment
   * is not in the bootloader configuration. */
  g_free (record_staged (sysroot));
  ostree_sysroot_lock (sysroot, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_unstage (sysroot, NULL, NULL, &error));
  g_assert_no_error (error);
  ostree_sysroot_unlock (sysroot);
  result = record_finalized_locked (sysroot);
  g_assert_cmpint (stagehand_finalize_result_get_outcome (result), ==, STAGEHAND_FINALIZE_OUTCOME_NOT_DEPLOYED);
  g_assert_cmpstr (stagehand_finalize_result_get_deployment (result), ==, staged);
  g_clear_pointer (&result, stagehand_finalize_result_free);

  g_assert_false (g_file_test (STAMP, G_FILE_TEST_EXISTS));
}

/* Boot 1, at shutdown: the record step, the real finalize-staged, the stamp
 * step, as the units run them. */
static void
test_cycle_shutdown (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandCleanupStamp) stamp = NULL;
  g_autoptr(StagehandFinalizeResult) result = NULL;
  g_autofree char *staged = NULL;
  g_autofree char *recorded = NULL;
  g_autofree char *dropped = id_of_0_9 ();
  g_autofree char *v09_commit = commit_object (env ("STAGEHAND_TEST_COMMIT_0_9"));
  g_autofree char *cli = NULL;
  g_autofree char *first = NULL;
  g_autofree char *text = NULL;
  g_autofree char *boot_id = read_file ("/proc/sys/kernel/random/boot_id");
  const char *finalize[] = { "ostree", "admin", "finalize-staged", NULL };

  staged = stage_2_0 (sysroot);
  /* Staged without retention: no deployment is pinned, so finalization
   * keeps only libostree's two (see stage_2_0). */
  {
    g_autoptr(StagehandStatus) status = stagehand_status (sysroot, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (stagehand_status_get_n_deployments (status), ==, 3);
    for (guint i = 0; i < 3; i++)
      {
        const StagehandDeploymentStatus *d = stagehand_status_get_deployment (status, i);
        g_assert_false (stagehand_deployment_status_get_pinned (d));
        g_assert_false (stagehand_deployment_status_get_pinned_by_stagehand (d));
      }
    g_assert_cmpint (stagehand_deployment_status_get_health (stagehand_status_get_deployment (status, 0)),
                     ==, STAGEHAND_HEALTH_STATE_UNTESTED);
  }
  recorded = record_staged (sysroot);
  g_assert_cmpstr (recorded, ==, staged);
  spawn_ok (finalize);
  result = record_finalized_locked (sysroot);
  g_assert_cmpint (stagehand_finalize_result_get_outcome (result), ==, STAGEHAND_FINALIZE_OUTCOME_STAMPED);
  g_assert_true (stagehand_finalize_result_get_stamped (result));
  g_assert_cmpstr (stagehand_finalize_result_get_deployment (result), ==, staged);
  g_assert_cmpuint (strv_len (stagehand_finalize_result_get_dropped (result)), ==, 1);
  g_assert_cmpstr (stagehand_finalize_result_get_dropped (result)[0], ==, dropped);
  g_assert_false (stagehand_finalize_result_get_finalization_locked (result));
  g_assert_null (stagehand_finalize_result_get_message (result));
  g_assert_nonnull (strstr (stagehand_finalize_result_get_description (result), "cleanup stamp written"));

  /* The stamp, as a reader sees it and as it is on disk. */
  g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (stamp);
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (stamp), ==, STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED);
  g_assert_cmpstr (stagehand_cleanup_stamp_get_deployment (stamp), ==, staged);
  g_assert_cmpuint (strv_len (stagehand_cleanup_stamp_get_dropped (stamp)), ==, 1);
  g_assert_cmpstr (stagehand_cleanup_stamp_get_dropped (stamp)[0], ==, dropped);
  assert_rfc3339 (stagehand_cleanup_stamp_get_finalized_at (stamp));
  g_strstrip (boot_id);
  g_assert_cmpstr (stagehand_cleanup_stamp_get_boot_id (stamp), ==, boot_id);
  g_assert_cmpuint (stagehand_cleanup_stamp_get_format_version (stamp), ==, 0);
  text = read_file (STAMP);
  g_assert_true (g_str_has_prefix (text, "stagehand-cleanup-stamp 1\n"));
  g_assert_true (status_cleanup_pending (sysroot));

  /* The real CLI: 2.0 is the default now, 0.9 is gone with its checkout,
   * but not its objects: that is the cleanup's job, next boot. */
  cli = ostree_admin_status ();
  g_assert_null (strstr (cli, "(staged)"));
  g_assert_null (strstr (cli, env ("STAGEHAND_TEST_COMMIT_0_9")));
  first = g_strdup_printf ("  %s %s.0", env ("STAGEHAND_TEST_STATEROOT"), env ("STAGEHAND_TEST_COMMIT_2_0"));
  if (!g_str_has_prefix (cli, first))
    g_error ("ostree admin status does not list 2.0 first:\n%s", cli);
  g_assert_true (g_file_test (v09_commit, G_FILE_TEST_EXISTS));
}

/* libostree prints "Freed objects: SIZE" with g_print() while it prunes. */
static GString *printed;

static void
capture_print (const char *message)
{
  g_string_append (printed, message);
}

/* Boot 2, into 2.0: the cleanup the stamp asks for. */
static void
test_cycle_autocleanup (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandCleanupStamp) stamp = NULL;
  g_autoptr(StagehandCleanupOptions) options = stagehand_cleanup_options_new ();
  g_autoptr(StagehandCleanupReport) report = NULL;
  g_autoptr(StagehandCleanupReport) nothing = NULL;
  g_autofree char *dropped = id_of_0_9 ();
  g_autofree char *finalized = expected_id (env ("STAGEHAND_TEST_COMMIT_2_0"), 0);
  g_autofree char *v09_commit = commit_object (env ("STAGEHAND_TEST_COMMIT_0_9"));
  g_autofree char *freed_size = NULL;
  g_autofree char *freed_message = NULL;
  const StagehandCleanupStamp *acted_on;
  const char *const *removed;
  const char *fsck[] = { "ostree", "fsck", "--repo=/sysroot/ostree/repo", "--quiet", NULL };
  guint64 objects_before, bytes_before, objects_after, bytes_after;
  GPrintFunc old_print;
  LogRecorder recorder;

  g_assert_cmpstr (env ("STAGEHAND_TEST_BOOTED_COMMIT"), ==, env ("STAGEHAND_TEST_COMMIT_2_0"));
  g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (stamp);
  g_assert_cmpstr (stagehand_cleanup_stamp_get_deployment (stamp), ==, finalized);
  g_assert_true (g_file_test (v09_commit, G_FILE_TEST_EXISTS));
  repo_usage (&objects_before, &bytes_before);

  stagehand_cleanup_options_set_lock_timeout (options, 10 * 1000);
  printed = g_string_new (NULL);
  old_print = g_set_print_handler (capture_print);
  log_recorder_start (&recorder);
  report = stagehand_autocleanup (sysroot, options, NULL, &error);
  log_recorder_finish (&recorder, "cleanup done: 1 deployment(s) removed, *");
  g_set_print_handler (old_print);
  g_assert_no_error (error);
  g_assert_nonnull (report);
  repo_usage (&objects_after, &bytes_after);

  /* The report: what the stamp said, what went, and what was freed, which is
   * exactly what disappeared from the repository. */
  g_assert_true (stagehand_cleanup_report_get_performed (report));
  acted_on = stagehand_cleanup_report_get_stamp (report);
  g_assert_nonnull (acted_on);
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (acted_on), ==, STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED);
  g_assert_cmpstr (stagehand_cleanup_stamp_get_deployment (acted_on), ==, finalized);
  removed = stagehand_cleanup_report_get_deployments_removed (report);
  g_assert_cmpuint (strv_len (removed), ==, 1);
  g_assert_cmpstr (removed[0], ==, dropped);
  g_assert_cmpuint (stagehand_cleanup_report_get_objects_freed (report), >, 0);
  g_assert_cmpuint (stagehand_cleanup_report_get_objects_freed (report), ==, objects_before - objects_after);
  g_assert_cmpuint (stagehand_cleanup_report_get_bytes_freed (report), ==, bytes_before - bytes_after);
  g_assert_cmpuint (stagehand_cleanup_report_get_objects_remaining (report), ==, objects_after);
  g_assert_cmpuint (stagehand_cleanup_report_get_bytes_remaining (report), ==, bytes_after);
  g_assert_true (stagehand_cleanup_report_get_stamp_removed (report));
  g_assert_cmpuint (strv_len (stagehand_cleanup_report_get_released_pins (report)), ==, 0);
  /* libostree's own count of the bytes it pruned agrees. */
  freed_size = g_format_size_full (stagehand_cleanup_report_get_bytes_freed (report), G_FORMAT_SIZE_DEFAULT);
  freed_message = g_strdup_printf ("Freed objects: %s\n", freed_size);
  /* (Under G_MESSAGES_DEBUG, GTest prints debug messages with g_print() too.) */
  if (strstr (printed->str, freed_message) == NULL)
    g_error ("libostree did not print \"%s\":\n%s", freed_message, printed->str);
  g_string_free (printed, TRUE);

  /* 0.9's commit is gone, the stamp too, and the repository is sound. */
  g_assert_false (g_file_test (v09_commit, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (STAMP, G_FILE_TEST_EXISTS));
  g_clear_pointer (&stamp, stagehand_cleanup_stamp_free);
  g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_null (stamp);
  g_assert_false (status_cleanup_pending (sysroot));
  spawn_ok (fsck);

  /* Nothing pending: nothing done, at once. */
  nothing = stagehand_autocleanup (sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (stagehand_cleanup_report_get_performed (nothing));
  g_assert_null (stagehand_cleanup_report_get_stamp (nothing));
  g_assert_cmpuint (strv_len (stagehand_cleanup_report_get_deployments_removed (nothing)), ==, 0);
  g_assert_cmpuint (stagehand_cleanup_report_get_objects_freed (nothing), ==, 0);
  g_assert_cmpuint (stagehand_cleanup_report_get_bytes_freed (nothing), ==, 0);
  g_assert_false (stagehand_cleanup_report_get_stamp_removed (nothing));
}

/* Boot 2: stamps other tools wrote, stamps nobody can read. */
static void
test_cycle_other_stamps (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandCleanupStamp) stamp = NULL;
  g_autoptr(StagehandCleanupOptions) force = stagehand_cleanup_options_new ();
  g_autoptr(StagehandCleanupReport) report = NULL;
  g_autofree char *kept = NULL;
  const char *garbage = "garbage, not a stamp\n";

  /* An empty stamp, as eos-updater writes it: pending, LEGACY; cleaned up by
   * a caller that holds the sysroot lock. */
  write_file (STAMP, "");
  g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (stamp), ==, STAGEHAND_CLEANUP_STAMP_KIND_LEGACY);
  g_assert_null (stagehand_cleanup_stamp_get_deployment (stamp));
  g_assert_cmpuint (strv_len (stagehand_cleanup_stamp_get_dropped (stamp)), ==, 0);
  g_assert_null (stagehand_cleanup_stamp_get_finalized_at (stamp));
  g_assert_null (stagehand_cleanup_stamp_get_boot_id (stamp));
  g_clear_pointer (&stamp, stagehand_cleanup_stamp_free);
  g_assert_true (stagehand_sysroot_lock (sysroot, 1000, NULL, &error));
  report = stagehand_run_cleanup (sysroot, FALSE, NULL, &error);
  g_assert_no_error (error);
  assert_sysroot_refs_only (sysroot);
  g_assert_true (stagehand_cleanup_report_get_performed (report));
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (stagehand_cleanup_report_get_stamp (report)), ==,
                   STAGEHAND_CLEANUP_STAMP_KIND_LEGACY);
  g_assert_true (stagehand_cleanup_report_get_stamp_removed (report));
  g_assert_false (g_file_test (STAMP, G_FILE_TEST_EXISTS));
  g_clear_pointer (&report, stagehand_cleanup_report_free);
  /* Without a stamp, with the lock held: nothing to do. */
  report = stagehand_run_cleanup (sysroot, FALSE, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (stagehand_cleanup_report_get_performed (report));
  g_clear_pointer (&report, stagehand_cleanup_report_free);
  ostree_sysroot_unlock (sysroot);

  /* Written by a newer stagehand: still pending. */
  write_file (STAMP, "stagehand-cleanup-stamp 7\nwhatever comes next\n");
  g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (stamp), ==, STAGEHAND_CLEANUP_STAMP_KIND_NEWER);
  g_assert_cmpuint (stagehand_cleanup_stamp_get_format_version (stamp), ==, 7);
  g_clear_pointer (&stamp, stagehand_cleanup_stamp_free);
  report = stagehand_autocleanup (sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (stagehand_cleanup_report_get_stamp (report)), ==,
                   STAGEHAND_CLEANUP_STAMP_KIND_NEWER);
  g_assert_true (stagehand_cleanup_report_get_stamp_removed (report));
  g_clear_pointer (&report, stagehand_cleanup_report_free);

  /* Garbage: CORRUPT from the query and the cleanup, the stamp kept as it
   * was, with and without the lock held. */
  write_file (STAMP, garbage);
  g_assert_false (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, STAMP));
  g_assert_nonnull (strstr (error->message, "left in place"));
  g_clear_error (&error);
  g_assert_null (stamp);
  g_assert_null (stagehand_autocleanup (sysroot, NULL, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CORRUPT);
  g_clear_error (&error);
  g_assert_true (stagehand_sysroot_lock (sysroot, 1000, NULL, &error));
  g_assert_null (stagehand_run_cleanup (sysroot, FALSE, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CORRUPT);
  g_clear_error (&error);
  ostree_sysroot_unlock (sysroot);
  kept = read_file (STAMP);
  g_assert_cmpstr (kept, ==, garbage);
  /* The status says a cleanup is pending all the same. */
  g_assert_true (status_cleanup_pending (sysroot));

  /* The administrator's override cleans up and removes it. */
  stagehand_cleanup_options_set_force (force, TRUE);
  g_test_expect_message ("stagehand", G_LOG_LEVEL_WARNING, "forcing the cleanup: *" STAMP "*");
  report = stagehand_autocleanup (sysroot, force, NULL, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_true (stagehand_cleanup_report_get_performed (report));
  g_assert_null (stagehand_cleanup_report_get_stamp (report));
  g_assert_true (stagehand_cleanup_report_get_stamp_removed (report));
  g_assert_false (g_file_test (STAMP, G_FILE_TEST_EXISTS));
}

/* Boot 2: an update agent holds the sysroot lock. */
static void
test_cycle_locked (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) holder = load_sysroot ();
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandCleanupOptions) options = stagehand_cleanup_options_new ();
  g_autoptr(StagehandCleanupReport) report = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gint64 start;

  write_file (STAMP, "");
  ostree_sysroot_lock (holder, &error);
  g_assert_no_error (error);
  stagehand_cleanup_options_set_lock_timeout (options, 300);
  start = g_get_monotonic_time ();
  g_assert_null (stagehand_autocleanup (sysroot, options, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_LOCKED);
  g_assert_nonnull (strstr (error->message, "locked by another process"));
  g_clear_error (&error);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * 1000);
  g_assert_true (g_file_test (STAMP, G_FILE_TEST_EXISTS));

  stagehand_cleanup_options_set_lock_timeout (options, 60 * 1000);
  g_cancellable_cancel (cancellable);
  g_assert_null (stagehand_autocleanup (sysroot, options, cancellable, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (g_file_test (STAMP, G_FILE_TEST_EXISTS));

  /* Released: the cleanup runs, and gives the lock back. */
  ostree_sysroot_unlock (holder);
  report = stagehand_autocleanup (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_cleanup_report_get_performed (report));
  g_assert_false (g_file_test (STAMP, G_FILE_TEST_EXISTS));
  {
    gboolean acquired = FALSE;
    g_assert_true (ostree_sysroot_try_lock (holder, &acquired, &error));
    g_assert_no_error (error);
    g_assert_true (acquired);
    ostree_sysroot_unlock (holder);
  }
}

/* -------------------------------------------------------- not booted ---- */

static void
test_deploy_not_booted (void)
{
  g_autoptr(GError) error = NULL;
  OstreeSysroot *sysroot = load_and_lock ();
  const char *v2 = env ("STAGEHAND_TEST_COMMIT_2_0");
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (v2);
  g_autoptr(StagehandStageResult) result = NULL;
  g_autoptr(StagehandStageResult) again = NULL;
  g_autoptr(StagehandStatus) status = NULL;
  g_autofree char *cli = NULL;
  const StagehandDeploymentStatus *d;
  const char *replace[] = { "root=LABEL=new", "console=ttyS0", NULL };

  stagehand_stage_options_set_kargs_replace (options, replace);
  result = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_stage_result_get_method (result), ==, STAGEHAND_STAGE_METHOD_DEPLOYED);
  g_assert_false (stagehand_stage_result_get_unchanged (result));
  g_assert_false (stagehand_stage_result_get_finalization_locked (result));

  /* Deployed fully: the CLI lists it first, and its boot entry has the kargs. */
  cli = ostree_admin_status ();
  g_assert_nonnull (strstr (cli, v2));
  g_assert_null (strstr (cli, "(staged)"));
  status = stagehand_status (sysroot, NULL, &error);
  g_assert_no_error (error);
  d = stagehand_status_get_deployment (status, 0);
  g_assert_cmpstr (stagehand_deployment_status_get_checksum (d), ==, v2);
  g_assert_false (stagehand_deployment_status_get_staged (d));
  g_assert_false (stagehand_deployment_status_get_booted (d));
  {
    g_autoptr(GPtrArray) deployments = ostree_sysroot_get_deployments (sysroot);
    OstreeDeployment *first = deployments->pdata[0];
    const char *kargs = ostree_bootconfig_parser_get (ostree_deployment_get_bootconfig (first), "options");
    g_assert_nonnull (strstr (kargs, "root=LABEL=new console=ttyS0"));
  }

  again = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_stage_result_get_unchanged (again));

  /* Finalization locking needs the booted system, and so do the shutdown
   * steps of the cleanup stamp, which belong to the running system. */
  g_assert_false (stagehand_lock_finalization (sysroot, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_BOOTED);
  g_clear_error (&error);
  g_assert_false (stagehand_record_staged (sysroot, NULL, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_BOOTED);
  g_clear_error (&error);
  g_assert_null (stagehand_record_finalized (sysroot, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_BOOTED);
  g_clear_error (&error);
  unlock_and_free (sysroot);
}

static void
test_cleanup_not_booted (void)
{
  /* The cleanup itself works on any sysroot: its stamp is SYSROOT/.cleanup. */
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandCleanupStamp) stamp = NULL;
  g_autoptr(StagehandCleanupReport) report = NULL;
  g_autofree char *stamp_path = stagehand_dup_cleanup_stamp_path (sysroot);
  g_autofree char *expected = g_build_filename (env ("STAGEHAND_TEST_SYSROOT"), ".cleanup", NULL);

  g_assert_cmpstr (stamp_path, ==, expected);
  write_file (stamp_path, "");
  g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (stamp), ==, STAGEHAND_CLEANUP_STAMP_KIND_LEGACY);
  report = stagehand_autocleanup (sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_cleanup_report_get_performed (report));
  g_assert_true (stagehand_cleanup_report_get_stamp_removed (report));
  g_assert_false (g_file_test (stamp_path, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  const char *boots = g_getenv ("STAGEHAND_TEST_BOOTS");

  g_test_init (&argc, &argv, NULL);
  if (booted () && boots != NULL && !g_str_equal (boots, "1"))
    {
      /* The cleanup stamp's cycle needs the reboot between its halves. */
      if (g_str_equal (env ("STAGEHAND_TEST_BOOT"), "1"))
        {
          g_test_add_func ("/stagehand/cleanup-cycle/boot1/outcomes", test_cycle_outcomes);
          g_test_add_func ("/stagehand/cleanup-cycle/boot1/shutdown", test_cycle_shutdown);
        }
      else
        {
          g_test_add_func ("/stagehand/cleanup-cycle/boot2/autocleanup", test_cycle_autocleanup);
          g_test_add_func ("/stagehand/cleanup-cycle/boot2/other-stamps", test_cycle_other_stamps);
          g_test_add_func ("/stagehand/cleanup-cycle/boot2/locked", test_cycle_locked);
        }
    }
  else if (booted ())
    {
      g_test_add_func ("/stagehand/booted/stage-status-unstage", test_stage_status_unstage);
      g_test_add_func ("/stagehand/booted/finalization-lock", test_finalization_lock);
      g_test_add_func ("/stagehand/booted/stage-errors", test_stage_errors);
      g_test_add_func ("/stagehand/booted/sysroot-lock", test_sysroot_lock);
      g_test_add_func ("/stagehand/booted/not-locked", test_not_locked);
      g_test_add_func ("/stagehand/booted/guard/cycle", test_guard_cycle);
      g_test_add_func ("/stagehand/booted/guard/interrupted", test_guard_interrupted);
      g_test_add_func ("/stagehand/booted/guard/errors", test_guard_errors);
      g_test_add_func ("/stagehand/booted/hooks", test_hooks);
      g_test_add_func ("/stagehand/booted/health", test_health);
    }
  else
    {
      g_test_add_func ("/stagehand/not-booted/deploy", test_deploy_not_booted);
      g_test_add_func ("/stagehand/not-booted/cleanup", test_cleanup_not_booted);
      g_test_add_func ("/stagehand/not-booted/not-locked", test_not_locked);
    }
  return g_test_run ();
}
