//! Every file format stagehand owns, parsed from and encoded to bytes, with
//! no file system and no sysroot.
//!
//! This is the seam the fuzz targets (`fuzz/`) and the property tests
//! (`rust/tests/formats.rs`) use: the readers below are the very functions
//! stagehand runs on the files it finds on disk, so whatever bytes a crash,
//! a full disk or a person leaves in a state file, these decide whether it
//! reads as a state the model allows or as a typed [`Error::Corrupt`]
//! (never a panic, never a silent default). See docs/reliability.md.

use std::path::Path;

use crate::error::{Error, Result};
use crate::sysroot::DeploymentId;

pub use crate::cleanup::CleanupStamp;
pub use crate::health::Store as HealthStore;
pub use crate::hooks::Unvetted;
pub use crate::redline::Stamp as GuardStamp;

/// The path named in parse errors of bytes that did not come from a file.
const NO_FILE: &str = "(bytes)";

/// Parse a health store ([`crate::health::Store::parse`]).
pub fn parse_health_store(bytes: &[u8]) -> Result<HealthStore> {
    HealthStore::parse(bytes, Path::new(NO_FILE))
}

/// Parse a cleanup stamp (`/sysroot/.cleanup`); empty bytes are the legacy
/// stamp older tools write.
pub fn parse_cleanup_stamp(bytes: &[u8]) -> Result<CleanupStamp> {
    crate::cleanup::parse_stamp(Path::new(NO_FILE), bytes)
}

/// Encode a cleanup stamp as stagehand writes it.
pub fn encode_cleanup_stamp(
    deployment: &DeploymentId,
    dropped: &[DeploymentId],
    finalized_at: &str,
    boot_id: Option<&str>,
) -> Vec<u8> {
    crate::cleanup::encode_stamp_fields(deployment, dropped, finalized_at, boot_id)
}

/// What the finalization record (`/run/stagehand/finalize-record`) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizeRecord {
    /// The staged deployment about to be finalized.
    pub staged: DeploymentId,
    /// The other deployments at that moment.
    pub deployments: Vec<DeploymentId>,
    /// The fingerprint of libostree's failure stamp (one line).
    pub failure: String,
}

/// Parse a finalization record.
pub fn parse_finalize_record(bytes: &[u8]) -> Result<FinalizeRecord> {
    let r = crate::cleanup::parse_record(Path::new(NO_FILE), bytes)?;
    Ok(FinalizeRecord {
        staged: r.staged,
        deployments: r.deployments,
        failure: r.failure,
    })
}

/// Encode a finalization record as stagehand writes it.
pub fn encode_finalize_record(r: &FinalizeRecord) -> Vec<u8> {
    crate::cleanup::encode_record(&crate::cleanup::Record {
        staged: r.staged.clone(),
        deployments: r.deployments.clone(),
        failure: r.failure.clone(),
    })
}

/// Parse the guard stamp of step `name`.
pub fn parse_guard_stamp(name: &str, bytes: &[u8]) -> Result<GuardStamp> {
    crate::redline::parse(Path::new(NO_FILE), name, bytes)
}

/// Encode a guard stamp as stagehand writes it.
pub fn encode_guard_stamp(stamp: &GuardStamp) -> Vec<u8> {
    crate::redline::serialize(stamp).into_bytes()
}

/// Parse the hooks' unvetted record (`/run/stagehand/unvetted`). stagehand
/// itself treats a record that fails here as "the staged deployment is
/// unvetted"; this reports why.
pub fn parse_unvetted(bytes: &[u8]) -> Result<Unvetted> {
    crate::hooks::unvetted::parse(bytes).map_err(|detail| Error::Corrupt {
        path: NO_FILE.into(),
        detail,
    })
}

/// Encode an unvetted record as stagehand writes it.
pub fn encode_unvetted(u: &Unvetted) -> Vec<u8> {
    crate::hooks::unvetted::encode(u)
}
