//! The record that a staged deployment has not passed its hooks yet.
//!
//! Written (atomically) *before* `stage_tree`, rewritten with the deployment
//! serial once it is known, removed once every hook passed. It lives in
//! `/run` like the staged deployment itself, and for the same reason: both
//! must survive the agent dying but not a reboot. A reboot drops the staged
//! deployment (it was never finalized, the finalization lock saw to that), so
//! a record that outlived it would describe nothing.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil;
use crate::sysroot::DeploymentId;

/// Where the record lives.
pub const UNVETTED_PATH: &str = "/run/stagehand/unvetted";

/// State files are small; anything larger was not written by stagehand.
const MAX_SIZE: u64 = 4096;

/// What is being vetted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unvetted {
    /// The stateroot of the deployment being vetted.
    pub stateroot: String,
    /// Its commit.
    pub checksum: String,
    /// Unknown until `stage_tree` has allocated it.
    pub serial: Option<u32>,
    /// Whether finalization was locked before this staging began (by an
    /// admin, for whatever is staged next): if so the lock is not ours to
    /// remove when cleaning up after a staging that never got as far as a
    /// staged deployment.
    #[serde(default)]
    pub lock_preexisting: bool,
    /// The agent that wrote it, for people reading the file.
    pub pid: u32,
}

impl Unvetted {
    /// A record for this process.
    pub fn new(
        stateroot: &str,
        checksum: &str,
        serial: Option<u32>,
        lock_preexisting: bool,
    ) -> Unvetted {
        Unvetted {
            stateroot: stateroot.into(),
            checksum: checksum.into(),
            serial,
            lock_preexisting,
            pid: std::process::id(),
        }
    }

    /// Whether this record describes `d`. Without a serial, any deployment of
    /// the commit matches: better to re-vet a deployment than to trust one.
    pub fn matches(&self, d: &ostree::Deployment) -> bool {
        let id = DeploymentId::of(d);
        id.stateroot == self.stateroot
            && id.checksum == self.checksum
            && self.serial.is_none_or(|s| s == id.serial)
    }
}

/// Parse a record's bytes.
pub(crate) fn parse(bytes: &[u8]) -> std::result::Result<Unvetted, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// A record's bytes.
pub(crate) fn encode(u: &Unvetted) -> Vec<u8> {
    let mut json = serde_json::to_vec(u).expect("serializable");
    json.push(b'\n');
    json
}

/// What the record says, if there is one. An unreadable or torn record
/// yields a record that matches nothing in particular but is still reported,
/// so callers treat the staged deployment as unvetted.
pub(crate) fn read() -> Option<std::result::Result<Unvetted, String>> {
    match fsutil::read_bounded(Path::new(UNVETTED_PATH), MAX_SIZE) {
        Ok(None) => None,
        Ok(Some(bytes)) => Some(parse(&bytes)),
        Err(e) => Some(Err(e.to_string())),
    }
}

/// Record that `u` is being vetted.
pub(crate) fn write(u: &Unvetted) -> Result<()> {
    let path = Path::new(UNVETTED_PATH);
    let dir = path.parent().expect("absolute path");
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("creating", dir, e))?;
    // Callers hold the sysroot lock: a temporary file here is a dead agent's.
    fsutil::remove_stale_temporaries(path);
    fsutil::write_atomic(path, &encode(u))
}

/// Drop the record. Returns whether there was one.
pub(crate) fn clear() -> Result<bool> {
    fsutil::remove_stale_temporaries(Path::new(UNVETTED_PATH));
    fsutil::remove_durable(Path::new(UNVETTED_PATH))
}

/// Whether the staged deployment `d` has not (yet) passed its hooks.
pub(crate) fn is_unvetted(d: &ostree::Deployment) -> bool {
    match read() {
        None => false,
        Some(Ok(u)) => u.matches(d),
        Some(Err(_)) => true,
    }
}
