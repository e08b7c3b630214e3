/* The C API without a real sysroot: the error domain and its codes, the
 * option builder, programmer errors (NULL or wrong objects where the API
 * does not allow them, which must be criticals and a failure value, never a
 * crash), and runtime errors on a sysroot that cannot be loaded.
 *
 * Needs no root; runs as a GTest program with TAP output.
 */
#include <stagehand.h>
#include <glib/gstdio.h>

#define CRITICAL(fn, expr) \
  g_test_expect_message ("stagehand", G_LOG_LEVEL_CRITICAL, fn ": assertion '" expr "' failed")

static OstreeSysroot *
unloaded_sysroot (void)
{
  g_autoptr(GFile) path = g_file_new_for_path ("/nonexistent/stagehand-test-sysroot");
  return ostree_sysroot_new (path);
}

static void
test_error_domain (void)
{
  g_assert_cmpuint (STAGEHAND_ERROR, !=, 0);
  g_assert_cmpuint (STAGEHAND_ERROR, ==, stagehand_error_quark ());
  g_assert_cmpstr (g_quark_to_string (STAGEHAND_ERROR), ==, "stagehand-error-quark");
}

static void
test_error_codes (void)
{
  /* The numbers are ABI (docs/errors.md); the Rust side checks the header
   * against stagehand::ErrorCode, this checks what a C compiler sees. */
  static const struct { StagehandError code; int number; } codes[] = {
    { STAGEHAND_ERROR_FAILED, 0 },
    { STAGEHAND_ERROR_INVALID_ARGUMENT, 1 },
    { STAGEHAND_ERROR_CANCELLED, 2 },
    { STAGEHAND_ERROR_IO, 3 },
    { STAGEHAND_ERROR_LOCKED, 4 },
    { STAGEHAND_ERROR_NOT_BOOTED, 5 },
    { STAGEHAND_ERROR_READ_ONLY, 6 },
    { STAGEHAND_ERROR_UNKNOWN_REVISION, 7 },
    { STAGEHAND_ERROR_UNKNOWN_STATEROOT, 8 },
    { STAGEHAND_ERROR_NOT_BOOTABLE, 9 },
    { STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT, 10 },
    { STAGEHAND_ERROR_HOOK_VETOED, 11 },
    { STAGEHAND_ERROR_HOOK_INVALID, 12 },
    { STAGEHAND_ERROR_DENYLISTED, 13 },
    { STAGEHAND_ERROR_CORRUPT, 14 },
    { STAGEHAND_ERROR_INTERRUPTED, 15 },
    { STAGEHAND_ERROR_ALREADY_COMPLETE, 16 },
    { STAGEHAND_ERROR_CONFIG_CHANGED, 17 },
    { STAGEHAND_ERROR_NO_KNOWN_GOOD, 18 },
    { STAGEHAND_ERROR_CONFIG, 19 },
    { STAGEHAND_ERROR_UNSUPPORTED, 20 },
    { STAGEHAND_ERROR_NOT_LOCKED, 21 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (codes); i++)
    g_assert_cmpint ((int) codes[i].code, ==, codes[i].number);
  g_assert_cmpint (STAGEHAND_STAGE_METHOD_STAGED, ==, 0);
  g_assert_cmpint (STAGEHAND_STAGE_METHOD_DEPLOYED, ==, 1);
  g_assert_cmpint (STAGEHAND_CLEANUP_STAMP_KIND_LEGACY, ==, 0);
  g_assert_cmpint (STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED, ==, 1);
  g_assert_cmpint (STAGEHAND_CLEANUP_STAMP_KIND_NEWER, ==, 2);
  g_assert_cmpint (STAGEHAND_FINALIZE_OUTCOME_STAMPED, ==, 0);
  g_assert_cmpint (STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED, ==, 1);
  g_assert_cmpint (STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED, ==, 2);
  g_assert_cmpint (STAGEHAND_FINALIZE_OUTCOME_FAILED, ==, 3);
  g_assert_cmpint (STAGEHAND_FINALIZE_OUTCOME_NOT_DEPLOYED, ==, 4);
  g_assert_cmpint (STAGEHAND_GUARD_PHASE_STARTED, ==, 0);
  g_assert_cmpint (STAGEHAND_GUARD_PHASE_COMPLETE, ==, 1);
}

static void
test_options_builder (void)
{
  const char *append[] = { "quiet", "console=ttyS0", NULL };
  const char *none[] = { NULL };
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new ("os/stable");

  g_assert_nonnull (options);
  /* Every setter, including the "back to the default" forms. */
  stagehand_stage_options_set_stateroot (options, "os");
  stagehand_stage_options_set_stateroot (options, NULL);
  stagehand_stage_options_set_origin_refspec (options, "remote:os/stable");
  stagehand_stage_options_set_origin_refspec (options, NULL);
  stagehand_stage_options_set_kargs_append (options, append);
  stagehand_stage_options_set_kargs_append (options, NULL);
  stagehand_stage_options_set_kargs_replace (options, none);
  stagehand_stage_options_set_lock_finalization (options, TRUE);
  stagehand_stage_options_set_hooks_enabled (options, FALSE);
  stagehand_stage_options_set_hook_timeout (options, 10);
  stagehand_stage_options_set_allow_denylisted (options, TRUE);
  stagehand_stage_options_set_keep_known_good (options, FALSE);

  /* _free accepts NULL, like g_free(). */
  stagehand_stage_options_free (NULL);
  stagehand_stage_result_free (NULL);
  stagehand_status_free (NULL);
  stagehand_cleanup_options_free (NULL);
  stagehand_cleanup_stamp_free (NULL);
  stagehand_cleanup_report_free (NULL);
  stagehand_finalize_result_free (NULL);
  stagehand_guard_token_free (NULL);
  stagehand_guard_stamp_free (NULL);
}

static void
test_cleanup_options_builder (void)
{
  g_autoptr(StagehandCleanupOptions) options = stagehand_cleanup_options_new ();

  g_assert_nonnull (options);
  stagehand_cleanup_options_set_lock_timeout (options, 0);
  stagehand_cleanup_options_set_lock_timeout (options, G_MAXUINT);
  stagehand_cleanup_options_set_force (options, TRUE);
  stagehand_cleanup_options_set_force (options, FALSE);
}

static void
test_options_null_args (void)
{
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new ("os/stable");
  const char *bad_utf8[] = { "quiet", "\xff\xfe", NULL };

  CRITICAL ("stagehand_stage_options_new", "revision != NULL");
  g_assert_null (stagehand_stage_options_new (NULL));
  CRITICAL ("stagehand_stage_options_new", "g_utf8_validate (revision, -1, NULL)");
  g_assert_null (stagehand_stage_options_new ("\xc3\x28"));
  CRITICAL ("stagehand_stage_options_set_stateroot", "options != NULL");
  stagehand_stage_options_set_stateroot (NULL, "os");
  CRITICAL ("stagehand_stage_options_set_origin_refspec", "options != NULL");
  stagehand_stage_options_set_origin_refspec (NULL, "os");
  CRITICAL ("stagehand_stage_options_set_kargs_append", "options != NULL");
  stagehand_stage_options_set_kargs_append (NULL, NULL);
  CRITICAL ("stagehand_stage_options_set_kargs_append", "g_utf8_validate (kargs[i], -1, NULL)");
  stagehand_stage_options_set_kargs_append (options, bad_utf8);
  CRITICAL ("stagehand_stage_options_set_kargs_replace", "kargs != NULL");
  stagehand_stage_options_set_kargs_replace (options, NULL);
  CRITICAL ("stagehand_stage_options_set_lock_finalization", "options != NULL");
  stagehand_stage_options_set_lock_finalization (NULL, TRUE);
  CRITICAL ("stagehand_stage_options_set_hooks_enabled", "options != NULL");
  stagehand_stage_options_set_hooks_enabled (NULL, TRUE);
  CRITICAL ("stagehand_stage_options_set_hook_timeout", "timeout_seconds > 0");
  stagehand_stage_options_set_hook_timeout (options, 0);
  CRITICAL ("stagehand_stage_options_set_allow_denylisted", "options != NULL");
  stagehand_stage_options_set_allow_denylisted (NULL, TRUE);
  CRITICAL ("stagehand_stage_options_set_keep_known_good", "options != NULL");
  stagehand_stage_options_set_keep_known_good (NULL, FALSE);
  g_test_assert_expected_messages ();
}

static void
test_stage_null_args (void)
{
  g_autoptr(OstreeSysroot) sysroot = unloaded_sysroot ();
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new ("os/stable");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) preset = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "set before");
  GError *preset_copy = preset;

  CRITICAL ("stagehand_stage", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_stage (NULL, options, NULL, &error));
  g_assert_no_error (error);

  /* Another GObject where a sysroot belongs: a critical, not a crash. */
  CRITICAL ("stagehand_stage", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_stage ((OstreeSysroot *) (gpointer) cancellable, options, NULL, &error));
  g_assert_no_error (error);

  CRITICAL ("stagehand_stage", "options != NULL");
  g_assert_null (stagehand_stage (sysroot, NULL, NULL, &error));
  g_assert_no_error (error);

  CRITICAL ("stagehand_stage", "cancellable == NULL || G_IS_CANCELLABLE (cancellable)");
  g_assert_null (stagehand_stage (sysroot, options, (GCancellable *) (gpointer) sysroot, &error));
  g_assert_no_error (error);

  /* An error that is already set is left alone. */
  CRITICAL ("stagehand_stage", "error == NULL || *error == NULL");
  g_assert_null (stagehand_stage (sysroot, options, NULL, &preset_copy));
  g_assert_true (preset_copy == preset);
  g_test_assert_expected_messages ();
}

static void
test_other_null_args (void)
{
  g_autoptr(GError) error = NULL;
  char *id = (char *) "untouched";
  gboolean was_locked = 42;

  CRITICAL ("stagehand_sysroot_lock", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_sysroot_lock (NULL, 10, NULL, &error));
  CRITICAL ("stagehand_unstage", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_unstage (NULL, &id, NULL, &error));
  g_assert_cmpstr (id, ==, "untouched");
  CRITICAL ("stagehand_lock_finalization", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_lock_finalization (NULL, NULL, &error));
  CRITICAL ("stagehand_unlock_finalization", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_unlock_finalization (NULL, &was_locked, NULL, &error));
  g_assert_cmpint (was_locked, ==, 42);
  CRITICAL ("stagehand_is_finalization_locked", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_is_finalization_locked (NULL));
  CRITICAL ("stagehand_status", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_status (NULL, NULL, &error));
  g_assert_no_error (error);

  /* Getters of results and status objects. */
  CRITICAL ("stagehand_stage_result_get_stateroot", "result != NULL");
  g_assert_null (stagehand_stage_result_get_stateroot (NULL));
  CRITICAL ("stagehand_stage_result_get_checksum", "result != NULL");
  g_assert_null (stagehand_stage_result_get_checksum (NULL));
  CRITICAL ("stagehand_stage_result_get_serial", "result != NULL");
  g_assert_cmpuint (stagehand_stage_result_get_serial (NULL), ==, 0);
  CRITICAL ("stagehand_stage_result_dup_id", "result != NULL");
  g_assert_null (stagehand_stage_result_dup_id (NULL));
  CRITICAL ("stagehand_stage_result_get_method", "result != NULL");
  g_assert_cmpint (stagehand_stage_result_get_method (NULL), ==, STAGEHAND_STAGE_METHOD_STAGED);
  CRITICAL ("stagehand_stage_result_get_unchanged", "result != NULL");
  g_assert_false (stagehand_stage_result_get_unchanged (NULL));
  CRITICAL ("stagehand_stage_result_get_finalization_locked", "result != NULL");
  g_assert_false (stagehand_stage_result_get_finalization_locked (NULL));
  CRITICAL ("stagehand_status_get_n_deployments", "status != NULL");
  g_assert_cmpuint (stagehand_status_get_n_deployments (NULL), ==, 0);
  CRITICAL ("stagehand_status_get_cleanup_pending", "status != NULL");
  g_assert_false (stagehand_status_get_cleanup_pending (NULL));
  CRITICAL ("stagehand_status_get_retention_pending", "status != NULL");
  g_assert_false (stagehand_status_get_retention_pending (NULL));
  CRITICAL ("stagehand_status_get_deployment", "status != NULL");
  g_assert_null (stagehand_status_get_deployment (NULL, 0));
  CRITICAL ("stagehand_deployment_status_get_stateroot", "deployment != NULL");
  g_assert_null (stagehand_deployment_status_get_stateroot (NULL));
  CRITICAL ("stagehand_deployment_status_get_checksum", "deployment != NULL");
  g_assert_null (stagehand_deployment_status_get_checksum (NULL));
  CRITICAL ("stagehand_deployment_status_get_serial", "deployment != NULL");
  g_assert_cmpuint (stagehand_deployment_status_get_serial (NULL), ==, 0);
  CRITICAL ("stagehand_deployment_status_dup_id", "deployment != NULL");
  g_assert_null (stagehand_deployment_status_dup_id (NULL));
  CRITICAL ("stagehand_deployment_status_get_version", "deployment != NULL");
  g_assert_null (stagehand_deployment_status_get_version (NULL));
  CRITICAL ("stagehand_deployment_status_get_booted", "deployment != NULL");
  g_assert_false (stagehand_deployment_status_get_booted (NULL));
  CRITICAL ("stagehand_deployment_status_get_staged", "deployment != NULL");
  g_assert_false (stagehand_deployment_status_get_staged (NULL));
  CRITICAL ("stagehand_deployment_status_get_pinned", "deployment != NULL");
  g_assert_false (stagehand_deployment_status_get_pinned (NULL));
  CRITICAL ("stagehand_deployment_status_get_finalization_locked", "deployment != NULL");
  g_assert_false (stagehand_deployment_status_get_finalization_locked (NULL));
  CRITICAL ("stagehand_deployment_status_get_unvetted", "deployment != NULL");
  g_assert_false (stagehand_deployment_status_get_unvetted (NULL));
  g_test_assert_expected_messages ();
}

static void
test_cleanup_null_args (void)
{
  g_autoptr(OstreeSysroot) sysroot = unloaded_sysroot ();
  g_autoptr(StagehandCleanupOptions) options = stagehand_cleanup_options_new ();
  g_autoptr(GError) error = NULL;
  StagehandCleanupStamp *stamp = (StagehandCleanupStamp *) (gpointer) "untouched";
  char *id = (char *) "untouched";

  CRITICAL ("stagehand_dup_cleanup_stamp_path", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_dup_cleanup_stamp_path (NULL));
  CRITICAL ("stagehand_pending_cleanup", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_pending_cleanup (NULL, &stamp, NULL, &error));
  g_assert_true (stamp == (gpointer) "untouched");
  CRITICAL ("stagehand_pending_cleanup", "out_stamp != NULL");
  g_assert_false (stagehand_pending_cleanup (sysroot, NULL, NULL, &error));
  CRITICAL ("stagehand_pending_cleanup", "cancellable == NULL || G_IS_CANCELLABLE (cancellable)");
  g_assert_false (stagehand_pending_cleanup (sysroot, &stamp, (GCancellable *) (gpointer) sysroot, &error));
  CRITICAL ("stagehand_record_staged", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_record_staged (NULL, &id, NULL, &error));
  g_assert_cmpstr (id, ==, "untouched");
  CRITICAL ("stagehand_record_finalized", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_record_finalized (NULL, NULL, &error));
  CRITICAL ("stagehand_autocleanup", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_autocleanup (NULL, options, NULL, &error));
  CRITICAL ("stagehand_autocleanup", "cancellable == NULL || G_IS_CANCELLABLE (cancellable)");
  g_assert_null (stagehand_autocleanup (sysroot, options, (GCancellable *) (gpointer) sysroot, &error));
  CRITICAL ("stagehand_run_cleanup", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_run_cleanup (NULL, FALSE, NULL, &error));
  g_assert_no_error (error);

  CRITICAL ("stagehand_cleanup_options_set_lock_timeout", "options != NULL");
  stagehand_cleanup_options_set_lock_timeout (NULL, 10);
  CRITICAL ("stagehand_cleanup_options_set_force", "options != NULL");
  stagehand_cleanup_options_set_force (NULL, TRUE);

  CRITICAL ("stagehand_cleanup_stamp_get_kind", "stamp != NULL");
  g_assert_cmpint (stagehand_cleanup_stamp_get_kind (NULL), ==, STAGEHAND_CLEANUP_STAMP_KIND_LEGACY);
  CRITICAL ("stagehand_cleanup_stamp_get_deployment", "stamp != NULL");
  g_assert_null (stagehand_cleanup_stamp_get_deployment (NULL));
  CRITICAL ("stagehand_cleanup_stamp_get_dropped", "stamp != NULL");
  g_assert_null (stagehand_cleanup_stamp_get_dropped (NULL));
  CRITICAL ("stagehand_cleanup_stamp_get_finalized_at", "stamp != NULL");
  g_assert_null (stagehand_cleanup_stamp_get_finalized_at (NULL));
  CRITICAL ("stagehand_cleanup_stamp_get_boot_id", "stamp != NULL");
  g_assert_null (stagehand_cleanup_stamp_get_boot_id (NULL));
  CRITICAL ("stagehand_cleanup_stamp_get_format_version", "stamp != NULL");
  g_assert_cmpuint (stagehand_cleanup_stamp_get_format_version (NULL), ==, 0);

  CRITICAL ("stagehand_finalize_result_get_outcome", "result != NULL");
  g_assert_cmpint (stagehand_finalize_result_get_outcome (NULL), ==, STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED);
  CRITICAL ("stagehand_finalize_result_get_stamped", "result != NULL");
  g_assert_false (stagehand_finalize_result_get_stamped (NULL));
  CRITICAL ("stagehand_finalize_result_get_deployment", "result != NULL");
  g_assert_null (stagehand_finalize_result_get_deployment (NULL));
  CRITICAL ("stagehand_finalize_result_get_dropped", "result != NULL");
  g_assert_null (stagehand_finalize_result_get_dropped (NULL));
  CRITICAL ("stagehand_finalize_result_get_finalization_locked", "result != NULL");
  g_assert_false (stagehand_finalize_result_get_finalization_locked (NULL));
  CRITICAL ("stagehand_finalize_result_get_message", "result != NULL");
  g_assert_null (stagehand_finalize_result_get_message (NULL));
  CRITICAL ("stagehand_finalize_result_get_description", "result != NULL");
  g_assert_null (stagehand_finalize_result_get_description (NULL));

  CRITICAL ("stagehand_cleanup_report_get_performed", "report != NULL");
  g_assert_false (stagehand_cleanup_report_get_performed (NULL));
  CRITICAL ("stagehand_cleanup_report_get_stamp", "report != NULL");
  g_assert_null (stagehand_cleanup_report_get_stamp (NULL));
  CRITICAL ("stagehand_cleanup_report_get_deployments_removed", "report != NULL");
  g_assert_null (stagehand_cleanup_report_get_deployments_removed (NULL));
  CRITICAL ("stagehand_cleanup_report_get_released_pins", "report != NULL");
  g_assert_null (stagehand_cleanup_report_get_released_pins (NULL));
  CRITICAL ("stagehand_cleanup_report_get_objects_freed", "report != NULL");
  g_assert_cmpuint (stagehand_cleanup_report_get_objects_freed (NULL), ==, 0);
  CRITICAL ("stagehand_cleanup_report_get_bytes_freed", "report != NULL");
  g_assert_cmpuint (stagehand_cleanup_report_get_bytes_freed (NULL), ==, 0);
  CRITICAL ("stagehand_cleanup_report_get_objects_remaining", "report != NULL");
  g_assert_cmpuint (stagehand_cleanup_report_get_objects_remaining (NULL), ==, 0);
  CRITICAL ("stagehand_cleanup_report_get_bytes_remaining", "report != NULL");
  g_assert_cmpuint (stagehand_cleanup_report_get_bytes_remaining (NULL), ==, 0);
  CRITICAL ("stagehand_cleanup_report_get_stamp_removed", "report != NULL");
  g_assert_false (stagehand_cleanup_report_get_stamp_removed (NULL));
  g_test_assert_expected_messages ();
}

static void
test_guard_null_args (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) preset = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "set before");
  GError *preset_copy = preset;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(OstreeSysroot) not_a_cancellable = unloaded_sysroot ();
  StagehandGuardStamp *stamp = (StagehandGuardStamp *) (gpointer) "untouched";
  gboolean removed = 42;

  CRITICAL ("stagehand_guard_begin", "name != NULL");
  g_assert_null (stagehand_guard_begin ("/tmp", NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_guard_begin", "g_utf8_validate (name, -1, NULL)");
  g_assert_null (stagehand_guard_begin ("/tmp", "\xff", NULL, NULL, &error));
  CRITICAL ("stagehand_guard_begin", "g_utf8_validate (digest, -1, NULL)");
  g_assert_null (stagehand_guard_begin ("/tmp", "step", "\xc3\x28", NULL, &error));
  CRITICAL ("stagehand_guard_begin", "cancellable == NULL || G_IS_CANCELLABLE (cancellable)");
  g_assert_null (stagehand_guard_begin ("/tmp", "step", NULL, (GCancellable *) (gpointer) not_a_cancellable, &error));
  CRITICAL ("stagehand_guard_begin", "error == NULL || *error == NULL");
  g_assert_null (stagehand_guard_begin ("/tmp", "step", NULL, NULL, &preset_copy));
  g_assert_true (preset_copy == preset);
  CRITICAL ("stagehand_guard_begin_forced", "name != NULL");
  g_assert_null (stagehand_guard_begin_forced (NULL, NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_guard_resume", "name != NULL");
  g_assert_null (stagehand_guard_resume (NULL, NULL, NULL, cancellable, &error));
  CRITICAL ("stagehand_guard_commit", "token != NULL");
  g_assert_null (stagehand_guard_commit (NULL, NULL, &error));
  CRITICAL ("stagehand_guard_status", "name != NULL");
  g_assert_false (stagehand_guard_status ("/tmp", NULL, &stamp, NULL, &error));
  CRITICAL ("stagehand_guard_status", "out_stamp != NULL");
  g_assert_false (stagehand_guard_status ("/tmp", "step", NULL, NULL, &error));
  g_assert_true (stamp == (gpointer) "untouched");
  CRITICAL ("stagehand_guard_reset", "name != NULL");
  g_assert_false (stagehand_guard_reset ("/tmp", NULL, &removed, NULL, &error));
  g_assert_cmpint (removed, ==, 42);
  CRITICAL ("stagehand_guard_file_digest", "path != NULL");
  g_assert_null (stagehand_guard_file_digest (NULL, NULL, &error));
  g_assert_no_error (error);

  CRITICAL ("stagehand_guard_token_get_stamp", "token != NULL");
  g_assert_null (stagehand_guard_token_get_stamp (NULL));
  CRITICAL ("stagehand_guard_token_get_path", "token != NULL");
  g_assert_null (stagehand_guard_token_get_path (NULL));
  CRITICAL ("stagehand_guard_token_get_replaced_stamp", "token != NULL");
  g_assert_null (stagehand_guard_token_get_replaced_stamp (NULL));
  CRITICAL ("stagehand_guard_token_get_replaced_unreadable", "token != NULL");
  g_assert_null (stagehand_guard_token_get_replaced_unreadable (NULL));
  CRITICAL ("stagehand_guard_stamp_get_name", "stamp != NULL");
  g_assert_null (stagehand_guard_stamp_get_name (NULL));
  CRITICAL ("stagehand_guard_stamp_get_phase", "stamp != NULL");
  g_assert_cmpint (stagehand_guard_stamp_get_phase (NULL), ==, STAGEHAND_GUARD_PHASE_STARTED);
  CRITICAL ("stagehand_guard_stamp_get_digest", "stamp != NULL");
  g_assert_null (stagehand_guard_stamp_get_digest (NULL));
  CRITICAL ("stagehand_guard_stamp_get_run", "stamp != NULL");
  g_assert_null (stagehand_guard_stamp_get_run (NULL));
  CRITICAL ("stagehand_guard_stamp_get_started", "stamp != NULL");
  g_assert_null (stagehand_guard_stamp_get_started (NULL));
  CRITICAL ("stagehand_guard_stamp_get_completed", "stamp != NULL");
  g_assert_null (stagehand_guard_stamp_get_completed (NULL));
  g_test_assert_expected_messages ();
}

static void
test_guard_token_commits_once (void)
{
  /* The Rust API consumes the token in commit; from C, a second commit of
   * the same token is a programming error, not a use-after-free. */
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("stagehand-test-guard-XXXXXX", &error);
  g_autofree char *stamp_file = NULL;
  g_autoptr(StagehandGuardToken) token = NULL;
  g_autoptr(StagehandGuardStamp) done = NULL;

  g_assert_no_error (error);
  token = stagehand_guard_begin (dir, "once", NULL, NULL, &error);
  g_assert_no_error (error);
  done = stagehand_guard_commit (token, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stagehand_guard_stamp_get_phase (done), ==, STAGEHAND_GUARD_PHASE_COMPLETE);
  CRITICAL ("stagehand_guard_commit", "stagehand_guard_commit() was not called on token before");
  g_assert_null (stagehand_guard_commit (token, NULL, &error));
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  /* The token stays readable until freed. */
  g_assert_cmpstr (stagehand_guard_stamp_get_name (stagehand_guard_token_get_stamp (token)), ==, "once");
  stamp_file = g_build_filename (dir, "once.stamp", NULL);
  g_assert_cmpstr (stagehand_guard_token_get_path (token), ==, stamp_file);
  g_assert_cmpint (g_unlink (stamp_file), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
test_health_null_args (void)
{
  g_autoptr(OstreeSysroot) sysroot = unloaded_sysroot ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StagehandHealthOptions) options = stagehand_health_options_new ();
  char *out = (char *) "untouched";

  g_assert_nonnull (options);
  stagehand_health_options_set_keep_known_good (options, FALSE);
  stagehand_health_options_free (NULL);
  stagehand_mark_good_result_free (NULL);
  stagehand_mark_bad_result_free (NULL);
  stagehand_verdict_free (NULL);
  stagehand_denylist_free (NULL);
  stagehand_denylist_entry_free (NULL);
  stagehand_hook_report_free (NULL);

  CRITICAL ("stagehand_health_options_set_keep_known_good", "options != NULL");
  stagehand_health_options_set_keep_known_good (NULL, TRUE);
  CRITICAL ("stagehand_mark_good", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_mark_good (NULL, options, NULL, &error));
  CRITICAL ("stagehand_mark_bad", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_mark_bad (NULL, NULL, "x", NULL, NULL, &error));
  CRITICAL ("stagehand_mark_bad", "deployment_id == NULL || g_utf8_validate (deployment_id, -1, NULL)");
  g_assert_null (stagehand_mark_bad (sysroot, "\xff", "x", NULL, NULL, &error));
  CRITICAL ("stagehand_mark_bad", "reason == NULL || g_utf8_validate (reason, -1, NULL)");
  g_assert_null (stagehand_mark_bad (sysroot, NULL, "\xff", NULL, NULL, &error));
  CRITICAL ("stagehand_assess", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_assess (NULL, STAGEHAND_BOOT_EVIDENCE_UNKNOWN, 0, NULL, NULL, &error));
  CRITICAL ("stagehand_assess", "evidence <= STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE");
  g_assert_null (stagehand_assess (sysroot, 3, 0, NULL, NULL, &error));
  CRITICAL ("stagehand_assess", "tries == 0 || evidence == STAGEHAND_BOOT_EVIDENCE_FALLBACK");
  g_assert_null (stagehand_assess (sysroot, STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE, 2, NULL, NULL, &error));
  CRITICAL ("stagehand_assess", "cancellable == NULL || G_IS_CANCELLABLE (cancellable)");
  g_assert_null (stagehand_assess (sysroot, STAGEHAND_BOOT_EVIDENCE_UNKNOWN, 0, NULL,
                                   (GCancellable *) (gpointer) sysroot, &error));
  CRITICAL ("stagehand_denylist_list", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_denylist_list (NULL, NULL, &error));
  CRITICAL ("stagehand_denylist_remove", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_denylist_remove (NULL, "abc", NULL, &error));
  CRITICAL ("stagehand_denylist_remove", "checksum != NULL");
  g_assert_null (stagehand_denylist_remove (sysroot, NULL, NULL, &error));
  CRITICAL ("stagehand_health_reset", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_health_reset (NULL, &out, NULL, &error));
  g_assert_cmpstr (out, ==, "untouched");
  CRITICAL ("stagehand_hooks_check", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_null (stagehand_hooks_check (NULL, NULL, NULL, &error));
  CRITICAL ("stagehand_hooks_check", "options != NULL");
  g_assert_null (stagehand_hooks_check (sysroot, NULL, NULL, &error));
  CRITICAL ("stagehand_hooks_recover", "OSTREE_IS_SYSROOT (sysroot)");
  g_assert_false (stagehand_hooks_recover (NULL, &out, NULL, &error));
  g_assert_cmpstr (out, ==, "untouched");
  g_assert_no_error (error);

  /* Getters. */
  CRITICAL ("stagehand_status_get_health_error", "status != NULL");
  g_assert_null (stagehand_status_get_health_error (NULL));
  CRITICAL ("stagehand_status_get_n_denylisted", "status != NULL");
  g_assert_cmpuint (stagehand_status_get_n_denylisted (NULL), ==, 0);
  CRITICAL ("stagehand_status_get_denylisted", "status != NULL");
  g_assert_null (stagehand_status_get_denylisted (NULL, 0));
  CRITICAL ("stagehand_status_get_last_rollback", "status != NULL");
  g_assert_null (stagehand_status_get_last_rollback (NULL));
  CRITICAL ("stagehand_deployment_status_get_health", "deployment != NULL");
  g_assert_cmpint (stagehand_deployment_status_get_health (NULL), ==, STAGEHAND_HEALTH_STATE_UNKNOWN);
  CRITICAL ("stagehand_deployment_status_get_attempts", "deployment != NULL");
  g_assert_cmpuint (stagehand_deployment_status_get_attempts (NULL), ==, 0);
  CRITICAL ("stagehand_deployment_status_get_on_trial", "deployment != NULL");
  g_assert_false (stagehand_deployment_status_get_on_trial (NULL));
  CRITICAL ("stagehand_deployment_status_get_health_reason", "deployment != NULL");
  g_assert_null (stagehand_deployment_status_get_health_reason (NULL));
  CRITICAL ("stagehand_deployment_status_get_health_changed", "deployment != NULL");
  g_assert_null (stagehand_deployment_status_get_health_changed (NULL));
  CRITICAL ("stagehand_deployment_status_get_pinned_by_stagehand", "deployment != NULL");
  g_assert_false (stagehand_deployment_status_get_pinned_by_stagehand (NULL));
  CRITICAL ("stagehand_denylist_get_n_entries", "denylist != NULL");
  g_assert_cmpuint (stagehand_denylist_get_n_entries (NULL), ==, 0);
  CRITICAL ("stagehand_denylist_get_entry", "denylist != NULL");
  g_assert_null (stagehand_denylist_get_entry (NULL, 0));
  CRITICAL ("stagehand_denylist_entry_get_checksum", "entry != NULL");
  g_assert_null (stagehand_denylist_entry_get_checksum (NULL));
  CRITICAL ("stagehand_rollback_get_from", "rollback != NULL");
  g_assert_null (stagehand_rollback_get_from (NULL));
  CRITICAL ("stagehand_rollback_get_trigger", "rollback != NULL");
  g_assert_cmpint (stagehand_rollback_get_trigger (NULL), ==, STAGEHAND_ROLLBACK_TRIGGER_MARK_BAD);
  CRITICAL ("stagehand_mark_good_result_get_deployment", "result != NULL");
  g_assert_null (stagehand_mark_good_result_get_deployment (NULL));
  CRITICAL ("stagehand_mark_good_result_get_retention_pending", "result != NULL");
  g_assert_false (stagehand_mark_good_result_get_retention_pending (NULL));
  CRITICAL ("stagehand_mark_bad_result_get_rolled_back_to", "result != NULL");
  g_assert_null (stagehand_mark_bad_result_get_rolled_back_to (NULL));
  CRITICAL ("stagehand_mark_bad_result_get_reboot_needed", "result != NULL");
  g_assert_false (stagehand_mark_bad_result_get_reboot_needed (NULL));
  CRITICAL ("stagehand_verdict_get_outcome", "verdict != NULL");
  g_assert_cmpint (stagehand_verdict_get_outcome (NULL), ==, STAGEHAND_ASSESS_OUTCOME_GOOD);
  CRITICAL ("stagehand_verdict_get_newer", "verdict != NULL");
  g_assert_null (stagehand_verdict_get_newer (NULL));
  CRITICAL ("stagehand_verdict_get_retention_pending", "verdict != NULL");
  g_assert_false (stagehand_verdict_get_retention_pending (NULL));
  CRITICAL ("stagehand_hook_report_get_n_hooks", "report != NULL");
  g_assert_cmpuint (stagehand_hook_report_get_n_hooks (NULL), ==, 0);
  CRITICAL ("stagehand_hook_report_get_hook", "report != NULL");
  g_assert_null (stagehand_hook_report_get_hook (NULL, 0));
  CRITICAL ("stagehand_hook_report_get_passed", "report != NULL");
  g_assert_false (stagehand_hook_report_get_passed (NULL));
  CRITICAL ("stagehand_hook_run_get_end", "run != NULL");
  g_assert_cmpint (stagehand_hook_run_get_end (NULL), ==, STAGEHAND_HOOK_END_PASSED);
  CRITICAL ("stagehand_hook_run_get_output_tail", "run != NULL");
  g_assert_null (stagehand_hook_run_get_output_tail (NULL));
  g_test_assert_expected_messages ();
}

/* Enum values are ABI: they are the numbers C programs compiled against
 * this header carry. */
static void
test_health_enums (void)
{
  g_assert_cmpint (STAGEHAND_HEALTH_STATE_UNTESTED, ==, 0);
  g_assert_cmpint (STAGEHAND_HEALTH_STATE_FAILED, ==, 1);
  g_assert_cmpint (STAGEHAND_HEALTH_STATE_GOOD, ==, 2);
  g_assert_cmpint (STAGEHAND_HEALTH_STATE_GOOD_FALLBACK, ==, 3);
  g_assert_cmpint (STAGEHAND_HEALTH_STATE_UNKNOWN, ==, 4);
  g_assert_cmpint (STAGEHAND_BOOT_EVIDENCE_UNKNOWN, ==, 0);
  g_assert_cmpint (STAGEHAND_BOOT_EVIDENCE_FALLBACK, ==, 1);
  g_assert_cmpint (STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE, ==, 2);
  g_assert_cmpint (STAGEHAND_ASSESS_OUTCOME_UNDETERMINED, ==, 5);
  g_assert_cmpint (STAGEHAND_ROLLBACK_TRIGGER_ASSESS, ==, 1);
  g_assert_cmpint (STAGEHAND_HOOK_ORIGIN_ADMIN, ==, 1);
  g_assert_cmpint (STAGEHAND_HOOK_END_SPAWN_FAILED, ==, 4);
}

static void
test_unloadable_sysroot (void)
{
  /* A sysroot that cannot be loaded is a runtime error with a message that
   * names it, never a crash (libostree itself aborts when most of its
   * functions see an unloaded sysroot; stagehand loads it first). */
  g_autoptr(OstreeSysroot) sysroot = unloaded_sysroot ();
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new ("os/stable");
  g_autoptr(GError) error = NULL;
  g_autoptr(StagehandStatus) status = NULL;
  g_autoptr(StagehandStageResult) result = NULL;

  status = stagehand_status (sysroot, NULL, &error);
  g_assert_null (status);
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "/nonexistent/stagehand-test-sysroot"));
  g_clear_error (&error);

  result = stagehand_stage (sysroot, options, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_FAILED);
  g_clear_error (&error);

  g_assert_false (stagehand_unstage (sysroot, NULL, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_FAILED);
  g_clear_error (&error);

  g_assert_false (stagehand_lock_finalization (sysroot, NULL, &error));
  g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_FAILED);
  g_clear_error (&error);

  /* Cleanup needs a loaded sysroot only when there is something to do: no
   * stamp is found under a path that does not exist. */
  {
    g_autoptr(StagehandCleanupStamp) stamp = NULL;
    g_autoptr(StagehandCleanupReport) report = NULL;
    g_autofree char *stamp_path = stagehand_dup_cleanup_stamp_path (sysroot);

    g_assert_cmpstr (stamp_path, ==, "/nonexistent/stagehand-test-sysroot/.cleanup");
    g_assert_true (stagehand_pending_cleanup (sysroot, &stamp, NULL, &error));
    g_assert_no_error (error);
    g_assert_null (stamp);
    report = stagehand_autocleanup (sysroot, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_false (stagehand_cleanup_report_get_performed (report));
    g_assert_null (stagehand_cleanup_report_get_stamp (report));
    g_assert_null (stagehand_cleanup_report_get_deployments_removed (report)[0]);
    g_assert_null (stagehand_cleanup_report_get_released_pins (report)[0]);
    g_assert_false (stagehand_run_cleanup (sysroot, FALSE, NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_FAILED);
    g_clear_error (&error);
    g_assert_false (stagehand_record_staged (sysroot, NULL, NULL, &error));
    g_assert_error (error, STAGEHAND_ERROR, STAGEHAND_ERROR_FAILED);
    g_clear_error (&error);
  }

  /* error may be NULL: the failure value alone, no crash, no leak. */
  g_assert_null (stagehand_status (sysroot, NULL, NULL));
  g_assert_null (stagehand_stage (sysroot, options, NULL, NULL));
  g_assert_false (stagehand_sysroot_lock (sysroot, 10, NULL, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/stagehand/error/domain", test_error_domain);
  g_test_add_func ("/stagehand/error/codes", test_error_codes);
  g_test_add_func ("/stagehand/options/builder", test_options_builder);
  g_test_add_func ("/stagehand/options/null-args", test_options_null_args);
  g_test_add_func ("/stagehand/stage/null-args", test_stage_null_args);
  g_test_add_func ("/stagehand/other/null-args", test_other_null_args);
  g_test_add_func ("/stagehand/cleanup/options-builder", test_cleanup_options_builder);
  g_test_add_func ("/stagehand/cleanup/null-args", test_cleanup_null_args);
  g_test_add_func ("/stagehand/guard/null-args", test_guard_null_args);
  g_test_add_func ("/stagehand/guard/token-commits-once", test_guard_token_commits_once);
  g_test_add_func ("/stagehand/health/null-args", test_health_null_args);
  g_test_add_func ("/stagehand/health/enums", test_health_enums);
  g_test_add_func ("/stagehand/sysroot/unloadable", test_unloadable_sysroot);
  return g_test_run ();
}
