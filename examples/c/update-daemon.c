/* A minimal update agent on top of libstagehand-1: load the sysroot, take
 * the sysroot lock, stage a revision that is already in the repository
 * (pulling it is the agent's own business), and report what happened.
 *
 *   update-daemon [--sysroot PATH] [--hold] REVISION
 *
 * Build: cc update-daemon.c $(pkg-config --cflags --libs stagehand-1)
 */
#include <stdlib.h>
#include <stagehand.h>

static gboolean
report_status (OstreeSysroot *sysroot, GError **error)
{
  g_autoptr(StagehandStatus) status = stagehand_status (sysroot, NULL, error);
  if (status == NULL)
    return FALSE;

  for (guint i = 0; i < stagehand_status_get_n_deployments (status); i++)
    {
      const StagehandDeploymentStatus *d = stagehand_status_get_deployment (status, i);
      g_autofree char *id = stagehand_deployment_status_dup_id (d);
      const char *version = stagehand_deployment_status_get_version (d);

      g_print ("%c %s %s%s%s\n",
               stagehand_deployment_status_get_booted (d) ? '*' : ' ',
               id, version ? version : "(no version)",
               stagehand_deployment_status_get_staged (d) ? " (staged)" : "",
               stagehand_deployment_status_get_finalization_locked (d) ? " (held)" : "");
    }
  return TRUE;
}

static gboolean
update (const char *sysroot_path, const char *revision, gboolean hold, GError **error)
{
  g_autoptr(GFile) path = g_file_new_for_path (sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new (path);
  g_autoptr(StagehandStageOptions) options = NULL;
  g_autoptr(StagehandStageResult) result = NULL;
  g_autofree char *id = NULL;

  if (!ostree_sysroot_load (sysroot, NULL, error))
    return FALSE;

  /* Wait at most 30 s for another ostree writer (rpm-ostree, ostree admin). */
  if (!stagehand_sysroot_lock (sysroot, 30 * 1000, NULL, error))
    return FALSE;

  options = stagehand_stage_options_new (revision);
  stagehand_stage_options_set_lock_finalization (options, hold);
  result = stagehand_stage (sysroot, options, NULL, error);
  ostree_sysroot_unlock (sysroot);
  if (result == NULL)
    return FALSE;

  id = stagehand_stage_result_dup_id (result);
  g_print ("%s %s%s\n",
           stagehand_stage_result_get_unchanged (result) ? "already staged:" :
           stagehand_stage_result_get_method (result) == STAGEHAND_STAGE_METHOD_STAGED ? "staged:" : "deployed:",
           id, stagehand_stage_result_get_finalization_locked (result) ? " (held until unlocked)" : "");
  return report_status (sysroot, error);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *sysroot_path = NULL;
  gboolean hold = FALSE;
  GOptionEntry entries[] = {
    { "sysroot", 0, 0, G_OPTION_ARG_FILENAME, &sysroot_path, "Sysroot (default: /)", "PATH" },
    { "hold", 0, 0, G_OPTION_ARG_NONE, &hold, "Keep finalization locked after staging", NULL },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("REVISION - stage an update");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 2)
    {
      g_printerr ("usage: %s [--sysroot PATH] [--hold] REVISION\n", g_get_prgname ());
      return EXIT_FAILURE;
    }

  if (update (sysroot_path ? sysroot_path : "/", argv[1], hold, &error))
    return EXIT_SUCCESS;

  /* Branch on the kind; show the message. */
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_LOCKED))
    g_printerr ("another update is in progress: %s\n", error->message);
  else if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_HOOK_VETOED))
    g_printerr ("the new version refused the update: %s\n", error->message);
  else
    g_printerr ("error: %s\n", error->message);
  return EXIT_FAILURE;
}
