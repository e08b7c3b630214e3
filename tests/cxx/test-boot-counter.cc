// stagehand::BootAssessment and stagehand::SysrootLock on a booted test
// sysroot with a GRUB environment block counter, over two boots (the short
// version of tests/c/test-boot-counter.c):
//
//   boot 1 (1.0)  the RAII lock holds libostree's lock exactly for its scope;
//                 a block made by the real `grub-editenv create`; stage 2.0,
//                 the real `ostree admin finalize-staged`, arm: counting
//   boot 2 (2.0)  GRUB's boot counting took one try (stagehand-testbed run
//                 --grubenv); assess sees the trial; the health deadline
//                 passes with 2.0 still on trial: marked bad, rolled back,
//                 the counter disarmed (`grub-editenv list` agrees)
//
// Built with -Wall -Wextra -Werror (tests/cxx/meson.build).

#include <stagehand-cxx/stagehand.hpp>

#include <glib/gstdio.h>
#include <ostree.h>

#include <string>
#include <vector>

#define GRUBENV "/boot/grub/grubenv"
#define CONFIG "/var/tmp/stagehand-boot-counter-cxx.conf"

namespace {

std::string env(const char *name) {
  const char *v = g_getenv(name);
  if (v == nullptr || *v == '\0')
    g_error("%s is not set: run this test with stagehand-testbed run --grubenv " GRUBENV, name);
  return v;
}

#define assert_cmpstr(a, op, b)                                                \
  do {                                                                         \
    const std::string a_(a), b_(b);                                            \
    g_assert_cmpstr(a_.c_str(), op, b_.c_str());                               \
  } while (0)

std::string id_of(const char *version_var) {
  return env("STAGEHAND_TEST_STATEROOT") + ":" + env(version_var) + ".0";
}

// A loaded sysroot, unreferenced on destruction.
struct Sysroot {
  OstreeSysroot *ptr;
  Sysroot() {
    g_autoptr(GError) error = nullptr;
    g_autoptr(GFile) path = g_file_new_for_path(env("STAGEHAND_TEST_SYSROOT").c_str());
    ptr = ostree_sysroot_new(path);
    ostree_sysroot_load(ptr, nullptr, &error);
    g_assert_no_error(error);
  }
  Sysroot(const Sysroot &) = delete;
  Sysroot &operator=(const Sysroot &) = delete;
  ~Sysroot() { g_object_unref(ptr); }
  OstreeSysroot &operator*() { return *ptr; }
};

std::string run(const std::vector<std::string> &argv) {
  std::vector<char *> args;
  for (const auto &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  g_autoptr(GError) error = nullptr;
  g_autofree char *out = nullptr;
  g_autofree char *err = nullptr;
  int wait_status = 0;
  g_spawn_sync(nullptr, args.data(), nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, &out,
               &err, &wait_status, &error);
  g_assert_no_error(error);
  if (!g_spawn_check_wait_status(wait_status, &error))
    g_error("%s failed: %s\n%s%s", argv[0].c_str(), error->message, out, err);
  return out;
}

// A variable of the block as the real grub-editenv reads it ("" when unset).
std::string grubenv_var(const std::string &name) {
  const std::string out = run({"grub-editenv", GRUBENV, "list"});
  const std::string prefix = name + "=";
  std::size_t pos = 0;
  while (pos < out.size()) {
    const std::size_t end = out.find('\n', pos);
    const std::string line = out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (line.compare(0, prefix.size(), prefix) == 0)
      return line.substr(prefix.size());
    if (end == std::string::npos)
      break;
    pos = end + 1;
  }
  return "";
}

// Whether another process (another sysroot object, another open file
// description) could take the sysroot lock now.
bool lock_free() {
  Sysroot other;
  g_autoptr(GError) error = nullptr;
  gboolean acquired = FALSE;
  g_assert_true(ostree_sysroot_try_lock(other.ptr, &acquired, &error));
  g_assert_no_error(error);
  if (acquired)
    ostree_sysroot_unlock(other.ptr);
  return acquired;
}

// GTest makes warnings fatal; marking a deployment bad warns on purpose.
// Record the stagehand domain's warnings instead, and check them.
std::vector<std::string> warnings;

gboolean stagehand_warnings_not_fatal(const char *log_domain, GLogLevelFlags log_level,
                                      const char *, gpointer) {
  return !(g_strcmp0(log_domain, "stagehand") == 0 && (log_level & G_LOG_LEVEL_WARNING) != 0);
}

void record_warning(const char *, GLogLevelFlags, const char *message, gpointer) {
  warnings.emplace_back(message);
}

void test_boot1_lock_and_arm() {
  Sysroot sysroot;
  const std::string v2 = id_of("STAGEHAND_TEST_COMMIT_2_0");

  // The RAII lock: held for its scope, released by the destructor, also
  // when an exception leaves the scope.
  g_assert_true(lock_free());
  {
    stagehand::SysrootLock lock(*sysroot);
    g_assert_false(lock_free());
  }
  g_assert_true(lock_free());
  try {
    stagehand::SysrootLock lock(*sysroot, 1000);
    g_assert_false(lock_free());
    throw std::runtime_error("leaving the scope");
  } catch (const std::runtime_error &) {
  }
  g_assert_true(lock_free());

  g_assert_cmpint(g_mkdir_with_parents("/boot/grub", 0755), ==, 0);
  run({"grub-editenv", GRUBENV, "create"});
  g_autoptr(GError) error = nullptr;
  g_assert_true(g_file_set_contents(CONFIG, "[bootloader]\nbackend = grubenv\ntries = 2\n", -1, &error));
  g_assert_no_error(error);

  stagehand::BootAssessment ba(*sysroot, CONFIG);
  assert_cmpstr(std::string(ba.backend()), ==, "grubenv");
  assert_cmpstr(std::string(ba.config_path()), ==, CONFIG);
  g_assert_cmpuint(ba.tries(), ==, 2);
  g_assert_true(ba.query_counter(*sysroot).state == stagehand::CounterState::NotArmed);
  // Without the caller's lock: NotLocked, nothing written.
  try {
    ba.arm_finalized(*sysroot, v2);
    g_error("arm_finalized ran without the sysroot lock");
  } catch (const stagehand::Error &e) {
    g_assert_true(e.code() == stagehand::ErrorCode::NotLocked);
  }

  {
    stagehand::SysrootLock lock(*sysroot);
    auto out = stagehand::stage(*sysroot, *stagehand::stage_options(env("STAGEHAND_TEST_COMMIT_2_0")));
    assert_cmpstr(std::string(out.deployment.to_string()), ==, v2);
    // Still staged: never armed at staging.
    auto early = ba.arm_finalized(*sysroot, v2);
    g_assert_false(early.armed);
    g_assert_true(std::string(early.reason).find("not the default deployment") != std::string::npos);
  }
  assert_cmpstr(grubenv_var("boot_counter"), ==, "");

  run({"ostree", "admin", "finalize-staged"});
  {
    stagehand::SysrootLock lock(*sysroot);
    auto armed = ba.arm_finalized(*sysroot, v2);
    g_assert_true(armed.armed);
    g_assert_cmpuint(armed.tries, ==, 2);
    assert_cmpstr(std::string(armed.deployment.to_string()), ==, v2);
    assert_cmpstr(std::string(armed.reason), ==, "");
  }
  auto counter = ba.query_counter(*sysroot, v2);
  g_assert_true(counter.state == stagehand::CounterState::Counting);
  g_assert_cmpuint(counter.left, ==, 2);
  g_assert_cmpint(counter.done, ==, -1);
  assert_cmpstr(grubenv_var("boot_counter"), ==, "2");
  assert_cmpstr(grubenv_var("boot_success"), ==, "0");

  // A bad configuration is a typed error.
  g_assert_true(g_file_set_contents("/tmp/bad.conf", "[bootloader]\nbackend = lilo\n", -1, &error));
  try {
    stagehand::BootAssessment bad(*sysroot, "/tmp/bad.conf");
    g_error("a bad configuration was accepted");
  } catch (const stagehand::Error &e) {
    g_assert_true(e.code() == stagehand::ErrorCode::Config);
  }
}

void test_boot2_deadline_disarms() {
  Sysroot sysroot;
  const std::string v1 = id_of("STAGEHAND_TEST_COMMIT_1_0");
  const std::string v2 = id_of("STAGEHAND_TEST_COMMIT_2_0");

  assert_cmpstr(env("STAGEHAND_TEST_GRUB_CHOICE"), ==, "default");
  assert_cmpstr(env("STAGEHAND_TEST_BOOTED_COMMIT"), ==, env("STAGEHAND_TEST_COMMIT_2_0"));
  assert_cmpstr(grubenv_var("boot_counter"), ==, "1");

  stagehand::BootAssessment ba(*sysroot, CONFIG);
  stagehand::SysrootLock lock(*sysroot);
  auto assessed = ba.assess(*sysroot);
  g_assert_true(assessed.verdict.outcome == stagehand::AssessOutcome::OnTrial);
  g_assert_true(assessed.counter_evidence == stagehand::CounterEvidence::OnTrial);
  g_assert_cmpuint(assessed.tries_left, ==, 1);
  assert_cmpstr(std::string(assessed.counter_error), ==, "");
  g_assert_cmpuint(assessed.disarmed.size(), ==, 0);
  // The trial is open: its pin on 1.0 is needed, no cleanup is due.
  g_assert_false(assessed.verdict.retention_pending);
  g_assert_cmpuint(ba.time_remaining_ms(), <=, ba.health_deadline_secs() * 1000);

  // boot-complete.target was not reached in time: the caller calls deadline().
  g_test_log_set_fatal_handler(stagehand_warnings_not_fatal, nullptr);
  const guint handler = g_log_set_handler(
      "stagehand", static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL), record_warning, nullptr);
  auto d = ba.deadline(*sysroot);
  g_log_remove_handler("stagehand", handler);
  g_test_log_set_fatal_handler(nullptr, nullptr);
  g_assert_true(d.missed);
  assert_cmpstr(std::string(d.booted.to_string()), ==, v2);
  assert_cmpstr(std::string(d.marked_bad.outcome.deployment.to_string()), ==, v2);
  g_assert_true(std::string(d.marked_bad.outcome.reason).find("boot-complete.target was not reached within 10min") == 0);
  assert_cmpstr(std::string(d.marked_bad.outcome.rolled_back_to.to_string()), ==, v1);
  g_assert_true(d.marked_bad.outcome.reboot_needed);
  g_assert_false(d.marked_bad.reboot); // auto-reboot is off
  g_assert_cmpuint(d.marked_bad.disarmed.size(), ==, 1);
  bool warned = false;
  for (const auto &w : warnings)
    warned = warned || w.find("marked " + v2 + " bad: boot-complete.target was not reached") == 0;
  g_assert_true(warned);

  // Disarmed: GRUB boots the rollback (1.0, the default again) next time.
  assert_cmpstr(grubenv_var("boot_counter"), ==, "");
  g_assert_true(ba.query_counter(*sysroot).state == stagehand::CounterState::NotArmed);
  // Already judged: a second deadline has nothing to do.
  auto again = ba.deadline(*sysroot);
  g_assert_false(again.missed);
  g_assert_cmpuint(again.marked_bad.disarmed.size(), ==, 0);
}

} // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  const std::string boot = env("STAGEHAND_TEST_BOOT");
  if (boot == "1")
    g_test_add_func("/cxx/boot-counter/boot1/lock-and-arm", test_boot1_lock_and_arm);
  else if (boot == "2")
    g_test_add_func("/cxx/boot-counter/boot2/deadline-disarms", test_boot2_deadline_disarms);
  else
    g_error("boot %s: this test runs in two boots", boot.c_str());
  return g_test_run();
}
