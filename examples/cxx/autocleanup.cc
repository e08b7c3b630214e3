// The cleanup after a finalized update, early in the next boot, in C++: a
// finalization drops the old rollback deployment but does not prune the
// repository, so the shutdown step left a cleanup stamp; if there is one,
// run the cleanup and say what it freed. What stagehand-autocleanup.service
// does. Same options and output as examples/c/autocleanup.c.
//
//   autocleanup-cxx [--sysroot PATH]
//
// Build: c++ -std=c++17 autocleanup.cc $(pkg-config --cflags --libs stagehand-cxx-1)
#include <stagehand-cxx/stagehand.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::string str(const stagehand::DeploymentId &id) { return std::string(id.to_string()); }

// libostree announces "Freed objects: ..." with g_print() while it prunes;
// this program's stdout is its report, so that goes to the debug log.
void print_to_debug_log(const char *message) { g_debug("libostree: %s", message); }

void describe(const stagehand::CleanupStamp &stamp) {
  switch (stamp.kind) {
  case stagehand::CleanupStampKind::Finalized:
    std::printf("cleanup pending: %s was finalized\n", str(stamp.deployment).c_str());
    for (const stagehand::DeploymentId &id : stamp.dropped)
      std::printf("dropped: %s\n", str(id).c_str());
    break;
  case stagehand::CleanupStampKind::Removed:
    std::printf("cleanup pending: deployments removed at the end of a trial\n");
    break;
  default:
    // An empty stamp from an older tool, or a newer stagehand's format.
    std::printf("cleanup pending\n");
    break;
  }
}

void autocleanup(OstreeSysroot &sysroot) {
  // One file read, no lock: this is the common case at every boot.
  const stagehand::CleanupStamp stamp = stagehand::pending_cleanup(sysroot);
  if (stamp.kind == stagehand::CleanupStampKind::None) {
    std::printf("no cleanup pending\n");
    return;
  }
  describe(stamp);

  // Takes and releases the sysroot lock itself, waiting up to 60 s for an
  // update agent that holds it.
  auto options = stagehand::cleanup_options();
  options->set_lock_timeout_ms(60 * 1000);
  const GPrintFunc old_print = g_set_print_handler(print_to_debug_log);
  stagehand::CleanupReport report;
  try {
    report = stagehand::autocleanup(sysroot, *options);
  } catch (...) {
    g_set_print_handler(old_print);
    throw;
  }
  g_set_print_handler(old_print);

  for (const stagehand::DeploymentId &id : report.deployments_removed)
    std::printf("removed: %s\n", str(id).c_str());
  g_autofree char *freed = g_format_size(report.bytes_freed);
  std::printf("freed %llu objects (%s), %llu left\n",
              static_cast<unsigned long long>(report.objects_freed), freed,
              static_cast<unsigned long long>(report.objects_remaining));
  // Kept when another finalization wrote a new stamp meanwhile: the next
  // run handles that one.
  std::printf("%s\n", report.stamp_removed ? "stamp removed" : "stamp kept");
}

} // namespace

int main(int argc, char **argv) {
  const char *sysroot_path = "/";
  if (argc == 3 && std::string(argv[1]) == "--sysroot")
    sysroot_path = argv[2];
  else if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--sysroot PATH]\n", argv[0]);
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
    autocleanup(*sysroot);
  } catch (const stagehand::Error &e) {
    // The stamp stays in every failure case: the next boot tries again.
    if (e.matches(stagehand::ErrorCode::Locked))
      std::fprintf(stderr, "an update is in progress; cleaning up at the next boot: %s\n", e.what());
    else if (e.matches(stagehand::ErrorCode::Corrupt))
      std::fprintf(stderr, "the cleanup stamp cannot be read (stagehand autocleanup --force): %s\n",
                   e.what());
    else
      std::fprintf(stderr, "error: %s\n", e.what());
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
