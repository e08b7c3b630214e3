/* Stage an update whose new version may refuse it: the pre-upgrade hooks it
 * ships (/usr/lib/stagehand/pre-upgrade.d/) and the administrator's
 * (/etc/stagehand/pre-upgrade.d/) run before the staged deployment may be
 * finalized; a veto removes it again and arrives as
 * STAGEHAND_ERROR_HOOK_VETOED, whose message names the hook, how it ended
 * and the tail of its output: what to show the user.
 *
 *   stage-hooks [--sysroot PATH] [--hook-timeout SECONDS] REVISION
 *
 * Exit status: 0 staged, 3 refused by a hook, 4 a broken hook file, 5 the
 * revision failed on this system before (denylisted), 1 any other error.
 *
 * Build: cc stage-hooks.c $(pkg-config --cflags --libs stagehand-1)
 */
#include <stdlib.h>
#include <stagehand.h>

enum { EXIT_VETOED = 3, EXIT_HOOK_INVALID = 4, EXIT_DENYLISTED = 5 };

static gboolean
stage_with_hooks (const char *sysroot_path, const char *revision, guint hook_timeout,
                  GError **error)
{
  g_autoptr(GFile) path = g_file_new_for_path (sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new (path);
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (revision);
  g_autoptr(StagehandStageResult) result = NULL;
  g_autofree char *id = NULL;

  if (!ostree_sysroot_load (sysroot, NULL, error))
    return FALSE;
  if (!stagehand_sysroot_lock (sysroot, 30 * 1000, NULL, error))
    return FALSE;

  /* Hooks are on by default; a hook running longer than this is killed
   * with its process tree, which is a veto too. */
  stagehand_stage_options_set_hook_timeout (options, hook_timeout);
  result = stagehand_stage (sysroot, options, NULL, error);
  ostree_sysroot_unlock (sysroot);
  if (result == NULL)
    return FALSE;

  id = stagehand_stage_result_dup_id (result);
  /* Unchanged: this commit was staged (and vetted) before; nothing ran. */
  if (stagehand_stage_result_get_unchanged (result))
    g_print ("already staged: %s\n", id);
  else
    g_print ("staged: %s (hooks passed)\n", id);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *sysroot_path = NULL;
  int hook_timeout = 300;
  GOptionEntry entries[] = {
    { "sysroot", 0, 0, G_OPTION_ARG_FILENAME, &sysroot_path, "Sysroot (default: /)", "PATH" },
    { "hook-timeout", 0, 0, G_OPTION_ARG_INT, &hook_timeout, "How long one hook may run (default: 300)", "SECONDS" },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("REVISION - stage an update, running its pre-upgrade hooks");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 2 || hook_timeout <= 0)
    {
      g_printerr ("usage: %s [--sysroot PATH] [--hook-timeout SECONDS] REVISION\n", g_get_prgname ());
      return EXIT_FAILURE;
    }

  if (stage_with_hooks (sysroot_path ? sysroot_path : "/", argv[1], (guint) hook_timeout, &error))
    return EXIT_SUCCESS;

  /* Nothing stays staged after a veto; the booted system is untouched. The
   * new version said no (an update barrier, "update to 1.5 first"): show
   * the hook's own words, and do not retry this revision automatically. */
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_HOOK_VETOED))
    {
      g_printerr ("update refused by a pre-upgrade hook: %s\n", error->message);
      return EXIT_VETOED;
    }
  /* A hook file with the wrong type, owner or mode: the update is broken. */
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_HOOK_INVALID))
    {
      g_printerr ("update ships an unusable hook: %s\n", error->message);
      return EXIT_HOOK_INVALID;
    }
  /* It was marked bad or did not boot here: an agent never retries that by
   * itself (stagehand_stage_options_set_allow_denylisted() is for a
   * person's deliberate retry). */
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_DENYLISTED))
    {
      g_printerr ("update failed on this system before, not retrying: %s\n", error->message);
      return EXIT_DENYLISTED;
    }
  g_printerr ("error: %s\n", error->message);
  return EXIT_FAILURE;
}
