//! Crash-safe file primitives shared by every state file stagehand writes.
//!
//! The rule everywhere: a reader sees the old content or the new content,
//! never a mix, whatever instant the machine loses power. New content goes to
//! a temporary file in the same directory, is fsynced, renamed over the
//! target, and the directory is fsynced so the rename itself is durable.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

fn errno(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

/// Open a directory for fd-relative operations.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("opening directory", path, errno(e)))
}

/// fsync a directory so renames and unlinks inside it are durable.
pub fn fsync_dir(path: &Path) -> Result<()> {
    let fd = open_dir(path)?;
    rustix::fs::fsync(&fd).map_err(|e| Error::io("syncing directory", path, errno(e)))
}

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            name,
        )),
        _ => Err(Error::InvalidArgument(format!(
            "{} is not a file path",
            path.display()
        ))),
    }
}

/// Replace `path` with `contents` atomically and durably (mode 0644).
///
/// Temp file in the same directory, write, fsync, rename over the target,
/// fsync the directory. On an error up to the rename the temporary file is
/// removed and the previous content of `path` is untouched.
///
/// When only the last step fails — the fsync of the directory, after the
/// rename — the new content is already what every reader sees, but the
/// rename may not survive a power cut (the old content may come back). That
/// is still an [`Error::Io`] (durability, which the caller asked for, was not
/// achieved), with a message that says so: "written but not durable (the new
/// state is visible; retrying converges): syncing the directory after
/// renaming into place PATH". Retrying converges: writing again renames and
/// fsyncs again; a caller whose re-run finds the new state already in place
/// and writes nothing makes it durable with [`fsync_dir`] instead (the health
/// store's `Store::load`, the GRUB environment block's unchanged update, the
/// guard's `Interrupted`/`AlreadyComplete` refusals).
/// The outcome on disk is the same as a crash between the rename and the
/// directory fsync, which the crash sweep covers.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic_mode(path, contents, 0o644)
}

/// [`write_atomic`] with an explicit file mode.
pub fn write_atomic_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let (dir, name) = split(path)?;
    let dirfd = open_dir(dir)?;
    let tmpname = format!(".{}.tmp{}", name.to_string_lossy(), std::process::id());
    let tmp: PathBuf = dir.join(&tmpname);
    let fd = rustix::fs::openat(
        &dirfd,
        tmpname.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(mode),
    )
    .map_err(|e| Error::io("creating temporary file", &tmp, errno(e)))?;
    let result = (|| {
        let mut file = std::fs::File::from(fd);
        file.write_all(contents)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        // The umask may have narrowed the mode at creation.
        rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(mode))
            .map_err(|e| Error::io("setting mode of", &tmp, errno(e)))?;
        rustix::fs::fsync(file.as_fd()).map_err(|e| Error::io("syncing", &tmp, errno(e)))?;
        drop(file);
        rustix::fs::renameat(&dirfd, tmpname.as_str(), &dirfd, name)
            .map_err(|e| Error::io("renaming into place", path, errno(e)))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&dirfd, tmpname.as_str(), rustix::fs::AtFlags::empty());
        return result;
    }
    rustix::fs::fsync(&dirfd).map_err(|e| Error::io(NOT_DURABLE_WRITE, path, errno(e)))
}

/// The context of the error when the directory fsync after the rename fails.
const NOT_DURABLE_WRITE: &str = "written but not durable (the new state is visible; retrying \
                                 converges): syncing the directory after renaming into place";

/// The context of the error when the directory fsync after an unlink fails.
const NOT_DURABLE_REMOVE: &str = "removed but not durable (the file is gone; retrying \
                                  converges): syncing the directory after removing";

/// Remove the temporary files [`write_atomic`] calls of processes that died
/// left next to `path` (`.NAME.tmpPID`). Only for callers that hold the lock
/// serializing every writer of `path`: a live writer's temporary file would
/// go too. Best effort: returns how many were removed.
pub fn remove_stale_temporaries(path: &Path) -> usize {
    remove_temporaries(path, |_| true)
}

/// Remove `path`'s `.NAME.tmpPID` files whose PID `dead` says is gone.
fn remove_temporaries(path: &Path, dead: impl Fn(&str) -> bool) -> usize {
    let Ok((dir, name)) = split(path) else {
        return 0;
    };
    let prefix = format!(".{}.tmp", name.to_string_lossy());
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let f = e.file_name();
        let f = f.to_string_lossy();
        if f.strip_prefix(&prefix).is_some_and(|pid| {
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && dead(pid)
        }) && std::fs::remove_file(e.path()).is_ok()
        {
            log::info!(
                "removed {} left by an interrupted writer",
                e.path().display()
            );
            n += 1;
        }
    }
    n
}

/// Remove the temporary files [`write_atomic`] calls left next to `path`
/// whose writer process is gone (no process has the PID in the name), for
/// writers that take no lock. A temporary file of a live writer, or of a dead
/// one whose PID was reused, stays. Best effort: returns how many were
/// removed.
///
/// The PIDs are those of the caller's PID namespace: use it only where every
/// writer of `path` runs in the same one (a file in `/run` written by the
/// system's units).
pub fn remove_dead_writers_temporaries(path: &Path) -> usize {
    remove_temporaries(path, |pid| {
        let Some(pid) = pid.parse().ok().and_then(rustix::process::Pid::from_raw) else {
            return false;
        };
        // ESRCH: no such process. EPERM means it exists (and is not ours).
        rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
    })
}

/// Remove `path` durably; a file that is already gone is not an error.
///
/// Returns whether a file was removed.
///
/// When the fsync of the directory after the unlink fails, the file is gone
/// for every reader but may come back after a power cut: an [`Error::Io`]
/// saying "removed but not durable (the file is gone; retrying converges)".
/// Retrying converges because a file that is already gone still gets its
/// directory fsynced, which makes the earlier unlink durable (an fsync of a
/// directory with nothing to write costs next to nothing).
pub fn remove_durable(path: &Path) -> Result<bool> {
    let (dir, name) = split(path)?;
    let dirfd = match open_dir(dir) {
        Ok(fd) => fd,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(false)
        }
        Err(e) => return Err(e),
    };
    let removed = match rustix::fs::unlinkat(&dirfd, name, rustix::fs::AtFlags::empty()) {
        Ok(()) => true,
        Err(rustix::io::Errno::NOENT) => false,
        Err(e) => return Err(Error::io("removing", path, errno(e))),
    };
    rustix::fs::fsync(&dirfd).map_err(|e| {
        if removed {
            Error::io(NOT_DURABLE_REMOVE, path, errno(e))
        } else {
            Error::io("syncing directory", dir, errno(e))
        }
    })?;
    Ok(removed)
}

/// An exclusive `flock` on a directory, held while a file in it is
/// read-modified-written, so concurrent stagehand writers of the same file
/// serialize and none of them loses the other's change.
///
/// Released when dropped (the descriptor closes).
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    /// Holds the flock; closing it releases the lock.
    _fd: OwnedFd,
}

impl DirLock {
    /// Open `dir` and lock it, waiting while another writer holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        DirLock::acquire_fd(dir, open_dir(dir)?)
    }

    /// Lock an already opened directory (for callers that open it with their
    /// own error reporting).
    pub fn acquire_fd(dir: &Path, fd: OwnedFd) -> Result<DirLock> {
        rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io("locking directory", dir, errno(e)))?;
        Ok(DirLock {
            dir: dir.to_owned(),
            _fd: fd,
        })
    }

    /// Remove the temporary files ([`write_atomic`]'s `.NAME.tmpPID`) that a
    /// writer of `file_name` killed mid-write left behind.
    ///
    /// Safe because every stagehand writer holds this lock while its
    /// temporary file exists, and we hold it now. Best effort: such files are
    /// never read, only clutter.
    pub fn remove_stale_temps(&self, file_name: &str) {
        remove_stale_temporaries(&self.dir.join(file_name));
    }
}

/// Read a whole file, `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

/// Read at most `limit` bytes of a file, `None` if it does not exist; a file
/// larger than `limit` is reported as [`Error::Corrupt`] (state files are
/// bounded, so an oversized one was not written by stagehand).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("opening", path, e)),
    };
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("reading", path, e))?;
    if buf.len() as u64 > limit {
        return Err(Error::Corrupt {
            path: path.into(),
            detail: format!("larger than the {limit}-byte bound"),
        });
    }
    Ok(Some(buf))
}

/// Whether the file system holding `path` is mounted read-only.
pub fn is_read_only(path: &Path) -> Result<bool> {
    let st = rustix::fs::statvfs(path)
        .map_err(|e| Error::io("checking file system of", path, errno(e)))?;
    Ok(st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state")]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn stale_temporaries_of_the_file_go_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        for n in [
            ".state.tmp123",
            ".state.tmp9",
            ".state.tmpx",
            ".state.tmp",
            ".other.tmp5",
            "state",
            "state.tmp1",
        ] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(&p), 2);
        let mut names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".other.tmp5",
                ".state.tmp",
                ".state.tmpx",
                "state",
                "state.tmp1"
            ]
        );
        // A missing directory is nothing to do.
        assert_eq!(remove_stale_temporaries(&d.path().join("no/state")), 0);
    }

    #[test]
    fn atomic_write_into_missing_dir_is_typed() {
        let d = tempfile::tempdir().unwrap();
        let e = write_atomic(&d.path().join("nope/state"), b"x").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Io);
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn remove_durable_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        std::fs::write(&p, b"1").unwrap();
        assert!(remove_durable(&p).unwrap());
        assert!(!remove_durable(&p).unwrap());
        assert!(!remove_durable(&d.path().join("missing/x")).unwrap());
    }

    #[test]
    fn bounded_read_refuses_oversized() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        std::fs::write(&p, vec![b'a'; 11]).unwrap();
        assert_eq!(read_bounded(&p, 11).unwrap().unwrap().len(), 11);
        assert_eq!(
            read_bounded(&p, 10).unwrap_err().code(),
            crate::ErrorCode::Corrupt
        );
        assert!(read_bounded(&d.path().join("none"), 10).unwrap().is_none());
    }
}
