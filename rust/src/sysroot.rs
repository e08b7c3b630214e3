//! Sysroot access: the RAII sysroot lock, booted detection, and the stable
//! identity of a deployment.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use gio::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, GlibResultExt, Result};

/// How long [`SysrootLock::acquire`] waits by default before giving up.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of a sysroot, for messages.
pub fn sysroot_path(sysroot: &ostree::Sysroot) -> PathBuf {
    sysroot.path().path().unwrap_or_else(|| PathBuf::from("/"))
}

/// Open and load the sysroot at `path` (`/` for the running system), the way
/// the `ostree` CLI does.
///
/// On a booted system this calls `ostree_sysroot_initialize_with_mount_namespace`:
/// the process moves into a private mount namespace, where libostree may
/// remount a read-only `/sysroot` and `/boot` writable for its own writes
/// without the rest of the system seeing it. Daemons that manage their own
/// namespace (and every C and C++ caller) load their `OstreeSysroot`
/// themselves and pass it in instead; this is for the CLI and Rust tools.
pub fn open_sysroot(
    path: &std::path::Path,
    cancellable: Option<&gio::Cancellable>,
) -> Result<ostree::Sysroot> {
    let file = gio::File::for_path(path);
    let sysroot = ostree::Sysroot::new(Some(&file));
    sysroot
        .initialize_with_mount_namespace(cancellable)
        .ctx(|| format!("initializing sysroot {}", path.display()))?;
    // libostree 2022.7 opens the sysroot directory *before* it unshares the
    // mount namespace, so that fd still points into the old namespace while
    // deployment directories are opened in the new one; every hardlink from
    // the repo into a checkout then fails with EXDEV and libostree silently
    // falls back to copying each file (18x slower staging, double the disk).
    // Closing the fd here makes load() reopen it in the new namespace.
    sysroot.unload();
    sysroot
        .load(cancellable)
        .ctx(|| format!("loading sysroot {}", path.display()))?;
    Ok(sysroot)
}

/// Exclusive ownership of the sysroot lock (`ostree/lock`), released on drop.
///
/// This is the same lock `ostree admin` and rpm-ostree take, so holding it
/// serializes stagehand against every other ostree writer. Every operation that
/// changes deployments takes a `&SysrootLock`, so the type system proves the
/// lock is held.
///
/// Acquiring reloads the sysroot when another process changed it while we were
/// waiting, so decisions are made on the current deployment list.
#[derive(Debug)]
pub struct SysrootLock {
    sysroot: ostree::Sysroot,
    owned: bool,
}

impl SysrootLock {
    /// Take the lock, waiting up to `timeout` while another process holds it.
    ///
    /// Fails with [`Error::Locked`] after the timeout and [`Error::Cancelled`]
    /// when `cancellable` is triggered while waiting. The sysroot must be loaded.
    pub fn acquire(
        sysroot: &ostree::Sysroot,
        timeout: Duration,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<SysrootLock> {
        let start = Instant::now();
        // Start with short naps so an uncontended lock costs nothing and a
        // briefly held one is picked up fast; back off to keep polling cheap.
        let mut nap = Duration::from_millis(5);
        loop {
            if cancellable.is_some_and(|c| c.is_cancelled()) {
                return Err(Error::Cancelled);
            }
            match sysroot.try_lock() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if e.matches(gio::IOErrorEnum::ReadOnly) => {
                    return Err(Error::ReadOnly {
                        path: sysroot_path(sysroot).join("ostree/lock"),
                        what: "take the sysroot lock".into(),
                    })
                }
                Err(e) => return Err(Error::glib("taking the sysroot lock", e)),
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Locked {
                    sysroot: sysroot_path(sysroot),
                    waited_ms: waited.as_millis() as u64,
                });
            }
            if waited.is_zero() || nap == Duration::from_millis(5) {
                log::info!(
                    "sysroot {} is locked by another process; waiting up to {timeout:?}",
                    sysroot_path(sysroot).display()
                );
            }
            std::thread::sleep(nap.min(timeout - waited));
            nap = (nap * 2).min(Duration::from_millis(200));
        }
        let lock = SysrootLock {
            sysroot: sysroot.clone(),
            owned: true,
        };
        lock.reload(cancellable)?;
        Ok(lock)
    }

    /// Wrap a sysroot the caller has already locked with `ostree_sysroot_lock()`,
    /// after checking that the sysroot lock is held.
    ///
    /// This is how the C ABI and the cxx bridge honour "the caller locks the
    /// sysroot": the lock is not released on drop, it stays the caller's. A
    /// daemon that forgot to lock would otherwise race `ostree admin` or
    /// another agent, so when nobody holds the lock this fails with
    /// [`Error::NotLocked`] (naming `what`, the operation) before anything is
    /// read or written. It does not wait: a missing lock is the caller's bug,
    /// not contention.
    ///
    /// The check cannot tell *who* holds the lock: if another process holds
    /// it, this succeeds although the caller does not (see
    /// [`sysroot_lock_is_held`]). It catches the forgotten lock, which is the
    /// mistake a caller makes; a caller that holds no lock while someone else
    /// does is racing that holder, and only taking the lock fixes that.
    pub fn verify_held(sysroot: &ostree::Sysroot, what: &str) -> Result<SysrootLock> {
        if !sysroot_lock_is_held(sysroot)? {
            return Err(Error::NotLocked {
                sysroot: sysroot_path(sysroot),
                what: what.into(),
            });
        }
        Ok(SysrootLock {
            sysroot: sysroot.clone(),
            owned: false,
        })
    }

    /// Hand the lock over instead of releasing it on drop: it stays held
    /// until someone calls `ostree_sysroot_unlock()`. The C ABI's
    /// `stagehand_sysroot_lock()` uses this, because C callers release the
    /// lock the way they release the one `ostree_sysroot_lock()` took.
    pub fn into_held(mut self) {
        self.owned = false;
    }

    /// The locked sysroot.
    pub fn sysroot(&self) -> &ostree::Sysroot {
        &self.sysroot
    }

    /// Reload the sysroot if another process changed it.
    pub fn reload(&self, cancellable: Option<&gio::Cancellable>) -> Result<()> {
        reload_if_changed(&self.sysroot, cancellable)
    }
}

impl std::ops::Deref for SysrootLock {
    type Target = ostree::Sysroot;
    fn deref(&self) -> &ostree::Sysroot {
        &self.sysroot
    }
}

impl Drop for SysrootLock {
    fn drop(&mut self) {
        if self.owned {
            self.sysroot.unlock();
        }
    }
}

/// The sysroot lock file, relative to the sysroot
/// (`OSTREE_SYSROOT_LOCKFILE` in libostree).
const LOCK_FILE: &str = "ostree/lock";

/// Whether some open file description holds the sysroot lock of `sysroot`:
/// the caller's, another `OstreeSysroot`'s of this process, or another
/// process's.
///
/// libostree 2022.7 (`ostree_sysroot_lock()` through libglnx's
/// `glnx_make_lock_file()`) opens `ostree/lock` relative to the sysroot fd
/// with `O_CREAT|O_RDWR|O_NOFOLLOW` and takes an exclusive open file
/// description lock on the whole file (`F_OFD_SETLKW`, `F_WRLCK`). When that
/// `fcntl()` fails with `EINVAL` (a kernel older than 3.15, which has no OFD
/// locks) it takes `flock(LOCK_EX)` on the same fd instead; libglnx built
/// against a libc without `F_OFD_SETLK` always does. On release the exclusive
/// holder unlinks the file, so a missing lock file means nobody holds the
/// lock.
///
/// On Linux the two kinds of lock are independent (flock(2)): an OFD or
/// POSIX record lock does not see an `flock()` lock, and the other way
/// round. So the probe asks both. It opens a *fresh* open file description
/// of the same file (through the sysroot's own fd, so it is the same file
/// whatever mount namespace the caller loaded the sysroot in) and tries, non
/// blocking, shared:
///
/// 1. a whole-file read lock with `fcntl(F_SETLK)` (rustix's `fcntl_lock`,
///    a traditional POSIX record lock). Traditional and OFD record locks
///    share one lock table and conflict with each other even within one
///    process (fcntl(2)), so the caller's own OFD write lock makes it fail
///    with `EAGAIN`;
/// 2. `flock(LOCK_SH|LOCK_NB)`. `flock()` locks belong to open file
///    descriptions, so the fresh one conflicts with an exclusive `flock()`
///    held through any other description, the caller's included
///    (`EWOULDBLOCK`).
///
/// When both succeed, nobody holds the sysroot lock: both are released at
/// once (for that instant a concurrent `ostree_sysroot_try_lock()` elsewhere
/// sees the lock taken, the same as if another writer had it). Nothing is
/// created or written: the probe opens read-only and without `O_CREAT`.
pub fn sysroot_lock_is_held(sysroot: &ostree::Sysroot) -> Result<bool> {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    use rustix::io::Errno;

    // The sysroot fd: libostree opens it when it loads or locks the sysroot,
    // and ostree_sysroot_get_fd() is a critical before that. initialize()
    // opens it if need be and only reads (it is what load() starts with).
    sysroot
        .initialize()
        .ctx(|| format!("opening sysroot {}", sysroot_path(sysroot).display()))?;
    let dirfd = sysroot.dfd_borrow();
    let path = || sysroot_path(sysroot).join(LOCK_FILE);
    // A lock file unlinked between our open and our lock is one its holder
    // released; look again at the current one. A holder keeps its file
    // linked, so this ends unless writers come and go around us; then the
    // caller is not holding the lock across this call either.
    for _ in 0..8 {
        let fd = match rustix::fs::openat(
            dirfd,
            LOCK_FILE,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => {
                return Err(Error::io(
                    "opening the sysroot lock file",
                    path(),
                    std::io::Error::from(e),
                ))
            }
        };
        match rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {}
            // F_SETLK reports a conflicting lock as EAGAIN or EACCES.
            Err(Errno::AGAIN | Errno::ACCESS) => return Ok(true),
            Err(e) => {
                return Err(Error::io(
                    "probing the sysroot lock (fcntl)",
                    path(),
                    std::io::Error::from(e),
                ))
            }
        }
        // The holder that fell back to flock() (see above).
        let flocked = match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) {
            Ok(()) => Ok(false),
            // EWOULDBLOCK is EAGAIN on Linux.
            Err(Errno::WOULDBLOCK) => Ok(true),
            Err(e) => Err(e),
        };
        let linked = rustix::fs::fstat(&fd).map(|st| st.st_nlink > 0);
        // Release before anything else; closing the fd would release both
        // too, but say so explicitly.
        let _ = rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingUnlock);
        if flocked == Ok(false) {
            let _ = rustix::fs::flock(&fd, FlockOperation::NonBlockingUnlock);
        }
        drop(fd);
        match flocked {
            Ok(false) => {}
            Ok(true) => return Ok(true),
            Err(e) => {
                return Err(Error::io(
                    "probing the sysroot lock (flock)",
                    path(),
                    std::io::Error::from(e),
                ))
            }
        }
        match linked {
            Ok(true) => return Ok(false),
            Ok(false) => continue,
            Err(e) => {
                return Err(Error::io(
                    "probing the sysroot lock",
                    path(),
                    std::io::Error::from(e),
                ))
            }
        }
    }
    Ok(false)
}

/// Reload `sysroot` if another process changed it, for the functions of the
/// C ABI and the cxx bridge that read it without needing the sysroot lock.
pub fn reload_if_changed(
    sysroot: &ostree::Sysroot,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    sysroot
        .load_if_changed(cancellable)
        .ctx(|| format!("reloading sysroot {}", sysroot_path(sysroot).display()))?;
    Ok(())
}

/// Whether the sysroot is the one the running system booted from.
///
/// Staging needs this: libostree stages only from a booted deployment.
pub fn is_booted(sysroot: &ostree::Sysroot) -> bool {
    sysroot.booted_deployment().is_some()
}

/// The stable identity of a deployment: stateroot, commit checksum and
/// deployment serial.
///
/// Unlike a deployment's index (its position in the boot menu, which shifts
/// with every update), this names the same deployment directory for its whole
/// life, across reloads and reboots. Displayed and parsed as
/// `stateroot:checksum.serial`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeploymentId {
    /// The stateroot (ostree's "osname").
    pub stateroot: String,
    /// The commit checksum (64 hex digits).
    pub checksum: String,
    /// The deployment serial, which tells apart deployments of one commit.
    pub serial: u32,
}

impl DeploymentId {
    /// The identity of `deployment`.
    pub fn of(deployment: &ostree::Deployment) -> DeploymentId {
        DeploymentId {
            stateroot: deployment.osname().to_string(),
            checksum: deployment.csum().to_string(),
            serial: deployment.deployserial().max(0) as u32,
        }
    }

    /// Whether `deployment` is this one.
    pub fn matches(&self, deployment: &ostree::Deployment) -> bool {
        deployment.deployserial() == self.serial as i32
            && deployment.csum() == self.checksum.as_str()
            && deployment.osname() == self.stateroot.as_str()
    }

    /// Find this deployment in the loaded sysroot (staged ones included).
    pub fn find(&self, sysroot: &ostree::Sysroot) -> Option<ostree::Deployment> {
        sysroot.deployments().into_iter().find(|d| self.matches(d))
    }

    /// Like [`DeploymentId::find`], but a missing deployment is an error.
    pub fn require(&self, sysroot: &ostree::Sysroot) -> Result<ostree::Deployment> {
        self.find(sysroot)
            .ok_or_else(|| Error::UnknownDeployment(self.to_string()))
    }

    /// The deployment directory, relative to the sysroot.
    pub fn relpath(&self) -> String {
        format!(
            "ostree/deploy/{}/deploy/{}.{}",
            self.stateroot, self.checksum, self.serial
        )
    }

    /// Resolve a possibly abbreviated identity (`checksum.serial`, a checksum
    /// prefix, or `stateroot:checksum.serial`) against the sysroot.
    pub fn resolve(spec: &str, sysroot: &ostree::Sysroot) -> Result<DeploymentId> {
        let (stateroot, rest) = match spec.split_once(':') {
            Some((s, r)) => (Some(s), r),
            None => (None, spec),
        };
        let (csum, serial) = match rest.rsplit_once('.') {
            Some((c, s)) => (
                c,
                Some(s.parse::<u32>().map_err(|_| {
                    Error::InvalidArgument(format!("bad deployment serial in {spec:?}"))
                })?),
            ),
            None => (rest, None),
        };
        if csum.is_empty() || !csum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(format!(
                "{spec:?} is not a deployment (expected [stateroot:]checksum[.serial])"
            )));
        }
        let found: Vec<DeploymentId> = sysroot
            .deployments()
            .iter()
            .map(DeploymentId::of)
            .filter(|d| {
                d.checksum.starts_with(csum)
                    && stateroot.is_none_or(|s| s == d.stateroot)
                    && serial.is_none_or(|s| s == d.serial)
            })
            .collect();
        match found.len() {
            1 => Ok(found.into_iter().next().unwrap()),
            0 => Err(Error::UnknownDeployment(spec.to_string())),
            n => Err(Error::InvalidArgument(format!(
                "{spec:?} matches {n} deployments; give stateroot:checksum.serial"
            ))),
        }
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}.{}", self.stateroot, self.checksum, self.serial)
    }
}

impl FromStr for DeploymentId {
    type Err = Error;
    /// Parse the full `stateroot:checksum.serial` form.
    fn from_str(s: &str) -> Result<DeploymentId> {
        let bad = || Error::InvalidArgument(format!("{s:?} is not stateroot:checksum.serial"));
        let (stateroot, rest) = s.split_once(':').ok_or_else(bad)?;
        let (checksum, serial) = rest.rsplit_once('.').ok_or_else(bad)?;
        if stateroot.is_empty()
            || checksum.len() != 64
            || !checksum.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad());
        }
        Ok(DeploymentId {
            stateroot: stateroot.into(),
            checksum: checksum.into(),
            serial: serial.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trips() {
        let id = DeploymentId {
            stateroot: "os".into(),
            checksum: "a".repeat(64),
            serial: 3,
        };
        let s = id.to_string();
        assert_eq!(s, format!("os:{}.3", "a".repeat(64)));
        assert_eq!(s.parse::<DeploymentId>().unwrap(), id);
        assert_eq!(
            id.relpath(),
            format!("ostree/deploy/os/deploy/{}.3", "a".repeat(64))
        );
    }

    #[test]
    fn id_parse_rejects_garbage() {
        for bad in [
            "",
            "os",
            "os:abc.0",
            &format!("os:{}", "a".repeat(64)),
            &format!(":{}.0", "a".repeat(64)),
            &format!("os:{}.x", "a".repeat(64)),
            &format!("os:{}.0", "g".repeat(64)),
        ] {
            let e = bad.parse::<DeploymentId>().unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
        }
    }
}
