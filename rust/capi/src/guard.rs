//! The machinery every entry point goes through: argument checks that emit
//! GLib criticals, panics caught at the boundary, `stagehand::Error` turned
//! into a `GError`, and the GLib logger installed once.
//!
//! The shape follows GLib's own conventions (and librsvg's C API layer): a
//! caller that passes `NULL` where the API does not allow it made a
//! programming error, which GLib reports as a critical from
//! `g_return_val_if_fail()` while the function returns its failure value
//! without touching `error`. Runtime failures set `error` in the
//! `STAGEHAND_ERROR` domain. A panic is a bug in stagehand; it must never
//! unwind into C (undefined behaviour), so it becomes a
//! `STAGEHAND_ERROR_FAILED` error naming the function.

use std::any::Any;
use std::ffi::{c_char, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use glib::ffi::{gboolean, GError, GFALSE, GTRUE};
use glib::translate::{from_glib_none, ToGlibPtr};

use crate::error::{error_quark, StagehandError};

/// The GLib log domain of everything stagehand logs (`G_LOG_DOMAIN`).
pub(crate) const LOG_DOMAIN: &CStr = c"stagehand";

/// Why an entry point returns its failure value.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A precondition failed; the critical is already logged and `error`
    /// stays unset, as with `g_return_val_if_fail()`.
    Precondition,
    /// A runtime error, reported through `error`.
    Error(stagehand::Error),
}

impl From<stagehand::Error> for Fail {
    fn from(e: stagehand::Error) -> Fail {
        Fail::Error(e)
    }
}

/// The context of one call: the C function's name, for criticals and for
/// the message of a caught panic.
pub(crate) struct Call {
    name: &'static CStr,
}

impl Call {
    /// `g_return_val_if_fail (ok, ...)`: log `"<function>: assertion '<expr>' failed"`
    /// as a critical in the `stagehand` domain when `ok` is false.
    pub(crate) fn require(&self, ok: bool, expr: &'static CStr) -> Result<(), Fail> {
        if ok {
            return Ok(());
        }
        // SAFETY: three valid NUL-terminated strings.
        unsafe {
            glib::ffi::g_return_if_fail_warning(
                LOG_DOMAIN.as_ptr(),
                self.name.as_ptr(),
                expr.as_ptr(),
            )
        };
        Err(Fail::Precondition)
    }

    /// Require a non-NULL pointer.
    pub(crate) fn non_null<T>(&self, p: *const T, expr: &'static CStr) -> Result<(), Fail> {
        self.require(!p.is_null(), expr)
    }

    /// Borrow the caller's `OstreeSysroot *` as an `ostree::Sysroot` (one
    /// extra reference for the duration of the call), checking its type
    /// like `OSTREE_IS_SYSROOT (sysroot)`.
    ///
    /// # Safety
    /// `p` is NULL or points to a GObject instance.
    pub(crate) unsafe fn sysroot(
        &self,
        p: *mut ostree::ffi::OstreeSysroot,
    ) -> Result<ostree::Sysroot, Fail> {
        let ok = !p.is_null()
            && glib::gobject_ffi::g_type_check_instance_is_a(
                p as *mut glib::gobject_ffi::GTypeInstance,
                ostree::ffi::ostree_sysroot_get_type(),
            ) != GFALSE;
        self.require(ok, c"OSTREE_IS_SYSROOT (sysroot)")?;
        Ok(from_glib_none(p))
    }

    /// Wrap the caller's sysroot for an operation the caller must hold the
    /// sysroot lock for, failing with `STAGEHAND_ERROR_NOT_LOCKED` (naming
    /// this function) when nobody holds it; see
    /// [`stagehand::SysrootLock::verify_held`].
    pub(crate) fn locked(&self, sysroot: &ostree::Sysroot) -> Result<stagehand::SysrootLock, Fail> {
        Ok(stagehand::SysrootLock::verify_held(
            sysroot,
            &self.name.to_string_lossy(),
        )?)
    }

    /// The caller's optional `GCancellable *`, checked like
    /// `cancellable == NULL || G_IS_CANCELLABLE (cancellable)`.
    ///
    /// # Safety
    /// `p` is NULL or points to a GObject instance.
    pub(crate) unsafe fn cancellable(
        &self,
        p: *mut gio::ffi::GCancellable,
    ) -> Result<Option<gio::Cancellable>, Fail> {
        if p.is_null() {
            return Ok(None);
        }
        let ok = glib::gobject_ffi::g_type_check_instance_is_a(
            p as *mut glib::gobject_ffi::GTypeInstance,
            gio::ffi::g_cancellable_get_type(),
        ) != GFALSE;
        self.require(ok, c"cancellable == NULL || G_IS_CANCELLABLE (cancellable)")?;
        Ok(Some(from_glib_none(p)))
    }

    /// A required UTF-8 string argument.
    ///
    /// # Safety
    /// `p` is NULL or a NUL-terminated string valid for `'a`.
    pub(crate) unsafe fn str<'a>(
        &self,
        p: *const c_char,
        non_null: &'static CStr,
        utf8: &'static CStr,
    ) -> Result<&'a str, Fail> {
        self.non_null(p, non_null)?;
        let s = CStr::from_ptr(p).to_str();
        self.require(s.is_ok(), utf8)?;
        Ok(s.unwrap_or_default())
    }

    /// An optional UTF-8 string argument.
    ///
    /// # Safety
    /// `p` is NULL or a NUL-terminated string valid for `'a`.
    pub(crate) unsafe fn opt_str<'a>(
        &self,
        p: *const c_char,
        utf8: &'static CStr,
    ) -> Result<Option<&'a str>, Fail> {
        if p.is_null() {
            return Ok(None);
        }
        let s = CStr::from_ptr(p).to_str();
        self.require(s.is_ok(), utf8)?;
        Ok(s.ok())
    }

    /// A required file name argument: any bytes but NUL (GLib's
    /// `(type filename)`, which need not be UTF-8), as a path.
    ///
    /// # Safety
    /// `p` is NULL or a NUL-terminated string valid for the call.
    pub(crate) unsafe fn path(
        &self,
        p: *const c_char,
        non_null: &'static CStr,
    ) -> Result<PathBuf, Fail> {
        self.non_null(p, non_null)?;
        Ok(PathBuf::from(OsStr::from_bytes(
            CStr::from_ptr(p).to_bytes(),
        )))
    }

    /// An optional file name argument (see [`Call::path`]).
    ///
    /// # Safety
    /// `p` is NULL or a NUL-terminated string valid for the call.
    pub(crate) unsafe fn opt_path(&self, p: *const c_char) -> Option<PathBuf> {
        (!p.is_null()).then(|| PathBuf::from(OsStr::from_bytes(CStr::from_ptr(p).to_bytes())))
    }

    /// Borrow an object of this library the caller passed back, checking it
    /// is not NULL.
    ///
    /// # Safety
    /// `p` is NULL or points to a live object this library created.
    pub(crate) unsafe fn obj<'a, T>(
        &self,
        p: *const T,
        expr: &'static CStr,
    ) -> Result<&'a T, Fail> {
        self.non_null(p, expr)?;
        Ok(&*p)
    }

    /// Like [`Call::obj`], mutably.
    ///
    /// # Safety
    /// `p` is NULL or points to a live object this library created, not
    /// borrowed elsewhere during the call.
    pub(crate) unsafe fn obj_mut<'a, T>(
        &self,
        p: *mut T,
        expr: &'static CStr,
    ) -> Result<&'a mut T, Fail> {
        self.non_null(p, expr)?;
        Ok(&mut *p)
    }

    /// A `NULL`-terminated array of UTF-8 strings (`NULL` itself gives `None`).
    ///
    /// # Safety
    /// `p` is NULL or a NULL-terminated array of NUL-terminated strings.
    pub(crate) unsafe fn opt_strv(
        &self,
        p: *const *const c_char,
        utf8: &'static CStr,
    ) -> Result<Option<Vec<String>>, Fail> {
        if p.is_null() {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let s = *p.add(i);
            if s.is_null() {
                break;
            }
            let s = CStr::from_ptr(s).to_str();
            self.require(s.is_ok(), utf8)?;
            out.push(s.unwrap_or_default().to_string());
            i += 1;
        }
        Ok(Some(out))
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Set `*error` (if `error` is not NULL) in the `STAGEHAND_ERROR` domain.
///
/// # Safety
/// `error` is NULL or points to a `GError *` that is NULL.
pub(crate) unsafe fn set_error(error: *mut *mut GError, code: StagehandError, message: &str) {
    // A message never contains NUL in practice; if one does, keep what
    // precedes it rather than losing the error.
    let message = CString::new(message).unwrap_or_else(|e| {
        let n = e.nul_position();
        CString::new(&e.into_vec()[..n]).unwrap_or_default()
    });
    glib::ffi::g_set_error_literal(error, error_quark(), code as i32, message.as_ptr());
}

/// Run the body of a fallible entry point `name`.
///
/// Installs the logger, checks `error == NULL || *error == NULL`, runs `f`
/// with panics caught, and turns its failure into `on_fail` with `error` set
/// (runtime errors, panics) or not (preconditions).
///
/// # Safety
/// `error` is NULL or a valid `GError **`.
pub(crate) unsafe fn fallible<T>(
    name: &'static CStr,
    error: *mut *mut GError,
    on_fail: T,
    f: impl FnOnce(&Call) -> Result<T, Fail>,
) -> T {
    stagehand::glib_log::route_log_to_glib();
    let call = Call { name };
    if call
        .require(
            error.is_null() || (*error).is_null(),
            c"error == NULL || *error == NULL",
        )
        .is_err()
    {
        return on_fail;
    }
    match catch_unwind(AssertUnwindSafe(|| f(&call))) {
        Ok(Ok(v)) => v,
        Ok(Err(Fail::Precondition)) => on_fail,
        Ok(Err(Fail::Error(e))) => {
            set_error(error, StagehandError::from(e.code()), &e.to_string());
            on_fail
        }
        Err(payload) => {
            let msg = format!(
                "{}: internal error (a bug in stagehand, please report it): {}",
                name.to_string_lossy(),
                panic_message(&*payload)
            );
            log::error!("{msg}");
            set_error(error, StagehandError::Failed, &msg);
            on_fail
        }
    }
}

/// The body of every `*_free` function: drop what the library handed out
/// with `Box::into_raw`, ignoring %NULL, never unwinding into C.
///
/// # Safety
///
/// `ptr` is NULL, or came from `Box::into_raw` of a `Box<T>` and was not
/// freed since.
pub(crate) unsafe fn free_boxed<T>(name: &'static CStr, ptr: *mut T) {
    infallible(name, (), |_| {
        if !ptr.is_null() {
            // SAFETY: the caller's contract.
            drop(unsafe { Box::from_raw(ptr) });
        }
        Ok(())
    })
}

/// Run the body of an entry point that cannot fail at run time (getters,
/// setters, `_free`): a failed precondition or a caught panic returns
/// `on_fail`, the panic logged as a critical.
pub(crate) fn infallible<T>(
    name: &'static CStr,
    on_fail: T,
    f: impl FnOnce(&Call) -> Result<T, Fail>,
) -> T {
    stagehand::glib_log::route_log_to_glib();
    let call = Call { name };
    match catch_unwind(AssertUnwindSafe(|| f(&call))) {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => on_fail,
        Err(payload) => {
            log::error!(
                "{}: internal error (a bug in stagehand, please report it): {}",
                name.to_string_lossy(),
                panic_message(&*payload)
            );
            on_fail
        }
    }
}

/// A Rust `bool` as a `gboolean`.
pub(crate) fn gbool(b: bool) -> gboolean {
    if b {
        GTRUE
    } else {
        GFALSE
    }
}

/// A g_malloc'd copy of `s`, for the caller to g_free().
pub(crate) fn g_strdup(s: &str) -> *mut c_char {
    s.to_glib_full()
}

/// Fail with `CANCELLED` if `cancellable` is already triggered: for the
/// calls whose Rust function takes no cancellable (small file operations
/// that cannot be interrupted half-way), so that a cancelled caller still
/// gets the GLib behaviour of "cancelled before it started".
pub(crate) fn check_cancelled(cancellable: Option<&gio::Cancellable>) -> Result<(), Fail> {
    match cancellable {
        Some(c) if gio::prelude::CancellableExt::is_cancelled(c) => {
            Err(Fail::Error(stagehand::Error::Cancelled))
        }
        _ => Ok(()),
    }
}

/// A `NULL`-terminated array of strings kept inside an object and handed
/// out as `const char * const *` (transfer none, array zero-terminated=1).
pub(crate) struct Strv {
    // The CStrings own the bytes; `ptrs` points into their heap buffers,
    // which do not move when the Strv does.
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl Strv {
    pub(crate) fn new<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Strv {
        let strings: Vec<CString> = items.into_iter().map(|s| cstring(s.as_ref())).collect();
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Strv {
            _strings: strings,
            ptrs,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// An optional string kept inside an object, as a nullable `const char *`.
pub(crate) fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// A string kept inside a result object and handed out as `const char *`
/// (transfer none).
pub(crate) fn cstring(s: &str) -> CString {
    // Identities, checksums and versions come from libostree, which never
    // puts NUL in them; keep what precedes a NUL if one ever appears.
    CString::new(s).unwrap_or_else(|e| {
        let n = e.nul_position();
        CString::new(&e.into_vec()[..n]).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn a_panic_becomes_a_failed_error() {
        let mut error: *mut GError = ptr::null_mut();
        // SAFETY: a valid GError ** pointing to NULL.
        let r = unsafe {
            fallible(
                c"stagehand_test_panic",
                &mut error,
                GFALSE,
                |_| -> Result<gboolean, Fail> { panic!("boom") },
            )
        };
        assert_eq!(r, GFALSE);
        assert!(!error.is_null());
        let e: glib::Error = unsafe { glib::translate::from_glib_full(error) };
        assert_eq!(e.domain(), error_quark_glib());
        assert!(e.matches(StagehandError::Failed), "{e:?}");
        let msg = e.message();
        assert!(msg.contains("stagehand_test_panic"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn a_panic_with_a_null_error_is_still_caught() {
        // SAFETY: error may be NULL.
        let r = unsafe {
            fallible(
                c"stagehand_test_panic",
                ptr::null_mut(),
                7,
                |_| -> Result<i32, Fail> { panic!("boom {}", 42) },
            )
        };
        assert_eq!(r, 7);
        let r = infallible(c"stagehand_test_panic", 9, |_| -> Result<i32, Fail> {
            panic!("boom")
        });
        assert_eq!(r, 9);
    }

    #[test]
    fn runtime_errors_keep_their_code_and_message() {
        let mut error: *mut GError = ptr::null_mut();
        // SAFETY: a valid GError ** pointing to NULL.
        let r = unsafe {
            fallible(c"stagehand_test", &mut error, ptr::null_mut::<u8>(), |_| {
                Err(stagehand::Error::UnknownStateroot("nope".into()).into())
            })
        };
        assert!(r.is_null());
        let e: glib::Error = unsafe { glib::translate::from_glib_full(error) };
        assert!(e.matches(StagehandError::UnknownStateroot), "{e:?}");
        assert!(e.message().contains("\"nope\""), "{}", e.message());
    }

    fn error_quark_glib() -> glib::Quark {
        // SAFETY: GQuark is a plain integer.
        unsafe { glib::translate::from_glib(error_quark()) }
    }
}
