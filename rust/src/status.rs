//! A snapshot of the sysroot as stagehand sees it: what `stagehand status`
//! prints and what the C ABI and cxx bridge return.

use serde::Serialize;

use crate::cleanup;
use crate::error::Result;
use crate::health::{self, Denied, RollbackRecord, State};
use crate::hooks;
use crate::repo;
use crate::stage;
use crate::sysroot::DeploymentId;

/// One deployment, in boot order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeploymentStatus {
    /// Position in the deployment list (0 = the default, or the staged one).
    pub index: u32,
    /// Stateroot.
    pub stateroot: String,
    /// Commit checksum.
    pub checksum: String,
    /// Deployment serial.
    pub serial: u32,
    /// The commit's `version` metadata, if any.
    pub version: Option<String>,
    /// Whether this is the running deployment.
    pub booted: bool,
    /// Whether this deployment is staged (finalized at shutdown).
    pub staged: bool,
    /// Whether it is pinned (never garbage-collected by libostree).
    pub pinned: bool,
    /// Whether finalization is locked (only ever true for the staged one).
    pub finalization_locked: bool,
    /// Whether it is a staged deployment that has not passed its pre-upgrade hooks.
    pub unvetted: bool,
    /// Health (`untested`, `failed`, `good`, `good-fallback`); `null` when the
    /// health store cannot be read (see [`Status::health_error`]).
    pub health: Option<State>,
    /// Boots counted into it.
    pub attempts: u32,
    /// Whether its trial is open (untested, or booted and not yet marked good).
    pub on_trial: bool,
    /// Why it failed, when a verdict says it did.
    pub health_reason: Option<String>,
    /// When its health last changed (RFC 3339 UTC); `null` without a record.
    pub health_changed: Option<String>,
    /// Whether stagehand pinned it to keep two known-good deployments.
    pub pinned_by_stagehand: bool,
}

impl DeploymentStatus {
    /// The identity of this deployment.
    pub fn id(&self) -> DeploymentId {
        DeploymentId {
            stateroot: self.stateroot.clone(),
            checksum: self.checksum.clone(),
            serial: self.serial,
        }
    }
}

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Deployments, staged first, then in boot order.
    pub deployments: Vec<DeploymentStatus>,
    /// Whether a cleanup stamp is present: a finalized update, or a
    /// deployment stagehand removed at the end of a trial, left objects to
    /// prune, which the next `autocleanup` does. True also for a stamp
    /// that cannot be read (`autocleanup` then reports it as corrupt).
    pub cleanup_pending: bool,
    /// A trial has ended but stagehand still holds its pins, or a release an
    /// interrupted run left half done is to be finished: releasing them
    /// (and removing the deployment only they kept) is housekeeping that
    /// mark-good leaves to the next `autocleanup` (or staging). False when
    /// the health store cannot be read.
    pub retention_pending: bool,
    /// Commits that failed and are not staged again by themselves.
    pub denylist: Vec<Denied>,
    /// The most recent rollback: from, to, why, when.
    pub last_rollback: Option<RollbackRecord>,
    /// Why the health store cannot be read, when it cannot (`health` is then
    /// `null` everywhere).
    pub health_error: Option<String>,
}

/// Read the status of a loaded sysroot. Read-only: no lock needed.
pub fn status(sysroot: &ostree::Sysroot) -> Result<Status> {
    let repo = sysroot.repo();
    let booted = sysroot.booted_deployment();
    let locked = stage::finalization_locked();
    let (store, health_error) = match health::read(sysroot) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let deployments = sysroot
        .deployments()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let staged = d.is_staged();
            let id = DeploymentId::of(d);
            let entry = store.as_ref().and_then(|s| s.entry(&id));
            DeploymentStatus {
                index: i as u32,
                stateroot: d.osname().to_string(),
                checksum: d.csum().to_string(),
                serial: d.deployserial().max(0) as u32,
                version: repo::commit_version(&repo, &d.csum()),
                booted: booted.as_ref().is_some_and(|b| b.equal(d)),
                staged,
                pinned: d.is_pinned(),
                finalization_locked: staged && locked,
                unvetted: staged && hooks::is_unvetted(d),
                health: store.as_ref().map(|s| s.state_of(&id)),
                attempts: entry.map(|e| e.attempts).unwrap_or(0),
                on_trial: entry.is_some_and(|e| e.on_trial()),
                health_reason: entry.and_then(|e| e.reason.clone()),
                health_changed: entry.map(|e| e.changed.clone()),
                pinned_by_stagehand: store.as_ref().is_some_and(|s| s.pinned_by_stagehand(&id)),
            }
        })
        .collect();
    Ok(Status {
        deployments,
        cleanup_pending: cleanup::stamp_exists(sysroot),
        retention_pending: store
            .as_ref()
            .is_some_and(|s| health::retention::pending_in_sysroot(s, sysroot)),
        denylist: store
            .as_ref()
            .map(|s| s.denylist().to_vec())
            .unwrap_or_default(),
        last_rollback: store.as_ref().and_then(|s| s.last_rollback().cloned()),
        health_error,
    })
}
