//! The interrupted-operation guard: a "red line" stamp around a step that
//! must never silently run twice, or run half with one configuration and half
//! with another (seed 001: repartitioning, encryption, appending to files).
//!
//! A step has a *name* and, optionally, the *digest* of the configuration it
//! applies. Its stamp moves through three states:
//!
//! ```text
//! absent --begin--> started(digest, time) --commit--> complete(digest, time)
//!    ^                    |                                 |
//!    +------ reset -------+-------------- reset ------------+
//! ```
//!
//! - [`begin`] crosses the red line: it refuses with [`Error::Interrupted`]
//!   when the stamp is *started* (the previous run never completed: the system
//!   may be half-changed), with [`Error::AlreadyComplete`] when it is *complete*
//!   with the same digest (the caller skips the step), and with
//!   [`Error::ConfigChanged`] when it completed with another digest. Otherwise
//!   it writes *started* and returns only once that is durable, so the
//!   destructive part never runs without a record that it may have.
//! - [`commit`] marks the step *complete*, durably, before it returns.
//! - [`begin_forced`] is the administrator's override (like Ignition's
//!   `ignition.firstboot`): it starts the step afresh whatever the record says.
//! - [`reset`] forgets the step.
//!
//! # Where the stamps live
//!
//! The directory is the caller's choice, and stagehand never creates it: a
//! missing directory most often means the file system that should hold it is
//! not mounted (yet), and a stamp written to whatever is underneath would be
//! invisible to the next boot — exactly the silent re-run the guard exists to
//! prevent. Create it at install time (`StateDirectory=` in the unit, or
//! `tmpfiles.d`). What survives what:
//!
//! - [`DEFAULT_DIR`] `/var/lib/stagehand/guard`: survives reboots, upgrades and
//!   rollbacks (every deployment of a stateroot shares `/var`). The right place
//!   for steps run by the booted system. Not available in the initramfs before
//!   `/var` is mounted, and not shared with other stateroots.
//! - `/boot/stagehand/guard` (or `/sysroot/...`): survives everything including
//!   a new stateroot, and is reachable from the initramfs (seed 001 used
//!   `/boot/ignition.state`). `/boot` may be mounted read-only: then
//!   [`begin`] fails with [`Error::ReadOnly`] rather than run unguarded.
//! - not `/etc`: each deployment has its own, so a rollback would bring back
//!   an `/etc` without the *complete* stamp and the step would run again;
//! - not `/run`: it is gone at the next boot, which is the one that matters.
//!
//! # The stamp file
//!
//! `<dir>/<name>.stamp`, written with [`fsutil::write_atomic`] (temporary
//! file, fsync, rename, directory fsync), so a crash leaves the old stamp or
//! the new one. It is small, versioned text that checks itself:
//!
//! ```text
//! stagehand-redline 1
//! name=repartition
//! state=started
//! digest=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! run=6b0c3c1e-64c5-4b33-9a56-0e0c0f5ad2a1
//! started=2024-05-01T12:00:00Z
//! sha256=<SHA-256 of all the lines above>
//! ```
//!
//! A *complete* stamp adds `completed=<time>` before the checksum line. Any
//! file that does not parse exactly, or whose checksum does not match, is
//! [`Error::Corrupt`] — never taken for absent or complete, because either
//! guess could run a destructive step twice. Times are RFC 3339 UTC.
//!
//! Writers of one directory serialize on an `flock` of the directory, so two
//! processes beginning the same step at once cannot both cross the line.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsutil::{self, DirLock};

/// Where stamps go unless the caller says otherwise: persistent, shared by all
/// deployments of the stateroot (see the module docs for the alternatives).
pub const DEFAULT_DIR: &str = "/var/lib/stagehand/guard";

/// The longest accepted step name, in bytes.
pub const NAME_MAX: usize = 128;

/// Shortest and longest accepted digest, in hex digits (CRC-32 to SHA-512).
const DIGEST_MIN: usize = 8;
const DIGEST_MAX: usize = 128;

const STAMP_SUFFIX: &str = ".stamp";
const MAGIC: &str = "stagehand-redline";
const FORMAT_VERSION: u32 = 1;
/// Stamps are a few hundred bytes; anything much larger was not written by us.
const STAMP_MAX: u64 = 4096;

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The red line was crossed and the step has not completed (yet, or ever).
    Started,
    /// The step completed.
    Complete,
}

impl Phase {
    /// `"started"` or `"complete"`, as in the stamp and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Started => "started",
            Phase::Complete => "complete",
        }
    }
}

/// The record of a step, as stored in its stamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// The step name.
    pub name: String,
    /// Started or complete.
    #[serde(rename = "state")]
    pub phase: Phase,
    /// The configuration digest the step ran with (lowercase hex), if any.
    pub digest: Option<String>,
    /// A random id of this run of the step, so a commit can tell its own run
    /// from one begun again (forced) in the meantime.
    pub run: String,
    /// When the red line was crossed (RFC 3339 UTC).
    pub started: String,
    /// When the step completed (RFC 3339 UTC), for complete stamps.
    pub completed: Option<String>,
}

/// Proof that [`begin`] crossed the red line: the only way to [`commit`].
///
/// It is consumed by [`commit`], so a step cannot be committed twice, nor
/// without having begun, from Rust. Dropping it does nothing on purpose: a
/// step that is not committed must stay *started*, which is what makes the
/// next [`begin`] report [`Error::Interrupted`].
///
/// A process that did not call [`begin`] itself (the CLI's `commit`, the C
/// ABI) gets the token back from the stamp with [`resume`], which checks that
/// the step is started with the same digest.
#[derive(Debug)]
#[must_use = "a step that is never committed stays started: the next begin reports Interrupted"]
pub struct Token {
    dir: PathBuf,
    stamp: Stamp,
    replaced: Option<Replaced>,
}

/// What [`begin_forced`] overrode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replaced {
    /// A readable stamp.
    Stamp(Stamp),
    /// A stamp that could not be trusted (corrupt, or a newer format); the text is why.
    Unreadable(String),
}

impl Token {
    /// The *started* record this token stands for.
    pub fn stamp(&self) -> &Stamp {
        &self.stamp
    }

    /// The guard directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stamp file.
    pub fn path(&self) -> PathBuf {
        stamp_file(&self.dir, &self.stamp.name)
    }

    /// For a forced begin, what the stamp said before (None: there was no stamp,
    /// or the begin was not forced).
    pub fn replaced(&self) -> Option<&Replaced> {
        self.replaced.as_ref()
    }
}

/// Check a step name: 1 to [`NAME_MAX`] bytes of ASCII letters, digits and
/// `-_.@+`, starting with a letter or digit.
///
/// The name becomes a file name, so no separators, no `.`/`..`, and no
/// leading dot (temporary files start with one). A leading `-` would read as
/// an option in shell units.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "step name {name:?} {why} (use 1 to {NAME_MAX} of A-Z a-z 0-9 - _ . @ +, starting with a letter or digit)"
        )))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > NAME_MAX {
        return bad("is too long");
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return bad("must start with a letter or digit");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.@+".contains(*c)))
    {
        return bad(&format!("contains {c:?}"));
    }
    Ok(())
}

/// Check a configuration digest and return it in lowercase: an even number of
/// hex digits, 8 to 128 of them (CRC-32 up to SHA-512).
pub fn normalize_digest(digest: &str) -> Result<String> {
    let ok = (DIGEST_MIN..=DIGEST_MAX).contains(&digest.len())
        && digest.len() % 2 == 0
        && digest.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "digest {digest:?} is not a hex digest ({DIGEST_MIN} to {DIGEST_MAX} hex digits, an even number)"
        )));
    }
    Ok(digest.to_ascii_lowercase())
}

/// The SHA-256 of a file's content, in lowercase hex: the digest of a
/// configuration file, for [`begin`] and [`commit`].
pub fn file_digest(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut sum = glib::Checksum::new(glib::ChecksumType::Sha256).expect("GLib supports SHA-256");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        sum.update(&buf[..n]);
    }
    Ok(sum.string().expect("a fresh checksum has a string"))
}

/// The stamp file of step `name` in `dir` (the name is validated).
pub fn stamp_path(dir: &Path, name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    Ok(stamp_file(dir, name))
}

fn stamp_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{STAMP_SUFFIX}"))
}

/// The record of step `name`, `None` when it has none (never begun, or reset).
///
/// Read-only: works on a read-only directory. A missing directory is an
/// [`Error::Io`], not "absent": the file system that holds it may simply not
/// be mounted, and "absent" would invite running the step.
pub fn status(dir: &Path, name: &str) -> Result<Option<Stamp>> {
    validate_name(name)?;
    let _fd = open_guard_dir(dir)?;
    read_stamp(dir, name)
}

/// Cross the red line for step `name` with configuration `digest`.
///
/// Returns once a *started* stamp is durable. Fails, writing nothing, with
/// [`Error::Interrupted`] if the step was started and never completed,
/// [`Error::AlreadyComplete`] if it completed with the same digest (skip the
/// step), [`Error::ConfigChanged`] if it completed with another one,
/// [`Error::Corrupt`] if the stamp cannot be trusted, [`Error::Io`] if the
/// directory is missing and [`Error::ReadOnly`] if it is read-only.
pub fn begin(dir: &Path, name: &str, digest: Option<&str>) -> Result<Token> {
    begin_impl(dir, name, digest, false)
}

/// [`begin`] whatever the record says: interrupted, complete (with any
/// digest) or corrupt. For an administrator who inspected the system and
/// wants the step to run again; [`Token::replaced`] says what was overridden
/// (it is also logged).
pub fn begin_forced(dir: &Path, name: &str, digest: Option<&str>) -> Result<Token> {
    begin_impl(dir, name, digest, true)
}

fn begin_impl(dir: &Path, name: &str, digest: Option<&str>, force: bool) -> Result<Token> {
    validate_name(name)?;
    let digest = digest.map(normalize_digest).transpose()?;
    let lock = DirLock::acquire_fd(dir, open_guard_dir(dir)?)?;
    let replaced = match read_stamp(dir, name) {
        Ok(None) => None,
        Ok(Some(old)) if !force => {
            // The stamp we refuse on may be visible but not durable (an
            // earlier write whose directory fsync failed after the rename,
            // see fsutil::write_atomic): make it durable, so the answer
            // holds after a power cut too.
            fsutil::fsync_dir(dir)?;
            return Err(refusal(&old, &digest));
        }
        Ok(Some(old)) => Some(Replaced::Stamp(old)),
        Err(e @ (Error::Corrupt { .. } | Error::Unsupported(_))) if force => {
            Some(Replaced::Unreadable(e.to_string()))
        }
        Err(e) => return Err(e),
    };
    match &replaced {
        Some(Replaced::Stamp(old)) => log::warn!(
            "forcing step {name:?}: overriding its {} record (digest {}, started {})",
            old.phase.as_str(),
            show_digest(&old.digest),
            old.started
        ),
        Some(Replaced::Unreadable(why)) => {
            log::warn!("forcing step {name:?}: overriding an unreadable stamp: {why}")
        }
        None => {}
    }
    lock.remove_stale_temps(&format!("{name}{STAMP_SUFFIX}"));
    let stamp = Stamp {
        name: name.to_owned(),
        phase: Phase::Started,
        digest,
        run: glib::uuid_string_random().to_string(),
        started: now()?,
        completed: None,
    };
    fsutil::write_atomic(&stamp_file(dir, name), serialize(&stamp).as_bytes())?;
    log::info!(
        "step {name:?} started (digest {})",
        show_digest(&stamp.digest)
    );
    Ok(Token {
        dir: dir.to_owned(),
        stamp,
        replaced,
    })
}

/// Why `begin` refuses to start over an existing record.
fn refusal(old: &Stamp, digest: &Option<String>) -> Error {
    match old.phase {
        Phase::Started => Error::Interrupted {
            name: old.name.clone(),
            started: old.started.clone(),
        },
        Phase::Complete if old.digest == *digest => Error::AlreadyComplete {
            name: old.name.clone(),
            completed: old.completed.clone().unwrap_or_default(),
        },
        Phase::Complete => Error::ConfigChanged {
            name: old.name.clone(),
            recorded: show_digest(&old.digest),
            requested: show_digest(digest),
        },
    }
}

/// Get the token of a *started* step back from its stamp, in a process other
/// than the one that began it: the name and digest must match the record.
///
/// Fails with [`Error::InvalidArgument`] when the step is not started (never
/// begun, or reset), [`Error::AlreadyComplete`] when it completed with this
/// digest, [`Error::ConfigChanged`] when the digest differs.
pub fn resume(dir: &Path, name: &str, digest: Option<&str>) -> Result<Token> {
    let digest = digest.map(normalize_digest).transpose()?;
    let stamp = status(dir, name)?.ok_or_else(|| not_started(dir, name))?;
    check_same_config(&stamp, &digest)?;
    if stamp.phase == Phase::Complete {
        // As in begin: make the complete stamp we answer with durable.
        fsutil::fsync_dir(dir)?;
        return Err(refusal(&stamp, &digest));
    }
    Ok(Token {
        dir: dir.to_owned(),
        stamp,
        replaced: None,
    })
}

/// Mark the step of `token` complete; durable before it returns.
///
/// The stamp must still be the *started* record `token` was made from: if it
/// was reset, completed, or begun again (forced) in the meantime, nothing is
/// written and the error says what happened.
pub fn commit(token: Token) -> Result<Stamp> {
    let Token { dir, stamp, .. } = token;
    let name = &stamp.name;
    let lock = DirLock::acquire_fd(&dir, open_guard_dir(&dir)?)?;
    let current = read_stamp(&dir, name)?.ok_or_else(|| not_started(&dir, name))?;
    check_same_config(&current, &stamp.digest)?;
    if current.phase == Phase::Complete {
        // As in begin: make the complete stamp we answer with durable.
        fsutil::fsync_dir(&dir)?;
        return Err(refusal(&current, &stamp.digest));
    }
    if current.run != stamp.run {
        return Err(Error::InvalidArgument(format!(
            "step {name:?} was begun again at {} (run {}) after this run (run {}) started at {}; not committing a run that is not the current one",
            current.started, current.run, stamp.run, stamp.started
        )));
    }
    lock.remove_stale_temps(&format!("{name}{STAMP_SUFFIX}"));
    let done = Stamp {
        phase: Phase::Complete,
        completed: Some(now()?),
        ..current
    };
    fsutil::write_atomic(&stamp_file(&dir, name), serialize(&done).as_bytes())?;
    log::info!("step {name:?} complete");
    Ok(done)
}

/// Forget step `name` (any state, also a corrupt stamp): the next [`begin`]
/// starts it. Returns whether there was a stamp. Durable before it returns.
pub fn reset(dir: &Path, name: &str) -> Result<bool> {
    validate_name(name)?;
    let lock = DirLock::acquire_fd(dir, open_guard_dir(dir)?)?;
    lock.remove_stale_temps(&format!("{name}{STAMP_SUFFIX}"));
    let removed = fsutil::remove_durable(&stamp_file(dir, name))?;
    if removed {
        log::info!("step {name:?} reset");
    }
    Ok(removed)
}

fn not_started(dir: &Path, name: &str) -> Error {
    Error::InvalidArgument(format!(
        "step {name:?} is not started in {} (never begun, or reset since); nothing to commit",
        dir.display()
    ))
}

fn check_same_config(stamp: &Stamp, digest: &Option<String>) -> Result<()> {
    if stamp.digest != *digest {
        return Err(Error::ConfigChanged {
            name: stamp.name.clone(),
            recorded: show_digest(&stamp.digest),
            requested: show_digest(digest),
        });
    }
    Ok(())
}

fn show_digest(d: &Option<String>) -> String {
    d.clone().unwrap_or_else(|| "(none)".into())
}

fn now() -> Result<String> {
    glib::DateTime::now_utc()
        .and_then(|t| t.format("%Y-%m-%dT%H:%M:%SZ"))
        .map(|s| s.to_string())
        .map_err(|e| Error::Unsupported(format!("cannot read the clock: {e}")))
}

fn open_guard_dir(dir: &Path) -> Result<OwnedFd> {
    fsutil::open_dir(dir).map_err(|e| match e {
        Error::Io { path, source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::io(
                "opening guard directory (stagehand never creates it: is its file system mounted?)",
                path,
                source,
            )
        }
        Error::Io { path, source, .. } => Error::io("opening guard directory", path, source),
        e => e,
    })
}

pub(crate) fn serialize(s: &Stamp) -> String {
    let mut body = format!(
        "{MAGIC} {FORMAT_VERSION}\nname={}\nstate={}\ndigest={}\nrun={}\nstarted={}\n",
        s.name,
        s.phase.as_str(),
        s.digest.as_deref().unwrap_or(""),
        s.run,
        s.started
    );
    if let Some(c) = &s.completed {
        body.push_str(&format!("completed={c}\n"));
    }
    let sum = sha256(body.as_bytes());
    body.push_str(&format!("sha256={sum}\n"));
    body
}

fn sha256(data: &[u8]) -> String {
    glib::compute_checksum_for_data(glib::ChecksumType::Sha256, data)
        .expect("GLib supports SHA-256")
        .to_string()
}

fn read_stamp(dir: &Path, name: &str) -> Result<Option<Stamp>> {
    let path = stamp_file(dir, name);
    match fsutil::read_bounded(&path, STAMP_MAX)? {
        None => Ok(None),
        Some(bytes) => parse(&path, name, &bytes).map(Some),
    }
}

/// Parse a stamp strictly: exact line order, every value checked, checksum
/// verified. Anything else is [`Error::Corrupt`] (or [`Error::Unsupported`]
/// for a newer format version).
pub(crate) fn parse(path: &Path, name: &str, bytes: &[u8]) -> Result<Stamp> {
    let corrupt = |detail: String| {
        Error::Corrupt {
        path: path.to_owned(),
        detail: format!("{detail}; inspect the system, then `stagehand guard reset {name}` or begin with --force"),
    }
    };
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not UTF-8 text".into()))?;
    let first = text.split('\n').next().unwrap_or("");
    let version = first
        .strip_prefix(MAGIC)
        .and_then(|v| v.strip_prefix(' '))
        .ok_or_else(|| corrupt("not a stagehand red-line stamp".into()))?;
    let version: u32 = version
        .parse()
        .map_err(|_| corrupt(format!("bad format version {version:?}")))?;
    if version > FORMAT_VERSION {
        return Err(Error::Unsupported(format!(
            "{} has stamp format {version}, written by a newer stagehand (this one reads {FORMAT_VERSION})",
            path.display()
        )));
    }
    if version != FORMAT_VERSION {
        return Err(corrupt(format!("bad format version {version}")));
    }
    let body_len = text
        .strip_suffix('\n')
        .and_then(|t| t.rfind('\n'))
        .map(|i| i + 1)
        .ok_or_else(|| corrupt("truncated".into()))?;
    let (body, check) = text.split_at(body_len);
    let recorded = check
        .strip_prefix("sha256=")
        .and_then(|c| c.strip_suffix('\n'))
        .ok_or_else(|| corrupt("no checksum line at the end (truncated?)".into()))?;
    if recorded != sha256(body.as_bytes()) {
        return Err(corrupt("checksum mismatch (torn or edited)".into()));
    }

    let mut lines = body.split('\n').skip(1);
    let mut field = |key: &str| -> Result<&str> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(key))
            .and_then(|l| l.strip_prefix('='))
            .ok_or_else(|| corrupt(format!("expected the {key} line")))
    };
    let stamp_name = field("name")?;
    if stamp_name != name {
        return Err(corrupt(format!(
            "it records step {stamp_name:?}, not {name:?}"
        )));
    }
    let phase = match field("state")? {
        "started" => Phase::Started,
        "complete" => Phase::Complete,
        other => return Err(corrupt(format!("unknown state {other:?}"))),
    };
    let digest = match field("digest")? {
        "" => None,
        d => Some(
            normalize_digest(d)
                .ok()
                .filter(|n| n == d)
                .ok_or_else(|| corrupt(format!("bad digest {d:?}")))?,
        ),
    };
    let run = field("run")?;
    if run.len() != 36 || !run.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(corrupt(format!("bad run id {run:?}")));
    }
    let time = |v: &str| -> Result<String> {
        if is_rfc3339_utc(v) {
            Ok(v.to_owned())
        } else {
            Err(corrupt(format!("bad time {v:?}")))
        }
    };
    let run = run.to_owned();
    let started = time(field("started")?)?;
    let completed = match phase {
        Phase::Complete => Some(time(field("completed")?)?),
        Phase::Started => None,
    };
    // Only the empty remainder after the last '\n' of the body may be left.
    if lines.next() != Some("") || lines.next().is_some() {
        return Err(corrupt("unexpected extra lines".into()));
    }
    Ok(Stamp {
        name: name.to_owned(),
        phase,
        digest,
        run,
        started,
        completed,
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the only time format stamps contain.
fn is_rfc3339_utc(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    const D1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const D2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn full_cycle_absent_started_complete() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(status(d.path(), "disk").unwrap(), None);
        let t = begin(d.path(), "disk", Some(D1)).unwrap();
        assert!(t.replaced().is_none());
        let st = status(d.path(), "disk").unwrap().unwrap();
        assert_eq!(st.phase, Phase::Started);
        assert_eq!(st.digest.as_deref(), Some(D1));
        assert_eq!(&st, t.stamp());
        assert!(is_rfc3339_utc(&st.started), "{}", st.started);
        let done = commit(t).unwrap();
        assert_eq!(done.phase, Phase::Complete);
        assert_eq!(done.run, st.run);
        assert_eq!(done.started, st.started);
        assert_eq!(status(d.path(), "disk").unwrap().unwrap(), done);
        assert_eq!(files(d.path()), vec!["disk.stamp"]);
    }

    #[test]
    fn begin_refuses_started_complete_and_changed() {
        let d = tempfile::tempdir().unwrap();
        let t = begin(d.path(), "s", Some(D1)).unwrap();
        let before = std::fs::read(t.path()).unwrap();
        drop(t); // not committed: the step was "interrupted"
        let e = begin(d.path(), "s", Some(D1)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Interrupted, "{e}");
        // Interrupted wins over a changed digest: the system may be half-done.
        let e = begin(d.path(), "s", Some(D2)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Interrupted, "{e}");
        assert_eq!(std::fs::read(d.path().join("s.stamp")).unwrap(), before);

        commit(resume(d.path(), "s", Some(D1)).unwrap()).unwrap();
        let complete = std::fs::read(d.path().join("s.stamp")).unwrap();
        let e = begin(d.path(), "s", Some(D1)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::AlreadyComplete, "{e}");
        // Upper-case hex is the same digest.
        let e = begin(d.path(), "s", Some(&D1.to_uppercase())).unwrap_err();
        assert_eq!(e.code(), ErrorCode::AlreadyComplete, "{e}");
        let e = begin(d.path(), "s", Some(D2)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ConfigChanged);
        let msg = e.to_string();
        assert!(msg.contains(D1) && msg.contains(D2), "{msg}");
        let e = begin(d.path(), "s", None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ConfigChanged);
        assert!(e.to_string().contains("(none)"), "{e}");
        // Refusals write nothing.
        assert_eq!(std::fs::read(d.path().join("s.stamp")).unwrap(), complete);
    }

    #[test]
    fn no_digest_is_a_digest_of_its_own() {
        let d = tempfile::tempdir().unwrap();
        commit(begin(d.path(), "n", None).unwrap()).unwrap();
        let e = begin(d.path(), "n", None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::AlreadyComplete);
        let e = begin(d.path(), "n", Some(D1)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ConfigChanged);
    }

    #[test]
    fn force_overrides_every_state_and_reports_it() {
        let d = tempfile::tempdir().unwrap();
        let t = begin_forced(d.path(), "f", Some(D1)).unwrap();
        assert_eq!(t.replaced(), None);
        let first = t.stamp().clone();
        drop(t);
        // Over started.
        let t = begin_forced(d.path(), "f", Some(D2)).unwrap();
        assert_eq!(t.replaced(), Some(&Replaced::Stamp(first.clone())));
        assert_ne!(t.stamp().run, first.run);
        let done = commit(t).unwrap();
        // Over complete with another digest.
        let t = begin_forced(d.path(), "f", Some(D1)).unwrap();
        assert_eq!(t.replaced(), Some(&Replaced::Stamp(done)));
        assert_eq!(
            status(d.path(), "f").unwrap().unwrap().phase,
            Phase::Started
        );
        drop(t);
        // Over a corrupt stamp.
        std::fs::write(d.path().join("f.stamp"), b"garbage").unwrap();
        let t = begin_forced(d.path(), "f", None).unwrap();
        assert!(
            matches!(t.replaced(), Some(Replaced::Unreadable(why)) if why.contains("corrupt")),
            "{:?}",
            t.replaced()
        );
        commit(t).unwrap();
    }

    #[test]
    fn commit_checks_the_record_it_commits() {
        let d = tempfile::tempdir().unwrap();
        // Forced begin in between: the old token's run is not the current one.
        let old = begin(d.path(), "c", Some(D1)).unwrap();
        let new = begin_forced(d.path(), "c", Some(D1)).unwrap();
        let e = commit(old).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert!(e.to_string().contains("begun again"), "{e}");
        assert_eq!(
            status(d.path(), "c").unwrap().unwrap().phase,
            Phase::Started
        );
        commit(new).unwrap();

        // Reset in between.
        reset(d.path(), "c").unwrap();
        let t = begin(d.path(), "c", Some(D1)).unwrap();
        assert!(reset(d.path(), "c").unwrap());
        let e = commit(t).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert!(e.to_string().contains("not started"), "{e}");
        assert_eq!(status(d.path(), "c").unwrap(), None);
    }

    #[test]
    fn resume_needs_a_started_step_with_the_same_digest() {
        let d = tempfile::tempdir().unwrap();
        let e = resume(d.path(), "r", Some(D1)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        let t = begin(d.path(), "r", Some(D1)).unwrap();
        let run = t.stamp().run.clone();
        drop(t);
        assert_eq!(
            resume(d.path(), "r", Some(D2)).unwrap_err().code(),
            ErrorCode::ConfigChanged
        );
        assert_eq!(
            resume(d.path(), "r", None).unwrap_err().code(),
            ErrorCode::ConfigChanged
        );
        let t = resume(d.path(), "r", Some(D1)).unwrap();
        assert_eq!(t.stamp().run, run);
        commit(t).unwrap();
        assert_eq!(
            resume(d.path(), "r", Some(D1)).unwrap_err().code(),
            ErrorCode::AlreadyComplete
        );
    }

    #[test]
    fn reset_forgets_any_state() {
        let d = tempfile::tempdir().unwrap();
        assert!(!reset(d.path(), "x").unwrap());
        commit(begin(d.path(), "x", None).unwrap()).unwrap();
        assert!(reset(d.path(), "x").unwrap());
        assert_eq!(status(d.path(), "x").unwrap(), None);
        std::fs::write(d.path().join("x.stamp"), b"junk").unwrap();
        assert!(reset(d.path(), "x").unwrap());
        let _ = begin(d.path(), "x", None).unwrap();
    }

    #[test]
    fn names_are_validated() {
        let d = tempfile::tempdir().unwrap();
        let long = "a".repeat(NAME_MAX + 1);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "/abs",
            "-opt",
            "sp ace",
            "tab\t",
            "new\nline",
            "é",
            "a\\b",
            "x*",
            &long,
        ] {
            let e = begin(d.path(), bad, None).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidArgument, "{bad:?}: {e}");
            assert_eq!(
                status(d.path(), bad).unwrap_err().code(),
                ErrorCode::InvalidArgument
            );
            assert_eq!(
                reset(d.path(), bad).unwrap_err().code(),
                ErrorCode::InvalidArgument
            );
            assert_eq!(
                resume(d.path(), bad, None).unwrap_err().code(),
                ErrorCode::InvalidArgument
            );
        }
        assert!(files(d.path()).is_empty());
        for good in [
            "a",
            "disk-setup",
            "luks@sda2",
            "v1.2_x+y",
            &"z".repeat(NAME_MAX),
        ] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn digests_are_validated_and_normalized() {
        assert_eq!(normalize_digest("DEADBEEF").unwrap(), "deadbeef");
        assert_eq!(normalize_digest(D1).unwrap(), D1);
        for bad in [
            "",
            "abc",
            "deadbee",
            "deadbeeg",
            "dead beef",
            &"a".repeat(130),
            "0xdeadbeef",
        ] {
            assert_eq!(
                normalize_digest(bad).unwrap_err().code(),
                ErrorCode::InvalidArgument,
                "{bad:?}"
            );
        }
        let d = tempfile::tempdir().unwrap();
        let e = begin(d.path(), "x", Some("nothex!!")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert!(files(d.path()).is_empty());
    }

    #[test]
    fn file_digest_is_sha256() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cfg");
        std::fs::write(&p, b"test").unwrap();
        // sha256("test"), a published test vector.
        assert_eq!(file_digest(&p).unwrap(), D1);
        // Larger than one read buffer.
        let big = vec![b'x'; 200_000];
        std::fs::write(&p, &big).unwrap();
        assert_eq!(file_digest(&p).unwrap(), sha256(&big));
        let e = file_digest(&d.path().join("missing")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Io);
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn damaged_stamps_are_corrupt_never_misread() {
        let d = tempfile::tempdir().unwrap();
        commit(begin(d.path(), "t", Some(D1)).unwrap()).unwrap();
        let path = d.path().join("t.stamp");
        let good = std::fs::read(&path).unwrap();
        // Every truncation (a torn write), every single-byte change, and garbage.
        let mut variants: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        for i in 0..good.len() {
            let mut v = good.clone();
            v[i] ^= 0x01;
            variants.push(v);
        }
        variants.push(b"\0\0\0\0".to_vec());
        variants.push(vec![b'a'; 5000]);
        variants.push([good.clone(), b"extra\n".to_vec()].concat());
        for v in variants {
            std::fs::write(&path, &v).unwrap();
            match status(d.path(), "t") {
                Err(e) if e.code() == ErrorCode::Corrupt => {
                    assert!(e.to_string().contains("t.stamp"), "{e}");
                    let e = begin(d.path(), "t", Some(D1)).unwrap_err();
                    assert_eq!(e.code(), ErrorCode::Corrupt);
                }
                other => panic!("{:?} read as {other:?}", String::from_utf8_lossy(&v)),
            }
        }
        // Unchanged bytes still read.
        std::fs::write(&path, &good).unwrap();
        assert_eq!(
            status(d.path(), "t").unwrap().unwrap().phase,
            Phase::Complete
        );
    }

    #[test]
    fn a_self_consistent_stamp_with_bad_fields_is_corrupt() {
        // Checksums match, content does not: every field is checked too.
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("q.stamp");
        let run = "6b0c3c1e-64c5-4b33-9a56-0e0c0f5ad2a1";
        let t = "2024-05-01T12:00:00Z";
        for body in [
            format!("{MAGIC} 1\nname=other\nstate=started\ndigest=\nrun={run}\nstarted={t}\n"),
            format!("{MAGIC} 1\nname=q\nstate=done\ndigest=\nrun={run}\nstarted={t}\n"),
            format!("{MAGIC} 1\nname=q\nstate=started\ndigest=XYZ\nrun={run}\nstarted={t}\n"),
            format!("{MAGIC} 1\nname=q\nstate=started\ndigest=DEADBEEF\nrun={run}\nstarted={t}\n"),
            format!("{MAGIC} 1\nname=q\nstate=started\ndigest=\nrun=x\nstarted={t}\n"),
            format!("{MAGIC} 1\nname=q\nstate=started\ndigest=\nrun={run}\nstarted=yesterday\n"),
            format!("{MAGIC} 1\nname=q\nstate=complete\ndigest=\nrun={run}\nstarted={t}\n"),
            format!("{MAGIC} 1\nname=q\nstate=started\ndigest=\nrun={run}\nstarted={t}\nextra=1\n"),
            format!("{MAGIC} 1\nstate=started\nname=q\ndigest=\nrun={run}\nstarted={t}\n"),
            format!("{MAGIC} 0\nname=q\nstate=started\ndigest=\nrun={run}\nstarted={t}\n"),
        ] {
            let sum = sha256(body.as_bytes());
            std::fs::write(&path, format!("{body}sha256={sum}\n")).unwrap();
            let e = status(d.path(), "q").unwrap_err();
            assert_eq!(e.code(), ErrorCode::Corrupt, "{body}: {e}");
        }
        let body = format!("{MAGIC} 1\nname=q\nstate=started\ndigest=\nrun={run}\nstarted={t}\n");
        std::fs::write(&path, format!("{body}sha256={}\n", sha256(body.as_bytes()))).unwrap();
        assert_eq!(status(d.path(), "q").unwrap().unwrap().run, run);
        // A newer format is not garbage: it is a stagehand we do not understand.
        std::fs::write(&path, format!("{MAGIC} 2\nwhatever\n")).unwrap();
        let e = status(d.path(), "q").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
        assert_eq!(
            begin(d.path(), "q", None).unwrap_err().code(),
            ErrorCode::Unsupported
        );
    }

    #[test]
    fn missing_directory_is_a_clear_io_error_and_is_not_created() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("guard");
        let e = begin(&missing, "m", None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Io);
        let msg = e.to_string();
        assert!(
            msg.contains("guard directory") && msg.contains(missing.to_str().unwrap()),
            "{msg}"
        );
        assert_eq!(status(&missing, "m").unwrap_err().code(), ErrorCode::Io);
        assert_eq!(reset(&missing, "m").unwrap_err().code(), ErrorCode::Io);
        assert!(!missing.exists());
    }

    #[test]
    fn stale_temporary_files_of_the_step_are_cleaned_up() {
        let d = tempfile::tempdir().unwrap();
        // What a writer killed between creating and renaming its temp leaves.
        for f in [
            ".s.stamp.tmp123",
            ".s.stamp.tmp9",
            ".other.stamp.tmp5",
            ".s.stamp.tmpx",
            "keep",
        ] {
            std::fs::write(d.path().join(f), b"partial").unwrap();
        }
        let t = begin(d.path(), "s", None).unwrap();
        assert_eq!(
            files(d.path()),
            vec![".other.stamp.tmp5", ".s.stamp.tmpx", "keep", "s.stamp"]
        );
        std::fs::write(d.path().join(".s.stamp.tmp77"), b"partial").unwrap();
        commit(t).unwrap();
        assert!(!d.path().join(".s.stamp.tmp77").exists());
        std::fs::write(d.path().join(".s.stamp.tmp78"), b"partial").unwrap();
        reset(d.path(), "s").unwrap();
        assert!(!d.path().join(".s.stamp.tmp78").exists());
    }

    #[test]
    fn concurrent_begins_cross_the_line_once() {
        let d = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let name = format!("race{round}");
            let results: Vec<_> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| begin(d.path(), &name, Some(D1)).map(|t| t.stamp().run.clone()))
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(winners.len(), 1, "{results:?}");
            for r in &results {
                if let Err(e) = r {
                    assert_eq!(e.code(), ErrorCode::Interrupted, "{e}");
                }
            }
            assert_eq!(&status(d.path(), &name).unwrap().unwrap().run, winners[0]);
        }
    }

    #[test]
    fn the_stamp_file_format_is_what_the_docs_say() {
        let d = tempfile::tempdir().unwrap();
        let t = begin(d.path(), "fmt", Some(D1)).unwrap();
        let s = t.stamp().clone();
        let text = std::fs::read_to_string(t.path()).unwrap();
        let body = format!(
            "stagehand-redline 1\nname=fmt\nstate=started\ndigest={D1}\nrun={}\nstarted={}\n",
            s.run, s.started
        );
        assert_eq!(text, format!("{body}sha256={}\n", sha256(body.as_bytes())));
        let done = commit(t).unwrap();
        let text = std::fs::read_to_string(d.path().join("fmt.stamp")).unwrap();
        assert!(
            text.contains("state=complete\n")
                && text.contains(&format!(
                    "started={}\ncompleted={}\nsha256=",
                    s.started,
                    done.completed.as_deref().unwrap()
                )),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("fmt.stamp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
