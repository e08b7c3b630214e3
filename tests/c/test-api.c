/* The C API without a real sysroot: the error domain and its codes, the
 * option builder, programmer errors (NULL or wrong objects where the API
 * does not allow them, which must be criticals and a failure value, never a
 * crash), and runtime errors on a sysroot that cannot be loaded.
 *
 * Needs no root; runs as a GTest program with TAP output.
 */
#include <stagehand.h>

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
  };
  for (gsize i = 0; i < G_N_ELEMENTS (codes); i++)
    g_assert_cmpint ((int) codes[i].code, ==, codes[i].number);
  g_assert_cmpint (STAGEHAND_STAGE_METHOD_STAGED, ==, 0);
  g_assert_cmpint (STAGEHAND_STAGE_METHOD_DEPLOYED, ==, 1);
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

  /* _free accepts NULL, like g_free(). */
  stagehand_stage_options_free (NULL);
  stagehand_stage_result_free (NULL);
  stagehand_status_free (NULL);
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
  g_test_add_func ("/stagehand/sysroot/unloadable", test_unloadable_sysroot);
  return g_test_run ();
}
