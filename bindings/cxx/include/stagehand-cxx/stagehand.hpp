// stagehand for C++ daemons: staged deployment, the finalization lock,
// the finalize-time cleanup stamp, the interrupted-operation guard, health
// and boot assessment with the bootloader's boot counter.
//
//   #include <stagehand-cxx/stagehand.hpp>
//   pkg-config --cflags --libs stagehand-cxx-1        (docs/cxx.md)
//
// The types (stagehand::StageOutcome, stagehand::Status, ...) and the
// option builders come from the generated cxx bridge, "stagehand-cxx/bridge.h";
// the functions below wrap its `stagehand::raw` functions one to one, with the
// same names and arguments, so that a failure is thrown as stagehand::Error
// (with the C library's error code) instead of cxx's rust::Error.
//
// Conventions, as in the C library (docs/c-api.md):
// - `sysroot` is the caller's OstreeSysroot, created and loaded by the
//   caller. Functions marked "lock held" need the sysroot lock, taken by the
//   caller with ostree_sysroot_lock() or stagehand::sysroot_lock() and
//   released with ostree_sysroot_unlock(); when nobody holds it they throw
//   ErrorCode::NotLocked before reading or writing anything (the check sees
//   that someone holds the lock, not who: docs/c-api.md). Before they read
//   the deployment list they reload the sysroot if it changed on disk.
// - `cancellable` may be nullptr. Cancellation throws ErrorCode::Cancelled.
// - Every function may be called from any thread; one sysroot is not to be
//   used from two threads at once.
// - Strings are UTF-8 (rust::Str / rust::String); lists are rust::Vec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

// cxx's runtime header first: the bridge header carries only the parts of
// it that its declarations need, and rust::Error, which detail::call
// catches, is not one of them.
#include "rust/cxx.h"
#include "stagehand-cxx/bridge.h"

namespace stagehand {

// A failed stagehand call. code() is the kind (the same numbers as the C
// library's STAGEHAND_ERROR domain, see docs/errors.md), what() the message
// the C library puts in its GError.
class Error : public std::runtime_error {
public:
  Error(ErrorCode code, const std::string &message)
      : std::runtime_error(message), code_(code) {}

  ErrorCode code() const noexcept { return code_; }

  // The code's stable name: "unknown-revision", "interrupted", ...
  std::string nick() const { return std::string(error_code_nick(code_)); }

  bool matches(ErrorCode code) const noexcept { return code_ == code; }

private:
  ErrorCode code_;
};

namespace detail {

// Turn the message of a rust::Error thrown by the bridge,
//   "stagehand-error <code> <nick>: <message>",
// into a stagehand::Error. The prefix is checked strictly (digits, then the
// nick that belongs to that number); anything else keeps the whole text as
// the message of an ErrorCode::Failed error, so no failure is ever lost.
inline Error to_error(const char *what) {
  static const char prefix[] = "stagehand-error ";
  const std::size_t prefix_len = sizeof prefix - 1;
  if (what == nullptr)
    return Error(ErrorCode::Failed, "(no message)");
  if (std::strncmp(what, prefix, prefix_len) == 0) {
    const char *p = what + prefix_len;
    const char *digits = p;
    std::int32_t number = 0;
    while (*p >= '0' && *p <= '9' && p - digits < 9)
      number = number * 10 + (*p++ - '0');
    if (p > digits && *p == ' ') {
      const char *nick = ++p;
      while ((*p >= 'a' && *p <= 'z') || *p == '-')
        p++;
      const ErrorCode code = static_cast<ErrorCode>(number);
      const rust::Str expected = error_code_nick(code);
      if (p > nick && p[0] == ':' && p[1] == ' ' &&
          expected.size() == static_cast<std::size_t>(p - nick) &&
          std::memcmp(expected.data(), nick, expected.size()) == 0)
        return Error(code, std::string(p + 2));
    }
  }
  return Error(ErrorCode::Failed, what);
}

// Run a raw bridge call, rethrowing its rust::Error as stagehand::Error.
template <typename F> auto call(F &&f) -> decltype(f()) {
  try {
    return f();
  } catch (const rust::Error &e) {
    throw to_error(e.what());
  }
}

} // namespace detail

// ---------------------------------------------------------------- staging

// Take the sysroot lock, waiting up to timeout_ms while another process holds
// it (ErrorCode::Locked after that), then reload the sysroot if it changed.
// Release it with ostree_sysroot_unlock().
inline void sysroot_lock(OstreeSysroot &sysroot, std::uint32_t timeout_ms,
                         GCancellable *cancellable = nullptr) {
  detail::call([&] { raw::sysroot_lock(sysroot, timeout_ms, cancellable); });
}

// The sysroot lock for the lifetime of a scope: taken in the constructor,
// released (ostree_sysroot_unlock()) in the destructor, also when an
// exception leaves the scope.
//
//   {
//     stagehand::SysrootLock lock(*sysroot);         // or (*sysroot, 30 * 1000)
//     stagehand::stage(*sysroot, *options);
//   }
//
// Without a timeout it is ostree_sysroot_lock(), which waits as long as
// another process holds the lock; its GError is thrown as ErrorCode::Failed.
// With one it is sysroot_lock() above (ErrorCode::Locked when it runs out,
// Cancelled when cancelled). Neither copyable nor movable: the lock belongs
// to the scope.
class SysrootLock {
public:
  explicit SysrootLock(OstreeSysroot &sysroot) : sysroot_(sysroot) {
    GError *error = nullptr;
    if (!ostree_sysroot_lock(&sysroot_, &error)) {
      const std::string message =
          std::string("taking the sysroot lock: ") + (error != nullptr ? error->message : "(no message)");
      g_clear_error(&error);
      throw Error(ErrorCode::Failed, message);
    }
  }
  SysrootLock(OstreeSysroot &sysroot, std::uint32_t timeout_ms,
              GCancellable *cancellable = nullptr)
      : sysroot_(sysroot) {
    sysroot_lock(sysroot_, timeout_ms, cancellable);
  }
  ~SysrootLock() { ostree_sysroot_unlock(&sysroot_); }
  SysrootLock(const SysrootLock &) = delete;
  SysrootLock &operator=(const SysrootLock &) = delete;

private:
  OstreeSysroot &sysroot_;
};

// Lock held. Stage options.revision on a booted system (finalized at
// shutdown), or deploy it fully on a sysroot that is not booted.
inline StageOutcome stage(OstreeSysroot &sysroot, const StageOptions &options,
                          GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::stage(sysroot, options, cancellable); });
}

// Lock held. Remove the staged deployment and the finalization lock.
inline UnstageOutcome unstage(OstreeSysroot &sysroot,
                              GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::unstage(sysroot, cancellable); });
}

// Keep the staged deployment staged across shutdowns (booted systems only:
// ErrorCode::NotBooted otherwise). The sysroot lock is not needed.
inline void lock_finalization(OstreeSysroot &sysroot,
                              GCancellable *cancellable = nullptr) {
  detail::call([&] { raw::lock_finalization(sysroot, cancellable); });
}

// Let the staged deployment be finalized at the next shutdown. Returns
// whether finalization was locked. The sysroot lock is not needed.
inline bool unlock_finalization(OstreeSysroot &sysroot,
                                GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::unlock_finalization(sysroot, cancellable); });
}

// Deployments (staged first, then in boot order) with stagehand's state.
inline Status status(OstreeSysroot &sysroot, GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::status(sysroot, cancellable); });
}

// Parse "stateroot:checksum.serial" (ErrorCode::InvalidArgument otherwise).
inline DeploymentId parse_deployment_id(rust::Str id) {
  return detail::call([&] { return raw::parse_deployment_id(id); });
}

// ------------------------------------------------- finalize-time cleanup

// Whether a cleanup is pending (kind != CleanupStampKind::None) and what the
// stamp says. One file read, no lock; ErrorCode::Corrupt for a stamp that
// cannot be read or parsed (it is left in place).
inline CleanupStamp pending_cleanup(OstreeSysroot &sysroot,
                                    GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::pending_cleanup(sysroot, cancellable); });
}

// Take the sysroot lock (waiting as options say), prune when a stamp asks
// for it, then remove the stamp. The lock must NOT be held by the caller.
inline CleanupReport autocleanup(OstreeSysroot &sysroot, const CleanupOptions &options,
                                 GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::autocleanup(sysroot, options, cancellable); });
}

// Lock held. The cleanup itself: with force, even without a (readable) stamp.
inline CleanupReport run_cleanup(OstreeSysroot &sysroot, bool force,
                                 GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::run_cleanup(sysroot, force, cancellable); });
}

// ------------------------------------------- interrupted-operation guard
//
// dir: the stamp directory (guard_default_dir(); stagehand never creates it).
// digest: the hex digest of the step's configuration, or "" for none.

// Cross the red line: durably record that step `name` started. Throws
// ErrorCode::Interrupted (started and never completed), AlreadyComplete
// (completed with this digest: skip the step) or ConfigChanged (completed
// with another digest).
inline rust::Box<GuardToken> guard_begin(rust::Str dir, rust::Str name,
                                         rust::Str digest = "") {
  return detail::call([&] { return raw::guard_begin(dir, name, digest); });
}

// Start the step afresh whatever the record says (the administrator's override).
inline rust::Box<GuardToken> guard_begin_forced(rust::Str dir, rust::Str name,
                                                rust::Str digest = "") {
  return detail::call([&] { return raw::guard_begin_forced(dir, name, digest); });
}

// A token for a step an earlier process began (and is to be committed now).
inline rust::Box<GuardToken> guard_resume(rust::Str dir, rust::Str name,
                                          rust::Str digest = "") {
  return detail::call([&] { return raw::guard_resume(dir, name, digest); });
}

// Mark the step complete, durably. Consumes the token: std::move(token).
inline GuardStamp guard_commit(rust::Box<GuardToken> token) {
  return detail::call([&] { return raw::guard_commit(std::move(token)); });
}

// The step's stamp; phase GuardPhase::Absent when there is none.
inline GuardStamp guard_status(rust::Str dir, rust::Str name) {
  return detail::call([&] { return raw::guard_status(dir, name); });
}

// Forget the step. Returns whether there was a stamp.
inline bool guard_reset(rust::Str dir, rust::Str name) {
  return detail::call([&] { return raw::guard_reset(dir, name); });
}

// The SHA-256 of a file (a configuration), as a digest for guard_begin().
inline rust::String guard_file_digest(rust::Str path) {
  return detail::call([&] { return raw::guard_file_digest(path); });
}

// ----------------------------------------------------- pre-upgrade hooks
//
// A veto during stage() is ErrorCode::HookVetoed, an unacceptable hook file
// ErrorCode::HookInvalid (docs/hooks.md).

// Dry run: check the revision out, run every hook, remove the checkout;
// a veto is in the report (passed == false), not thrown. Lock must be held.
inline HookReport hooks_check(OstreeSysroot &sysroot, const StageOptions &options,
                              GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::hooks_check(sysroot, options, cancellable); });
}

// Remove the unvetted staged deployment (and stray checkouts) a staging that
// died mid-hook left; unstaged == false when there was none. Lock must be held.
inline UnstageOutcome hooks_recover(OstreeSysroot &sysroot,
                                    GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::hooks_recover(sysroot, cancellable); });
}

// ------------------------------------------------------ deployment health
//
// docs/health.md. Staging starts a trial; these end it. Each transition
// needs the sysroot lock held.

// Mark the booted deployment good (after boot-complete.target). Throws
// Denylisted, NotBooted, Corrupt. Lock must be held.
inline MarkGoodOutcome mark_good(OstreeSysroot &sysroot, const HealthOptions &options,
                                 GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::mark_good(sysroot, options, cancellable); });
}

// Mark `deployment` ("[stateroot:]checksum[.serial]", "" for the booted one)
// bad: failed, denylisted, rolled back from. Throws NoKnownGood (nothing
// changed), UnknownDeployment. Lock must be held.
inline MarkBadOutcome mark_bad(OstreeSysroot &sysroot, rust::Str deployment, rust::Str reason,
                               const HealthOptions &options,
                               GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::mark_bad(sysroot, deployment, reason, options, cancellable); });
}

// Boot assessment, early at every boot. `tries`: with BootEvidence::Fallback,
// the entry's tries (0: not known). Lock must be held.
inline Verdict assess(OstreeSysroot &sysroot, BootEvidence evidence, std::uint32_t tries,
                      const HealthOptions &options, GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::assess(sysroot, evidence, tries, options, cancellable); });
}

// The denylist, oldest first. The lock is not needed.
inline rust::Vec<DenylistEntry> denylist(OstreeSysroot &sysroot,
                                         GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::denylist(sysroot, cancellable); });
}

// Take a commit (or a unique prefix of it) off the denylist; returns the
// entry. InvalidArgument when it is not there. Lock must be held.
inline DenylistEntry denylist_remove(OstreeSysroot &sysroot, rust::Str checksum,
                                     GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::denylist_remove(sysroot, checksum, cancellable); });
}

// Forget all health state (records, denylist, rollbacks); returns why the
// old store was unreadable ("" when it was readable). Lock must be held.
inline rust::String health_reset(OstreeSysroot &sysroot, GCancellable *cancellable = nullptr) {
  return detail::call([&] { return raw::health_reset(sysroot, cancellable); });
}

// ------------------------------------------------------ boot assessment
//
// docs/boot-assessment.md. With a boot counter configured (GRUB environment
// block or BLS), a daemon that runs its own boot check uses these instead of
// assess()/mark_good()/mark_bad() above, which leave the counter alone:
// otherwise the counter of a deployment judged good keeps counting down and
// the bootloader falls back from it.

// The configuration file and the boot counter it selects for a sysroot, as
// the stagehand units use them. RAII: owns the Rust object; movable, not
// copyable. The sysroot is passed to every call again (the caller's, loaded;
// "lock held" as for the functions above); it must be the one the object
// was made for.
class BootAssessment {
public:
  // Read config_path ("" for /etc/stagehand/stagehand.conf; a missing file
  // gives the defaults) and select the counter it asks for (`backend = auto`
  // detects it). Throws ErrorCode::Config with the line for a bad file.
  explicit BootAssessment(OstreeSysroot &sysroot, rust::Str config_path = "")
      : inner_(detail::call([&] { return raw::boot_assessment_new(sysroot, config_path); })) {}

  // "grubenv", "bls" or "none".
  rust::Str backend() const { return inner_->backend(); }
  // Why this counter was selected.
  rust::String reason() const { return inner_->reason(); }
  // The configuration file the settings came from ("" when there was none).
  rust::String config_path() const { return inner_->config_path(); }
  // [bootloader] tries: the boots a finalized deployment gets.
  std::uint32_t tries() const { return inner_->tries(); }
  // [health] deadline, in seconds since boot. Nothing waits for it: call
  // deadline() when it has passed (time_remaining_ms() == 0).
  std::uint64_t health_deadline_secs() const { return inner_->health_deadline_secs(); }
  // [health] auto-reboot.
  bool auto_reboot() const { return inner_->auto_reboot(); }
  // The configuration's health options (keep-two-known-good): what the
  // calls below use when given none.
  rust::Box<HealthOptions> health_options() const { return inner_->health_options(); }

  // Milliseconds until the health deadline (0 once it has passed), from the
  // time since boot in /proc/uptime.
  std::uint64_t time_remaining_ms() const {
    return detail::call([&] { return raw::boot_time_remaining_ms(*inner_); });
  }

  // The counter of `deployment` ("[stateroot:]checksum[.serial]", "" for the
  // default one). The GRUB environment block has one counter, the default
  // entry's. The lock is not needed.
  CounterStatus query_counter(OstreeSysroot &sysroot, rust::Str deployment = "",
                              GCancellable *cancellable = nullptr) const {
    return detail::call([&] { return raw::boot_query_counter(*inner_, sysroot, deployment, cancellable); });
  }

  // Early at every boot: assess() with the counter's evidence (a fallback
  // fails the deployment on trial, a person's choice never does), then
  // counters of deployments no longer on trial are disarmed. Lock held.
  BootAssessed assess(OstreeSysroot &sysroot, GCancellable *cancellable = nullptr) const {
    return assess(sysroot, *health_options(), cancellable);
  }
  BootAssessed assess(OstreeSysroot &sysroot, const HealthOptions &options,
                      GCancellable *cancellable = nullptr) const {
    return detail::call([&] { return raw::boot_assess(*inner_, sysroot, options, cancellable); });
  }

  // After boot-complete.target: mark_good(), then the counter is blessed
  // (the GRUB environment block's only when the booted deployment is the
  // default). Lock held.
  BootMarkedGood mark_good(OstreeSysroot &sysroot, GCancellable *cancellable = nullptr) const {
    return mark_good(sysroot, *health_options(), cancellable);
  }
  BootMarkedGood mark_good(OstreeSysroot &sysroot, const HealthOptions &options,
                           GCancellable *cancellable = nullptr) const {
    return detail::call([&] { return raw::boot_mark_good(*inner_, sysroot, options, cancellable); });
  }

  // A check failed: mark_bad() of `deployment` ("" for the booted one), then
  // the counter is disarmed so the bootloader boots the rollback. Throws
  // NoKnownGood (nothing changed). Lock held.
  BootMarkedBad mark_bad(OstreeSysroot &sysroot, rust::Str deployment, rust::Str reason,
                         GCancellable *cancellable = nullptr) const {
    return mark_bad(sysroot, deployment, reason, *health_options(), cancellable);
  }
  BootMarkedBad mark_bad(OstreeSysroot &sysroot, rust::Str deployment, rust::Str reason,
                         const HealthOptions &options, GCancellable *cancellable = nullptr) const {
    return detail::call([&] { return raw::boot_mark_bad(*inner_, sysroot, deployment, reason, options, cancellable); });
  }

  // The health deadline passed (the caller decides when): if the booted
  // deployment is still on trial, mark it bad as mark_bad() does (or finish
  // an earlier run's verdict that was interrupted before its rollback).
  // Nothing reboots: marked_bad.reboot says whether to. Lock held.
  BootDeadline deadline(OstreeSysroot &sysroot, GCancellable *cancellable = nullptr) const {
    return deadline(sysroot, *health_options(), cancellable);
  }
  BootDeadline deadline(OstreeSysroot &sysroot, const HealthOptions &options,
                        GCancellable *cancellable = nullptr) const {
    return detail::call([&] { return raw::boot_deadline(*inner_, sysroot, options, cancellable); });
  }

  // At shutdown, after `ostree admin finalize-staged`: arm the counter for
  // the finalized `deployment` if it is the default and on trial; otherwise
  // armed == false and reason says why. Never right after staging. Lock held.
  ArmOutcome arm_finalized(OstreeSysroot &sysroot, rust::Str deployment,
                           GCancellable *cancellable = nullptr) const {
    return detail::call([&] { return raw::boot_arm_finalized(*inner_, sysroot, deployment, cancellable); });
  }

private:
  rust::Box<raw::BootAssessmentState> inner_;
};

} // namespace stagehand
