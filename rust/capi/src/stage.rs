//! Staging: the options builder, stage, its result, unstage, and the
//! finalization lock.

use std::ffi::{c_char, CString};
use std::ptr;
use std::time::Duration;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE, GTRUE};
use ostree::ffi::OstreeSysroot;

use crate::guint;
use stagehand::{HealthOptions, HookOptions, Kargs, StageMethod, StageOptions, StageOutcome};

use crate::guard::{cstring, fallible, free_boxed, g_strdup, gbool, infallible, Call, Fail};

/// StagehandStageOptions:
///
/// What stagehand_stage() stages: an opaque builder, so that new options never
/// break the ABI. Create it with stagehand_stage_options_new(), change it with
/// the `stagehand_stage_options_set_*()` functions, free it with
/// stagehand_stage_options_free() (or `g_autoptr(StagehandStageOptions)`).
/// Not thread-safe: use one from one thread at a time.
pub struct StagehandStageOptions {
    // Kept field by field (the Rust builder has no "unset") and turned into
    // a `StageOptions` by stagehand_stage().
    revision: String,
    stateroot: Option<String>,
    origin_refspec: Option<String>,
    kargs: Kargs,
    lock_finalization: bool,
    hooks: HookOptions,
    allow_denylisted: bool,
    health: HealthOptions,
}

impl StagehandStageOptions {
    pub(crate) fn build(&self) -> StageOptions {
        let mut o = StageOptions::new(self.revision.clone())
            .kargs(self.kargs.clone())
            .lock_finalization(self.lock_finalization)
            .hooks(self.hooks.clone())
            .allow_denylisted(self.allow_denylisted)
            .health(self.health.clone());
        if let Some(s) = &self.stateroot {
            o = o.stateroot(s.clone());
        }
        if let Some(r) = &self.origin_refspec {
            o = o.origin_refspec(r.clone());
        }
        o
    }
}

/// StagehandStageMethod:
/// @STAGEHAND_STAGE_METHOD_STAGED: staged on a booted system; `ostree-finalize-staged.service` finalizes it at shutdown
/// @STAGEHAND_STAGE_METHOD_DEPLOYED: fully deployed at once, because the sysroot is not the booted one (image builds, tests)
///
/// How stagehand_stage() wrote the new deployment.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandStageMethod {
    Staged = 0,
    Deployed = 1,
}

/// StagehandStageResult:
///
/// What stagehand_stage() did: an opaque object read with the
/// `stagehand_stage_result_get_*()` functions and freed with
/// stagehand_stage_result_free() (or `g_autoptr(StagehandStageResult)`).
pub struct StagehandStageResult {
    outcome: StageOutcome,
    stateroot: CString,
    checksum: CString,
}

/// Borrow an object the caller passed back, checking it is not NULL.
///
/// # Safety
/// `p` is NULL or points to a live object this library created.
unsafe fn mut_ref<'a, T>(
    call: &Call,
    p: *mut T,
    expr: &'static std::ffi::CStr,
) -> Result<&'a mut T, Fail> {
    call.non_null(p, expr)?;
    Ok(&mut *p)
}

/// Like [`mut_ref`], shared.
///
/// # Safety
/// `p` is NULL or points to a live object this library created.
unsafe fn const_ref<'a, T>(
    call: &Call,
    p: *const T,
    expr: &'static std::ffi::CStr,
) -> Result<&'a T, Fail> {
    call.non_null(p, expr)?;
    Ok(&*p)
}

/// stagehand_stage_options_new:
/// @revision: the ref or commit checksum to stage, in the sysroot repository
///
/// Start the options of a stagehand_stage() call. The defaults: the booted
/// stateroot (not booted: the default deployment's), the kernel arguments of
/// the merge deployment, the origin refspec @revision when it is a ref (for a
/// checksum: the merge deployment's origin, so later upgrades keep following
/// the same ref), finalization unlocked afterwards, pre-upgrade hooks on.
///
/// Returns: (transfer full): new options; free with stagehand_stage_options_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_new(
    revision: *const c_char,
) -> *mut StagehandStageOptions {
    infallible(c"stagehand_stage_options_new", ptr::null_mut(), |call| {
        let revision = call.str(
            revision,
            c"revision != NULL",
            c"g_utf8_validate (revision, -1, NULL)",
        )?;
        Ok(Box::into_raw(Box::new(StagehandStageOptions {
            revision: revision.to_string(),
            stateroot: None,
            origin_refspec: None,
            kargs: Kargs::Inherit,
            lock_finalization: false,
            hooks: HookOptions::default(),
            allow_denylisted: false,
            health: HealthOptions::default(),
        })))
    })
}

/// stagehand_stage_options_free:
/// @options: (nullable) (transfer full): options from stagehand_stage_options_new()
///
/// Free @options. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_free(options: *mut StagehandStageOptions) {
    // SAFETY: options is NULL or from Box::into_raw in stagehand_stage_options_new.
    unsafe { free_boxed(c"stagehand_stage_options_free", options) }
}

/// stagehand_stage_options_set_stateroot:
/// @options: a #StagehandStageOptions
/// @stateroot: (nullable): the stateroot (ostree's "osname") to deploy into, or %NULL for the default
///
/// Deploy into @stateroot instead of the booted one. The stateroot must exist
/// (`ostree admin os-init`); stagehand_stage() fails with
/// %STAGEHAND_ERROR_UNKNOWN_STATEROOT otherwise.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_stateroot(
    options: *mut StagehandStageOptions,
    stateroot: *const c_char,
) {
    infallible(c"stagehand_stage_options_set_stateroot", (), |call| {
        let options = mut_ref(call, options, c"options != NULL")?;
        let stateroot = call.opt_str(stateroot, c"g_utf8_validate (stateroot, -1, NULL)")?;
        options.stateroot = stateroot.map(str::to_string);
        Ok(())
    })
}

/// stagehand_stage_options_set_origin_refspec:
/// @options: a #StagehandStageOptions
/// @refspec: (nullable): the refspec to write into the new deployment's origin file, or %NULL for the default
///
/// The refspec later upgrades follow (`remote:ref` or `ref`). By default it is
/// the revision when that is a ref, or the merge deployment's origin when the
/// revision is a checksum.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_origin_refspec(
    options: *mut StagehandStageOptions,
    refspec: *const c_char,
) {
    infallible(c"stagehand_stage_options_set_origin_refspec", (), |call| {
        let options = mut_ref(call, options, c"options != NULL")?;
        let refspec = call.opt_str(refspec, c"g_utf8_validate (refspec, -1, NULL)")?;
        options.origin_refspec = refspec.map(str::to_string);
        Ok(())
    })
}

/// stagehand_stage_options_set_kargs_append:
/// @options: a #StagehandStageOptions
/// @kargs: (nullable) (array zero-terminated=1): kernel arguments such as `"quiet"` or `"console=ttyS0"`, or %NULL
///
/// Use the merge deployment's kernel arguments, then @kargs: a `key=value`
/// here replaces an inherited `key=...`. %NULL or an empty array inherits the
/// arguments unchanged (the default).
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_kargs_append(
    options: *mut StagehandStageOptions,
    kargs: *const *const c_char,
) {
    infallible(c"stagehand_stage_options_set_kargs_append", (), |call| {
        let options = mut_ref(call, options, c"options != NULL")?;
        let kargs = call.opt_strv(kargs, c"g_utf8_validate (kargs[i], -1, NULL)")?;
        options.kargs = match kargs {
            Some(k) if !k.is_empty() => Kargs::Append(k),
            _ => Kargs::Inherit,
        };
        Ok(())
    })
}

/// stagehand_stage_options_set_kargs_replace:
/// @options: a #StagehandStageOptions
/// @kargs: (array zero-terminated=1): the kernel arguments, exactly; an empty array for none
///
/// Do not inherit kernel arguments: the new deployment gets exactly @kargs.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_kargs_replace(
    options: *mut StagehandStageOptions,
    kargs: *const *const c_char,
) {
    infallible(c"stagehand_stage_options_set_kargs_replace", (), |call| {
        let options = mut_ref(call, options, c"options != NULL")?;
        call.non_null(kargs, c"kargs != NULL")?;
        let kargs = call
            .opt_strv(kargs, c"g_utf8_validate (kargs[i], -1, NULL)")?
            .unwrap_or_default();
        options.kargs = Kargs::Replace(kargs);
        Ok(())
    })
}

/// stagehand_stage_options_set_lock_finalization:
/// @options: a #StagehandStageOptions
/// @lock: whether finalization stays locked after staging
///
/// With %TRUE the staged deployment stays staged across shutdowns (finalize
/// leaves it alone) until stagehand_unlock_finalization() is called: for
/// agents that download and stage early but let a person or a maintenance
/// window decide when the update takes effect. Default: %FALSE.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_lock_finalization(
    options: *mut StagehandStageOptions,
    lock: gboolean,
) {
    infallible(
        c"stagehand_stage_options_set_lock_finalization",
        (),
        |call| {
            let options = mut_ref(call, options, c"options != NULL")?;
            options.lock_finalization = lock != GFALSE;
            Ok(())
        },
    )
}

/// stagehand_stage_options_set_hooks_enabled:
/// @options: a #StagehandStageOptions
/// @enabled: whether pre-upgrade hooks run
///
/// Turn the pre-upgrade hooks shipped in the new deployment on (the default)
/// or off. Turning them off is for administrators who know why; it is logged.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_hooks_enabled(
    options: *mut StagehandStageOptions,
    enabled: gboolean,
) {
    infallible(c"stagehand_stage_options_set_hooks_enabled", (), |call| {
        let options = mut_ref(call, options, c"options != NULL")?;
        options.hooks = options.hooks.clone().set_enabled(enabled != GFALSE);
        Ok(())
    })
}

/// stagehand_stage_options_set_hook_timeout:
/// @options: a #StagehandStageOptions
/// @timeout_seconds: how long one pre-upgrade hook may run, in seconds (more than 0)
///
/// A hook still running after @timeout_seconds is killed with its whole
/// process tree and counts as a veto. Default: 300 seconds.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_hook_timeout(
    options: *mut StagehandStageOptions,
    timeout_seconds: guint,
) {
    infallible(c"stagehand_stage_options_set_hook_timeout", (), |call| {
        let options = mut_ref(call, options, c"options != NULL")?;
        call.require(timeout_seconds > 0, c"timeout_seconds > 0")?;
        options.hooks = options
            .hooks
            .clone()
            .set_timeout(Duration::from_secs(timeout_seconds.into()));
        Ok(())
    })
}

/// stagehand_stage_options_set_allow_denylisted:
/// @options: a #StagehandStageOptions
/// @allow: whether a denylisted commit may be staged
///
/// A commit that failed before (marked bad, or fallen back from at boot) is on
/// the denylist, and staging it again fails with
/// %STAGEHAND_ERROR_DENYLISTED before anything is written, so an update agent
/// does not retry a bad update by itself ("flapping"). %TRUE overrides that
/// for a person's deliberate retry: the deployment starts a new trial, and
/// stagehand_mark_good() on it takes the commit off the denylist. Default
/// %FALSE.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_allow_denylisted(
    options: *mut StagehandStageOptions,
    allow: gboolean,
) {
    infallible(
        c"stagehand_stage_options_set_allow_denylisted",
        (),
        |call| {
            let options = mut_ref(call, options, c"options != NULL")?;
            options.allow_denylisted = allow != GFALSE;
            Ok(())
        },
    )
}

/// stagehand_stage_options_set_keep_known_good:
/// @options: a #StagehandStageOptions
/// @keep: whether to keep two known-good deployments during the trial
///
/// While the new deployment is on trial, stagehand pins the two newest
/// known-good deployments so that finalization and cleanup cannot drop them
/// (the default, %TRUE): if the new one fails and the previous one turns out
/// bad too, a good one is left. It costs one more deployment (and possibly
/// one more kernel in `/boot`) during the trial. %FALSE releases the pins
/// stagehand holds and keeps libostree's usual two deployments.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_options_set_keep_known_good(
    options: *mut StagehandStageOptions,
    keep: gboolean,
) {
    infallible(c"stagehand_stage_options_set_keep_known_good", (), |call| {
        let options = mut_ref(call, options, c"options != NULL")?;
        options.health = options.health.clone().keep_known_good(keep != GFALSE);
        Ok(())
    })
}

/// stagehand_stage:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @options: what to stage
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Stage the revision of @options: on a booted system the new deployment is
/// staged and `ostree-finalize-staged.service` finalizes it at shutdown, so
/// changes made to `/etc` until then are kept; on a sysroot that is not the
/// booted one (image builds) it is deployed fully at once. Pre-upgrade hooks
/// run before it may take effect (finalization stays locked while they run),
/// and a veto removes it again.
///
/// Before anything is written, the revision must resolve to a complete,
/// bootable commit, the stateroot must exist and the sysroot must be
/// writable; each failure has its own code (%STAGEHAND_ERROR_UNKNOWN_REVISION,
/// %STAGEHAND_ERROR_NOT_BOOTABLE, %STAGEHAND_ERROR_UNKNOWN_STATEROOT,
/// %STAGEHAND_ERROR_READ_ONLY, ...) and leaves the disk as it was. Staging the
/// same commit with the same kernel arguments again writes nothing
/// (stagehand_stage_result_get_unchanged() is %TRUE).
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock() or
/// stagehand_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written. @sysroot is reloaded first if another process
/// changed it since it was loaded, and is reloaded afterwards.
///
/// Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_stage_result_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage(
    sysroot: *mut OstreeSysroot,
    options: *const StagehandStageOptions,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandStageResult {
    fallible(c"stagehand_stage", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let options = const_ref(call, options, c"options != NULL")?;
        let cancellable = call.cancellable(cancellable)?;
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let outcome = stagehand::stage(&lock, &options.build(), cancellable.as_ref())?;
        Ok(Box::into_raw(Box::new(StagehandStageResult {
            stateroot: cstring(&outcome.deployment.stateroot),
            checksum: cstring(&outcome.deployment.checksum),
            outcome,
        })))
    })
}

/// stagehand_stage_result_free:
/// @result: (nullable) (transfer full): a result from stagehand_stage()
///
/// Free @result. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_free(result: *mut StagehandStageResult) {
    // SAFETY: result is NULL or from Box::into_raw in stagehand_stage.
    unsafe { free_boxed(c"stagehand_stage_result_free", result) }
}

/// stagehand_stage_result_get_stateroot:
/// @result: a #StagehandStageResult
///
/// Returns: (transfer none): the stateroot of the new deployment, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_get_stateroot(
    result: *const StagehandStageResult,
) -> *const c_char {
    infallible(
        c"stagehand_stage_result_get_stateroot",
        ptr::null(),
        |call| {
            Ok(const_ref(call, result, c"result != NULL")?
                .stateroot
                .as_ptr())
        },
    )
}

/// stagehand_stage_result_get_checksum:
/// @result: a #StagehandStageResult
///
/// Returns: (transfer none): the commit checksum of the new deployment, owned by @result
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_get_checksum(
    result: *const StagehandStageResult,
) -> *const c_char {
    infallible(
        c"stagehand_stage_result_get_checksum",
        ptr::null(),
        |call| {
            Ok(const_ref(call, result, c"result != NULL")?
                .checksum
                .as_ptr())
        },
    )
}

/// stagehand_stage_result_get_serial:
/// @result: a #StagehandStageResult
///
/// Returns: the deployment serial of the new deployment (which tells apart deployments of one commit)
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_get_serial(
    result: *const StagehandStageResult,
) -> guint {
    infallible(c"stagehand_stage_result_get_serial", 0, |call| {
        Ok(const_ref(call, result, c"result != NULL")?
            .outcome
            .deployment
            .serial)
    })
}

/// stagehand_stage_result_dup_id:
/// @result: a #StagehandStageResult
///
/// The stable identity of the new deployment, `stateroot:checksum.serial`:
/// unlike an index into the deployment list, it names the same deployment for
/// its whole life. Other stagehand functions take it where they need a
/// deployment.
///
/// Returns: (transfer full): the identity; free with g_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_dup_id(
    result: *const StagehandStageResult,
) -> *mut c_char {
    infallible(c"stagehand_stage_result_dup_id", ptr::null_mut(), |call| {
        let result = const_ref(call, result, c"result != NULL")?;
        Ok(g_strdup(&result.outcome.deployment.to_string()))
    })
}

/// stagehand_stage_result_get_method:
/// @result: a #StagehandStageResult
///
/// Returns: whether the deployment was staged or deployed fully
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_get_method(
    result: *const StagehandStageResult,
) -> StagehandStageMethod {
    infallible(
        c"stagehand_stage_result_get_method",
        StagehandStageMethod::Staged,
        |call| {
            Ok(
                match const_ref(call, result, c"result != NULL")?.outcome.method {
                    StageMethod::Staged => StagehandStageMethod::Staged,
                    StageMethod::Deployed => StagehandStageMethod::Deployed,
                },
            )
        },
    )
}

/// stagehand_stage_result_get_unchanged:
/// @result: a #StagehandStageResult
///
/// Returns: %TRUE when the same commit with the same kernel arguments was
///   already staged (not booted: already the default deployment), so nothing
///   was written
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_get_unchanged(
    result: *const StagehandStageResult,
) -> gboolean {
    infallible(c"stagehand_stage_result_get_unchanged", GFALSE, |call| {
        Ok(gbool(
            const_ref(call, result, c"result != NULL")?
                .outcome
                .unchanged,
        ))
    })
}

/// stagehand_stage_result_get_finalization_locked:
/// @result: a #StagehandStageResult
///
/// Returns: whether finalization of the staged deployment was locked when
///   stagehand_stage() returned
#[no_mangle]
pub unsafe extern "C" fn stagehand_stage_result_get_finalization_locked(
    result: *const StagehandStageResult,
) -> gboolean {
    infallible(
        c"stagehand_stage_result_get_finalization_locked",
        GFALSE,
        |call| {
            Ok(gbool(
                const_ref(call, result, c"result != NULL")?
                    .outcome
                    .finalization_locked,
            ))
        },
    )
}

/// stagehand_unstage:
/// @sysroot: a #OstreeSysroot, loaded and locked by the caller
/// @out_unstaged_id: (out) (optional) (nullable) (transfer full): return location for the identity (`stateroot:checksum.serial`) of the removed deployment, %NULL when nothing was staged; free with g_free()
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Remove the staged deployment, and the finalization lock with it; the
/// booted and rollback deployments are untouched. Nothing staged is not an
/// error (a stray finalization lock is still removed).
///
/// The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
/// %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
/// @sysroot is reloaded first if another process changed it, and is reloaded
/// afterwards.
///
/// Returns: %TRUE on success, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_unstage(
    sysroot: *mut OstreeSysroot,
    out_unstaged_id: *mut *mut c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_unstage", error, GFALSE, |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        let lock = call.locked(&sysroot)?;
        lock.reload(cancellable.as_ref())?;
        let removed = stagehand::unstage(&lock, cancellable.as_ref())?;
        if !out_unstaged_id.is_null() {
            // SAFETY: a non-NULL out parameter points to writable storage.
            unsafe {
                *out_unstaged_id = match removed {
                    Some(id) => g_strdup(&id.to_string()),
                    None => ptr::null_mut(),
                }
            };
        }
        Ok(GTRUE)
    })
}

/// stagehand_lock_finalization:
/// @sysroot: a loaded #OstreeSysroot, which must be the booted one
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Lock finalization: until stagehand_unlock_finalization() (or a reboot:
/// the lock lives in `/run`, as libostree expects), shutting down leaves the
/// staged deployment staged instead of making it the default. Locking before
/// anything is staged is allowed: the next staged deployment is then held.
/// Fails with %STAGEHAND_ERROR_NOT_BOOTED when @sysroot is not the booted
/// system's. The sysroot lock is not needed.
///
/// Returns: %TRUE on success, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_lock_finalization(
    sysroot: *mut OstreeSysroot,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_lock_finalization", error, GFALSE, |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        stagehand::sysroot::reload_if_changed(&sysroot, cancellable.as_ref())?;
        stagehand::lock_finalization(&sysroot)?;
        Ok(GTRUE)
    })
}

/// stagehand_unlock_finalization:
/// @sysroot: a loaded #OstreeSysroot
/// @out_was_locked: (out) (optional): return location for whether finalization was locked
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Unlock finalization: the staged deployment (if any) is finalized at the
/// next shutdown. Unlocking what is not locked is not an error. The sysroot
/// lock is not needed.
///
/// Returns: %TRUE on success, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_unlock_finalization(
    sysroot: *mut OstreeSysroot,
    out_was_locked: *mut gboolean,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_unlock_finalization", error, GFALSE, |call| {
        let _sysroot = call.sysroot(sysroot)?;
        let _cancellable = call.cancellable(cancellable)?;
        let was_locked = stagehand::unlock_finalization()?;
        if !out_was_locked.is_null() {
            // SAFETY: a non-NULL out parameter points to writable storage.
            unsafe { *out_was_locked = gbool(was_locked) };
        }
        Ok(GTRUE)
    })
}

/// stagehand_is_finalization_locked:
/// @sysroot: a loaded #OstreeSysroot
///
/// Whether finalization of the staged deployment is locked, by
/// stagehand_lock_finalization(), a stagehand_stage() with
/// stagehand_stage_options_set_lock_finalization(), or any other tool that
/// uses libostree's lock file.
///
/// Returns: %TRUE when finalization is locked
#[no_mangle]
pub unsafe extern "C" fn stagehand_is_finalization_locked(sysroot: *mut OstreeSysroot) -> gboolean {
    infallible(c"stagehand_is_finalization_locked", GFALSE, |call| {
        // SAFETY: the caller passes a GObject or NULL.
        let _sysroot = unsafe { call.sysroot(sysroot)? };
        Ok(gbool(stagehand::finalization_locked()))
    })
}
