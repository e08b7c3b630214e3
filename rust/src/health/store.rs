//! The durable health store: one file per sysroot, the single source of truth.
//!
//! # Where
//!
//! `<sysroot>/ostree/stagehand/health` (on a booted system `/sysroot/ostree/stagehand/health`,
//! reached through the `/ostree` link). That directory is on the physical
//! sysroot, outside every deployment, so the file survives rollbacks (a
//! deployment's `/etc` rolls back with it), deployment garbage collection
//! (libostree's cleanup only touches `ostree/deploy/*/deploy`, `ostree/boot.*`,
//! `boot/loader.*` and the repo) and stateroot changes (`/var` is per
//! stateroot, and not mounted yet when boot assessment runs early). It is not
//! in `/boot`, which is small, often a separate FAT file system, and belongs to
//! the bootloader. libostree itself keeps state next to it
//! (`ostree/initramfs-overlays`), as does bootc (`ostree/bootc`).
//!
//! # Format
//!
//! ```text
//! stagehand-health 1 sha256:<64 hex digits of the payload>\n
//! <payload: one JSON object>
//! ```
//!
//! The header names the format and its major version; the checksum (SHA-256,
//! from GLib) covers every payload byte, so a torn, truncated or edited file is
//! detected instead of trusted. Within a major version readers keep fields
//! they do not know and write them back unchanged: after a rollback an older
//! stagehand reads (and preserves) what a newer one wrote. A new *major*
//! version is refused with [`Error::Unsupported`] and left in place for the
//! newer stagehand that wrote it.
//!
//! # Writes
//!
//! Every change is one [`fsutil::write_atomic`] of the whole file (temp file,
//! fsync, rename, directory fsync): readers see the old state or the new one,
//! never a mix. Entries of deployments that no longer exist are dropped on
//! write (the denylist is keyed by commit and stays). Everything is bounded:
//! see [`MAX_BYTES`] and the `MAX_*` limits.
//!
//! # Corruption
//!
//! A corrupt file is reported as [`Error::Corrupt`] and, by the operations
//! that hold the sysroot lock, moved aside to `health.corrupt-<time>`. It is
//! never silently replaced: until an administrator runs `stagehand health
//! reset`, every health operation (and staging, which needs the denylist)
//! keeps failing with the same error and the path of the moved file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{Denied, Entry, Flags, Pending, PinRecord, RollbackRecord, State, Trigger};
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil;
use crate::sysroot::{sysroot_path, DeploymentId};

/// The store's directory, relative to the sysroot.
pub const STORE_DIR: &str = "ostree/stagehand";
/// The store's file name in [`STORE_DIR`].
pub const STORE_NAME: &str = "health";
/// The first word of the header line.
pub const MAGIC: &str = "stagehand-health";
/// The format major version this stagehand reads and writes.
pub const VERSION: u32 = 1;
/// The largest store file stagehand reads or writes. A full store (every
/// limit below reached, every reason at its longest) is about half of it.
pub const MAX_BYTES: u64 = 256 * 1024;
/// At most this many deployment entries. Entries of deployments that no
/// longer exist are dropped first; past the limit, `good-fallback` entries
/// (which read the same when absent) go, oldest first.
pub const MAX_ENTRIES: usize = 64;
/// At most this many denylisted commits; when full, the one denylisted
/// longest ago is evicted (update streams move forward, so the oldest failure
/// is the least likely to be offered again).
pub const MAX_DENYLIST: usize = 64;
/// At most this many rollback records (newest kept).
pub const MAX_ROLLBACKS: usize = 16;
/// Reasons are cut to this many bytes (on a character boundary).
pub const MAX_REASON: usize = 256;

type Extra = serde_json::Map<String, serde_json::Value>;

/// The health state of a sysroot, as read from (or about to be written to)
/// the store.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    entries: BTreeMap<DeploymentId, Entry>,
    denylist: Vec<Denied>,
    rollbacks: Vec<RollbackRecord>,
    pins: Vec<PinRecord>,
    pending: Option<Pending>,
    extra: Extra,
    repaired: Vec<DeploymentId>,
    exists: bool,
}

// ---- on-disk shapes --------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct RawStore {
    #[serde(default)]
    entries: Vec<RawEntry>,
    #[serde(default)]
    denylist: Vec<RawDenied>,
    #[serde(default)]
    rollbacks: Vec<RawRollback>,
    #[serde(default)]
    pins: Vec<RawPin>,
    #[serde(default)]
    pending: Option<RawPending>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Serialize, Deserialize)]
struct RawEntry {
    deployment: DeploymentId,
    untested: bool,
    failed: bool,
    recent: bool,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    changed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counted_boot: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Serialize, Deserialize)]
struct RawDenied {
    checksum: String,
    reason: String,
    since: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment: Option<DeploymentId>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Serialize, Deserialize)]
struct RawRollback {
    from: DeploymentId,
    to: DeploymentId,
    reason: String,
    at: String,
    trigger: Trigger,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Serialize, Deserialize)]
struct RawPin {
    deployment: DeploymentId,
    #[serde(default)]
    releasing: bool,
}

#[derive(Serialize, Deserialize)]
struct RawPending {
    stateroot: String,
    checksum: String,
    #[serde(default)]
    after_serial: Option<u32>,
    since: String,
}

// ---- helpers ---------------------------------------------------------------

/// The store path of a sysroot.
pub fn store_path(sysroot: &ostree::Sysroot) -> PathBuf {
    sysroot_path(sysroot).join(STORE_DIR).join(STORE_NAME)
}

fn sha256_hex(data: &[u8]) -> String {
    glib::compute_checksum_for_data(glib::ChecksumType::Sha256, data)
        .expect("SHA-256 is always available")
        .to_string()
}

/// Wrap a JSON payload in the store's header (version and checksum).
///
/// For tools and tests that craft store files; stagehand itself writes only
/// through its transitions.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    seal_version(VERSION, payload)
}

/// [`seal`] with an explicit format version (tests use it to write files from
/// the future).
pub fn seal_version(version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{MAGIC} {version} sha256:{}\n", sha256_hex(payload)).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Make a reason fit the store: control characters become spaces, it is cut
/// to [`MAX_REASON`] bytes, and an empty one gets `default`.
pub fn sanitize_reason(reason: &str, default: &str) -> String {
    let cleaned: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut s = cleaned.trim().to_string();
    if s.is_empty() {
        s = default.to_string();
    }
    if s.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The current time, RFC 3339 UTC, to the second.
pub(crate) fn now() -> String {
    glib::DateTime::now_utc()
        .and_then(|t| t.format("%Y-%m-%dT%H:%M:%SZ"))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn valid_checksum(s: &str) -> bool {
    crate::repo::is_checksum(s)
}

fn valid_id(id: &DeploymentId) -> bool {
    !id.stateroot.is_empty()
        && !id.stateroot.contains('/')
        && id.stateroot != "."
        && id.stateroot != ".."
        && valid_checksum(&id.checksum)
}

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Files a corrupt store was moved to, oldest first.
pub fn quarantined(dir: &Path) -> Result<Vec<PathBuf>> {
    let prefix = format!("{STORE_NAME}.corrupt-");
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(it) => it
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    out.sort();
    Ok(out)
}

// ---- parsing and encoding --------------------------------------------------

impl Store {
    /// An empty store that will be written at `path`.
    pub fn empty(path: impl Into<PathBuf>) -> Store {
        Store {
            path: path.into(),
            entries: BTreeMap::new(),
            denylist: Vec::new(),
            rollbacks: Vec::new(),
            pins: Vec::new(),
            pending: None,
            extra: Extra::new(),
            repaired: Vec::new(),
            exists: false,
        }
    }

    /// Parse a store file's bytes; `path` is for messages.
    ///
    /// Checks, in order: the header (magic, version, checksum syntax), the
    /// version (newer: [`Error::Unsupported`]), the checksum, the JSON, and
    /// every entry (valid identities, no duplicates, and flags the table
    /// allows); each failure is an [`Error::Corrupt`] saying what is wrong.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Store> {
        if bytes.is_empty() {
            return Err(corrupt(path, "the file is empty"));
        }
        let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
            return Err(corrupt(
                path,
                "no header line (truncated or not a health store)",
            ));
        };
        let header = std::str::from_utf8(&bytes[..nl])
            .map_err(|_| corrupt(path, "the header is not text (not a health store)"))?;
        let payload = &bytes[nl + 1..];
        let mut words = header.split(' ');
        if words.next() != Some(MAGIC) {
            return Err(corrupt(
                path,
                format!("the header does not start with {MAGIC:?} (not a health store)"),
            ));
        }
        let version: u32 = words
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt(path, format!("bad format version in header {header:?}")))?;
        if version > VERSION {
            return Err(Error::Unsupported(format!(
                "{} has health store format {version}, written by a newer stagehand; this one \
                 reads format {VERSION}. It was left in place; `stagehand health reset` replaces it",
                path.display()
            )));
        }
        if version < 1 {
            return Err(corrupt(path, format!("bad format version {version}")));
        }
        let sum = words
            .next()
            .and_then(|w| w.strip_prefix("sha256:"))
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| corrupt(path, format!("bad checksum in header {header:?}")))?;
        if words.next().is_some() {
            return Err(corrupt(
                path,
                format!("unexpected words in header {header:?}"),
            ));
        }
        let actual = sha256_hex(payload);
        if !actual.eq_ignore_ascii_case(sum) {
            return Err(corrupt(
                path,
                format!(
                    "checksum mismatch (header sha256:{sum}, content sha256:{actual}): the file \
                     is torn, truncated or was edited"
                ),
            ));
        }
        let raw: RawStore = serde_json::from_slice(payload)
            .map_err(|e| corrupt(path, format!("invalid content: {e}")))?;
        Store::from_raw(raw, path)
    }

    fn from_raw(raw: RawStore, path: &Path) -> Result<Store> {
        let mut store = Store::empty(path);
        store.exists = true;
        store.extra = raw.extra;
        for e in raw.entries {
            if !valid_id(&e.deployment) {
                return Err(corrupt(
                    path,
                    format!("entry for an invalid deployment {}", e.deployment),
                ));
            }
            let flags = Flags::new(e.untested, e.failed, e.recent);
            let reading = flags
                .read()
                .map_err(|imp| corrupt(path, format!("deployment {}: {imp}", e.deployment)))?;
            if reading.repaired {
                store.repaired.push(e.deployment.clone());
            }
            let entry = Entry {
                deployment: e.deployment.clone(),
                state: reading.state,
                attempts: e.attempts,
                changed: e.changed,
                reason: e.reason,
                counted_boot: e.counted_boot,
                extra: e.extra,
            };
            if store.entries.insert(e.deployment.clone(), entry).is_some() {
                return Err(corrupt(
                    path,
                    format!("two entries for deployment {}", e.deployment),
                ));
            }
        }
        for d in raw.denylist {
            if !valid_checksum(&d.checksum) {
                return Err(corrupt(
                    path,
                    format!("denylist entry with an invalid checksum {:?}", d.checksum),
                ));
            }
            if store.denylist.iter().any(|x| x.checksum == d.checksum) {
                return Err(corrupt(
                    path,
                    format!("commit {} denylisted twice", d.checksum),
                ));
            }
            store.denylist.push(Denied {
                checksum: d.checksum,
                reason: d.reason,
                since: d.since,
                deployment: d.deployment,
                extra: d.extra,
            });
        }
        for r in raw.rollbacks {
            store.rollbacks.push(RollbackRecord {
                from: r.from,
                to: r.to,
                reason: r.reason,
                at: r.at,
                trigger: r.trigger,
                extra: r.extra,
            });
        }
        for p in raw.pins {
            if !valid_id(&p.deployment) {
                return Err(corrupt(
                    path,
                    format!("pin record for an invalid deployment {}", p.deployment),
                ));
            }
            if store.pins.iter().any(|x| x.deployment == p.deployment) {
                return Err(corrupt(
                    path,
                    format!("two pin records for {}", p.deployment),
                ));
            }
            store.pins.push(PinRecord {
                deployment: p.deployment,
                releasing: p.releasing,
            });
        }
        if let Some(p) = raw.pending {
            if !valid_checksum(&p.checksum) || p.stateroot.is_empty() {
                return Err(corrupt(path, "invalid pending staging record"));
            }
            store.pending = Some(Pending {
                stateroot: p.stateroot,
                checksum: p.checksum,
                after_serial: p.after_serial,
                since: p.since,
            });
        }
        Ok(store)
    }

    /// The file content for this state.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let raw = RawStore {
            entries: self
                .entries
                .values()
                .map(|e| {
                    let f = e.state.flags();
                    RawEntry {
                        deployment: e.deployment.clone(),
                        untested: f.untested,
                        failed: f.failed,
                        recent: f.recent,
                        attempts: e.attempts,
                        changed: e.changed.clone(),
                        reason: e.reason.clone(),
                        counted_boot: e.counted_boot.clone(),
                        extra: e.extra.clone(),
                    }
                })
                .collect(),
            denylist: self
                .denylist
                .iter()
                .map(|d| RawDenied {
                    checksum: d.checksum.clone(),
                    reason: d.reason.clone(),
                    since: d.since.clone(),
                    deployment: d.deployment.clone(),
                    extra: d.extra.clone(),
                })
                .collect(),
            rollbacks: self
                .rollbacks
                .iter()
                .map(|r| RawRollback {
                    from: r.from.clone(),
                    to: r.to.clone(),
                    reason: r.reason.clone(),
                    at: r.at.clone(),
                    trigger: r.trigger,
                    extra: r.extra.clone(),
                })
                .collect(),
            pins: self
                .pins
                .iter()
                .map(|p| RawPin {
                    deployment: p.deployment.clone(),
                    releasing: p.releasing,
                })
                .collect(),
            pending: self.pending.as_ref().map(|p| RawPending {
                stateroot: p.stateroot.clone(),
                checksum: p.checksum.clone(),
                after_serial: p.after_serial,
                since: p.since.clone(),
            }),
            extra: self.extra.clone(),
        };
        let mut payload = serde_json::to_vec_pretty(&raw).expect("serializable");
        payload.push(b'\n');
        let out = seal(&payload);
        if out.len() as u64 > MAX_BYTES {
            return Err(Error::Unsupported(format!(
                "the health store would be {} bytes, over its {MAX_BYTES}-byte bound",
                out.len()
            )));
        }
        Ok(out)
    }

    // ---- reading from a sysroot ------------------------------------------

    /// Read the store of a loaded sysroot without changing anything (no lock
    /// needed): for status and queries. A missing file is an empty store; a
    /// corrupt one is an error (and stays where it is).
    pub fn read(sysroot: &ostree::Sysroot) -> Result<Store> {
        let path = store_path(sysroot);
        let ids: Vec<DeploymentId> = sysroot.deployments().iter().map(DeploymentId::of).collect();
        let mut store = Store::read_path(&path)?;
        store.adopt_pending(&ids);
        Ok(store)
    }

    fn read_path(path: &Path) -> Result<Store> {
        match fsutil::read_bounded(path, MAX_BYTES) {
            Ok(Some(bytes)) => Store::parse(&bytes, path),
            Ok(None) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                if let Some(q) = quarantined(dir)?.pop() {
                    return Err(corrupt(
                        path,
                        format!(
                            "it was found corrupt and moved aside to {}; inspect it, then run \
                             `stagehand health reset`",
                            q.display()
                        ),
                    ));
                }
                Ok(Store::empty(path))
            }
            Err(Error::Corrupt { detail, .. }) => Err(corrupt(path, detail)),
            Err(e) => Err(e),
        }
    }

    /// Read the store for a change, under the sysroot lock: a corrupt file is
    /// moved aside (and the error says where); a staging that was interrupted
    /// is resolved (see [`Pending`]).
    pub(crate) fn load(sysroot: &ostree::Sysroot) -> Result<Store> {
        let path = store_path(sysroot);
        let ids: Vec<DeploymentId> = sysroot.deployments().iter().map(DeploymentId::of).collect();
        // A writer killed before its rename left its temporary file; we hold
        // the sysroot lock, so none is running. Removed here, not only before
        // the next write: a change that turns out to be a no-op (its killed
        // run had already made it durable) must leave nothing behind either
        // (found by the crash sweep's health-deadline row).
        fsutil::remove_stale_temporaries(&path);
        let mut store = match Store::read_path(&path) {
            Ok(s) => s,
            Err(Error::Corrupt { detail, .. }) if path.exists() => {
                return Err(quarantine(&path, detail));
            }
            Err(e) => return Err(e),
        };
        // What we read may be visible but not durable: the last write's
        // directory fsync may have failed after its rename (see
        // fsutil::write_atomic). A change that finds nothing to write would
        // then report success on a state a power cut could undo; syncing the
        // directory first makes every run converge on a durable state.
        if store.exists {
            if let Some(dir) = path.parent() {
                fsutil::fsync_dir(dir)?;
            }
        }
        // Whoever wrote `pending` held the sysroot lock, which we hold now:
        // that staging is over. Its deployment, if libostree got that far,
        // starts its trial; otherwise the record is dropped on the next write.
        store.adopt_pending(&ids);
        store.pending = None;
        Ok(store)
    }

    /// Give the deployment an interrupted (or running) staging produced the
    /// entry it would have got.
    fn adopt_pending(&mut self, ids: &[DeploymentId]) {
        let Some(p) = self.pending.clone() else {
            return;
        };
        for id in ids {
            if p.matches(id) && !self.entries.contains_key(id) {
                self.entries.insert(
                    id.clone(),
                    Entry::new(id.clone(), State::Untested, &p.since),
                );
            }
        }
    }

    /// Write the store, dropping what refers to deployments that no longer
    /// exist, enforcing the bounds. One atomic, durable replace.
    pub(crate) fn save(&mut self, sysroot: &ostree::Sysroot) -> Result<()> {
        let ids: Vec<DeploymentId> = sysroot.deployments().iter().map(DeploymentId::of).collect();
        self.prune(&ids);
        let bytes = self.encode()?;
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).io_ctx("creating", &dir)?;
            if let Some(parent) = dir.parent() {
                fsutil::fsync_dir(parent)?;
            }
        }
        // Temporary files of writers that died (we hold the sysroot lock, so
        // no writer is running).
        fsutil::remove_stale_temporaries(&self.path);
        fsutil::write_atomic(&self.path, &bytes)?;
        self.exists = true;
        self.repaired.clear();
        Ok(())
    }

    fn prune(&mut self, ids: &[DeploymentId]) {
        self.entries.retain(|id, _| ids.contains(id));
        self.pins.retain(|p| ids.contains(&p.deployment));
        if self.entries.len() > MAX_ENTRIES {
            let mut fallbacks: Vec<(String, DeploymentId)> = self
                .entries
                .values()
                .filter(|e| e.state == State::GoodFallback)
                .map(|e| (e.changed.clone(), e.deployment.clone()))
                .collect();
            fallbacks.sort();
            for (_, id) in fallbacks {
                if self.entries.len() <= MAX_ENTRIES {
                    break;
                }
                self.entries.remove(&id);
            }
        }
        while self.denylist.len() > MAX_DENYLIST {
            let oldest = self
                .denylist
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.since.cmp(&b.1.since))
                .map(|(i, _)| i)
                .unwrap();
            let d = self.denylist.remove(oldest);
            log::warn!(
                "denylist full: forgetting {} (denylisted {})",
                d.checksum,
                d.since
            );
        }
        if self.rollbacks.len() > MAX_ROLLBACKS {
            let excess = self.rollbacks.len() - MAX_ROLLBACKS;
            self.rollbacks.drain(..excess);
        }
    }

    // ---- queries ---------------------------------------------------------

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file existed (or has been written).
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// The record of a deployment, if stagehand has one.
    pub fn entry(&self, id: &DeploymentId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Every record, by deployment.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The state of a deployment: its record's, or [`State::GoodFallback`] for
    /// one stagehand has no record of.
    pub fn state_of(&self, id: &DeploymentId) -> State {
        self.entries
            .get(id)
            .map(|e| e.state)
            .unwrap_or(State::GoodFallback)
    }

    /// The denylist, oldest first.
    pub fn denylist(&self) -> &[Denied] {
        &self.denylist
    }

    /// The denylist entry of a commit.
    pub fn denied(&self, checksum: &str) -> Option<&Denied> {
        self.denylist.iter().find(|d| d.checksum == checksum)
    }

    /// Rollback records, oldest first.
    pub fn rollbacks(&self) -> &[RollbackRecord] {
        &self.rollbacks
    }

    /// The most recent rollback.
    pub fn last_rollback(&self) -> Option<&RollbackRecord> {
        self.rollbacks.last()
    }

    /// Pins stagehand set.
    pub fn pins(&self) -> &[PinRecord] {
        &self.pins
    }

    /// Whether stagehand set (and has not yet released) a pin on `id`.
    pub fn pinned_by_stagehand(&self, id: &DeploymentId) -> bool {
        self.pins
            .iter()
            .any(|p| &p.deployment == id && !p.releasing)
    }

    /// A staging in progress (or interrupted), if any.
    pub fn pending(&self) -> Option<&Pending> {
        self.pending.as_ref()
    }

    /// Deployments whose `N Y Y` flags were read as good and will be stored
    /// as `N N Y` by the next write.
    pub fn repaired(&self) -> &[DeploymentId] {
        &self.repaired
    }

    // ---- changes (crate only: every change goes through a transition) -----

    pub(crate) fn entry_or_insert(&mut self, id: &DeploymentId, now: &str) -> &mut Entry {
        self.entries
            .entry(id.clone())
            .or_insert_with(|| Entry::new(id.clone(), State::GoodFallback, now))
    }

    pub(crate) fn insert_entry(&mut self, entry: Entry) {
        self.entries.insert(entry.deployment.clone(), entry);
    }

    pub(crate) fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.values_mut()
    }

    pub(crate) fn deny(&mut self, checksum: &str, reason: &str, deployment: Option<&DeploymentId>) {
        let now = now();
        if let Some(d) = self.denylist.iter_mut().find(|d| d.checksum == checksum) {
            d.reason = reason.to_string();
            d.since = now;
            if deployment.is_some() {
                d.deployment = deployment.cloned();
            }
            return;
        }
        self.denylist.push(Denied {
            checksum: checksum.to_string(),
            reason: reason.to_string(),
            since: now,
            deployment: deployment.cloned(),
            extra: Extra::new(),
        });
    }

    pub(crate) fn undeny(&mut self, checksum: &str) -> Option<Denied> {
        let i = self.denylist.iter().position(|d| d.checksum == checksum)?;
        Some(self.denylist.remove(i))
    }

    pub(crate) fn record_rollback(
        &mut self,
        from: &DeploymentId,
        to: &DeploymentId,
        reason: &str,
        trigger: Trigger,
    ) {
        self.rollbacks.push(RollbackRecord {
            from: from.clone(),
            to: to.clone(),
            reason: reason.to_string(),
            at: now(),
            trigger,
            extra: Extra::new(),
        });
    }

    pub(crate) fn pins_mut(&mut self) -> &mut Vec<PinRecord> {
        &mut self.pins
    }

    pub(crate) fn set_pending(&mut self, pending: Option<Pending>) {
        self.pending = pending;
    }
}

/// Move a corrupt store aside (durably) and return the error that says so.
fn quarantine(path: &Path, detail: String) -> Error {
    let dir = path.parent().unwrap_or(Path::new("."));
    let stamp = glib::DateTime::now_utc()
        .and_then(|t| t.format("%Y%m%dT%H%M%SZ"))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mut target = dir.join(format!("{STORE_NAME}.corrupt-{stamp}"));
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{STORE_NAME}.corrupt-{stamp}.{n}"));
        n += 1;
    }
    let moved = std::fs::rename(path, &target)
        .io_ctx("moving aside", path)
        .and_then(|_| fsutil::fsync_dir(dir));
    match moved {
        Ok(()) => corrupt(
            path,
            format!(
                "{detail}; moved aside to {}; inspect it, then run `stagehand health reset`",
                target.display()
            ),
        ),
        Err(e) => corrupt(
            path,
            format!("{detail}; moving it aside failed too ({e}); run `stagehand health reset`"),
        ),
    }
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

    fn parse(bytes: &[u8]) -> Result<Store> {
        Store::parse(bytes, Path::new("/x/health"))
    }

    #[test]
    fn round_trip_keeps_everything_and_unknown_fields() {
        let mut s = Store::empty("/x/health");
        let mut e = Entry::new(id('a', 0), State::Untested, "t0");
        e.extra.insert("future".into(), serde_json::json!({"k": 1}));
        s.insert_entry(e);
        s.insert_entry(Entry::new(id('b', 1), State::Good, "t1"));
        s.deny(&"c".repeat(64), "did not boot", Some(&id('c', 0)));
        s.record_rollback(&id('c', 0), &id('b', 1), "why", Trigger::Assess);
        s.pins_mut().push(PinRecord {
            deployment: id('b', 1),
            releasing: true,
        });
        s.extra.insert("top".into(), serde_json::json!([1, 2]));
        let bytes = s.encode().unwrap();
        assert!(bytes.starts_with(b"stagehand-health 1 sha256:"));
        let back = parse(&bytes).unwrap();
        assert_eq!(back.encode().unwrap(), bytes, "re-encoding is stable");
        assert_eq!(back.state_of(&id('a', 0)), State::Untested);
        assert_eq!(back.entry(&id('a', 0)).unwrap().extra["future"]["k"], 1);
        assert_eq!(back.extra["top"][1], 2);
        assert_eq!(back.denylist().len(), 1);
        assert_eq!(back.last_rollback().unwrap().trigger, Trigger::Assess);
        assert!(back.pins()[0].releasing);
        assert_eq!(back.state_of(&id('z', 0)), State::GoodFallback);
    }

    #[test]
    fn damaged_files_are_typed_errors() {
        let good = {
            let mut s = Store::empty("/x/health");
            s.insert_entry(Entry::new(id('a', 0), State::Good, "t"));
            s.encode().unwrap()
        };
        let code = |b: &[u8]| parse(b).unwrap_err().code();
        use crate::ErrorCode::*;
        assert_eq!(code(b""), Corrupt);
        assert_eq!(code(&good[..good.len() / 2]), Corrupt, "truncated");
        assert_eq!(code(&good[..20]), Corrupt, "truncated header");
        assert_eq!(code(b"\x00\x01garbage\n{}"), Corrupt);
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        assert_eq!(code(&flipped), Corrupt, "wrong checksum");
        assert_eq!(code(&seal_version(2, b"{}")), Unsupported);
        assert_eq!(code(&seal_version(0, b"{}")), Corrupt);
        assert_eq!(code(&seal(b"not json")), Corrupt);
        assert_eq!(code(&seal(b"{\"entries\": 3}")), Corrupt);
        let e = parse(&flipped).unwrap_err().to_string();
        assert!(
            e.contains("checksum mismatch") && e.contains("/x/health"),
            "{e}"
        );
    }

    #[test]
    fn impossible_flags_and_duplicates_are_corrupt_and_nyy_is_repaired() {
        let c = "a".repeat(64);
        let entry = |u, f, r| {
            format!(
                r#"{{"deployment":{{"stateroot":"os","checksum":"{c}","serial":0}},"untested":{u},"failed":{f},"recent":{r}}}"#
            )
        };
        for flags in Flags::all() {
            let payload = format!(
                r#"{{"entries":[{}]}}"#,
                entry(flags.untested, flags.failed, flags.recent)
            );
            let r = parse(&seal(payload.as_bytes()));
            match flags.read() {
                Ok(reading) => {
                    let s = r.unwrap();
                    assert_eq!(s.state_of(&id('a', 0)), reading.state, "{flags}");
                    assert_eq!(s.repaired().len(), reading.repaired as usize);
                }
                Err(_) => {
                    let e = r.unwrap_err();
                    assert_eq!(e.code(), crate::ErrorCode::Corrupt, "{flags}");
                    assert!(e.to_string().contains("impossible"), "{e}");
                }
            }
        }
        let dup = format!(
            r#"{{"entries":[{},{}]}}"#,
            entry(false, false, true),
            entry(false, false, false)
        );
        assert_eq!(
            parse(&seal(dup.as_bytes())).unwrap_err().code(),
            crate::ErrorCode::Corrupt
        );
        // N Y Y is written back as N N Y.
        let nyy = format!(r#"{{"entries":[{}]}}"#, entry(false, true, true));
        let s = parse(&seal(nyy.as_bytes())).unwrap();
        let again = parse(&s.encode().unwrap()).unwrap();
        assert!(again.repaired().is_empty());
        assert_eq!(again.state_of(&id('a', 0)), State::Good);
    }

    #[test]
    fn a_full_store_fits_the_bound_and_limits_hold() {
        let mut s = Store::empty("/x/health");
        let worst = "\"".repeat(MAX_REASON);
        for i in 0..MAX_ENTRIES as u32 {
            let mut e = Entry::new(id('a', i), State::Failed, "2024-01-01T00:00:00Z");
            e.reason = Some(worst.clone());
            e.counted_boot = Some(glib::uuid_string_random().to_string());
            s.insert_entry(e);
            s.pins_mut().push(PinRecord {
                deployment: id('a', i),
                releasing: false,
            });
        }
        for i in 0..(MAX_DENYLIST + 5) {
            let c = format!("{:064x}", i);
            s.denylist.push(Denied {
                checksum: c,
                reason: worst.clone(),
                since: format!("2024-01-01T00:{:02}:{:02}Z", i / 60, i % 60),
                deployment: Some(id('a', 0)),
                extra: Extra::new(),
            });
        }
        for _ in 0..(MAX_ROLLBACKS + 3) {
            s.record_rollback(&id('a', 0), &id('b', 0), &worst, Trigger::MarkBad);
        }
        let ids: Vec<_> = (0..MAX_ENTRIES as u32).map(|i| id('a', i)).collect();
        s.prune(&ids);
        assert_eq!(s.denylist().len(), MAX_DENYLIST);
        assert_eq!(
            s.denylist()[0].checksum,
            format!("{:064x}", 5),
            "the oldest were evicted"
        );
        assert_eq!(s.rollbacks().len(), MAX_ROLLBACKS);
        let bytes = s.encode().unwrap();
        assert!(
            (bytes.len() as u64) < MAX_BYTES * 3 / 4,
            "a full store is {} bytes",
            bytes.len()
        );
        // Entries of deployments that are gone are dropped.
        s.prune(&ids[..3]);
        assert_eq!(s.entries().count(), 3);
        assert_eq!(s.pins().len(), 3);
        assert_eq!(s.denylist().len(), MAX_DENYLIST, "the denylist stays");
    }

    #[test]
    fn too_many_entries_drop_fallbacks_first() {
        let mut s = Store::empty("/x/health");
        let mut ids = Vec::new();
        for i in 0..(MAX_ENTRIES as u32 + 4) {
            let st = if i < 8 {
                State::GoodFallback
            } else {
                State::Failed
            };
            s.insert_entry(Entry::new(id('a', i), st, &format!("t{i:03}")));
            ids.push(id('a', i));
        }
        s.prune(&ids);
        assert_eq!(s.entries().count(), MAX_ENTRIES);
        assert!(s.entry(&id('a', 0)).is_none() && s.entry(&id('a', 3)).is_none());
        assert!(s.entry(&id('a', 4)).is_some());
    }

    #[test]
    fn reasons_are_sanitized() {
        assert_eq!(sanitize_reason("  a\nb\tc ", "d"), "a b c");
        assert_eq!(sanitize_reason("", "default"), "default");
        let long = "é".repeat(MAX_REASON);
        let s = sanitize_reason(&long, "d");
        assert!(s.len() <= MAX_REASON && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn quarantine_moves_aside_and_reads_keep_failing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(STORE_NAME);
        std::fs::write(&p, b"garbage").unwrap();
        let e = Store::read_path(&p).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Corrupt);
        let e = quarantine(&p, "bad".into());
        assert!(e.to_string().contains("moved aside"), "{e}");
        assert!(!p.exists());
        let q = quarantined(d.path()).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(std::fs::read(&q[0]).unwrap(), b"garbage");
        let e = Store::read_path(&p).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Corrupt);
        assert!(e.to_string().contains("health reset"), "{e}");
    }
}
