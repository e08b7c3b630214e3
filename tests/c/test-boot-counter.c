/* Boot assessment with a boot counter through the C API
 * (stagehand_boot_assessment_*), the way an update daemon that runs its own
 * boot check uses it: a GRUB environment block made by the real
 * `grub-editenv create`, read back with `grub-editenv list` after every
 * change, and GRUB's boot counting deciding which deployment each boot
 * boots (`stagehand-testbed run --grubenv`, the library's model of
 * data/grub/08_stagehand-boot-counting, checked against real GRUB in
 * rust/cli/tests/bootloader.rs).
 *
 * Without STAGEHAND_TEST_BOOTED (boot-counter-api in meson.build): the
 * programmer errors (criticals) and the configuration's errors, on a
 * sysroot that does not exist.
 *
 * Booted (boot-counter-booted: 1.0 deployed, 2.0, 3.0 and 4.0 to stage,
 * five boots, tries = 1):
 *   boot 1 (1.0)        stage 2.0, the real finalize-staged, the stamp, arm:
 *                       counting, boot_counter=1 boot_success=0
 *   boot 2 (2.0)        GRUB counted the try; assess sees the trial, mark-good
 *                       blesses (boot_counter unset, boot_success=1); stage
 *                       3.0, finalize, arm
 *   boot 3 (3.0)        GRUB counted its last try; the boot "dies" before
 *                       userspace (nothing runs but a look at the counter)
 *   boot 4 (2.0)        GRUB fell back: assess sees the fallback, 3.0 is
 *                       failed and denylisted, the exhausted counter
 *                       disarmed; then stage 4.0, finalize, arm
 *   boot 5 (4.0)        assess sees the trial; the daemon's check fails:
 *                       mark-bad rolls back and disarms the counter
 */
#include <stagehand.h>
#include <glib/gstdio.h>

#define GRUBENV "/boot/grub/grubenv"
/* /var carries over from boot to boot; /tmp does not. */
#define CONFIG "/var/tmp/stagehand-boot-counter.conf"

#define CRITICAL(fn, expr) \
  g_test_expect_message ("stagehand", G_LOG_LEVEL_CRITICAL, fn ": assertion '" expr "' failed")

/* GTest makes warnings fatal; a fallback and a mark-bad warn on purpose.
 * The test records the stagehand domain's warnings around such a call and
 * checks the one it is about is among them. Criticals stay fatal. */
typedef struct
{
  GPtrArray *messages;
  guint handler;
} Warnings;

static gboolean
stagehand_warnings_not_fatal (const char *log_domain, GLogLevelFlags log_level,
                              const char *message G_GNUC_UNUSED, gpointer user_data G_GNUC_UNUSED)
{
  return !(g_strcmp0 (log_domain, "stagehand") == 0 && (log_level & G_LOG_LEVEL_WARNING) != 0);
}

static void
record_warning (const char *log_domain G_GNUC_UNUSED, GLogLevelFlags log_level G_GNUC_UNUSED,
                const char *message, gpointer user_data)
{
  Warnings *w = user_data;

  g_ptr_array_add (w->messages, g_strdup (message));
}

static void
warnings_start (Warnings *w)
{
  w->messages = g_ptr_array_new_with_free_func (g_free);
  g_test_log_set_fatal_handler (stagehand_warnings_not_fatal, NULL);
  /* The handler's mask must cover the flags too: under GTest, warnings carry G_LOG_FLAG_FATAL. */
  w->handler = g_log_set_handler ("stagehand", G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL, record_warning, w);
}

/* Stop recording; fail unless a warning matched PATTERN (a glob). */
static void
warnings_finish (Warnings *w, const char *pattern)
{
  gboolean seen = FALSE;
  g_autoptr(GString) all = g_string_new (NULL);

  g_log_remove_handler ("stagehand", w->handler);
  g_test_log_set_fatal_handler (NULL, NULL);
  for (guint i = 0; i < w->messages->len; i++)
    {
      const char *m = w->messages->pdata[i];
      seen = seen || g_pattern_match_simple (pattern, m);
      g_string_append_printf (all, "  %s\n", m);
    }
  g_clear_pointer (&w->messages, g_ptr_array_unref);
  if (!seen)
    g_error ("no warning \"%s\" in the stagehand domain; logged:\n%s", pattern, all->str);
}

static const char *
env (const char *name)
{
  const char *v = g_getenv (name);
  if (v == NULL || *v == '\0')
    g_error ("%s is not set: run this test with stagehand-testbed run --grubenv " GRUBENV, name);
  return v;
}

static guint
boot (void)
{
  return (guint) g_ascii_strtoull (env ("STAGEHAND_TEST_BOOT"), NULL, 10);
}

static char *
id_of (const char *version_var)
{
  return g_strdup_printf ("%s:%s.0", env ("STAGEHAND_TEST_STATEROOT"), env (version_var));
}

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

static void
lock (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;

  ostree_sysroot_lock (sysroot, &error);
  g_assert_no_error (error);
}

static StagehandBootAssessment *
assessment_for (OstreeSysroot *sysroot)
{
  g_autoptr(GError) error = NULL;
  StagehandBootAssessment *ba = stagehand_boot_assessment_new (sysroot, CONFIG, &error);

  g_assert_no_error (error);
  g_assert_nonnull (ba);
  g_assert_cmpstr (stagehand_boot_assessment_get_backend (ba), ==, "grubenv");
  g_assert_cmpstr (stagehand_boot_assessment_get_reason (ba), ==, "configured (backend=grubenv)");
  g_assert_cmpstr (stagehand_boot_assessment_get_config_path (ba), ==, CONFIG);
  g_assert_cmpuint (stagehand_boot_assessment_get_tries (ba), ==, 1);
  return ba;
}

/* Run a command; fail the test unless it exits with 0. Returns its stdout. */
static char *
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
  return g_steal_pointer (&out);
}

/* The value of NAME in the block as the real `grub-editenv list` reads it,
 * NULL when it is not set. */
static char *
grubenv_var (const char *name)
{
  const char *argv[] = { "grub-editenv", GRUBENV, "list", NULL };
  g_autofree char *out = spawn_ok (argv);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autofree char *prefix = g_strconcat (name, "=", NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_strdup (lines[i] + strlen (prefix));
  return NULL;
}

static void
assert_grubenv (const char *counter, const char *success)
{
  g_autofree char *c = grubenv_var ("boot_counter");
  g_autofree char *s = grubenv_var ("boot_success");

  g_assert_cmpstr (c, ==, counter);
  g_assert_cmpstr (s, ==, success);
}

static StagehandCounterState
counter_state (StagehandBootAssessment *ba, OstreeSysroot *sysroot, const char *id, guint *left)
{
  g_autoptr(GError) error = NULL;
  StagehandCounterState state = STAGEHAND_COUNTER_STATE_NO_COUNTER;
  int done = 0;

  g_assert_true (stagehand_boot_assessment_query_counter (ba, sysroot, id, &state, left, &done,
                                                          NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (done, ==, -1); /* the GRUB environment block records no count of boots */
  return state;
}

static gboolean
strv_contains (const char *const *strv, const char *s)
{
  g_assert_nonnull (strv);
  return g_strv_contains (strv, s);
}

/* Stage VERSION's commit, then what systemd runs at shutdown: stagehand's
 * record step, the real `ostree admin finalize-staged`, the cleanup stamp,
 * and the counter armed for the finalized deployment, as the drop-in for
 * ostree-finalize-staged.service does. Returns the finalized deployment. */
static char *
stage_finalize_arm (StagehandBootAssessment *ba, OstreeSysroot *sysroot, const char *version_var,
                    const char *success_before)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (env (version_var));
  g_autoptr(StagehandStageResult) staged = NULL;
  g_autoptr(StagehandFinalizeResult) finalized = NULL;
  g_autoptr(StagehandArmResult) early = NULL;
  g_autoptr(StagehandArmResult) armed = NULL;
  g_autofree char *id = NULL;
  g_autofree char *recorded = NULL;
  const char *finalize[] = { "ostree", "admin", "finalize-staged", NULL };
  g_autofree char *finalize_out = NULL;
  guint left = 99;

  lock (sysroot);
  staged = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_no_error (error);
  id = stagehand_stage_result_dup_id (staged);
  /* Arming at staging is refused as an outcome: a staged deployment that is
   * never finalized must not leave a counter. */
  early = stagehand_boot_assessment_arm_finalized (ba, sysroot, id, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (stagehand_arm_result_get_armed (early));
  g_assert_cmpuint (stagehand_arm_result_get_tries (early), ==, 0);
  g_assert_nonnull (strstr (stagehand_arm_result_get_reason (early), "not the default deployment"));
  ostree_sysroot_unlock (sysroot);
  assert_grubenv (NULL, success_before);

  g_assert_true (stagehand_record_staged (sysroot, &recorded, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (recorded, ==, id);
  finalize_out = spawn_ok (finalize);

  lock (sysroot);
  finalized = stagehand_record_finalized (sysroot, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_finalize_result_get_outcome (finalized), ==, STAGEHAND_FINALIZE_OUTCOME_STAMPED);
  g_assert_cmpstr (stagehand_finalize_result_get_deployment (finalized), ==, id);
  armed = stagehand_boot_assessment_arm_finalized (ba, sysroot,
                                                   stagehand_finalize_result_get_deployment (finalized),
                                                   NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_arm_result_get_armed (armed));
  g_assert_cmpstr (stagehand_arm_result_get_deployment (armed), ==, id);
  g_assert_cmpuint (stagehand_arm_result_get_tries (armed), ==, 1);
  g_assert_null (stagehand_arm_result_get_reason (armed));
  ostree_sysroot_unlock (sysroot);

  /* Counting: the counter of the default (NULL) and of the deployment by
   * name is the block's one counter; GRUB reads what grub-editenv reads. */
  g_assert_cmpint (counter_state (ba, sysroot, NULL, &left), ==, STAGEHAND_COUNTER_STATE_COUNTING);
  g_assert_cmpuint (left, ==, 1);
  g_assert_cmpint (counter_state (ba, sysroot, id, NULL), ==, STAGEHAND_COUNTER_STATE_COUNTING);
  assert_grubenv ("1", "0");
  return g_steal_pointer (&id);
}

/* Boot 1, into 1.0: the block, the configuration, the first trial armed. */
static void
test_boot1_arm (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandBootAssessment) ba = NULL;
  g_autoptr(StagehandArmResult) other = NULL;
  g_autofree char *v1 = id_of ("STAGEHAND_TEST_COMMIT_1_0");
  g_autofree char *v2 = NULL;
  g_autofree char *expected_v2 = id_of ("STAGEHAND_TEST_COMMIT_2_0");
  const char *create[] = { "grub-editenv", GRUBENV, "create", NULL };
  g_autofree char *created = NULL;
  guint left = 99;

  g_assert_null (g_getenv ("STAGEHAND_TEST_GRUB_CHOICE")); /* no block yet: GRUB boots the default */
  g_assert_cmpint (g_mkdir_with_parents ("/boot/grub", 0755), ==, 0);
  created = spawn_ok (create);
  g_assert_true (g_file_set_contents (CONFIG,
                                      "[bootloader]\nbackend = grubenv\ngrubenv = " GRUBENV "\ntries = 1\n",
                                      -1, &error));
  g_assert_no_error (error);

  ba = assessment_for (sysroot);
  g_assert_cmpint (counter_state (ba, sysroot, NULL, &left), ==, STAGEHAND_COUNTER_STATE_NOT_ARMED);
  g_assert_cmpuint (left, ==, 0);
  assert_grubenv (NULL, NULL);

  /* Every state-changing call needs the caller's sysroot lock: without it,
   * NOT_LOCKED naming the function, and nothing written. */
  {
    g_autoptr(StagehandBootAssessResult) assessed = stagehand_boot_assessment_assess (ba, sysroot, NULL, NULL, &error);
    g_assert_null (assessed);
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_LOCKED);
    g_assert_nonnull (strstr (error->message, "stagehand_boot_assessment_assess"));
    g_clear_error (&error);
    g_assert_null (stagehand_boot_assessment_mark_good (ba, sysroot, NULL, NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_LOCKED);
    g_clear_error (&error);
    g_assert_null (stagehand_boot_assessment_mark_bad (ba, sysroot, NULL, NULL, NULL, NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_LOCKED);
    g_clear_error (&error);
    g_assert_null (stagehand_boot_assessment_deadline (ba, sysroot, NULL, NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_LOCKED);
    g_clear_error (&error);
    g_assert_null (stagehand_boot_assessment_arm_finalized (ba, sysroot, v1, NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_LOCKED);
    g_clear_error (&error);
    assert_grubenv (NULL, NULL);
  }

  /* Deployments that do not exist, or are not named as one. */
  {
    StagehandCounterState state = STAGEHAND_COUNTER_STATE_NO_COUNTER;

    g_assert_false (stagehand_boot_assessment_query_counter (ba, sysroot, "0123abcd", &state, NULL, NULL,
                                                             NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT);
    g_clear_error (&error);
    g_assert_false (stagehand_boot_assessment_query_counter (ba, sysroot, "not-a-checksum", &state, NULL, NULL,
                                                             NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    lock (sysroot);
    g_assert_null (stagehand_boot_assessment_arm_finalized (ba, sysroot, "0123abcd", NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT);
    g_clear_error (&error);
    ostree_sysroot_unlock (sysroot);
    assert_grubenv (NULL, NULL);
  }

  v2 = stage_finalize_arm (ba, sysroot, "STAGEHAND_TEST_COMMIT_2_0", NULL);
  g_assert_cmpstr (v2, ==, expected_v2);

  /* 1.0 is no longer the default: nothing to arm for it. */
  lock (sysroot);
  other = stagehand_boot_assessment_arm_finalized (ba, sysroot, v1, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (stagehand_arm_result_get_armed (other));
  g_assert_cmpstr (stagehand_arm_result_get_deployment (other), ==, v1);
  ostree_sysroot_unlock (sysroot);
  assert_grubenv ("1", "0");
}

/* Boot 2, into 2.0 on its one try: assessment sees the trial, mark-good
 * blesses; then the next update, 3.0, is armed. */
static void
test_boot2_bless (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandBootAssessment) ba = assessment_for (sysroot);
  g_autoptr(StagehandBootAssessResult) assessed = NULL;
  g_autoptr(StagehandBootMarkGoodResult) good = NULL;
  g_autoptr(StagehandBootMarkGoodResult) again = NULL;
  g_autoptr(StagehandBootDeadlineResult) deadline = NULL;
  g_autofree char *v1 = id_of ("STAGEHAND_TEST_COMMIT_1_0");
  g_autofree char *v2 = id_of ("STAGEHAND_TEST_COMMIT_2_0");
  g_autofree char *v3 = NULL;
  const StagehandVerdict *verdict;
  guint left = 99;
  guint64 remaining = 0;

  g_assert_cmpstr (env ("STAGEHAND_TEST_GRUB_CHOICE"), ==, "default");
  g_assert_cmpstr (env ("STAGEHAND_TEST_BOOTED_COMMIT"), ==, env ("STAGEHAND_TEST_COMMIT_2_0"));
  /* GRUB took the try: this boot is the last one before a fallback. */
  assert_grubenv ("0", "0");
  g_assert_cmpint (counter_state (ba, sysroot, NULL, &left), ==, STAGEHAND_COUNTER_STATE_COUNTING);
  g_assert_cmpuint (left, ==, 0);

  lock (sysroot);
  assessed = stagehand_boot_assessment_assess (ba, sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  verdict = stagehand_boot_assess_result_get_verdict (assessed);
  g_assert_cmpstr (stagehand_verdict_get_booted (verdict), ==, v2);
  g_assert_cmpint (stagehand_verdict_get_outcome (verdict), ==, STAGEHAND_ASSESS_OUTCOME_ON_TRIAL);
  g_assert_true (stagehand_verdict_get_counted (verdict));
  g_assert_cmpint (stagehand_boot_assess_result_get_counter_evidence (assessed), ==,
                   STAGEHAND_COUNTER_EVIDENCE_ON_TRIAL);
  g_assert_cmpuint (stagehand_boot_assess_result_get_tries_left (assessed), ==, 0);
  g_assert_null (stagehand_boot_assess_result_get_counter_error (assessed));
  g_assert_cmpuint (g_strv_length ((char **) stagehand_boot_assess_result_get_disarmed (assessed)), ==, 0);
  /* Assessment leaves the counter of the deployment on trial running. */
  assert_grubenv ("0", "0");
  /* The trial is open: its pin on 1.0 is needed, nothing to release. */
  g_assert_false (stagehand_verdict_get_retention_pending (verdict));

  /* The deadline is the caller's to keep: the configured default is 10
   * minutes after boot, and this boot is younger. */
  g_assert_cmpuint (stagehand_boot_assessment_get_health_deadline (ba), ==, 600);
  g_assert_true (stagehand_boot_assessment_get_time_remaining (ba, &remaining, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (remaining, <=, 600 * 1000);

  good = stagehand_boot_assessment_mark_good (ba, sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (stagehand_boot_mark_good_result_get_blessed (good));
  g_assert_cmpstr (stagehand_mark_good_result_get_deployment (stagehand_boot_mark_good_result_get_outcome (good)),
                   ==, v2);
  g_assert_cmpint (stagehand_mark_good_result_get_previous (stagehand_boot_mark_good_result_get_outcome (good)),
                   ==, STAGEHAND_HEALTH_STATE_FAILED /* on trial */);
  /* The trial ended; mark-good left its pin on 1.0 for the cleanup. */
  g_assert_true (stagehand_mark_good_result_get_retention_pending (stagehand_boot_mark_good_result_get_outcome (good)));
  /* Blessed, as GRUB's snippet and greenboot expect. */
  assert_grubenv (NULL, "1");
  g_assert_cmpint (counter_state (ba, sysroot, NULL, NULL), ==, STAGEHAND_COUNTER_STATE_NOT_ARMED);

  /* Idempotent: nothing left to bless. */
  again = stagehand_boot_assessment_mark_good (ba, sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (stagehand_boot_mark_good_result_get_blessed (again));
  g_assert_true (stagehand_mark_good_result_get_retention_pending (stagehand_boot_mark_good_result_get_outcome (again)));

  /* Good, so the deadline has nothing to do. */
  deadline = stagehand_boot_assessment_deadline (ba, sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (stagehand_boot_deadline_result_get_missed (deadline));
  g_assert_cmpstr (stagehand_boot_deadline_result_get_booted (deadline), ==, v2);
  g_assert_null (stagehand_boot_deadline_result_get_mark_bad (deadline));

  /* A daemon that ships no systemd units learns from the verdict too that
   * the cleanup is due, however often it assesses... */
  {
    g_autoptr(StagehandVerdict) pending = stagehand_assess (sysroot, STAGEHAND_BOOT_EVIDENCE_UNKNOWN, 0,
                                                            NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (stagehand_verdict_get_outcome (pending), ==, STAGEHAND_ASSESS_OUTCOME_GOOD);
    g_assert_false (stagehand_verdict_get_counted (pending));
    g_assert_true (stagehand_verdict_get_retention_pending (pending));
  }
  ostree_sysroot_unlock (sysroot);
  /* ...and calls stagehand_autocleanup(), whose report names the pin it
   * released (mark-good itself releases none). stagehand_status() says so
   * without the lock. */
  {
    g_autoptr(StagehandStatus) before = stagehand_status (sysroot, NULL, &error);
    g_autoptr(StagehandStatus) after = NULL;
    g_autoptr(StagehandCleanupReport) report = NULL;
    g_autoptr(StagehandVerdict) done = NULL;
    const char *const *released;

    /* The cleanup also prunes after boot 1's finalization; 3.0, staged
     * next, is only in its branch's history (the ref is at 4.0), so a ref
     * of its own keeps it, as a daemon's pulled update would be kept. */
    const char *keep[] = { "ostree", "refs", "--repo=/sysroot/ostree/repo", "--create=test/keep-3.0",
                           env ("STAGEHAND_TEST_COMMIT_3_0"), NULL };

    g_assert_no_error (error);
    g_assert_true (stagehand_status_get_retention_pending (before));
    g_free (spawn_ok (keep));
    report = stagehand_autocleanup (sysroot, NULL, NULL, &error);
    g_assert_no_error (error);
    after = stagehand_status (sysroot, NULL, &error);
    g_assert_no_error (error);
    g_assert_false (stagehand_status_get_retention_pending (after));
    released = stagehand_cleanup_report_get_released_pins (report);
    g_assert_cmpuint (g_strv_length ((char **) released), ==, 1);
    g_assert_cmpstr (released[0], ==, v1);
    lock (sysroot);
    done = stagehand_assess (sysroot, STAGEHAND_BOOT_EVIDENCE_UNKNOWN, 0, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_false (stagehand_verdict_get_retention_pending (done));
    ostree_sysroot_unlock (sysroot);
  }

  v3 = stage_finalize_arm (ba, sysroot, "STAGEHAND_TEST_COMMIT_3_0", "1");
}

/* Boot 3, into 3.0 on its one try, which "never reaches userspace": only a
 * look at what GRUB did. */
static void
test_boot3_dies (void)
{
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandBootAssessment) ba = assessment_for (sysroot);
  guint left = 99;

  g_assert_cmpstr (env ("STAGEHAND_TEST_GRUB_CHOICE"), ==, "default");
  g_assert_cmpstr (env ("STAGEHAND_TEST_BOOTED_COMMIT"), ==, env ("STAGEHAND_TEST_COMMIT_3_0"));
  assert_grubenv ("0", "0");
  g_assert_cmpint (counter_state (ba, sysroot, NULL, &left), ==, STAGEHAND_COUNTER_STATE_COUNTING);
  g_assert_cmpuint (left, ==, 0);
}

/* Boot 4: GRUB fell back to 2.0. Assessment takes the counter's evidence:
 * 3.0 failed to boot; then the next update, 4.0, is armed. */
static void
test_boot4_fallback (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandBootAssessment) ba = assessment_for (sysroot);
  g_autoptr(StagehandBootAssessResult) assessed = NULL;
  g_autofree char *v2 = id_of ("STAGEHAND_TEST_COMMIT_2_0");
  g_autofree char *v3 = id_of ("STAGEHAND_TEST_COMMIT_3_0");
  g_autofree char *v4 = NULL;
  g_autofree char *expected_v4 = id_of ("STAGEHAND_TEST_COMMIT_4_0");
  const StagehandVerdict *verdict;
  Warnings warnings;

  g_assert_cmpstr (env ("STAGEHAND_TEST_GRUB_CHOICE"), ==, "fallback");
  g_assert_cmpstr (env ("STAGEHAND_TEST_BOOTED_COMMIT"), ==, env ("STAGEHAND_TEST_COMMIT_2_0"));
  assert_grubenv ("-1", "0");
  g_assert_cmpint (counter_state (ba, sysroot, NULL, NULL), ==, STAGEHAND_COUNTER_STATE_EXHAUSTED);

  lock (sysroot);
  warnings_start (&warnings);
  assessed = stagehand_boot_assessment_assess (ba, sysroot, NULL, NULL, &error);
  warnings_finish (&warnings, "*did not boot: the bootloader fell back to*");
  g_assert_no_error (error);
  verdict = stagehand_boot_assess_result_get_verdict (assessed);
  g_assert_cmpint (stagehand_boot_assess_result_get_counter_evidence (assessed), ==,
                   STAGEHAND_COUNTER_EVIDENCE_BOOTLOADER_FALLBACK);
  g_assert_cmpuint (stagehand_boot_assess_result_get_fallback_tries (assessed), ==, 0); /* grubenv does not record it */
  g_assert_cmpint (stagehand_verdict_get_outcome (verdict), ==, STAGEHAND_ASSESS_OUTCOME_FELL_BACK);
  g_assert_cmpstr (stagehand_verdict_get_booted (verdict), ==, v2);
  g_assert_true (strv_contains (stagehand_verdict_get_failed (verdict), v3));
  g_assert_cmpstr (stagehand_verdict_get_default (verdict), ==, v2);
  /* The fallback ended 3.0's trial; its pins wait for the cleanup. */
  g_assert_true (stagehand_verdict_get_retention_pending (verdict));
  /* The exhausted counter is stopped, so the rolled-back default boots and
   * GRUB does not fall back into 3.0 (now the fallback entry) for ever. */
  g_assert_cmpuint (g_strv_length ((char **) stagehand_boot_assess_result_get_disarmed (assessed)), ==, 1);
  g_assert_null (grubenv_var ("boot_counter"));
  g_assert_cmpint (counter_state (ba, sysroot, NULL, NULL), ==, STAGEHAND_COUNTER_STATE_NOT_ARMED);
  ostree_sysroot_unlock (sysroot);

  /* 3.0 is on the denylist: staging it again is refused. */
  {
    g_autoptr(GError) denied = NULL;
    g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (env ("STAGEHAND_TEST_COMMIT_3_0"));
    g_autoptr(StagehandStageResult) staged = NULL;

    lock (sysroot);
    staged = stagehand_stage (sysroot, options, NULL, &denied);
    g_assert_error (denied, STAGEHAND_ERROR, STAGEHAND_ERROR_DENYLISTED);
    g_assert_null (staged);
    ostree_sysroot_unlock (sysroot);
  }

  /* The next update, armed at finalize. */
  v4 = stage_finalize_arm (ba, sysroot, "STAGEHAND_TEST_COMMIT_4_0", "0" /* disarming left boot_success as arming set it */);
  g_assert_cmpstr (v4, ==, expected_v4);
}

/* Boot 5, into 4.0 on its one try: assessment sees the trial, then the
 * daemon's check fails: mark-bad rolls back to 2.0 and stops the counter, so
 * GRUB boots the rollback instead of counting down into the failed entry. */
static void
test_boot5_mark_bad_disarms (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = load_sysroot ();
  g_autoptr(StagehandBootAssessment) ba = assessment_for (sysroot);
  g_autoptr(StagehandBootAssessResult) assessed = NULL;
  g_autoptr(StagehandBootMarkBadResult) bad = NULL;
  g_autofree char *v2 = id_of ("STAGEHAND_TEST_COMMIT_2_0");
  g_autofree char *v4 = id_of ("STAGEHAND_TEST_COMMIT_4_0");
  const StagehandMarkBadResult *outcome;
  Warnings warnings;

  g_assert_cmpstr (env ("STAGEHAND_TEST_GRUB_CHOICE"), ==, "default");
  g_assert_cmpstr (env ("STAGEHAND_TEST_BOOTED_COMMIT"), ==, env ("STAGEHAND_TEST_COMMIT_4_0"));
  assert_grubenv ("0", "0");

  lock (sysroot);
  assessed = stagehand_boot_assessment_assess (ba, sysroot, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_verdict_get_outcome (stagehand_boot_assess_result_get_verdict (assessed)), ==,
                   STAGEHAND_ASSESS_OUTCOME_ON_TRIAL);
  g_assert_cmpint (stagehand_boot_assess_result_get_counter_evidence (assessed), ==,
                   STAGEHAND_COUNTER_EVIDENCE_ON_TRIAL);
  assert_grubenv ("0", "0");

  warnings_start (&warnings);
  bad = stagehand_boot_assessment_mark_bad (ba, sysroot, NULL, "the daemon's check failed", NULL, NULL, &error);
  warnings_finish (&warnings, "marked * bad: the daemon's check failed; *");
  g_assert_no_error (error);
  outcome = stagehand_boot_mark_bad_result_get_outcome (bad);
  g_assert_cmpstr (stagehand_mark_bad_result_get_deployment (outcome), ==, v4);
  g_assert_cmpstr (stagehand_mark_bad_result_get_reason (outcome), ==, "the daemon's check failed");
  g_assert_cmpstr (stagehand_mark_bad_result_get_rolled_back_to (outcome), ==, v2);
  g_assert_cmpstr (stagehand_mark_bad_result_get_default (outcome), ==, v2);
  g_assert_true (stagehand_mark_bad_result_get_reboot_needed (outcome)); /* 4.0 runs */
  g_assert_false (stagehand_boot_mark_bad_result_get_reboot (bad)); /* auto-reboot is off */
  g_assert_cmpuint (g_strv_length ((char **) stagehand_boot_mark_bad_result_get_disarmed (bad)), ==, 1);
  ostree_sysroot_unlock (sysroot);
  assert_grubenv (NULL, "0");
  g_assert_cmpint (counter_state (ba, sysroot, NULL, NULL), ==, STAGEHAND_COUNTER_STATE_NOT_ARMED);
  g_assert_cmpint (counter_state (ba, sysroot, v4, NULL), ==, STAGEHAND_COUNTER_STATE_NOT_ARMED);
}

/* ------------------------------------------------------------ no sysroot */

static OstreeSysroot *
missing_sysroot (void)
{
  g_autoptr(GFile) path = g_file_new_for_path ("/nonexistent/stagehand-test-sysroot");
  return ostree_sysroot_new (path);
}

static char *
write_config (const char *content)
{
  g_autoptr(GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("stagehand-test-XXXXXX.conf", &path, &error);

  g_assert_no_error (error);
  g_close (fd, NULL);
  g_assert_true (g_file_set_contents (path, content, -1, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_config (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = missing_sysroot ();
  g_autofree char *none = write_config ("[bootloader]\nbackend = none\ntries = 4\n"
                                        "[health]\ndeadline = 2min\nauto-reboot = true\n");
  g_autofree char *bad = write_config ("[bootloader]\ntries = 99\n");
  g_autoptr(StagehandBootAssessment) ba = NULL;
  g_autoptr(StagehandBootAssessment) defaults = NULL;
  StagehandBootAssessment *refused;

  ba = stagehand_boot_assessment_new (sysroot, none, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_boot_assessment_get_backend (ba), ==, "none");
  g_assert_cmpstr (stagehand_boot_assessment_get_reason (ba), ==, "configured (backend=none)");
  g_assert_cmpstr (stagehand_boot_assessment_get_config_path (ba), ==, none);
  g_assert_cmpuint (stagehand_boot_assessment_get_tries (ba), ==, 4);
  g_assert_cmpuint (stagehand_boot_assessment_get_health_deadline (ba), ==, 120);
  g_assert_true (stagehand_boot_assessment_get_auto_reboot (ba));

  /* A missing file is the defaults, as for the stagehand command; auto
   * detection finds no counter in a sysroot without /boot. */
  defaults = stagehand_boot_assessment_new (sysroot, "/nonexistent/stagehand.conf", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stagehand_boot_assessment_get_backend (defaults), ==, "none");
  g_assert_null (stagehand_boot_assessment_get_config_path (defaults));
  g_assert_cmpuint (stagehand_boot_assessment_get_tries (defaults), ==, 3);
  g_assert_cmpuint (stagehand_boot_assessment_get_health_deadline (defaults), ==, 600);
  g_assert_false (stagehand_boot_assessment_get_auto_reboot (defaults));

  refused = stagehand_boot_assessment_new (sysroot, bad, &error);
  g_assert_null (refused);
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, bad));
  g_clear_error (&error);

  /* A sysroot that cannot be loaded is a runtime error naming it, never
   * libostree's abort on an unloaded sysroot. */
  {
    StagehandCounterState state = STAGEHAND_COUNTER_STATE_COUNTING;

    g_assert_false (stagehand_boot_assessment_query_counter (ba, sysroot, NULL, &state, NULL, NULL,
                                                             NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, "/nonexistent/stagehand-test-sysroot"));
    g_clear_error (&error);
    g_assert_cmpint (state, ==, STAGEHAND_COUNTER_STATE_COUNTING); /* untouched on failure */
  }

  g_unlink (none);
  g_unlink (bad);
}

static void
test_null_args (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OstreeSysroot) sysroot = missing_sysroot ();
  g_autofree char *conf = write_config ("[bootloader]\nbackend = none\n");
  g_autoptr(StagehandBootAssessment) ba = stagehand_boot_assessment_new (sysroot, conf, &error);
  GCancellable *not_cancellable = (GCancellable *) (gpointer) sysroot;
  g_autoptr(GCancellable) not_sysroot = g_cancellable_new ();
  StagehandCounterState state;
  guint64 ms = 0;

  g_assert_no_error (error);
  stagehand_boot_assessment_free (NULL);
  stagehand_boot_assess_result_free (NULL);
  stagehand_boot_mark_good_result_free (NULL);
  stagehand_boot_mark_bad_result_free (NULL);
  stagehand_boot_deadline_result_free (NULL);
  stagehand_arm_result_free (NULL);

  CRITICAL ("stagehand_boot_assessment_new", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_boot_assessment_new (NULL, conf, &error));
  CRITICAL ("stagehand_boot_assessment_new", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_boot_assessment_new ((OstreeSysroot *) (gpointer) not_sysroot, conf, &error));

  CRITICAL ("stagehand_boot_assessment_get_backend", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_get_backend (NULL));
  CRITICAL ("stagehand_boot_assessment_get_reason", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_get_reason (NULL));
  CRITICAL ("stagehand_boot_assessment_get_config_path", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_get_config_path (NULL));
  CRITICAL ("stagehand_boot_assessment_get_tries", "assessment != NULL");
  g_assert_cmpuint (stagehand_boot_assessment_get_tries (NULL), ==, 0);
  CRITICAL ("stagehand_boot_assessment_get_auto_reboot", "assessment != NULL");
  g_assert_false (stagehand_boot_assessment_get_auto_reboot (NULL));
  CRITICAL ("stagehand_boot_assessment_get_health_deadline", "assessment != NULL");
  g_assert_cmpuint (stagehand_boot_assessment_get_health_deadline (NULL), ==, 0);
  CRITICAL ("stagehand_boot_assessment_get_time_remaining", "assessment != NULL");
  g_assert_false (stagehand_boot_assessment_get_time_remaining (NULL, &ms, &error));
  CRITICAL ("stagehand_boot_assessment_get_time_remaining", "out_ms != NULL");
  g_assert_false (stagehand_boot_assessment_get_time_remaining (ba, NULL, &error));

  CRITICAL ("stagehand_boot_assessment_query_counter", "assessment != NULL");
  g_assert_false (stagehand_boot_assessment_query_counter (NULL, sysroot, NULL, &state, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_query_counter", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_boot_assessment_query_counter (ba, NULL, NULL, &state, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_query_counter", "deployment_id == NULL || g_utf8_validate (deployment_id, -1, NULL)");
  g_assert_false (stagehand_boot_assessment_query_counter (ba, sysroot, "\xff", &state, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_query_counter", "out_state != NULL");
  g_assert_false (stagehand_boot_assessment_query_counter (ba, sysroot, NULL, NULL, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_query_counter", "cancellable == NULL || G_IS_CANCELLABLE (cancellable)");
  g_assert_false (stagehand_boot_assessment_query_counter (ba, sysroot, NULL, &state, NULL, NULL, not_cancellable, &error));

  CRITICAL ("stagehand_boot_assessment_assess", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_assess (NULL, sysroot, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_assess", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_boot_assessment_assess (ba, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_assess", "cancellable == NULL || G_IS_CANCELLABLE (cancellable)");
  g_assert_null (stagehand_boot_assessment_assess (ba, sysroot, NULL, not_cancellable, &error));

  CRITICAL ("stagehand_boot_assessment_mark_good", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_mark_good (NULL, sysroot, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_mark_good", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_boot_assessment_mark_good (ba, NULL, NULL, NULL, &error));

  CRITICAL ("stagehand_boot_assessment_mark_bad", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_mark_bad (NULL, sysroot, NULL, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_mark_bad", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_boot_assessment_mark_bad (ba, NULL, NULL, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_mark_bad", "deployment_id == NULL || g_utf8_validate (deployment_id, -1, NULL)");
  g_assert_null (stagehand_boot_assessment_mark_bad (ba, sysroot, "\xff", NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_mark_bad", "reason == NULL || g_utf8_validate (reason, -1, NULL)");
  g_assert_null (stagehand_boot_assessment_mark_bad (ba, sysroot, NULL, "\xff", NULL, NULL, &error));

  CRITICAL ("stagehand_boot_assessment_deadline", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_deadline (NULL, sysroot, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_deadline", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_boot_assessment_deadline (ba, NULL, NULL, NULL, &error));

  CRITICAL ("stagehand_boot_assessment_arm_finalized", "assessment != NULL");
  g_assert_null (stagehand_boot_assessment_arm_finalized (NULL, sysroot, "abc", NULL, &error));
  CRITICAL ("stagehand_boot_assessment_arm_finalized", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_boot_assessment_arm_finalized (ba, NULL, "abc", NULL, &error));
  CRITICAL ("stagehand_boot_assessment_arm_finalized", "deployment_id != NULL");
  g_assert_null (stagehand_boot_assessment_arm_finalized (ba, sysroot, NULL, NULL, &error));
  CRITICAL ("stagehand_boot_assessment_arm_finalized", "g_utf8_validate (deployment_id, -1, NULL)");
  g_assert_null (stagehand_boot_assessment_arm_finalized (ba, sysroot, "\xff", NULL, &error));

  CRITICAL ("stagehand_boot_assess_result_get_verdict", "result != NULL");
  g_assert_null (stagehand_boot_assess_result_get_verdict (NULL));
  CRITICAL ("stagehand_boot_assess_result_get_counter_evidence", "result != NULL");
  g_assert_cmpint (stagehand_boot_assess_result_get_counter_evidence (NULL), ==, STAGEHAND_COUNTER_EVIDENCE_NONE);
  CRITICAL ("stagehand_boot_assess_result_get_disarmed", "result != NULL");
  g_assert_null (stagehand_boot_assess_result_get_disarmed (NULL));
  CRITICAL ("stagehand_boot_mark_good_result_get_blessed", "result != NULL");
  g_assert_false (stagehand_boot_mark_good_result_get_blessed (NULL));
  CRITICAL ("stagehand_boot_mark_bad_result_get_outcome", "result != NULL");
  g_assert_null (stagehand_boot_mark_bad_result_get_outcome (NULL));
  CRITICAL ("stagehand_boot_deadline_result_get_mark_bad", "result != NULL");
  g_assert_null (stagehand_boot_deadline_result_get_mark_bad (NULL));
  CRITICAL ("stagehand_arm_result_get_reason", "result != NULL");
  g_assert_null (stagehand_arm_result_get_reason (NULL));

  /* A precondition failure leaves the error unset. */
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_unlink (conf);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("STAGEHAND_TEST_BOOTED") == NULL)
    {
      g_test_add_func ("/stagehand/boot-counter/config", test_config);
      g_test_add_func ("/stagehand/boot-counter/null-args", test_null_args);
      return g_test_run ();
    }
  switch (boot ())
    {
    case 1:
      g_test_add_func ("/stagehand/boot-counter/boot1/arm-after-finalize", test_boot1_arm);
      break;
    case 2:
      g_test_add_func ("/stagehand/boot-counter/boot2/assess-trial-mark-good-blesses", test_boot2_bless);
      break;
    case 3:
      g_test_add_func ("/stagehand/boot-counter/boot3/last-try-dies", test_boot3_dies);
      break;
    case 4:
      g_test_add_func ("/stagehand/boot-counter/boot4/fallback-disarms", test_boot4_fallback);
      break;
    case 5:
      g_test_add_func ("/stagehand/boot-counter/boot5/mark-bad-disarms", test_boot5_mark_bad_disarms);
      break;
    default:
      g_error ("boot %u: this test runs in five boots", boot ());
    }
  return g_test_run ();
}
