// The C++ binding on a real, booted test sysroot, the way a C++ update
// daemon uses it: the program loads and locks the sysroot itself with
// libostree, stages, reads the status, unstages, locks finalization, gets
// typed errors as stagehand::Error exceptions with their codes, walks the
// interrupted-operation guard, and queries and runs the cleanup stamp. The
// real ostree CLI (and stagehand's own CLI for the shutdown steps) is the
// peer that must agree with what the binding reports.
//
// Run by `stagehand-testbed run` (see rust/testbed), which builds the
// sysroot, boots it and passes:
//   STAGEHAND_TEST_BOOTED        1 inside the booted machine (required here)
//   STAGEHAND_TEST_SYSROOT       the sysroot path ("/")
//   STAGEHAND_TEST_STATEROOT     the stateroot
//   STAGEHAND_TEST_BRANCH        the branch 2.0 is on
//   STAGEHAND_TEST_COMMIT_1_0    the deployed (and booted) commit
//   STAGEHAND_TEST_COMMIT_2_0    a commit to stage
//   STAGEHAND_TEST_COMMIT_3_0    a commit without a kernel (branch testos/broken)
//   STAGEHAND_TEST_COMMIT_4_0    a commit with a passing and a vetoing hook (testos/hooked)
// and the argument --cli=PATH, the `stagehand` command.
//
// Built with -Wall -Wextra -Werror (tests/cxx/meson.build).

#include <stagehand-cxx/stagehand.hpp>

#include <glib/gstdio.h>
#include <ostree.h>

#include <string>
#include <vector>

#define FINALIZATION_LOCK_FILE "/run/ostree/staged-deployment-locked"
#define CLEANUP_STAMP "/sysroot/.cleanup"

namespace {

std::string cli_path;

std::string env(const char *name) {
  const char *v = g_getenv(name);
  if (v == nullptr || *v == '\0')
    g_error("%s is not set: run this test with stagehand-testbed run", name);
  return v;
}

std::string str(const rust::String &s) { return std::string(s); }

// g_assert_cmpstr() on copies: its arguments may be temporaries (std::string,
// rust::String) whose c_str() would dangle inside the macro.
#define assert_cmpstr(a, op, b)                                                \
  do {                                                                         \
    const std::string a_(a), b_(b);                                            \
    g_assert_cmpstr(a_.c_str(), op, b_.c_str());                               \
  } while (0)

// A loaded sysroot, unreferenced on destruction.
struct Sysroot {
  OstreeSysroot *ptr;
  bool locked = false;

  Sysroot() {
    g_autoptr(GError) error = nullptr;
    g_autoptr(GFile) path = g_file_new_for_path(env("STAGEHAND_TEST_SYSROOT").c_str());
    ptr = ostree_sysroot_new(path);
    ostree_sysroot_load(ptr, nullptr, &error);
    g_assert_no_error(error);
  }
  Sysroot(const Sysroot &) = delete;
  Sysroot &operator=(const Sysroot &) = delete;
  ~Sysroot() {
    if (locked)
      ostree_sysroot_unlock(ptr);
    g_object_unref(ptr);
  }

  // Lock with libostree's own lock, as a daemon does.
  void lock() {
    g_autoptr(GError) error = nullptr;
    ostree_sysroot_lock(ptr, &error);
    g_assert_no_error(error);
    locked = true;
  }
  void unlock() {
    ostree_sysroot_unlock(ptr);
    locked = false;
  }

  OstreeSysroot &operator*() { return *ptr; }
};

// Run f, which must throw stagehand::Error with `code`; return the error.
template <typename F> stagehand::Error expect_error(stagehand::ErrorCode code, F &&f) {
  try {
    f();
  } catch (const stagehand::Error &e) {
    if (e.code() != code)
      g_error("expected error %s, got %s (%d): %s",
              std::string(stagehand::error_code_nick(code)).c_str(), e.nick().c_str(),
              static_cast<int>(e.code()), e.what());
    return e;
  } catch (const std::exception &e) {
    g_error("expected stagehand::Error %s, got another exception: %s",
            std::string(stagehand::error_code_nick(code)).c_str(), e.what());
  }
  g_error("expected error %s, nothing was thrown",
          std::string(stagehand::error_code_nick(code)).c_str());
}

// Run a command; its exit status must be 0. Returns its stdout.
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

// Deployment directories of the stateroot: what an error must not leave behind.
guint n_deployment_dirs() {
  const std::string dir = "/ostree/deploy/" + env("STAGEHAND_TEST_STATEROOT") + "/deploy";
  g_autoptr(GDir) d = g_dir_open(dir.c_str(), 0, nullptr);
  g_assert_nonnull(d);
  guint n = 0;
  while (const char *name = g_dir_read_name(d))
    if (!g_str_has_suffix(name, ".origin"))
      n++;
  return n;
}

bool staged_for_ostree() {
  return run({"ostree", "admin", "status"}).find("(staged)") != std::string::npos;
}

// ------------------------------------------------------------- errors ----

void test_error_codes() {
  using stagehand::ErrorCode;
  // The numbers are the C library's STAGEHAND_ERROR codes.
  g_assert_cmpint(static_cast<int>(ErrorCode::Failed), ==, 0);
  g_assert_cmpint(static_cast<int>(ErrorCode::UnknownRevision), ==, 7);
  g_assert_cmpint(static_cast<int>(ErrorCode::NotBootable), ==, 9);
  g_assert_cmpint(static_cast<int>(ErrorCode::Interrupted), ==, 15);
  g_assert_cmpint(static_cast<int>(ErrorCode::AlreadyComplete), ==, 16);
  g_assert_cmpint(static_cast<int>(ErrorCode::ConfigChanged), ==, 17);
  g_assert_cmpint(static_cast<int>(ErrorCode::Unsupported), ==, 20);
  g_assert_cmpint(static_cast<int>(ErrorCode::NotLocked), ==, 21);
  assert_cmpstr(std::string(stagehand::error_code_nick(ErrorCode::NotLocked)).c_str(), ==,
                "not-locked");
  assert_cmpstr(std::string(stagehand::error_code_nick(ErrorCode::UnknownRevision)).c_str(),
                  ==, "unknown-revision");
  assert_cmpstr(std::string(stagehand::error_code_nick(static_cast<ErrorCode>(999))).c_str(),
                  ==, "unknown");

  // The prefix parser: well-formed, and every malformed shape kept whole as Failed.
  auto e = stagehand::detail::to_error("stagehand-error 17 config-changed: step \"x\" ran with ...");
  g_assert_true(e.code() == ErrorCode::ConfigChanged);
  assert_cmpstr(e.what(), ==, "step \"x\" ran with ...");
  assert_cmpstr(e.nick().c_str(), ==, "config-changed");
  for (const char *bad : {"plain message", "stagehand-error x failed: m",
                          "stagehand-error 7 not-booted: nick and number disagree",
                          "stagehand-error 7 unknown-revision missing colon",
                          "stagehand-error 7 unknown-revision:no space", "stagehand-error ",
                          "stagehand-error 99999999999 failed: m"}) {
    auto f = stagehand::detail::to_error(bad);
    g_assert_true(f.code() == ErrorCode::Failed);
    assert_cmpstr(f.what(), ==, bad);
  }
}

void test_deployment_id() {
  const std::string text = env("STAGEHAND_TEST_STATEROOT") + ":" +
                           env("STAGEHAND_TEST_COMMIT_1_0") + ".3";
  stagehand::DeploymentId id = stagehand::parse_deployment_id(text);
  assert_cmpstr(str(id.stateroot).c_str(), ==, env("STAGEHAND_TEST_STATEROOT").c_str());
  g_assert_cmpuint(id.serial, ==, 3);
  assert_cmpstr(str(id.to_string()).c_str(), ==, text.c_str());
  auto e = expect_error(stagehand::ErrorCode::InvalidArgument,
                        [] { stagehand::parse_deployment_id("testos:abc.0"); });
  g_assert_nonnull(strstr(e.what(), "testos:abc.0"));
}

// ------------------------------------------------------------- guard ----

void test_guard_cycle() {
  using stagehand::ErrorCode;
  using stagehand::GuardPhase;
  g_autoptr(GError) error = nullptr;
  g_autofree char *dir = g_dir_make_tmp("guard-XXXXXX", &error);
  g_assert_no_error(error);
  const char *digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const char *other = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

  g_assert_true(stagehand::guard_status(dir, "repartition").phase == GuardPhase::Absent);

  // begin: started, durably, with the digest.
  auto token = stagehand::guard_begin(dir, "repartition", digest);
  auto started = token->stamp();
  g_assert_true(started.phase == GuardPhase::Started);
  assert_cmpstr(str(started.digest).c_str(), ==, digest);
  g_assert_true(g_file_test(str(token->path()).c_str(), G_FILE_TEST_IS_REGULAR));
  assert_cmpstr(str(token->replaced()).c_str(), ==, "");
  g_assert_true(stagehand::guard_status(dir, "repartition").phase == GuardPhase::Started);

  // Begun again before commit: the previous run was interrupted.
  auto e = expect_error(ErrorCode::Interrupted,
                        [&] { stagehand::guard_begin(dir, "repartition", digest); });
  g_assert_nonnull(strstr(e.what(), "never completed"));

  // Commit consumes the token.
  auto done = stagehand::guard_commit(std::move(token));
  g_assert_true(done.phase == GuardPhase::Complete);
  assert_cmpstr(str(done.run).c_str(), ==, str(started.run).c_str());
  assert_cmpstr(str(done.completed).c_str(), !=, "");
  auto st = stagehand::guard_status(dir, "repartition");
  g_assert_true(st.phase == GuardPhase::Complete);
  assert_cmpstr(str(st.completed).c_str(), ==, str(done.completed).c_str());

  // Same digest again: already done; another digest: the configuration changed.
  expect_error(ErrorCode::AlreadyComplete,
               [&] { stagehand::guard_begin(dir, "repartition", digest); });
  e = expect_error(ErrorCode::ConfigChanged,
                   [&] { stagehand::guard_begin(dir, "repartition", other); });
  g_assert_nonnull(strstr(e.what(), other));
  expect_error(ErrorCode::ConfigChanged,
               [&] { stagehand::guard_begin(dir, "repartition"); });

  // The administrator's override says what it replaced, in the token and
  // as a warning in the daemon's log (GLib, domain "stagehand").
  g_test_expect_message("stagehand", G_LOG_LEVEL_WARNING,
                        "forcing step \"repartition\": overriding its complete record*");
  auto forced = stagehand::guard_begin_forced(dir, "repartition", other);
  g_test_assert_expected_messages();
  g_assert_nonnull(strstr(str(forced->replaced()).c_str(), "complete"));
  // A token dropped without a commit leaves the step started...
  { auto dropped = std::move(forced); }
  expect_error(ErrorCode::Interrupted, [&] { stagehand::guard_begin(dir, "repartition", other); });
  // ...and another process can resume it, with the same digest only.
  expect_error(ErrorCode::ConfigChanged,
               [&] { stagehand::guard_resume(dir, "repartition", digest); });
  stagehand::guard_commit(stagehand::guard_resume(dir, "repartition", other));
  g_assert_true(stagehand::guard_status(dir, "repartition").phase == GuardPhase::Complete);

  // reset forgets it; a second reset finds nothing.
  g_assert_true(stagehand::guard_reset(dir, "repartition"));
  g_assert_false(stagehand::guard_reset(dir, "repartition"));
  g_assert_true(stagehand::guard_status(dir, "repartition").phase == GuardPhase::Absent);
  stagehand::guard_commit(stagehand::guard_begin(dir, "repartition"));

  // A stamp that does not parse is never taken for absent or complete.
  const std::string stamp = std::string(dir) + "/repartition.stamp";
  g_assert_true(g_file_set_contents(stamp.c_str(), "stagehand-redline 1\nname=rep", -1, nullptr));
  expect_error(ErrorCode::Corrupt, [&] { stagehand::guard_status(dir, "repartition"); });
  expect_error(ErrorCode::Corrupt, [&] { stagehand::guard_begin(dir, "repartition"); });
  g_test_expect_message("stagehand", G_LOG_LEVEL_WARNING, "*overriding an unreadable stamp*");
  stagehand::guard_commit(stagehand::guard_begin_forced(dir, "repartition"));
  g_test_assert_expected_messages();

  // Bad input.
  expect_error(ErrorCode::InvalidArgument, [&] { stagehand::guard_begin(dir, "../x"); });
  expect_error(ErrorCode::InvalidArgument, [&] { stagehand::guard_begin(dir, "x", "xyz"); });
  e = expect_error(ErrorCode::Io, [] { stagehand::guard_begin("/nonexistent/guard", "x"); });
  g_assert_nonnull(strstr(e.what(), "/nonexistent/guard"));

  // The digest of a configuration file is its SHA-256.
  const std::string conf = std::string(dir) + "/conf";
  g_assert_true(g_file_set_contents(conf.c_str(), "test", -1, nullptr));
  assert_cmpstr(str(stagehand::guard_file_digest(conf)).c_str(), ==, digest);
  expect_error(ErrorCode::Io, [&] { stagehand::guard_file_digest(conf + ".missing"); });

  assert_cmpstr(std::string(stagehand::guard_default_dir()).c_str(), ==,
                  "/var/lib/stagehand/guard");
  g_assert_true(stagehand::guard_reset(dir, "repartition"));
  g_remove(conf.c_str());
  g_rmdir(dir);
}

// ----------------------------------------------------------- staging ----

void test_stage_status_unstage() {
  Sysroot sysroot;
  sysroot.lock();
  const std::string c1 = env("STAGEHAND_TEST_COMMIT_1_0");
  const std::string c2 = env("STAGEHAND_TEST_COMMIT_2_0");

  auto options = stagehand::stage_options(env("STAGEHAND_TEST_BRANCH"));
  auto out = stagehand::stage(*sysroot, *options);
  g_assert_true(out.method == stagehand::StageMethod::Staged);
  g_assert_false(out.unchanged);
  g_assert_false(out.finalization_locked);
  assert_cmpstr(str(out.deployment.checksum).c_str(), ==, c2.c_str());
  assert_cmpstr(str(out.deployment.stateroot).c_str(), ==,
                  env("STAGEHAND_TEST_STATEROOT").c_str());
  g_assert_true(staged_for_ostree());

  // stagehand's status agrees with ostree's: the staged 2.0 first, then
  // the booted 1.0.
  auto status = stagehand::status(*sysroot);
  g_assert_cmpuint(status.deployments.size(), ==, 2);
  const auto &staged = status.deployments[0];
  g_assert_true(staged.staged);
  g_assert_false(staged.booted);
  g_assert_cmpuint(staged.index, ==, 0);
  assert_cmpstr(str(staged.checksum).c_str(), ==, c2.c_str());
  assert_cmpstr(str(staged.version).c_str(), ==, "2.0");
  g_assert_true(staged.id() == out.deployment);
  const auto &booted = status.deployments[1];
  g_assert_true(booted.booted);
  g_assert_false(booted.staged);
  assert_cmpstr(str(booted.checksum).c_str(), ==, c1.c_str());
  assert_cmpstr(str(booted.version).c_str(), ==, "1.0");
  g_assert_false(status.cleanup_pending);
  g_assert_false(status.retention_pending);

  // The same again writes nothing.
  auto again = stagehand::stage(*sysroot, *options);
  g_assert_true(again.unchanged);
  g_assert_true(again.deployment == out.deployment);

  auto removed = stagehand::unstage(*sysroot);
  g_assert_true(removed.unstaged);
  g_assert_true(removed.deployment == out.deployment);
  g_assert_false(staged_for_ostree());
  status = stagehand::status(*sysroot);
  g_assert_cmpuint(status.deployments.size(), ==, 1);
  g_assert_false(status.deployments[0].staged);
  removed = stagehand::unstage(*sysroot);
  g_assert_false(removed.unstaged);
  assert_cmpstr(str(removed.deployment.checksum).c_str(), ==, "");
  g_assert_cmpuint(n_deployment_dirs(), ==, 1);
}

void test_stage_errors() {
  using stagehand::ErrorCode;
  Sysroot sysroot;
  sysroot.lock();
  const guint dirs = n_deployment_dirs();

  auto e = expect_error(ErrorCode::UnknownRevision, [&] {
    stagehand::stage(*sysroot, *stagehand::stage_options("testos/no-such-branch"));
  });
  g_assert_nonnull(strstr(e.what(), "testos/no-such-branch"));
  assert_cmpstr(e.nick().c_str(), ==, "unknown-revision");

  e = expect_error(ErrorCode::NotBootable, [&] {
    stagehand::stage(*sysroot, *stagehand::stage_options("testos/broken"));
  });
  g_assert_nonnull(strstr(e.what(), env("STAGEHAND_TEST_COMMIT_3_0").c_str()));

  e = expect_error(ErrorCode::InvalidArgument,
                   [&] { stagehand::stage(*sysroot, *stagehand::stage_options("")); });
  assert_cmpstr(e.what(), ==, "invalid argument: empty revision");

  auto options = stagehand::stage_options(env("STAGEHAND_TEST_BRANCH"));
  options->set_stateroot("nosuchos");
  expect_error(ErrorCode::UnknownStateroot, [&] { stagehand::stage(*sysroot, *options); });
  options->set_stateroot("../etc");
  expect_error(ErrorCode::InvalidArgument, [&] { stagehand::stage(*sysroot, *options); });

  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_cancellable_cancel(cancellable);
  expect_error(ErrorCode::Cancelled, [&] {
    stagehand::stage(*sysroot, *stagehand::stage_options(env("STAGEHAND_TEST_BRANCH")),
                     cancellable);
  });

  // A GObject that is not a sysroot is refused, not dereferenced as one.
  e = expect_error(ErrorCode::InvalidArgument, [&] {
    stagehand::status(*reinterpret_cast<OstreeSysroot *>(cancellable));
  });
  g_assert_nonnull(strstr(e.what(), "stagehand::status"));
  g_autoptr(GObject) not_cancellable = G_OBJECT(g_object_new(G_TYPE_OBJECT, nullptr));
  expect_error(ErrorCode::InvalidArgument, [&] {
    stagehand::status(*sysroot, reinterpret_cast<GCancellable *>(not_cancellable));
  });

  // Nothing was left behind.
  g_assert_cmpuint(n_deployment_dirs(), ==, dirs);
  g_assert_false(staged_for_ostree());
}

void test_finalization_lock() {
  Sysroot sysroot;
  sysroot.lock();
  g_assert_false(stagehand::finalization_locked(*sysroot));

  auto options = stagehand::stage_options(env("STAGEHAND_TEST_BRANCH"));
  options->set_lock_finalization(true);
  auto out = stagehand::stage(*sysroot, *options);
  g_assert_true(out.finalization_locked);
  g_assert_true(g_file_test(FINALIZATION_LOCK_FILE, G_FILE_TEST_EXISTS));
  g_assert_true(stagehand::finalization_locked(*sysroot));
  auto status = stagehand::status(*sysroot);
  g_assert_true(status.deployments[0].staged);
  g_assert_true(status.deployments[0].finalization_locked);
  g_assert_false(status.deployments[1].finalization_locked);

  // A locked deployment survives finalization (libostree honours the file).
  sysroot.unlock();
  run({"ostree", "admin", "finalize-staged"});
  g_assert_true(staged_for_ostree());
  sysroot.lock();

  g_assert_true(stagehand::unlock_finalization(*sysroot));
  g_assert_false(g_file_test(FINALIZATION_LOCK_FILE, G_FILE_TEST_EXISTS));
  g_assert_false(stagehand::unlock_finalization(*sysroot));
  stagehand::lock_finalization(*sysroot);
  g_assert_true(stagehand::finalization_locked(*sysroot));

  // unstage removes the lock with the deployment.
  g_assert_true(stagehand::unstage(*sysroot).unstaged);
  g_assert_false(stagehand::finalization_locked(*sysroot));
}

// A daemon that forgot ostree_sysroot_lock(): every call that needs the
// caller's lock throws NotLocked, naming itself and ostree_sysroot_lock(),
// and changes nothing; locked with libostree's own lock, the same calls work.
void test_not_locked() {
  using stagehand::ErrorCode;
  Sysroot sysroot;
  const guint dirs = n_deployment_dirs();
  const std::string cli_before = run({"ostree", "admin", "status"});
  auto not_locked = [](const char *function, auto &&f) {
    auto e = expect_error(ErrorCode::NotLocked, f);
    if (strstr(e.what(), function) == nullptr ||
        strstr(e.what(), "ostree_sysroot_lock()") == nullptr)
      g_error("%s: message \"%s\" lacks the function or ostree_sysroot_lock()", function,
              e.what());
    assert_cmpstr(e.nick().c_str(), ==, "not-locked");
  };

  not_locked("stagehand::stage", [&] {
    stagehand::stage(*sysroot, *stagehand::stage_options(env("STAGEHAND_TEST_BRANCH")));
  });
  not_locked("stagehand::unstage", [&] { stagehand::unstage(*sysroot); });
  not_locked("stagehand::run_cleanup", [&] { stagehand::run_cleanup(*sysroot, true); });
  not_locked("stagehand::health_reset", [&] { stagehand::health_reset(*sysroot); });
  not_locked("stagehand::hooks_recover", [&] { stagehand::hooks_recover(*sysroot); });

  g_assert_cmpuint(n_deployment_dirs(), ==, dirs);
  assert_cmpstr(run({"ostree", "admin", "status"}), ==, cli_before);
  g_assert_false(staged_for_ostree());

  sysroot.lock();
  g_assert_false(stagehand::unstage(*sysroot).unstaged);
  g_assert_false(stagehand::hooks_recover(*sysroot).unstaged);
}

void test_sysroot_lock() {
  using stagehand::ErrorCode;
  Sysroot holder;
  holder.lock();
  Sysroot waiter;

  auto e = expect_error(ErrorCode::Locked, [&] { stagehand::sysroot_lock(*waiter, 100); });
  g_assert_nonnull(strstr(e.what(), "locked by another process"));
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_cancellable_cancel(cancellable);
  expect_error(ErrorCode::Cancelled,
               [&] { stagehand::sysroot_lock(*waiter, 10000, cancellable); });

  holder.unlock();
  stagehand::sysroot_lock(*waiter, 10000);
  waiter.locked = true; // released with ostree_sysroot_unlock() by ~Sysroot
  // Now the waiter holds it.
  gboolean acquired = TRUE;
  g_assert_true(ostree_sysroot_try_lock(holder.ptr, &acquired, nullptr));
  g_assert_false(acquired);
}

// ----------------------------------------------------------- cleanup ----

void test_cleanup_stamp() {
  using stagehand::CleanupStampKind;
  Sysroot sysroot;
  g_assert_true(stagehand::pending_cleanup(*sysroot).kind == CleanupStampKind::None);
  // Nothing pending: autocleanup does nothing (and takes no lock).
  auto report = stagehand::autocleanup(*sysroot, *stagehand::cleanup_options());
  g_assert_false(report.performed);

  // The empty stamp older tools (eos-updater's units) write.
  g_assert_true(g_file_set_contents(CLEANUP_STAMP, "", 0, nullptr));
  g_assert_true(stagehand::pending_cleanup(*sysroot).kind == CleanupStampKind::Legacy);
  g_assert_true(stagehand::status(*sysroot).cleanup_pending);

  // A damaged stamp is an error, left in place, never "nothing pending".
  g_assert_true(g_file_set_contents(CLEANUP_STAMP, "stagehand-cleanup-stamp 1\ngarbage\n", -1,
                                    nullptr));
  auto e = expect_error(stagehand::ErrorCode::Corrupt,
                        [&] { stagehand::pending_cleanup(*sysroot); });
  g_assert_nonnull(strstr(e.what(), CLEANUP_STAMP));
  g_assert_true(g_file_test(CLEANUP_STAMP, G_FILE_TEST_EXISTS));
  sysroot.lock();
  expect_error(stagehand::ErrorCode::Corrupt,
               [&] { stagehand::run_cleanup(*sysroot, false); });
  g_test_expect_message("stagehand", G_LOG_LEVEL_WARNING, "forcing the cleanup: *corrupt*");
  report = stagehand::run_cleanup(*sysroot, true);
  g_test_assert_expected_messages();
  g_assert_true(report.performed);
  g_assert_true(report.stamp_removed);
  g_assert_true(report.stamp.kind == CleanupStampKind::None);
  g_assert_cmpuint(report.released_pins.size(), ==, 0);
  g_assert_false(g_file_test(CLEANUP_STAMP, G_FILE_TEST_EXISTS));

  // A real one: stage 2.0, then the shutdown steps the units run around
  // ostree's finalization, then the query on the "next boot".
  auto staged = stagehand::stage(*sysroot, *stagehand::stage_options(env("STAGEHAND_TEST_BRANCH")));
  sysroot.unlock();
  run({cli_path, "finalize-stamp", "--record"});
  run({"ostree", "admin", "finalize-staged"});
  run({cli_path, "finalize-stamp"});
  g_assert_false(staged_for_ostree());

  auto stamp = stagehand::pending_cleanup(*sysroot);
  g_assert_true(stamp.kind == CleanupStampKind::Finalized);
  g_assert_true(stamp.deployment == staged.deployment);
  assert_cmpstr(str(stamp.finalized_at).c_str(), !=, "");
  g_assert_true(stagehand::status(*sysroot).cleanup_pending);

  // autocleanup takes the lock itself, prunes, and removes the stamp.
  auto options = stagehand::cleanup_options();
  options->set_lock_timeout_ms(10000);
  report = stagehand::autocleanup(*sysroot, *options);
  g_assert_true(report.performed);
  g_assert_true(report.stamp_removed);
  g_assert_true(report.stamp.kind == CleanupStampKind::Finalized);
  g_assert_true(report.stamp.deployment == staged.deployment);
  g_assert_cmpuint(report.objects_remaining, >, 0);
  g_assert_true(stagehand::pending_cleanup(*sysroot).kind == CleanupStampKind::None);
  g_assert_false(stagehand::status(*sysroot).cleanup_pending);
}

// The health transitions warn on purpose (a deployment marked bad, a
// denylisted commit staged anyway, a reset); GTest makes warnings fatal.
// Record stagehand's warnings instead, and check them.
std::vector<std::string> warnings;

void record_warning(const char *, GLogLevelFlags, const char *message, gpointer) {
  warnings.emplace_back(message);
}

gboolean stagehand_warnings_not_fatal(const char *log_domain, GLogLevelFlags log_level,
                                      const char *, gpointer) {
  return !(g_strcmp0(log_domain, "stagehand") == 0 && (log_level & G_LOG_LEVEL_WARNING) != 0);
}

void assert_warned(const char *pattern) {
  for (const auto &w : warnings)
    if (g_pattern_match_simple(pattern, w.c_str())) {
      warnings.clear();
      return;
    }
  std::string all;
  for (const auto &w : warnings)
    all += "  " + w + "\n";
  g_error("no stagehand warning \"%s\"; warned:\n%s", pattern, all.c_str());
}

// testos/hooked (4.0) ships 10-pass and 20-veto (exits 3); testos/badhook
// (5.0) a hook that is not executable (tests/c/meson.build).
void test_hooks() {
  using stagehand::ErrorCode;
  Sysroot sysroot;
  sysroot.lock();
  const guint dirs = n_deployment_dirs();
  auto hooked = stagehand::stage_options("testos/hooked");

  // The dry run reports both hooks; the veto is in the report, not thrown.
  auto report = stagehand::hooks_check(*sysroot, *hooked);
  g_assert_false(report.passed);
  assert_cmpstr(str(report.checksum), ==, env("STAGEHAND_TEST_COMMIT_4_0"));
  assert_cmpstr(str(report.version), ==, "4.0");
  assert_cmpstr(str(report.old.checksum), ==, env("STAGEHAND_TEST_COMMIT_1_0"));
  g_assert_cmpuint(report.hooks.size(), ==, 2);
  assert_cmpstr(str(report.hooks[0].name), ==, "10-pass");
  g_assert_true(report.hooks[0].passed);
  g_assert_true(report.hooks[0].end == stagehand::HookEnd::Passed);
  g_assert_true(report.hooks[0].origin == stagehand::HookOrigin::Vendor);
  assert_cmpstr(str(report.hooks[0].output_tail), ==, "pass: from 1.0 to 4.0\n");
  assert_cmpstr(str(report.hooks[1].path), ==, "/usr/lib/stagehand/pre-upgrade.d/20-veto");
  g_assert_false(report.hooks[1].passed);
  g_assert_true(report.hooks[1].end == stagehand::HookEnd::Exited);
  g_assert_cmpint(report.hooks[1].exit_status, ==, 3);
  assert_cmpstr(str(report.hooks[1].description), ==, "exit status 3");
  g_assert_false(staged_for_ostree());
  g_assert_cmpuint(n_deployment_dirs(), ==, dirs);

  // Staging it: the veto as an exception with its code and the C message.
  auto e = expect_error(ErrorCode::HookVetoed, [&] { stagehand::stage(*sysroot, *hooked); });
  g_assert_true(e.matches(ErrorCode::HookVetoed));
  assert_cmpstr(e.nick(), ==, "hook-vetoed");
  g_assert_nonnull(strstr(e.what(), "20-veto"));
  g_assert_nonnull(strstr(e.what(), "exit status 3"));
  g_assert_nonnull(strstr(e.what(), "update to 1.5 first"));
  g_assert_false(staged_for_ostree());
  g_assert_false(stagehand::finalization_locked(*sysroot));
  g_assert_cmpuint(n_deployment_dirs(), ==, dirs);

  // Nothing to recover after a veto.
  g_assert_false(stagehand::hooks_recover(*sysroot).unstaged);

  // A hook that is not executable: HookInvalid from both.
  auto bad = stagehand::stage_options("testos/badhook");
  e = expect_error(ErrorCode::HookInvalid, [&] { stagehand::hooks_check(*sysroot, *bad); });
  g_assert_nonnull(strstr(e.what(), "10-pass"));
  expect_error(ErrorCode::HookInvalid, [&] { stagehand::stage(*sysroot, *bad); });
  g_assert_false(staged_for_ostree());
  g_assert_cmpuint(n_deployment_dirs(), ==, dirs);
}

// stage → untested; mark_bad of the staged one → denylisted; re-stage →
// Denylisted; allowed explicitly; mark_bad of the only deployment →
// NoKnownGood; mark_good; assess; the denylist; reset.
void test_health() {
  using stagehand::ErrorCode;
  using stagehand::HealthState;
  Sysroot sysroot;
  sysroot.lock();
  const std::string c2 = env("STAGEHAND_TEST_COMMIT_2_0");
  auto defaults = stagehand::health_options();
  guint handler = g_log_set_handler(
      "stagehand", static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL),
      record_warning, nullptr);
  g_test_log_set_fatal_handler(stagehand_warnings_not_fatal, nullptr);

  auto status = stagehand::status(*sysroot);
  g_assert_true(status.deployments[0].health == HealthState::GoodFallback);
  g_assert_false(status.deployments[0].on_trial);
  g_assert_cmpuint(status.denylist.size(), ==, 0);
  g_assert_false(status.has_last_rollback);
  assert_cmpstr(str(status.health_error), ==, "");

  auto options = stagehand::stage_options(env("STAGEHAND_TEST_BRANCH"));
  auto staged = stagehand::stage(*sysroot, *options);
  status = stagehand::status(*sysroot);
  g_assert_true(status.deployments[0].staged);
  g_assert_true(status.deployments[0].health == HealthState::Untested);
  g_assert_true(status.deployments[0].on_trial);
  g_assert_true(status.deployments[1].pinned_by_stagehand);

  auto bad = stagehand::mark_bad(*sysroot, staged.deployment.to_string(), "smoke test failed",
                                 *defaults);
  assert_warned("marked * bad: smoke test failed; commit * denylisted");
  g_assert_true(bad.deployment == staged.deployment);
  g_assert_true(bad.unstaged);
  g_assert_false(bad.reboot_needed);
  assert_cmpstr(str(bad.denylisted), ==, c2);
  g_assert_false(staged_for_ostree());
  status = stagehand::status(*sysroot);
  g_assert_cmpuint(status.denylist.size(), ==, 1);
  assert_cmpstr(str(status.denylist[0].checksum), ==, c2);
  assert_cmpstr(str(status.denylist[0].reason), ==, "smoke test failed");
  g_assert_true(status.denylist[0].deployment == staged.deployment);

  auto e = expect_error(ErrorCode::Denylisted, [&] { stagehand::stage(*sysroot, *options); });
  g_assert_nonnull(strstr(e.what(), c2.c_str()));
  g_assert_false(staged_for_ostree());
  options->set_allow_denylisted(true);
  auto again = stagehand::stage(*sysroot, *options);
  assert_warned("staging denylisted commit * as explicitly allowed*");
  g_assert_true(stagehand::unstage(*sysroot).deployment == again.deployment);

  expect_error(ErrorCode::NoKnownGood,
               [&] { stagehand::mark_bad(*sysroot, "", "broken", *defaults); });
  expect_error(ErrorCode::UnknownDeployment, [&] {
    stagehand::mark_bad(*sysroot, "testos:0123456789abcdef", "", *defaults);
  });
  status = stagehand::status(*sysroot);
  g_assert_true(status.deployments[0].health == HealthState::GoodFallback);

  auto good = stagehand::mark_good(*sysroot, *defaults);
  g_assert_true(good.previous == HealthState::GoodFallback);
  g_assert_cmpuint(good.attempts, ==, 1);
  // No trial was open: no pin of stagehand's waits to be released.
  g_assert_false(good.retention_pending);
  status = stagehand::status(*sysroot);
  g_assert_true(status.deployments[0].health == HealthState::Good);

  auto verdict = stagehand::assess(*sysroot, stagehand::BootEvidence::Unknown, 0, *defaults);
  g_assert_true(verdict.outcome == stagehand::AssessOutcome::Good);
  g_assert_false(verdict.counted);
  g_assert_true(verdict.booted == good.deployment);
  g_assert_false(verdict.retention_pending);

  g_assert_cmpuint(stagehand::denylist(*sysroot).size(), ==, 1);
  expect_error(ErrorCode::InvalidArgument,
               [&] { stagehand::denylist_remove(*sysroot, "not-hex"); });
  auto removed = stagehand::denylist_remove(*sysroot, c2.substr(0, 10));
  assert_cmpstr(str(removed.checksum), ==, c2);
  g_assert_cmpuint(stagehand::denylist(*sysroot).size(), ==, 0);

  assert_cmpstr(str(stagehand::health_reset(*sysroot)), ==, "");
  assert_warned("health store * reset");
  status = stagehand::status(*sysroot);
  g_assert_true(status.deployments[0].health == HealthState::GoodFallback);

  g_test_log_set_fatal_handler(nullptr, nullptr);
  g_log_remove_handler("stagehand", handler);
}

} // namespace

int main(int argc, char **argv) {
  // --cli=PATH is ours; GTest gets the rest.
  std::vector<char *> args;
  for (int i = 0; i < argc; i++) {
    if (g_str_has_prefix(argv[i], "--cli="))
      cli_path = argv[i] + strlen("--cli=");
    else
      args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  char **av = args.data();
  g_test_init(&n, &av, nullptr);
  if (env("STAGEHAND_TEST_BOOTED") != "1")
    g_error("this test runs on a booted test sysroot: stagehand-testbed run --deploy ...");
  if (cli_path.empty())
    g_error("--cli=PATH (the stagehand command) is required");

  g_test_add_func("/cxx/error-codes", test_error_codes);
  g_test_add_func("/cxx/deployment-id", test_deployment_id);
  g_test_add_func("/cxx/guard", test_guard_cycle);
  g_test_add_func("/cxx/stage-status-unstage", test_stage_status_unstage);
  g_test_add_func("/cxx/stage-errors", test_stage_errors);
  g_test_add_func("/cxx/finalization-lock", test_finalization_lock);
  g_test_add_func("/cxx/sysroot-lock", test_sysroot_lock);
  g_test_add_func("/cxx/not-locked", test_not_locked);
  g_test_add_func("/cxx/hooks", test_hooks);
  g_test_add_func("/cxx/health", test_health);
  // Last: it finalizes a deployment.
  g_test_add_func("/cxx/cleanup-stamp", test_cleanup_stamp);
  return g_test_run();
}
