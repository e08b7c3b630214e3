// Stage an update whose new version may refuse it, in C++: the pre-upgrade
// hooks it ships (/usr/lib/stagehand/pre-upgrade.d/) and the
// administrator's (/etc/stagehand/pre-upgrade.d/) run before the staged
// deployment may be finalized; a veto removes it again and is thrown as
// stagehand::Error with ErrorCode::HookVetoed, whose message names the hook,
// how it ended and the tail of its output: what to show the user. Same
// options, output and exit statuses as examples/c/stage-hooks.c.
//
//   stage-hooks-cxx [--sysroot PATH] [--hook-timeout SECONDS] REVISION
//
// Exit status: 0 staged, 3 refused by a hook, 4 a broken hook file, 5 the
// revision failed on this system before (denylisted), 1 any other error.
//
// Build: c++ -std=c++17 stage-hooks.cc $(pkg-config --cflags --libs stagehand-cxx-1)
#include <stagehand-cxx/stagehand.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

enum { EXIT_VETOED = 3, EXIT_HOOK_INVALID = 4, EXIT_DENYLISTED = 5 };

void stage_with_hooks(OstreeSysroot &sysroot, const std::string &revision,
                      std::uint32_t hook_timeout) {
  auto options = stagehand::stage_options(revision);
  // Hooks are on by default; a hook running longer than this is killed with
  // its process tree, which is a veto too.
  options->set_hook_timeout(hook_timeout);
  stagehand::SysrootLock lock(sysroot, 30 * 1000);
  const stagehand::StageOutcome out = stagehand::stage(sysroot, *options);
  // Unchanged: this commit was staged (and vetted) before; nothing ran.
  std::printf(out.unchanged ? "already staged: %s\n" : "staged: %s (hooks passed)\n",
              std::string(out.deployment.to_string()).c_str());
}

int usage(const char *argv0) {
  std::fprintf(stderr, "usage: %s [--sysroot PATH] [--hook-timeout SECONDS] REVISION\n", argv0);
  return EXIT_FAILURE;
}

} // namespace

int main(int argc, char **argv) {
  const char *sysroot_path = "/";
  const char *revision = nullptr;
  unsigned long hook_timeout = 300;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (arg == "--sysroot" && i + 1 < argc)
      sysroot_path = argv[++i];
    else if (arg == "--hook-timeout" && i + 1 < argc)
      hook_timeout = std::strtoul(argv[++i], nullptr, 10);
    else if (revision == nullptr && arg[0] != '-')
      revision = argv[i];
    else
      return usage(argv[0]);
  }
  if (revision == nullptr || hook_timeout == 0 || hook_timeout > UINT32_MAX)
    return usage(argv[0]);

  g_autoptr(GFile) path = g_file_new_for_path(sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new(path);
  g_autoptr(GError) error = nullptr;
  if (!ostree_sysroot_load(sysroot, nullptr, &error)) {
    std::fprintf(stderr, "error: %s\n", error->message);
    return EXIT_FAILURE;
  }
  try {
    stage_with_hooks(*sysroot, revision, static_cast<std::uint32_t>(hook_timeout));
  } catch (const stagehand::Error &e) {
    switch (e.code()) {
    case stagehand::ErrorCode::HookVetoed:
      // Nothing stays staged after a veto; the booted system is untouched.
      // The new version said no (an update barrier, "update to 1.5 first"):
      // show the hook's own words, and do not retry this revision by itself.
      std::fprintf(stderr, "update refused by a pre-upgrade hook: %s\n", e.what());
      return EXIT_VETOED;
    case stagehand::ErrorCode::HookInvalid:
      // A hook file with the wrong type, owner or mode: the update is broken.
      std::fprintf(stderr, "update ships an unusable hook: %s\n", e.what());
      return EXIT_HOOK_INVALID;
    case stagehand::ErrorCode::Denylisted:
      // It was marked bad or did not boot here: an agent never retries that
      // by itself (set_allow_denylisted() is for a person's deliberate retry).
      std::fprintf(stderr, "update failed on this system before, not retrying: %s\n", e.what());
      return EXIT_DENYLISTED;
    default:
      std::fprintf(stderr, "error: %s\n", e.what());
      return EXIT_FAILURE;
    }
  }
  return EXIT_SUCCESS;
}
