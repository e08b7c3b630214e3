//! Boot assessment with the bootloader's boot counter
//! (`stagehand_boot_assessment_*`), over `stagehand::assessment::BootAssessment`
//! (docs/boot-assessment.md): what the `stagehand` units run, for a daemon
//! that runs its own boot check.
//!
//! stagehand_assess(), stagehand_mark_good() and stagehand_mark_bad() are the
//! health transitions alone: they take the bootloader's evidence as an
//! argument and leave a GRUB-environment or BLS counter as it is. With boot
//! counting configured, a daemon must use these instead, or the counter of a
//! deployment it judged good keeps counting down and the bootloader falls
//! back from it.

use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE, GTRUE};
use ostree::ffi::OstreeSysroot;

use stagehand::assessment::{self, Armed, Assessed, BootAssessment, Deadline, MarkedBad};
use stagehand::bootloader::{CounterEvidence, CounterState, Target};
use stagehand::{config, Config, DeploymentId, HealthOptions, SysrootLock};

use crate::guard::{cstring, fallible, free_boxed, gbool, infallible, opt_ptr, Call, Fail, Strv};
use crate::health::{
    ids, StagehandHealthOptions, StagehandMarkBadResult, StagehandMarkGoodResult, StagehandVerdict,
};
use crate::{gint, guint, guint64};

/// StagehandCounterState:
/// @STAGEHAND_COUNTER_STATE_NOT_ARMED: no counter runs for the deployment: the bootloader boots the default entry as always (never armed, blessed or disarmed)
/// @STAGEHAND_COUNTER_STATE_COUNTING: counting down: the bootloader boots the deployment while tries are left
/// @STAGEHAND_COUNTER_STATE_EXHAUSTED: the tries are used up: the bootloader boots the fallback entry by itself
/// @STAGEHAND_COUNTER_STATE_NO_COUNTER: the backend keeps no counter (`backend = none`)
///
/// The boot counter of one deployment, as the bootloader left it
/// (stagehand_boot_assessment_query_counter()).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandCounterState {
    NotArmed = 0,
    Counting = 1,
    Exhausted = 2,
    NoCounter = 3,
}

/// StagehandCounterEvidence:
/// @STAGEHAND_COUNTER_EVIDENCE_NONE: no counter is armed (or there is none, or it could not be read): the bootloader says nothing
/// @STAGEHAND_COUNTER_EVIDENCE_ON_TRIAL: the deployment on trial is booted and its counter runs
/// @STAGEHAND_COUNTER_EVIDENCE_BOOTLOADER_FALLBACK: the tries of the deployment on trial ran out and the bootloader booted another entry by itself: it failed to boot
/// @STAGEHAND_COUNTER_EVIDENCE_MANUAL_CHOICE: a person chose the entry; never a reason to mark anything bad
///
/// What the boot counter said about this boot
/// (stagehand_boot_assess_result_get_counter_evidence()). It maps one to
/// one onto #StagehandBootEvidence: a fallback is a fallback, a manual
/// choice a manual choice, the rest is %STAGEHAND_BOOT_EVIDENCE_UNKNOWN.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandCounterEvidence {
    None = 0,
    OnTrial = 1,
    BootloaderFallback = 2,
    ManualChoice = 3,
}

/// StagehandBootAssessment:
///
/// The configuration file and the boot counter it selects for one sysroot
/// (stagehand_boot_assessment_new()); freed with
/// stagehand_boot_assessment_free() (or `g_autoptr(StagehandBootAssessment)`).
/// It keeps no reference to the sysroot: every function takes the caller's
/// sysroot again, which must be the one it was made for.
pub struct StagehandBootAssessment {
    inner: BootAssessment,
    reason: CString,
    source: Option<CString>,
}

/// StagehandBootAssessResult:
///
/// What stagehand_boot_assessment_assess() did; freed with
/// stagehand_boot_assess_result_free() (or `g_autoptr(StagehandBootAssessResult)`).
pub struct StagehandBootAssessResult {
    verdict: StagehandVerdict,
    evidence: StagehandCounterEvidence,
    tries_left: guint,
    fallback_tries: guint,
    counter_error: Option<CString>,
    disarmed: Strv,
}

/// StagehandBootMarkGoodResult:
///
/// What stagehand_boot_assessment_mark_good() did; freed with
/// stagehand_boot_mark_good_result_free() (or
/// `g_autoptr(StagehandBootMarkGoodResult)`).
pub struct StagehandBootMarkGoodResult {
    outcome: StagehandMarkGoodResult,
    blessed: bool,
    disarmed: Strv,
}

/// StagehandBootMarkBadResult:
///
/// What stagehand_boot_assessment_mark_bad() (or a missed deadline) did;
/// freed with stagehand_boot_mark_bad_result_free() (or
/// `g_autoptr(StagehandBootMarkBadResult)`).
pub struct StagehandBootMarkBadResult {
    outcome: StagehandMarkBadResult,
    disarmed: Strv,
    reboot: bool,
}

impl StagehandBootMarkBadResult {
    fn of(m: &MarkedBad) -> StagehandBootMarkBadResult {
        StagehandBootMarkBadResult {
            outcome: StagehandMarkBadResult::of(&m.outcome),
            disarmed: ids(&m.disarmed),
            reboot: m.reboot,
        }
    }
}

/// StagehandBootDeadlineResult:
///
/// What stagehand_boot_assessment_deadline() concluded; freed with
/// stagehand_boot_deadline_result_free() (or
/// `g_autoptr(StagehandBootDeadlineResult)`).
pub struct StagehandBootDeadlineResult {
    booted: CString,
    missed: Option<StagehandBootMarkBadResult>,
}

/// StagehandArmResult:
///
/// What stagehand_boot_assessment_arm_finalized() did; freed with
/// stagehand_arm_result_free() (or `g_autoptr(StagehandArmResult)`).
pub struct StagehandArmResult {
    deployment: CString,
    armed: bool,
    tries: guint,
    reason: Option<CString>,
}

fn backend_name(ba: &BootAssessment) -> &'static CStr {
    match ba.counter().backend() {
        stagehand::bootloader::Backend::Grubenv => c"grubenv",
        stagehand::bootloader::Backend::Bls => c"bls",
        stagehand::bootloader::Backend::None => c"none",
    }
}

/// The options a call uses: the caller's, or the configuration's
/// (`keep-two-known-good`), as the `stagehand` command does.
///
/// # Safety
/// `p` is NULL or options from stagehand_health_options_new() not yet freed.
unsafe fn options_or_config(
    ba: &BootAssessment,
    p: *const StagehandHealthOptions,
) -> HealthOptions {
    if p.is_null() {
        ba.health_options()
    } else {
        crate::health::health_options(p)
    }
}

/// The caller's lock, verified held (%STAGEHAND_ERROR_NOT_LOCKED otherwise,
/// naming the function), and the sysroot reloaded, as every state-changing
/// function of this library takes it.
fn held(
    call: &Call,
    sysroot: &ostree::Sysroot,
    cancellable: Option<&gio::Cancellable>,
) -> Result<SysrootLock, Fail> {
    let lock = call.locked(sysroot)?;
    lock.reload(cancellable)?;
    Ok(lock)
}

/// stagehand_boot_assessment_new:
/// @sysroot: a loaded #OstreeSysroot
/// @config_path: (nullable) (type filename): the configuration file, or %NULL for `/etc/stagehand/stagehand.conf`
/// @error: return location for a #GError, or %NULL
///
/// Read the configuration (a missing file gives the defaults, as for the
/// `stagehand` command) and select the boot counter it asks for on @sysroot:
/// `[bootloader] backend = grubenv`, `bls`, `none`, or `auto`, which detects
/// it (docs/boot-assessment.md). Paths in the file are those of the booted
/// system and are looked up inside @sysroot; @config_path itself is opened
/// as given. A configuration error is %STAGEHAND_ERROR_CONFIG with the line.
///
/// Nothing is written and the sysroot lock is not needed.
///
/// Returns: (transfer full) (nullable): the assessment, or %NULL with @error set; free with stagehand_boot_assessment_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_new(
    sysroot: *mut OstreeSysroot,
    config_path: *const c_char,
    error: *mut *mut GError,
) -> *mut StagehandBootAssessment {
    fallible(
        c"stagehand_boot_assessment_new",
        error,
        ptr::null_mut(),
        |call| {
            let sysroot = call.sysroot(sysroot)?;
            let path = call
                .opt_path(config_path)
                .unwrap_or_else(|| config::DEFAULT_PATH.into());
            let cfg = Config::load(&path)?;
            let inner = BootAssessment::new(&sysroot, cfg)?;
            Ok(Box::into_raw(Box::new(StagehandBootAssessment {
                reason: cstring(inner.reason()),
                source: inner
                    .config()
                    .source
                    .as_deref()
                    .map(|p: &Path| cstring(&p.to_string_lossy())),
                inner,
            })))
        },
    )
}

/// stagehand_boot_assessment_free:
/// @assessment: (nullable) (transfer full): from stagehand_boot_assessment_new()
///
/// Free @assessment. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_free(assessment: *mut StagehandBootAssessment) {
    // SAFETY: assessment is NULL or from Box::into_raw in stagehand_boot_assessment_new.
    unsafe { free_boxed(c"stagehand_boot_assessment_free", assessment) }
}

/// stagehand_boot_assessment_get_backend:
/// @assessment: a #StagehandBootAssessment
///
/// Returns: (transfer none): the selected counter: `"grubenv"`, `"bls"` or `"none"`, a static string
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_get_backend(
    assessment: *const StagehandBootAssessment,
) -> *const c_char {
    infallible(
        c"stagehand_boot_assessment_get_backend",
        ptr::null(),
        |call| Ok(backend_name(&call.obj(assessment, c"assessment != NULL")?.inner).as_ptr()),
    )
}

/// stagehand_boot_assessment_get_reason:
/// @assessment: a #StagehandBootAssessment
///
/// Returns: (transfer none): why this counter was selected (configured, or what detection found), owned by @assessment
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_get_reason(
    assessment: *const StagehandBootAssessment,
) -> *const c_char {
    infallible(
        c"stagehand_boot_assessment_get_reason",
        ptr::null(),
        |call| Ok(call.obj(assessment, c"assessment != NULL")?.reason.as_ptr()),
    )
}

/// stagehand_boot_assessment_get_config_path:
/// @assessment: a #StagehandBootAssessment
///
/// Returns: (transfer none) (nullable) (type filename): the configuration file the settings came from, %NULL when there was none (all defaults), owned by @assessment
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_get_config_path(
    assessment: *const StagehandBootAssessment,
) -> *const c_char {
    infallible(
        c"stagehand_boot_assessment_get_config_path",
        ptr::null(),
        |call| {
            Ok(opt_ptr(
                &call.obj(assessment, c"assessment != NULL")?.source,
            ))
        },
    )
}

/// stagehand_boot_assessment_get_tries:
/// @assessment: a #StagehandBootAssessment
///
/// Returns: the boots a finalized deployment gets (`[bootloader] tries`)
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_get_tries(
    assessment: *const StagehandBootAssessment,
) -> guint {
    infallible(c"stagehand_boot_assessment_get_tries", 0, |call| {
        Ok(call
            .obj(assessment, c"assessment != NULL")?
            .inner
            .config()
            .tries)
    })
}

/// stagehand_boot_assessment_get_auto_reboot:
/// @assessment: a #StagehandBootAssessment
///
/// Returns: whether a boot marked bad should be followed by a reboot into the rollback (`[health] auto-reboot`); the results' `reboot` getters apply it
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_get_auto_reboot(
    assessment: *const StagehandBootAssessment,
) -> gboolean {
    infallible(
        c"stagehand_boot_assessment_get_auto_reboot",
        GFALSE,
        |call| {
            Ok(gbool(
                call.obj(assessment, c"assessment != NULL")?
                    .inner
                    .config()
                    .auto_reboot,
            ))
        },
    )
}

/// stagehand_boot_assessment_get_health_deadline:
/// @assessment: a #StagehandBootAssessment
///
/// The health deadline (`[health] deadline`): the time after boot
/// (`CLOCK_BOOTTIME`) by which the booted deployment must be marked good.
/// Nothing waits for it: the caller calls stagehand_boot_assessment_deadline()
/// when it has passed (stagehand_boot_assessment_get_time_remaining()), or
/// at once when a check failed for good.
///
/// Returns: the deadline in seconds since boot
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_get_health_deadline(
    assessment: *const StagehandBootAssessment,
) -> guint64 {
    infallible(
        c"stagehand_boot_assessment_get_health_deadline",
        0,
        |call| {
            Ok(call
                .obj(assessment, c"assessment != NULL")?
                .inner
                .config()
                .health_deadline
                .as_secs())
        },
    )
}

/// stagehand_boot_assessment_get_time_remaining:
/// @assessment: a #StagehandBootAssessment
/// @out_ms: (out): return location for the milliseconds left until the health deadline, 0 once it has passed
/// @error: return location for a #GError, or %NULL
///
/// How long until the health deadline, measured from the time since boot
/// (the first field of `/proc/uptime`, which counts suspend). Fails with
/// %STAGEHAND_ERROR_IO or %STAGEHAND_ERROR_CORRUPT when that cannot be read.
///
/// Returns: %TRUE with *@out_ms set, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_get_time_remaining(
    assessment: *const StagehandBootAssessment,
    out_ms: *mut guint64,
    error: *mut *mut GError,
) -> gboolean {
    fallible(
        c"stagehand_boot_assessment_get_time_remaining",
        error,
        GFALSE,
        |call| {
            let ba = call.obj(assessment, c"assessment != NULL")?;
            call.non_null(out_ms, c"out_ms != NULL")?;
            let left =
                assessment::remaining(ba.inner.config().health_deadline, assessment::since_boot()?);
            *out_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            Ok(GTRUE)
        },
    )
}

/// stagehand_boot_assessment_query_counter:
/// @assessment: a #StagehandBootAssessment
/// @sysroot: the loaded #OstreeSysroot @assessment was made for
/// @deployment_id: (nullable): the deployment, `[stateroot:]checksum[.serial]` (a unique prefix of the checksum will do), or %NULL for the default one
/// @out_state: (out): return location for the counter's state
/// @out_left: (out) (optional): return location for the boots left after the current one (%STAGEHAND_COUNTER_STATE_COUNTING), else 0
/// @out_done: (out) (optional): return location for the boots done where the backend records them (BLS), else -1
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Read the boot counter of a deployment as the bootloader left it. A GRUB
/// environment block holds one counter, for the default entry: every
/// deployment reads the same one. An unknown @deployment_id is
/// %STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT; a block or entry that cannot be
/// parsed %STAGEHAND_ERROR_CORRUPT. Read-only: the sysroot lock is not
/// needed. @sysroot is reloaded first if another process changed it.
///
/// Returns: %TRUE with the out arguments set, %FALSE with @error set
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the GLib shape: out arguments, cancellable, error
pub unsafe extern "C" fn stagehand_boot_assessment_query_counter(
    assessment: *const StagehandBootAssessment,
    sysroot: *mut OstreeSysroot,
    deployment_id: *const c_char,
    out_state: *mut StagehandCounterState,
    out_left: *mut guint,
    out_done: *mut gint,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(
        c"stagehand_boot_assessment_query_counter",
        error,
        GFALSE,
        |call| {
            let ba = call.obj(assessment, c"assessment != NULL")?;
            let sysroot = call.sysroot(sysroot)?;
            let spec = call.opt_str(
                deployment_id,
                c"deployment_id == NULL || g_utf8_validate (deployment_id, -1, NULL)",
            )?;
            call.non_null(out_state, c"out_state != NULL")?;
            let cancellable = call.cancellable(cancellable)?;
            // Loaded (libostree aborts on an unloaded sysroot) and current,
            // as stagehand_status() reads it; no lock is needed.
            stagehand::sysroot::reload_if_changed(&sysroot, cancellable.as_ref())?;
            let deployment = target_deployment(&sysroot, spec)?;
            let state = ba.inner.counter().state(&Target::of(&deployment))?;
            let (c, left, done) = match state {
                CounterState::NotArmed => (StagehandCounterState::NotArmed, 0, None),
                CounterState::Counting { left, done } => {
                    (StagehandCounterState::Counting, left, done)
                }
                CounterState::Exhausted { done } => (StagehandCounterState::Exhausted, 0, done),
                CounterState::NoCounter => (StagehandCounterState::NoCounter, 0, None),
            };
            *out_state = c;
            if !out_left.is_null() {
                *out_left = left;
            }
            if !out_done.is_null() {
                *out_done = done.and_then(|d| gint::try_from(d).ok()).unwrap_or(-1);
            }
            Ok(GTRUE)
        },
    )
}

/// The deployment `spec` names, or the default one (the first that is not
/// staged: the one a boot counter is about).
fn target_deployment(
    sysroot: &ostree::Sysroot,
    spec: Option<&str>,
) -> Result<ostree::Deployment, Fail> {
    let deployments = sysroot.deployments();
    let found = match spec {
        Some(s) => {
            let id = DeploymentId::resolve(s, sysroot)?;
            deployments.into_iter().find(|d| id.matches(d))
        }
        None => {
            let staged = sysroot.staged_deployment();
            deployments.into_iter().find(|d| staged.as_ref() != Some(d))
        }
    };
    found.ok_or_else(|| {
        Fail::Error(stagehand::Error::UnknownDeployment(
            spec.unwrap_or("the default deployment (the sysroot has none)")
                .to_string(),
        ))
    })
}

/// stagehand_boot_assessment_assess:
/// @assessment: a #StagehandBootAssessment
/// @sysroot: the booted #OstreeSysroot @assessment was made for, loaded and locked by the caller
/// @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Boot assessment early in every boot, as `stagehand-assess.service` runs
/// it: stagehand_assess() with the boot counter's evidence (a fallback from
/// the deployment on trial marks it failed and denylisted, a person's
/// choice never does), then the counter is settled: a counter that runs for
/// a deployment no longer on trial is disarmed, so that after a fallback the
/// rolled-back default boots instead of the failed entry again. A counter
/// that cannot be read does not stop assessment: the boot is counted without
/// evidence and stagehand_boot_assess_result_get_counter_error() says why.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_boot_assess_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_assess(
    assessment: *const StagehandBootAssessment,
    sysroot: *mut OstreeSysroot,
    options: *const StagehandHealthOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandBootAssessResult {
    fallible(
        c"stagehand_boot_assessment_assess",
        error,
        ptr::null_mut(),
        |call| {
            let ba = call.obj(assessment, c"assessment != NULL")?;
            let sysroot = call.sysroot(sysroot)?;
            let cancellable = call.cancellable(cancellable)?;
            let opts = options_or_config(&ba.inner, options);
            let lock = held(call, &sysroot, cancellable.as_ref())?;
            let a: Assessed = ba.inner.assess(&lock, None, &opts, cancellable.as_ref())?;
            let (evidence, tries_left, fallback_tries) = match a.counter_evidence {
                Some(CounterEvidence::OnTrial { left }) => {
                    (StagehandCounterEvidence::OnTrial, left, 0)
                }
                Some(CounterEvidence::BootloaderFallback { tries }) => (
                    StagehandCounterEvidence::BootloaderFallback,
                    0,
                    tries.unwrap_or(0),
                ),
                Some(CounterEvidence::ManualChoice) => {
                    (StagehandCounterEvidence::ManualChoice, 0, 0)
                }
                Some(CounterEvidence::NoEvidence) | None => (StagehandCounterEvidence::None, 0, 0),
            };
            Ok(Box::into_raw(Box::new(StagehandBootAssessResult {
                verdict: StagehandVerdict::of(&a.verdict),
                evidence,
                tries_left,
                fallback_tries,
                counter_error: a.counter_error.as_deref().map(cstring),
                disarmed: ids(&a.disarmed),
            })))
        },
    )
}

/// stagehand_boot_assessment_mark_good:
/// @assessment: a #StagehandBootAssessment
/// @sysroot: the booted #OstreeSysroot @assessment was made for, loaded and locked by the caller
/// @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// After `boot-complete.target`, as `stagehand-mark-good.service` runs it:
/// stagehand_mark_good(), then the boot counter is blessed (for the GRUB
/// environment block's one counter only when the booted deployment is the
/// default: a good boot of an entry picked by hand says nothing about the
/// default on trial), and counters of deployments no longer on trial are
/// disarmed. The errors are stagehand_mark_good()'s, and those of writing the
/// counter (%STAGEHAND_ERROR_IO, %STAGEHAND_ERROR_READ_ONLY); when only the
/// retention housekeeping after the verdict failed, the counter is still
/// blessed before the error is returned.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_boot_mark_good_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_mark_good(
    assessment: *const StagehandBootAssessment,
    sysroot: *mut OstreeSysroot,
    options: *const StagehandHealthOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandBootMarkGoodResult {
    fallible(
        c"stagehand_boot_assessment_mark_good",
        error,
        ptr::null_mut(),
        |call| {
            let ba = call.obj(assessment, c"assessment != NULL")?;
            let sysroot = call.sysroot(sysroot)?;
            let cancellable = call.cancellable(cancellable)?;
            let opts = options_or_config(&ba.inner, options);
            let lock = held(call, &sysroot, cancellable.as_ref())?;
            let m = ba.inner.mark_good(&lock, &opts, cancellable.as_ref())?;
            Ok(Box::into_raw(Box::new(StagehandBootMarkGoodResult {
                outcome: StagehandMarkGoodResult::of(&m.outcome),
                blessed: m.blessed,
                disarmed: ids(&m.disarmed),
            })))
        },
    )
}

/// stagehand_boot_assessment_mark_bad:
/// @assessment: a #StagehandBootAssessment
/// @sysroot: the #OstreeSysroot @assessment was made for, loaded and locked by the caller
/// @deployment_id: (nullable): the deployment, `[stateroot:]checksum[.serial]` (a unique prefix of the checksum will do), or %NULL for the booted one
/// @reason: (nullable): why, for the record and the denylist; %NULL for none
/// @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// A check failed: stagehand_mark_bad(), then the boot counter is settled:
/// the failed deployment's counter is disarmed, and the GRUB environment
/// block's one counter once the default is a known-good deployment again, so
/// the bootloader boots the rollback instead of counting down into the
/// failed entry. The errors are stagehand_mark_bad()'s (notably
/// %STAGEHAND_ERROR_NO_KNOWN_GOOD, with nothing changed) and those of
/// writing the counter.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_boot_mark_bad_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_mark_bad(
    assessment: *const StagehandBootAssessment,
    sysroot: *mut OstreeSysroot,
    deployment_id: *const c_char,
    reason: *const c_char,
    options: *const StagehandHealthOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandBootMarkBadResult {
    fallible(
        c"stagehand_boot_assessment_mark_bad",
        error,
        ptr::null_mut(),
        |call| {
            let ba = call.obj(assessment, c"assessment != NULL")?;
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
            let opts = options_or_config(&ba.inner, options);
            let lock = held(call, &sysroot, cancellable.as_ref())?;
            let target = spec
                .map(|s| DeploymentId::resolve(s, &sysroot))
                .transpose()?;
            let m = ba.inner.mark_bad(
                &lock,
                target.as_ref(),
                reason.unwrap_or(""),
                &opts,
                cancellable.as_ref(),
            )?;
            Ok(Box::into_raw(Box::new(StagehandBootMarkBadResult::of(&m))))
        },
    )
}

/// stagehand_boot_assessment_deadline:
/// @assessment: a #StagehandBootAssessment
/// @sysroot: the booted #OstreeSysroot @assessment was made for, loaded and locked by the caller
/// @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// The health deadline has passed (the caller decides when; see
/// stagehand_boot_assessment_get_time_remaining()): if the booted deployment
/// is still on trial, mark it bad with the reason "boot-complete.target was
/// not reached within ..." as stagehand_boot_assessment_mark_bad() does. If
/// an earlier run's verdict on it was interrupted before its rollback (the
/// failed deployment is still the default), finish it the same way, keeping
/// the recorded reason. Otherwise do nothing. Nothing reboots: with `auto-reboot`,
/// stagehand_boot_mark_bad_result_get_reboot() tells the caller to. With no
/// known-good deployment left this is %STAGEHAND_ERROR_NO_KNOWN_GOOD and
/// nothing changes; on a sysroot that is not booted
/// %STAGEHAND_ERROR_NOT_BOOTED.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): what was concluded, or %NULL with @error set; free with stagehand_boot_deadline_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_deadline(
    assessment: *const StagehandBootAssessment,
    sysroot: *mut OstreeSysroot,
    options: *const StagehandHealthOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandBootDeadlineResult {
    fallible(
        c"stagehand_boot_assessment_deadline",
        error,
        ptr::null_mut(),
        |call| {
            let ba = call.obj(assessment, c"assessment != NULL")?;
            let sysroot = call.sysroot(sysroot)?;
            let cancellable = call.cancellable(cancellable)?;
            let opts = options_or_config(&ba.inner, options);
            let lock = held(call, &sysroot, cancellable.as_ref())?;
            let r = match ba.inner.deadline(&lock, &opts, cancellable.as_ref())? {
                Deadline::NotOnTrial { booted } => StagehandBootDeadlineResult {
                    booted: cstring(&booted.to_string()),
                    missed: None,
                },
                Deadline::Missed(m) => StagehandBootDeadlineResult {
                    booted: cstring(&m.outcome.deployment.to_string()),
                    missed: Some(StagehandBootMarkBadResult::of(&m)),
                },
            };
            Ok(Box::into_raw(Box::new(r)))
        },
    )
}

/// stagehand_boot_assessment_arm_finalized:
/// @assessment: a #StagehandBootAssessment
/// @sysroot: the #OstreeSysroot @assessment was made for, loaded and locked by the caller
/// @deployment_id: the deployment finalization made the default, `[stateroot:]checksum[.serial]`: stagehand_finalize_result_get_deployment() of a %STAGEHAND_FINALIZE_OUTCOME_STAMPED result
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// At shutdown, after `ostree admin finalize-staged` and
/// stagehand_record_finalized() (what the drop-in for
/// `ostree-finalize-staged.service` runs): give the finalized deployment the
/// configured tries, if it is the default deployment now and on trial.
/// Anything else is an outcome, not an error: nothing is armed and
/// stagehand_arm_result_get_reason() says why (not the default, not on
/// trial, no counter, a libostree that cannot count BLS entries). Never call
/// it right after staging: a staged deployment that is never finalized must
/// not leave a counter. An unknown @deployment_id is
/// %STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT.
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_arm_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assessment_arm_finalized(
    assessment: *const StagehandBootAssessment,
    sysroot: *mut OstreeSysroot,
    deployment_id: *const c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandArmResult {
    fallible(
        c"stagehand_boot_assessment_arm_finalized",
        error,
        ptr::null_mut(),
        |call| {
            let ba = call.obj(assessment, c"assessment != NULL")?;
            let sysroot = call.sysroot(sysroot)?;
            let spec = call.str(
                deployment_id,
                c"deployment_id != NULL",
                c"g_utf8_validate (deployment_id, -1, NULL)",
            )?;
            let cancellable = call.cancellable(cancellable)?;
            let lock = held(call, &sysroot, cancellable.as_ref())?;
            let id = DeploymentId::resolve(spec, &sysroot)?;
            let r = match ba.inner.arm_finalized(&lock, &id)? {
                Armed::Armed {
                    deployment, tries, ..
                } => StagehandArmResult {
                    deployment: cstring(&deployment.to_string()),
                    armed: true,
                    tries,
                    reason: None,
                },
                Armed::Skipped { deployment, reason } => StagehandArmResult {
                    deployment: cstring(&deployment.to_string()),
                    armed: false,
                    tries: 0,
                    reason: Some(cstring(&reason)),
                },
            };
            Ok(Box::into_raw(Box::new(r)))
        },
    )
}

/// stagehand_boot_assess_result_free:
/// @result: (nullable) (transfer full): from stagehand_boot_assessment_assess()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assess_result_free(result: *mut StagehandBootAssessResult) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_boot_assessment_assess.
    unsafe { free_boxed(c"stagehand_boot_assess_result_free", result) }
}

/// stagehand_boot_mark_good_result_free:
/// @result: (nullable) (transfer full): from stagehand_boot_assessment_mark_good()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_good_result_free(
    result: *mut StagehandBootMarkGoodResult,
) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_boot_assessment_mark_good.
    unsafe { free_boxed(c"stagehand_boot_mark_good_result_free", result) }
}

/// stagehand_boot_mark_bad_result_free:
/// @result: (nullable) (transfer full): from stagehand_boot_assessment_mark_bad()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_bad_result_free(
    result: *mut StagehandBootMarkBadResult,
) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_boot_assessment_mark_bad.
    unsafe { free_boxed(c"stagehand_boot_mark_bad_result_free", result) }
}

/// stagehand_boot_deadline_result_free:
/// @result: (nullable) (transfer full): from stagehand_boot_assessment_deadline()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_deadline_result_free(
    result: *mut StagehandBootDeadlineResult,
) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_boot_assessment_deadline.
    unsafe { free_boxed(c"stagehand_boot_deadline_result_free", result) }
}

/// stagehand_arm_result_free:
/// @result: (nullable) (transfer full): from stagehand_boot_assessment_arm_finalized()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_arm_result_free(result: *mut StagehandArmResult) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_boot_assessment_arm_finalized.
    unsafe { free_boxed(c"stagehand_arm_result_free", result) }
}

fn get<'a, T>(call: &Call, p: *const T) -> Result<&'a T, Fail> {
    // SAFETY: the getters' contract: `p` is NULL or a live result of this module.
    unsafe { call.obj(p, c"result != NULL") }
}

/// stagehand_boot_assess_result_get_verdict:
/// @result: a #StagehandBootAssessResult
///
/// Returns: (transfer none): the health verdict, as stagehand_assess() returns it, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assess_result_get_verdict(
    result: *const StagehandBootAssessResult,
) -> *const StagehandVerdict {
    infallible(
        c"stagehand_boot_assess_result_get_verdict",
        ptr::null(),
        |call| Ok(&get(call, result)?.verdict as *const StagehandVerdict),
    )
}

/// stagehand_boot_assess_result_get_counter_evidence:
/// @result: a #StagehandBootAssessResult
///
/// Returns: what the boot counter said about this boot (%STAGEHAND_COUNTER_EVIDENCE_NONE also when it could not be read)
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assess_result_get_counter_evidence(
    result: *const StagehandBootAssessResult,
) -> StagehandCounterEvidence {
    infallible(
        c"stagehand_boot_assess_result_get_counter_evidence",
        StagehandCounterEvidence::None,
        |call| Ok(get(call, result)?.evidence),
    )
}

/// stagehand_boot_assess_result_get_tries_left:
/// @result: a #StagehandBootAssessResult
///
/// Returns: with %STAGEHAND_COUNTER_EVIDENCE_ON_TRIAL, the boots the bootloader still gives the booted deployment after this one (0: this is its last try); otherwise 0
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assess_result_get_tries_left(
    result: *const StagehandBootAssessResult,
) -> guint {
    infallible(c"stagehand_boot_assess_result_get_tries_left", 0, |call| {
        Ok(get(call, result)?.tries_left)
    })
}

/// stagehand_boot_assess_result_get_fallback_tries:
/// @result: a #StagehandBootAssessResult
///
/// Returns: with %STAGEHAND_COUNTER_EVIDENCE_BOOTLOADER_FALLBACK, the boots the failed deployment had where the backend records them (BLS), else 0
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assess_result_get_fallback_tries(
    result: *const StagehandBootAssessResult,
) -> guint {
    infallible(
        c"stagehand_boot_assess_result_get_fallback_tries",
        0,
        |call| Ok(get(call, result)?.fallback_tries),
    )
}

/// stagehand_boot_assess_result_get_counter_error:
/// @result: a #StagehandBootAssessResult
///
/// Returns: (transfer none) (nullable): why the counter could not be read (assessment went on without its evidence), %NULL when it was read, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assess_result_get_counter_error(
    result: *const StagehandBootAssessResult,
) -> *const c_char {
    infallible(
        c"stagehand_boot_assess_result_get_counter_error",
        ptr::null(),
        |call| Ok(opt_ptr(&get(call, result)?.counter_error)),
    )
}

/// stagehand_boot_assess_result_get_disarmed:
/// @result: a #StagehandBootAssessResult
///
/// Returns: (transfer none) (array zero-terminated=1): the deployments whose counter was stopped because they are no longer on trial, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_assess_result_get_disarmed(
    result: *const StagehandBootAssessResult,
) -> *const *const c_char {
    infallible(
        c"stagehand_boot_assess_result_get_disarmed",
        ptr::null(),
        |call| Ok(get(call, result)?.disarmed.as_ptr()),
    )
}

/// stagehand_boot_mark_good_result_get_outcome:
/// @result: a #StagehandBootMarkGoodResult
///
/// Returns: (transfer none): the health transition, as stagehand_mark_good() returns it, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_good_result_get_outcome(
    result: *const StagehandBootMarkGoodResult,
) -> *const StagehandMarkGoodResult {
    infallible(
        c"stagehand_boot_mark_good_result_get_outcome",
        ptr::null(),
        |call| Ok(&get(call, result)?.outcome as *const StagehandMarkGoodResult),
    )
}

/// stagehand_boot_mark_good_result_get_blessed:
/// @result: a #StagehandBootMarkGoodResult
///
/// Returns: whether the counter was blessed (%FALSE: nothing was armed for the booted deployment, or the GRUB environment block counts another one)
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_good_result_get_blessed(
    result: *const StagehandBootMarkGoodResult,
) -> gboolean {
    infallible(
        c"stagehand_boot_mark_good_result_get_blessed",
        GFALSE,
        |call| Ok(gbool(get(call, result)?.blessed)),
    )
}

/// stagehand_boot_mark_good_result_get_disarmed:
/// @result: a #StagehandBootMarkGoodResult
///
/// Returns: (transfer none) (array zero-terminated=1): the deployments whose counter was stopped because they are no longer on trial, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_good_result_get_disarmed(
    result: *const StagehandBootMarkGoodResult,
) -> *const *const c_char {
    infallible(
        c"stagehand_boot_mark_good_result_get_disarmed",
        ptr::null(),
        |call| Ok(get(call, result)?.disarmed.as_ptr()),
    )
}

/// stagehand_boot_mark_bad_result_get_outcome:
/// @result: a #StagehandBootMarkBadResult
///
/// Returns: (transfer none): the health transition, as stagehand_mark_bad() returns it, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_bad_result_get_outcome(
    result: *const StagehandBootMarkBadResult,
) -> *const StagehandMarkBadResult {
    infallible(
        c"stagehand_boot_mark_bad_result_get_outcome",
        ptr::null(),
        |call| Ok(&get(call, result)?.outcome as *const StagehandMarkBadResult),
    )
}

/// stagehand_boot_mark_bad_result_get_disarmed:
/// @result: a #StagehandBootMarkBadResult
///
/// Returns: (transfer none) (array zero-terminated=1): the deployments whose counter was stopped: the failed one's, or the GRUB environment block's once the default is known good, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_bad_result_get_disarmed(
    result: *const StagehandBootMarkBadResult,
) -> *const *const c_char {
    infallible(
        c"stagehand_boot_mark_bad_result_get_disarmed",
        ptr::null(),
        |call| Ok(get(call, result)?.disarmed.as_ptr()),
    )
}

/// stagehand_boot_mark_bad_result_get_reboot:
/// @result: a #StagehandBootMarkBadResult
///
/// Returns: whether the caller should reboot into the rollback now: the running system is the failed one and the configuration says `auto-reboot = true`
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_mark_bad_result_get_reboot(
    result: *const StagehandBootMarkBadResult,
) -> gboolean {
    infallible(
        c"stagehand_boot_mark_bad_result_get_reboot",
        GFALSE,
        |call| Ok(gbool(get(call, result)?.reboot)),
    )
}

/// stagehand_boot_deadline_result_get_missed:
/// @result: a #StagehandBootDeadlineResult
///
/// Returns: whether the booted deployment was still on trial and was marked bad (%FALSE: it is not on trial, nothing was done)
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_deadline_result_get_missed(
    result: *const StagehandBootDeadlineResult,
) -> gboolean {
    infallible(
        c"stagehand_boot_deadline_result_get_missed",
        GFALSE,
        |call| Ok(gbool(get(call, result)?.missed.is_some())),
    )
}

/// stagehand_boot_deadline_result_get_booted:
/// @result: a #StagehandBootDeadlineResult
///
/// Returns: (transfer none): the identity of the booted deployment, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_deadline_result_get_booted(
    result: *const StagehandBootDeadlineResult,
) -> *const c_char {
    infallible(
        c"stagehand_boot_deadline_result_get_booted",
        ptr::null(),
        |call| Ok(get(call, result)?.booted.as_ptr()),
    )
}

/// stagehand_boot_deadline_result_get_mark_bad:
/// @result: a #StagehandBootDeadlineResult
///
/// Returns: (transfer none) (nullable): what marking the booted deployment bad did, %NULL when the deadline was not missed, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_boot_deadline_result_get_mark_bad(
    result: *const StagehandBootDeadlineResult,
) -> *const StagehandBootMarkBadResult {
    infallible(
        c"stagehand_boot_deadline_result_get_mark_bad",
        ptr::null(),
        |call| {
            Ok(get(call, result)?
                .missed
                .as_ref()
                .map_or(ptr::null(), |m| m as *const StagehandBootMarkBadResult))
        },
    )
}

/// stagehand_arm_result_get_armed:
/// @result: a #StagehandArmResult
///
/// Returns: whether the counter now counts the deployment's boots (%FALSE: skipped, see stagehand_arm_result_get_reason())
#[no_mangle]
pub unsafe extern "C" fn stagehand_arm_result_get_armed(
    result: *const StagehandArmResult,
) -> gboolean {
    infallible(c"stagehand_arm_result_get_armed", GFALSE, |call| {
        Ok(gbool(get(call, result)?.armed))
    })
}

/// stagehand_arm_result_get_deployment:
/// @result: a #StagehandArmResult
///
/// Returns: (transfer none): the identity of the finalized deployment, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_arm_result_get_deployment(
    result: *const StagehandArmResult,
) -> *const c_char {
    infallible(
        c"stagehand_arm_result_get_deployment",
        ptr::null(),
        |call| Ok(get(call, result)?.deployment.as_ptr()),
    )
}

/// stagehand_arm_result_get_tries:
/// @result: a #StagehandArmResult
///
/// Returns: the tries given, 0 when nothing was armed
#[no_mangle]
pub unsafe extern "C" fn stagehand_arm_result_get_tries(
    result: *const StagehandArmResult,
) -> guint {
    infallible(c"stagehand_arm_result_get_tries", 0, |call| {
        Ok(get(call, result)?.tries)
    })
}

/// stagehand_arm_result_get_reason:
/// @result: a #StagehandArmResult
///
/// Returns: (transfer none) (nullable): why nothing was armed, %NULL when the counter was armed, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_arm_result_get_reason(
    result: *const StagehandArmResult,
) -> *const c_char {
    infallible(c"stagehand_arm_result_get_reason", ptr::null(), |call| {
        Ok(opt_ptr(&get(call, result)?.reason))
    })
}
