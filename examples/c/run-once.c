/* A step that must not run twice, guarded: a data migration after an
 * update, a re-provisioning, a firmware flash. The guard durably records
 * that the step *started* before its first destructive action and that it
 * *completed* after its last, so that after a crash or power cut the agent
 * knows the difference between "not done", "done" and "half done" (which
 * only an administrator can resolve) instead of running the step again.
 *
 *   run-once [--dir DIR] [--config FILE] NAME PROGRAM [ARGS...]
 *
 * NAME is the step, PROGRAM what it runs; with --config, the step is tied
 * to that file's content: after a change it is reported, not re-run.
 * DIR defaults to /var/lib/stagehand/guard, which must exist.
 *
 * Exit status: 0 the step ran (or had run with this configuration), 1 it
 * failed (it stays "started"), 2 it was interrupted before, 3 its
 * configuration changed since it ran, 4 any other error.
 *
 * Build: cc run-once.c $(pkg-config --cflags --libs stagehand-1)
 */
#include <stdlib.h>
#include <stagehand.h>

enum { EXIT_STEP_FAILED = 1, EXIT_INTERRUPTED = 2, EXIT_CONFIG_CHANGED = 3, EXIT_ERROR = 4 };

static int
run_once (const char *dir, const char *config, const char *name, char **step_argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *digest = NULL;
  g_autoptr(StagehandGuardToken) token = NULL;
  g_autoptr(StagehandGuardStamp) done = NULL;
  int wait_status = 0;

  if (config != NULL && (digest = stagehand_guard_file_digest (config, NULL, &error)) == NULL)
    goto error;

  /* The red line: once this returns, the step counts as started. */
  token = stagehand_guard_begin (dir, name, digest, NULL, &error);
  if (token == NULL)
    goto error;

  if (!g_spawn_sync (NULL, step_argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_CHILD_INHERITS_STDIN,
                     NULL, NULL, NULL, NULL, &wait_status, &error) ||
      !g_spawn_check_wait_status (wait_status, &error))
    {
      /* Not committed: the step stays started, and the next run refuses. */
      g_printerr ("step %s failed: %s\n", name, error->message);
      return EXIT_STEP_FAILED;
    }

  done = stagehand_guard_commit (token, NULL, &error);
  if (done == NULL)
    goto error;
  g_print ("step %s: done at %s\n", name, stagehand_guard_stamp_get_completed (done));
  return EXIT_SUCCESS;

error:
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_ALREADY_COMPLETE))
    {
      g_print ("step %s: already done, skipped\n", name);
      return EXIT_SUCCESS;
    }
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_INTERRUPTED))
    {
      /* The system may be half-changed: never re-run on our own. After
       * checking, an administrator runs `stagehand guard reset NAME`. */
      g_printerr ("step %s was interrupted before; not running it again: %s\n", name, error->message);
      return EXIT_INTERRUPTED;
    }
  if (g_error_matches (error, STAGEHAND_ERROR, STAGEHAND_ERROR_CONFIG_CHANGED))
    {
      g_printerr ("step %s ran with another configuration: %s\n", name, error->message);
      return EXIT_CONFIG_CHANGED;
    }
  g_printerr ("error: %s\n", error->message);
  return EXIT_ERROR;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *config = NULL;
  GOptionEntry entries[] = {
    { "dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "Guard directory (default: /var/lib/stagehand/guard)", "DIR" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "The configuration the step applies", "FILE" },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("NAME PROGRAM [ARGS...] - run a step at most once");

  g_option_context_add_main_entries (context, entries, NULL);
  /* Options after NAME belong to PROGRAM. */
  g_option_context_set_strict_posix (context, TRUE);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc < 3)
    {
      g_printerr ("usage: %s [--dir DIR] [--config FILE] NAME PROGRAM [ARGS...]\n", g_get_prgname ());
      return EXIT_ERROR;
    }
  return run_once (dir, config, argv[1], argv + 2);
}
