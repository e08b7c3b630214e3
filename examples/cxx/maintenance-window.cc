// "Download now, apply at the maintenance window", in C++: stage the update
// as soon as it is pulled, with finalization locked, so that shutting down
// leaves it staged instead of booting into it; at the window, unlock
// finalization and reboot. Same commands and output as
// examples/c/maintenance-window.c.
//
//   maintenance-window-cxx [--sysroot PATH] download REVISION
//   maintenance-window-cxx [--sysroot PATH] apply
//   maintenance-window-cxx [--sysroot PATH] cancel
//
// The lock lives in /run, as libostree expects, and so does the staged
// state: after an unplanned reboot nothing is staged any more, and the agent
// stages the (already pulled) revision again at its next run.
//
// Build: c++ -std=c++17 maintenance-window.cc $(pkg-config --cflags --libs stagehand-cxx-1)
#include <stagehand-cxx/stagehand.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::string str(const stagehand::DeploymentId &id) { return std::string(id.to_string()); }

void download(OstreeSysroot &sysroot, const std::string &revision) {
  // (Pulling the revision into the repository comes first: the agent's own
  // business.) Locked before the deployment is written, so no shutdown in
  // between can finalize it.
  auto options = stagehand::stage_options(revision);
  options->set_lock_finalization(true);
  stagehand::SysrootLock lock(sysroot, 30 * 1000);
  const stagehand::StageOutcome out = stagehand::stage(sysroot, *options);
  std::printf("staged: %s, held until the maintenance window\n", str(out.deployment).c_str());
}

void apply(OstreeSysroot &sysroot) {
  // No sysroot lock needed: this only removes libostree's lock file.
  const bool was_locked = stagehand::unlock_finalization(sysroot);
  for (const stagehand::DeploymentStatus &d : stagehand::status(sysroot).deployments)
    if (d.staged) {
      // Here the agent would reboot (or leave that to the window's schedule).
      std::printf("%s: %s takes effect at the next reboot\n", was_locked ? "released" : "not held",
                  str(d.id()).c_str());
      return;
    }
  std::printf("nothing is staged\n");
}

void cancel(OstreeSysroot &sysroot) {
  stagehand::SysrootLock lock(sysroot, 30 * 1000);
  // Removes the finalization lock with the deployment.
  const stagehand::UnstageOutcome out = stagehand::unstage(sysroot);
  if (out.unstaged)
    std::printf("unstaged: %s\n", str(out.deployment).c_str());
  else
    std::printf("nothing is staged\n");
}

} // namespace

int main(int argc, char **argv) {
  int i = 1;
  const char *sysroot_path = "/";
  if (argc > 2 && std::string(argv[1]) == "--sysroot") {
    sysroot_path = argv[2];
    i = 3;
  }
  const std::string command = i < argc ? argv[i] : "";
  const int n_args = argc - i - 1;
  if (!((command == "download" && n_args == 1) ||
        ((command == "apply" || command == "cancel") && n_args == 0))) {
    std::fprintf(stderr, "usage: %s [--sysroot PATH] download REVISION | apply | cancel\n", argv[0]);
    return EXIT_FAILURE;
  }

  g_autoptr(GFile) path = g_file_new_for_path(sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new(path);
  g_autoptr(GError) error = nullptr;
  if (!ostree_sysroot_load(sysroot, nullptr, &error)) {
    std::fprintf(stderr, "error: %s\n", error->message);
    return EXIT_FAILURE;
  }
  try {
    if (command == "download")
      download(*sysroot, argv[i + 1]);
    else if (command == "apply")
      apply(*sysroot);
    else
      cancel(*sysroot);
  } catch (const stagehand::Error &e) {
    if (e.matches(stagehand::ErrorCode::NotBooted))
      std::fprintf(stderr, "holding an update needs a booted system: %s\n", e.what());
    else
      std::fprintf(stderr, "error: %s\n", e.what());
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
