//! A snapshot of the sysroot as stagehand sees it: what `stagehand status`
//! prints and what the C ABI and cxx bridge return.

use serde::Serialize;

use crate::cleanup;
use crate::error::Result;
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
    /// Whether a cleanup stamp is present: a finalized update left objects
    /// to prune, which the next `autocleanup` does. True also for a stamp
    /// that cannot be read (`autocleanup` then reports it as corrupt).
    pub cleanup_pending: bool,
}

/// Read the status of a loaded sysroot. Read-only: no lock needed.
pub fn status(sysroot: &ostree::Sysroot) -> Result<Status> {
    let repo = sysroot.repo();
    let booted = sysroot.booted_deployment();
    let locked = stage::finalization_locked();
    let deployments = sysroot
        .deployments()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let staged = d.is_staged();
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
            }
        })
        .collect();
    Ok(Status {
        deployments,
        cleanup_pending: cleanup::stamp_exists(sysroot),
    })
}
