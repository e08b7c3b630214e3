//! The status snapshot: deployments in boot order, with stagehand's view of
//! each. Later capabilities add getters here (health state).

use std::ffi::{c_char, CString};
use std::ptr;

use gio::ffi::GCancellable;
use glib::ffi::{gboolean, GError, GFALSE};
use ostree::ffi::OstreeSysroot;

use crate::guint;
use stagehand::DeploymentStatus;

use crate::guard::{
    cstring, fallible, free_boxed, g_strdup, gbool, infallible, opt_ptr, Call, Fail,
};
use crate::health::{StagehandDenylistEntry, StagehandHealthState, StagehandRollback};

/// StagehandStatus:
///
/// A snapshot of the sysroot as stagehand sees it, from stagehand_status():
/// an opaque object read with its getters and freed with
/// stagehand_status_free() (or `g_autoptr(StagehandStatus)`). It does not
/// change when the sysroot does; take a new one.
pub struct StagehandStatus {
    deployments: Vec<StagehandDeploymentStatus>,
    cleanup_pending: bool,
    retention_pending: bool,
    denylist: Vec<StagehandDenylistEntry>,
    last_rollback: Option<StagehandRollback>,
    health_error: Option<CString>,
}

/// StagehandDeploymentStatus:
///
/// One deployment in a #StagehandStatus, read with the
/// `stagehand_deployment_status_get_*()` functions. It belongs to the
/// #StagehandStatus it came from and is valid as long as that is.
pub struct StagehandDeploymentStatus {
    inner: DeploymentStatus,
    stateroot: CString,
    checksum: CString,
    version: Option<CString>,
    health: StagehandHealthState,
    health_reason: Option<CString>,
    health_changed: Option<CString>,
}

/// # Safety
/// `p` is NULL or a status from stagehand_status() not yet freed.
unsafe fn status_ref<'a>(
    call: &Call,
    p: *const StagehandStatus,
) -> Result<&'a StagehandStatus, Fail> {
    call.non_null(p, c"status != NULL")?;
    Ok(&*p)
}

/// # Safety
/// `p` is NULL or a deployment from stagehand_status_get_deployment() whose
/// status is not yet freed.
unsafe fn deployment_ref<'a>(
    call: &Call,
    p: *const StagehandDeploymentStatus,
) -> Result<&'a StagehandDeploymentStatus, Fail> {
    call.non_null(p, c"deployment != NULL")?;
    Ok(&*p)
}

/// stagehand_status:
/// @sysroot: a loaded #OstreeSysroot
/// @cancellable: (nullable): a #GCancellable
/// @error: return location for a #GError, or %NULL
///
/// Read the deployments (the staged one first, then in boot order) with
/// stagehand's state for each. Read-only: the sysroot lock is not needed.
/// @sysroot is reloaded first if another process changed it.
///
/// Returns: (transfer full) (nullable): the status, or %NULL with @error set; free with stagehand_status_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_status(
    sysroot: *mut OstreeSysroot,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> *mut StagehandStatus {
    fallible(c"stagehand_status", error, ptr::null_mut(), |call| {
        let sysroot = call.sysroot(sysroot)?;
        let cancellable = call.cancellable(cancellable)?;
        stagehand::sysroot::reload_if_changed(&sysroot, cancellable.as_ref())?;
        let status = stagehand::status(&sysroot)?;
        let cleanup_pending = status.cleanup_pending;
        let retention_pending = status.retention_pending;
        let denylist = status
            .denylist
            .iter()
            .map(StagehandDenylistEntry::of)
            .collect();
        let last_rollback = status.last_rollback.as_ref().map(StagehandRollback::of);
        let health_error = status.health_error.as_deref().map(cstring);
        let deployments = status
            .deployments
            .into_iter()
            .map(|d| StagehandDeploymentStatus {
                stateroot: cstring(&d.stateroot),
                checksum: cstring(&d.checksum),
                version: d.version.as_deref().map(cstring),
                health: StagehandHealthState::of(d.health),
                health_reason: d.health_reason.as_deref().map(cstring),
                health_changed: d.health_changed.as_deref().map(cstring),
                inner: d,
            })
            .collect();
        Ok(Box::into_raw(Box::new(StagehandStatus {
            deployments,
            cleanup_pending,
            retention_pending,
            denylist,
            last_rollback,
            health_error,
        })))
    })
}

/// stagehand_status_free:
/// @status: (nullable) (transfer full): a status from stagehand_status()
///
/// Free @status and the #StagehandDeploymentStatus it holds. %NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_free(status: *mut StagehandStatus) {
    // SAFETY: status is NULL or from Box::into_raw in stagehand_status.
    unsafe { free_boxed(c"stagehand_status_free", status) }
}

/// stagehand_status_get_n_deployments:
/// @status: a #StagehandStatus
///
/// Returns: the number of deployments, staged one included
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_n_deployments(
    status: *const StagehandStatus,
) -> guint {
    infallible(c"stagehand_status_get_n_deployments", 0, |call| {
        Ok(status_ref(call, status)?.deployments.len() as guint)
    })
}

/// stagehand_status_get_deployment:
/// @status: a #StagehandStatus
/// @index: a position, less than stagehand_status_get_n_deployments()
///
/// The deployment at @index: 0 is the staged deployment if there is one,
/// else the default; the rest follow in boot order.
///
/// Returns: (transfer none): the deployment, owned by @status
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_deployment(
    status: *const StagehandStatus,
    index: guint,
) -> *const StagehandDeploymentStatus {
    infallible(c"stagehand_status_get_deployment", ptr::null(), |call| {
        let status = status_ref(call, status)?;
        let d = status.deployments.get(index as usize);
        call.require(
            d.is_some(),
            c"index < stagehand_status_get_n_deployments (status)",
        )?;
        Ok(d.map_or(ptr::null(), |d| d as *const _))
    })
}

/// stagehand_status_get_cleanup_pending:
/// @status: a #StagehandStatus
///
/// Whether a cleanup stamp is present (a finalization happened and nothing
/// has pruned after it yet). %TRUE also for a stamp that cannot be read:
/// stagehand_pending_cleanup() says what it holds, or why it is corrupt.
///
/// Returns: %TRUE when a cleanup is pending
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_cleanup_pending(
    status: *const StagehandStatus,
) -> gboolean {
    infallible(c"stagehand_status_get_cleanup_pending", GFALSE, |call| {
        Ok(gbool(status_ref(call, status)?.cleanup_pending))
    })
}

/// stagehand_status_get_retention_pending:
/// @status: a #StagehandStatus
///
/// Whether a trial has ended but stagehand still holds its retention pins,
/// or a release an interrupted run left half done is to be finished:
/// releasing them (and removing the deployment only they kept) is
/// housekeeping that stagehand_mark_good() and stagehand_assess() leave to
/// the next stagehand_autocleanup() or stagehand_run_cleanup() (or staging),
/// whose report names what it released. The same as
/// stagehand_mark_good_result_get_retention_pending() and
/// stagehand_verdict_get_retention_pending(), read without the lock: a
/// daemon that ships no systemd units can check it when it starts. %FALSE
/// when the health store cannot be read (stagehand_status_get_health_error()).
///
/// Returns: %TRUE when retention housekeeping is pending
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_retention_pending(
    status: *const StagehandStatus,
) -> gboolean {
    infallible(c"stagehand_status_get_retention_pending", GFALSE, |call| {
        Ok(gbool(status_ref(call, status)?.retention_pending))
    })
}

/// stagehand_deployment_status_get_stateroot:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: (transfer none): the stateroot (ostree's "osname")
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_stateroot(
    deployment: *const StagehandDeploymentStatus,
) -> *const c_char {
    infallible(
        c"stagehand_deployment_status_get_stateroot",
        ptr::null(),
        |call| Ok(deployment_ref(call, deployment)?.stateroot.as_ptr()),
    )
}

/// stagehand_deployment_status_get_checksum:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: (transfer none): the commit checksum
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_checksum(
    deployment: *const StagehandDeploymentStatus,
) -> *const c_char {
    infallible(
        c"stagehand_deployment_status_get_checksum",
        ptr::null(),
        |call| Ok(deployment_ref(call, deployment)?.checksum.as_ptr()),
    )
}

/// stagehand_deployment_status_get_serial:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: the deployment serial
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_serial(
    deployment: *const StagehandDeploymentStatus,
) -> guint {
    infallible(c"stagehand_deployment_status_get_serial", 0, |call| {
        Ok(deployment_ref(call, deployment)?.inner.serial)
    })
}

/// stagehand_deployment_status_dup_id:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: (transfer full): the stable identity, `stateroot:checksum.serial`; free with g_free()
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_dup_id(
    deployment: *const StagehandDeploymentStatus,
) -> *mut c_char {
    infallible(
        c"stagehand_deployment_status_dup_id",
        ptr::null_mut(),
        |call| {
            Ok(g_strdup(
                &deployment_ref(call, deployment)?.inner.id().to_string(),
            ))
        },
    )
}

/// stagehand_deployment_status_get_version:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: (transfer none) (nullable): the commit's `version` metadata, or %NULL when it has none
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_version(
    deployment: *const StagehandDeploymentStatus,
) -> *const c_char {
    infallible(
        c"stagehand_deployment_status_get_version",
        ptr::null(),
        |call| {
            Ok(deployment_ref(call, deployment)?
                .version
                .as_ref()
                .map_or(ptr::null(), |v| v.as_ptr()))
        },
    )
}

/// # Safety
/// As [`deployment_ref`].
unsafe fn flag(
    name: &'static std::ffi::CStr,
    deployment: *const StagehandDeploymentStatus,
    get: impl FnOnce(&DeploymentStatus) -> bool,
) -> gboolean {
    infallible(name, GFALSE, |call| {
        Ok(gbool(get(&deployment_ref(call, deployment)?.inner)))
    })
}

/// stagehand_deployment_status_get_booted:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: whether this is the running deployment
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_booted(
    deployment: *const StagehandDeploymentStatus,
) -> gboolean {
    flag(c"stagehand_deployment_status_get_booted", deployment, |d| {
        d.booted
    })
}

/// stagehand_deployment_status_get_staged:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: whether this deployment is staged (finalized at shutdown)
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_staged(
    deployment: *const StagehandDeploymentStatus,
) -> gboolean {
    flag(c"stagehand_deployment_status_get_staged", deployment, |d| {
        d.staged
    })
}

/// stagehand_deployment_status_get_pinned:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: whether it is pinned (libostree never garbage-collects it)
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_pinned(
    deployment: *const StagehandDeploymentStatus,
) -> gboolean {
    flag(c"stagehand_deployment_status_get_pinned", deployment, |d| {
        d.pinned
    })
}

/// stagehand_deployment_status_get_finalization_locked:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: whether finalization is locked (only ever %TRUE for the staged deployment)
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_finalization_locked(
    deployment: *const StagehandDeploymentStatus,
) -> gboolean {
    flag(
        c"stagehand_deployment_status_get_finalization_locked",
        deployment,
        |d| d.finalization_locked,
    )
}

/// stagehand_deployment_status_get_unvetted:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: whether it is a staged deployment that has not (yet) passed its pre-upgrade hooks
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_unvetted(
    deployment: *const StagehandDeploymentStatus,
) -> gboolean {
    flag(
        c"stagehand_deployment_status_get_unvetted",
        deployment,
        |d| d.unvetted,
    )
}

/// stagehand_status_get_health_error:
/// @status: a #StagehandStatus
///
/// Why the health store could not be read (it is corrupt, or of a newer
/// format); then every deployment's health reads
/// %STAGEHAND_HEALTH_STATE_UNKNOWN and the denylist is empty. Health
/// operations fail with %STAGEHAND_ERROR_CORRUPT until
/// stagehand_health_reset().
///
/// Returns: (transfer none) (nullable): the message, owned by @status; %NULL when the store was read
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_health_error(
    status: *const StagehandStatus,
) -> *const c_char {
    infallible(c"stagehand_status_get_health_error", ptr::null(), |call| {
        Ok(opt_ptr(&status_ref(call, status)?.health_error))
    })
}

/// stagehand_status_get_n_denylisted:
/// @status: a #StagehandStatus
///
/// Returns: the number of commits on the denylist
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_n_denylisted(
    status: *const StagehandStatus,
) -> guint {
    infallible(c"stagehand_status_get_n_denylisted", 0, |call| {
        Ok(status_ref(call, status)?.denylist.len() as guint)
    })
}

/// stagehand_status_get_denylisted:
/// @status: a #StagehandStatus
/// @index: which, from 0 (oldest first)
///
/// Returns: (transfer none): the denylist entry, owned by @status
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_denylisted(
    status: *const StagehandStatus,
    index: guint,
) -> *const StagehandDenylistEntry {
    infallible(c"stagehand_status_get_denylisted", ptr::null(), |call| {
        let e = status_ref(call, status)?.denylist.get(index as usize);
        call.require(
            e.is_some(),
            c"index < stagehand_status_get_n_denylisted (status)",
        )?;
        Ok(e.map_or(ptr::null(), |e| e as *const _))
    })
}

/// stagehand_status_get_last_rollback:
/// @status: a #StagehandStatus
///
/// Returns: (transfer none) (nullable): the last rollback stagehand made, owned by @status; %NULL when there was none
#[no_mangle]
pub unsafe extern "C" fn stagehand_status_get_last_rollback(
    status: *const StagehandStatus,
) -> *const StagehandRollback {
    infallible(c"stagehand_status_get_last_rollback", ptr::null(), |call| {
        Ok(status_ref(call, status)?
            .last_rollback
            .as_ref()
            .map_or(ptr::null(), |r| r as *const _))
    })
}

/// stagehand_deployment_status_get_health:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: its health state (%STAGEHAND_HEALTH_STATE_UNKNOWN when the store cannot be read)
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_health(
    deployment: *const StagehandDeploymentStatus,
) -> StagehandHealthState {
    infallible(
        c"stagehand_deployment_status_get_health",
        StagehandHealthState::Unknown,
        |call| Ok(call.obj(deployment, c"deployment != NULL")?.health),
    )
}

/// stagehand_deployment_status_get_attempts:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: the boots counted into it
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_attempts(
    deployment: *const StagehandDeploymentStatus,
) -> guint {
    infallible(c"stagehand_deployment_status_get_attempts", 0, |call| {
        Ok(call.obj(deployment, c"deployment != NULL")?.inner.attempts)
    })
}

/// stagehand_deployment_status_get_on_trial:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: whether it is on trial: untested, or booted and waiting for stagehand_mark_good() (failed without a reason)
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_on_trial(
    deployment: *const StagehandDeploymentStatus,
) -> gboolean {
    infallible(
        c"stagehand_deployment_status_get_on_trial",
        GFALSE,
        |call| {
            Ok(gbool(
                call.obj(deployment, c"deployment != NULL")?.inner.on_trial,
            ))
        },
    )
}

/// stagehand_deployment_status_get_health_reason:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: (transfer none) (nullable): why it failed, %NULL when it has no failure verdict, owned by @deployment
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_health_reason(
    deployment: *const StagehandDeploymentStatus,
) -> *const c_char {
    infallible(
        c"stagehand_deployment_status_get_health_reason",
        ptr::null(),
        |call| {
            Ok(opt_ptr(
                &call.obj(deployment, c"deployment != NULL")?.health_reason,
            ))
        },
    )
}

/// stagehand_deployment_status_get_health_changed:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: (transfer none) (nullable): when its health last changed (RFC 3339 UTC), %NULL without a record, owned by @deployment
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_health_changed(
    deployment: *const StagehandDeploymentStatus,
) -> *const c_char {
    infallible(
        c"stagehand_deployment_status_get_health_changed",
        ptr::null(),
        |call| {
            Ok(opt_ptr(
                &call.obj(deployment, c"deployment != NULL")?.health_changed,
            ))
        },
    )
}

/// stagehand_deployment_status_get_pinned_by_stagehand:
/// @deployment: a #StagehandDeploymentStatus
///
/// Returns: whether stagehand pinned it to keep two known-good deployments during a trial (and will release it when the trial ends)
#[no_mangle]
pub unsafe extern "C" fn stagehand_deployment_status_get_pinned_by_stagehand(
    deployment: *const StagehandDeploymentStatus,
) -> gboolean {
    infallible(
        c"stagehand_deployment_status_get_pinned_by_stagehand",
        GFALSE,
        |call| {
            Ok(gbool(
                call.obj(deployment, c"deployment != NULL")?
                    .inner
                    .pinned_by_stagehand,
            ))
        },
    )
}
