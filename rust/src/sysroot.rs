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

    /// Wrap a sysroot the caller has already locked with `ostree_sysroot_lock()`.
    ///
    /// The lock is not released on drop: it stays the caller's. This is how the
    /// C ABI and the cxx bridge honour "the caller locks the sysroot".
    pub fn assume_held(sysroot: &ostree::Sysroot) -> SysrootLock {
        SysrootLock {
            sysroot: sysroot.clone(),
            owned: false,
        }
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
        self.sysroot.load_if_changed(cancellable).ctx(|| {
            format!(
                "reloading sysroot {}",
                sysroot_path(&self.sysroot).display()
            )
        })?;
        Ok(())
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
