//! The finalize-time cleanup stamp (docs/cleanup.md): the two shutdown steps
//! around `ostree admin finalize-staged`, the pending-cleanup query, and the
//! cleanup itself with its options builder and report.

use std::ffi::{c_char, CString};
use std::ptr;
use std::time::Duration;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE, GTRUE};
use ostree::ffi::OstreeSysroot;

use crate::{guint, guint64};
use stagehand::{CleanupOptions, CleanupReport, CleanupStamp, FinalizeOutcome};

use crate::guard::{cstring, fallible, free_boxed, g_strdup, gbool, infallible, opt_ptr, Strv};

// ------------------------------------------------------------ the stamp ----

/// StagehandCleanupStampKind:
/// @STAGEHAND_CLEANUP_STAMP_KIND_LEGACY: an empty stamp, as older tools (eos-updater's drop-in) write it: a cleanup is pending, nothing more is known
/// @STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED: written by stagehand after it verified a finalization; it names the finalized deployment and the dropped ones
/// @STAGEHAND_CLEANUP_STAMP_KIND_NEWER: written by a newer stagehand in a format this one does not read (then the OS was rolled back); the cleanup is still pending
/// @STAGEHAND_CLEANUP_STAMP_KIND_REMOVED: written by stagehand when it removed deployments from the deployment list itself (the end of a trial), with no finalization since the last cleanup; it names the removed deployments
///
/// What a cleanup stamp is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandCleanupStampKind {
    Legacy = 0,
    Finalized = 1,
    Newer = 2,
    Removed = 3,
}

/// StagehandCleanupStamp:
///
/// What a cleanup stamp (`/sysroot/.cleanup`) says, from
/// stagehand_pending_cleanup() (freed with stagehand_cleanup_stamp_free() or
/// `g_autoptr(StagehandCleanupStamp)`), or owned by a #StagehandCleanupReport.
/// It does not change when the file does.
pub struct StagehandCleanupStamp {
    kind: StagehandCleanupStampKind,
    deployment: Option<CString>,
    dropped: Strv,
    finalized_at: Option<CString>,
    boot_id: Option<CString>,
    removed: Strv,
    removed_at: Option<CString>,
    version: guint,
}

impl StagehandCleanupStamp {
    fn new(stamp: &CleanupStamp) -> StagehandCleanupStamp {
        let none: [&str; 0] = [];
        match stamp {
            CleanupStamp::Legacy => StagehandCleanupStamp {
                kind: StagehandCleanupStampKind::Legacy,
                deployment: None,
                dropped: Strv::new(none),
                finalized_at: None,
                boot_id: None,
                removed: Strv::new(none),
                removed_at: None,
                version: 0,
            },
            CleanupStamp::Finalized {
                deployment,
                dropped,
                finalized_at,
                boot_id,
                removed,
                removed_at,
            } => StagehandCleanupStamp {
                kind: StagehandCleanupStampKind::Finalized,
                deployment: Some(cstring(&deployment.to_string())),
                dropped: Strv::new(dropped.iter().map(|d| d.to_string())),
                finalized_at: Some(cstring(finalized_at)),
                boot_id: boot_id.as_deref().map(cstring),
                removed: Strv::new(removed.iter().map(|d| d.to_string())),
                removed_at: removed_at.as_deref().map(cstring),
                version: 0,
            },
            CleanupStamp::Removed {
                removed,
                removed_at,
            } => StagehandCleanupStamp {
                kind: StagehandCleanupStampKind::Removed,
                deployment: None,
                dropped: Strv::new(none),
                finalized_at: None,
                boot_id: None,
                removed: Strv::new(removed.iter().map(|d| d.to_string())),
                removed_at: Some(cstring(removed_at)),
                version: 0,
            },
            CleanupStamp::Newer { version } => StagehandCleanupStamp {
                kind: StagehandCleanupStampKind::Newer,
                deployment: None,
                dropped: Strv::new(none),
                finalized_at: None,
                boot_id: None,
                removed: Strv::new(none),
                removed_at: None,
                version: *version,
            },
            // A kind this C library does not know yet: still a pending cleanup.
            _ => StagehandCleanupStamp {
                kind: StagehandCleanupStampKind::Newer,
                deployment: None,
                dropped: Strv::new(none),
                finalized_at: None,
                boot_id: None,
                removed: Strv::new(none),
                removed_at: None,
                version: 0,
            },
        }
    }
}

/// stagehand_dup_cleanup_stamp_path:
/// @sysroot: a #OstreeSysroot (it need not be loaded)
///
/// The cleanup stamp of @sysroot: `.cleanup` in the physical sysroot, so
/// `/sysroot/.cleanup` for the booted system's `/`. The path eos-updater's
/// units use too.
///
/// Returns: (transfer full) (type filename): the path; free with g_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_dup_cleanup_stamp_path(
    sysroot: *mut OstreeSysroot,
) -> *mut c_char {
    infallible(
        c"stagehand_dup_cleanup_stamp_path",
        ptr::null_mut(),
        |call| {
            // SAFETY: the caller passes a GObject or NULL.
            let sysroot = unsafe { call.sysroot(sysroot)? };
            let path = stagehand::cleanup::stamp_path(&sysroot);
            Ok(glib::translate::ToGlibPtr::to_glib_full(path.as_path()))
        },
    )
}

/// stagehand_pending_cleanup:
/// @sysroot: a #OstreeSysroot (it need not be loaded)
/// @out_stamp: (out) (transfer full) (nullable): return location for the stamp, set to %NULL when no cleanup is pending; free with stagehand_cleanup_stamp_free()
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Whether a cleanup is pending (a finalization happened and nothing has
/// pruned after it yet), and what the stamp says. One file read: no sysroot
/// lock, no sysroot I/O. An empty stamp is
/// %STAGEHAND_CLEANUP_STAMP_KIND_LEGACY. A stamp that cannot be read or
/// parsed fails with %STAGEHAND_ERROR_CORRUPT, naming the file and what is
/// wrong; it is left in place (stagehand_cleanup_options_set_force() cleans
/// up and removes it).
///
/// Returns: %TRUE on success (with *@out_stamp %NULL when nothing is pending), %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_pending_cleanup(
    sysroot: *mut OstreeSysroot,
    out_stamp: *mut *mut StagehandCleanupStamp,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_pending_cleanup", error, GFALSE, |call| {
        let sysroot = call.sysroot(sysroot)?;
        call.non_null(out_stamp, c"out_stamp != NULL")?;
        let cancellable = call.cancellable(cancellable)?;
        crate::guard::check_cancelled(cancellable.as_ref())?;
        let stamp = stagehand::pending_cleanup(&sysroot)?;
        // SAFETY: checked non-NULL above; the caller's storage.
        unsafe {
            *out_stamp = match stamp {
                Some(s) => Box::into_raw(Box::new(StagehandCleanupStamp::new(&s))),
                None => ptr::null_mut(),
            }
        };
        Ok(GTRUE)
    })
}

/// stagehand_cleanup_stamp_free:
/// @stamp: (nullable) (transfer full): a stamp from stagehand_pending_cleanup()
///
/// Free @stamp. %NULL is ignored. Never call it on the stamp a
/// #StagehandCleanupReport owns.
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_free(stamp: *mut StagehandCleanupStamp) {
    // SAFETY: stamp is NULL or from Box::into_raw in stagehand_pending_cleanup.
    unsafe { free_boxed(c"stagehand_cleanup_stamp_free", stamp) }
}

/// stagehand_cleanup_stamp_get_kind:
/// @stamp: a #StagehandCleanupStamp
///
/// Returns: what kind of stamp it is
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_kind(
    stamp: *const StagehandCleanupStamp,
) -> StagehandCleanupStampKind {
    infallible(
        c"stagehand_cleanup_stamp_get_kind",
        StagehandCleanupStampKind::Legacy,
        |call| Ok(call.obj(stamp, c"stamp != NULL")?.kind),
    )
}

/// stagehand_cleanup_stamp_get_deployment:
/// @stamp: a #StagehandCleanupStamp
///
/// Returns: (transfer none) (nullable): the identity (`stateroot:checksum.serial`) of the deployment whose finalization wrote the stamp; %NULL unless the kind is %STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_deployment(
    stamp: *const StagehandCleanupStamp,
) -> *const c_char {
    infallible(
        c"stagehand_cleanup_stamp_get_deployment",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(stamp, c"stamp != NULL")?.deployment)),
    )
}

/// stagehand_cleanup_stamp_get_dropped:
/// @stamp: a #StagehandCleanupStamp
///
/// The deployments the finalization dropped from the bootloader
/// configuration (and earlier pending finalizations, merged): the objects
/// only they used are what the cleanup frees.
///
/// Returns: (transfer none) (array zero-terminated=1): their identities, owned by @stamp; empty unless the kind is %STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_dropped(
    stamp: *const StagehandCleanupStamp,
) -> *const *const c_char {
    infallible(
        c"stagehand_cleanup_stamp_get_dropped",
        ptr::null(),
        |call| Ok(call.obj(stamp, c"stamp != NULL")?.dropped.as_ptr()),
    )
}

/// stagehand_cleanup_stamp_get_removed:
/// @stamp: a #StagehandCleanupStamp
///
/// The deployments stagehand removed from the deployment list itself (a
/// deployment only its known-good pin kept, at the end of a trial): the
/// objects only they used are what the cleanup frees, too.
///
/// Returns: (transfer none) (array zero-terminated=1): their identities, owned by @stamp; empty when there are none
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_removed(
    stamp: *const StagehandCleanupStamp,
) -> *const *const c_char {
    infallible(
        c"stagehand_cleanup_stamp_get_removed",
        ptr::null(),
        |call| Ok(call.obj(stamp, c"stamp != NULL")?.removed.as_ptr()),
    )
}

/// stagehand_cleanup_stamp_get_removed_at:
/// @stamp: a #StagehandCleanupStamp
///
/// Returns: (transfer none) (nullable): when stagehand last removed a deployment it names, RFC 3339 UTC; %NULL when it removed none
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_removed_at(
    stamp: *const StagehandCleanupStamp,
) -> *const c_char {
    infallible(
        c"stagehand_cleanup_stamp_get_removed_at",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(stamp, c"stamp != NULL")?.removed_at)),
    )
}

/// stagehand_cleanup_stamp_get_finalized_at:
/// @stamp: a #StagehandCleanupStamp
///
/// Returns: (transfer none) (nullable): when the stamp was written, RFC 3339 UTC (`2024-05-01T10:00:00Z`, g_date_time_new_from_iso8601() reads it); %NULL unless the kind is %STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_finalized_at(
    stamp: *const StagehandCleanupStamp,
) -> *const c_char {
    infallible(
        c"stagehand_cleanup_stamp_get_finalized_at",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(stamp, c"stamp != NULL")?.finalized_at)),
    )
}

/// stagehand_cleanup_stamp_get_boot_id:
/// @stamp: a #StagehandCleanupStamp
///
/// Returns: (transfer none) (nullable): the boot (`/proc/sys/kernel/random/boot_id`) during whose shutdown the finalization happened, or %NULL when the stamp does not say
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_boot_id(
    stamp: *const StagehandCleanupStamp,
) -> *const c_char {
    infallible(
        c"stagehand_cleanup_stamp_get_boot_id",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(stamp, c"stamp != NULL")?.boot_id)),
    )
}

/// stagehand_cleanup_stamp_get_format_version:
/// @stamp: a #StagehandCleanupStamp
///
/// Returns: the format version found in a %STAGEHAND_CLEANUP_STAMP_KIND_NEWER stamp; 0 for the other kinds
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_stamp_get_format_version(
    stamp: *const StagehandCleanupStamp,
) -> guint {
    infallible(c"stagehand_cleanup_stamp_get_format_version", 0, |call| {
        Ok(call.obj(stamp, c"stamp != NULL")?.version)
    })
}

// ----------------------------------------------------- the shutdown steps ----

/// stagehand_record_staged:
/// @sysroot: a loaded #OstreeSysroot, which must be the booted one
/// @out_staged_id: (out) (optional) (nullable) (transfer full): return location for the identity of the staged deployment that was recorded, %NULL when nothing is staged; free with g_free()
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// The first shutdown step, just *before* `ostree admin finalize-staged`
/// (which unlinks the staged state first thing, after which nobody can tell
/// what was staged): record the staged deployment, the deployment list and
/// the state of libostree's failure stamp in `/run/stagehand/finalize-record`.
/// Nothing staged is not an error: a stale record is removed, and
/// *@out_staged_id is %NULL.
///
/// `stagehand-finalize-record.service` runs this step (`stagehand
/// finalize-stamp --record`); an agent that drives its own shutdown calls it
/// instead. Fails with %STAGEHAND_ERROR_NOT_BOOTED when @sysroot is not the
/// booted system's (the record in `/run` belongs to the running system).
/// The sysroot lock is not needed. @sysroot is reloaded first if another
/// process changed it.
///
/// Returns: %TRUE on success, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_record_staged(
    sysroot: *mut OstreeSysroot,
    out_staged_id: *mut *mut c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_record_staged", error, GFALSE, |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        stagehand::sysroot::reload_if_changed(&sysroot, cancellable.as_ref())?;
        let staged = stagehand::record_staged(&sysroot)?;
        if !out_staged_id.is_null() {
            // SAFETY: a non-NULL out parameter points to writable storage.
            unsafe {
                *out_staged_id = staged.map_or(ptr::null_mut(), |id| g_strdup(&id.to_string()));
            }
        }
        Ok(GTRUE)
    })
}

/// StagehandFinalizeOutcome:
/// @STAGEHAND_FINALIZE_OUTCOME_STAMPED: the deployment was finalized; the cleanup stamp was written
/// @STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED: nothing was recorded before finalization (nothing was staged, or the record step did not run): nothing is known to be finalized
/// @STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED: the deployment is still staged (finalization locked, or it never ran)
/// @STAGEHAND_FINALIZE_OUTCOME_FAILED: libostree recorded a finalization failure during this shutdown
/// @STAGEHAND_FINALIZE_OUTCOME_NOT_DEPLOYED: the staged state is gone but the deployment is not a regular deployment in the bootloader configuration (finalization was interrupted, or the deployment was unstaged)
///
/// What stagehand_record_finalized() concluded. Only
/// %STAGEHAND_FINALIZE_OUTCOME_STAMPED writes a stamp; the others are
/// outcomes, not errors.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandFinalizeOutcome {
    Stamped = 0,
    NotRecorded = 1,
    StillStaged = 2,
    Failed = 3,
    NotDeployed = 4,
}

/// StagehandFinalizeResult:
///
/// What stagehand_record_finalized() concluded: an opaque object read with
/// the `stagehand_finalize_result_get_*()` functions and freed with
/// stagehand_finalize_result_free() (or `g_autoptr(StagehandFinalizeResult)`).
pub struct StagehandFinalizeResult {
    outcome: StagehandFinalizeOutcome,
    stamped: bool,
    deployment: Option<CString>,
    dropped: Strv,
    finalization_locked: bool,
    message: Option<CString>,
    description: CString,
}

impl StagehandFinalizeResult {
    fn new(o: &FinalizeOutcome) -> StagehandFinalizeResult {
        let none: [&str; 0] = [];
        let mut r = StagehandFinalizeResult {
            outcome: StagehandFinalizeOutcome::NotRecorded,
            stamped: o.stamped(),
            deployment: None,
            dropped: Strv::new(none),
            finalization_locked: false,
            message: None,
            description: cstring(&o.to_string()),
        };
        match o {
            FinalizeOutcome::Stamped {
                deployment,
                dropped,
            } => {
                r.outcome = StagehandFinalizeOutcome::Stamped;
                r.deployment = Some(cstring(&deployment.to_string()));
                r.dropped = Strv::new(dropped.iter().map(|d| d.to_string()));
            }
            FinalizeOutcome::NotRecorded => {}
            FinalizeOutcome::StillStaged {
                deployment,
                finalization_locked,
            } => {
                r.outcome = StagehandFinalizeOutcome::StillStaged;
                r.deployment = Some(cstring(&deployment.to_string()));
                r.finalization_locked = *finalization_locked;
            }
            FinalizeOutcome::Failed {
                deployment,
                message,
            } => {
                r.outcome = StagehandFinalizeOutcome::Failed;
                r.deployment = Some(cstring(&deployment.to_string()));
                r.message = Some(cstring(message));
            }
            FinalizeOutcome::NotDeployed { deployment } => {
                r.outcome = StagehandFinalizeOutcome::NotDeployed;
                r.deployment = Some(cstring(&deployment.to_string()));
            }
        }
        r
    }
}

/// stagehand_record_finalized:
/// @sysroot: a #OstreeSysroot, the booted one, loaded and locked by the caller
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// The second shutdown step, right *after* `ostree admin finalize-staged`:
/// write the cleanup stamp if, and only if, finalization demonstrably
/// happened. The evidence required: the record of stagehand_record_staged()
/// exists; libostree's failure stamp did not appear or change since; the
/// staged state file is gone; and the recorded deployment is a regular
/// deployment of the freshly loaded bootloader configuration. Anything else
/// is an outcome, not an error: no stamp is written and the result says why.
/// The record is consumed either way. A stamp still pending from an earlier
/// finalization is merged into the new one.
///
/// After a stamp, when a deployment with a failure verdict is listed ahead
/// of a known-good one (a verdict given while the update was staged, which
/// libostree 2022.7 could not always order), the deployment list is written
/// again with failures behind the known-good ones, the default unchanged:
/// one more bootloader configuration write at shutdown, only then. A failure
/// there is logged and does not fail this call.
///
/// The drop-in for `ostree-finalize-staged.service` runs this step
/// (`stagehand finalize-stamp`). Fails with %STAGEHAND_ERROR_NOT_BOOTED when
/// @sysroot is not the booted system's, with %STAGEHAND_ERROR_CORRUPT when the
/// record cannot be read. The caller must hold the sysroot lock (which also
/// makes a read-only `/sysroot` writable for the stamp); when nobody holds it
/// this fails with %STAGEHAND_ERROR_NOT_LOCKED before anything is read or
/// written. @sysroot is reloaded.
///
/// Returns: (transfer full) (nullable): what was concluded, or %NULL with @error set; free with stagehand_finalize_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_record_finalized(
    sysroot: *mut OstreeSysroot,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandFinalizeResult {
    fallible(
        c"stagehand_record_finalized",
        error,
        ptr::null_mut(),
        |call| {
            let sysroot = call.sysroot(sysroot)?;
            let cancellable = call.cancellable(cancellable)?;
            let lock = call.locked(&sysroot)?;
            lock.reload(cancellable.as_ref())?;
            let outcome = stagehand::record_finalized(&lock, cancellable.as_ref())?;
            Ok(Box::into_raw(Box::new(StagehandFinalizeResult::new(
                &outcome,
            ))))
        },
    )
}

/// stagehand_finalize_result_free:
/// @result: (nullable) (transfer full): a result from stagehand_record_finalized()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_free(result: *mut StagehandFinalizeResult) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_record_finalized.
    unsafe { free_boxed(c"stagehand_finalize_result_free", result) }
}

/// stagehand_finalize_result_get_outcome:
/// @result: a #StagehandFinalizeResult
///
/// Returns: what was concluded
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_get_outcome(
    result: *const StagehandFinalizeResult,
) -> StagehandFinalizeOutcome {
    infallible(
        c"stagehand_finalize_result_get_outcome",
        StagehandFinalizeOutcome::NotRecorded,
        |call| Ok(call.obj(result, c"result != NULL")?.outcome),
    )
}

/// stagehand_finalize_result_get_stamped:
/// @result: a #StagehandFinalizeResult
///
/// Returns: whether the cleanup stamp was written (the outcome is %STAGEHAND_FINALIZE_OUTCOME_STAMPED)
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_get_stamped(
    result: *const StagehandFinalizeResult,
) -> gboolean {
    infallible(c"stagehand_finalize_result_get_stamped", GFALSE, |call| {
        Ok(gbool(call.obj(result, c"result != NULL")?.stamped))
    })
}

/// stagehand_finalize_result_get_deployment:
/// @result: a #StagehandFinalizeResult
///
/// Returns: (transfer none) (nullable): the identity of the deployment that was staged (and, for %STAGEHAND_FINALIZE_OUTCOME_STAMPED, finalized); %NULL for %STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_get_deployment(
    result: *const StagehandFinalizeResult,
) -> *const c_char {
    infallible(
        c"stagehand_finalize_result_get_deployment",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(result, c"result != NULL")?.deployment)),
    )
}

/// stagehand_finalize_result_get_dropped:
/// @result: a #StagehandFinalizeResult
///
/// Returns: (transfer none) (array zero-terminated=1): the identities of the deployments the finalization dropped, owned by @result; empty unless the outcome is %STAGEHAND_FINALIZE_OUTCOME_STAMPED
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_get_dropped(
    result: *const StagehandFinalizeResult,
) -> *const *const c_char {
    infallible(
        c"stagehand_finalize_result_get_dropped",
        ptr::null(),
        |call| Ok(call.obj(result, c"result != NULL")?.dropped.as_ptr()),
    )
}

/// stagehand_finalize_result_get_finalization_locked:
/// @result: a #StagehandFinalizeResult
///
/// Returns: for %STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED, whether finalization is locked; %FALSE otherwise
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_get_finalization_locked(
    result: *const StagehandFinalizeResult,
) -> gboolean {
    infallible(
        c"stagehand_finalize_result_get_finalization_locked",
        GFALSE,
        |call| {
            Ok(gbool(
                call.obj(result, c"result != NULL")?.finalization_locked,
            ))
        },
    )
}

/// stagehand_finalize_result_get_message:
/// @result: a #StagehandFinalizeResult
///
/// Returns: (transfer none) (nullable): for %STAGEHAND_FINALIZE_OUTCOME_FAILED, libostree's failure message (from `/boot/ostree/finalize-failure.stamp`); %NULL otherwise
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_get_message(
    result: *const StagehandFinalizeResult,
) -> *const c_char {
    infallible(
        c"stagehand_finalize_result_get_message",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(result, c"result != NULL")?.message)),
    )
}

/// stagehand_finalize_result_get_description:
/// @result: a #StagehandFinalizeResult
///
/// Returns: (transfer none): one line for a person, as `stagehand finalize-stamp` prints and logs it (`testos:….1 was finalized; cleanup stamp written (dropped …)`)
#[no_mangle]
pub unsafe extern "C" fn stagehand_finalize_result_get_description(
    result: *const StagehandFinalizeResult,
) -> *const c_char {
    infallible(
        c"stagehand_finalize_result_get_description",
        ptr::null(),
        |call| Ok(call.obj(result, c"result != NULL")?.description.as_ptr()),
    )
}

// ---------------------------------------------------------- the cleanup ----

/// StagehandCleanupOptions:
///
/// How stagehand_autocleanup() runs: an opaque builder, so that new options
/// never break the ABI. Create it with stagehand_cleanup_options_new(),
/// change it with the `stagehand_cleanup_options_set_*()` functions, free it
/// with stagehand_cleanup_options_free() (or
/// `g_autoptr(StagehandCleanupOptions)`).
pub struct StagehandCleanupOptions {
    lock_timeout: Duration,
    force: bool,
}

/// stagehand_cleanup_options_new:
///
/// Start the options of a stagehand_autocleanup() call. The defaults: wait
/// up to 30 minutes for the sysroot lock (the cleanup runs in the background
/// after boot, and an update agent may hold the lock for a whole download),
/// and act only on a readable stamp.
///
/// Returns: (transfer full): new options; free with stagehand_cleanup_options_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_options_new() -> *mut StagehandCleanupOptions {
    infallible(c"stagehand_cleanup_options_new", ptr::null_mut(), |_| {
        Ok(Box::into_raw(Box::new(StagehandCleanupOptions {
            lock_timeout: stagehand::cleanup::DEFAULT_AUTOCLEANUP_LOCK_TIMEOUT,
            force: false,
        })))
    })
}

/// stagehand_cleanup_options_free:
/// @options: (nullable) (transfer full): options from stagehand_cleanup_options_new()
///
/// Free @options. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_options_free(options: *mut StagehandCleanupOptions) {
    // SAFETY: options is NULL or from Box::into_raw in stagehand_cleanup_options_new.
    unsafe { free_boxed(c"stagehand_cleanup_options_free", options) }
}

/// stagehand_cleanup_options_set_lock_timeout:
/// @options: a #StagehandCleanupOptions
/// @timeout_ms: how long to wait, in milliseconds, while another process holds the sysroot lock
///
/// After @timeout_ms stagehand_autocleanup() gives up with
/// %STAGEHAND_ERROR_LOCKED and the stamp stays for the next run. 0 tries once.
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_options_set_lock_timeout(
    options: *mut StagehandCleanupOptions,
    timeout_ms: guint,
) {
    infallible(c"stagehand_cleanup_options_set_lock_timeout", (), |call| {
        call.obj_mut(options, c"options != NULL")?.lock_timeout =
            Duration::from_millis(timeout_ms.into());
        Ok(())
    })
}

/// stagehand_cleanup_options_set_force:
/// @options: a #StagehandCleanupOptions
/// @force: whether to clean up without a readable stamp
///
/// With %TRUE the cleanup runs even without a stamp, or with one that cannot
/// be read (%STAGEHAND_ERROR_CORRUPT otherwise), and a stamp present is
/// removed after success: an administrator's override for a corrupt stamp,
/// `stagehand autocleanup --force`. Default: %FALSE.
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_options_set_force(
    options: *mut StagehandCleanupOptions,
    force: gboolean,
) {
    infallible(c"stagehand_cleanup_options_set_force", (), |call| {
        call.obj_mut(options, c"options != NULL")?.force = force != GFALSE;
        Ok(())
    })
}

/// StagehandCleanupReport:
///
/// What stagehand_autocleanup() or stagehand_run_cleanup() did: an opaque
/// object read with the `stagehand_cleanup_report_get_*()` functions and
/// freed with stagehand_cleanup_report_free() (or
/// `g_autoptr(StagehandCleanupReport)`).
pub struct StagehandCleanupReport {
    inner: CleanupReport,
    stamp: Option<StagehandCleanupStamp>,
    removed: Strv,
    released_pins: Strv,
}

fn report(r: CleanupReport) -> *mut StagehandCleanupReport {
    Box::into_raw(Box::new(StagehandCleanupReport {
        stamp: r.stamp.as_ref().map(StagehandCleanupStamp::new),
        removed: Strv::new(r.deployments_removed.iter().map(|d| d.to_string())),
        released_pins: Strv::new(r.released_pins.iter().map(|d| d.to_string())),
        inner: r,
    }))
}

/// stagehand_autocleanup:
/// @sysroot: a #OstreeSysroot, which the caller must not have locked
/// @options: (nullable): how to run, or %NULL for the defaults of stagehand_cleanup_options_new()
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Run the pending cleanup, what `stagehand-autocleanup.service` does at
/// boot. Without a stamp and without the retention trigger that
/// stagehand_mark_good() leaves when it ends a trial (the trial's pins wait to
/// be released) this returns at once, having looked at two paths
/// (stagehand_cleanup_report_get_performed() is %FALSE). Otherwise it takes the
/// sysroot lock itself, waiting while an update agent holds it
/// (%STAGEHAND_ERROR_LOCKED after the timeout, %STAGEHAND_ERROR_CANCELLED
/// when @cancellable is triggered; the stamp stays either way), first
/// releases such pins and removes what only they kept (named in the stamp),
/// and runs libostree's full cleanup (old boot versions, undeployed checkouts,
/// deployment refs, the repository prune); once the deletions are on disk
/// (`syncfs`) it removes the stamp, durably, if it is still the one that was
/// read. Any interruption leaves the stamp, so the next run converges. A
/// stamp that cannot be read fails with %STAGEHAND_ERROR_CORRUPT and is kept,
/// unless stagehand_cleanup_options_set_force().
///
/// The lock is released before this returns. A caller that holds it already
/// calls stagehand_run_cleanup() instead. libostree prints `Freed objects:
/// …` with g_print() during the prune; install a g_set_print_handler() if
/// stdout is not the place for it.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_cleanup_report_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_autocleanup(
    sysroot: *mut OstreeSysroot,
    options: *const StagehandCleanupOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandCleanupReport {
    fallible(c"stagehand_autocleanup", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        let opts = if options.is_null() {
            CleanupOptions::new()
        } else {
            // SAFETY: a non-NULL options pointer is a live StagehandCleanupOptions.
            let o = unsafe { &*options };
            CleanupOptions::new()
                .lock_timeout(o.lock_timeout)
                .force(o.force)
        };
        Ok(report(stagehand::autocleanup(
            &sysroot,
            &opts,
            cancellable.as_ref(),
        )?))
    })
}

/// stagehand_run_cleanup:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @force: whether to clean up without a readable stamp (see stagehand_cleanup_options_set_force())
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// stagehand_autocleanup() for a caller that holds the sysroot lock already
/// (an update agent that prunes before it pulls): the same cleanup, report
/// and stamp handling (and the retention housekeeping first), without taking
/// or releasing the lock. Without a stamp (and without @force) nothing else is
/// done. When nobody holds the sysroot lock this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written. @sysroot is
/// reloaded first if another process changed it.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_cleanup_report_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_run_cleanup(
    sysroot: *mut OstreeSysroot,
    force: gboolean,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandCleanupReport {
    fallible(c"stagehand_run_cleanup", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        Ok(report(stagehand::run_cleanup(
            &lock,
            force != GFALSE,
            cancellable.as_ref(),
        )?))
    })
}

/// stagehand_cleanup_report_free:
/// @report: (nullable) (transfer full): a report from stagehand_autocleanup() or stagehand_run_cleanup()
///
/// Free @report and the stamp it holds. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_free(report: *mut StagehandCleanupReport) {
    // SAFETY: report is NULL or from Box::into_raw in report().
    unsafe { free_boxed(c"stagehand_cleanup_report_free", report) }
}

/// stagehand_cleanup_report_get_performed:
/// @report: a #StagehandCleanupReport
///
/// Returns: whether a cleanup ran (%FALSE: there was no stamp, nothing was done)
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_performed(
    report: *const StagehandCleanupReport,
) -> gboolean {
    infallible(c"stagehand_cleanup_report_get_performed", GFALSE, |call| {
        Ok(gbool(call.obj(report, c"report != NULL")?.inner.performed))
    })
}

/// stagehand_cleanup_report_get_stamp:
/// @report: a #StagehandCleanupReport
///
/// Returns: (transfer none) (nullable): what the stamp said, owned by @report; %NULL when there was none, or it was unreadable and the cleanup was forced
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_stamp(
    report: *const StagehandCleanupReport,
) -> *const StagehandCleanupStamp {
    infallible(c"stagehand_cleanup_report_get_stamp", ptr::null(), |call| {
        Ok(call
            .obj(report, c"report != NULL")?
            .stamp
            .as_ref()
            .map_or(ptr::null(), |s| s as *const _))
    })
}

/// stagehand_cleanup_report_get_deployments_removed:
/// @report: a #StagehandCleanupReport
///
/// The deployments whose removal this cleanup completed: those the
/// finalization dropped (named in the stamp, and no longer deployed) and any
/// deployment directory this run deleted.
///
/// Returns: (transfer none) (array zero-terminated=1): their identities, owned by @report
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_deployments_removed(
    report: *const StagehandCleanupReport,
) -> *const *const c_char {
    infallible(
        c"stagehand_cleanup_report_get_deployments_removed",
        ptr::null(),
        |call| Ok(call.obj(report, c"report != NULL")?.removed.as_ptr()),
    )
}

/// stagehand_cleanup_report_get_released_pins:
/// @report: a #StagehandCleanupReport
///
/// The pins this run released before cleaning up: those of an ended trial
/// (the retention housekeeping stagehand_mark_good() leaves to the
/// cleanup), or, during a trial, those an interrupted release left half
/// released. A deployment only they kept is among
/// stagehand_cleanup_report_get_deployments_removed().
///
/// Returns: (transfer none) (array zero-terminated=1): their identities, owned by @report
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_released_pins(
    report: *const StagehandCleanupReport,
) -> *const *const c_char {
    infallible(
        c"stagehand_cleanup_report_get_released_pins",
        ptr::null(),
        |call| Ok(call.obj(report, c"report != NULL")?.released_pins.as_ptr()),
    )
}

/// # Safety
/// `report` is NULL or a live report.
unsafe fn counter(
    name: &'static std::ffi::CStr,
    report: *const StagehandCleanupReport,
    get: impl FnOnce(&CleanupReport) -> u64,
) -> guint64 {
    infallible(name, 0, |call| {
        Ok(get(&call.obj(report, c"report != NULL")?.inner))
    })
}

/// stagehand_cleanup_report_get_objects_freed:
/// @report: a #StagehandCleanupReport
///
/// Returns: how many repository objects were deleted (measured from the repository before and after; an underestimate only if another process wrote to it meanwhile without the sysroot lock)
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_objects_freed(
    report: *const StagehandCleanupReport,
) -> guint64 {
    counter(c"stagehand_cleanup_report_get_objects_freed", report, |r| {
        r.objects_freed
    })
}

/// stagehand_cleanup_report_get_bytes_freed:
/// @report: a #StagehandCleanupReport
///
/// Returns: the size of the deleted objects in bytes (file sizes, as libostree counts them)
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_bytes_freed(
    report: *const StagehandCleanupReport,
) -> guint64 {
    counter(c"stagehand_cleanup_report_get_bytes_freed", report, |r| {
        r.bytes_freed
    })
}

/// stagehand_cleanup_report_get_objects_remaining:
/// @report: a #StagehandCleanupReport
///
/// Returns: how many objects the repository holds now
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_objects_remaining(
    report: *const StagehandCleanupReport,
) -> guint64 {
    counter(
        c"stagehand_cleanup_report_get_objects_remaining",
        report,
        |r| r.objects_remaining,
    )
}

/// stagehand_cleanup_report_get_bytes_remaining:
/// @report: a #StagehandCleanupReport
///
/// Returns: their size in bytes
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_bytes_remaining(
    report: *const StagehandCleanupReport,
) -> guint64 {
    counter(
        c"stagehand_cleanup_report_get_bytes_remaining",
        report,
        |r| r.bytes_remaining,
    )
}

/// stagehand_cleanup_report_get_stamp_removed:
/// @report: a #StagehandCleanupReport
///
/// Returns: whether the stamp was removed (%FALSE when there was none, or it changed while the cleanup ran and so describes a newer finalization, which the next run handles)
#[no_mangle]
pub unsafe extern "C" fn stagehand_cleanup_report_get_stamp_removed(
    report: *const StagehandCleanupReport,
) -> gboolean {
    infallible(
        c"stagehand_cleanup_report_get_stamp_removed",
        GFALSE,
        |call| {
            Ok(gbool(
                call.obj(report, c"report != NULL")?.inner.stamp_removed,
            ))
        },
    )
}
