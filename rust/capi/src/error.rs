//! The `STAGEHAND_ERROR` domain: `stagehand_error_quark()` and the
//! `StagehandError` codes, one per `stagehand::ErrorCode`, same numbers.

use glib::ffi::GQuark;
use stagehand::ErrorCode;

/// StagehandError:
/// @STAGEHAND_ERROR_FAILED: libostree or GLib failed in a way that has no code of its own; the message says what stagehand was doing
/// @STAGEHAND_ERROR_INVALID_ARGUMENT: a value that can never be valid (a bad stateroot name, a malformed deployment identity)
/// @STAGEHAND_ERROR_CANCELLED: the #GCancellable was triggered (stagehand reports cancellation in its own domain, not as %G_IO_ERROR_CANCELLED)
/// @STAGEHAND_ERROR_IO: a file operation failed (permissions, missing directory, I/O error, full disk); the message names the file
/// @STAGEHAND_ERROR_LOCKED: the sysroot lock was still held by another process when the timeout ran out
/// @STAGEHAND_ERROR_NOT_BOOTED: the operation needs a system booted into an ostree deployment
/// @STAGEHAND_ERROR_READ_ONLY: the sysroot, `/boot` or a state directory is read-only
/// @STAGEHAND_ERROR_UNKNOWN_REVISION: the ref or checksum is not (fully) in the sysroot repository
/// @STAGEHAND_ERROR_UNKNOWN_STATEROOT: the stateroot does not exist (`ostree admin os-init` creates one)
/// @STAGEHAND_ERROR_NOT_BOOTABLE: the commit has no kernel where libostree looks for one
/// @STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT: no deployment has the given identity
/// @STAGEHAND_ERROR_HOOK_VETOED: a pre-upgrade hook refused the update; the message has its exit status, signal or timeout and the tail of its output
/// @STAGEHAND_ERROR_HOOK_INVALID: a pre-upgrade hook file is not acceptable (type, owner, permissions, symlink)
/// @STAGEHAND_ERROR_DENYLISTED: the commit failed before and is on the denylist
/// @STAGEHAND_ERROR_CORRUPT: a state file stagehand owns is torn, garbage or inconsistent
/// @STAGEHAND_ERROR_INTERRUPTED: a guarded step was started and never completed
/// @STAGEHAND_ERROR_ALREADY_COMPLETE: a guarded step already completed with the same configuration
/// @STAGEHAND_ERROR_CONFIG_CHANGED: a guarded step completed with a different configuration
/// @STAGEHAND_ERROR_NO_KNOWN_GOOD: no known-good deployment is left to roll back to
/// @STAGEHAND_ERROR_CONFIG: the configuration file has an error; the message names the line
/// @STAGEHAND_ERROR_UNSUPPORTED: the running libostree, bootloader or system cannot do this
/// @STAGEHAND_ERROR_NOT_LOCKED: the function needs the sysroot lock held by the caller (ostree_sysroot_lock()) and nobody holds it; a bug of the caller, not contention: retrying does not help
///
/// Error codes in the %STAGEHAND_ERROR domain. Each is one kind of failure,
/// the same numbers as the Rust crate's `stagehand::ErrorCode` and `10 + code`
/// as the exit status of the `stagehand` command. The numbers are stable ABI:
/// new codes are only ever added at the end, so treat unknown codes like
/// %STAGEHAND_ERROR_FAILED.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // documented above, in the form gtk-doc reads
pub enum StagehandError {
    Failed = 0,
    InvalidArgument = 1,
    Cancelled = 2,
    Io = 3,
    Locked = 4,
    NotBooted = 5,
    ReadOnly = 6,
    UnknownRevision = 7,
    UnknownStateroot = 8,
    NotBootable = 9,
    UnknownDeployment = 10,
    HookVetoed = 11,
    HookInvalid = 12,
    Denylisted = 13,
    Corrupt = 14,
    Interrupted = 15,
    AlreadyComplete = 16,
    ConfigChanged = 17,
    NoKnownGood = 18,
    Config = 19,
    Unsupported = 20,
    NotLocked = 21,
}

impl StagehandError {
    /// Every code, in numeric order.
    const ALL: [StagehandError; 22] = [
        StagehandError::Failed,
        StagehandError::InvalidArgument,
        StagehandError::Cancelled,
        StagehandError::Io,
        StagehandError::Locked,
        StagehandError::NotBooted,
        StagehandError::ReadOnly,
        StagehandError::UnknownRevision,
        StagehandError::UnknownStateroot,
        StagehandError::NotBootable,
        StagehandError::UnknownDeployment,
        StagehandError::HookVetoed,
        StagehandError::HookInvalid,
        StagehandError::Denylisted,
        StagehandError::Corrupt,
        StagehandError::Interrupted,
        StagehandError::AlreadyComplete,
        StagehandError::ConfigChanged,
        StagehandError::NoKnownGood,
        StagehandError::Config,
        StagehandError::Unsupported,
        StagehandError::NotLocked,
    ];
}

impl From<ErrorCode> for StagehandError {
    fn from(code: ErrorCode) -> StagehandError {
        match code {
            ErrorCode::Failed => StagehandError::Failed,
            ErrorCode::InvalidArgument => StagehandError::InvalidArgument,
            ErrorCode::Cancelled => StagehandError::Cancelled,
            ErrorCode::Io => StagehandError::Io,
            ErrorCode::Locked => StagehandError::Locked,
            ErrorCode::NotBooted => StagehandError::NotBooted,
            ErrorCode::ReadOnly => StagehandError::ReadOnly,
            ErrorCode::UnknownRevision => StagehandError::UnknownRevision,
            ErrorCode::UnknownStateroot => StagehandError::UnknownStateroot,
            ErrorCode::NotBootable => StagehandError::NotBootable,
            ErrorCode::UnknownDeployment => StagehandError::UnknownDeployment,
            ErrorCode::HookVetoed => StagehandError::HookVetoed,
            ErrorCode::HookInvalid => StagehandError::HookInvalid,
            ErrorCode::Denylisted => StagehandError::Denylisted,
            ErrorCode::Corrupt => StagehandError::Corrupt,
            ErrorCode::Interrupted => StagehandError::Interrupted,
            ErrorCode::AlreadyComplete => StagehandError::AlreadyComplete,
            ErrorCode::ConfigChanged => StagehandError::ConfigChanged,
            ErrorCode::NoKnownGood => StagehandError::NoKnownGood,
            ErrorCode::Config => StagehandError::Config,
            ErrorCode::Unsupported => StagehandError::Unsupported,
            ErrorCode::NotLocked => StagehandError::NotLocked,
            // ErrorCode is non-exhaustive; a code added to the library
            // without a C counterpart is caught by the tests below, and
            // C callers are told to treat unknown kinds as FAILED.
            _ => StagehandError::Failed,
        }
    }
}

impl glib::error::ErrorDomain for StagehandError {
    fn domain() -> glib::Quark {
        // SAFETY: a GQuark is a plain integer.
        unsafe { glib::translate::from_glib(error_quark()) }
    }
    fn code(self) -> i32 {
        self as i32
    }
    fn from(code: i32) -> Option<Self> {
        StagehandError::ALL
            .iter()
            .copied()
            .find(|c| *c as i32 == code)
    }
}

/// The quark of the domain, registered once.
pub(crate) fn error_quark() -> GQuark {
    // SAFETY: a static NUL-terminated string, as g_quark_from_static_string requires.
    unsafe { glib::ffi::g_quark_from_static_string(c"stagehand-error-quark".as_ptr()) }
}

/// stagehand_error_quark:
///
/// The error domain of stagehand, %STAGEHAND_ERROR. Its codes are
/// #StagehandError.
///
/// Returns: the #GQuark `stagehand-error-quark`
#[no_mangle]
pub extern "C" fn stagehand_error_quark() -> GQuark {
    crate::guard::infallible(c"stagehand_error_quark", 0, |_| Ok(error_quark()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_maps_to_the_c_code_with_the_same_number() {
        assert_eq!(StagehandError::ALL.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let c = StagehandError::from(code);
            assert_eq!(c as i32, code as i32, "{code:?} maps to {c:?}");
            // The C name is the nick in SCREAMING_SNAKE_CASE.
            let nick = format!("{c:?}")
                .chars()
                .enumerate()
                .flat_map(|(i, ch)| {
                    let dash = (i > 0 && ch.is_ascii_uppercase()).then_some('-');
                    dash.into_iter()
                        .chain(std::iter::once(ch.to_ascii_lowercase()))
                })
                .collect::<String>();
            assert_eq!(nick, code.nick(), "{c:?} is not named after {code:?}");
        }
        for (i, c) in StagehandError::ALL.iter().enumerate() {
            assert_eq!(*c as i32, i as i32, "{c:?} out of order");
        }
    }

    #[test]
    fn the_quark_is_stable() {
        let q = stagehand_error_quark();
        assert_ne!(q, 0);
        assert_eq!(q, stagehand_error_quark());
        // SAFETY: q is a registered quark.
        let s = unsafe { std::ffi::CStr::from_ptr(glib::ffi::g_quark_to_string(q)) };
        assert_eq!(s.to_str().unwrap(), "stagehand-error-quark");
    }
}
