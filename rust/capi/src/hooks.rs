//! Pre-upgrade hooks (docs/hooks.md): the dry run, which reports every hook's
//! outcome, and recovery after an agent died while hooks ran. A veto during
//! stagehand_stage() is its %STAGEHAND_ERROR_HOOK_VETOED error (an
//! unacceptable hook file %STAGEHAND_ERROR_HOOK_INVALID).

use std::ffi::{c_char, c_int, CString};
use std::ptr;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE, GTRUE};
use ostree::ffi::OstreeSysroot;

use crate::guint;
use crate::guint64;
use stagehand::{hooks, HookEnd, HookOrigin, HookRun};

use crate::guard::{cstring, fallible, free_boxed, g_strdup, gbool, infallible, opt_ptr};
use crate::stage::StagehandStageOptions;

/// StagehandHookOrigin:
/// @STAGEHAND_HOOK_ORIGIN_VENDOR: shipped in the new deployment, `/usr/lib/stagehand/pre-upgrade.d/`
/// @STAGEHAND_HOOK_ORIGIN_ADMIN: installed by the local administrator, `/etc/stagehand/pre-upgrade.d/` of the booted system
///
/// Who shipped a hook.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandHookOrigin {
    Vendor = 0,
    Admin = 1,
}

/// StagehandHookEnd:
/// @STAGEHAND_HOOK_END_PASSED: it exited with status 0
/// @STAGEHAND_HOOK_END_EXITED: it exited with a non-zero status (stagehand_hook_run_get_exit_status())
/// @STAGEHAND_HOOK_END_SIGNALED: it was killed by a signal (stagehand_hook_run_get_signal())
/// @STAGEHAND_HOOK_END_TIMED_OUT: it ran past its timeout; its whole process tree was killed
/// @STAGEHAND_HOOK_END_SPAWN_FAILED: it could not be started at all
///
/// How a hook ended; every value but %STAGEHAND_HOOK_END_PASSED is a veto.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandHookEnd {
    Passed = 0,
    Exited = 1,
    Signaled = 2,
    TimedOut = 3,
    SpawnFailed = 4,
}

/// StagehandHookRun:
///
/// How one hook ran in stagehand_hooks_check(); owned by its
/// #StagehandHookReport.
pub struct StagehandHookRun {
    name: CString,
    path: CString,
    origin: StagehandHookOrigin,
    passed: bool,
    end: StagehandHookEnd,
    exit_status: c_int,
    signal: c_int,
    description: Option<CString>,
    duration_ms: guint64,
    output_bytes: guint64,
    output_tail: CString,
}

impl StagehandHookRun {
    fn of(run: &HookRun) -> StagehandHookRun {
        let (end, exit_status, signal) = match &run.end {
            None => (StagehandHookEnd::Passed, 0, 0),
            Some(HookEnd::Exited(c)) => (StagehandHookEnd::Exited, *c, 0),
            Some(HookEnd::Signaled(n)) => (StagehandHookEnd::Signaled, 0, *n),
            Some(HookEnd::TimedOut(_)) => (StagehandHookEnd::TimedOut, 0, 0),
            Some(HookEnd::SpawnFailed(_)) => (StagehandHookEnd::SpawnFailed, 0, 0),
        };
        StagehandHookRun {
            name: cstring(&run.name),
            path: cstring(&run.path),
            origin: match run.origin {
                HookOrigin::Vendor => StagehandHookOrigin::Vendor,
                HookOrigin::Admin => StagehandHookOrigin::Admin,
            },
            passed: run.passed,
            end,
            exit_status,
            signal,
            description: run.end.as_ref().map(|e| cstring(&e.to_string())),
            duration_ms: run.duration_ms,
            output_bytes: run.output_bytes,
            output_tail: cstring(&run.output_tail),
        }
    }
}

/// StagehandHookReport:
///
/// What stagehand_hooks_check() found: every hook that applies to the
/// revision, in the order they ran; freed with stagehand_hook_report_free()
/// (or `g_autoptr(StagehandHookReport)`).
pub struct StagehandHookReport {
    stateroot: CString,
    checksum: CString,
    version: Option<CString>,
    old: Option<CString>,
    passed: bool,
    hooks: Vec<StagehandHookRun>,
}

/// stagehand_hooks_check:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @options: what would be staged (revision, stateroot, hook timeout)
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// A dry run of the pre-upgrade hooks: check the revision out as staging
/// would, run **every** hook (also after a veto, to report them all), remove
/// the checkout and report each outcome. Staged deployments, the
/// finalization lock and the bootloader are untouched. A veto is not an
/// error here: stagehand_hook_report_get_passed() says whether all passed.
/// Errors: the revision's (%STAGEHAND_ERROR_UNKNOWN_REVISION, ...), an
/// unacceptable hook file %STAGEHAND_ERROR_HOOK_INVALID, cancellation
/// %STAGEHAND_ERROR_CANCELLED (the running hook's process tree is killed).
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: (transfer full) (nullable): the report, or %NULL with @error set; free with stagehand_hook_report_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_hooks_check(
    sysroot: *mut OstreeSysroot,
    options: *const StagehandStageOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandHookReport {
    fallible(c"stagehand_hooks_check", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let options = call.obj(options, c"options != NULL")?;
        let cancellable = call.cancellable(cancellable)?;
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let r = hooks::check(&lock, &options.build(), cancellable.as_ref())?;
        Ok(Box::into_raw(Box::new(StagehandHookReport {
            stateroot: cstring(&r.stateroot),
            checksum: cstring(&r.checksum),
            version: r.version.as_deref().map(cstring),
            old: r.old.as_ref().map(|id| cstring(&id.to_string())),
            passed: r.passed,
            hooks: r.hooks.iter().map(StagehandHookRun::of).collect(),
        })))
    })
}

/// stagehand_hooks_recover:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @out_removed_id: (out) (optional) (nullable) (transfer full): return location for the identity of the unvetted staged deployment removed, %NULL when there was none; free with g_free()
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Remove what a staging that died while its hooks ran left behind: the
/// unvetted staged deployment with its finalization lock and record, and any
/// deployment checkout not in the deployment list. A vetted staged
/// deployment is left alone. (stagehand_stage() does this by itself first.)
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
///
/// Returns: %TRUE on success, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_hooks_recover(
    sysroot: *mut OstreeSysroot,
    out_removed_id: *mut *mut c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_hooks_recover", error, GFALSE, |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let out = hooks::recover(&lock, cancellable.as_ref())?;
        if !out_removed_id.is_null() {
            // SAFETY: a non-NULL out parameter points to writable storage.
            unsafe {
                *out_removed_id = out
                    .removed
                    .as_ref()
                    .map_or(ptr::null_mut(), |id| g_strdup(&id.to_string()));
            }
        }
        Ok(GTRUE)
    })
}

/// stagehand_hook_report_free:
/// @report: (nullable) (transfer full): a report from stagehand_hooks_check()
///
/// Free @report and the #StagehandHookRun it holds. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_free(report: *mut StagehandHookReport) {
    // SAFETY: report is NULL or from Box::into_raw in stagehand_hooks_check.
    unsafe { free_boxed(c"stagehand_hook_report_free", report) }
}

/// stagehand_hook_report_get_n_hooks:
/// @report: a #StagehandHookReport
///
/// Returns: how many hooks ran (0 when the revision ships none)
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_get_n_hooks(
    report: *const StagehandHookReport,
) -> guint {
    infallible(c"stagehand_hook_report_get_n_hooks", 0, |call| {
        Ok(call.obj(report, c"report != NULL")?.hooks.len() as guint)
    })
}

/// stagehand_hook_report_get_hook:
/// @report: a #StagehandHookReport
/// @index: which, from 0, in the order they ran
///
/// Returns: (transfer none): how that hook ran, owned by @report
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_get_hook(
    report: *const StagehandHookReport,
    index: guint,
) -> *const StagehandHookRun {
    infallible(c"stagehand_hook_report_get_hook", ptr::null(), |call| {
        let h = call
            .obj(report, c"report != NULL")?
            .hooks
            .get(index as usize);
        call.require(
            h.is_some(),
            c"index < stagehand_hook_report_get_n_hooks (report)",
        )?;
        Ok(h.map_or(ptr::null(), |h| h as *const _))
    })
}

/// stagehand_hook_report_get_stateroot:
/// @report: a #StagehandHookReport
///
/// Returns: (transfer none): the stateroot the revision would be deployed into, owned by @report
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_get_stateroot(
    report: *const StagehandHookReport,
) -> *const c_char {
    infallible(
        c"stagehand_hook_report_get_stateroot",
        ptr::null(),
        |call| Ok(call.obj(report, c"report != NULL")?.stateroot.as_ptr()),
    )
}

/// stagehand_hook_report_get_checksum:
/// @report: a #StagehandHookReport
///
/// Returns: (transfer none): the commit checked, owned by @report
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_get_checksum(
    report: *const StagehandHookReport,
) -> *const c_char {
    infallible(c"stagehand_hook_report_get_checksum", ptr::null(), |call| {
        Ok(call.obj(report, c"report != NULL")?.checksum.as_ptr())
    })
}

/// stagehand_hook_report_get_version:
/// @report: a #StagehandHookReport
///
/// Returns: (transfer none) (nullable): the commit's `version` metadata, %NULL if it has none, owned by @report
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_get_version(
    report: *const StagehandHookReport,
) -> *const c_char {
    infallible(c"stagehand_hook_report_get_version", ptr::null(), |call| {
        Ok(opt_ptr(&call.obj(report, c"report != NULL")?.version))
    })
}

/// stagehand_hook_report_get_old:
/// @report: a #StagehandHookReport
///
/// Returns: (transfer none) (nullable): the identity of the deployment it would upgrade from (the booted one, else the merge deployment), %NULL if none, owned by @report
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_get_old(
    report: *const StagehandHookReport,
) -> *const c_char {
    infallible(c"stagehand_hook_report_get_old", ptr::null(), |call| {
        Ok(opt_ptr(&call.obj(report, c"report != NULL")?.old))
    })
}

/// stagehand_hook_report_get_passed:
/// @report: a #StagehandHookReport
///
/// Returns: whether every hook passed (%TRUE when there are none)
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_report_get_passed(
    report: *const StagehandHookReport,
) -> gboolean {
    infallible(c"stagehand_hook_report_get_passed", GFALSE, |call| {
        Ok(gbool(call.obj(report, c"report != NULL")?.passed))
    })
}

/// stagehand_hook_run_get_name:
/// @run: a #StagehandHookRun
///
/// Returns: (transfer none): the file name, owned by @run
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_name(
    run: *const StagehandHookRun,
) -> *const c_char {
    infallible(c"stagehand_hook_run_get_name", ptr::null(), |call| {
        Ok(call.obj(run, c"run != NULL")?.name.as_ptr())
    })
}

/// stagehand_hook_run_get_path:
/// @run: a #StagehandHookRun
///
/// Returns: (transfer none): the path as its system sees it (`/usr/lib/stagehand/pre-upgrade.d/NAME`), owned by @run
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_path(
    run: *const StagehandHookRun,
) -> *const c_char {
    infallible(c"stagehand_hook_run_get_path", ptr::null(), |call| {
        Ok(call.obj(run, c"run != NULL")?.path.as_ptr())
    })
}

/// stagehand_hook_run_get_origin:
/// @run: a #StagehandHookRun
///
/// Returns: who shipped it
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_origin(
    run: *const StagehandHookRun,
) -> StagehandHookOrigin {
    infallible(
        c"stagehand_hook_run_get_origin",
        StagehandHookOrigin::Vendor,
        |call| Ok(call.obj(run, c"run != NULL")?.origin),
    )
}

/// stagehand_hook_run_get_passed:
/// @run: a #StagehandHookRun
///
/// Returns: whether it passed (exit status 0)
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_passed(run: *const StagehandHookRun) -> gboolean {
    infallible(c"stagehand_hook_run_get_passed", GFALSE, |call| {
        Ok(gbool(call.obj(run, c"run != NULL")?.passed))
    })
}

/// stagehand_hook_run_get_end:
/// @run: a #StagehandHookRun
///
/// Returns: how it ended
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_end(
    run: *const StagehandHookRun,
) -> StagehandHookEnd {
    infallible(
        c"stagehand_hook_run_get_end",
        StagehandHookEnd::Passed,
        |call| Ok(call.obj(run, c"run != NULL")?.end),
    )
}

/// stagehand_hook_run_get_exit_status:
/// @run: a #StagehandHookRun
///
/// Returns: its exit status with %STAGEHAND_HOOK_END_EXITED, else 0
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_exit_status(run: *const StagehandHookRun) -> c_int {
    infallible(c"stagehand_hook_run_get_exit_status", 0, |call| {
        Ok(call.obj(run, c"run != NULL")?.exit_status)
    })
}

/// stagehand_hook_run_get_signal:
/// @run: a #StagehandHookRun
///
/// Returns: the signal that killed it with %STAGEHAND_HOOK_END_SIGNALED, else 0
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_signal(run: *const StagehandHookRun) -> c_int {
    infallible(c"stagehand_hook_run_get_signal", 0, |call| {
        Ok(call.obj(run, c"run != NULL")?.signal)
    })
}

/// stagehand_hook_run_get_description:
/// @run: a #StagehandHookRun
///
/// Returns: (transfer none) (nullable): how it vetoed, as the error message says it (`exit status 3`), %NULL when it passed, owned by @run
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_description(
    run: *const StagehandHookRun,
) -> *const c_char {
    infallible(c"stagehand_hook_run_get_description", ptr::null(), |call| {
        Ok(opt_ptr(&call.obj(run, c"run != NULL")?.description))
    })
}

/// stagehand_hook_run_get_duration_ms:
/// @run: a #StagehandHookRun
///
/// Returns: its wall time in milliseconds
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_duration_ms(
    run: *const StagehandHookRun,
) -> guint64 {
    infallible(c"stagehand_hook_run_get_duration_ms", 0, |call| {
        Ok(call.obj(run, c"run != NULL")?.duration_ms)
    })
}

/// stagehand_hook_run_get_output_bytes:
/// @run: a #StagehandHookRun
///
/// Returns: how many bytes it wrote to stdout and stderr together
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_output_bytes(
    run: *const StagehandHookRun,
) -> guint64 {
    infallible(c"stagehand_hook_run_get_output_bytes", 0, |call| {
        Ok(call.obj(run, c"run != NULL")?.output_bytes)
    })
}

/// stagehand_hook_run_get_output_tail:
/// @run: a #StagehandHookRun
///
/// Returns: (transfer none): the last 8 KiB of that output, owned by @run
#[no_mangle]
pub unsafe extern "C" fn stagehand_hook_run_get_output_tail(
    run: *const StagehandHookRun,
) -> *const c_char {
    infallible(c"stagehand_hook_run_get_output_tail", ptr::null(), |call| {
        Ok(call.obj(run, c"run != NULL")?.output_tail.as_ptr())
    })
}
