/* The cleanup after a finalized update, early in the next boot: a
 * finalization drops the old rollback deployment but does not prune the
 * repository, so the shutdown step left a cleanup stamp; if there is one,
 * run the cleanup and say what it freed. What stagehand-autocleanup.service
 * does, for an agent that wants it in its own process (eos-updater's
 * autocleanup).
 *
 *   autocleanup [--sysroot PATH]
 *
 * Build: cc autocleanup.c $(pkg-config --cflags --libs stagehand-1)
 */
#include <stdlib.h>
#include <stagehand.h>

/* libostree announces "Freed objects: ..." with g_print() while it prunes;
 * this program's stdout is its report, so that goes to the debug log. */
static void
print_to_debug_log (const char *message)
{
  g_debug ("libostree: %s", message);
}

static void
describe_stamp (const StagehandCleanupStamp *stamp)
{
  switch (stagehand_cleanup_stamp_get_kind (stamp))
    {
    case STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED:
      g_print ("cleanup pending: %s was finalized\n", stagehand_cleanup_stamp_get_deployment (stamp));
      for (const char *const *d = stagehand_cleanup_stamp_get_dropped (stamp); *d != NULL; d++)
        g_print ("dropped: %s\n", *d);
      break;
    case STAGEHAND_CLEANUP_STAMP_KIND_REMOVED:
      g_print ("cleanup pending: deployments removed at the end of a trial\n");
      break;
    default:
      /* An empty stamp from an older tool, or a newer stagehand's format. */
      g_print ("cleanup pending\n");
      break;
    }
}

static gboolean
autocleanup (const char *sysroot_path, GError **error)
{
  g_autoptr(GFile) path = g_file_new_for_path (sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new (path);
  g_autoptr(StagehandCleanupStamp) stamp = NULL;
  g_autoptr(StagehandCleanupOptions) options = NULL;
  g_autoptr(StagehandCleanupReport) report = NULL;
  g_autofree char *freed = NULL;
  GPrintFunc old_print;

  /* One file read, no lock: this is the common case at every boot. */
  if (!stagehand_pending_cleanup (sysroot, &stamp, NULL, error))
    return FALSE;
  if (stamp == NULL)
    {
      g_print ("no cleanup pending\n");
      return TRUE;
    }
  describe_stamp (stamp);

  if (!ostree_sysroot_load (sysroot, NULL, error))
    return FALSE;
  /* Takes and releases the sysroot lock itself, waiting up to 60 s for an
   * update agent that holds it. */
  options = stagehand_cleanup_options_new ();
  stagehand_cleanup_options_set_lock_timeout (options, 60 * 1000);
  old_print = g_set_print_handler (print_to_debug_log);
  report = stagehand_autocleanup (sysroot, options, NULL, error);
  g_set_print_handler (old_print);
  if (report == NULL)
    return FALSE;

  for (const char *const *d = stagehand_cleanup_report_get_deployments_removed (report); *d != NULL; d++)
    g_print ("removed: %s\n", *d);
  freed = g_format_size (stagehand_cleanup_report_get_bytes_freed (report));
  g_print ("freed %" G_GUINT64_FORMAT " objects (%s), %" G_GUINT64_FORMAT " left\n",
           stagehand_cleanup_report_get_objects_freed (report), freed,
           stagehand_cleanup_report_get_objects_remaining (report));
  /* Kept when another finalization wrote a new stamp meanwhile: the next
   * run handles that one. */
  g_print ("%s\n", stagehand_cleanup_report_get_stamp_removed (report) ? "stamp removed" : "stamp kept");
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *sysroot_path = NULL;
  GOptionEntry entries[] = {
    { "sysroot", 0, 0, G_OPTION_ARG_FILENAME, &sysroot_path, "Sysroot (default: /)", "PATH" },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- clean up after a finalized update");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 1)
    {
      g_printerr ("usage: %s [--sysroot PATH]\n", g_get_prgname ());
      return EXIT_FAILURE;
    }

  if (autocleanup (sysroot_path ? sysroot_path : "/", &error))
    return EXIT_SUCCESS;

  /* The stamp stays in every failure case: the next boot tries again. */
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_LOCKED))
    g_printerr ("an update is in progress; cleaning up at the next boot: %s\n", error->message);
  else if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CORRUPT))
    g_printerr ("the cleanup stamp cannot be read (stagehand autocleanup --force): %s\n", error->message);
  else
    g_printerr ("error: %s\n", error->message);
  return EXIT_FAILURE;
}
