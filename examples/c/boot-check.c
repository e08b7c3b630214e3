/* The boot-time side of an update agent: assess this boot, then run the
 * agent's health check and confirm the deployment (mark it good) or reject
 * it (mark it bad, which rolls back). What stagehand-assess.service and a
 * health-check unit ordered before stagehand-mark-good.service do, in one
 * process, for an agent that runs its own checks.
 *
 *   boot-check [--sysroot PATH] [--evidence unknown|fallback|manual] [--tries N]
 *              [--health-check PROGRAM]
 *
 * --evidence is what the bootloader knows about this boot (a boot counter
 * whose tries ran out means "fallback"); the `stagehand assess` command
 * reads it from the GRUB/BLS boot counter, a library caller passes it in.
 * PROGRAM is the health check: exit status 0 means healthy.
 *
 * With a boot counter configured (docs/boot-assessment.md), leave this to
 * the units: the library's mark-good and mark-bad do not bless or disarm
 * the counter, which `stagehand mark-good` and `stagehand mark-bad` do.
 *
 * Build: cc boot-check.c $(pkg-config --cflags --libs stagehand-1)
 */
#include <stdlib.h>
#include <stagehand.h>

static const char *
outcome_nick (StagehandAssessOutcome outcome)
{
  switch (outcome)
    {
    case STAGEHAND_ASSESS_OUTCOME_GOOD: return "good";
    case STAGEHAND_ASSESS_OUTCOME_ON_TRIAL: return "on-trial";
    case STAGEHAND_ASSESS_OUTCOME_BOOTED_FAILED: return "booted-failed";
    case STAGEHAND_ASSESS_OUTCOME_FELL_BACK: return "fell-back";
    case STAGEHAND_ASSESS_OUTCOME_MANUAL_CHOICE: return "manual-choice";
    case STAGEHAND_ASSESS_OUTCOME_UNDETERMINED: return "undetermined";
    default: return "unknown";
    }
}

/* The agent's own health check; a failure to run it is a failed check. */
static gboolean
health_check (const char *program, char **out_why)
{
  g_autoptr(GError) error = NULL;
  const char *argv[] = { program, NULL };
  int wait_status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                     NULL, NULL, &wait_status, &error) ||
      !g_spawn_check_wait_status (wait_status, &error))
    {
      *out_why = g_strdup_printf ("health check %s: %s", program, error->message);
      return FALSE;
    }
  return TRUE;
}

/* Called with the sysroot lock held. */
static gboolean
confirm (OstreeSysroot *sysroot, const char *check, GError **error)
{
  g_autofree char *why = NULL;

  if (check != NULL && !health_check (check, &why))
    {
      /* NULL: the booted deployment. It is failed and denylisted; the newest
       * known-good deployment becomes the default. */
      g_autoptr(StagehandMarkBadResult) bad =
        stagehand_mark_bad (sysroot, NULL, why, NULL, NULL, error);
      if (bad == NULL)
        return FALSE;
      g_print ("marked bad: %s (%s)\n", stagehand_mark_bad_result_get_deployment (bad), why);
      if (stagehand_mark_bad_result_get_rolled_back_to (bad) != NULL)
        g_print ("rolled back to %s\n", stagehand_mark_bad_result_get_rolled_back_to (bad));
      if (stagehand_mark_bad_result_get_reboot_needed (bad))
        g_print ("reboot needed\n");
      return TRUE;
    }

  {
    g_autoptr(StagehandMarkGoodResult) good = stagehand_mark_good (sysroot, NULL, NULL, error);

    if (good == NULL)
      return FALSE;
    g_print ("marked good: %s after %u boot(s)\n",
             stagehand_mark_good_result_get_deployment (good),
             stagehand_mark_good_result_get_attempts (good));
    /* Releasing the trial's retention pins (and removing a deployment only
     * they kept) is left to the cleanup after the verdict, off the boot
     * path: stagehand-autocleanup.service, or stagehand_autocleanup(), whose
     * report names what it released and removed (examples/c/autocleanup.c).
     * A daemon that ships no systemd units calls it when this says so. */
    if (stagehand_mark_good_result_get_retention_pending (good))
      g_print ("retention pending: the cleanup releases the trial's pins\n");
  }
  return TRUE;
}

static gboolean
boot_check (const char *sysroot_path, StagehandBootEvidence evidence, guint tries,
            const char *check, GError **error)
{
  g_autoptr(GFile) path = g_file_new_for_path (sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new (path);
  g_autoptr(StagehandVerdict) verdict = NULL;
  gboolean ok = TRUE;

  if (!ostree_sysroot_load (sysroot, NULL, error))
    return FALSE;
  if (!stagehand_sysroot_lock (sysroot, 30 * 1000, NULL, error))
    return FALSE;

  /* Counts the boot once however often it runs, and fails what the
   * bootloader fell back from. */
  verdict = stagehand_assess (sysroot, evidence, tries, NULL, NULL, error);
  if (verdict == NULL)
    {
      ostree_sysroot_unlock (sysroot);
      return FALSE;
    }
  g_print ("verdict: %s: %s\n", outcome_nick (stagehand_verdict_get_outcome (verdict)),
           stagehand_verdict_get_message (verdict));

  switch (stagehand_verdict_get_outcome (verdict))
    {
    case STAGEHAND_ASSESS_OUTCOME_ON_TRIAL:
      ok = confirm (sysroot, check, error);
      break;
    case STAGEHAND_ASSESS_OUTCOME_FELL_BACK:
      for (const char *const *f = stagehand_verdict_get_failed (verdict); *f != NULL; f++)
        g_print ("failed to boot: %s\n", *f);
      break;
    default:
      /* Known good already, or not ours to judge (a person's choice). */
      break;
    }
  if (ok && stagehand_verdict_get_reboot_needed (verdict))
    g_print ("reboot needed: the default is %s\n", stagehand_verdict_get_default (verdict));
  ostree_sysroot_unlock (sysroot);
  return ok;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *sysroot_path = NULL;
  g_autofree char *evidence_arg = NULL;
  g_autofree char *check = NULL;
  int tries = 0;
  StagehandBootEvidence evidence = STAGEHAND_BOOT_EVIDENCE_UNKNOWN;
  GOptionEntry entries[] = {
    { "sysroot", 0, 0, G_OPTION_ARG_FILENAME, &sysroot_path, "Sysroot (default: /)", "PATH" },
    { "evidence", 0, 0, G_OPTION_ARG_STRING, &evidence_arg, "What the bootloader knows", "unknown|fallback|manual" },
    { "tries", 0, 0, G_OPTION_ARG_INT, &tries, "With fallback: the entry's tries", "N" },
    { "health-check", 0, 0, G_OPTION_ARG_FILENAME, &check, "Health check to run (exit 0: healthy)", "PROGRAM" },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- assess this boot and confirm it");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 1 || tries < 0)
    {
      g_printerr ("usage: %s [--sysroot PATH] [--evidence unknown|fallback|manual] [--tries N] "
                  "[--health-check PROGRAM]\n", g_get_prgname ());
      return EXIT_FAILURE;
    }
  if (g_strcmp0 (evidence_arg, "fallback") == 0)
    evidence = STAGEHAND_BOOT_EVIDENCE_FALLBACK;
  else if (g_strcmp0 (evidence_arg, "manual") == 0)
    evidence = STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE;
  else if (evidence_arg != NULL && !g_str_equal (evidence_arg, "unknown"))
    {
      g_printerr ("unknown evidence \"%s\"\n", evidence_arg);
      return EXIT_FAILURE;
    }

  if (boot_check (sysroot_path ? sysroot_path : "/", evidence, (guint) tries, check, &error))
    return EXIT_SUCCESS;

  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_NO_KNOWN_GOOD))
    g_printerr ("the health check failed, but there is nothing to roll back to: %s\n", error->message);
  else
    g_printerr ("error: %s\n", error->message);
  return EXIT_FAILURE;
}
