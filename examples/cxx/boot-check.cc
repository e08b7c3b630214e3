// The boot-time side of an update agent in C++: assess this boot, then run
// the agent's health check and confirm the deployment (mark it good) or
// reject it (mark it bad, which rolls back). What stagehand-assess.service
// and a health-check unit ordered before stagehand-mark-good.service do, in
// one process. Same options and output as examples/c/boot-check.c.
//
//   boot-check-cxx [--sysroot PATH] [--evidence unknown|fallback|manual] [--tries N]
//                  [--health-check PROGRAM]
//
// --evidence is what the bootloader knows about this boot (a boot counter
// whose tries ran out means "fallback"); the `stagehand assess` command
// reads it from the GRUB/BLS boot counter, a library caller passes it in.
// With a boot counter configured (docs/boot-assessment.md), leave this to the
// units: the library's mark_good() and mark_bad() do not bless or disarm the
// counter, which `stagehand mark-good` and `stagehand mark-bad` do.
//
// Build: c++ -std=c++17 boot-check.cc $(pkg-config --cflags --libs stagehand-cxx-1)
#include <stagehand-cxx/stagehand.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string str(const stagehand::DeploymentId &id) { return std::string(id.to_string()); }

const char *outcome_nick(stagehand::AssessOutcome outcome) {
  switch (outcome) {
  case stagehand::AssessOutcome::Good: return "good";
  case stagehand::AssessOutcome::OnTrial: return "on-trial";
  case stagehand::AssessOutcome::BootedFailed: return "booted-failed";
  case stagehand::AssessOutcome::FellBack: return "fell-back";
  case stagehand::AssessOutcome::ManualChoice: return "manual-choice";
  case stagehand::AssessOutcome::Undetermined: return "undetermined";
  }
  return "unknown";
}

// The agent's own health check: empty when it passed, else why it failed.
std::string health_check(const char *program) {
  g_autoptr(GError) error = nullptr;
  const char *argv[] = {program, nullptr};
  int wait_status = 0;
  if (!g_spawn_sync(nullptr, const_cast<char **>(argv), nullptr, G_SPAWN_SEARCH_PATH, nullptr,
                    nullptr, nullptr, nullptr, &wait_status, &error) ||
      !g_spawn_check_wait_status(wait_status, &error))
    return std::string("health check ") + program + ": " + error->message;
  return {};
}

// With the sysroot lock held.
void confirm(OstreeSysroot &sysroot, const char *check) {
  auto options = stagehand::health_options();
  const std::string why = check != nullptr ? health_check(check) : std::string();
  if (!why.empty()) {
    // "": the booted deployment. It is failed and denylisted; the newest
    // known-good deployment becomes the default.
    const stagehand::MarkBadOutcome bad = stagehand::mark_bad(sysroot, "", why, *options);
    std::printf("marked bad: %s (%s)\n", str(bad.deployment).c_str(), why.c_str());
    if (!bad.rolled_back_to.stateroot.empty())
      std::printf("rolled back to %s\n", str(bad.rolled_back_to).c_str());
    if (bad.reboot_needed)
      std::printf("reboot needed\n");
    return;
  }
  const stagehand::MarkGoodOutcome good = stagehand::mark_good(sysroot, *options);
  std::printf("marked good: %s after %u boot(s)\n", str(good.deployment).c_str(), good.attempts);
  // Releasing the trial's retention pins (and removing a deployment only they
  // kept) is left to the cleanup after the verdict, off the boot path:
  // stagehand-autocleanup.service, or autocleanup(), whose report names what
  // it released and removed (examples/cxx/autocleanup.cc). A daemon that
  // ships no systemd units calls it when this says so.
  if (good.retention_pending)
    std::printf("retention pending: the cleanup releases the trial's pins\n");
}

void boot_check(OstreeSysroot &sysroot, stagehand::BootEvidence evidence, std::uint32_t tries,
                const char *check) {
  stagehand::SysrootLock lock(sysroot, 30 * 1000);
  // Counts the boot once however often it runs, and fails what the
  // bootloader fell back from.
  const stagehand::Verdict verdict =
      stagehand::assess(sysroot, evidence, tries, *stagehand::health_options());
  std::printf("verdict: %s: %s\n", outcome_nick(verdict.outcome),
              std::string(verdict.message).c_str());
  switch (verdict.outcome) {
  case stagehand::AssessOutcome::OnTrial:
    confirm(sysroot, check);
    break;
  case stagehand::AssessOutcome::FellBack:
    for (const stagehand::DeploymentId &id : verdict.failed)
      std::printf("failed to boot: %s\n", str(id).c_str());
    break;
  default:
    // Known good already, or not ours to judge (a person's choice).
    break;
  }
  if (verdict.reboot_needed)
    std::printf("reboot needed: the default is %s\n", str(verdict.default_deployment).c_str());
}

int usage(const char *argv0) {
  std::fprintf(stderr,
               "usage: %s [--sysroot PATH] [--evidence unknown|fallback|manual] [--tries N] "
               "[--health-check PROGRAM]\n",
               argv0);
  return EXIT_FAILURE;
}

} // namespace

int main(int argc, char **argv) {
  const char *sysroot_path = "/";
  const char *check = nullptr;
  stagehand::BootEvidence evidence = stagehand::BootEvidence::Unknown;
  std::uint32_t tries = 0;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (i + 1 >= argc)
      return usage(argv[0]);
    const char *value = argv[++i];
    if (arg == "--sysroot")
      sysroot_path = value;
    else if (arg == "--health-check")
      check = value;
    else if (arg == "--tries")
      tries = static_cast<std::uint32_t>(std::strtoul(value, nullptr, 10));
    else if (arg == "--evidence" && std::strcmp(value, "unknown") == 0)
      evidence = stagehand::BootEvidence::Unknown;
    else if (arg == "--evidence" && std::strcmp(value, "fallback") == 0)
      evidence = stagehand::BootEvidence::Fallback;
    else if (arg == "--evidence" && std::strcmp(value, "manual") == 0)
      evidence = stagehand::BootEvidence::ManualChoice;
    else
      return usage(argv[0]);
  }

  g_autoptr(GFile) path = g_file_new_for_path(sysroot_path);
  g_autoptr(OstreeSysroot) sysroot = ostree_sysroot_new(path);
  g_autoptr(GError) error = nullptr;
  if (!ostree_sysroot_load(sysroot, nullptr, &error)) {
    std::fprintf(stderr, "error: %s\n", error->message);
    return EXIT_FAILURE;
  }
  try {
    boot_check(*sysroot, evidence, tries, check);
  } catch (const stagehand::Error &e) {
    if (e.matches(stagehand::ErrorCode::NoKnownGood))
      std::fprintf(stderr, "the health check failed, but there is nothing to roll back to: %s\n",
                   e.what());
    else
      std::fprintf(stderr, "error: %s\n", e.what());
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
