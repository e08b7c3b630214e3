// A step that must not run twice, guarded, in C++: a data migration after an
// update, a re-provisioning, a firmware flash. The guard durably records
// that the step *started* before its first destructive action and that it
// *completed* after its last, so that after a crash or power cut the agent
// knows "not done", "done" and "half done" (which only an administrator can
// resolve) apart instead of running the step again. Same options, output and
// exit statuses as examples/c/run-once.c.
//
//   run-once-cxx [--dir DIR] [--config FILE] NAME PROGRAM [ARGS...]
//
// Exit status: 0 the step ran (or had run with this configuration), 1 it
// failed (it stays "started"), 2 it was interrupted before, 3 its
// configuration changed since it ran, 4 any other error.
//
// Build: c++ -std=c++17 run-once.cc $(pkg-config --cflags --libs stagehand-cxx-1)
#include <stagehand-cxx/stagehand.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

enum { EXIT_STEP_FAILED = 1, EXIT_INTERRUPTED = 2, EXIT_CONFIG_CHANGED = 3, EXIT_ERROR = 4 };

// The step itself: an empty string when it succeeded, else why not.
std::string run_step(char **argv) {
  g_autoptr(GError) error = nullptr;
  int wait_status = 0;
  if (!g_spawn_sync(nullptr, argv, nullptr,
                    static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_CHILD_INHERITS_STDIN),
                    nullptr, nullptr, nullptr, nullptr, &wait_status, &error) ||
      !g_spawn_check_wait_status(wait_status, &error))
    return error->message;
  return {};
}

int run_once(const std::string &dir, const std::string &config, const std::string &name,
             char **step_argv) {
  try {
    const std::string digest = config.empty() ? "" : std::string(stagehand::guard_file_digest(config));
    // The red line: once this returns, the step counts as started.
    rust::Box<stagehand::GuardToken> token = stagehand::guard_begin(dir, name, digest);
    const std::string failure = run_step(step_argv);
    if (!failure.empty()) {
      // Not committed: the step stays started, and the next run refuses.
      std::fprintf(stderr, "step %s failed: %s\n", name.c_str(), failure.c_str());
      return EXIT_STEP_FAILED;
    }
    const stagehand::GuardStamp done = stagehand::guard_commit(std::move(token));
    std::printf("step %s: done at %s\n", name.c_str(), std::string(done.completed).c_str());
    return EXIT_SUCCESS;
  } catch (const stagehand::Error &e) {
    switch (e.code()) {
    case stagehand::ErrorCode::AlreadyComplete:
      std::printf("step %s: already done, skipped\n", name.c_str());
      return EXIT_SUCCESS;
    case stagehand::ErrorCode::Interrupted:
      // The system may be half-changed: never re-run on our own. After
      // checking, an administrator runs `stagehand guard reset NAME`.
      std::fprintf(stderr, "step %s was interrupted before; not running it again: %s\n",
                   name.c_str(), e.what());
      return EXIT_INTERRUPTED;
    case stagehand::ErrorCode::ConfigChanged:
      std::fprintf(stderr, "step %s ran with another configuration: %s\n", name.c_str(), e.what());
      return EXIT_CONFIG_CHANGED;
    default:
      std::fprintf(stderr, "error: %s\n", e.what());
      return EXIT_ERROR;
    }
  }
}

} // namespace

int main(int argc, char **argv) {
  std::string dir(stagehand::guard_default_dir());
  std::string config;
  int i = 1;
  // Options come first; everything after NAME belongs to PROGRAM.
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--dir")
      dir = argv[i + 1];
    else if (arg == "--config")
      config = argv[i + 1];
    else
      break;
  }
  if (argc - i < 2 || argv[i][0] == '-') {
    std::fprintf(stderr, "usage: %s [--dir DIR] [--config FILE] NAME PROGRAM [ARGS...]\n", argv[0]);
    return EXIT_ERROR;
  }
  return run_once(dir, config, argv[i], argv + i + 1);
}
