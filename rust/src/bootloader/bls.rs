//! systemd boot counting in Boot Loader Specification entry names.
//!
//! An entry is *counted* when its file name carries `+LEFT` or `+LEFT-DONE`
//! right before `.conf` (`ostree-2-fedora+3.conf`,
//! `ostree-2-fedora+1-2.conf`): systemd-boot renames it to `+(LEFT-1)-(DONE+1)`
//! each time it boots it, sorts an entry with `LEFT` = 0 after all others
//! (so it boots the previous deployment by itself), and
//! `systemd-bless-boot.service` renames it to the uncounted name after
//! `boot-complete.target`. An uncounted entry is "good" to systemd-boot.
//!
//! stagehand reads the counter of the entry that boots a deployment (found
//! by its `ostree=` kernel argument, so whatever the file is called) and
//! blesses by renaming it to the uncounted name with
//! `renameat2(RENAME_NOREPLACE)` — an entry that exists under the uncounted
//! name already is never replaced — followed by an fsync of the directory.
//!
//! # Arming needs libostree 2025.3
//!
//! The counted name must be written by whoever writes the entry: libostree
//! rewrites every entry into a new `/boot/loader.N/entries` each time the
//! deployment list changes, so a name changed behind its back lasts only
//! until the next deployment change. libostree writes counted entries only
//! from 2025.3, when the repository config sets `sysroot.boot-counting-tries`.
//! [`BlsCounter::arm`] therefore only checks that the new default's entry is
//! counted, and on an older libostree (Debian 12 has 2022.7) it fails with
//! [`Error::Unsupported`] saying so, rather than pretend a counter runs.
//! Reading and blessing counted entries works with any libostree (entries
//! written by a newer one, or by hand): libostree 2022.7 itself reads counted
//! entry names without complaint.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil;

use super::{Backend, BootCounter, CounterState, Target};

/// Where the entries live, as the booted system sees it.
pub const ENTRIES_DIR: &str = "/boot/loader/entries";

/// The libostree release that writes counted entries
/// (`sysroot.boot-counting-tries`).
pub const COUNTING_LIBOSTREE: (u32, u32) = (2025, 3);

/// The counter part of an entry name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Tries left.
    pub left: u32,
    /// Tries done (0 when the name has no `-DONE` part).
    pub done: u32,
}

/// A parsed entry file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName {
    /// The name without counter and without `.conf` (`ostree-2-fedora`).
    pub stem: String,
    /// The counter, for a counted entry.
    pub count: Option<Count>,
}

impl EntryName {
    /// Parse a file name; `None` unless it ends in `.conf`.
    ///
    /// The counter is the last `+` followed by digits, optionally `-` and
    /// digits, up to `.conf`; a `+` followed by anything else is part of the
    /// stem (as systemd-boot reads it).
    pub fn parse(file_name: &str) -> Option<EntryName> {
        let base = file_name.strip_suffix(".conf")?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some((stem, counter)) = base.rsplit_once('+') {
            let (left, done) = match counter.split_once('-') {
                Some((l, d)) => (l, Some(d)),
                None => (counter, None),
            };
            if !stem.is_empty() && digits(left) && done.is_none_or(digits) {
                if let (Ok(left), Ok(done)) = (left.parse(), done.unwrap_or("0").parse()) {
                    return Some(EntryName {
                        stem: stem.into(),
                        count: Some(Count { left, done }),
                    });
                }
            }
        }
        Some(EntryName {
            stem: base.into(),
            count: None,
        })
    }

    /// The uncounted file name (`stem.conf`).
    pub fn uncounted(&self) -> String {
        format!("{}.conf", self.stem)
    }

    /// The file name, with its counter.
    pub fn file_name(&self) -> String {
        match self.count {
            Some(c) => format!("{}+{}-{}.conf", self.stem, c.left, c.done),
            None => self.uncounted(),
        }
    }
}

/// The `bls` backend: the counters in the names of `/boot/loader/entries`.
#[derive(Debug, Clone)]
pub struct BlsCounter {
    dir: PathBuf,
}

/// The newest `(year, release)` of libostree that `ostree_check_version`
/// accepts at run time.
pub fn libostree_version() -> (u32, u32) {
    let mut best = (0, 0);
    for year in 2015..=2100 {
        if !ostree::check_version(year, 0) {
            break;
        }
        for release in 0..=12 {
            if ostree::check_version(year, release) {
                best = (year, release);
            }
        }
    }
    best
}

impl BlsCounter {
    /// The counters of the entries in `dir` (`<sysroot>/boot/loader/entries`).
    pub fn new(dir: impl Into<PathBuf>) -> BlsCounter {
        BlsCounter { dir: dir.into() }
    }

    /// The entries directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn names(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("listing boot entries in", &self.dir, e)),
        };
        let mut names = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io("listing boot entries in", &self.dir, e))?;
            if let Some(n) = e.file_name().to_str() {
                if n.ends_with(".conf") && !n.starts_with('.') {
                    names.push(n.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Whether any entry is counted.
    pub fn any_counted(&self) -> Result<bool> {
        Ok(self
            .names()?
            .iter()
            .filter_map(|n| EntryName::parse(n))
            .any(|n| n.count.is_some()))
    }

    /// The entry that boots `target`: its file name, and that name parsed.
    pub fn entry_of(&self, target: &Target) -> Result<(String, EntryName)> {
        let suffix = target.bootlink_suffix();
        let mut found = Vec::new();
        for name in self.names()? {
            let path = self.dir.join(&name);
            let text = fsutil::read_bounded(&path, 64 * 1024)?.unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let boots_it = text
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("options"))
                .filter(|rest| rest.starts_with([' ', '\t']))
                .flat_map(|rest| rest.split_ascii_whitespace())
                .filter_map(|arg| arg.strip_prefix("ostree="))
                .any(|v| v.ends_with(&suffix));
            if boots_it {
                found.push(name);
            }
        }
        match found.len() {
            0 => Err(Error::UnknownDeployment(format!(
                "{target} (no boot entry in {} boots it)",
                self.dir.display()
            ))),
            1 => {
                let file = found.remove(0);
                let name = EntryName::parse(&file).expect("a .conf name");
                Ok((file, name))
            }
            _ => Err(Error::Corrupt {
                path: self.dir.clone(),
                detail: format!("entries {} all boot {target}", found.join(", ")),
            }),
        }
    }

    /// Rename a counted entry to its uncounted name, never replacing an
    /// existing file, and make the rename durable.
    fn uncount(&self, target: &Target) -> Result<bool> {
        let (from, entry) = self.entry_of(target)?;
        if entry.count.is_none() {
            return Ok(false);
        }
        let to = entry.uncounted();
        let dirfd = fsutil::open_dir(&self.dir)?;
        match rustix::fs::renameat_with(
            &dirfd,
            from.as_str(),
            &dirfd,
            to.as_str(),
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {
                return Err(Error::io(
                    format!("blessing {from}: refusing to replace the existing entry"),
                    self.dir.join(&to),
                    std::io::Error::from_raw_os_error(libc::EEXIST),
                ))
            }
            Err(rustix::io::Errno::INVAL) => {
                // A file system without RENAME_NOREPLACE: check, then rename
                // (racy only against another writer of this directory, and
                // libostree holds the sysroot lock for its writes).
                if rustix::fs::statat(&dirfd, to.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok()
                {
                    return Err(Error::io(
                        format!("blessing {from}: refusing to replace the existing entry"),
                        self.dir.join(&to),
                        std::io::Error::from_raw_os_error(libc::EEXIST),
                    ));
                }
                rustix::fs::renameat(&dirfd, from.as_str(), &dirfd, to.as_str()).map_err(|e| {
                    Error::io("renaming boot entry", self.dir.join(&from), e.into())
                })?;
            }
            Err(e) => {
                return Err(Error::io(
                    "renaming boot entry",
                    self.dir.join(&from),
                    e.into(),
                ))
            }
        }
        rustix::fs::fsync(&dirfd)
            .map_err(|e| Error::io("syncing directory", &self.dir, e.into()))?;
        log::info!("boot entry {from} is now {to}");
        Ok(true)
    }
}

impl BootCounter for BlsCounter {
    fn backend(&self) -> Backend {
        Backend::Bls
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    /// Check that libostree wrote `target`'s entry counted; stagehand does
    /// not rename entries to arm them (see the module docs).
    fn arm(&self, target: &Target, tries: u32) -> Result<()> {
        super::check_tries(tries)?;
        let (_, entry) = self.entry_of(target)?;
        if let Some(c) = entry.count {
            if c.left != tries {
                log::info!(
                    "boot entry of {target} counts {} tries (libostree's sysroot.boot-counting-tries), not {tries}",
                    c.left
                );
            }
            return Ok(());
        }
        let (year, release) = libostree_version();
        let (cy, cr) = COUNTING_LIBOSTREE;
        if (year, release) < COUNTING_LIBOSTREE {
            Err(Error::Unsupported(format!(
                "cannot arm systemd boot counting for {target}: libostree {year}.{release} writes \
                 uncounted boot entries ({}); counted entries need libostree {cy}.{cr} with \
                 sysroot.boot-counting-tries set; use backend=grubenv or backend=none",
                entry.uncounted()
            )))
        } else {
            Err(Error::Unsupported(format!(
                "cannot arm systemd boot counting for {target}: its boot entry {} is not counted; \
                 set sysroot.boot-counting-tries={tries} in the repository config \
                 (ostree config set sysroot.boot-counting-tries {tries})",
                entry.uncounted()
            )))
        }
    }

    fn state(&self, target: &Target) -> Result<CounterState> {
        Ok(match self.entry_of(target)?.1.count {
            None => CounterState::NotArmed,
            Some(Count { left: 0, done }) => CounterState::Exhausted { done: Some(done) },
            Some(Count { left, done }) => CounterState::Counting {
                left,
                done: Some(done),
            },
        })
    }

    /// Rename the entry to its uncounted name, as `systemd-bless-boot good`.
    fn bless(&self, target: &Target) -> Result<bool> {
        self.uncount(target)
    }

    /// The same rename: an uncounted entry is not counted any more, which is
    /// all disarming means here.
    fn disarm(&self, target: &Target) -> Result<bool> {
        self.uncount(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_like_systemd_boot() {
        let p = |s| EntryName::parse(s).unwrap();
        assert_eq!(
            p("ostree-1-foo+3-0.conf"),
            EntryName {
                stem: "ostree-1-foo".into(),
                count: Some(Count { left: 3, done: 0 })
            }
        );
        assert_eq!(
            p("ostree-1-foo+3.conf").count,
            Some(Count { left: 3, done: 0 })
        );
        assert_eq!(
            p("ostree-1-foo+0-7.conf").count,
            Some(Count { left: 0, done: 7 })
        );
        for uncounted in [
            "ostree-1-foo.conf",
            "a+b.conf",
            "a+1-.conf",
            "a+-1.conf",
            "a+1-x.conf",
            "+3.conf",
            "a+99999999999.conf",
        ] {
            let n = p(uncounted);
            assert_eq!(n.count, None, "{uncounted}");
            assert_eq!(n.uncounted(), uncounted);
        }
        assert_eq!(p("x+y+2-1.conf").stem, "x+y");
        assert!(EntryName::parse("ostree-1-foo+3-0.conf.bak").is_none());
        assert_eq!(p("ostree-1-foo+3-0.conf").uncounted(), "ostree-1-foo.conf");
    }

    #[test]
    fn runtime_libostree_is_known() {
        let (y, r) = libostree_version();
        assert!(y >= 2022, "{y}.{r}");
        assert!(ostree::check_version(y, r));
    }
}
