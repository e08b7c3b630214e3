//! The interrupted-operation guard (docs/guard.md): begin, commit (with a
//! token, or one resumed by name and digest), status, reset, and the file
//! digest helper.
//!
//! This module is `redline` because `guard` is the crate's entry-point
//! machinery; the C functions are `stagehand_guard_*`, as the command is
//! `stagehand guard`.

use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::ptr;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE, GTRUE};

use stagehand::redline::{self, Phase, Replaced, Stamp, Token};

use crate::guard::{
    check_cancelled, cstring, fallible, free_boxed, g_strdup, gbool, infallible, opt_ptr, Call,
    Fail,
};

/// StagehandGuardPhase:
/// @STAGEHAND_GUARD_PHASE_STARTED: the red line was crossed and the step has not completed (yet, or ever)
/// @STAGEHAND_GUARD_PHASE_COMPLETE: the step completed
///
/// Where a guarded step is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandGuardPhase {
    Started = 0,
    Complete = 1,
}

/// StagehandGuardStamp:
///
/// The record of a guarded step, from stagehand_guard_status() or
/// stagehand_guard_commit() (freed with stagehand_guard_stamp_free() or
/// `g_autoptr(StagehandGuardStamp)`), or owned by a #StagehandGuardToken. It
/// does not change when the file does.
pub struct StagehandGuardStamp {
    name: CString,
    phase: StagehandGuardPhase,
    digest: Option<CString>,
    run: CString,
    started: CString,
    completed: Option<CString>,
}

impl StagehandGuardStamp {
    fn new(s: &Stamp) -> StagehandGuardStamp {
        StagehandGuardStamp {
            name: cstring(&s.name),
            phase: match s.phase {
                Phase::Started => StagehandGuardPhase::Started,
                Phase::Complete => StagehandGuardPhase::Complete,
            },
            digest: s.digest.as_deref().map(cstring),
            run: cstring(&s.run),
            started: cstring(&s.started),
            completed: s.completed.as_deref().map(cstring),
        }
    }

    fn boxed(s: &Stamp) -> *mut StagehandGuardStamp {
        Box::into_raw(Box::new(StagehandGuardStamp::new(s)))
    }
}

/// StagehandGuardToken:
///
/// Proof that a guarded step is *started*, from stagehand_guard_begin() (this
/// process crossed the red line) or stagehand_guard_resume() (another one did):
/// what stagehand_guard_commit() takes. Freed with stagehand_guard_token_free()
/// (or `g_autoptr(StagehandGuardToken)`); freeing it does nothing to the
/// stamp, on purpose: a step that is not committed stays started, which is
/// what makes the next begin fail with %STAGEHAND_ERROR_INTERRUPTED.
pub struct StagehandGuardToken {
    // Taken by stagehand_guard_commit(): the Rust commit consumes the token.
    inner: Option<Token>,
    stamp: StagehandGuardStamp,
    path: CString,
    replaced_stamp: Option<StagehandGuardStamp>,
    replaced_unreadable: Option<CString>,
}

fn token(t: Token) -> *mut StagehandGuardToken {
    let (replaced_stamp, replaced_unreadable) = match t.replaced() {
        None => (None, None),
        Some(Replaced::Stamp(s)) => (Some(StagehandGuardStamp::new(s)), None),
        Some(Replaced::Unreadable(why)) => (None, Some(cstring(why))),
    };
    Box::into_raw(Box::new(StagehandGuardToken {
        stamp: StagehandGuardStamp::new(t.stamp()),
        path: path_cstring(&t.path()),
        replaced_stamp,
        replaced_unreadable,
        inner: Some(t),
    }))
}

fn path_cstring(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    // Paths from the OS never hold NUL.
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// The directory argument: %NULL is the default directory.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string.
unsafe fn guard_dir(call: &Call, dir: *const c_char) -> PathBuf {
    call.opt_path(dir)
        .unwrap_or_else(|| PathBuf::from(redline::DEFAULT_DIR))
}

/// # Safety
/// `name` is NULL or a NUL-terminated string.
unsafe fn step_name<'a>(call: &Call, name: *const c_char) -> Result<&'a str, Fail> {
    call.str(name, c"name != NULL", c"g_utf8_validate (name, -1, NULL)")
}

/// # Safety
/// `digest` is NULL or a NUL-terminated string.
unsafe fn step_digest<'a>(call: &Call, digest: *const c_char) -> Result<Option<&'a str>, Fail> {
    call.opt_str(digest, c"g_utf8_validate (digest, -1, NULL)")
}

/// stagehand_guard_begin:
/// @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
/// @name: the step name: 1 to 128 of `A-Z a-z 0-9 - _ . @ +`, starting with a letter or digit
/// @digest: (nullable): the digest of the configuration the step applies (8 to 128 hex digits, an even number; case does not matter), for instance from stagehand_guard_file_digest(); %NULL for none, which is a value of its own
/// @cancellable: (nullable): a #GCancellable, checked before anything is read
/// @error: return location for a #GError, or %NULL
///
/// Cross the red line before the destructive part of step @name: write a
/// *started* stamp (`DIR/NAME.stamp`) and return only once it is durable.
/// Refusals write nothing and are errors the caller branches on:
///
/// - %STAGEHAND_ERROR_INTERRUPTED: the step was started and never completed
///   (in this or an earlier process, whatever its digest): the system may be
///   half-changed, an administrator decides;
/// - %STAGEHAND_ERROR_ALREADY_COMPLETE: it completed with the same digest:
///   skip the step;
/// - %STAGEHAND_ERROR_CONFIG_CHANGED: it completed with another digest;
/// - %STAGEHAND_ERROR_CORRUPT: the stamp cannot be trusted
///   (%STAGEHAND_ERROR_UNSUPPORTED: a newer stagehand wrote it);
/// - %STAGEHAND_ERROR_IO: the directory is missing (stagehand never creates
///   it: its file system is probably not mounted) or cannot be used;
/// - %STAGEHAND_ERROR_READ_ONLY: the directory is read-only;
/// - %STAGEHAND_ERROR_INVALID_ARGUMENT: a bad name or digest.
///
/// Run the step, then stagehand_guard_commit() the token. Freeing the token
/// without committing leaves the step started. Needs no sysroot.
///
/// Returns: (transfer full) (nullable): the token, or %NULL with @error set; free with stagehand_guard_token_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_begin(
    dir: *const c_char,
    name: *const c_char,
    digest: *const c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandGuardToken {
    fallible(c"stagehand_guard_begin", error, ptr::null_mut(), |call| {
        let dir = guard_dir(call, dir);
        let name = step_name(call, name)?;
        let digest = step_digest(call, digest)?;
        check_cancelled(call.cancellable(cancellable)?.as_ref())?;
        Ok(token(redline::begin(&dir, name, digest)?))
    })
}

/// stagehand_guard_begin_forced:
/// @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
/// @name: the step name
/// @digest: (nullable): the configuration digest, or %NULL for none
/// @cancellable: (nullable): a #GCancellable, checked before anything is read
/// @error: return location for a #GError, or %NULL
///
/// stagehand_guard_begin() whatever the record says (interrupted, complete
/// with any digest, corrupt): the administrator's override, for someone who
/// inspected the system and wants the step to run again. What was overridden
/// is logged and available from stagehand_guard_token_get_replaced_stamp() and
/// stagehand_guard_token_get_replaced_unreadable(). Still fails for a missing
/// or read-only directory and for a bad name or digest.
///
/// Returns: (transfer full) (nullable): the token, or %NULL with @error set; free with stagehand_guard_token_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_begin_forced(
    dir: *const c_char,
    name: *const c_char,
    digest: *const c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandGuardToken {
    fallible(
        c"stagehand_guard_begin_forced",
        error,
        ptr::null_mut(),
        |call| {
            let dir = guard_dir(call, dir);
            let name = step_name(call, name)?;
            let digest = step_digest(call, digest)?;
            check_cancelled(call.cancellable(cancellable)?.as_ref())?;
            Ok(token(redline::begin_forced(&dir, name, digest)?))
        },
    )
}

/// stagehand_guard_resume:
/// @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
/// @name: the step name
/// @digest: (nullable): the configuration digest the step was begun with, or %NULL for none
/// @cancellable: (nullable): a #GCancellable, checked before anything is read
/// @error: return location for a #GError, or %NULL
///
/// Get the token of a *started* step back in a process other than the one
/// that began it (begin and commit usually run in two units): the name and
/// digest must match the record. Fails with %STAGEHAND_ERROR_INVALID_ARGUMENT
/// when the step is not started (never begun, or reset),
/// %STAGEHAND_ERROR_ALREADY_COMPLETE when it completed with this digest,
/// %STAGEHAND_ERROR_CONFIG_CHANGED when the digest differs (the step ran with
/// a configuration that is no longer the one given), and as
/// stagehand_guard_status() does. Writes nothing.
///
/// Returns: (transfer full) (nullable): the token, or %NULL with @error set; free with stagehand_guard_token_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_resume(
    dir: *const c_char,
    name: *const c_char,
    digest: *const c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandGuardToken {
    fallible(c"stagehand_guard_resume", error, ptr::null_mut(), |call| {
        let dir = guard_dir(call, dir);
        let name = step_name(call, name)?;
        let digest = step_digest(call, digest)?;
        check_cancelled(call.cancellable(cancellable)?.as_ref())?;
        Ok(token(redline::resume(&dir, name, digest)?))
    })
}

/// stagehand_guard_commit:
/// @token: a #StagehandGuardToken not committed before
/// @cancellable: (nullable): a #GCancellable, checked before anything is read
/// @error: return location for a #GError, or %NULL
///
/// Mark the step of @token complete; durable before it returns. The stamp
/// must still be the *started* record @token stands for: if it was reset
/// (%STAGEHAND_ERROR_INVALID_ARGUMENT), completed
/// (%STAGEHAND_ERROR_ALREADY_COMPLETE), or begun again, forced, in the
/// meantime (%STAGEHAND_ERROR_INVALID_ARGUMENT, naming both runs), nothing is
/// written.
///
/// Whatever the outcome, @token is used up (the Rust API consumes it), and
/// committing it again is a programming error; to try again, get a new one
/// with stagehand_guard_resume(). @token itself stays valid until freed.
///
/// Returns: (transfer full) (nullable): the *complete* stamp, or %NULL with @error set; free with stagehand_guard_stamp_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_commit(
    token: *mut StagehandGuardToken,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandGuardStamp {
    fallible(c"stagehand_guard_commit", error, ptr::null_mut(), |call| {
        let token = call.obj_mut(token, c"token != NULL")?;
        call.require(
            token.inner.is_some(),
            c"stagehand_guard_commit() was not called on token before",
        )?;
        check_cancelled(call.cancellable(cancellable)?.as_ref())?;
        let t = token.inner.take().expect("checked above");
        Ok(StagehandGuardStamp::boxed(&redline::commit(t)?))
    })
}

/// stagehand_guard_status:
/// @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
/// @name: the step name
/// @out_stamp: (out) (transfer full) (nullable): return location for the record, set to %NULL when the step has none (never begun, or reset); free with stagehand_guard_stamp_free()
/// @cancellable: (nullable): a #GCancellable, checked before anything is read
/// @error: return location for a #GError, or %NULL
///
/// The record of step @name. Only reads, so it works on a read-only
/// directory. A missing directory is %STAGEHAND_ERROR_IO, not "no record":
/// its file system may simply not be mounted. A stamp that cannot be trusted
/// is %STAGEHAND_ERROR_CORRUPT (%STAGEHAND_ERROR_UNSUPPORTED when a newer
/// stagehand wrote it); a bad name %STAGEHAND_ERROR_INVALID_ARGUMENT.
///
/// Returns: %TRUE on success (with *@out_stamp %NULL when there is no record), %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_status(
    dir: *const c_char,
    name: *const c_char,
    out_stamp: *mut *mut StagehandGuardStamp,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_guard_status", error, GFALSE, |call| {
        let dir = guard_dir(call, dir);
        let name = step_name(call, name)?;
        call.non_null(out_stamp, c"out_stamp != NULL")?;
        check_cancelled(call.cancellable(cancellable)?.as_ref())?;
        let stamp = redline::status(&dir, name)?;
        // SAFETY: checked non-NULL above; the caller's storage.
        unsafe {
            *out_stamp = stamp
                .as_ref()
                .map_or(ptr::null_mut(), StagehandGuardStamp::boxed)
        };
        Ok(GTRUE)
    })
}

/// stagehand_guard_reset:
/// @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
/// @name: the step name
/// @out_removed: (out) (optional): return location for whether there was a stamp
/// @cancellable: (nullable): a #GCancellable, checked before anything is read
/// @error: return location for a #GError, or %NULL
///
/// Forget step @name in any state, a corrupt stamp included, and remove
/// temporary files a killed writer left behind: the next
/// stagehand_guard_begin() starts it. Durable before it returns. For an
/// administrator who inspected the system after %STAGEHAND_ERROR_INTERRUPTED
/// or decided to re-run after %STAGEHAND_ERROR_CONFIG_CHANGED.
///
/// Returns: %TRUE on success, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_reset(
    dir: *const c_char,
    name: *const c_char,
    out_removed: *mut gboolean,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_guard_reset", error, GFALSE, |call| {
        let dir = guard_dir(call, dir);
        let name = step_name(call, name)?;
        check_cancelled(call.cancellable(cancellable)?.as_ref())?;
        let removed = redline::reset(&dir, name)?;
        if !out_removed.is_null() {
            // SAFETY: a non-NULL out parameter points to writable storage.
            unsafe { *out_removed = gbool(removed) };
        }
        Ok(GTRUE)
    })
}

/// stagehand_guard_file_digest:
/// @path: (type filename): a file, typically the configuration a step applies
/// @cancellable: (nullable): a #GCancellable, checked before the file is opened
/// @error: return location for a #GError, or %NULL
///
/// The SHA-256 of the file's content in lowercase hex: the @digest to give
/// stagehand_guard_begin() and stagehand_guard_resume(), the same as `stagehand
/// guard --digest-file` computes. Fails with %STAGEHAND_ERROR_IO naming the
/// file when it cannot be read.
///
/// Returns: (transfer full) (nullable): the digest, or %NULL with @error set; free with g_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_file_digest(
    path: *const c_char,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut c_char {
    fallible(
        c"stagehand_guard_file_digest",
        error,
        ptr::null_mut(),
        |call| {
            let path = call.path(path, c"path != NULL")?;
            check_cancelled(call.cancellable(cancellable)?.as_ref())?;
            Ok(g_strdup(&redline::file_digest(&path)?))
        },
    )
}

/// stagehand_guard_token_free:
/// @token: (nullable) (transfer full): a token from stagehand_guard_begin(), stagehand_guard_begin_forced() or stagehand_guard_resume()
///
/// Free @token. %NULL is ignored. This does not touch the stamp: a step
/// that was not committed stays started.
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_token_free(token: *mut StagehandGuardToken) {
    // SAFETY: token is NULL or from Box::into_raw in token().
    unsafe { free_boxed(c"stagehand_guard_token_free", token) }
}

/// stagehand_guard_token_get_stamp:
/// @token: a #StagehandGuardToken
///
/// Returns: (transfer none): the *started* record @token stands for (name, digest, run id, start time), owned by @token
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_token_get_stamp(
    token: *const StagehandGuardToken,
) -> *const StagehandGuardStamp {
    infallible(c"stagehand_guard_token_get_stamp", ptr::null(), |call| {
        Ok(&call.obj(token, c"token != NULL")?.stamp as *const _)
    })
}

/// stagehand_guard_token_get_path:
/// @token: a #StagehandGuardToken
///
/// Returns: (transfer none) (type filename): the stamp file, `DIR/NAME.stamp`
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_token_get_path(
    token: *const StagehandGuardToken,
) -> *const c_char {
    infallible(c"stagehand_guard_token_get_path", ptr::null(), |call| {
        Ok(call.obj(token, c"token != NULL")?.path.as_ptr())
    })
}

/// stagehand_guard_token_get_replaced_stamp:
/// @token: a #StagehandGuardToken
///
/// Returns: (transfer none) (nullable): for a token of stagehand_guard_begin_forced(), the readable record it overrode; %NULL when there was none, it was unreadable, or the begin was not forced
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_token_get_replaced_stamp(
    token: *const StagehandGuardToken,
) -> *const StagehandGuardStamp {
    infallible(
        c"stagehand_guard_token_get_replaced_stamp",
        ptr::null(),
        |call| {
            Ok(call
                .obj(token, c"token != NULL")?
                .replaced_stamp
                .as_ref()
                .map_or(ptr::null(), |s| s as *const _))
        },
    )
}

/// stagehand_guard_token_get_replaced_unreadable:
/// @token: a #StagehandGuardToken
///
/// Returns: (transfer none) (nullable): for a token of stagehand_guard_begin_forced() that overrode a stamp it could not trust (corrupt, or a newer format), why; %NULL otherwise
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_token_get_replaced_unreadable(
    token: *const StagehandGuardToken,
) -> *const c_char {
    infallible(
        c"stagehand_guard_token_get_replaced_unreadable",
        ptr::null(),
        |call| {
            Ok(opt_ptr(
                &call.obj(token, c"token != NULL")?.replaced_unreadable,
            ))
        },
    )
}

/// stagehand_guard_stamp_free:
/// @stamp: (nullable) (transfer full): a stamp from stagehand_guard_status() or stagehand_guard_commit()
///
/// Free @stamp. %NULL is ignored. Never call it on the stamps a
/// #StagehandGuardToken owns.
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_stamp_free(stamp: *mut StagehandGuardStamp) {
    // SAFETY: stamp is NULL or from Box::into_raw in StagehandGuardStamp::boxed.
    unsafe { free_boxed(c"stagehand_guard_stamp_free", stamp) }
}

/// stagehand_guard_stamp_get_name:
/// @stamp: a #StagehandGuardStamp
///
/// Returns: (transfer none): the step name
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_stamp_get_name(
    stamp: *const StagehandGuardStamp,
) -> *const c_char {
    infallible(c"stagehand_guard_stamp_get_name", ptr::null(), |call| {
        Ok(call.obj(stamp, c"stamp != NULL")?.name.as_ptr())
    })
}

/// stagehand_guard_stamp_get_phase:
/// @stamp: a #StagehandGuardStamp
///
/// Returns: started or complete
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_stamp_get_phase(
    stamp: *const StagehandGuardStamp,
) -> StagehandGuardPhase {
    infallible(
        c"stagehand_guard_stamp_get_phase",
        StagehandGuardPhase::Started,
        |call| Ok(call.obj(stamp, c"stamp != NULL")?.phase),
    )
}

/// stagehand_guard_stamp_get_digest:
/// @stamp: a #StagehandGuardStamp
///
/// Returns: (transfer none) (nullable): the configuration digest the step ran with (lowercase hex), or %NULL when it was begun without one
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_stamp_get_digest(
    stamp: *const StagehandGuardStamp,
) -> *const c_char {
    infallible(c"stagehand_guard_stamp_get_digest", ptr::null(), |call| {
        Ok(opt_ptr(&call.obj(stamp, c"stamp != NULL")?.digest))
    })
}

/// stagehand_guard_stamp_get_run:
/// @stamp: a #StagehandGuardStamp
///
/// Returns: (transfer none): the random id of this run of the step (a UUID), which tells a run from one begun again, forced, in the meantime
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_stamp_get_run(
    stamp: *const StagehandGuardStamp,
) -> *const c_char {
    infallible(c"stagehand_guard_stamp_get_run", ptr::null(), |call| {
        Ok(call.obj(stamp, c"stamp != NULL")?.run.as_ptr())
    })
}

/// stagehand_guard_stamp_get_started:
/// @stamp: a #StagehandGuardStamp
///
/// Returns: (transfer none): when the red line was crossed, RFC 3339 UTC (`2024-05-01T12:00:00Z`; g_date_time_new_from_iso8601() reads it)
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_stamp_get_started(
    stamp: *const StagehandGuardStamp,
) -> *const c_char {
    infallible(c"stagehand_guard_stamp_get_started", ptr::null(), |call| {
        Ok(call.obj(stamp, c"stamp != NULL")?.started.as_ptr())
    })
}

/// stagehand_guard_stamp_get_completed:
/// @stamp: a #StagehandGuardStamp
///
/// Returns: (transfer none) (nullable): when the step completed, RFC 3339 UTC; %NULL while it is started
#[no_mangle]
pub unsafe extern "C" fn stagehand_guard_stamp_get_completed(
    stamp: *const StagehandGuardStamp,
) -> *const c_char {
    infallible(
        c"stagehand_guard_stamp_get_completed",
        ptr::null(),
        |call| Ok(opt_ptr(&call.obj(stamp, c"stamp != NULL")?.completed)),
    )
}
