//! The sysroot lock, with a timeout.

use std::time::Duration;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE, GTRUE};
use ostree::ffi::OstreeSysroot;

use crate::guint;
use stagehand::SysrootLock;

use crate::guard::fallible;

/// stagehand_sysroot_lock:
/// @sysroot: a #OstreeSysroot
/// @timeout_ms: how long to wait, in milliseconds, while another process holds the lock
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Take the sysroot lock (the same lock as ostree_sysroot_lock(), `ostree
/// admin` and rpm-ostree take), waiting up to @timeout_ms while another
/// process holds it, then reload @sysroot if another process changed it in
/// the meantime, so that what follows decides on the current deployment list.
///
/// Unlike ostree_sysroot_lock(), which waits forever, this fails with
/// %STAGEHAND_ERROR_LOCKED when the timeout runs out, and with
/// %STAGEHAND_ERROR_CANCELLED when @cancellable is triggered while waiting.
/// On success the caller holds the lock and releases it with
/// ostree_sysroot_unlock(), exactly as if it had called ostree_sysroot_lock().
///
/// Taking the lock with ostree_sysroot_lock() instead is just as good for
/// every function of this library.
///
/// Returns: %TRUE with the lock held, %FALSE with @error set
#[no_mangle]
pub unsafe extern "C" fn stagehand_sysroot_lock(
    sysroot: *mut OstreeSysroot,
    timeout_ms: guint,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    fallible(c"stagehand_sysroot_lock", error, GFALSE, |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        let lock = SysrootLock::acquire(
            &sysroot,
            Duration::from_millis(timeout_ms.into()),
            cancellable.as_ref(),
        )?;
        lock.into_held();
        Ok(GTRUE)
    })
}
