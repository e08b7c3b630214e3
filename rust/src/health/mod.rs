//! Deployment health: seed 000's untested / failed / recent flags per
//! deployment, a durable store, mark-good / mark-bad, boot assessment with
//! automatic rollback, a denylist against "flapping", and two known-good
//! deployments kept while a new one is on trial.
//!
//! - [`model`]: the flags, the table that reads them, the records.
//! - [`store`]: the one file per sysroot that holds it all.
//! - transitions: [`mark_good`], [`mark_bad`], [`assess`], and staging
//!   ([`crate::stage()`] starts a trial), each one atomic store write, ordered
//!   so that a crash between any two system calls leaves a state the table
//!   reads correctly and the next operation converges.
//! - [`denylist`], [`denylist_remove`], [`reset`], [`read`].
//!
//! Health is keyed by [`crate::DeploymentId`] (stateroot, checksum, serial), never by
//! a position in the boot menu: a staged deployment keeps its identity when
//! it is finalized, so the record written at staging is the one found after
//! the reboot.
//!
//! Boot assessment takes [`BootEvidence`] from the bootloader (the bootloader
//! backends of the boot-assessment work provide it): only a bootloader that
//! says it fell back because tries ran out makes a deployment that did not
//! boot count as failed. Without evidence, booting an older deployment is
//! treated as a person's choice, and nothing is marked.

pub mod model;
mod ops;
#[cfg(test)]
mod proptests;
pub(crate) mod retention;
pub mod store;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use model::{
    Denied, Entry, Flags, ImpossibleFlags, Pending, PinRecord, Reading, RollbackRecord, State,
    Trigger,
};
pub(crate) use ops::{after_unstage, stage_begin, stage_end};
pub use ops::{
    assess, denylist, denylist_remove, mark_bad, mark_good, read, reset, unfinished_verdict,
    MarkBadOutcome, MarkGoodOutcome, Outcome, ResetOutcome, UnfinishedVerdict, Verdict,
};
pub use retention::{finish_retention, retention_pending, RetentionOutcome, RETENTION_TRIGGER};
pub use store::{store_path, Store};

use crate::error::{IoResultExt, Result};
use crate::fsutil;

/// How health operations treat retention. Built with [`HealthOptions::new`]
/// (or `default()`) and its setters, so new options never break callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthOptions {
    pub(crate) keep_known_good: bool,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            keep_known_good: true,
        }
    }
}

impl HealthOptions {
    /// The defaults: keep two known-good deployments during a trial.
    pub fn new() -> HealthOptions {
        HealthOptions::default()
    }

    /// While a deployment is on trial, pin the two newest known-good
    /// deployments so finalization and cleanup cannot drop them (default:
    /// on). Costs one more deployment in `/boot` during a trial.
    pub fn keep_known_good(mut self, keep: bool) -> Self {
        self.keep_known_good = keep;
        self
    }

    /// Whether two known-good deployments are kept during a trial.
    pub fn keeps_known_good(&self) -> bool {
        self.keep_known_good
    }
}

/// What the bootloader knows about how this boot's entry was chosen.
///
/// Only [`BootEvidence::Fallback`] lets [`assess`] conclude that a newer
/// deployment did not boot: a person choosing an older entry in the boot menu
/// is not a failure, and without a bootloader that counts tries the two
/// cannot be told apart, so the default is to assume a choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum BootEvidence {
    /// Nothing is known (the `none` backend): conservative, nothing is marked.
    #[default]
    Unknown,
    /// The bootloader fell back: the default entry's boot tries ran out
    /// (grubenv `boot_counter` reached 0 without `boot_success`, or a
    /// systemd-boot entry counted down to `+0`).
    Fallback {
        /// How many tries the entry had, if the backend knows.
        tries: Option<u32>,
    },
    /// A person picked the entry by hand.
    ManualChoice,
}

/// Where boot assessment notes that *this boot* started the failed default
/// deployment and assessment rolled it back: a reboot into the rollback is
/// owed. In `/run`, so the note names this boot only.
pub const REBOOT_OWED_PATH: &str = "/run/stagehand/reboot-owed";

/// Note that the booted deployment `id` was booted as the default although it
/// has a failure verdict, so the rollback assessment is about to make leaves
/// the running system on a failed deployment until the next boot.
///
/// This is what an interrupted verdict leaves: a health deadline killed
/// between its verdict and its rollback, then a reboot, boots the failed
/// deployment once more. Assessment finishes the rollback, so the deadline
/// can no longer tell from the deployment order that a reboot is owed; this
/// note tells it. A person who picks a failed entry in the boot menu boots
/// it while it is *not* the default, and gets no note. Written before the
/// rollback it explains, so a kill between the two leaves the note (a re-run
/// of assess writes it again while the order is unchanged). Atomic, not
/// fsynced: `/run` does not outlive the boot it describes.
///
/// `changed` is when the verdict was given: the note counts only for that
/// verdict (a `health reset` and a new verdict in the same boot are a
/// person's doing, not an interruption).
pub(crate) fn note_reboot_owed(id: &crate::DeploymentId, changed: &str) -> Result<()> {
    let path = Path::new(REBOOT_OWED_PATH);
    if reboot_owed().is_some_and(|(d, c)| &d == id && c == changed) {
        return Ok(());
    }
    write_run_file(path, &format!("{id} {changed}\n"))?;
    log::warn!("{id} failed before and booted as the default: a reboot into the rollback is owed");
    Ok(())
}

/// Drop the note of [`note_reboot_owed`] (a `health reset` forgets the
/// verdict it was for). Best effort: a note left behind names a verdict
/// that no longer exists, and counts for nothing.
pub(crate) fn forget_reboot_owed() {
    match std::fs::remove_file(REBOOT_OWED_PATH) {
        Ok(()) => log::info!("forgot the reboot owed for the reset verdict"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("removing {REBOOT_OWED_PATH}: {e}"),
    }
}

/// The deployment [`note_reboot_owed`] named in this boot, if any, with
/// the time of the verdict it was noted for. A note that cannot be read or
/// parsed counts as none: it only ever adds a reboot.
pub(crate) fn reboot_owed() -> Option<(crate::DeploymentId, String)> {
    let text = std::fs::read_to_string(REBOOT_OWED_PATH).ok()?;
    let (id, changed) = text.trim().split_once(' ')?;
    Some((id.parse().ok()?, changed.to_string()))
}

/// Where the current boot's token lives: `/run` is empty at every boot.
pub const BOOT_TOKEN_PATH: &str = "/run/stagehand/boot-token";

/// A token that names the current boot, so a boot is counted once however
/// often assessment runs in it.
///
/// Random, kept in `/run` (a fresh tmpfs at every boot). The kernel's
/// `boot_id` would do on real machines, but it does not change when a
/// container or the test bed "reboots" into another deployment, and `/run`
/// does.
pub fn boot_token() -> Result<String> {
    let path = Path::new(BOOT_TOKEN_PATH);
    if let Some(b) = fsutil::read_optional(path)? {
        let s = String::from_utf8_lossy(&b).trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let token = glib::uuid_string_random().to_string();
    write_run_file(path, &format!("{token}\n"))?;
    Ok(token)
}

/// Write one of this boot's files in `/run/stagehand` (the boot token, the
/// reboot-owed note): atomic (a reader sees the old or the whole new
/// content, `.NAME.tmpPID` renamed into place) but not fsynced: `/run` is a
/// tmpfs that a power cut empties anyway, so an fsync would only cost system
/// calls on the boot path and make no promise. Callers hold the sysroot
/// lock, so a temporary file already there is a killed writer's (found by
/// the crash sweep) and goes first.
fn write_run_file(path: &Path, contents: &str) -> Result<()> {
    let dir = path.parent().expect("a file in /run/stagehand");
    std::fs::create_dir_all(dir).io_ctx("creating", dir)?;
    fsutil::remove_stale_temporaries(path);
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, contents).io_ctx("writing", &tmp)?;
    std::fs::rename(&tmp, path).io_ctx("renaming", &tmp)?;
    Ok(())
}
