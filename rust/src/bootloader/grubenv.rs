//! The GRUB environment block (`grubenv`) and the boot counter that lives in
//! it: the variables `boot_counter` and `boot_success` that Fedora's GRUB,
//! greenboot and stagehand's own GRUB snippet share.
//!
//! # The format
//!
//! A GRUB environment block is a file of exactly [`BLOCK_SIZE`] (1024)
//! bytes: the line `# GRUB Environment Block`, then `name=value` lines, then
//! `#` up to the end. GRUB and `grub-editenv` treat a line that starts with
//! `#` as a comment (`grub-editenv create` writes a second one, a warning not
//! to edit the file by hand). In a value a backslash escapes the next byte;
//! writers escape exactly `\` (as `\\`) and newline (as a backslash before
//! the newline), and readers turn `\X` into `X` for any `X`. There is no
//! checksum.
//!
//! [`GrubEnv`] keeps every line it read as the exact bytes it read, so
//! variables and comments stagehand does not touch are written back
//! byte-for-byte and in order; a variable that is set replaces its own line in
//! place, and a new one is appended after the last line, as GRUB does.
//!
//! A block that is not exactly that — another size, no header, a line that is
//! neither `name=value` nor a comment, an unterminated escape, a NUL byte, or
//! data running into the padding — is [`Error::Corrupt`] and is never
//! written over: it may hold variables somebody needs, and guessing what a
//! damaged block meant is how a boot counter gets lost. Changes that would not
//! fit into 1024 bytes are refused ([`Error::Unsupported`]) before anything is
//! written.
//!
//! # Writing it: why a userspace rename is safe, and what GRUB needs
//!
//! GRUB itself (`save_env`, used by the counting snippet) never creates or
//! renames the file: at every boot it opens it *by path*, records the disk
//! sectors the file system driver reads it from, checks that they add up to
//! the whole file and re-read the same bytes, and then overwrites those
//! sectors in place — so it can neither grow the block nor write it when the
//! data is not stored as plain sectors (compressed, inline, encrypted or
//! checksummed file data, e.g. on Btrfs, or on LVM/RAID/LUKS), in which case
//! `save_env` fails and counting does not happen (see below).
//!
//! `grub-editenv` rewrites the file with `O_TRUNC` and one `write`: a power
//! cut in between leaves an empty or short file, which GRUB cannot load.
//! stagehand instead replaces it atomically with
//! [`fsutil::write_atomic_mode`]: a complete new 1024-byte file is written and
//! fsynced next to it, renamed over it, and the directory is fsynced. That
//! is safe for GRUB because
//!
//! - GRUB looks the file up by path at every boot, so a new inode is found
//!   like the old one (nothing caches its block list: not GRUB, not
//!   `grub-install`, unlike the core image);
//! - the new file has the same size (1024 bytes) and is fully written and
//!   fsynced before it is renamed, so its blocks are allocated, not sparse,
//!   and on disk when GRUB next reads them — exactly what `save_env`'s block
//!   list check needs;
//! - a reader (GRUB, `grub-editenv`, stagehand) sees the old block or the new
//!   one, never a torn or empty one.
//!
//! When `grubenv` is a symbolic link (Fedora once linked
//! `/boot/grub2/grubenv` to the copy on the EFI system partition), the link
//! is resolved and its target replaced, so the link keeps working. On FAT
//! (an ESP) a rename over an existing file is not atomic against power loss
//! in every kernel, but it is never worse than `grub-editenv`'s truncation.
//!
//! Writers inside stagehand serialize on an `flock` of the directory. Other
//! tools (`grub-editenv`, `grub2-set-bootflag`) do not take it: a change they
//! make between stagehand's read and its rename is lost, as between two
//! `grub-editenv` runs.
//!
//! # The counter protocol
//!
//! | step | `boot_counter` | `boot_success` |
//! |---|---|---|
//! | [`GrubenvCounter::arm`] at finalize | tries (e.g. `3`) | `0` |
//! | GRUB, each boot while `boot_success=0` and counter 1..=[`MAX_TRIES`] | decremented | |
//! | GRUB, counter `0`, `-1` or not a number | `-1`, and the fallback entry is booted | |
//! | [`GrubenvCounter::bless`] after `boot-complete.target` | unset | `1` |
//! | [`GrubenvCounter::disarm`] | unset | unchanged |
//!
//! This is the protocol of Fedora's `08_fallback_counting` and of greenboot
//! (which blesses with two `grub-editenv` runs; stagehand does it in one
//! atomic write). [`simulate_boot`] is the same logic in Rust, for tests that
//! drive reboots; `data/grub/08_stagehand-boot-counting` is the GRUB script
//! for distributions that ship none.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::{self, DirLock};

use super::{Backend, BootCounter, CounterState, Target, MAX_TRIES};

/// The size of every GRUB environment block `grub-editenv` creates.
pub const BLOCK_SIZE: usize = 1024;

/// The first line of a GRUB environment block.
pub const HEADER: &str = "# GRUB Environment Block\n";

/// The comment `grub-editenv create` puts after the header.
const WARNING: &str = "# WARNING: Do not edit this file by tools other than grub-editenv!!!\n";

/// The variable GRUB counts down.
pub const BOOT_COUNTER: &str = "boot_counter";
/// The variable userspace sets to `1` once a boot is known to be good.
pub const BOOT_SUCCESS: &str = "boot_success";

/// Where distributions keep the block, in the order [`super::select`] looks:
/// Fedora and its derivatives, then Debian and its derivatives.
pub const DEFAULT_PATHS: [&str; 2] = ["/boot/grub2/grubenv", "/boot/grub/grubenv"];

/// The GRUB script that counts boots, installed as
/// `/etc/grub.d/08_stagehand-boot-counting` (shipped as
/// `data/grub/08_stagehand-boot-counting`).
pub const GRUB_SCRIPT: &str = include_str!("../../../data/grub/08_stagehand-boot-counting");

/// One line of the block, kept as the exact bytes read (or written).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// A line starting with `#` (including its newline).
    Comment(Vec<u8>),
    /// `name=value\n`: `raw` is the whole line as stored (escaped, with the
    /// newline), `name_len` the length of the name, `value` the unescaped
    /// value.
    Var {
        raw: Vec<u8>,
        name_len: usize,
        value: Vec<u8>,
    },
}

impl Line {
    fn raw(&self) -> &[u8] {
        match self {
            Line::Comment(r) => r,
            Line::Var { raw, .. } => raw,
        }
    }

    fn name(&self) -> Option<&[u8]> {
        match self {
            Line::Var { raw, name_len, .. } => Some(&raw[..*name_len]),
            Line::Comment(_) => None,
        }
    }
}

/// A parsed GRUB environment block.
///
/// Lookups follow GRUB's `load_env`: when a name appears twice (only a hand
/// edit does that), the last one wins; [`GrubEnv::set`] and
/// [`GrubEnv::unset`] leave exactly one (or no) line for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubEnv {
    lines: Vec<Line>,
}

impl Default for GrubEnv {
    fn default() -> Self {
        GrubEnv::new()
    }
}

impl GrubEnv {
    /// An empty block, as `grub-editenv create` makes it (header and warning).
    pub fn new() -> GrubEnv {
        GrubEnv {
            lines: vec![Line::Comment(WARNING.as_bytes().to_vec())],
        }
    }

    /// Parse a block strictly; `Err` carries what is wrong, for
    /// [`Error::Corrupt`].
    pub fn parse(bytes: &[u8]) -> std::result::Result<GrubEnv, String> {
        if bytes.len() != BLOCK_SIZE {
            return Err(format!(
                "is {} bytes; a GRUB environment block is exactly {BLOCK_SIZE}",
                bytes.len()
            ));
        }
        let body = bytes
            .strip_prefix(HEADER.as_bytes())
            .ok_or_else(|| "does not start with \"# GRUB Environment Block\"".to_string())?;
        // The padding is the run of '#' at the end; what precedes it must end
        // a line (GRUB's own writer checks the same before it changes anything).
        let data_len = body.len() - body.iter().rev().take_while(|b| **b == b'#').count();
        let data = &body[..data_len];
        if let Some(last) = data.last() {
            if *last != b'\n' {
                return Err("the variables run into the '#' padding without a newline".into());
            }
        }
        if let Some(pos) = data.iter().position(|b| *b == 0) {
            return Err(format!("has a NUL byte at offset {}", HEADER.len() + pos));
        }
        let mut lines = Vec::new();
        let mut start = 0;
        let mut i = 0;
        let mut lineno = 1; // the header
        while start < data.len() {
            lineno += 1;
            // Find the end of the line as GRUB does: a backslash escapes the
            // next byte, including a newline.
            let end = loop {
                match data.get(i) {
                    None => {
                        return Err(format!(
                            "line {lineno} ends in an unterminated backslash escape"
                        ))
                    }
                    Some(b'\\') => i += 2,
                    Some(b'\n') => break i,
                    Some(_) => i += 1,
                }
            };
            let raw = &data[start..=end];
            let content = &data[start..end];
            if content.first() == Some(&b'#') {
                lines.push(Line::Comment(raw.to_vec()));
            } else {
                let name_len = content.iter().position(|b| *b == b'=').ok_or_else(|| {
                    format!(
                        "line {lineno} ({:?}) is neither name=value nor a comment",
                        String::from_utf8_lossy(&content[..content.len().min(40)])
                    )
                })?;
                if name_len == 0 {
                    return Err(format!("line {lineno} has an empty variable name"));
                }
                lines.push(Line::Var {
                    raw: raw.to_vec(),
                    name_len,
                    value: unescape(&content[name_len + 1..]),
                });
            }
            i = end + 1;
            start = i;
        }
        Ok(GrubEnv { lines })
    }

    /// The block as 1024 bytes, padded with `#`; refused with
    /// [`Error::Unsupported`] when the variables do not fit.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = HEADER.as_bytes().to_vec();
        for l in &self.lines {
            out.extend_from_slice(l.raw());
        }
        if out.len() > BLOCK_SIZE {
            return Err(Error::Unsupported(format!(
                "the variables need {} bytes and a GRUB environment block holds {BLOCK_SIZE}; \
                 remove unused ones with `grub-editenv FILE unset NAME`",
                out.len()
            )));
        }
        out.resize(BLOCK_SIZE, b'#');
        Ok(out)
    }

    /// The value of `name` as GRUB's `load_env` sees it (unescaped bytes).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Var { value, .. } if l.name() == Some(name.as_bytes()) => Some(value.as_slice()),
            _ => None,
        })
    }

    /// [`GrubEnv::get`] as text; `None` also when the value is not UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every variable, in order, as `(name, value)` (names and values lossily
    /// decoded; duplicates included, as `grub-editenv list` shows them).
    pub fn vars(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Var {
                    raw,
                    name_len,
                    value,
                } => Some((
                    String::from_utf8_lossy(&raw[..*name_len]).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                )),
                Line::Comment(_) => None,
            })
            .collect()
    }

    /// Set `name` to `value`: its line is replaced in place (later duplicates
    /// are dropped), or a new line is appended. Whether the block still fits is
    /// checked by [`GrubEnv::to_bytes`].
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<()> {
        check_name(name)?;
        if value.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "the value of GRUB variable {name} contains a NUL byte"
            )));
        }
        let mut raw = name.as_bytes().to_vec();
        raw.push(b'=');
        raw.extend_from_slice(&escape(value));
        raw.push(b'\n');
        let line = Line::Var {
            raw,
            name_len: name.len(),
            value: value.to_vec(),
        };
        match self
            .lines
            .iter()
            .position(|l| l.name() == Some(name.as_bytes()))
        {
            Some(first) => {
                if self.lines[first] != line {
                    self.lines[first] = line;
                }
                let mut i = first + 1;
                while i < self.lines.len() {
                    if self.lines[i].name() == Some(name.as_bytes()) {
                        self.lines.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => self.lines.push(line),
        }
        Ok(())
    }

    /// Remove every line of `name`; returns whether there was one.
    pub fn unset(&mut self, name: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(|l| l.name() != Some(name.as_bytes()));
        self.lines.len() != before
    }

    /// Read the block at `path`: `None` if there is no file, [`Error::Corrupt`]
    /// if it is not a well-formed block.
    pub fn read(path: &Path) -> Result<Option<GrubEnv>> {
        match fsutil::read_bounded(path, BLOCK_SIZE as u64)? {
            None => Ok(None),
            Some(bytes) => GrubEnv::parse(&bytes).map(Some).map_err(|detail| Error::Corrupt {
                path: path.to_owned(),
                detail: format!(
                    "{detail}; not a GRUB environment block, left untouched \
                     (inspect it, or recreate it with `grub-editenv {} create` after moving it away)",
                    path.display()
                ),
            }),
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.starts_with('#')
        || name.bytes().any(|b| matches!(b, b'=' | b'\n' | b'\\' | 0))
    {
        return Err(Error::InvalidArgument(format!(
            "{name:?} is not a GRUB environment variable name"
        )));
    }
    Ok(())
}

/// GRUB's escaping: a backslash before `\` and before newline.
fn escape(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for b in value {
        if matches!(b, b'\\' | b'\n') {
            out.push(b'\\');
        }
        out.push(*b);
    }
    out
}

/// GRUB's unescaping: `\X` is `X` for any byte `X`.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(b) = it.next() {
        if *b == b'\\' {
            if let Some(n) = it.next() {
                out.push(*n);
            }
        } else {
            out.push(*b);
        }
    }
    out
}

/// The file a write must replace: the target of a symbolic link (so the link
/// survives), else `path` itself.
fn resolve(path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
            Error::io(
                "resolving the symbolic link (is the file system it points to mounted?)",
                path,
                e,
            )
        }),
        _ => Ok(path.to_owned()),
    }
}

/// Read-modify-write the block at `path` under the directory lock.
///
/// `change` gets the current block (a fresh one when the file does not
/// exist; `create` says whether that is allowed) and returns whether it
/// changed anything. Nothing is written when the bytes would not change, so
/// repeating an operation costs no fsync. Returns whether the file was
/// written.
pub fn update(
    path: &Path,
    create: bool,
    change: impl FnOnce(&mut GrubEnv) -> Result<()>,
) -> Result<bool> {
    let target = resolve(path)?;
    let (dir, name) = match (target.parent(), target.file_name()) {
        (Some(d), Some(n)) => (
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            },
            n.to_string_lossy().into_owned(),
        ),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "{} is not a file path",
                path.display()
            )))
        }
    };
    let lock = DirLock::acquire(dir)?;
    lock.remove_stale_temps(&name);
    let old = fsutil::read_bounded(&target, BLOCK_SIZE as u64)?;
    let mut env = match &old {
        Some(bytes) => GrubEnv::parse(bytes).map_err(|detail| Error::Corrupt {
            path: target.clone(),
            detail: format!("{detail}; not a GRUB environment block, left untouched"),
        })?,
        None if create => GrubEnv::new(),
        None => return Ok(false),
    };
    change(&mut env)?;
    let new = env.to_bytes()?;
    if old.as_deref() == Some(new.as_slice()) {
        // Already the new block: make it durable in case it is there because
        // an earlier write's directory fsync failed (see fsutil::write_atomic).
        fsutil::fsync_dir(dir)?;
        return Ok(false);
    }
    let mode = std::fs::metadata(&target)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    fsutil::write_atomic_mode(&target, &new, mode)?;
    drop(lock);
    Ok(true)
}

/// What GRUB does at boot, per [`simulate_boot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrubChoice {
    /// The default entry (the newest deployment) is booted.
    Default,
    /// The counter ran out: the fallback entry (the previous deployment) is
    /// booted.
    Fallback,
}

/// The boot counting of `data/grub/08_stagehand-boot-counting`, statement
/// by statement, on a parsed block: what GRUB does at each boot. Returns the
/// entry GRUB boots; `env` is left as GRUB's `save_env` leaves it.
///
/// The GRUB script, with the statement each step here mirrors:
///
/// ```text
/// if [ -n "${boot_counter}" -a "${boot_success}" = "0" ]; then   // (1)
///   if   [ "${boot_counter}" = "16" ]; then set boot_counter=15  // (2) for 16..=1
///   ...
///   elif [ "${boot_counter}" = "1" ];  then set boot_counter=0
///   else                                                         // (3)
///     set default="${stagehand_fallback}"
///     set boot_counter=-1
///   fi
///   save_env boot_counter                                        // (4)
/// fi
/// ```
///
/// GRUB variables are strings and `=` compares them exactly, so `03` or
/// `+3` are not counts: like `0`, `-1` or garbage they take branch (3) and
/// fall back, which is safer than counting forever. (Fedora's snippet uses its
/// `decrement` command instead, which fails on garbage and keeps booting the
/// new entry; for valid counts both behave the same.)
pub fn simulate_boot(env: &mut GrubEnv) -> GrubChoice {
    // (1): `-n` is false for an unset or empty variable.
    let counting = env.get(BOOT_COUNTER).is_some_and(|c| !c.is_empty())
        && env.get(BOOT_SUCCESS) == Some(b"0".as_slice());
    if !counting {
        return GrubChoice::Default;
    }
    let counter = env.get(BOOT_COUNTER).unwrap_or_default().to_vec();
    // (2): exactly the decimal spellings 1..=MAX_TRIES.
    let next = (1..=MAX_TRIES).find(|n| counter == n.to_string().as_bytes());
    let choice = match next {
        Some(n) => {
            env.set(BOOT_COUNTER, (n - 1).to_string().as_bytes())
                .expect("valid name");
            GrubChoice::Default
        }
        // (3)
        None => {
            env.set(BOOT_COUNTER, b"-1").expect("valid name");
            GrubChoice::Fallback
        }
    };
    // (4) is the caller's write (GRUB rewrites the block in place).
    choice
}

/// [`simulate_boot`] on the file at `path`, written back as GRUB's `save_env`
/// would (a missing file: GRUB's `load_env` is skipped and nothing counts).
/// For tests and demos that drive "reboots" of a test sysroot.
pub fn simulate_boot_file(path: &Path) -> Result<GrubChoice> {
    let mut choice = GrubChoice::Default;
    update(path, false, |env| {
        choice = simulate_boot(env);
        Ok(())
    })?;
    Ok(choice)
}

/// The `grubenv` backend: the counter in a GRUB environment block.
#[derive(Debug, Clone)]
pub struct GrubenvCounter {
    path: PathBuf,
}

impl GrubenvCounter {
    /// The counter in the block at `path` (which need not exist yet: arming
    /// creates it).
    pub fn new(path: impl Into<PathBuf>) -> GrubenvCounter {
        GrubenvCounter { path: path.into() }
    }

    /// The block's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The block, or `None` when there is no file.
    pub fn read(&self) -> Result<Option<GrubEnv>> {
        GrubEnv::read(&resolve(&self.path)?)
    }

    /// The counter state of a parsed block (see the module docs' table).
    pub fn state_of(&self, env: &GrubEnv) -> Result<CounterState> {
        let Some(counter) = env.get(BOOT_COUNTER) else {
            return Ok(CounterState::NotArmed);
        };
        if env.get(BOOT_SUCCESS) != Some(b"0".as_slice()) || counter.is_empty() {
            // GRUB only counts while boot_success=0 (a bless interrupted
            // between greenboot's two grub-editenv runs leaves this).
            return Ok(CounterState::NotArmed);
        }
        let text = String::from_utf8_lossy(counter);
        match text.parse::<i64>() {
            Ok(-1) => Ok(CounterState::Exhausted { done: None }),
            Ok(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(CounterState::Counting {
                left: n as u32,
                done: None,
            }),
            _ => Err(Error::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "boot_counter={text:?} is not a count (GRUB falls back at the next boot)"
                ),
            }),
        }
    }
}

impl BootCounter for GrubenvCounter {
    fn backend(&self) -> Backend {
        Backend::Grubenv
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    /// `boot_counter=tries`, `boot_success=0`, in one atomic write (the
    /// block is created when missing). The counter is global: arm it only
    /// once `target` is the default entry.
    fn arm(&self, _target: &Target, tries: u32) -> Result<()> {
        super::check_tries(tries)?;
        update(&self.path, true, |env| {
            env.set(BOOT_COUNTER, tries.to_string().as_bytes())?;
            env.set(BOOT_SUCCESS, b"0")
        })?;
        Ok(())
    }

    fn state(&self, _target: &Target) -> Result<CounterState> {
        match self.read()? {
            None => Ok(CounterState::NotArmed),
            Some(env) => self.state_of(&env),
        }
    }

    /// `boot_success=1` and `boot_counter` unset, in one atomic write
    /// (greenboot needs two `grub-editenv` runs for this).
    fn bless(&self, _target: &Target) -> Result<bool> {
        update(&self.path, false, |env| {
            env.unset(BOOT_COUNTER);
            env.set(BOOT_SUCCESS, b"1")
        })
    }

    /// `boot_counter` unset; `boot_success` left as it is.
    fn disarm(&self, _target: &Target) -> Result<bool> {
        update(&self.path, false, |env| {
            env.unset(BOOT_COUNTER);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(body: &str) -> Vec<u8> {
        let mut b = format!("{HEADER}{body}").into_bytes();
        b.resize(BLOCK_SIZE, b'#');
        b
    }

    #[test]
    fn new_block_is_what_grub_editenv_creates() {
        let b = GrubEnv::new().to_bytes().unwrap();
        assert_eq!(b.len(), BLOCK_SIZE);
        assert!(b.starts_with(format!("{HEADER}{WARNING}").as_bytes()));
        assert!(b[HEADER.len() + WARNING.len()..].iter().all(|c| *c == b'#'));
    }

    #[test]
    fn escapes_round_trip_like_grub() {
        let raw = block("a=x\\\\y\nb=one\\\ntwo\nc=\\q\n");
        let env = GrubEnv::parse(&raw).unwrap();
        assert_eq!(env.get("a"), Some(b"x\\y".as_slice()));
        assert_eq!(env.get("b"), Some(b"one\ntwo".as_slice()));
        // Any escaped byte reads as itself.
        assert_eq!(env.get("c"), Some(b"q".as_slice()));
        // Untouched lines are written back as read.
        assert_eq!(env.to_bytes().unwrap(), raw);
        let mut env = GrubEnv::new();
        env.set("v", b"a\\b\nc").unwrap();
        let bytes = env.to_bytes().unwrap();
        let needle = b"v=a\\\\b\\\nc\n";
        assert!(bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
        assert_eq!(
            GrubEnv::parse(&bytes).unwrap().get("v"),
            Some(b"a\\b\nc".as_slice())
        );
    }

    #[test]
    fn set_replaces_in_place_and_appends_new_names() {
        let raw = block("# note\nx=1\nboot_counter=3\ny=2\n");
        let mut env = GrubEnv::parse(&raw).unwrap();
        env.set("boot_counter", b"2").unwrap();
        env.set("z", b"new").unwrap();
        assert_eq!(
            env.to_bytes().unwrap(),
            block("# note\nx=1\nboot_counter=2\ny=2\nz=new\n")
        );
        assert!(env.unset("x"));
        assert!(!env.unset("x"));
        assert_eq!(
            env.to_bytes().unwrap(),
            block("# note\nboot_counter=2\ny=2\nz=new\n")
        );
    }

    #[test]
    fn duplicates_read_last_and_collapse_on_set() {
        let mut env = GrubEnv::parse(&block("a=1\nb=x\na=2\n")).unwrap();
        assert_eq!(env.get_str("a"), Some("2"));
        env.set("a", b"3").unwrap();
        assert_eq!(env.to_bytes().unwrap(), block("a=3\nb=x\n"));
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (block("a=1\n")[..1023].to_vec(), "1023 bytes"),
            ([block("a=1\n"), vec![b'#']].concat(), "1025 bytes"),
            (vec![b'#'; BLOCK_SIZE], "does not start"),
            (block("garbage\n"), "neither name=value"),
            (block("=x\n"), "empty variable name"),
            (block("a=1"), "without a newline"),
            (block("a=1\\\n"), "unterminated"),
            (block("a=x\0y\n"), "NUL"),
        ];
        for (bytes, needle) in cases {
            let e = GrubEnv::parse(&bytes).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
        // A completely full block (no padding) is fine.
        let mut full = HEADER.as_bytes().to_vec();
        full.extend_from_slice(b"a=");
        full.resize(BLOCK_SIZE - 1, b'x');
        full.push(b'\n');
        assert_eq!(GrubEnv::parse(&full).unwrap().to_bytes().unwrap(), full);
    }

    #[test]
    fn overflow_is_refused() {
        let mut env = GrubEnv::new();
        env.set("big", &vec![b'x'; BLOCK_SIZE]).unwrap();
        let e = env.to_bytes().unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Unsupported);
        assert!(e.to_string().contains("1024"), "{e}");
    }

    #[test]
    fn bad_names_are_refused() {
        let mut env = GrubEnv::new();
        for n in ["", "#x", "a=b", "a\nb", "a\\b"] {
            assert_eq!(
                env.set(n, b"1").unwrap_err().code(),
                crate::ErrorCode::InvalidArgument,
                "{n:?}"
            );
        }
        assert_eq!(
            env.set("a", b"x\0").unwrap_err().code(),
            crate::ErrorCode::InvalidArgument
        );
    }

    /// Every branch of the snippet, with the values GRUB leaves behind.
    #[test]
    fn model_counts_down_then_falls_back() {
        let run = |counter: Option<&str>, success: Option<&str>| {
            let mut env = GrubEnv::new();
            if let Some(c) = counter {
                env.set(BOOT_COUNTER, c.as_bytes()).unwrap();
            }
            if let Some(s) = success {
                env.set(BOOT_SUCCESS, s.as_bytes()).unwrap();
            }
            let choice = simulate_boot(&mut env);
            (choice, env.get_str(BOOT_COUNTER).map(str::to_owned))
        };
        use GrubChoice::*;
        assert_eq!(run(Some("3"), Some("0")), (Default, Some("2".into())));
        assert_eq!(run(Some("1"), Some("0")), (Default, Some("0".into())));
        assert_eq!(run(Some("16"), Some("0")), (Default, Some("15".into())));
        assert_eq!(run(Some("0"), Some("0")), (Fallback, Some("-1".into())));
        assert_eq!(run(Some("-1"), Some("0")), (Fallback, Some("-1".into())));
        assert_eq!(run(Some("17"), Some("0")), (Fallback, Some("-1".into())));
        assert_eq!(run(Some("03"), Some("0")), (Fallback, Some("-1".into())));
        assert_eq!(run(Some("x"), Some("0")), (Fallback, Some("-1".into())));
        assert_eq!(run(Some("3"), Some("1")), (Default, Some("3".into())));
        assert_eq!(run(Some("3"), None), (Default, Some("3".into())));
        assert_eq!(run(Some(""), Some("0")), (Default, Some("".into())));
        assert_eq!(run(None, Some("0")), (Default, None));
        // Armed with 3 tries: three boots of the new entry, then fallback.
        let mut env = GrubEnv::new();
        env.set(BOOT_COUNTER, b"3").unwrap();
        env.set(BOOT_SUCCESS, b"0").unwrap();
        let seq: Vec<_> = (0..5).map(|_| simulate_boot(&mut env)).collect();
        assert_eq!(seq, [Default, Default, Default, Fallback, Fallback]);
    }

    #[test]
    fn state_follows_the_variables() {
        let c = GrubenvCounter::new("/nonexistent");
        let st = |body: &str| c.state_of(&GrubEnv::parse(&block(body)).unwrap());
        assert_eq!(st("").unwrap(), CounterState::NotArmed);
        assert_eq!(st("boot_success=1\n").unwrap(), CounterState::NotArmed);
        assert_eq!(
            st("boot_counter=2\nboot_success=1\n").unwrap(),
            CounterState::NotArmed
        );
        assert_eq!(
            st("boot_counter=2\nboot_success=0\n").unwrap(),
            CounterState::Counting {
                left: 2,
                done: None
            }
        );
        assert_eq!(
            st("boot_counter=0\nboot_success=0\n").unwrap(),
            CounterState::Counting {
                left: 0,
                done: None
            }
        );
        assert_eq!(
            st("boot_counter=-1\nboot_success=0\n").unwrap(),
            CounterState::Exhausted { done: None }
        );
        assert_eq!(
            st("boot_counter=x\nboot_success=0\n").unwrap_err().code(),
            crate::ErrorCode::Corrupt
        );
    }

    #[test]
    fn snippet_is_embedded() {
        assert!(GRUB_SCRIPT.starts_with("#!/bin/sh"));
        assert!(GRUB_SCRIPT.contains("save_env boot_counter"));
    }
}
