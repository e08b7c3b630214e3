//! Deployment health: the health state of each deployment (read through
//! #StagehandDeploymentStatus), mark-good, mark-bad, boot assessment, the
//! denylist and a reset, over `stagehand::health` (docs/health.md).

use std::ffi::{c_char, CString};
use std::ptr;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE, GTRUE};
use ostree::ffi::OstreeSysroot;

use crate::guint;
use stagehand::health::{self, Denied, Outcome, RollbackRecord, State, Trigger, Verdict};
use stagehand::{BootEvidence, DeploymentId, HealthOptions};

use crate::guard::{cstring, fallible, free_boxed, g_strdup, gbool, infallible, opt_ptr, Strv};

/// StagehandHealthState:
/// @STAGEHAND_HEALTH_STATE_UNTESTED: installed (staged or deployed) and never booted: boot this if available
/// @STAGEHAND_HEALTH_STATE_FAILED: booted but not confirmed yet (on trial, see stagehand_deployment_status_get_on_trial()), or marked bad (with a reason): a last resort only
/// @STAGEHAND_HEALTH_STATE_GOOD: booted successfully, the most recent such deployment
/// @STAGEHAND_HEALTH_STATE_GOOD_FALLBACK: booted successfully before, a fallback; also every deployment stagehand has no record of
/// @STAGEHAND_HEALTH_STATE_UNKNOWN: the health store cannot be read (stagehand_status_get_health_error() says why)
///
/// What seed 000's untested/failed/recent flags of a deployment say.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandHealthState {
    Untested = 0,
    Failed = 1,
    Good = 2,
    GoodFallback = 3,
    Unknown = 4,
}

impl StagehandHealthState {
    pub(crate) fn of(state: Option<State>) -> StagehandHealthState {
        match state {
            Some(State::Untested) => StagehandHealthState::Untested,
            Some(State::Failed) => StagehandHealthState::Failed,
            Some(State::Good) => StagehandHealthState::Good,
            Some(State::GoodFallback) => StagehandHealthState::GoodFallback,
            None => StagehandHealthState::Unknown,
        }
    }
}

/// StagehandRollbackTrigger:
/// @STAGEHAND_ROLLBACK_TRIGGER_MARK_BAD: stagehand_mark_bad() (a failing health check or an administrator)
/// @STAGEHAND_ROLLBACK_TRIGGER_ASSESS: boot assessment found that the bootloader fell back
///
/// What made stagehand roll back (stagehand_rollback_get_trigger()).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandRollbackTrigger {
    MarkBad = 0,
    Assess = 1,
}

/// StagehandBootEvidence:
/// @STAGEHAND_BOOT_EVIDENCE_UNKNOWN: nothing is known about how the entry was chosen: nothing is marked (conservative)
/// @STAGEHAND_BOOT_EVIDENCE_FALLBACK: the bootloader fell back because the default entry's tries ran out
/// @STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE: a person picked the entry in the boot menu
///
/// What the bootloader knows about this boot, for stagehand_assess() (which
/// takes it as a #guint).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandBootEvidence {
    Unknown = 0,
    Fallback = 1,
    ManualChoice = 2,
}

/// StagehandAssessOutcome:
/// @STAGEHAND_ASSESS_OUTCOME_GOOD: the booted deployment is known good
/// @STAGEHAND_ASSESS_OUTCOME_ON_TRIAL: the booted deployment is on trial: it booted and waits for stagehand_mark_good()
/// @STAGEHAND_ASSESS_OUTCOME_BOOTED_FAILED: the booted deployment has a failure verdict (picked by hand, or the last resort)
/// @STAGEHAND_ASSESS_OUTCOME_FELL_BACK: the bootloader fell back from newer deployments that did not boot: they are failed and denylisted, the booted one is the default again
/// @STAGEHAND_ASSESS_OUTCOME_MANUAL_CHOICE: newer deployments on trial were passed over by a person's choice: nothing is marked
/// @STAGEHAND_ASSESS_OUTCOME_UNDETERMINED: newer deployments on trial were passed over without evidence why: nothing is marked
///
/// What stagehand_assess() concluded.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandAssessOutcome {
    Good = 0,
    OnTrial = 1,
    BootedFailed = 2,
    FellBack = 3,
    ManualChoice = 4,
    Undetermined = 5,
}

/// StagehandHealthOptions:
///
/// How stagehand_mark_good(), stagehand_mark_bad() and stagehand_assess()
/// treat retention: an opaque builder (stagehand_health_options_new(), the
/// setters, stagehand_health_options_free() or
/// `g_autoptr(StagehandHealthOptions)`). Those functions take %NULL for the
/// defaults. Staging takes the same option through
/// stagehand_stage_options_set_keep_known_good().
pub struct StagehandHealthOptions {
    inner: HealthOptions,
}

/// StagehandDenylistEntry:
///
/// A commit that failed: staging it again fails with
/// %STAGEHAND_ERROR_DENYLISTED unless allowed explicitly
/// (stagehand_stage_options_set_allow_denylisted()). Owned by the
/// #StagehandStatus or #StagehandDenylist it came from; the one
/// stagehand_denylist_remove() returns is the caller's, freed with
/// stagehand_denylist_entry_free().
pub struct StagehandDenylistEntry {
    checksum: CString,
    reason: CString,
    since: CString,
    deployment: Option<CString>,
}

impl StagehandDenylistEntry {
    pub(crate) fn of(d: &Denied) -> StagehandDenylistEntry {
        StagehandDenylistEntry {
            checksum: cstring(&d.checksum),
            reason: cstring(&d.reason),
            since: cstring(&d.since),
            deployment: d.deployment.as_ref().map(|id| cstring(&id.to_string())),
        }
    }
}

/// StagehandDenylist:
///
/// The denylist as stagehand_denylist_list() read it, oldest entry first;
/// freed with stagehand_denylist_free() (or `g_autoptr(StagehandDenylist)`).
pub struct StagehandDenylist {
    entries: Vec<StagehandDenylistEntry>,
}

/// StagehandRollback:
///
/// A rollback stagehand made, recorded in the same write as the verdict
/// (stagehand_status_get_last_rollback()). Owned by its #StagehandStatus.
pub struct StagehandRollback {
    from: CString,
    to: CString,
    reason: CString,
    at: CString,
    trigger: StagehandRollbackTrigger,
}

impl StagehandRollback {
    pub(crate) fn of(r: &RollbackRecord) -> StagehandRollback {
        StagehandRollback {
            from: cstring(&r.from.to_string()),
            to: cstring(&r.to.to_string()),
            reason: cstring(&r.reason),
            at: cstring(&r.at),
            trigger: match r.trigger {
                Trigger::MarkBad => StagehandRollbackTrigger::MarkBad,
                Trigger::Assess => StagehandRollbackTrigger::Assess,
            },
        }
    }
}

/// StagehandMarkGoodResult:
///
/// What stagehand_mark_good() did; freed with stagehand_mark_good_result_free()
/// (or `g_autoptr(StagehandMarkGoodResult)`).
pub struct StagehandMarkGoodResult {
    deployment: CString,
    previous: StagehandHealthState,
    attempts: guint,
    undenylisted: bool,
    retention_pending: bool,
}

/// StagehandMarkBadResult:
///
/// What stagehand_mark_bad() did; freed with stagehand_mark_bad_result_free()
/// (or `g_autoptr(StagehandMarkBadResult)`).
pub struct StagehandMarkBadResult {
    deployment: CString,
    reason: CString,
    denylisted: CString,
    already_failed: bool,
    unstaged: bool,
    rolled_back_to: Option<CString>,
    default: Option<CString>,
    staged: Option<CString>,
    reboot_needed: bool,
}

/// StagehandVerdict:
///
/// What stagehand_assess() concluded; freed with stagehand_verdict_free() (or
/// `g_autoptr(StagehandVerdict)`).
pub struct StagehandVerdict {
    booted: CString,
    health: StagehandHealthState,
    attempts: guint,
    counted: bool,
    outcome: StagehandAssessOutcome,
    newer: Strv,
    failed: Strv,
    default: Option<CString>,
    reboot_needed: bool,
    retention_pending: bool,
    message: CString,
}

impl StagehandMarkGoodResult {
    pub(crate) fn of(out: &health::MarkGoodOutcome) -> StagehandMarkGoodResult {
        StagehandMarkGoodResult {
            deployment: cstring(&out.deployment.to_string()),
            previous: StagehandHealthState::of(Some(out.previous)),
            attempts: out.attempts,
            undenylisted: out.undenylisted,
            retention_pending: out.retention_pending,
        }
    }
}

impl StagehandMarkBadResult {
    pub(crate) fn of(out: &health::MarkBadOutcome) -> StagehandMarkBadResult {
        StagehandMarkBadResult {
            deployment: cstring(&out.deployment.to_string()),
            reason: cstring(&out.reason),
            denylisted: cstring(&out.denylisted),
            already_failed: out.already_failed,
            unstaged: out.unstaged,
            rolled_back_to: opt_id(&out.rolled_back_to),
            default: opt_id(&out.default),
            staged: opt_id(&out.staged),
            reboot_needed: out.reboot_needed,
        }
    }
}

impl StagehandVerdict {
    pub(crate) fn of(v: &Verdict) -> StagehandVerdict {
        StagehandVerdict {
            booted: cstring(&v.booted.to_string()),
            health: StagehandHealthState::of(Some(v.health)),
            attempts: v.attempts,
            counted: v.counted,
            outcome: match v.outcome {
                Outcome::Good => StagehandAssessOutcome::Good,
                Outcome::OnTrial => StagehandAssessOutcome::OnTrial,
                Outcome::BootedFailed => StagehandAssessOutcome::BootedFailed,
                Outcome::FellBack => StagehandAssessOutcome::FellBack,
                Outcome::ManualChoice => StagehandAssessOutcome::ManualChoice,
                Outcome::Undetermined => StagehandAssessOutcome::Undetermined,
            },
            newer: ids(&v.newer),
            failed: ids(&v.failed),
            default: opt_id(&v.default),
            reboot_needed: v.reboot_needed,
            retention_pending: v.retention_pending,
            message: cstring(&v.message),
        }
    }
}

pub(crate) fn ids(v: &[DeploymentId]) -> Strv {
    Strv::new(v.iter().map(|id| id.to_string()))
}

fn opt_id(id: &Option<DeploymentId>) -> Option<CString> {
    id.as_ref().map(|id| cstring(&id.to_string()))
}

/// # Safety
/// `p` is NULL or options from stagehand_health_options_new() not yet freed.
pub(crate) unsafe fn health_options(p: *const StagehandHealthOptions) -> HealthOptions {
    if p.is_null() {
        HealthOptions::default()
    } else {
        (*p).inner.clone()
    }
}

/// stagehand_health_options_new:
///
/// The defaults: two known-good deployments are kept (pinned) while a
/// deployment is on trial.
///
/// Returns: (transfer full): new options; free with stagehand_health_options_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_health_options_new() -> *mut StagehandHealthOptions {
    infallible(c"stagehand_health_options_new", ptr::null_mut(), |_| {
        Ok(Box::into_raw(Box::new(StagehandHealthOptions {
            inner: HealthOptions::default(),
        })))
    })
}

/// stagehand_health_options_free:
/// @options: (nullable) (transfer full): options from stagehand_health_options_new()
///
/// Free @options. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_health_options_free(options: *mut StagehandHealthOptions) {
    // SAFETY: options is NULL or from Box::into_raw in stagehand_health_options_new.
    unsafe { free_boxed(c"stagehand_health_options_free", options) }
}

/// stagehand_health_options_set_keep_known_good:
/// @options: a #StagehandHealthOptions
/// @keep: whether two known-good deployments are pinned during a trial
///
/// %FALSE releases the pins stagehand holds (at the next transition) and keeps
/// libostree's usual two deployments. Default %TRUE.
#[no_mangle]
pub unsafe extern "C" fn stagehand_health_options_set_keep_known_good(
    options: *mut StagehandHealthOptions,
    keep: gboolean,
) {
    infallible(
        c"stagehand_health_options_set_keep_known_good",
        (),
        |call| {
            let options = call.obj_mut(options, c"options != NULL")?;
            options.inner = options.inner.clone().keep_known_good(keep != GFALSE);
            Ok(())
        },
    )
}

/// stagehand_mark_good:
/// @sysroot: the booted #OstreeSysroot, loaded and locked by the caller
/// @options: (nullable): a #StagehandHealthOptions, or %NULL for the defaults
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Mark the booted deployment good (after `boot-complete.target`): it becomes
/// %STAGEHAND_HEALTH_STATE_GOOD and every other one loses "recent", in one
/// atomic write; its commit comes off the denylist if it was on it. That is
/// the only durable change, so it is cheap at boot: releasing the trial's
/// pins and dropping a deployment only they kept is left to the cleanup
/// (stagehand_mark_good_result_get_retention_pending()): call
/// stagehand_autocleanup() after it, or ship `stagehand-autocleanup.service`,
/// which the retention trigger starts at boot. If that never runs, nothing is
/// lost: the pins only keep one more deployment, and stagehand's next
/// staging or mark-bad releases them. Idempotent. A deployment with a failure verdict whose commit is still
/// denylisted is refused with %STAGEHAND_ERROR_DENYLISTED; on a sysroot that
/// is not booted %STAGEHAND_ERROR_NOT_BOOTED; an unreadable store
/// %STAGEHAND_ERROR_CORRUPT.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_mark_good_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_good(
    sysroot: *mut OstreeSysroot,
    options: *const StagehandHealthOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandMarkGoodResult {
    fallible(c"stagehand_mark_good", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        let opts = health_options(options);
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let out = health::mark_good(&lock, &opts, cancellable.as_ref())?;
        Ok(Box::into_raw(Box::new(StagehandMarkGoodResult::of(&out))))
    })
}

/// stagehand_mark_bad:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @deployment_id: (nullable): the deployment, `[stateroot:]checksum[.serial]` (a unique prefix of the checksum will do), or %NULL for the booted one
/// @reason: (nullable): why, for the record and the denylist; %NULL for none
/// @options: (nullable): a #StagehandHealthOptions, or %NULL for the defaults
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Mark a deployment bad: one atomic write fails it with @reason, puts its
/// commit on the denylist and records the rollback; then, when it was the
/// default or the booted one, the newest known-good deployment becomes the
/// default (stagehand_mark_bad_result_get_reboot_needed() says whether the
/// running system is the failed one). A staged deployment is unstaged
/// instead. When no other deployment is known good,
/// %STAGEHAND_ERROR_NO_KNOWN_GOOD and nothing changes: stagehand never rolls
/// into an untested or failed deployment. An unknown @deployment_id is
/// %STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_mark_bad_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad(
    sysroot: *mut OstreeSysroot,
    deployment_id: *const c_char,
    reason: *const c_char,
    options: *const StagehandHealthOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandMarkBadResult {
    fallible(c"stagehand_mark_bad", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let spec = call.opt_str(
            deployment_id,
            c"deployment_id == NULL || g_utf8_validate (deployment_id, -1, NULL)",
        )?;
        let reason = call.opt_str(
            reason,
            c"reason == NULL || g_utf8_validate (reason, -1, NULL)",
        )?;
        let cancellable = call.cancellable(cancellable)?;
        let opts = health_options(options);
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let target = spec
            .map(|s| DeploymentId::resolve(s, &sysroot))
            .transpose()?;
        let out = health::mark_bad(
            &lock,
            target.as_ref(),
            reason.unwrap_or(""),
            &opts,
            cancellable.as_ref(),
        )?;
        Ok(Box::into_raw(Box::new(StagehandMarkBadResult::of(&out))))
    })
}

/// stagehand_assess:
/// @sysroot: the booted #OstreeSysroot, loaded and locked by the caller
/// @evidence: a #StagehandBootEvidence value: what the bootloader knows about this boot
/// @tries: with %STAGEHAND_BOOT_EVIDENCE_FALLBACK, how many tries the entry had (0: not known); otherwise 0
/// @options: (nullable): a #StagehandHealthOptions, or %NULL for the defaults
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Boot assessment, early in every boot: count the boot (once per boot,
/// however often this runs), and when the booted deployment is older than
/// deployments on trial ahead of it, decide with @evidence whether they
/// failed to boot. Only %STAGEHAND_BOOT_EVIDENCE_FALLBACK marks them failed
/// and denylisted and makes the booted one the default again: a person's
/// choice must never denylist an update. Also finishes what an interrupted
/// transition left (the order of the deployments); releasing pins is left to
/// the cleanup, as after stagehand_mark_good()
/// (stagehand_verdict_get_retention_pending(): call stagehand_autocleanup()
/// after it when no `stagehand-autocleanup.service` does).
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): the verdict, or %NULL with @error set; free with stagehand_verdict_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_assess(
    sysroot: *mut OstreeSysroot,
    evidence: guint,
    tries: guint,
    options: *const StagehandHealthOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandVerdict {
    fallible(c"stagehand_assess", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        call.require(
            evidence <= StagehandBootEvidence::ManualChoice as guint,
            c"evidence <= STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE",
        )?;
        call.require(
            tries == 0 || evidence == StagehandBootEvidence::Fallback as guint,
            c"tries == 0 || evidence == STAGEHAND_BOOT_EVIDENCE_FALLBACK",
        )?;
        let cancellable = call.cancellable(cancellable)?;
        let evidence = match evidence {
            1 => BootEvidence::Fallback {
                tries: (tries > 0).then_some(tries),
            },
            2 => BootEvidence::ManualChoice,
            _ => BootEvidence::Unknown,
        };
        let opts = health_options(options);
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let v: Verdict = health::assess(&lock, &evidence, &opts, cancellable.as_ref())?;
        Ok(Box::into_raw(Box::new(StagehandVerdict::of(&v))))
    })
}

/// stagehand_denylist_list:
/// @sysroot: a loaded #OstreeSysroot
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Read the denylist (one file read). Read-only: the sysroot lock is not
/// needed. An unreadable store is %STAGEHAND_ERROR_CORRUPT.
///
/// Returns: (transfer full) (nullable): the denylist, or %NULL with @error set; free with stagehand_denylist_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_list(
    sysroot: *mut OstreeSysroot,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandDenylist {
    fallible(c"stagehand_denylist_list", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        crate::guard::check_cancelled(cancellable.as_ref())?;
        let entries = health::denylist(&sysroot)?
            .iter()
            .map(StagehandDenylistEntry::of)
            .collect();
        Ok(Box::into_raw(Box::new(StagehandDenylist { entries })))
    })
}

/// stagehand_denylist_remove:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @checksum: the commit checksum, or a unique prefix of it
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Take a commit off the denylist, so it may be staged again. A @checksum
/// that is not hexadecimal, not on the denylist or matching several entries
/// is %STAGEHAND_ERROR_INVALID_ARGUMENT.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): the entry removed, or %NULL with @error set; free with stagehand_denylist_entry_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_remove(
    sysroot: *mut OstreeSysroot,
    checksum: *const c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandDenylistEntry {
    fallible(
        c"stagehand_denylist_remove",
        error,
        ptr::null_mut(),
        |call| {
            let sysroot = call.sysroot(sysroot)?;
            let checksum = call.str(
                checksum,
                c"checksum != NULL",
                c"g_utf8_validate (checksum, -1, NULL)",
            )?;
            let cancellable = call.cancellable(cancellable)?;
            crate::guard::check_cancelled(cancellable.as_ref())?;
            let lock = call.locked(&sysroot)?;
            lock.reload(cancellable.as_ref())?;
            let removed = health::denylist_remove(&lock, checksum)?;
            Ok(Box::into_raw(Box::new(StagehandDenylistEntry::of(
                &removed,
            ))))
        },
    )
}

/// stagehand_health_reset:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @out_previous_error: (out) (optional) (nullable) (transfer full): return location for why the previous store could not be read, %NULL when it could; free with g_free()
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Start over with an empty health store, for an administrator after
/// inspecting a corrupt one: every record, the denylist and the rollback
/// history are forgotten (deployments then read
/// %STAGEHAND_HEALTH_STATE_GOOD_FALLBACK), moved-aside corrupt stores are
/// deleted. Pins stagehand recorded are released first.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: %TRUE on success, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_health_reset(
    sysroot: *mut OstreeSysroot,
    out_previous_error: *mut *mut c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_health_reset", error, GFALSE, |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let out = health::reset(&lock, cancellable.as_ref())?;
        if !out_previous_error.is_null() {
            // SAFETY: a non-NULL out parameter points to writable storage.
            unsafe {
                *out_previous_error = out
                    .previous_error
                    .as_deref()
                    .map_or(ptr::null_mut(), g_strdup);
            }
        }
        Ok(GTRUE)
    })
}

/// stagehand_denylist_free:
/// @denylist: (nullable) (transfer full): a denylist from stagehand_denylist_list()
///
/// Free @denylist and its entries. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_free(denylist: *mut StagehandDenylist) {
    // SAFETY: denylist is NULL or from Box::into_raw in stagehand_denylist_list.
    unsafe { free_boxed(c"stagehand_denylist_free", denylist) }
}

/// stagehand_denylist_get_n_entries:
/// @denylist: a #StagehandDenylist
///
/// Returns: the number of denylisted commits
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_get_n_entries(
    denylist: *const StagehandDenylist,
) -> guint {
    infallible(c"stagehand_denylist_get_n_entries", 0, |call| {
        Ok(call.obj(denylist, c"denylist != NULL")?.entries.len() as guint)
    })
}

/// stagehand_denylist_get_entry:
/// @denylist: a #StagehandDenylist
/// @index: which, from 0 (oldest first)
///
/// Returns: (transfer none): the entry, owned by @denylist
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_get_entry(
    denylist: *const StagehandDenylist,
    index: guint,
) -> *const StagehandDenylistEntry {
    infallible(c"stagehand_denylist_get_entry", ptr::null(), |call| {
        let e = call
            .obj(denylist, c"denylist != NULL")?
            .entries
            .get(index as usize);
        call.require(
            e.is_some(),
            c"index < stagehand_denylist_get_n_entries (denylist)",
        )?;
        Ok(e.map_or(ptr::null(), |e| e as *const _))
    })
}

/// stagehand_denylist_entry_free:
/// @entry: (nullable) (transfer full): an entry from stagehand_denylist_remove()
///
/// Free @entry. %NULL is ignored. Entries borrowed from a #StagehandStatus or
/// #StagehandDenylist are freed with it, never with this.
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_entry_free(entry: *mut StagehandDenylistEntry) {
    // SAFETY: entry is NULL or from Box::into_raw in stagehand_denylist_remove.
    unsafe { free_boxed(c"stagehand_denylist_entry_free", entry) }
}

/// stagehand_mark_good_result_free:
/// @result: (nullable) (transfer full): a result from stagehand_mark_good()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_good_result_free(result: *mut StagehandMarkGoodResult) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_mark_good.
    unsafe { free_boxed(c"stagehand_mark_good_result_free", result) }
}

/// stagehand_mark_bad_result_free:
/// @result: (nullable) (transfer full): a result from stagehand_mark_bad()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_free(result: *mut StagehandMarkBadResult) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_mark_bad.
    unsafe { free_boxed(c"stagehand_mark_bad_result_free", result) }
}

/// stagehand_verdict_free:
/// @verdict: (nullable) (transfer full): a verdict from stagehand_assess()
///
/// Free @verdict. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_free(verdict: *mut StagehandVerdict) {
    // SAFETY: verdict is NULL or from Box::into_raw in stagehand_assess.
    unsafe { free_boxed(c"stagehand_verdict_free", verdict) }
}

/// stagehand_denylist_entry_get_checksum:
/// @entry: a #StagehandDenylistEntry
///
/// Returns: (transfer none): the denylisted commit, owned by @entry
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_entry_get_checksum(
    entry: *const StagehandDenylistEntry,
) -> *const c_char {
    infallible(
        c"stagehand_denylist_entry_get_checksum",
        ptr::null(),
        |call| Ok(call.obj(entry, c"entry != NULL")?.checksum.as_ptr()),
    )
}

/// stagehand_denylist_entry_get_reason:
/// @entry: a #StagehandDenylistEntry
///
/// Returns: (transfer none): why it was denylisted, owned by @entry
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_entry_get_reason(
    entry: *const StagehandDenylistEntry,
) -> *const c_char {
    infallible(
        c"stagehand_denylist_entry_get_reason",
        ptr::null(),
        |call| Ok(call.obj(entry, c"entry != NULL")?.reason.as_ptr()),
    )
}

/// stagehand_denylist_entry_get_since:
/// @entry: a #StagehandDenylistEntry
///
/// Returns: (transfer none): when, RFC 3339 UTC, owned by @entry
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_entry_get_since(
    entry: *const StagehandDenylistEntry,
) -> *const c_char {
    infallible(c"stagehand_denylist_entry_get_since", ptr::null(), |call| {
        Ok(call.obj(entry, c"entry != NULL")?.since.as_ptr())
    })
}

/// stagehand_denylist_entry_get_deployment:
/// @entry: a #StagehandDenylistEntry
///
/// Returns: (transfer none) (nullable): the identity of the deployment that failed, %NULL if none was recorded, owned by @entry
#[no_mangle]
pub unsafe extern "C" fn stagehand_denylist_entry_get_deployment(
    entry: *const StagehandDenylistEntry,
) -> *const c_char {
    infallible(
        c"stagehand_denylist_entry_get_deployment",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(entry, c"entry != NULL")?.deployment)),
    )
}

/// stagehand_rollback_get_from:
/// @rollback: a #StagehandRollback
///
/// Returns: (transfer none): the identity of the deployment rolled back from, owned by @rollback
#[no_mangle]
pub unsafe extern "C" fn stagehand_rollback_get_from(
    rollback: *const StagehandRollback,
) -> *const c_char {
    infallible(c"stagehand_rollback_get_from", ptr::null(), |call| {
        Ok(call.obj(rollback, c"rollback != NULL")?.from.as_ptr())
    })
}

/// stagehand_rollback_get_to:
/// @rollback: a #StagehandRollback
///
/// Returns: (transfer none): the identity of the known-good deployment that became the default, owned by @rollback
#[no_mangle]
pub unsafe extern "C" fn stagehand_rollback_get_to(
    rollback: *const StagehandRollback,
) -> *const c_char {
    infallible(c"stagehand_rollback_get_to", ptr::null(), |call| {
        Ok(call.obj(rollback, c"rollback != NULL")?.to.as_ptr())
    })
}

/// stagehand_rollback_get_reason:
/// @rollback: a #StagehandRollback
///
/// Returns: (transfer none): why, owned by @rollback
#[no_mangle]
pub unsafe extern "C" fn stagehand_rollback_get_reason(
    rollback: *const StagehandRollback,
) -> *const c_char {
    infallible(c"stagehand_rollback_get_reason", ptr::null(), |call| {
        Ok(call.obj(rollback, c"rollback != NULL")?.reason.as_ptr())
    })
}

/// stagehand_rollback_get_at:
/// @rollback: a #StagehandRollback
///
/// Returns: (transfer none): when, RFC 3339 UTC, owned by @rollback
#[no_mangle]
pub unsafe extern "C" fn stagehand_rollback_get_at(
    rollback: *const StagehandRollback,
) -> *const c_char {
    infallible(c"stagehand_rollback_get_at", ptr::null(), |call| {
        Ok(call.obj(rollback, c"rollback != NULL")?.at.as_ptr())
    })
}

/// stagehand_rollback_get_trigger:
/// @rollback: a #StagehandRollback
///
/// Returns: what made the decision
#[no_mangle]
pub unsafe extern "C" fn stagehand_rollback_get_trigger(
    rollback: *const StagehandRollback,
) -> StagehandRollbackTrigger {
    infallible(
        c"stagehand_rollback_get_trigger",
        StagehandRollbackTrigger::MarkBad,
        |call| Ok(call.obj(rollback, c"rollback != NULL")?.trigger),
    )
}

/// stagehand_mark_good_result_get_deployment:
/// @result: a #StagehandMarkGoodResult
///
/// Returns: (transfer none): the identity of the booted deployment, now good, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_good_result_get_deployment(
    result: *const StagehandMarkGoodResult,
) -> *const c_char {
    infallible(
        c"stagehand_mark_good_result_get_deployment",
        ptr::null(),
        |call| Ok(call.obj(result, c"result != NULL")?.deployment.as_ptr()),
    )
}

/// stagehand_mark_good_result_get_previous:
/// @result: a #StagehandMarkGoodResult
///
/// Returns: its health state before
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_good_result_get_previous(
    result: *const StagehandMarkGoodResult,
) -> StagehandHealthState {
    infallible(
        c"stagehand_mark_good_result_get_previous",
        StagehandHealthState::Unknown,
        |call| Ok(call.obj(result, c"result != NULL")?.previous),
    )
}

/// stagehand_mark_good_result_get_attempts:
/// @result: a #StagehandMarkGoodResult
///
/// Returns: the boots counted into it
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_good_result_get_attempts(
    result: *const StagehandMarkGoodResult,
) -> guint {
    infallible(c"stagehand_mark_good_result_get_attempts", 0, |call| {
        Ok(call.obj(result, c"result != NULL")?.attempts)
    })
}

/// stagehand_mark_good_result_get_undenylisted:
/// @result: a #StagehandMarkGoodResult
///
/// Returns: whether its commit was on the denylist and came off it
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_good_result_get_undenylisted(
    result: *const StagehandMarkGoodResult,
) -> gboolean {
    infallible(
        c"stagehand_mark_good_result_get_undenylisted",
        GFALSE,
        |call| Ok(gbool(call.obj(result, c"result != NULL")?.undenylisted)),
    )
}

/// stagehand_mark_good_result_get_retention_pending:
/// @result: a #StagehandMarkGoodResult
///
/// Whether the trial's pins are still held. Releasing them (and removing the
/// deployment only they kept) is housekeeping that stagehand_mark_good()
/// leaves off the boot path: stagehand_autocleanup() or
/// stagehand_run_cleanup() does it (`stagehand-autocleanup.service` runs
/// after mark-good), or else the next staging. Until then there is one more
/// known-good deployment than needed; nothing is lost if it never happens.
/// A daemon that ships no systemd units calls stagehand_autocleanup() when
/// this is %TRUE.
///
/// stagehand_mark_good() itself never releases a pin nor removes a
/// deployment: the cleanup reports what it released
/// (stagehand_cleanup_report_get_released_pins()) and removed
/// (stagehand_cleanup_report_get_deployments_removed()).
///
/// Returns: %TRUE when retention housekeeping is pending
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_good_result_get_retention_pending(
    result: *const StagehandMarkGoodResult,
) -> gboolean {
    infallible(
        c"stagehand_mark_good_result_get_retention_pending",
        GFALSE,
        |call| {
            Ok(gbool(
                call.obj(result, c"result != NULL")?.retention_pending,
            ))
        },
    )
}

/// stagehand_mark_bad_result_get_deployment:
/// @result: a #StagehandMarkBadResult
///
/// Returns: (transfer none): the identity of the deployment marked bad, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_deployment(
    result: *const StagehandMarkBadResult,
) -> *const c_char {
    infallible(
        c"stagehand_mark_bad_result_get_deployment",
        ptr::null(),
        |call| Ok(call.obj(result, c"result != NULL")?.deployment.as_ptr()),
    )
}

/// stagehand_mark_bad_result_get_reason:
/// @result: a #StagehandMarkBadResult
///
/// Returns: (transfer none): the reason recorded, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_reason(
    result: *const StagehandMarkBadResult,
) -> *const c_char {
    infallible(
        c"stagehand_mark_bad_result_get_reason",
        ptr::null(),
        |call| Ok(call.obj(result, c"result != NULL")?.reason.as_ptr()),
    )
}

/// stagehand_mark_bad_result_get_denylisted:
/// @result: a #StagehandMarkBadResult
///
/// Returns: (transfer none): the commit put on the denylist, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_denylisted(
    result: *const StagehandMarkBadResult,
) -> *const c_char {
    infallible(
        c"stagehand_mark_bad_result_get_denylisted",
        ptr::null(),
        |call| Ok(call.obj(result, c"result != NULL")?.denylisted.as_ptr()),
    )
}

/// stagehand_mark_bad_result_get_already_failed:
/// @result: a #StagehandMarkBadResult
///
/// Returns: whether it had a failure verdict already (only the order was redone)
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_already_failed(
    result: *const StagehandMarkBadResult,
) -> gboolean {
    infallible(
        c"stagehand_mark_bad_result_get_already_failed",
        GFALSE,
        |call| Ok(gbool(call.obj(result, c"result != NULL")?.already_failed)),
    )
}

/// stagehand_mark_bad_result_get_unstaged:
/// @result: a #StagehandMarkBadResult
///
/// Returns: whether it was the staged deployment and was unstaged
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_unstaged(
    result: *const StagehandMarkBadResult,
) -> gboolean {
    infallible(c"stagehand_mark_bad_result_get_unstaged", GFALSE, |call| {
        Ok(gbool(call.obj(result, c"result != NULL")?.unstaged))
    })
}

/// stagehand_mark_bad_result_get_rolled_back_to:
/// @result: a #StagehandMarkBadResult
///
/// While another deployment is staged, libostree 2022.7 cannot write some
/// orders: the default (stagehand_mark_bad_result_get_default()) may then
/// still be the failed deployment. The staged deployment boots next either
/// way, and this one becomes its fallback when it is finalized.
///
/// Returns: (transfer none) (nullable): the identity of the known-good deployment made the default, %NULL when no rollback was needed, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_rolled_back_to(
    result: *const StagehandMarkBadResult,
) -> *const c_char {
    infallible(
        c"stagehand_mark_bad_result_get_rolled_back_to",
        ptr::null(),
        |call| {
            Ok(opt_ptr(
                &call.obj(result, c"result != NULL")?.rolled_back_to,
            ))
        },
    )
}

/// stagehand_mark_bad_result_get_default:
/// @result: a #StagehandMarkBadResult
///
/// Returns: (transfer none) (nullable): the identity of the default deployment now, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_default(
    result: *const StagehandMarkBadResult,
) -> *const c_char {
    infallible(
        c"stagehand_mark_bad_result_get_default",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(result, c"result != NULL")?.default)),
    )
}

/// stagehand_mark_bad_result_get_staged:
/// @result: a #StagehandMarkBadResult
///
/// Returns: (transfer none) (nullable): the identity of another deployment that stays staged, %NULL if none, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_staged(
    result: *const StagehandMarkBadResult,
) -> *const c_char {
    infallible(
        c"stagehand_mark_bad_result_get_staged",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(result, c"result != NULL")?.staged)),
    )
}

/// stagehand_mark_bad_result_get_reboot_needed:
/// @result: a #StagehandMarkBadResult
///
/// Returns: whether the running system is the failed one: reboot into the default
#[no_mangle]
pub unsafe extern "C" fn stagehand_mark_bad_result_get_reboot_needed(
    result: *const StagehandMarkBadResult,
) -> gboolean {
    infallible(
        c"stagehand_mark_bad_result_get_reboot_needed",
        GFALSE,
        |call| Ok(gbool(call.obj(result, c"result != NULL")?.reboot_needed)),
    )
}

/// stagehand_verdict_get_booted:
/// @verdict: a #StagehandVerdict
///
/// Returns: (transfer none): the identity of the booted deployment, owned by @verdict
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_booted(
    verdict: *const StagehandVerdict,
) -> *const c_char {
    infallible(c"stagehand_verdict_get_booted", ptr::null(), |call| {
        Ok(call.obj(verdict, c"verdict != NULL")?.booted.as_ptr())
    })
}

/// stagehand_verdict_get_health:
/// @verdict: a #StagehandVerdict
///
/// Returns: its health state after assessment
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_health(
    verdict: *const StagehandVerdict,
) -> StagehandHealthState {
    infallible(
        c"stagehand_verdict_get_health",
        StagehandHealthState::Unknown,
        |call| Ok(call.obj(verdict, c"verdict != NULL")?.health),
    )
}

/// stagehand_verdict_get_attempts:
/// @verdict: a #StagehandVerdict
///
/// Returns: the boots counted into it
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_attempts(verdict: *const StagehandVerdict) -> guint {
    infallible(c"stagehand_verdict_get_attempts", 0, |call| {
        Ok(call.obj(verdict, c"verdict != NULL")?.attempts)
    })
}

/// stagehand_verdict_get_counted:
/// @verdict: a #StagehandVerdict
///
/// Returns: whether this call counted the boot (%FALSE when assessment ran before in this boot)
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_counted(
    verdict: *const StagehandVerdict,
) -> gboolean {
    infallible(c"stagehand_verdict_get_counted", GFALSE, |call| {
        Ok(gbool(call.obj(verdict, c"verdict != NULL")?.counted))
    })
}

/// stagehand_verdict_get_outcome:
/// @verdict: a #StagehandVerdict
///
/// Returns: the conclusion
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_outcome(
    verdict: *const StagehandVerdict,
) -> StagehandAssessOutcome {
    infallible(
        c"stagehand_verdict_get_outcome",
        StagehandAssessOutcome::Good,
        |call| Ok(call.obj(verdict, c"verdict != NULL")?.outcome),
    )
}

/// stagehand_verdict_get_newer:
/// @verdict: a #StagehandVerdict
///
/// Returns: (transfer none) (array zero-terminated=1): the identities of the deployments ahead of the booted one that are (were) on trial, owned by @verdict
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_newer(
    verdict: *const StagehandVerdict,
) -> *const *const c_char {
    infallible(c"stagehand_verdict_get_newer", ptr::null(), |call| {
        Ok(call.obj(verdict, c"verdict != NULL")?.newer.as_ptr())
    })
}

/// stagehand_verdict_get_failed:
/// @verdict: a #StagehandVerdict
///
/// Returns: (transfer none) (array zero-terminated=1): the identities of the deployments this assessment marked failed and denylisted, owned by @verdict
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_failed(
    verdict: *const StagehandVerdict,
) -> *const *const c_char {
    infallible(c"stagehand_verdict_get_failed", ptr::null(), |call| {
        Ok(call.obj(verdict, c"verdict != NULL")?.failed.as_ptr())
    })
}

/// stagehand_verdict_get_default:
/// @verdict: a #StagehandVerdict
///
/// Returns: (transfer none) (nullable): the identity of the default deployment now, owned by @verdict
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_default(
    verdict: *const StagehandVerdict,
) -> *const c_char {
    infallible(c"stagehand_verdict_get_default", ptr::null(), |call| {
        Ok(opt_ptr(&call.obj(verdict, c"verdict != NULL")?.default))
    })
}

/// stagehand_verdict_get_reboot_needed:
/// @verdict: a #StagehandVerdict
///
/// Returns: whether the booted deployment has a failure verdict and a known-good default exists: reboot into it
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_reboot_needed(
    verdict: *const StagehandVerdict,
) -> gboolean {
    infallible(c"stagehand_verdict_get_reboot_needed", GFALSE, |call| {
        Ok(gbool(call.obj(verdict, c"verdict != NULL")?.reboot_needed))
    })
}

/// stagehand_verdict_get_retention_pending:
/// @verdict: a #StagehandVerdict
///
/// Whether no trial is open and stagehand still holds retention pins (a
/// trial ended, by stagehand_mark_good() or by this assessment), or a
/// release an interrupted run left half done is to be finished: releasing
/// them and removing the deployment only they kept is housekeeping that
/// stagehand_assess() leaves off the boot path, as stagehand_mark_good()
/// does. stagehand_autocleanup() or stagehand_run_cleanup() does it and
/// reports it (stagehand_cleanup_report_get_released_pins(),
/// stagehand_cleanup_report_get_deployments_removed());
/// `stagehand-autocleanup.service` runs it at boot when the retention
/// trigger is set. A daemon that ships no systemd units calls
/// stagehand_autocleanup() when this is %TRUE. Nothing is lost if it never
/// happens: the pins keep one more deployment until the next staging.
///
/// Returns: %TRUE when retention housekeeping is pending
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_retention_pending(
    verdict: *const StagehandVerdict,
) -> gboolean {
    infallible(c"stagehand_verdict_get_retention_pending", GFALSE, |call| {
        Ok(gbool(
            call.obj(verdict, c"verdict != NULL")?.retention_pending,
        ))
    })
}

/// stagehand_verdict_get_message:
/// @verdict: a #StagehandVerdict
///
/// Returns: (transfer none): one sentence for people, owned by @verdict
#[no_mangle]
pub unsafe extern "C" fn stagehand_verdict_get_message(
    verdict: *const StagehandVerdict,
) -> *const c_char {
    infallible(c"stagehand_verdict_get_message", ptr::null(), |call| {
        Ok(call.obj(verdict, c"verdict != NULL")?.message.as_ptr())
    })
}
