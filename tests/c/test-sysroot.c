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
 */
#include <stagehand.h>

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
  g_test_expect_message ("stagehand", G_LOG_LEVEL_INFO, "pinned testos:*");
  g_test_expect_message ("stagehand", G_LOG_LEVEL_INFO, "staged testos:*");
  result = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  g_test_assert_expected_messages ();
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
  g_test_expect_message ("stagehand", G_LOG_LEVEL_INFO, "unstaged testos:*");
  g_assert_true (stagehand_unstage (sysroot, &unstaged, NULL, &error));
  g_assert_no_error (error);
  g_test_assert_expected_messages ();
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

  /* Finalization locking needs the booted system. */
  g_assert_false (stagehand_lock_finalization (sysroot, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_BOOTED);
  g_clear_error (&error);
  unlock_and_free (sysroot);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (booted ())
    {
      g_test_add_func ("/stagehand/booted/stage-status-unstage", test_stage_status_unstage);
      g_test_add_func ("/stagehand/booted/finalization-lock", test_finalization_lock);
      g_test_add_func ("/stagehand/booted/stage-errors", test_stage_errors);
      g_test_add_func ("/stagehand/booted/sysroot-lock", test_sysroot_lock);
    }
  else
    {
      g_test_add_func ("/stagehand/not-booted/deploy", test_deploy_not_booted);
    }
  return g_test_run ();
}
