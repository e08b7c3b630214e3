//! # stagehand-cxx
//!
//! The C++ binding of stagehand: a [`cxx`] bridge for C++ update daemons
//! such as rpm-ostree's, which talk to Rust through cxx bridges and pass
//! their GObjects across as opaque types.
//!
//! Thin by design, like the C ABI: every function converts its arguments,
//! calls the `stagehand` crate and converts the result. If the Rust API
//! cannot do something, neither can the bridge.
//!
//! The C++ side is two headers under `include/stagehand-cxx/`:
//!
//! - `bridge.h`, generated from [`ffi`] by cxx-build and committed
//!   (`tests/header.rs` fails when it drifts): the shared structs and enums
//!   in `namespace stagehand`, the opaque option builders and the guard
//!   token, and the fallible functions in `namespace stagehand::raw`, which
//!   throw cxx's `rust::Error`;
//! - `stagehand.hpp`, written by hand: one inline wrapper per `raw`
//!   function, same name and arguments (with `GCancellable *cancellable =
//!   nullptr`), that rethrows the error as `stagehand::Error`, whose
//!   `code()` is the `STAGEHAND_ERROR` code of the C library.
//!
//! ## How the error code reaches C++
//!
//! cxx turns an `Err` into a `rust::Error` that carries only a message. So
//! the message of every error crossing the bridge starts with a fixed,
//! machine-readable prefix ([`ERROR_PREFIX`]):
//!
//! ```text
//! stagehand-error 7 unknown-revision: revision "nope" is not in the sysroot repository
//! ```
//!
//! — the `ErrorCode` number, its nick, then `": "` and exactly the message
//! the C library puts in its `GError`. `stagehand.hpp` parses the prefix
//! (strictly; anything malformed becomes `ErrorCode::Failed` with the whole
//! text, so no error is ever lost) and throws `stagehand::Error` with
//! `code()`, `nick()` and `what()` (the message without the prefix).
//!
//! ## Conventions (the C ABI's, `docs/c-api.md`)
//!
//! - The caller owns the sysroot: every function takes the caller's
//!   `OstreeSysroot &`, loaded by the caller; functions that change
//!   deployments need the sysroot lock held by the caller
//!   (`ostree_sysroot_lock()` or [`sysroot_lock`]), checked with
//!   `stagehand::SysrootLock::verify_held` (`ErrorCode::NotLocked` when nobody
//!   holds it), and reload the sysroot if it changed on disk.
//! - `GCancellable *` may be null. A wrong object type is
//!   `ErrorCode::InvalidArgument` (C++ references cannot be null).
//! - A panic never unwinds into C++ (that would abort the daemon): it
//!   becomes `ErrorCode::Failed`, "internal error ... please report it".
//! - Log messages go to GLib's logging in the `stagehand` domain (feature
//!   `glib-log`, on by default), like the C library's.
//!
//! ## Adding a capability
//!
//! `docs/cxx.md` has the recipe (bridge items, wrapper, header, test).

#![deny(missing_docs)]
#![deny(unused_must_use)]
// The bridge's `unsafe fn`s are unsafe only because they take a raw
// `GCancellable *` (cxx requires it); their contract is the C++ header's.
#![allow(clippy::missing_safety_doc)]

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use glib::translate::from_glib_none;

use stagehand::redline;
use stagehand::{CleanupStamp as RsCleanupStamp, Kargs, SysrootLock};

/// The start of every error message that crosses the bridge:
/// `stagehand-error <code> <nick>: <message>`.
pub const ERROR_PREFIX: &str = "stagehand-error ";

/// The bridge. Everything in it is declared to C++ by the generated
/// `bridge.h`; the doc comments become comments there.
#[cxx::bridge(namespace = "stagehand")]
pub mod ffi {
    /// The kind of a stagehand error: `stagehand::ErrorCode`'s numbers, which
    /// are also the C library's `STAGEHAND_ERROR` codes (docs/errors.md).
    /// Only ever appended to.
    #[repr(i32)]
    #[derive(Debug)]
    enum ErrorCode {
        /// A failure reported by libostree or GLib that has no kind of its own.
        Failed = 0,
        /// The caller passed something that can never be valid.
        InvalidArgument = 1,
        /// The operation was cancelled through its GCancellable.
        Cancelled = 2,
        /// A file operation failed.
        Io = 3,
        /// The sysroot lock was still held by someone else when the timeout ran out.
        Locked = 4,
        /// The operation needs a system booted into an ostree deployment.
        NotBooted = 5,
        /// The sysroot (or another place stagehand must write) is read-only.
        ReadOnly = 6,
        /// A revision is not in the sysroot repository.
        UnknownRevision = 7,
        /// The stateroot does not exist.
        UnknownStateroot = 8,
        /// The commit has no kernel.
        NotBootable = 9,
        /// No deployment matches the given identity.
        UnknownDeployment = 10,
        /// A pre-upgrade hook refused the update.
        HookVetoed = 11,
        /// A pre-upgrade hook file is not acceptable.
        HookInvalid = 12,
        /// The commit is on the denylist.
        Denylisted = 13,
        /// A state file stagehand owns is unreadable, torn or inconsistent.
        Corrupt = 14,
        /// A guarded step was started and never completed.
        Interrupted = 15,
        /// A guarded step already completed with the same configuration.
        AlreadyComplete = 16,
        /// A guarded step completed with a different configuration.
        ConfigChanged = 17,
        /// No known-good deployment is left to roll back to.
        NoKnownGood = 18,
        /// The configuration file has an error.
        Config = 19,
        /// The running libostree or bootloader cannot do what was asked.
        Unsupported = 20,
        /// The operation needs the sysroot lock held by the caller, and nobody holds it.
        NotLocked = 21,
    }

    /// The stable identity of a deployment (`stateroot:checksum.serial`,
    /// see `to_string()`), the same the CLI prints.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct DeploymentId {
        /// The stateroot (ostree's "osname").
        stateroot: String,
        /// The commit checksum (64 hex digits).
        checksum: String,
        /// The deployment serial.
        serial: u32,
    }

    /// How stage() wrote the new deployment.
    #[repr(u8)]
    #[derive(Debug)]
    enum StageMethod {
        /// Staged on a booted system; finalized at shutdown.
        Staged = 0,
        /// Fully deployed at once (the sysroot is not the booted one).
        Deployed = 1,
    }

    /// What stage() did.
    #[derive(Debug, Clone)]
    struct StageOutcome {
        /// The new (or already present) deployment.
        deployment: DeploymentId,
        /// Whether it was staged or fully deployed.
        method: StageMethod,
        /// True when nothing was written: the same commit with the same
        /// kernel arguments was already staged (not booted: the default).
        unchanged: bool,
        /// Whether finalization is locked now.
        finalization_locked: bool,
    }

    /// What unstage() did.
    #[derive(Debug, Clone)]
    struct UnstageOutcome {
        /// Whether a staged deployment was removed.
        unstaged: bool,
        /// The removed deployment (empty when `unstaged` is false).
        deployment: DeploymentId,
    }

    /// One deployment, in boot order.
    #[derive(Debug, Clone)]
    struct DeploymentStatus {
        /// Position in the deployment list (0 = the default, or the staged one).
        index: u32,
        /// Stateroot.
        stateroot: String,
        /// Commit checksum.
        checksum: String,
        /// Deployment serial.
        serial: u32,
        /// The commit's `version` metadata; empty when it has none.
        version: String,
        /// Whether this is the running deployment.
        booted: bool,
        /// Whether this deployment is staged (finalized at shutdown).
        staged: bool,
        /// Whether it is pinned.
        pinned: bool,
        /// Whether finalization is locked (only ever true for the staged one).
        finalization_locked: bool,
        /// Whether it is a staged deployment that has not passed its pre-upgrade hooks.
        unvetted: bool,
        /// Its health (`Unknown` when the health store cannot be read).
        health: HealthState,
        /// Boots counted into it.
        attempts: u32,
        /// Untested, or booted and waiting for mark_good().
        on_trial: bool,
        /// Why it failed; empty without a failure verdict.
        health_reason: String,
        /// When its health last changed (RFC 3339 UTC); empty without a record.
        health_changed: String,
        /// Whether stagehand pinned it to keep two known-good deployments during a trial.
        pinned_by_stagehand: bool,
    }

    /// The whole picture: what `stagehand status` prints.
    #[derive(Debug, Clone)]
    struct Status {
        /// Deployments, staged first, then in boot order.
        deployments: Vec<DeploymentStatus>,
        /// Whether a cleanup stamp is present (readable or not).
        cleanup_pending: bool,
        /// A trial ended and stagehand still holds its pins (or a release an
        /// interrupted run left half done is to be finished): the next
        /// autocleanup() (or staging) releases them (false when the health
        /// store cannot be read).
        retention_pending: bool,
        /// Denylisted commits, oldest first (empty when the store cannot be read).
        denylist: Vec<DenylistEntry>,
        /// Whether stagehand ever rolled back (then `last_rollback` is the last).
        has_last_rollback: bool,
        /// The last rollback stagehand made.
        last_rollback: Rollback,
        /// Why the health store could not be read; empty when it could.
        health_error: String,
    }

    /// A deployment's health (docs/health.md), the numbers of the C
    /// library's `StagehandHealthState`.
    #[repr(u8)]
    #[derive(Debug)]
    enum HealthState {
        /// Installed, never booted.
        Untested = 0,
        /// Booted and not confirmed (on trial), or marked bad (with a reason).
        Failed = 1,
        /// Booted successfully, the most recent such deployment.
        Good = 2,
        /// Booted successfully before; also every deployment without a record.
        GoodFallback = 3,
        /// The health store cannot be read.
        Unknown = 4,
    }

    /// A commit that failed; staging it again throws `Denylisted` unless allowed.
    #[derive(Debug, Clone)]
    struct DenylistEntry {
        /// The commit.
        checksum: String,
        /// Why.
        reason: String,
        /// When (RFC 3339 UTC).
        since: String,
        /// The deployment that failed (empty when none was recorded).
        deployment: DeploymentId,
    }

    /// What made stagehand roll back (the C library's numbers).
    #[repr(u8)]
    #[derive(Debug)]
    enum RollbackTrigger {
        /// mark_bad().
        MarkBad = 0,
        /// Boot assessment found that the bootloader fell back.
        Assess = 1,
    }

    /// A rollback stagehand made.
    #[derive(Debug, Clone)]
    struct Rollback {
        /// Rolled back from.
        from: DeploymentId,
        /// The known-good deployment made the default.
        to: DeploymentId,
        /// Why.
        reason: String,
        /// When (RFC 3339 UTC).
        at: String,
        /// What decided it.
        trigger: RollbackTrigger,
    }

    /// What mark_good() did.
    #[derive(Debug, Clone)]
    struct MarkGoodOutcome {
        /// The booted deployment, now good.
        deployment: DeploymentId,
        /// Its health before.
        previous: HealthState,
        /// Boots counted into it.
        attempts: u32,
        /// Its commit was on the denylist and came off it.
        undenylisted: bool,
        /// The trial's pins are still held: the next autocleanup() /
        /// run_cleanup() (or staging) releases them and removes the
        /// deployment only they kept, and reports it
        /// (CleanupReport::released_pins, ::deployments_removed); mark_good()
        /// itself never releases a pin. A daemon that ships no systemd
        /// units calls autocleanup() when this is true.
        retention_pending: bool,
    }

    /// What mark_bad() did. Empty ids (`stateroot` empty) mean "none".
    #[derive(Debug, Clone)]
    struct MarkBadOutcome {
        /// The deployment marked bad.
        deployment: DeploymentId,
        /// The reason recorded.
        reason: String,
        /// The commit put on the denylist.
        denylisted: String,
        /// It had a failure verdict already (only the order was redone).
        already_failed: bool,
        /// It was the staged deployment and was unstaged.
        unstaged: bool,
        /// The known-good deployment made the default (empty: no rollback).
        rolled_back_to: DeploymentId,
        /// The default deployment now (`default` is a C++ keyword).
        default_deployment: DeploymentId,
        /// Another deployment that stays staged (empty: none).
        staged: DeploymentId,
        /// The running system is the failed one: reboot into the default.
        reboot_needed: bool,
    }

    /// What the bootloader knows about this boot (the C library's numbers).
    #[repr(u8)]
    #[derive(Debug)]
    enum BootEvidence {
        /// Nothing: conservative, nothing is marked.
        Unknown = 0,
        /// The bootloader fell back because the default entry's tries ran out.
        Fallback = 1,
        /// A person picked the entry.
        ManualChoice = 2,
    }

    /// What assess() concluded (the C library's numbers).
    #[repr(u8)]
    #[derive(Debug)]
    enum AssessOutcome {
        /// The booted deployment is known good.
        Good = 0,
        /// It is on trial: booted, waiting for mark_good().
        OnTrial = 1,
        /// It has a failure verdict.
        BootedFailed = 2,
        /// The bootloader fell back from newer deployments: they are failed.
        FellBack = 3,
        /// Newer deployments were passed over by a person: nothing marked.
        ManualChoice = 4,
        /// Newer deployments were passed over without evidence: nothing marked.
        Undetermined = 5,
    }

    /// What assess() concluded.
    #[derive(Debug, Clone)]
    struct Verdict {
        /// The booted deployment.
        booted: DeploymentId,
        /// Its health after assessment.
        health: HealthState,
        /// Boots counted into it.
        attempts: u32,
        /// Whether this call counted the boot.
        counted: bool,
        /// The conclusion.
        outcome: AssessOutcome,
        /// Deployments ahead of the booted one that are (were) on trial.
        newer: Vec<DeploymentId>,
        /// Deployments this assessment marked failed and denylisted.
        failed: Vec<DeploymentId>,
        /// The default deployment now (empty when there is none).
        default_deployment: DeploymentId,
        /// Reboot into the default.
        reboot_needed: bool,
        /// No trial is open and stagehand still holds retention pins:
        /// releasing them is left to the next autocleanup() / run_cleanup()
        /// (or staging), which reports it (CleanupReport::released_pins). A
        /// daemon that ships no systemd units calls autocleanup() when this
        /// is true.
        retention_pending: bool,
        /// One sentence for people.
        message: String,
    }

    /// The boot counter of one deployment, as the bootloader left it
    /// (the C library's numbers).
    #[repr(u8)]
    #[derive(Debug)]
    enum CounterState {
        /// No counter runs: the bootloader boots the default entry as always.
        NotArmed = 0,
        /// Counting down: the bootloader boots the deployment while tries are left.
        Counting = 1,
        /// The tries are used up: the bootloader boots the fallback entry.
        Exhausted = 2,
        /// The backend keeps no counter (`backend = none`).
        NoCounter = 3,
    }

    /// What the boot counter said about this boot (the C library's numbers).
    #[repr(u8)]
    #[derive(Debug)]
    enum CounterEvidence {
        /// Nothing armed (or no counter, or it could not be read).
        None = 0,
        /// The deployment on trial is booted and its counter runs.
        OnTrial = 1,
        /// Its tries ran out and the bootloader booted another entry by itself.
        BootloaderFallback = 2,
        /// A person chose the entry: never a reason to mark anything bad.
        ManualChoice = 3,
    }

    /// A deployment's boot counter (BootAssessment::query_counter()).
    #[derive(Debug, Clone)]
    struct CounterStatus {
        /// The state.
        state: CounterState,
        /// Boots left after the current one (Counting), else 0.
        left: u32,
        /// Boots done where the backend records them (BLS), else -1.
        done: i32,
    }

    /// What BootAssessment::assess() did.
    #[derive(Debug, Clone)]
    struct BootAssessed {
        /// The health verdict, as assess() returns it.
        verdict: Verdict,
        /// What the counter said.
        counter_evidence: CounterEvidence,
        /// With OnTrial: boots left after this one (0: the last try).
        tries_left: u32,
        /// With BootloaderFallback: the boots the entry had (BLS), else 0.
        fallback_tries: u32,
        /// Why the counter could not be read (empty when it was read).
        counter_error: String,
        /// Counters stopped because their deployment is no longer on trial.
        disarmed: Vec<DeploymentId>,
    }

    /// What BootAssessment::mark_good() did.
    #[derive(Debug, Clone)]
    struct BootMarkedGood {
        /// The health transition, as mark_good() returns it.
        outcome: MarkGoodOutcome,
        /// Whether the counter was blessed.
        blessed: bool,
        /// Counters stopped because their deployment is no longer on trial.
        disarmed: Vec<DeploymentId>,
    }

    /// What BootAssessment::mark_bad() (or a missed deadline) did.
    #[derive(Debug, Clone)]
    struct BootMarkedBad {
        /// The health transition, as mark_bad() returns it.
        outcome: MarkBadOutcome,
        /// Counters stopped.
        disarmed: Vec<DeploymentId>,
        /// The caller should reboot into the rollback now (reboot needed and
        /// `auto-reboot = true`).
        reboot: bool,
    }

    /// What BootAssessment::deadline() concluded.
    #[derive(Debug, Clone)]
    struct BootDeadline {
        /// The booted deployment was still on trial and was marked bad.
        missed: bool,
        /// The booted deployment.
        booted: DeploymentId,
        /// What marking it bad did (empty ids and lists unless `missed`).
        marked_bad: BootMarkedBad,
    }

    /// What BootAssessment::arm_finalized() did.
    #[derive(Debug, Clone)]
    struct ArmOutcome {
        /// The counter now counts the deployment's boots.
        armed: bool,
        /// The finalized deployment.
        deployment: DeploymentId,
        /// Tries given (0 when not armed).
        tries: u32,
        /// Why nothing was armed (empty when armed).
        reason: String,
    }

    /// Who shipped a hook (the C library's numbers).
    #[repr(u8)]
    #[derive(Debug)]
    enum HookOrigin {
        /// The new deployment's `/usr/lib/stagehand/pre-upgrade.d/`.
        Vendor = 0,
        /// The booted system's `/etc/stagehand/pre-upgrade.d/`.
        Admin = 1,
    }

    /// How a hook ended (the C library's numbers); all but `Passed` veto.
    #[repr(u8)]
    #[derive(Debug)]
    enum HookEnd {
        /// Exit status 0.
        Passed = 0,
        /// A non-zero exit status (`exit_status`).
        Exited = 1,
        /// Killed by a signal (`signal`).
        Signaled = 2,
        /// Ran past its timeout; its process tree was killed.
        TimedOut = 3,
        /// Could not be started.
        SpawnFailed = 4,
    }

    /// How one hook ran in hooks_check().
    #[derive(Debug, Clone)]
    struct HookRun {
        /// File name.
        name: String,
        /// Path as its system sees it.
        path: String,
        /// Who shipped it.
        origin: HookOrigin,
        /// Exit status 0.
        passed: bool,
        /// How it ended.
        end: HookEnd,
        /// With `Exited`, the status; else 0.
        exit_status: i32,
        /// With `Signaled`, the signal; else 0.
        signal: i32,
        /// How it vetoed, as the error message says it (`exit status 3`); empty when it passed.
        description: String,
        /// Wall time, milliseconds.
        duration_ms: u64,
        /// Bytes written to stdout and stderr.
        output_bytes: u64,
        /// The last 8 KiB of that output.
        output_tail: String,
    }

    /// What hooks_check() found.
    #[derive(Debug, Clone)]
    struct HookReport {
        /// The stateroot the revision would be deployed into.
        stateroot: String,
        /// The commit checked.
        checksum: String,
        /// Its version (empty: none).
        version: String,
        /// The deployment it would upgrade from (empty: none).
        old: DeploymentId,
        /// Each hook in the order it ran.
        hooks: Vec<HookRun>,
        /// Whether all passed (true when there are none).
        passed: bool,
    }

    /// What kind of cleanup stamp is present.
    #[repr(u8)]
    #[derive(Debug)]
    enum CleanupStampKind {
        /// No stamp: no cleanup pending.
        None = 0,
        /// An empty stamp, as older tools write it: a cleanup is pending,
        /// nothing more is known.
        Legacy = 1,
        /// Written by stagehand after it verified the finalization.
        Finalized = 2,
        /// Written by a newer stagehand in a format this one does not know;
        /// the cleanup is still pending.
        Newer = 3,
        /// Written by stagehand when it removed deployments itself (the end
        /// of a trial) with no finalization since the last cleanup.
        Removed = 4,
    }

    /// What a cleanup stamp says. Only `kind` is meaningful for `None` and
    /// `Legacy`; `version` only for `Newer`.
    #[derive(Debug, Clone)]
    struct CleanupStamp {
        /// The kind of stamp.
        kind: CleanupStampKind,
        /// Finalized: the deployment that was finalized.
        deployment: DeploymentId,
        /// Finalized: the deployments the finalization dropped.
        dropped: Vec<DeploymentId>,
        /// Finalized: when the stamp was written (RFC 3339, UTC).
        finalized_at: String,
        /// Finalized: the boot during whose shutdown it was written (may be empty).
        boot_id: String,
        /// Newer: the format version found.
        version: u32,
        /// Finalized or Removed: deployments stagehand removed from the
        /// deployment list itself (a deployment only its pin kept).
        removed: Vec<DeploymentId>,
        /// Finalized or Removed: when the last of them was removed (empty if none).
        removed_at: String,
    }

    /// What a cleanup did (run_cleanup(), autocleanup()).
    #[derive(Debug, Clone)]
    struct CleanupReport {
        /// Whether a cleanup ran (false: nothing was pending).
        performed: bool,
        /// The stamp that asked for it (kind `None` when forced without one).
        stamp: CleanupStamp,
        /// Deployments whose directories are gone now.
        deployments_removed: Vec<DeploymentId>,
        /// Repository objects freed.
        objects_freed: u64,
        /// Bytes freed in the repository.
        bytes_freed: u64,
        /// Repository objects left.
        objects_remaining: u64,
        /// Bytes left in the repository.
        bytes_remaining: u64,
        /// Whether the stamp was removed (it is kept when it changed meanwhile).
        stamp_removed: bool,
        /// Pins of an ended trial released first (the retention
        /// housekeeping mark_good() leaves to the cleanup).
        released_pins: Vec<DeploymentId>,
    }

    /// The state of a guarded step's stamp.
    #[repr(u8)]
    #[derive(Debug)]
    enum GuardPhase {
        /// No stamp: never begun, or reset since.
        Absent = 0,
        /// Begun and not committed: if nobody is running it, it was interrupted.
        Started = 1,
        /// Committed.
        Complete = 2,
    }

    /// A guarded step's stamp (the interrupted-operation guard, docs/guard.md).
    #[derive(Debug, Clone)]
    struct GuardStamp {
        /// The step name.
        name: String,
        /// Its state.
        phase: GuardPhase,
        /// The configuration digest it runs with (lower-case hex; empty: none).
        digest: String,
        /// A random identifier of this run (empty when absent).
        run: String,
        /// When it started (RFC 3339, UTC; empty when absent).
        started: String,
        /// When it completed (empty unless complete).
        completed: String,
    }

    // The caller's GObjects, opaque: C++ passes `OstreeSysroot &` and
    // `GCancellable *` from its own libostree/GIO headers.
    #[namespace = ""]
    unsafe extern "C++" {
        include!(<ostree.h>);

        /// libostree's sysroot, created and loaded by the caller.
        type OstreeSysroot;
        /// GIO's cancellable.
        type GCancellable;
    }

    // Infallible: builders, getters, constants.
    extern "Rust" {
        /// What stage() stages: start with stage_options(), then change it
        /// with the setters.
        type StageOptions;
        /// Options of autocleanup(): start with cleanup_options().
        type CleanupOptions;
        /// Options of mark_good(), mark_bad(), assess(): start with health_options().
        type HealthOptions;
        /// Proof that a guarded step was begun (guard_begin()); pass it to
        /// guard_commit() when the step is done. Dropping it without a commit
        /// leaves the step started, so the next begin reports Interrupted.
        type GuardToken;

        /// Stage `revision` (a ref or a commit checksum in the sysroot
        /// repository) with the defaults: the booted stateroot, the merge
        /// deployment's kernel arguments, finalization unlocked afterwards,
        /// pre-upgrade hooks on.
        fn stage_options(revision: &str) -> Box<StageOptions>;
        /// Deploy into this stateroot instead of the booted one.
        fn set_stateroot(self: &mut StageOptions, stateroot: &str);
        /// The refspec written into the new deployment's origin file.
        fn set_origin_refspec(self: &mut StageOptions, refspec: &str);
        /// Inherit the merge deployment's kernel arguments, then these (a
        /// `key=value` replaces an inherited `key=...`); empty: inherit unchanged.
        fn set_kargs_append(self: &mut StageOptions, kargs: Vec<String>);
        /// Use exactly these kernel arguments.
        fn set_kargs_replace(self: &mut StageOptions, kargs: Vec<String>);
        /// Keep finalization locked after staging (the deployment stays
        /// staged across shutdowns until unlock_finalization()).
        fn set_lock_finalization(self: &mut StageOptions, lock: bool);
        /// Run the pre-upgrade hooks (the default) or not.
        fn set_hooks_enabled(self: &mut StageOptions, enabled: bool);
        /// The per-hook timeout, in seconds (0 is ignored: keep the default).
        fn set_hook_timeout(self: &mut StageOptions, seconds: u32);
        /// Stage a denylisted commit anyway (a person's deliberate retry).
        fn set_allow_denylisted(self: &mut StageOptions, allow: bool);
        /// Pin two known-good deployments during the trial (default true).
        fn set_keep_known_good(self: &mut StageOptions, keep: bool);

        /// The defaults: keep two known-good deployments during a trial.
        fn health_options() -> Box<HealthOptions>;
        /// Pin two known-good deployments during a trial (default true).
        #[cxx_name = "set_keep_known_good"]
        fn health_set_keep_known_good(self: &mut HealthOptions, keep: bool);

        /// The defaults of autocleanup(): wait up to 30 minutes for the
        /// sysroot lock, only when a stamp asks for a cleanup.
        fn cleanup_options() -> Box<CleanupOptions>;
        /// How long to wait for the sysroot lock, in milliseconds.
        fn set_lock_timeout_ms(self: &mut CleanupOptions, ms: u64);
        /// Clean up even without a stamp (or with an unreadable one).
        fn set_force(self: &mut CleanupOptions, force: bool);

        /// `stateroot:checksum.serial`.
        #[cxx_name = "to_string"]
        fn to_id_string(self: &DeploymentId) -> String;
        /// This deployment's identity.
        fn id(self: &DeploymentStatus) -> DeploymentId;
        /// Whether finalization of the staged deployment is locked.
        fn finalization_locked(sysroot: Pin<&mut OstreeSysroot>) -> bool;
        /// The nick of an error code (`"unknown-revision"`), as in the C
        /// library and the error prefix; `"unknown"` for a number that is no code.
        fn error_code_nick(code: ErrorCode) -> &'static str;
        /// Where guard stamps live by default (`/var/lib/stagehand/guard`).
        fn guard_default_dir() -> &'static str;

        /// The stamp this token began.
        fn stamp(self: &GuardToken) -> GuardStamp;
        /// The stamp file.
        fn path(self: &GuardToken) -> String;
        /// Whether guard_begin_forced() overrode an earlier record, and a
        /// description of it (empty when it replaced nothing).
        fn replaced(self: &GuardToken) -> String;
    }

    // Fallible: each throws rust::Error with the coded message; call them
    // through stagehand.hpp's wrappers of the same name, which throw
    // stagehand::Error instead.
    #[namespace = "stagehand::raw"]
    extern "Rust" {
        /// Take the sysroot lock, waiting up to `timeout_ms`; release it with
        /// ostree_sysroot_unlock().
        unsafe fn sysroot_lock(
            sysroot: Pin<&mut OstreeSysroot>,
            timeout_ms: u32,
            cancellable: *mut GCancellable,
        ) -> Result<()>;
        /// Stage (booted) or deploy fully (not booted). Lock held.
        unsafe fn stage(
            sysroot: Pin<&mut OstreeSysroot>,
            options: &StageOptions,
            cancellable: *mut GCancellable,
        ) -> Result<StageOutcome>;
        /// Remove the staged deployment and the finalization lock. Lock held.
        unsafe fn unstage(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<UnstageOutcome>;
        /// Keep the staged deployment staged across shutdowns (booted only).
        unsafe fn lock_finalization(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<()>;
        /// Let it be finalized at the next shutdown; returns whether it was locked.
        unsafe fn unlock_finalization(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<bool>;
        /// Deployments and stagehand's state.
        unsafe fn status(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<Status>;
        /// Parse the full `stateroot:checksum.serial` form.
        fn parse_deployment_id(id: &str) -> Result<DeploymentId>;

        /// Whether a cleanup is pending and what the stamp says (kind None:
        /// not pending). One file read, no lock. Corrupt for a stamp that
        /// cannot be read or parsed (left in place).
        unsafe fn pending_cleanup(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<CleanupStamp>;
        /// Take the sysroot lock (waiting as the options say), clean up when a
        /// stamp asks for it, remove the stamp.
        unsafe fn autocleanup(
            sysroot: Pin<&mut OstreeSysroot>,
            options: &CleanupOptions,
            cancellable: *mut GCancellable,
        ) -> Result<CleanupReport>;
        /// The cleanup itself, with the sysroot lock held by the caller.
        unsafe fn run_cleanup(
            sysroot: Pin<&mut OstreeSysroot>,
            force: bool,
            cancellable: *mut GCancellable,
        ) -> Result<CleanupReport>;

        /// Cross the red line: record that step `name` started (durably),
        /// or throw Interrupted / AlreadyComplete / ConfigChanged.
        /// `digest`: hex configuration digest, empty for none.
        fn guard_begin(dir: &str, name: &str, digest: &str) -> Result<Box<GuardToken>>;
        /// Start the step afresh whatever the record says (the
        /// administrator's override).
        fn guard_begin_forced(dir: &str, name: &str, digest: &str) -> Result<Box<GuardToken>>;
        /// A token for the step already started by an earlier process.
        fn guard_resume(dir: &str, name: &str, digest: &str) -> Result<Box<GuardToken>>;
        /// Mark the step complete, durably; returns the complete stamp.
        fn guard_commit(token: Box<GuardToken>) -> Result<GuardStamp>;
        /// The step's stamp (phase Absent when there is none).
        fn guard_status(dir: &str, name: &str) -> Result<GuardStamp>;
        /// Forget the step; returns whether there was a stamp.
        fn guard_reset(dir: &str, name: &str) -> Result<bool>;
        /// The SHA-256 of a file's contents, as a configuration digest.
        fn guard_file_digest(path: &str) -> Result<String>;

        /// Dry run of the pre-upgrade hooks: every hook's outcome, nothing
        /// left behind. A veto is in the report, not thrown. Lock held.
        unsafe fn hooks_check(
            sysroot: Pin<&mut OstreeSysroot>,
            options: &StageOptions,
            cancellable: *mut GCancellable,
        ) -> Result<HookReport>;
        /// Remove what a staging that died mid-hook left. Lock held.
        unsafe fn hooks_recover(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<UnstageOutcome>;

        /// Mark the booted deployment good. Lock held.
        unsafe fn mark_good(
            sysroot: Pin<&mut OstreeSysroot>,
            options: &HealthOptions,
            cancellable: *mut GCancellable,
        ) -> Result<MarkGoodOutcome>;
        /// Mark `deployment` (`[stateroot:]checksum[.serial]`; empty: the
        /// booted one) bad with `reason`. Lock held.
        unsafe fn mark_bad(
            sysroot: Pin<&mut OstreeSysroot>,
            deployment: &str,
            reason: &str,
            options: &HealthOptions,
            cancellable: *mut GCancellable,
        ) -> Result<MarkBadOutcome>;
        /// Boot assessment. `tries`: with Fallback, the entry's tries (0: not known). Lock held.
        unsafe fn assess(
            sysroot: Pin<&mut OstreeSysroot>,
            evidence: BootEvidence,
            tries: u32,
            options: &HealthOptions,
            cancellable: *mut GCancellable,
        ) -> Result<Verdict>;
        /// The denylist, oldest first. No lock.
        unsafe fn denylist(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<Vec<DenylistEntry>>;
        /// Take a commit (or a unique prefix) off the denylist. Lock held.
        unsafe fn denylist_remove(
            sysroot: Pin<&mut OstreeSysroot>,
            checksum: &str,
            cancellable: *mut GCancellable,
        ) -> Result<DenylistEntry>;
        /// Forget all health state; returns why the old store was
        /// unreadable (empty when it was readable). Lock held.
        unsafe fn health_reset(
            sysroot: Pin<&mut OstreeSysroot>,
            cancellable: *mut GCancellable,
        ) -> Result<String>;

        /// The configuration and the boot counter it selects for a sysroot:
        /// held by stagehand.hpp's `stagehand::BootAssessment`.
        type BootAssessmentState;
        /// The selected counter: "grubenv", "bls" or "none".
        fn backend(self: &BootAssessmentState) -> &'static str;
        /// Why this counter was selected.
        fn reason(self: &BootAssessmentState) -> String;
        /// The configuration file the settings came from ("": none, defaults).
        fn config_path(self: &BootAssessmentState) -> String;
        /// `[bootloader] tries`.
        fn tries(self: &BootAssessmentState) -> u32;
        /// `[health] deadline`, seconds since boot.
        fn health_deadline_secs(self: &BootAssessmentState) -> u64;
        /// `[health] auto-reboot`.
        fn auto_reboot(self: &BootAssessmentState) -> bool;
        /// Health options from the configuration (`keep-two-known-good`).
        fn health_options(self: &BootAssessmentState) -> Box<HealthOptions>;

        /// Read `config_path` ("": /etc/stagehand/stagehand.conf; a missing
        /// file: the defaults) and select its counter for `sysroot`.
        fn boot_assessment_new(
            sysroot: Pin<&mut OstreeSysroot>,
            config_path: &str,
        ) -> Result<Box<BootAssessmentState>>;
        /// Milliseconds until the health deadline (0 once it has passed).
        fn boot_time_remaining_ms(ba: &BootAssessmentState) -> Result<u64>;
        /// The counter of `deployment` ("": the default one). No lock.
        unsafe fn boot_query_counter(
            ba: &BootAssessmentState,
            sysroot: Pin<&mut OstreeSysroot>,
            deployment: &str,
            cancellable: *mut GCancellable,
        ) -> Result<CounterStatus>;
        /// assess() with the counter's evidence, then the counter settled. Lock held.
        unsafe fn boot_assess(
            ba: &BootAssessmentState,
            sysroot: Pin<&mut OstreeSysroot>,
            options: &HealthOptions,
            cancellable: *mut GCancellable,
        ) -> Result<BootAssessed>;
        /// mark_good(), then the counter blessed. Lock held.
        unsafe fn boot_mark_good(
            ba: &BootAssessmentState,
            sysroot: Pin<&mut OstreeSysroot>,
            options: &HealthOptions,
            cancellable: *mut GCancellable,
        ) -> Result<BootMarkedGood>;
        /// mark_bad(), then the counter disarmed. Lock held.
        unsafe fn boot_mark_bad(
            ba: &BootAssessmentState,
            sysroot: Pin<&mut OstreeSysroot>,
            deployment: &str,
            reason: &str,
            options: &HealthOptions,
            cancellable: *mut GCancellable,
        ) -> Result<BootMarkedBad>;
        /// The health deadline passed: mark the booted deployment bad if it
        /// is still on trial. Lock held.
        unsafe fn boot_deadline(
            ba: &BootAssessmentState,
            sysroot: Pin<&mut OstreeSysroot>,
            options: &HealthOptions,
            cancellable: *mut GCancellable,
        ) -> Result<BootDeadline>;
        /// After finalization: arm the counter for `deployment` if it is the
        /// default and on trial. Lock held.
        unsafe fn boot_arm_finalized(
            ba: &BootAssessmentState,
            sysroot: Pin<&mut OstreeSysroot>,
            deployment: &str,
            cancellable: *mut GCancellable,
        ) -> Result<ArmOutcome>;
    }
}

use ffi::{ErrorCode, GCancellable, OstreeSysroot};

// ------------------------------------------------------------- errors ----

/// An error as it crosses the bridge: its Display is the coded message that
/// `stagehand.hpp` parses.
#[derive(Debug)]
pub struct BridgeError {
    code: stagehand::ErrorCode,
    message: String,
}

impl BridgeError {
    /// The error's code.
    pub fn code(&self) -> stagehand::ErrorCode {
        self.code
    }

    /// The message without the prefix: the C library's `GError` message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ERROR_PREFIX}{} {}: {}",
            self.code as i32,
            self.code.nick(),
            self.message
        )
    }
}

impl From<stagehand::Error> for BridgeError {
    fn from(e: stagehand::Error) -> BridgeError {
        BridgeError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

type Result<T, E = BridgeError> = std::result::Result<T, E>;

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Run the body of a fallible bridge function `name` (its C++ name): the
/// logger installed, panics caught and turned into `Failed`, because a panic
/// reaching cxx's boundary aborts the whole daemon.
fn guard<T>(name: &str, f: impl FnOnce() -> stagehand::Result<T>) -> Result<T> {
    #[cfg(feature = "glib-log")]
    stagehand::glib_log::route_log_to_glib();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(BridgeError::from),
        Err(payload) => {
            let message = format!(
                "{name}: internal error (a bug in stagehand, please report it): {}",
                panic_message(&*payload)
            );
            log::error!("{message}");
            Err(BridgeError {
                code: stagehand::ErrorCode::Failed,
                message,
            })
        }
    }
}

// ------------------------------------------------------- GObject args ----

/// Borrow the caller's sysroot (one extra reference for the duration of
/// the call), checking its type like `OSTREE_IS_SYSROOT (sysroot)`.
fn sysroot_arg(name: &str, p: Pin<&mut OstreeSysroot>) -> stagehand::Result<ostree::Sysroot> {
    // SAFETY: only the address is taken; nothing is moved out of the pin.
    let raw = unsafe { Pin::get_unchecked_mut(p) } as *mut OstreeSysroot
        as *mut ostree::ffi::OstreeSysroot;
    // SAFETY: C++ passed a reference, so `raw` points to an object; the
    // check below reads only its class pointer, as OSTREE_IS_SYSROOT does.
    let ok = unsafe {
        glib::gobject_ffi::g_type_check_instance_is_a(
            raw as *mut glib::gobject_ffi::GTypeInstance,
            ostree::ffi::ostree_sysroot_get_type(),
        ) != glib::ffi::GFALSE
    };
    if !ok {
        return Err(stagehand::Error::InvalidArgument(format!(
            "{name}: sysroot is not an OstreeSysroot"
        )));
    }
    // SAFETY: a live OstreeSysroot; from_glib_none takes its own reference.
    Ok(unsafe { from_glib_none(raw) })
}

/// The caller's optional cancellable, checked like
/// `cancellable == NULL || G_IS_CANCELLABLE (cancellable)`.
///
/// # Safety
/// `p` is null or points to a GObject instance.
unsafe fn cancellable_arg(
    name: &str,
    p: *mut GCancellable,
) -> stagehand::Result<Option<gio::Cancellable>> {
    if p.is_null() {
        return Ok(None);
    }
    let raw = p as *mut gio::ffi::GCancellable;
    let ok = glib::gobject_ffi::g_type_check_instance_is_a(
        raw as *mut glib::gobject_ffi::GTypeInstance,
        gio::ffi::g_cancellable_get_type(),
    ) != glib::ffi::GFALSE;
    if !ok {
        return Err(stagehand::Error::InvalidArgument(format!(
            "{name}: cancellable is not a GCancellable"
        )));
    }
    Ok(Some(from_glib_none(raw)))
}

// ----------------------------------------------- hooks and health ----

unsafe fn hooks_check(
    sysroot: Pin<&mut OstreeSysroot>,
    options: &StageOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::HookReport> {
    const NAME: &str = "stagehand::hooks_check";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        let r = stagehand::hooks::check(&lock, &options.inner, cancellable.as_ref())?;
        Ok(ffi::HookReport {
            stateroot: r.stateroot,
            checksum: r.checksum,
            version: r.version.unwrap_or_default(),
            old: opt_id(r.old),
            passed: r.passed,
            hooks: r
                .hooks
                .into_iter()
                .map(|h| {
                    let (end, exit_status, signal) = match &h.end {
                        None => (ffi::HookEnd::Passed, 0, 0),
                        Some(stagehand::HookEnd::Exited(c)) => (ffi::HookEnd::Exited, *c, 0),
                        Some(stagehand::HookEnd::Signaled(n)) => (ffi::HookEnd::Signaled, 0, *n),
                        Some(stagehand::HookEnd::TimedOut(_)) => (ffi::HookEnd::TimedOut, 0, 0),
                        Some(stagehand::HookEnd::SpawnFailed(_)) => {
                            (ffi::HookEnd::SpawnFailed, 0, 0)
                        }
                    };
                    ffi::HookRun {
                        description: h.end.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                        name: h.name,
                        path: h.path,
                        origin: match h.origin {
                            stagehand::HookOrigin::Vendor => ffi::HookOrigin::Vendor,
                            stagehand::HookOrigin::Admin => ffi::HookOrigin::Admin,
                        },
                        passed: h.passed,
                        end,
                        exit_status,
                        signal,
                        duration_ms: h.duration_ms,
                        output_bytes: h.output_bytes,
                        output_tail: h.output_tail,
                    }
                })
                .collect(),
        })
    })
}

unsafe fn hooks_recover(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<ffi::UnstageOutcome> {
    const NAME: &str = "stagehand::hooks_recover";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        let out = stagehand::hooks::recover(&lock, cancellable.as_ref())?;
        Ok(ffi::UnstageOutcome {
            unstaged: out.removed.is_some(),
            deployment: opt_id(out.removed),
        })
    })
}

unsafe fn mark_good(
    sysroot: Pin<&mut OstreeSysroot>,
    options: &HealthOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::MarkGoodOutcome> {
    const NAME: &str = "stagehand::mark_good";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        let out = stagehand::health::mark_good(&lock, &options.0, cancellable.as_ref())?;
        Ok(mark_good_outcome(out))
    })
}

unsafe fn mark_bad(
    sysroot: Pin<&mut OstreeSysroot>,
    deployment: &str,
    reason: &str,
    options: &HealthOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::MarkBadOutcome> {
    const NAME: &str = "stagehand::mark_bad";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        let target = opt(deployment)
            .map(|s| stagehand::DeploymentId::resolve(s, &sysroot))
            .transpose()?;
        let out = stagehand::health::mark_bad(
            &lock,
            target.as_ref(),
            reason,
            &options.0,
            cancellable.as_ref(),
        )?;
        Ok(mark_bad_outcome(out))
    })
}

unsafe fn assess(
    sysroot: Pin<&mut OstreeSysroot>,
    evidence: ffi::BootEvidence,
    tries: u32,
    options: &HealthOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::Verdict> {
    const NAME: &str = "stagehand::assess";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let evidence = match evidence {
            ffi::BootEvidence::Unknown => stagehand::BootEvidence::Unknown,
            ffi::BootEvidence::Fallback => stagehand::BootEvidence::Fallback {
                tries: (tries > 0).then_some(tries),
            },
            ffi::BootEvidence::ManualChoice => stagehand::BootEvidence::ManualChoice,
            other => {
                return Err(stagehand::Error::InvalidArgument(format!(
                    "{NAME}: {} is no BootEvidence",
                    other.repr
                )))
            }
        };
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        let v = stagehand::health::assess(&lock, &evidence, &options.0, cancellable.as_ref())?;
        Ok(verdict(v))
    })
}

fn mark_good_outcome(out: stagehand::health::MarkGoodOutcome) -> ffi::MarkGoodOutcome {
    ffi::MarkGoodOutcome {
        deployment: out.deployment.into(),
        previous: health_state(Some(out.previous)),
        attempts: out.attempts,
        undenylisted: out.undenylisted,
        retention_pending: out.retention_pending,
    }
}

fn mark_bad_outcome(out: stagehand::health::MarkBadOutcome) -> ffi::MarkBadOutcome {
    ffi::MarkBadOutcome {
        deployment: out.deployment.into(),
        reason: out.reason,
        denylisted: out.denylisted,
        already_failed: out.already_failed,
        unstaged: out.unstaged,
        rolled_back_to: opt_id(out.rolled_back_to),
        default_deployment: opt_id(out.default),
        staged: opt_id(out.staged),
        reboot_needed: out.reboot_needed,
    }
}

fn verdict(v: stagehand::health::Verdict) -> ffi::Verdict {
    ffi::Verdict {
        booted: v.booted.into(),
        health: health_state(Some(v.health)),
        attempts: v.attempts,
        counted: v.counted,
        outcome: match v.outcome {
            stagehand::health::Outcome::Good => ffi::AssessOutcome::Good,
            stagehand::health::Outcome::OnTrial => ffi::AssessOutcome::OnTrial,
            stagehand::health::Outcome::BootedFailed => ffi::AssessOutcome::BootedFailed,
            stagehand::health::Outcome::FellBack => ffi::AssessOutcome::FellBack,
            stagehand::health::Outcome::ManualChoice => ffi::AssessOutcome::ManualChoice,
            stagehand::health::Outcome::Undetermined => ffi::AssessOutcome::Undetermined,
        },
        newer: ids(v.newer),
        failed: ids(v.failed),
        default_deployment: opt_id(v.default),
        reboot_needed: v.reboot_needed,
        retention_pending: v.retention_pending,
        message: v.message,
    }
}

unsafe fn denylist(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<Vec<ffi::DenylistEntry>> {
    const NAME: &str = "stagehand::denylist";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        if cancellable
            .as_ref()
            .is_some_and(gio::prelude::CancellableExt::is_cancelled)
        {
            return Err(stagehand::Error::Cancelled);
        }
        Ok(stagehand::health::denylist(&sysroot)?
            .iter()
            .map(denylist_entry)
            .collect())
    })
}

unsafe fn denylist_remove(
    sysroot: Pin<&mut OstreeSysroot>,
    checksum: &str,
    cancellable: *mut GCancellable,
) -> Result<ffi::DenylistEntry> {
    const NAME: &str = "stagehand::denylist_remove";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        Ok(denylist_entry(&stagehand::health::denylist_remove(
            &lock, checksum,
        )?))
    })
}

unsafe fn health_reset(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<String> {
    const NAME: &str = "stagehand::health_reset";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        Ok(stagehand::health::reset(&lock, cancellable.as_ref())?
            .previous_error
            .unwrap_or_default())
    })
}

// ----------------------------------------------------- conversions ----

impl From<stagehand::DeploymentId> for ffi::DeploymentId {
    fn from(d: stagehand::DeploymentId) -> Self {
        ffi::DeploymentId {
            stateroot: d.stateroot,
            checksum: d.checksum,
            serial: d.serial,
        }
    }
}

impl From<&ffi::DeploymentId> for stagehand::DeploymentId {
    fn from(d: &ffi::DeploymentId) -> Self {
        stagehand::DeploymentId {
            stateroot: d.stateroot.clone(),
            checksum: d.checksum.clone(),
            serial: d.serial,
        }
    }
}

fn opt_id(id: Option<stagehand::DeploymentId>) -> ffi::DeploymentId {
    id.map_or_else(empty_id, Into::into)
}

fn health_state(s: Option<stagehand::health::State>) -> ffi::HealthState {
    use stagehand::health::State;
    match s {
        Some(State::Untested) => ffi::HealthState::Untested,
        Some(State::Failed) => ffi::HealthState::Failed,
        Some(State::Good) => ffi::HealthState::Good,
        Some(State::GoodFallback) => ffi::HealthState::GoodFallback,
        None => ffi::HealthState::Unknown,
    }
}

fn denylist_entry(d: &stagehand::health::Denied) -> ffi::DenylistEntry {
    ffi::DenylistEntry {
        checksum: d.checksum.clone(),
        reason: d.reason.clone(),
        since: d.since.clone(),
        deployment: opt_id(d.deployment.clone()),
    }
}

fn empty_id() -> ffi::DeploymentId {
    ffi::DeploymentId {
        stateroot: String::new(),
        checksum: String::new(),
        serial: 0,
    }
}

fn ids(v: Vec<stagehand::DeploymentId>) -> Vec<ffi::DeploymentId> {
    v.into_iter().map(Into::into).collect()
}

impl From<stagehand::ErrorCode> for ErrorCode {
    fn from(c: stagehand::ErrorCode) -> ErrorCode {
        ErrorCode { repr: c as i32 }
    }
}

fn cleanup_stamp(s: Option<RsCleanupStamp>) -> ffi::CleanupStamp {
    let mut out = ffi::CleanupStamp {
        kind: ffi::CleanupStampKind::None,
        deployment: empty_id(),
        dropped: Vec::new(),
        finalized_at: String::new(),
        boot_id: String::new(),
        version: 0,
        removed: Vec::new(),
        removed_at: String::new(),
    };
    match s {
        None => {}
        Some(RsCleanupStamp::Legacy) => out.kind = ffi::CleanupStampKind::Legacy,
        Some(RsCleanupStamp::Newer { version }) => {
            out.kind = ffi::CleanupStampKind::Newer;
            out.version = version;
        }
        Some(RsCleanupStamp::Finalized {
            deployment,
            dropped,
            finalized_at,
            boot_id,
            removed,
            removed_at,
        }) => {
            out.kind = ffi::CleanupStampKind::Finalized;
            out.deployment = deployment.into();
            out.dropped = ids(dropped);
            out.finalized_at = finalized_at;
            out.boot_id = boot_id.unwrap_or_default();
            out.removed = ids(removed);
            out.removed_at = removed_at.unwrap_or_default();
        }
        Some(RsCleanupStamp::Removed {
            removed,
            removed_at,
        }) => {
            out.kind = ffi::CleanupStampKind::Removed;
            out.removed = ids(removed);
            out.removed_at = removed_at;
        }
        // A kind this binding does not know yet: still a pending cleanup.
        Some(_) => out.kind = ffi::CleanupStampKind::Newer,
    }
    out
}

fn cleanup_report(r: stagehand::CleanupReport) -> ffi::CleanupReport {
    ffi::CleanupReport {
        performed: r.performed,
        stamp: cleanup_stamp(r.stamp),
        deployments_removed: ids(r.deployments_removed),
        objects_freed: r.objects_freed,
        bytes_freed: r.bytes_freed,
        objects_remaining: r.objects_remaining,
        bytes_remaining: r.bytes_remaining,
        stamp_removed: r.stamp_removed,
        released_pins: ids(r.released_pins),
    }
}

fn guard_stamp(s: redline::Stamp) -> ffi::GuardStamp {
    ffi::GuardStamp {
        name: s.name,
        phase: match s.phase {
            redline::Phase::Started => ffi::GuardPhase::Started,
            redline::Phase::Complete => ffi::GuardPhase::Complete,
        },
        digest: s.digest.unwrap_or_default(),
        run: s.run,
        started: s.started,
        completed: s.completed.unwrap_or_default(),
    }
}

/// An empty digest is "no digest" (C++ has no `Option`).
fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

// ---------------------------------------------------------- builders ----

/// The opaque options of `stage()`.
pub struct StageOptions {
    inner: stagehand::StageOptions,
    // Kept beside `inner`: StageOptions has no getter for its hook options,
    // and each setter of HookOptions starts from the current value.
    hooks: stagehand::HookOptions,
}

impl StageOptions {
    fn update(&mut self, f: impl FnOnce(stagehand::StageOptions) -> stagehand::StageOptions) {
        let old = std::mem::replace(&mut self.inner, stagehand::StageOptions::new(""));
        self.inner = f(old);
    }

    fn set_stateroot(&mut self, stateroot: &str) {
        self.update(|o| o.stateroot(stateroot));
    }

    fn set_origin_refspec(&mut self, refspec: &str) {
        self.update(|o| o.origin_refspec(refspec));
    }

    fn set_kargs_append(&mut self, kargs: Vec<String>) {
        let kargs = if kargs.is_empty() {
            Kargs::Inherit
        } else {
            Kargs::Append(kargs)
        };
        self.update(|o| o.kargs(kargs));
    }

    fn set_kargs_replace(&mut self, kargs: Vec<String>) {
        self.update(|o| o.kargs(Kargs::Replace(kargs)));
    }

    fn set_lock_finalization(&mut self, lock: bool) {
        self.update(|o| o.lock_finalization(lock));
    }

    fn set_hooks_enabled(&mut self, enabled: bool) {
        self.hooks = self.hooks.clone().set_enabled(enabled);
        let hooks = self.hooks.clone();
        self.update(|o| o.hooks(hooks));
    }

    fn set_hook_timeout(&mut self, seconds: u32) {
        if seconds == 0 {
            return;
        }
        self.hooks = self
            .hooks
            .clone()
            .set_timeout(Duration::from_secs(seconds.into()));
        let hooks = self.hooks.clone();
        self.update(|o| o.hooks(hooks));
    }
}

impl StageOptions {
    fn set_allow_denylisted(&mut self, allow: bool) {
        self.update(|o| o.allow_denylisted(allow));
    }

    fn set_keep_known_good(&mut self, keep: bool) {
        self.update(|o| o.health(stagehand::HealthOptions::new().keep_known_good(keep)));
    }
}

/// The opaque options of the health transitions.
pub struct HealthOptions(stagehand::HealthOptions);

impl HealthOptions {
    fn health_set_keep_known_good(&mut self, keep: bool) {
        self.0 = self.0.clone().keep_known_good(keep);
    }
}

fn health_options() -> Box<HealthOptions> {
    Box::new(HealthOptions(stagehand::HealthOptions::default()))
}

fn stage_options(revision: &str) -> Box<StageOptions> {
    Box::new(StageOptions {
        inner: stagehand::StageOptions::new(revision),
        hooks: stagehand::HookOptions::default(),
    })
}

/// The opaque options of `autocleanup()`.
pub struct CleanupOptions(stagehand::CleanupOptions);

impl CleanupOptions {
    fn set_lock_timeout_ms(&mut self, ms: u64) {
        self.0 = self.0.clone().lock_timeout(Duration::from_millis(ms));
    }

    fn set_force(&mut self, force: bool) {
        self.0 = self.0.clone().force(force);
    }
}

fn cleanup_options() -> Box<CleanupOptions> {
    Box::new(CleanupOptions(stagehand::CleanupOptions::new()))
}

// ------------------------------------------------------ small helpers ----

impl ffi::DeploymentId {
    fn to_id_string(&self) -> String {
        stagehand::DeploymentId::from(self).to_string()
    }
}

impl ffi::DeploymentStatus {
    fn id(&self) -> ffi::DeploymentId {
        ffi::DeploymentId {
            stateroot: self.stateroot.clone(),
            checksum: self.checksum.clone(),
            serial: self.serial,
        }
    }
}

fn finalization_locked(_sysroot: Pin<&mut OstreeSysroot>) -> bool {
    stagehand::finalization_locked()
}

fn error_code_nick(code: ErrorCode) -> &'static str {
    stagehand::ErrorCode::from_i32(code.repr)
        .map(stagehand::ErrorCode::nick)
        .unwrap_or("unknown")
}

fn guard_default_dir() -> &'static str {
    redline::DEFAULT_DIR
}

// ----------------------------------------------------------- staging ----

unsafe fn sysroot_lock(
    sysroot: Pin<&mut OstreeSysroot>,
    timeout_ms: u32,
    cancellable: *mut GCancellable,
) -> Result<()> {
    const NAME: &str = "stagehand::sysroot_lock";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::acquire(
            &sysroot,
            Duration::from_millis(timeout_ms.into()),
            cancellable.as_ref(),
        )?;
        lock.into_held();
        Ok(())
    })
}

unsafe fn stage(
    sysroot: Pin<&mut OstreeSysroot>,
    options: &StageOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::StageOutcome> {
    const NAME: &str = "stagehand::stage";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        let out = stagehand::stage(&lock, &options.inner, cancellable.as_ref())?;
        Ok(ffi::StageOutcome {
            deployment: out.deployment.into(),
            method: match out.method {
                stagehand::StageMethod::Staged => ffi::StageMethod::Staged,
                stagehand::StageMethod::Deployed => ffi::StageMethod::Deployed,
            },
            unchanged: out.unchanged,
            finalization_locked: out.finalization_locked,
        })
    })
}

unsafe fn unstage(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<ffi::UnstageOutcome> {
    const NAME: &str = "stagehand::unstage";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        Ok(match stagehand::unstage(&lock, cancellable.as_ref())? {
            Some(id) => ffi::UnstageOutcome {
                unstaged: true,
                deployment: id.into(),
            },
            None => ffi::UnstageOutcome {
                unstaged: false,
                deployment: empty_id(),
            },
        })
    })
}

unsafe fn lock_finalization(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<()> {
    const NAME: &str = "stagehand::lock_finalization";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        stagehand::sysroot::reload_if_changed(&sysroot, cancellable.as_ref())?;
        stagehand::lock_finalization(&sysroot)
    })
}

unsafe fn unlock_finalization(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<bool> {
    const NAME: &str = "stagehand::unlock_finalization";
    guard(NAME, || {
        sysroot_arg(NAME, sysroot)?;
        cancellable_arg(NAME, cancellable)?;
        stagehand::unlock_finalization()
    })
}

unsafe fn status(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<ffi::Status> {
    const NAME: &str = "stagehand::status";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        stagehand::sysroot::reload_if_changed(&sysroot, cancellable.as_ref())?;
        let s = stagehand::status(&sysroot)?;
        Ok(ffi::Status {
            deployments: s
                .deployments
                .into_iter()
                .map(|d| ffi::DeploymentStatus {
                    index: d.index,
                    stateroot: d.stateroot,
                    checksum: d.checksum,
                    serial: d.serial,
                    version: d.version.unwrap_or_default(),
                    booted: d.booted,
                    staged: d.staged,
                    pinned: d.pinned,
                    finalization_locked: d.finalization_locked,
                    unvetted: d.unvetted,
                    health: health_state(d.health),
                    attempts: d.attempts,
                    on_trial: d.on_trial,
                    health_reason: d.health_reason.unwrap_or_default(),
                    health_changed: d.health_changed.unwrap_or_default(),
                    pinned_by_stagehand: d.pinned_by_stagehand,
                })
                .collect(),
            cleanup_pending: s.cleanup_pending,
            retention_pending: s.retention_pending,
            denylist: s.denylist.iter().map(denylist_entry).collect(),
            has_last_rollback: s.last_rollback.is_some(),
            last_rollback: match &s.last_rollback {
                Some(r) => ffi::Rollback {
                    from: r.from.clone().into(),
                    to: r.to.clone().into(),
                    reason: r.reason.clone(),
                    at: r.at.clone(),
                    trigger: match r.trigger {
                        stagehand::health::Trigger::MarkBad => ffi::RollbackTrigger::MarkBad,
                        stagehand::health::Trigger::Assess => ffi::RollbackTrigger::Assess,
                    },
                },
                None => ffi::Rollback {
                    from: empty_id(),
                    to: empty_id(),
                    reason: String::new(),
                    at: String::new(),
                    trigger: ffi::RollbackTrigger::MarkBad,
                },
            },
            health_error: s.health_error.unwrap_or_default(),
        })
    })
}

fn parse_deployment_id(id: &str) -> Result<ffi::DeploymentId> {
    guard("stagehand::parse_deployment_id", || {
        id.parse::<stagehand::DeploymentId>().map(Into::into)
    })
}

// ----------------------------------------------------------- cleanup ----

unsafe fn pending_cleanup(
    sysroot: Pin<&mut OstreeSysroot>,
    cancellable: *mut GCancellable,
) -> Result<ffi::CleanupStamp> {
    const NAME: &str = "stagehand::pending_cleanup";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        cancellable_arg(NAME, cancellable)?;
        stagehand::pending_cleanup(&sysroot).map(cleanup_stamp)
    })
}

unsafe fn autocleanup(
    sysroot: Pin<&mut OstreeSysroot>,
    options: &CleanupOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::CleanupReport> {
    const NAME: &str = "stagehand::autocleanup";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        stagehand::autocleanup(&sysroot, &options.0, cancellable.as_ref()).map(cleanup_report)
    })
}

unsafe fn run_cleanup(
    sysroot: Pin<&mut OstreeSysroot>,
    force: bool,
    cancellable: *mut GCancellable,
) -> Result<ffi::CleanupReport> {
    const NAME: &str = "stagehand::run_cleanup";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = SysrootLock::verify_held(&sysroot, NAME)?;
        lock.reload(cancellable.as_ref())?;
        stagehand::run_cleanup(&lock, force, cancellable.as_ref()).map(cleanup_report)
    })
}

// ------------------------------------------------------------- guard ----

/// The opaque guard token: `redline::Token`.
pub struct GuardToken(redline::Token);

impl GuardToken {
    fn stamp(&self) -> ffi::GuardStamp {
        guard_stamp(self.0.stamp().clone())
    }

    fn path(&self) -> String {
        self.0.path().display().to_string()
    }

    fn replaced(&self) -> String {
        match self.0.replaced() {
            None => String::new(),
            Some(redline::Replaced::Stamp(s)) => format!(
                "a {} stamp (digest {}, started {})",
                s.phase.as_str(),
                s.digest.as_deref().unwrap_or("(none)"),
                s.started
            ),
            Some(redline::Replaced::Unreadable(why)) => format!("an unreadable stamp: {why}"),
        }
    }
}

fn guard_begin(dir: &str, name: &str, digest: &str) -> Result<Box<GuardToken>> {
    guard("stagehand::guard_begin", || {
        redline::begin(Path::new(dir), name, opt(digest)).map(|t| Box::new(GuardToken(t)))
    })
}

fn guard_begin_forced(dir: &str, name: &str, digest: &str) -> Result<Box<GuardToken>> {
    guard("stagehand::guard_begin_forced", || {
        redline::begin_forced(Path::new(dir), name, opt(digest)).map(|t| Box::new(GuardToken(t)))
    })
}

fn guard_resume(dir: &str, name: &str, digest: &str) -> Result<Box<GuardToken>> {
    guard("stagehand::guard_resume", || {
        redline::resume(Path::new(dir), name, opt(digest)).map(|t| Box::new(GuardToken(t)))
    })
}

fn guard_commit(token: Box<GuardToken>) -> Result<ffi::GuardStamp> {
    guard("stagehand::guard_commit", || {
        redline::commit(token.0).map(guard_stamp)
    })
}

fn guard_status(dir: &str, name: &str) -> Result<ffi::GuardStamp> {
    guard("stagehand::guard_status", || {
        Ok(match redline::status(Path::new(dir), name)? {
            Some(s) => guard_stamp(s),
            None => ffi::GuardStamp {
                name: name.to_string(),
                phase: ffi::GuardPhase::Absent,
                digest: String::new(),
                run: String::new(),
                started: String::new(),
                completed: String::new(),
            },
        })
    })
}

fn guard_reset(dir: &str, name: &str) -> Result<bool> {
    guard("stagehand::guard_reset", || {
        redline::reset(Path::new(dir), name)
    })
}

fn guard_file_digest(path: &str) -> Result<String> {
    guard("stagehand::guard_file_digest", || {
        redline::file_digest(Path::new(path))
    })
}

// ---------------------------------------------------- boot assessment ----
//
// `stagehand::assessment::BootAssessment` for C++ daemons that run their own
// boot check with a boot counter configured: what the units run. Thin, like
// the C ABI's `stagehand_boot_assessment_*`.

/// The configuration and the boot counter it selects (held by
/// `stagehand::BootAssessment` in stagehand.hpp).
pub struct BootAssessmentState(stagehand::assessment::BootAssessment);

impl BootAssessmentState {
    fn backend(&self) -> &'static str {
        self.0.counter().backend().as_str()
    }
    fn reason(&self) -> String {
        self.0.reason().to_string()
    }
    fn config_path(&self) -> String {
        self.0
            .config()
            .source
            .as_deref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    fn tries(&self) -> u32 {
        self.0.config().tries
    }
    fn health_deadline_secs(&self) -> u64 {
        self.0.config().health_deadline.as_secs()
    }
    fn auto_reboot(&self) -> bool {
        self.0.config().auto_reboot
    }
    fn health_options(&self) -> Box<HealthOptions> {
        Box::new(HealthOptions(self.0.health_options()))
    }
}

fn boot_assessment_new(
    sysroot: Pin<&mut OstreeSysroot>,
    config_path: &str,
) -> Result<Box<BootAssessmentState>> {
    const NAME: &str = "stagehand::BootAssessment";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let path = opt(config_path).unwrap_or(stagehand::config::DEFAULT_PATH);
        let cfg = stagehand::Config::load(Path::new(path))?;
        Ok(Box::new(BootAssessmentState(
            stagehand::assessment::BootAssessment::new(&sysroot, cfg)?,
        )))
    })
}

fn boot_time_remaining_ms(ba: &BootAssessmentState) -> Result<u64> {
    guard("stagehand::BootAssessment::time_remaining_ms", || {
        let left = stagehand::assessment::remaining(
            ba.0.config().health_deadline,
            stagehand::assessment::since_boot()?,
        );
        Ok(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
    })
}

/// The caller's lock, verified held (`ErrorCode::NotLocked` otherwise,
/// naming the function), and the sysroot reloaded.
fn held(
    name: &str,
    sysroot: &ostree::Sysroot,
    cancellable: Option<&gio::Cancellable>,
) -> stagehand::Result<SysrootLock> {
    let lock = SysrootLock::verify_held(sysroot, name)?;
    lock.reload(cancellable)?;
    Ok(lock)
}

unsafe fn boot_query_counter(
    ba: &BootAssessmentState,
    sysroot: Pin<&mut OstreeSysroot>,
    deployment: &str,
    cancellable: *mut GCancellable,
) -> Result<ffi::CounterStatus> {
    const NAME: &str = "stagehand::BootAssessment::query_counter";
    guard(NAME, || {
        use stagehand::bootloader::{CounterState, Target};
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        stagehand::sysroot::reload_if_changed(&sysroot, cancellable.as_ref())?;
        let spec = opt(deployment);
        let found = match spec {
            Some(s) => {
                let id = stagehand::DeploymentId::resolve(s, &sysroot)?;
                sysroot.deployments().into_iter().find(|d| id.matches(d))
            }
            None => {
                let staged = sysroot.staged_deployment();
                sysroot
                    .deployments()
                    .into_iter()
                    .find(|d| staged.as_ref() != Some(d))
            }
        };
        let d = found.ok_or_else(|| {
            stagehand::Error::UnknownDeployment(
                spec.unwrap_or("the default deployment (the sysroot has none)")
                    .to_string(),
            )
        })?;
        let (state, left, done) = match ba.0.counter().state(&Target::of(&d))? {
            CounterState::NotArmed => (ffi::CounterState::NotArmed, 0, None),
            CounterState::Counting { left, done } => (ffi::CounterState::Counting, left, done),
            CounterState::Exhausted { done } => (ffi::CounterState::Exhausted, 0, done),
            CounterState::NoCounter => (ffi::CounterState::NoCounter, 0, None),
        };
        Ok(ffi::CounterStatus {
            state,
            left,
            done: done.and_then(|d| i32::try_from(d).ok()).unwrap_or(-1),
        })
    })
}

unsafe fn boot_assess(
    ba: &BootAssessmentState,
    sysroot: Pin<&mut OstreeSysroot>,
    options: &HealthOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::BootAssessed> {
    const NAME: &str = "stagehand::BootAssessment::assess";
    guard(NAME, || {
        use stagehand::bootloader::CounterEvidence;
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = held(NAME, &sysroot, cancellable.as_ref())?;
        let a = ba.0.assess(&lock, None, &options.0, cancellable.as_ref())?;
        let (counter_evidence, tries_left, fallback_tries) = match a.counter_evidence {
            Some(CounterEvidence::OnTrial { left }) => (ffi::CounterEvidence::OnTrial, left, 0),
            Some(CounterEvidence::BootloaderFallback { tries }) => (
                ffi::CounterEvidence::BootloaderFallback,
                0,
                tries.unwrap_or(0),
            ),
            Some(CounterEvidence::ManualChoice) => (ffi::CounterEvidence::ManualChoice, 0, 0),
            Some(CounterEvidence::NoEvidence) | None => (ffi::CounterEvidence::None, 0, 0),
        };
        Ok(ffi::BootAssessed {
            verdict: verdict(a.verdict),
            counter_evidence,
            tries_left,
            fallback_tries,
            counter_error: a.counter_error.unwrap_or_default(),
            disarmed: ids(a.disarmed),
        })
    })
}

unsafe fn boot_mark_good(
    ba: &BootAssessmentState,
    sysroot: Pin<&mut OstreeSysroot>,
    options: &HealthOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::BootMarkedGood> {
    const NAME: &str = "stagehand::BootAssessment::mark_good";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = held(NAME, &sysroot, cancellable.as_ref())?;
        let m = ba.0.mark_good(&lock, &options.0, cancellable.as_ref())?;
        Ok(ffi::BootMarkedGood {
            outcome: mark_good_outcome(m.outcome),
            blessed: m.blessed,
            disarmed: ids(m.disarmed),
        })
    })
}

fn boot_marked_bad(m: stagehand::assessment::MarkedBad) -> ffi::BootMarkedBad {
    ffi::BootMarkedBad {
        outcome: mark_bad_outcome(m.outcome),
        disarmed: ids(m.disarmed),
        reboot: m.reboot,
    }
}

unsafe fn boot_mark_bad(
    ba: &BootAssessmentState,
    sysroot: Pin<&mut OstreeSysroot>,
    deployment: &str,
    reason: &str,
    options: &HealthOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::BootMarkedBad> {
    const NAME: &str = "stagehand::BootAssessment::mark_bad";
    guard(NAME, || {
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = held(NAME, &sysroot, cancellable.as_ref())?;
        let target = opt(deployment)
            .map(|s| stagehand::DeploymentId::resolve(s, &sysroot))
            .transpose()?;
        let m = ba.0.mark_bad(
            &lock,
            target.as_ref(),
            reason,
            &options.0,
            cancellable.as_ref(),
        )?;
        Ok(boot_marked_bad(m))
    })
}

unsafe fn boot_deadline(
    ba: &BootAssessmentState,
    sysroot: Pin<&mut OstreeSysroot>,
    options: &HealthOptions,
    cancellable: *mut GCancellable,
) -> Result<ffi::BootDeadline> {
    const NAME: &str = "stagehand::BootAssessment::deadline";
    guard(NAME, || {
        use stagehand::assessment::Deadline;
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = held(NAME, &sysroot, cancellable.as_ref())?;
        Ok(
            match ba.0.deadline(&lock, &options.0, cancellable.as_ref())? {
                Deadline::NotOnTrial { booted } => ffi::BootDeadline {
                    missed: false,
                    booted: booted.into(),
                    marked_bad: ffi::BootMarkedBad {
                        outcome: ffi::MarkBadOutcome {
                            deployment: empty_id(),
                            reason: String::new(),
                            denylisted: String::new(),
                            already_failed: false,
                            unstaged: false,
                            rolled_back_to: empty_id(),
                            default_deployment: empty_id(),
                            staged: empty_id(),
                            reboot_needed: false,
                        },
                        disarmed: Vec::new(),
                        reboot: false,
                    },
                },
                Deadline::Missed(m) => ffi::BootDeadline {
                    missed: true,
                    booted: m.outcome.deployment.clone().into(),
                    marked_bad: boot_marked_bad(*m),
                },
            },
        )
    })
}

unsafe fn boot_arm_finalized(
    ba: &BootAssessmentState,
    sysroot: Pin<&mut OstreeSysroot>,
    deployment: &str,
    cancellable: *mut GCancellable,
) -> Result<ffi::ArmOutcome> {
    const NAME: &str = "stagehand::BootAssessment::arm_finalized";
    guard(NAME, || {
        use stagehand::assessment::Armed;
        let sysroot = sysroot_arg(NAME, sysroot)?;
        let cancellable = cancellable_arg(NAME, cancellable)?;
        let lock = held(NAME, &sysroot, cancellable.as_ref())?;
        let id = stagehand::DeploymentId::resolve(deployment, &sysroot)?;
        Ok(match ba.0.arm_finalized(&lock, &id)? {
            Armed::Armed {
                deployment, tries, ..
            } => ffi::ArmOutcome {
                armed: true,
                deployment: deployment.into(),
                tries,
                reason: String::new(),
            },
            Armed::Skipped { deployment, reason } => ffi::ArmOutcome {
                armed: false,
                deployment: deployment.into(),
                tries: 0,
                reason,
            },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_error_codes_are_the_library_codes() {
        // The shared enum must list every stagehand::ErrorCode with the
        // same number; error_code_nick checks names through the library.
        let shared: Vec<i32> = (0..)
            .map(|i| ErrorCode { repr: i })
            .take_while(|c| error_code_nick(*c) != "unknown")
            .map(|c| c.repr)
            .collect();
        assert_eq!(shared.len(), stagehand::ErrorCode::ALL.len());
        for c in stagehand::ErrorCode::ALL {
            let s = ErrorCode::from(c);
            assert_eq!(s.repr, c as i32);
            assert_eq!(error_code_nick(s), c.nick());
        }
    }

    #[test]
    fn errors_carry_code_nick_and_the_c_message() {
        let e = stagehand::Error::UnknownStateroot("nope".into());
        let c_message = e.to_string();
        let b = BridgeError::from(e);
        assert_eq!(
            b.to_string(),
            format!("stagehand-error 8 unknown-stateroot: {c_message}")
        );
        assert_eq!(b.message(), c_message);
    }

    #[test]
    fn a_panic_becomes_failed_naming_the_function() {
        let r: Result<()> = guard("stagehand::test", || panic!("boom {}", 42));
        let e = r.unwrap_err();
        assert_eq!(e.code(), stagehand::ErrorCode::Failed);
        assert!(e.message().starts_with("stagehand::test: internal error"));
        assert!(e.message().ends_with("boom 42"), "{}", e.message());
        assert!(e.to_string().starts_with("stagehand-error 0 failed: "));
    }
}
