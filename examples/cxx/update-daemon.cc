// A minimal update agent in C++ on top of stagehand's C++ binding: load the
// sysroot with libostree, take the sysroot lock, stage a revision that is
// already in the repository (pulling it is the agent's own business), and
// report what happened; failures arrive as stagehand::Error with a code.
//
//   update-daemon-cxx [--sysroot PATH] [--hold] REVISION
//
// Build: c++ -std=c++17 update-daemon.cc $(pkg-config --cflags --libs stagehand-cxx-1)
#include <stagehand-cxx/stagehand.hpp>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

void report(OstreeSysroot &sysroot) {
  const stagehand::Status status = stagehand::status(sysroot);
  for (const stagehand::DeploymentStatus &d : status.deployments)
    std::printf("%c %s %s%s%s\n", d.booted ? '*' : ' ', std::string(d.id().to_string()).c_str(),
                d.version.empty() ? "(no version)" : std::string(d.version).c_str(),
                d.staged ? " (staged)" : "", d.finalization_locked ? " (held)" : "");
  if (status.cleanup_pending)
    std::printf("a cleanup is pending (the next boot prunes the repository)\n");
}

void update(OstreeSysroot &sysroot, const char *revision, bool hold) {
  // Wait at most 30 s for another ostree writer (rpm-ostree, ostree admin).
  stagehand::sysroot_lock(sysroot, 30 * 1000);
  stagehand::StageOutcome out;
  try {
    rust::Box<stagehand::StageOptions> options = stagehand::stage_options(revision);
    options->set_lock_finalization(hold);
    out = stagehand::stage(sysroot, *options);
  } catch (...) {
    ostree_sysroot_unlock(&sysroot);
    throw;
  }
  ostree_sysroot_unlock(&sysroot);
  std::printf("%s %s%s\n",
              out.unchanged                                   ? "already staged:"
              : out.method == stagehand::StageMethod::Staged ? "staged:"
                                                              : "deployed:",
              std::string(out.deployment.to_string()).c_str(),
              out.finalization_locked ? " (held until unlocked)" : "");
}

} // namespace

int main(int argc, char **argv) {
  const char *sysroot_path = "/";
  const char *revision = nullptr;
  bool hold = false;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--sysroot") == 0 && i + 1 < argc)
      sysroot_path = argv[++i];
    else if (std::strcmp(argv[i], "--hold") == 0)
      hold = true;
    else if (revision == nullptr && argv[i][0] != '-')
      revision = argv[i];
    else {
      std::fprintf(stderr, "usage: %s [--sysroot PATH] [--hold] REVISION\n", argv[0]);
      return 2;
    }
  }
  if (revision == nullptr) {
    std::fprintf(stderr, "usage: %s [--sysroot PATH] [--hold] REVISION\n", argv[0]);
    return 2;
  }

  g_autoptr(GFile) path = g_file_new_for_path(sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new(path);
  g_autoptr(GError) error = nullptr;
  if (!ostree_sysroot_load(sysroot, nullptr, &error)) {
    std::fprintf(stderr, "error: %s\n", error->message);
    return 1;
  }
  try {
    update(*sysroot, revision, hold);
    report(*sysroot);
  } catch (const stagehand::Error &e) {
    // e.code() is the kind: ErrorCode::Locked, UnknownRevision, HookVetoed, ...
    std::fprintf(stderr, "error: %s [%s]\n", e.what(), e.nick().c_str());
    return e.matches(stagehand::ErrorCode::Locked) ? 75 /* EX_TEMPFAIL: retry later */ : 1;
  }
  return 0;
}
