/* "Download now, apply at the maintenance window": stage the update as soon
 * as it is pulled, with finalization locked, so that shutting down leaves
 * it staged instead of booting into it; at the window, unlock finalization
 * and reboot. Staging early does the slow part (the checkout) while the
 * system is in use; only the /etc merge and the bootloader entries are
 * left for the shutdown.
 *
 *   maintenance-window [--sysroot PATH] download REVISION
 *   maintenance-window [--sysroot PATH] apply
 *   maintenance-window [--sysroot PATH] cancel
 *
 * The lock lives in /run, as libostree expects, and so does the staged
 * state: after an unplanned reboot nothing is staged any more, and the
 * agent stages the (already pulled) revision again at its next run.
 *
 * Build: cc maintenance-window.c $(pkg-config --cflags --libs stagehand-1)
 */
#include <stdlib.h>
#include <stagehand.h>

/* The staged deployment's identity, or NULL. */
static char *
dup_staged_id (OstreeSysroot *sysroot, GError **error)
{
  g_autoptr(StagehandStatus) status = stagehand_status (sysroot, NULL, error);

  if (status == NULL)
    return NULL;
  for (guint i = 0; i < stagehand_status_get_n_deployments (status); i++)
    {
      const StagehandDeploymentStatus *d = stagehand_status_get_deployment (status, i);
      if (stagehand_deployment_status_get_staged (d))
        return stagehand_deployment_status_dup_id (d);
    }
  return NULL;
}

static gboolean
download (OstreeSysroot *sysroot, const char *revision, GError **error)
{
  g_autoptr(StagehandStageOptions) options = stagehand_stage_options_new (revision);
  g_autoptr(StagehandStageResult) result = NULL;
  g_autofree char *id = NULL;

  /* (Pulling the revision into the repository comes first: the agent's own
   * business.) */
  if (!stagehand_sysroot_lock (sysroot, 30 * 1000, NULL, error))
    return FALSE;
  /* Locked before the deployment is written, so no shutdown in between can
   * finalize it. */
  stagehand_stage_options_set_lock_finalization (options, TRUE);
  result = stagehand_stage (sysroot, options, NULL, error);
  ostree_sysroot_unlock (sysroot);
  if (result == NULL)
    return FALSE;
  id = stagehand_stage_result_dup_id (result);
  g_print ("staged: %s, held until the maintenance window\n", id);
  return TRUE;
}

static gboolean
apply (OstreeSysroot *sysroot, GError **error)
{
  g_autofree char *id = NULL;
  gboolean was_locked = FALSE;

  /* No sysroot lock needed: this only removes libostree's lock file. */
  if (!stagehand_unlock_finalization (sysroot, &was_locked, NULL, error))
    return FALSE;
  id = dup_staged_id (sysroot, error);
  if (id == NULL)
    {
      if (error != NULL && *error != NULL)
        return FALSE;
      g_print ("nothing is staged\n");
      return TRUE;
    }
  /* Here the agent would reboot (or leave that to the window's schedule). */
  g_print ("%s: %s takes effect at the next reboot\n", was_locked ? "released" : "not held", id);
  return TRUE;
}

static gboolean
cancel (OstreeSysroot *sysroot, GError **error)
{
  g_autofree char *id = NULL;

  if (!stagehand_sysroot_lock (sysroot, 30 * 1000, NULL, error))
    return FALSE;
  /* Removes the finalization lock with the deployment. */
  if (!stagehand_unstage (sysroot, &id, NULL, error))
    {
      ostree_sysroot_unlock (sysroot);
      return FALSE;
    }
  ostree_sysroot_unlock (sysroot);
  if (id != NULL)
    g_print ("unstaged: %s\n", id);
  else
    g_print ("nothing is staged\n");
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *sysroot_path = NULL;
  g_autoptr(GFile) path = NULL;
  g_autoptr(OstreeSysroot) sysroot = NULL;
  gboolean ok;
  GOptionEntry entries[] = {
    { "sysroot", 0, 0, G_OPTION_ARG_FILENAME, &sysroot_path, "Sysroot (default: /)", "PATH" },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("download REVISION | apply | cancel");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc < 2 ||
      (g_str_equal (argv[1], "download") ? argc != 3 : argc != 2))
    {
      g_printerr ("usage: %s [--sysroot PATH] download REVISION | apply | cancel\n", g_get_prgname ());
      return EXIT_FAILURE;
    }

  path = g_file_new_for_path (sysroot_path ? sysroot_path : "/");
  sysroot = ostree_sysroot_new (path);
  if (!ostree_sysroot_load (sysroot, NULL, &error))
    ok = FALSE;
  else if (g_str_equal (argv[1], "download"))
    ok = download (sysroot, argv[2], &error);
  else if (g_str_equal (argv[1], "apply"))
    ok = apply (sysroot, &error);
  else if (g_str_equal (argv[1], "cancel"))
    ok = cancel (sysroot, &error);
  else
    {
      g_printerr ("unknown command \"%s\"\n", argv[1]);
      return EXIT_FAILURE;
    }
  if (ok)
    return EXIT_SUCCESS;

  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NOT_BOOTED))
    g_printerr ("holding an update needs a booted system: %s\n", error->message);
  else
    g_printerr ("error: %s\n", error->message);
  return EXIT_FAILURE;
}
