//! The finalize-time cleanup stamp (seed 004).
//!
//! When `ostree-finalize-staged.service` finalizes a staged deployment at
//! shutdown, libostree drops the old rollback deployment from the bootloader
//! configuration and removes its checkout, but it does **not** prune the
//! repository (pruning would slow every shutdown). The objects only the dropped
//! deployment used stay on disk until something runs a full cleanup. Pruning
//! right after staging reclaims nothing, because the rollback is still
//! referenced until finalization. So the right moment is the next boot, and
//! only when a finalization really happened: after an unclean shutdown nothing
//! was finalized and a cleanup would be wasted I/O during boot.
//!
//! The protocol has three steps, each run by a systemd unit (`systemd/`):
//!
//! 1. [`record_staged`], at shutdown, just *before* `ostree admin
//!    finalize-staged`: note which deployment is staged, the deployment list,
//!    and the state of libostree's failure stamp, in [`FINALIZE_RECORD_PATH`].
//!    This must happen before, because finalization unlinks the staged
//!    state file first thing, after which nobody can tell what was staged.
//! 2. [`record_finalized`], right *after* it: write the cleanup stamp
//!    (`/sysroot/.cleanup`) only if the recorded deployment is now a regular
//!    deployment in the current bootloader configuration, the staged state
//!    file is gone, and no finalization failure was recorded during this
//!    shutdown. The stamp names the finalized deployment and the deployments
//!    finalization dropped.
//! 3. [`autocleanup`], on the next boot, when the stamp exists: under the
//!    sysroot lock (waiting while an update agent holds it), run libostree's
//!    full cleanup including the repository prune, report what was freed, and
//!    only then remove the stamp, durably. Any interruption leaves the stamp,
//!    so the next boot converges.
//!
//! Finalization is not the only thing that drops deployments: when a trial
//! ends, [`crate::health`] releases the pins that kept two known-good
//! deployments and removes a deployment only its pin kept. It names that
//! deployment in the same stamp with [`record_removed`] *before* it writes the
//! new deployment list, so a crash in between leaves a stamp naming a
//! deployment that still exists (harmless: the cleanup prunes only what is
//! unreferenced), never a dropped deployment without a stamp.
//!
//! The stamp path is `.cleanup` in the *physical* sysroot (`/sysroot/.cleanup`
//! on a booted system), the path eos-updater's units already use; an empty
//! stamp, as those units write it, counts as a pending cleanup.
//!
//! ## File format
//!
//! The stamp and the record are small text files, written atomically:
//!
//! ```text
//! stagehand-cleanup-stamp 1
//! deployment os:0123…cdef.0
//! dropped os:4567…89ab.0
//! finalized-at 2024-05-01T10:00:00Z
//! boot-id 2f0c…
//! removed os:89ab…0123.0
//! removed-at 2024-05-01T10:05:00Z
//! sha256 <SHA-256 of every byte above this line>
//! ```
//!
//! The first line names the format and its version; the last line is a
//! checksum, so a torn or hand-edited file is detected rather than trusted.
//! `deployment`, `dropped`, `finalized-at` and `boot-id` describe the last
//! finalization and what finalizations dropped; `removed` and `removed-at`
//! the deployments stagehand removed itself.
//!
//! Versions: readers of version 1 require a `deployment` line and ignore keys
//! they do not know, so `removed` lines were added *within* version 1 (an
//! older stagehand reads such a stamp as the finalization it also is, and its
//! cleanup prunes the removed deployments' objects all the same). Version 2
//! differs in one point only: the `deployment` line is optional, for a stamp
//! that records removals and no finalization. A stamp is written as version 1
//! whenever it names a finalized deployment, and as version 2 only when it
//! does not, so every stamp an older stagehand could read stays readable to
//! it; a version-1 reader takes a version-2 stamp for "written by a newer
//! stagehand": still a pending cleanup, which it runs.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gio::prelude::*;
use serde::Serialize;

use crate::error::{Error, GlibResultExt, IoResultExt, Result};
use crate::fsutil;
use crate::stage::{finalization_locked, STAGED_STATE_PATH};
use crate::sysroot::{is_booted, sysroot_path, DeploymentId, SysrootLock};

/// File name of the cleanup stamp in the physical sysroot.
pub const STAMP_FILE_NAME: &str = ".cleanup";

/// Where [`record_staged`] notes the staged deployment before finalization.
///
/// In `/run` on purpose: it describes this boot's shutdown only, so a record
/// that survives (a power cut between the two steps) vanishes with the boot.
pub const FINALIZE_RECORD_PATH: &str = "/run/stagehand/finalize-record";

/// libostree's finalization failure stamp, relative to the sysroot path (its
/// `boot` directory is `/boot` on a booted system). `ostree admin
/// finalize-staged` writes it when finalization fails;
/// `ostree-boot-complete.service` reports and removes it on the next boot.
pub const FINALIZE_FAILURE_STAMP: &str = "boot/ostree/finalize-failure.stamp";

/// How long [`autocleanup`] waits by default for the sysroot lock.
///
/// Long, because the cleanup runs in the background after boot and an update
/// agent may legitimately hold the lock for a whole download; waiting costs
/// nothing, giving up means the stamp stays until the next boot.
pub const DEFAULT_AUTOCLEANUP_LOCK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

const STAMP_MAGIC: &str = "stagehand-cleanup-stamp";
const RECORD_MAGIC: &str = "stagehand-finalize-record";
/// The newest stamp format this stagehand reads and writes (see the module
/// docs: version 1 is still written whenever it can express the stamp).
const FORMAT_VERSION: u32 = 2;
/// State files are a few hundred bytes; anything much larger is not ours.
const MAX_STATE_FILE: u64 = 64 * 1024;
/// How much of libostree's failure message to carry into a report.
const MAX_FAILURE_MESSAGE: u64 = 4096;

/// The physical sysroot: the directory that really holds `ostree/`.
///
/// On a booted system the sysroot path is `/`, where `/ostree` is a symlink
/// into `/sysroot`; state that belongs to the machine rather than to one
/// deployment (the cleanup stamp) lives there, not in the deployment root.
pub fn physical_sysroot(sysroot_path: &Path) -> PathBuf {
    match std::fs::canonicalize(sysroot_path.join("ostree")) {
        Ok(p) => p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| sysroot_path.to_path_buf()),
        Err(_) => sysroot_path.to_path_buf(),
    }
}

/// The cleanup stamp of the sysroot at `sysroot_path` (`/sysroot/.cleanup`
/// for `/` on a booted system).
pub fn stamp_path_for(sysroot_path: &Path) -> PathBuf {
    physical_sysroot(sysroot_path).join(STAMP_FILE_NAME)
}

/// The cleanup stamp of a sysroot.
pub fn stamp_path(sysroot: &ostree::Sysroot) -> PathBuf {
    stamp_path_for(&sysroot_path(sysroot))
}

/// What a cleanup stamp says.
///
/// Non-exhaustive: new kinds of stamps may appear as stagehand learns about
/// more ways deployments go away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CleanupStamp {
    /// An empty stamp, as older tools (eos-updater's drop-in) write it: a
    /// cleanup is pending, nothing more is known.
    Legacy,
    /// Written by stagehand after it verified a finalization (and possibly
    /// extended later by stagehand removing deployments itself).
    Finalized {
        /// The deployment that was finalized (the last one, when several
        /// finalizations happened before a cleanup).
        deployment: DeploymentId,
        /// Deployments the finalizations dropped from the bootloader
        /// configuration: the objects only they used are what the cleanup frees.
        dropped: Vec<DeploymentId>,
        /// When the stamp was written for the finalization (RFC 3339, UTC).
        finalized_at: String,
        /// The boot during whose shutdown the finalization happened.
        boot_id: Option<String>,
        /// Deployments stagehand removed from the deployment list itself
        /// since (or before) the finalization, see [`record_removed`].
        removed: Vec<DeploymentId>,
        /// When the last of them was removed.
        removed_at: Option<String>,
    },
    /// Written by stagehand when it removed deployments from the deployment
    /// list itself (the end of a trial: a deployment only stagehand's pin
    /// kept), with no finalization since the last cleanup.
    Removed {
        /// The deployments removed: the objects only they used are what the
        /// cleanup frees.
        removed: Vec<DeploymentId>,
        /// When the last of them was removed (RFC 3339, UTC).
        removed_at: String,
    },
    /// Written by a newer stagehand in a format this one does not know (for
    /// example before a rollback to an older OS); the cleanup is still pending.
    Newer {
        /// The format version found.
        version: u32,
    },
}

impl CleanupStamp {
    /// The finalized deployment, when the stamp names it.
    pub fn deployment(&self) -> Option<&DeploymentId> {
        match self {
            CleanupStamp::Finalized { deployment, .. } => Some(deployment),
            _ => None,
        }
    }

    /// The deployments whose objects the cleanup is for: those finalizations
    /// dropped, then those stagehand removed. Empty when the stamp does not
    /// say (legacy, newer).
    pub fn gone(&self) -> Vec<&DeploymentId> {
        match self {
            CleanupStamp::Finalized {
                dropped, removed, ..
            } => dropped.iter().chain(removed.iter()).collect(),
            CleanupStamp::Removed { removed, .. } => removed.iter().collect(),
            _ => Vec::new(),
        }
    }
}

/// The content of a stamp stagehand writes, in the shape merging needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StampContent {
    /// The last finalization: deployment, time, boot id.
    finalized: Option<(DeploymentId, String, Option<String>)>,
    dropped: Vec<DeploymentId>,
    removed: Vec<DeploymentId>,
    removed_at: Option<String>,
}

impl StampContent {
    /// What a readable stagehand stamp holds; `None` for kinds that name
    /// nothing (legacy, newer), which a merge replaces.
    fn of(stamp: &CleanupStamp) -> Option<StampContent> {
        match stamp.clone() {
            CleanupStamp::Finalized {
                deployment,
                dropped,
                finalized_at,
                boot_id,
                removed,
                removed_at,
            } => Some(StampContent {
                finalized: Some((deployment, finalized_at, boot_id)),
                dropped,
                removed,
                removed_at,
            }),
            CleanupStamp::Removed {
                removed,
                removed_at,
            } => Some(StampContent {
                finalized: None,
                dropped: Vec::new(),
                removed,
                removed_at: Some(removed_at),
            }),
            _ => None,
        }
    }

    /// The lowest format version that expresses this content: 1 when it
    /// names a finalized deployment (version-1 readers ignore `removed`
    /// lines), 2 when it does not.
    fn version(&self) -> u32 {
        if self.finalized.is_some() {
            1
        } else {
            2
        }
    }

    /// Merge the deployments stagehand removed at `at`.
    fn add_removed(&mut self, removed: &[DeploymentId], at: String) {
        for d in removed {
            if !self.removed.contains(d) {
                self.removed.push(d.clone());
            }
        }
        self.removed_at = Some(at);
    }

    /// Merge a finalization: it is now the finalized deployment; what it
    /// dropped comes first, then what earlier finalizations dropped, unless
    /// the identity is back in `current` (the same commit deployed again
    /// gets the lowest free serial). Removals are kept as they are.
    fn add_finalized(
        &mut self,
        finalized: (DeploymentId, String, Option<String>),
        dropped: &[DeploymentId],
        current: &BTreeSet<DeploymentId>,
    ) {
        let mut all = dropped.to_vec();
        for d in std::mem::take(&mut self.dropped) {
            if !current.contains(&d) && !all.contains(&d) {
                all.push(d);
            }
        }
        self.dropped = all;
        self.finalized = Some(finalized);
    }

    fn encode(&self) -> Vec<u8> {
        let mut fields = Vec::new();
        if let Some((deployment, _, _)) = &self.finalized {
            fields.push(("deployment", deployment.to_string()));
        }
        fields.extend(self.dropped.iter().map(|d| ("dropped", d.to_string())));
        if let Some((_, at, boot)) = &self.finalized {
            fields.push(("finalized-at", at.clone()));
            if let Some(b) = boot {
                fields.push(("boot-id", b.clone()));
            }
        }
        fields.extend(self.removed.iter().map(|d| ("removed", d.to_string())));
        if let Some(at) = &self.removed_at {
            fields.push(("removed-at", at.clone()));
        }
        textfmt::encode(STAMP_MAGIC, self.version(), &fields)
    }
}

/// The small versioned, checksummed text format of the stamp and the record.
mod textfmt {
    use super::FORMAT_VERSION;

    pub(super) enum Parsed {
        /// A version this stagehand reads, and its fields.
        Current(u32, Vec<(String, String)>),
        Newer(u32),
    }

    fn sha256(data: &[u8]) -> String {
        glib::compute_checksum_for_data(glib::ChecksumType::Sha256, data)
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    pub(super) fn encode(magic: &str, version: u32, fields: &[(&str, String)]) -> Vec<u8> {
        let mut s = format!("{magic} {version}\n");
        for (k, v) in fields {
            // Values are identities, timestamps and fingerprints: one line each.
            let v = v.replace(['\n', '\r'], " ");
            s.push_str(k);
            s.push(' ');
            s.push_str(v.trim());
            s.push('\n');
        }
        let sum = sha256(s.as_bytes());
        s.push_str("sha256 ");
        s.push_str(&sum);
        s.push('\n');
        s.into_bytes()
    }

    pub(super) fn decode(magic: &str, bytes: &[u8]) -> Result<Parsed, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        let header = text.lines().next().unwrap_or("");
        let version = match header.split_once(' ') {
            Some((m, v)) if m == magic => v
                .parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("bad format version in {header:?}"))?,
            _ => {
                let shown: String = header.chars().take(60).collect();
                return Err(format!("not a {magic} file (first line {shown:?})"));
            }
        };
        if version > FORMAT_VERSION {
            return Ok(Parsed::Newer(version));
        }
        let Some(without_nl) = text.strip_suffix('\n') else {
            return Err("truncated (no final newline)".into());
        };
        let (body, last) = match without_nl.rfind('\n') {
            Some(i) => (&text[..=i], &without_nl[i + 1..]),
            None => return Err("truncated (no checksum line)".into()),
        };
        let Some(sum) = last.strip_prefix("sha256 ") else {
            return Err("truncated (no checksum line)".into());
        };
        if sha256(body.as_bytes()) != sum {
            return Err("checksum mismatch (torn or edited)".into());
        }
        let mut fields = Vec::new();
        // Split on '\n' only (`lines()` would also eat a '\r'), and accept a
        // value only in the form `encode` writes it (one line, no control
        // characters, no surrounding blanks): a file reads as exactly one
        // state, and that state written again gives the same file. Found by
        // the cleanup_stamp and finalize_record fuzz targets.
        for line in body.split('\n').skip(1).filter(|l| !l.is_empty()) {
            match line.split_once(' ') {
                Some((k, v))
                    if !k.is_empty()
                        && !v.is_empty()
                        && v.trim() == v
                        && !line.chars().any(char::is_control) =>
                {
                    fields.push((k.to_string(), v.to_string()))
                }
                _ => return Err(format!("malformed line {line:?}")),
            }
        }
        Ok(Parsed::Current(version, fields))
    }

    pub(super) fn one<'a>(fields: &'a [(String, String)], key: &str) -> Result<&'a str, String> {
        match optional(fields, key)? {
            Some(v) => Ok(v),
            None => Err(format!("no {key:?} line")),
        }
    }

    pub(super) fn optional<'a>(
        fields: &'a [(String, String)],
        key: &str,
    ) -> Result<Option<&'a str>, String> {
        let mut it = fields.iter().filter(|(k, _)| k == key);
        match (it.next(), it.next()) {
            (Some((_, v)), None) => Ok(Some(v)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(format!("more than one {key:?} line")),
        }
    }

    pub(super) fn all<'a>(
        fields: &'a [(String, String)],
        key: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        fields
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_id(v: &str) -> Result<DeploymentId, String> {
    v.parse::<DeploymentId>()
        .map_err(|_| format!("{v:?} is not a deployment identity"))
}

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.into(),
        detail: detail.into(),
    }
}

pub(crate) fn parse_stamp(path: &Path, bytes: &[u8]) -> Result<CleanupStamp> {
    if bytes.is_empty() {
        return Ok(CleanupStamp::Legacy);
    }
    let left = "; left in place: inspect it, then remove it or force the cleanup";
    let (version, fields) = match textfmt::decode(STAMP_MAGIC, bytes) {
        Ok(textfmt::Parsed::Newer(version)) => return Ok(CleanupStamp::Newer { version }),
        Ok(textfmt::Parsed::Current(v, f)) => (v, f),
        Err(d) => return Err(corrupt(path, format!("{d}{left}"))),
    };
    let parsed = (|| -> Result<CleanupStamp, String> {
        let ids = |key| {
            textfmt::all(&fields, key)
                .map(parse_id)
                .collect::<Result<Vec<_>, _>>()
        };
        let dropped = ids("dropped")?;
        let removed = ids("removed")?;
        let removed_at = textfmt::optional(&fields, "removed-at")?.map(String::from);
        // Version 1 requires the finalized deployment; version 2 allows a
        // stamp of removals only.
        let deployment = match version {
            1 => Some(textfmt::one(&fields, "deployment")?),
            _ => textfmt::optional(&fields, "deployment")?,
        };
        match deployment {
            Some(d) => Ok(CleanupStamp::Finalized {
                deployment: parse_id(d)?,
                dropped,
                finalized_at: textfmt::one(&fields, "finalized-at")?.to_string(),
                boot_id: textfmt::optional(&fields, "boot-id")?.map(String::from),
                removed,
                removed_at,
            }),
            None if !dropped.is_empty() => {
                Err("\"dropped\" lines without the \"deployment\" line of a finalization".into())
            }
            None if removed.is_empty() => {
                Err("names neither a finalized nor a removed deployment".into())
            }
            None => Ok(CleanupStamp::Removed {
                removed,
                removed_at: removed_at.ok_or("no \"removed-at\" line")?,
            }),
        }
    })();
    parsed.map_err(|d| corrupt(path, format!("{d}{left}")))
}

/// The stamp's bytes for given field values (for the property tests and
/// fuzz targets: no clock, no boot id).
pub(crate) fn encode_stamp_fields(
    deployment: &DeploymentId,
    dropped: &[DeploymentId],
    finalized_at: &str,
    boot_id: Option<&str>,
) -> Vec<u8> {
    StampContent {
        finalized: Some((
            deployment.clone(),
            finalized_at.to_string(),
            boot_id.map(str::to_string),
        )),
        dropped: dropped.to_vec(),
        removed: Vec::new(),
        removed_at: None,
    }
    .encode()
}

fn now_utc() -> String {
    glib::DateTime::now_utc()
        .ok()
        .and_then(|t| t.format("%Y-%m-%dT%H:%M:%SZ").ok())
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Read the stamp and change it under the sysroot lock: `merge` gets what a
/// readable stagehand stamp holds (empty when there is none), and the result
/// replaces the stamp atomically and durably.
///
/// A stamp that names nothing stagehand can merge (empty legacy stamp, newer
/// format, unreadable or corrupt) is replaced, with a message in the journal:
/// the new stamp means "cleanup pending" all the same, and the cleanup is a
/// full one, so nothing it would have pruned is lost. Temporary files a
/// killed writer left next to the stamp are removed first.
fn update_stamp(lock: &SysrootLock, merge: impl FnOnce(&mut StampContent)) -> Result<StampContent> {
    let path = stamp_path(lock.sysroot());
    // Only writers holding the sysroot lock touch the stamp, so a temporary
    // left next to it is a killed writer's (it would stay for good).
    fsutil::remove_stale_temporaries(&path);
    let mut content = match read_stamp_bytes(&path).and_then(|b| match b {
        Some(b) => parse_stamp(&path, &b).map(Some),
        None => Ok(None),
    }) {
        Ok(None) => StampContent::default(),
        Ok(Some(stamp)) => match StampContent::of(&stamp) {
            Some(c) => c,
            None => {
                log::info!(
                    "replacing the pending cleanup stamp ({}); the new one keeps the cleanup pending",
                    match stamp {
                        CleanupStamp::Legacy => "empty, written by an older tool".to_string(),
                        CleanupStamp::Newer { version } => format!("format version {version}"),
                        _ => "unknown kind".to_string(),
                    }
                );
                StampContent::default()
            }
        },
        Err(e) => {
            log::warn!("replacing the pending cleanup stamp: {e}");
            StampContent::default()
        }
    };
    merge(&mut content);
    fsutil::write_atomic(&path, &content.encode())?;
    Ok(content)
}

/// Record in the cleanup stamp that stagehand itself removed `removed` from
/// the deployment list, so the next [`autocleanup`] prunes the objects only
/// they used. Call it *before* writing the deployment list that drops them.
///
/// Finalization at shutdown is not the only way a deployment goes: when a
/// trial ends, [`crate::health`] removes a deployment that only its
/// known-good pin kept, with `write_deployments` and no repository prune
/// (it may run at boot). Recording first makes every crash point safe:
/// interrupted after the stamp and before the drop, the stamp names a
/// deployment that still exists, and the cleanup prunes only what nothing
/// references (it is reported removed only once it is gone); the other order
/// could drop a deployment and lose the only note that its objects await a
/// prune.
///
/// Merges into a pending stamp the way finalizations accumulate: a
/// finalization stamp keeps its deployment and gains `removed` lines; with
/// no finalization pending the stamp is format version 2 (see the module
/// docs). An empty, newer or unreadable stamp is replaced (it meant "cleanup
/// pending", and still does). Written atomically and durably; the lock
/// proves no other stagehand writes the stamp meanwhile.
pub fn record_removed(lock: &SysrootLock, removed: &[DeploymentId]) -> Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    update_stamp(lock, |c| c.add_removed(removed, now_utc()))?;
    let names: Vec<String> = removed.iter().map(|d| d.to_string()).collect();
    log::info!(
        "cleanup stamp names {}: the next autocleanup prunes what only {} used",
        names.join(", "),
        if removed.len() == 1 { "it" } else { "they" }
    );
    Ok(())
}

/// The record's bytes (see [`parse_record`]).
pub(crate) fn encode_record(r: &Record) -> Vec<u8> {
    let mut fields = vec![("staged", r.staged.to_string())];
    fields.extend(r.deployments.iter().map(|d| ("deployment", d.to_string())));
    fields.push(("failure-stamp", r.failure.clone()));
    textfmt::encode(RECORD_MAGIC, 1, &fields)
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Read a stamp's bytes. A stamp that exists but cannot be read is corrupt
/// from our point of view: it must not be mistaken for "no cleanup pending".
fn read_stamp_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    match fsutil::read_bounded(path, MAX_STATE_FILE) {
        Ok(b) => Ok(b),
        Err(Error::Io { source, .. }) => Err(corrupt(path, format!("cannot be read: {source}"))),
        Err(e) => Err(e),
    }
}

/// Whether a cleanup is pending for the sysroot at `sysroot_path`, and what
/// the stamp says. Needs no loaded sysroot and no lock: one file read.
///
/// An empty stamp (older tools) is [`CleanupStamp::Legacy`]; a stamp that
/// cannot be read or parsed is [`Error::Corrupt`] and is left in place.
pub fn pending_cleanup_at(sysroot_path: &Path) -> Result<Option<CleanupStamp>> {
    let path = stamp_path_for(sysroot_path);
    match read_stamp_bytes(&path)? {
        None => Ok(None),
        Some(b) => parse_stamp(&path, &b).map(Some),
    }
}

/// Whether a cleanup is pending for this sysroot, and what the stamp says.
/// See [`pending_cleanup_at`].
pub fn pending_cleanup(sysroot: &ostree::Sysroot) -> Result<Option<CleanupStamp>> {
    pending_cleanup_at(&sysroot_path(sysroot))
}

/// Whether a stamp file exists at all (readable or not): what `status` shows.
pub(crate) fn stamp_exists(sysroot: &ostree::Sysroot) -> bool {
    std::fs::symlink_metadata(stamp_path(sysroot)).is_ok()
}

fn require_booted(sysroot: &ostree::Sysroot) -> Result<()> {
    if is_booted(sysroot) {
        return Ok(());
    }
    Err(Error::NotBooted(format!(
        "{} is not the booted sysroot; the finalization steps belong to the running system's shutdown",
        sysroot_path(sysroot).display()
    )))
}

/// What [`record_staged`] writes: the state just before finalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) staged: DeploymentId,
    pub(crate) deployments: Vec<DeploymentId>,
    pub(crate) failure: String,
}

fn failure_stamp_path(sysroot: &ostree::Sysroot) -> PathBuf {
    sysroot_path(sysroot).join(FINALIZE_FAILURE_STAMP)
}

/// A fingerprint of libostree's failure stamp: `absent`, or its identity
/// and timestamps. libostree replaces the file atomically, so a failure during
/// this shutdown always changes the fingerprint, while a stale stamp left
/// from an earlier boot keeps it.
fn failure_fingerprint(sysroot: &ostree::Sysroot) -> Result<String> {
    let p = failure_stamp_path(sysroot);
    match std::fs::symlink_metadata(&p) {
        Ok(m) => Ok(format!(
            "{}:{}:{}:{}.{:09}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("absent".into()),
        Err(e) => Err(Error::io("checking", &p, e)),
    }
}

pub(crate) fn parse_record(path: &Path, bytes: &[u8]) -> Result<Record> {
    let fields = match textfmt::decode(RECORD_MAGIC, bytes) {
        Ok(textfmt::Parsed::Current(_, f)) => f,
        Ok(textfmt::Parsed::Newer(v)) => {
            return Err(corrupt(path, format!("written in format version {v}")))
        }
        Err(d) => return Err(corrupt(path, d)),
    };
    let parsed = (|| -> Result<Record, String> {
        Ok(Record {
            staged: parse_id(textfmt::one(&fields, "staged")?)?,
            deployments: textfmt::all(&fields, "deployment")
                .map(parse_id)
                .collect::<Result<_, _>>()?,
            failure: textfmt::one(&fields, "failure-stamp")?.to_string(),
        })
    })();
    parsed.map_err(|d| corrupt(path, d))
}

/// Step 1, at shutdown just before `ostree admin finalize-staged`: record the
/// staged deployment, the deployment list and the failure-stamp fingerprint
/// in [`FINALIZE_RECORD_PATH`].
///
/// Returns the staged deployment, or `None` when nothing is staged (a record
/// left from earlier in this boot is then removed, so a later step cannot
/// act on stale information). The sysroot must be freshly loaded, and be the
/// booted one ([`Error::NotBooted`] otherwise: the record in `/run` belongs
/// to the running system).
pub fn record_staged(sysroot: &ostree::Sysroot) -> Result<Option<DeploymentId>> {
    require_booted(sysroot)?;
    let record = Path::new(FINALIZE_RECORD_PATH);
    let Some(staged) = sysroot.staged_deployment() else {
        fsutil::remove_durable(record)?;
        log::info!("nothing is staged; nothing to record");
        return Ok(None);
    };
    let id = DeploymentId::of(&staged);
    let rec = Record {
        staged: id.clone(),
        deployments: sysroot
            .deployments()
            .iter()
            .filter(|d| !d.is_staged())
            .map(DeploymentId::of)
            .collect(),
        failure: failure_fingerprint(sysroot)?,
    };
    let dir = record.parent().expect("absolute path");
    std::fs::create_dir_all(dir).io_ctx("creating", dir)?;
    // Recording takes no sysroot lock (shutdown must not wait on an agent):
    // only the temporary files of recorders that died are removed.
    fsutil::remove_dead_writers_temporaries(record);
    fsutil::write_atomic(record, &encode_record(&rec))?;
    log::info!(
        "recorded staged deployment {id}{}",
        if finalization_locked() {
            " (finalization is locked)"
        } else {
            ""
        }
    );
    Ok(Some(id))
}

/// What [`record_finalized`] concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum FinalizeOutcome {
    /// The deployment was finalized; the cleanup stamp was written.
    Stamped {
        /// The finalized deployment.
        deployment: DeploymentId,
        /// Deployments the finalization dropped.
        dropped: Vec<DeploymentId>,
    },
    /// Nothing was recorded before finalization (nothing was staged, or the
    /// record step did not run): nothing is known to be finalized.
    NotRecorded,
    /// The deployment is still staged (finalization locked, or it never ran).
    StillStaged {
        /// The staged deployment.
        deployment: DeploymentId,
        /// Whether finalization is locked.
        finalization_locked: bool,
    },
    /// libostree recorded a finalization failure during this shutdown.
    Failed {
        /// The deployment that was staged.
        deployment: DeploymentId,
        /// libostree's failure message (from its failure stamp).
        message: String,
    },
    /// The staged state is gone but the deployment is not a regular deployment
    /// in the bootloader configuration (finalization was interrupted, or the
    /// deployment was unstaged).
    NotDeployed {
        /// The deployment that was staged.
        deployment: DeploymentId,
    },
}

impl FinalizeOutcome {
    /// Whether the stamp was written.
    pub fn stamped(&self) -> bool {
        matches!(self, FinalizeOutcome::Stamped { .. })
    }
}

impl std::fmt::Display for FinalizeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FinalizeOutcome::Stamped {
                deployment,
                dropped,
            } => {
                write!(f, "{deployment} was finalized; cleanup stamp written")?;
                if !dropped.is_empty() {
                    let d: Vec<String> = dropped.iter().map(|d| d.to_string()).collect();
                    write!(f, " (dropped {})", d.join(", "))?;
                }
                Ok(())
            }
            FinalizeOutcome::NotRecorded => f.write_str(
                "no staged deployment was recorded before finalization; no cleanup stamp",
            ),
            FinalizeOutcome::StillStaged {
                deployment,
                finalization_locked,
            } => write!(
                f,
                "{deployment} is still staged{}; no cleanup stamp",
                if *finalization_locked {
                    " (finalization locked)"
                } else {
                    ""
                }
            ),
            FinalizeOutcome::Failed {
                deployment,
                message,
            } => write!(
                f,
                "finalizing {deployment} failed ({message}); no cleanup stamp"
            ),
            FinalizeOutcome::NotDeployed { deployment } => write!(
                f,
                "{deployment} is not in the bootloader configuration; no cleanup stamp"
            ),
        }
    }
}

/// Step 2, at shutdown right after `ostree admin finalize-staged`: write the
/// cleanup stamp if, and only if, finalization demonstrably happened.
///
/// Evidence required, in order: the record of step 1 exists; libostree's
/// failure stamp did not appear or change since then; the staged state file
/// is gone; and the recorded deployment is a regular (not staged) deployment
/// of the freshly loaded bootloader configuration. Anything else is an
/// outcome, not an error: no stamp is written and the reason is returned.
///
/// A stamp still pending is merged: an earlier finalization's dropped
/// deployments and the deployments stagehand removed ([`record_removed`])
/// are kept, the finalized deployment is this one. An empty, newer or
/// unreadable stamp is replaced, since the new stamp says "cleanup pending"
/// all the same. Deployments with a failure verdict are moved behind the
/// known-good ones, so the finalized deployment's fallback is one known to
/// boot (a verdict given while it was staged could not reorder them). The
/// record is consumed.
/// Like [`record_staged`], only for the booted sysroot.
pub fn record_finalized(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<FinalizeOutcome> {
    let sysroot = lock.sysroot();
    require_booted(sysroot)?;
    let record_path = Path::new(FINALIZE_RECORD_PATH);
    let Some(bytes) = fsutil::read_bounded(record_path, MAX_STATE_FILE)? else {
        return Ok(FinalizeOutcome::NotRecorded);
    };
    let record = parse_record(record_path, &bytes)?;
    let deployment = record.staged.clone();
    let outcome = decide(lock, &record, cancellable)?;
    if let Some(outcome) = outcome {
        fsutil::remove_durable(record_path)?;
        log::info!("{outcome}");
        return Ok(outcome);
    }

    let current: BTreeSet<DeploymentId> =
        sysroot.deployments().iter().map(DeploymentId::of).collect();
    let dropped: Vec<DeploymentId> = record
        .deployments
        .iter()
        .filter(|d| !current.contains(d))
        .cloned()
        .collect();
    let finalized = (deployment.clone(), now_utc(), boot_id());
    let content = update_stamp(lock, |c| c.add_finalized(finalized, &dropped, &current))?;
    let dropped = content.dropped;
    // A failure verdict given while the deployment was staged may have left
    // the failed deployment right behind it (libostree 2022.7 could not
    // reorder then): it would be the fallback entry of the update's trial.
    // Before the record goes, so a re-run after a kill tries again; never
    // at the stamp's expense (the next `assess` orders them too).
    match crate::health::retention::order_after_finalization(lock, cancellable) {
        Ok(_) => {}
        Err(e) => log::warn!("ordering failed deployments behind the known-good ones: {e}"),
    }
    fsutil::remove_durable(record_path)?;
    let outcome = FinalizeOutcome::Stamped {
        deployment,
        dropped,
    };
    log::info!("{outcome}");
    Ok(outcome)
}

/// The checks of [`record_finalized`]: `Some(reason)` when no stamp may be written.
fn decide(
    lock: &SysrootLock,
    record: &Record,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Option<FinalizeOutcome>> {
    let sysroot = lock.sysroot();
    let deployment = record.staged.clone();
    // A failure recorded during this shutdown wins over everything else:
    // libostree may have failed after unlinking the staged state.
    let fingerprint = failure_fingerprint(sysroot)?;
    if fingerprint != "absent" && fingerprint != record.failure {
        let message = fsutil::read_bounded(&failure_stamp_path(sysroot), MAX_FAILURE_MESSAGE)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_else(|| "unreadable failure stamp".into());
        return Ok(Some(FinalizeOutcome::Failed {
            deployment,
            message,
        }));
    }
    if Path::new(STAGED_STATE_PATH).exists() {
        return Ok(Some(FinalizeOutcome::StillStaged {
            deployment,
            finalization_locked: finalization_locked(),
        }));
    }
    // Read the bootloader configuration as it is now, not as it was loaded.
    sysroot
        .load(cancellable)
        .ctx(|| "reloading the sysroot after finalization".into())?;
    let regular = sysroot
        .deployments()
        .iter()
        .any(|d| !d.is_staged() && deployment.matches(d));
    if !regular {
        return Ok(Some(FinalizeOutcome::NotDeployed { deployment }));
    }
    Ok(None)
}

/// Options of [`autocleanup`]. Built with [`CleanupOptions::new`] and its
/// setters, so new options never break callers.
#[derive(Debug, Clone)]
pub struct CleanupOptions {
    lock_timeout: Duration,
    force: bool,
}

impl Default for CleanupOptions {
    fn default() -> Self {
        CleanupOptions::new()
    }
}

impl CleanupOptions {
    /// Wait up to [`DEFAULT_AUTOCLEANUP_LOCK_TIMEOUT`]; act only on a readable stamp.
    pub fn new() -> CleanupOptions {
        CleanupOptions {
            lock_timeout: DEFAULT_AUTOCLEANUP_LOCK_TIMEOUT,
            force: false,
        }
    }

    /// How long to wait while another process holds the sysroot lock.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Clean up even without a stamp, or with one that cannot be read; a
    /// stamp present is removed after success (an administrator's override
    /// for a corrupt stamp).
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// What a cleanup did. The default value is "nothing to do".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Whether a cleanup ran (false: no stamp, nothing was done).
    pub performed: bool,
    /// What the stamp said (`None` when there was none, or it was unreadable
    /// and the cleanup was forced).
    pub stamp: Option<CleanupStamp>,
    /// Deployments whose removal this cleanup completed: those the stamp
    /// names (dropped by a finalization or removed by stagehand) that are
    /// gone, and any deployment directory this run deleted.
    pub deployments_removed: Vec<DeploymentId>,
    /// Repository objects deleted.
    pub objects_freed: u64,
    /// Their size in bytes (file sizes, as libostree counts them).
    pub bytes_freed: u64,
    /// Objects left in the repository.
    pub objects_remaining: u64,
    /// Their size in bytes.
    pub bytes_remaining: u64,
    /// Whether the stamp was removed (false when none was present, or it
    /// changed while the cleanup ran and so describes a newer finalization).
    pub stamp_removed: bool,
    /// Pins of an ended trial that this run released first
    /// ([`crate::health::finish_retention`]); a deployment only they kept
    /// is in `deployments_removed`.
    pub released_pins: Vec<DeploymentId>,
}

/// Step 3, at boot when the stamp exists: run the pending cleanup.
///
/// Without a stamp and without the retention trigger
/// ([`crate::health::RETENTION_TRIGGER`]: the pins of an ended trial, which
/// mark-good leaves to this) it returns at once, having looked at two
/// paths: no lock, no sysroot I/O. [`run_cleanup`] does that housekeeping
/// first. Otherwise it takes the sysroot lock, waiting up to the
/// configured timeout while an update agent holds it ([`Error::Locked`]
/// after that, with the stamp kept), and runs [`run_cleanup`].
///
/// A corrupt stamp is [`Error::Corrupt`] (kept; `force` overrides). With
/// the retention trigger set, that comes after the housekeeping's steps
/// that need no stamp: a damaged stamp must not keep the pins of an ended
/// trial held until an administrator acts (see [`run_cleanup`]).
pub fn autocleanup(
    sysroot: &ostree::Sysroot,
    opts: &CleanupOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<CleanupReport> {
    // Retention housekeeping a verdict deferred (health::finish_retention)
    // is a reason to run too: mark-good and assess leave a trigger file for
    // it (one stat; the sysroot need not even be loaded to look).
    //
    // A corrupt stamp is refused (`Corrupt`, kept for the administrator),
    // but not before the housekeeping that needs no stamp: with the trigger
    // set, the lock is taken and run_cleanup releases the pins of an ended
    // trial first, then reports the stamp.
    let retention = sysroot_path(sysroot)
        .join(crate::health::RETENTION_TRIGGER)
        .exists();
    match pending_cleanup(sysroot) {
        Ok(None) if !opts.force && !retention => {
            log::info!("no cleanup pending");
            return Ok(CleanupReport::default());
        }
        Err(e) if !opts.force && !retention => return Err(e),
        _ => {}
    }
    let lock = SysrootLock::acquire(sysroot, opts.lock_timeout, cancellable)?;
    run_cleanup(&lock, opts.force, cancellable)
}

/// Run the pending cleanup with the sysroot lock already held.
///
/// libostree's full cleanup (`ostree_sysroot_cleanup`: old boot versions,
/// undeployed checkouts, deployment refs, and the repository prune), then a
/// `syncfs` so the deletions are on disk, and only then the durable removal
/// of the stamp. On any error the stamp stays and the next run starts over;
/// every step is idempotent, so an interruption anywhere converges.
///
/// The freed objects and bytes are measured from the repository before and
/// after, so they are exact unless another process writes to the repository
/// at the same time (a pull without the sysroot lock); then they are an
/// underestimate. libostree itself prints `Freed objects: …` with
/// `g_print()`; callers that own stdout may want a print handler.
///
/// Without `force`, a missing stamp means another cleanup got there first:
/// nothing is done. A corrupt stamp is [`Error::Corrupt`] unless `force`:
/// the retention housekeeping before it still releases stagehand's pins,
/// but removes no deployment (it would have to name it in the stamp, so
/// replace the stamp the administrator is asked to inspect); the error
/// names what stays listed, and `force` finishes it.
pub fn run_cleanup(
    lock: &SysrootLock,
    force: bool,
    cancellable: Option<&gio::Cancellable>,
) -> Result<CleanupReport> {
    let sysroot = lock.sysroot();
    // First the retention housekeeping that mark-good and assess defer off
    // the boot path: what it removes goes into the stamp, so this very
    // cleanup deletes its checkout and prunes its objects.
    // A corrupt stamp: the housekeeping releases the pins but removes
    // nothing (that would replace the stamp) and says so in the `Corrupt`
    // error, which is this cleanup's result too (unless forced: then the
    // removal replaces the stamp, as every writer does).
    let stamp_path = stamp_path(sysroot);
    let retention = match crate::health::retention::finish_retention_with(lock, force, cancellable)
    {
        Ok(r) => r,
        Err(Error::Corrupt { path, detail }) if !force && path == stamp_path => {
            return Err(Error::Corrupt { path, detail })
        }
        Err(e) => {
            log::warn!("retention housekeeping: {e}; cleaning up without it");
            crate::health::RetentionOutcome::default()
        }
    };
    let raw = match read_stamp_bytes(&stamp_path) {
        Ok(r) => Ok(r),
        Err(e) if force => {
            log::warn!("forcing the cleanup: {e}");
            Err(())
        }
        Err(e) => return Err(e),
    };
    let stamp = match &raw {
        Ok(None) if !force => {
            log::info!("no cleanup pending");
            return Ok(CleanupReport {
                released_pins: retention.released_pins,
                ..CleanupReport::default()
            });
        }
        Ok(None) | Err(()) => None,
        Ok(Some(b)) => match parse_stamp(&stamp_path, b) {
            Ok(s) => Some(s),
            Err(e) if force => {
                log::warn!("forcing the cleanup: {e}");
                None
            }
            Err(e) => return Err(e),
        },
    };

    let physical = physical_sysroot(&sysroot_path(sysroot));
    let repo_path = sysroot
        .repo()
        .path()
        .path()
        .unwrap_or_else(|| physical.join("ostree/repo"));
    let dirs_before = deployment_dirs(&physical)?;
    let before = repo_usage(&repo_path)?;
    sysroot
        .cleanup(cancellable)
        .ctx(|| format!("cleaning up sysroot {}", physical.display()))?;
    let after = repo_usage(&repo_path)?;
    let dirs_after = deployment_dirs(&physical)?;
    // The deletions must be on disk before the stamp goes: otherwise a power
    // cut could keep the objects and lose the stamp that would prune them.
    let repo_fd = fsutil::open_dir(&repo_path)?;
    rustix::fs::syncfs(&repo_fd)
        .map_err(|e| Error::io("syncing the file system of", &repo_path, e.into()))?;

    // A dropped deployment's identity can come back (the same commit
    // deployed again gets the lowest free serial): only count it if gone.
    let live: BTreeSet<DeploymentId> = sysroot.deployments().iter().map(DeploymentId::of).collect();
    let mut removed: Vec<DeploymentId> = Vec::new();
    for d in stamp.iter().flat_map(|s| s.gone()) {
        if !live.contains(d) && !removed.contains(d) {
            removed.push(d.clone());
        }
    }
    for d in dirs_before.difference(&dirs_after) {
        if !removed.contains(d) {
            removed.push(d.clone());
        }
    }

    // Remove the stamp only if it is the one we acted on: a stamp written
    // meanwhile describes a newer finalization and must survive.
    let stamp_removed = match (&raw, read_stamp_bytes(&stamp_path)) {
        (_, Ok(None)) => false,
        (Ok(None), Ok(Some(_))) => {
            log::warn!(
                "{} appeared during the cleanup; keeping it",
                stamp_path.display()
            );
            false
        }
        (Ok(Some(a)), Ok(Some(b))) if *a != b => {
            log::warn!(
                "{} changed during the cleanup; keeping it",
                stamp_path.display()
            );
            false
        }
        (Ok(Some(_)), Err(e)) if !force => {
            log::warn!("keeping the cleanup stamp: {e}");
            false
        }
        _ => {
            fsutil::remove_stale_temporaries(&stamp_path);
            fsutil::remove_durable(&stamp_path)?
        }
    };
    let report = CleanupReport {
        performed: true,
        stamp,
        deployments_removed: removed,
        objects_freed: before.0.saturating_sub(after.0),
        bytes_freed: before.1.saturating_sub(after.1),
        objects_remaining: after.0,
        bytes_remaining: after.1,
        stamp_removed,
        released_pins: retention.released_pins,
    };
    log::info!(
        "cleanup done: {} deployment(s) removed, {} objects ({} bytes) freed",
        report.deployments_removed.len(),
        report.objects_freed,
        report.bytes_freed
    );
    Ok(report)
}

/// Deployment checkouts on disk: `ostree/deploy/<stateroot>/deploy/<checksum>.<serial>`.
fn deployment_dirs(physical: &Path) -> Result<BTreeSet<DeploymentId>> {
    let mut out = BTreeSet::new();
    let deploy = physical.join("ostree/deploy");
    let stateroots = match std::fs::read_dir(&deploy) {
        Ok(it) => it,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("listing", &deploy, e)),
    };
    for sr in stateroots {
        let sr = sr.io_ctx("listing", &deploy)?;
        let stateroot = sr.file_name().to_string_lossy().into_owned();
        let dir = sr.path().join("deploy");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e.io_ctx("listing", &dir)?;
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(id) = format!("{stateroot}:{name}").parse::<DeploymentId>() {
                out.insert(id);
            }
        }
    }
    Ok(out)
}

/// Loose objects in a repository and their total size, as libostree counts
/// them (`objects/XX/*`, file sizes without following symlinks).
fn repo_usage(repo: &Path) -> Result<(u64, u64)> {
    let objects = repo.join("objects");
    let mut count = 0;
    let mut bytes = 0;
    let subdirs = std::fs::read_dir(&objects).io_ctx("listing", &objects)?;
    for sub in subdirs {
        let sub = sub.io_ctx("listing", &objects)?;
        if !sub.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = sub.path();
        for obj in std::fs::read_dir(&dir).io_ctx("listing", &dir)? {
            let obj = obj.io_ctx("listing", &dir)?;
            // DirEntry::metadata does not follow symlinks (symlink objects).
            match obj.metadata() {
                Ok(m) => {
                    count += 1;
                    bytes += m.len();
                }
                // Deleted under us by a concurrent writer: not ours to count.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("examining", obj.path(), e)),
            }
        }
    }
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char, serial: u32) -> DeploymentId {
        DeploymentId {
            stateroot: "os".into(),
            checksum: c.to_string().repeat(64),
            serial,
        }
    }

    /// A stamp as `record_finalized` writes it with nothing pending before.
    fn encode_stamp(deployment: &DeploymentId, dropped: &[DeploymentId]) -> Vec<u8> {
        let mut c = StampContent::default();
        c.add_finalized(
            (deployment.clone(), now_utc(), boot_id()),
            dropped,
            &BTreeSet::new(),
        );
        c.encode()
    }

    #[test]
    fn stamp_round_trips_and_names_the_deployment() {
        let bytes = encode_stamp(&id('a', 0), &[id('b', 1)]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("stagehand-cleanup-stamp 1\n"), "{text}");
        assert!(text.contains(&format!("deployment {}\n", id('a', 0))));
        match parse_stamp(Path::new("/x"), &bytes).unwrap() {
            CleanupStamp::Finalized {
                deployment,
                dropped,
                finalized_at,
                ..
            } => {
                assert_eq!(deployment, id('a', 0));
                assert_eq!(dropped, vec![id('b', 1)]);
                assert!(finalized_at.ends_with('Z'), "{finalized_at}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_stamp_is_legacy_and_newer_versions_are_pending() {
        assert_eq!(
            parse_stamp(Path::new("/x"), b"").unwrap(),
            CleanupStamp::Legacy
        );
        assert_eq!(
            parse_stamp(Path::new("/x"), b"stagehand-cleanup-stamp 7\nwhatever\n").unwrap(),
            CleanupStamp::Newer { version: 7 }
        );
    }

    #[test]
    fn every_damaged_stamp_is_corrupt() {
        let good = encode_stamp(&id('a', 0), &[]);
        let mut flipped = good.clone();
        // One character of the deployment line changed.
        let i = String::from_utf8_lossy(&good)
            .find("deployment os:a")
            .unwrap()
            + 14;
        flipped[i] = b'c';
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\n".to_vec(), "not a"),
            (b"garbage".to_vec(), "not a"),
            (vec![0xff, 0xfe, 0x00], "UTF-8"),
            (b"stagehand-cleanup-stamp x\n".to_vec(), "version"),
            (b"stagehand-cleanup-stamp 0\n".to_vec(), "version"),
            (flipped, "checksum mismatch"),
            (good[..good.len() - 1].to_vec(), "truncated"),
            (good[..good.len() / 2].to_vec(), "truncated"),
        ];
        // Well-formed and checksummed, but no deployment line.
        cases.push((
            textfmt::encode(STAMP_MAGIC, 1, &[("finalized-at", "now".into())]),
            "no \"deployment\"",
        ));
        cases.push((
            textfmt::encode(
                STAMP_MAGIC,
                1,
                &[
                    ("deployment", "nonsense".into()),
                    ("finalized-at", "now".into()),
                ],
            ),
            "not a deployment identity",
        ));
        for (bytes, needle) in cases {
            let e = parse_stamp(Path::new("/sysroot/.cleanup"), &bytes).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::Corrupt, "{bytes:?}");
            let msg = e.to_string();
            assert!(msg.contains(needle), "{needle:?} not in {msg}");
            assert!(msg.contains("/sysroot/.cleanup"), "{msg}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored_for_forward_compatibility() {
        let bytes = textfmt::encode(
            STAMP_MAGIC,
            1,
            &[
                ("deployment", id('a', 2).to_string()),
                ("finalized-at", "t".into()),
                ("future-key", "value".into()),
            ],
        );
        assert_eq!(
            parse_stamp(Path::new("/x"), &bytes)
                .unwrap()
                .deployment()
                .cloned(),
            Some(id('a', 2))
        );
    }

    #[test]
    fn record_is_checked_too() {
        let bytes = textfmt::encode(
            RECORD_MAGIC,
            1,
            &[
                ("staged", id('a', 0).to_string()),
                ("deployment", id('b', 0).to_string()),
                ("failure-stamp", "absent".into()),
            ],
        );
        let r = parse_record(Path::new("/r"), &bytes).unwrap();
        assert_eq!(r.staged, id('a', 0));
        assert_eq!(r.deployments, vec![id('b', 0)]);
        assert_eq!(r.failure, "absent");
        let stamp_as_record = encode_stamp(&id('a', 0), &[]);
        assert_eq!(
            parse_record(Path::new("/r"), &stamp_as_record)
                .err()
                .unwrap()
                .code(),
            crate::ErrorCode::Corrupt
        );
    }

    #[test]
    fn removals_without_a_finalization_are_format_version_2() {
        let mut c = StampContent::default();
        c.add_removed(&[id('c', 0)], "2024-05-01T10:05:00Z".into());
        c.add_removed(&[id('c', 0), id('d', 1)], "2024-05-02T10:05:00Z".into());
        let bytes = c.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("stagehand-cleanup-stamp 2\n"), "{text}");
        assert!(!text.contains("\ndeployment "), "{text}");
        let stamp = parse_stamp(Path::new("/x"), &bytes).unwrap();
        assert_eq!(
            stamp,
            CleanupStamp::Removed {
                removed: vec![id('c', 0), id('d', 1)],
                removed_at: "2024-05-02T10:05:00Z".into(),
            }
        );
        assert_eq!(stamp.gone(), vec![&id('c', 0), &id('d', 1)]);
        assert_eq!(stamp.deployment(), None);
        assert_eq!(StampContent::of(&stamp), Some(c));
        // A version-1 reader (the previous stagehand, after a rollback)
        // takes it for a newer format: still pending. What it does with it
        // is what this one does with a version it does not know.
        let mut v3 = bytes.clone();
        v3[24] = b'3';
        assert_eq!(
            parse_stamp(Path::new("/x"), &v3).unwrap(),
            CleanupStamp::Newer { version: 3 }
        );
    }

    #[test]
    fn a_finalization_with_removals_stays_readable_as_version_1() {
        // Removed first (mark-good), then a finalization: version 1, so an
        // older stagehand still reads the finalization (and ignores the
        // `removed` lines, as version 1 readers ignore unknown keys).
        let mut c = StampContent::default();
        c.add_removed(&[id('c', 0)], "2024-05-01T10:05:00Z".into());
        let current: BTreeSet<DeploymentId> = [id('a', 0), id('e', 0)].into_iter().collect();
        c.add_finalized(
            (id('a', 0), "2024-05-03T10:00:00Z".into(), None),
            &[id('b', 0)],
            &current,
        );
        let bytes = c.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("stagehand-cleanup-stamp 1\n"), "{text}");
        let stamp = parse_stamp(Path::new("/x"), &bytes).unwrap();
        assert_eq!(stamp.deployment(), Some(&id('a', 0)));
        assert_eq!(stamp.gone(), vec![&id('b', 0), &id('c', 0)]);
        // What the version 1 parser of the previous stagehand requires is there.
        let fields = match textfmt::decode(STAMP_MAGIC, &bytes) {
            Ok(textfmt::Parsed::Current(1, f)) => f,
            _ => panic!("{text}"),
        };
        assert!(textfmt::one(&fields, "deployment").is_ok());
        assert!(textfmt::one(&fields, "finalized-at").is_ok());

        // A second finalization: its drops first, older ones kept unless
        // the identity is deployed again; removals untouched.
        let current: BTreeSet<DeploymentId> = [id('f', 0), id('b', 0)].into_iter().collect();
        c.add_finalized(
            (id('f', 0), "2024-05-04T10:00:00Z".into(), None),
            &[id('a', 0)],
            &current,
        );
        assert_eq!(c.dropped, vec![id('a', 0)], "b is deployed again");
        assert_eq!(c.removed, vec![id('c', 0)]);
        assert_eq!(c.finalized.as_ref().unwrap().0, id('f', 0));
    }

    #[test]
    fn version_2_stamps_must_still_say_something() {
        let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
            (vec![], "names neither"),
            (
                vec![("dropped", id('b', 0).to_string())],
                "without the \"deployment\" line",
            ),
            (
                vec![("removed", id('b', 0).to_string())],
                "no \"removed-at\"",
            ),
            (
                vec![("removed", "garbage".into()), ("removed-at", "t".into())],
                "not a deployment identity",
            ),
            (
                vec![
                    ("removed", id('b', 0).to_string()),
                    ("removed-at", "t".into()),
                    ("removed-at", "u".into()),
                ],
                "more than one",
            ),
            (
                vec![("deployment", id('a', 0).to_string())],
                "no \"finalized-at\"",
            ),
        ];
        for (fields, needle) in cases {
            let bytes = textfmt::encode(STAMP_MAGIC, 2, &fields);
            let e = parse_stamp(Path::new("/sysroot/.cleanup"), &bytes).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::Corrupt, "{fields:?}");
            assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
        }
        // Version 1 still requires the finalized deployment, removals or not.
        let bytes = textfmt::encode(
            STAMP_MAGIC,
            1,
            &[
                ("removed", id('b', 0).to_string()),
                ("removed-at", "t".into()),
            ],
        );
        assert!(parse_stamp(Path::new("/x"), &bytes)
            .unwrap_err()
            .to_string()
            .contains("no \"deployment\" line"));
    }

    #[test]
    fn physical_sysroot_follows_the_ostree_link() {
        let d = tempfile::tempdir().unwrap();
        let physical = d.path().join("sysroot");
        std::fs::create_dir_all(physical.join("ostree")).unwrap();
        let deployment = d.path().join("deploy-root");
        std::fs::create_dir_all(&deployment).unwrap();
        std::os::unix::fs::symlink("../sysroot/ostree", deployment.join("ostree")).unwrap();
        let physical = physical.canonicalize().unwrap();
        assert_eq!(physical_sysroot(&deployment), physical);
        assert_eq!(physical_sysroot(&physical), physical);
        assert_eq!(stamp_path_for(&deployment), physical.join(".cleanup"));
    }
}
