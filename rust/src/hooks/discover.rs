//! Finding and vetting hook files.
//!
//! Every path is resolved fd-relative from the root it belongs to, one
//! component at a time with `O_NOFOLLOW`, so nothing a deployment contains can
//! redirect stagehand outside that deployment: a symlink anywhere on the way is
//! refused, not followed. Each directory on the way must be owned by root and
//! not writable by group or others, otherwise someone other than root could
//! swap a hook between the check and its execution.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::{Error, Result};
use crate::fsutil;

/// Where vendor hooks live, relative to the new deployment's root.
pub const VENDOR_HOOK_DIR: &str = "usr/lib/stagehand/pre-upgrade.d";
/// Where admin hooks live, relative to the booted (old) deployment's root.
pub const ADMIN_HOOK_DIR: &str = "etc/stagehand/pre-upgrade.d";

/// Who shipped a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookOrigin {
    /// The OS vendor, in the new deployment's `/usr/lib/stagehand/pre-upgrade.d/`.
    Vendor,
    /// The local administrator, in the booted system's `/etc/stagehand/pre-upgrade.d/`.
    Admin,
}

impl std::fmt::Display for HookOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HookOrigin::Vendor => "vendor",
            HookOrigin::Admin => "admin",
        })
    }
}

/// A hook that passed every check and may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The file name; hooks run in lexical (byte) order of it.
    pub name: String,
    /// Vendor or admin.
    pub origin: HookOrigin,
    /// The path as the system it belongs to sees it
    /// (`/usr/lib/stagehand/pre-upgrade.d/NAME` or `/etc/stagehand/pre-upgrade.d/NAME`).
    pub path: String,
    /// Where the file is in the caller's file system (the deployment checkout).
    pub host_path: PathBuf,
}

fn errno(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::HookInvalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn kind(ft: FileType) -> &'static str {
    match ft {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::RegularFile => "a regular file",
        _ => "of an unknown type",
    }
}

fn describe_symlink(dirfd: impl AsFd, name: &OsStr) -> String {
    match rustix::fs::readlinkat(dirfd, name, Vec::new()) {
        Ok(t) => format!("a symlink (to {})", t.to_string_lossy()),
        Err(_) => "a symlink".into(),
    }
}

/// Ownership and permission rule shared by directories and hook files:
/// root-owned, not writable by group or others.
fn check_owner_mode(path: &Path, st: &rustix::fs::Stat, what: &str) -> Result<()> {
    if st.st_uid != 0 {
        return Err(invalid(
            path,
            format!("{what} is owned by uid {}, not root", st.st_uid),
        ));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(invalid(
            path,
            format!("{what} is writable by group or others (mode {mode:04o})"),
        ));
    }
    Ok(())
}

/// Open `rel` (a relative path of plain components) under `root`, refusing
/// symlinks and untrusted directories on the way. `Ok(None)` when some
/// component does not exist: no hook directory means no hooks.
fn open_hook_dir(root: &Path, rel: &str) -> Result<Option<OwnedFd>> {
    let mut cur = fsutil::open_dir(root)?;
    let mut path = root.to_path_buf();
    for comp in rel.split('/') {
        path.push(comp);
        let st = match rustix::fs::statat(&cur, comp, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::io("inspecting", &path, errno(e))),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Symlink {
            return Err(invalid(
                &path,
                format!(
                    "is {}; hook directories are never reached through symlinks",
                    describe_symlink(&cur, OsStr::new(comp))
                ),
            ));
        }
        if ft != FileType::Directory {
            return Err(invalid(&path, format!("is {}, not a directory", kind(ft))));
        }
        check_owner_mode(&path, &st, "the directory")?;
        // NOFOLLOW closes the window between the stat above and the open: a
        // directory swapped for a symlink in between fails with ELOOP/ENOTDIR.
        let next = rustix::fs::openat(
            &cur,
            comp,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
                invalid(&path, "changed into a symlink or file while being checked")
            }
            e => Error::io("opening", &path, errno(e)),
        })?;
        cur = next;
    }
    Ok(Some(cur))
}

/// List and check the hooks of one directory, sorted by name.
///
/// Every entry whose name does not start with `.` is a hook, and must be a
/// regular, executable, root-owned file not writable by group or others;
/// anything else fails the whole update with [`Error::HookInvalid`] naming the
/// entry, rather than being skipped (a hook that silently does not run is a
/// check that silently passes). Hidden entries are left alone, for editor
/// swap files and placeholders like `.keep`.
pub fn scan(root: &Path, rel: &str, origin: HookOrigin) -> Result<Vec<Hook>> {
    let Some(dirfd) = open_hook_dir(root, rel)? else {
        return Ok(Vec::new());
    };
    let dirpath = root.join(rel);
    let dir =
        rustix::fs::Dir::read_from(&dirfd).map_err(|e| Error::io("listing", &dirpath, errno(e)))?;
    let mut hooks = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| Error::io("listing", &dirpath, errno(e)))?;
        let raw = OsStr::from_bytes(entry.file_name().to_bytes());
        if raw.as_bytes().first() == Some(&b'.') {
            continue;
        }
        let host_path = dirpath.join(raw);
        let Some(name) = raw.to_str() else {
            return Err(invalid(&host_path, "the file name is not valid UTF-8"));
        };
        let st = rustix::fs::statat(&dirfd, raw, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io("inspecting", &host_path, errno(e)))?;
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Symlink {
            return Err(invalid(
                &host_path,
                format!(
                    "is {}; a hook must be a regular file directly in its directory",
                    describe_symlink(&dirfd, raw)
                ),
            ));
        }
        if ft != FileType::RegularFile {
            return Err(invalid(
                &host_path,
                format!("is {}; a hook must be a regular file", kind(ft)),
            ));
        }
        check_owner_mode(&host_path, &st, "the hook")?;
        let mode = st.st_mode & 0o7777;
        if mode & 0o111 == 0 {
            return Err(invalid(
                &host_path,
                format!("the hook is not executable (mode {mode:04o})"),
            ));
        }
        hooks.push(Hook {
            name: name.to_string(),
            origin,
            path: format!("/{rel}/{name}"),
            host_path,
        });
    }
    hooks.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hooks)
}

/// The hooks that run for an update, in order: the vendor's from the new
/// root and the admin's from the old root, merged and sorted by file name.
/// An admin hook with the same name as a vendor hook replaces it (as files in
/// `/etc` override those in `/usr/lib` for systemd).
pub fn discover(new_root: &Path, old_root: Option<&Path>) -> Result<Vec<Hook>> {
    let mut by_name: BTreeMap<String, Hook> = BTreeMap::new();
    for h in scan(new_root, VENDOR_HOOK_DIR, HookOrigin::Vendor)? {
        by_name.insert(h.name.clone(), h);
    }
    if let Some(old) = old_root {
        for h in scan(old, ADMIN_HOOK_DIR, HookOrigin::Admin)? {
            if let Some(v) = by_name.get(&h.name) {
                log::info!("admin hook {} replaces vendor hook {}", h.path, v.path);
            }
            by_name.insert(h.name.clone(), h);
        }
    }
    Ok(by_name.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink, PermissionsExt};

    fn root_or_skip() -> bool {
        // Ownership checks need files owned by root and by someone else.
        rustix::process::geteuid().is_root()
    }

    fn mk(root: &Path, rel: &str, content: &str, mode: u32) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn missing_directory_means_no_hooks() {
        let d = tree();
        assert!(scan(d.path(), VENDOR_HOOK_DIR, HookOrigin::Vendor)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn merged_in_lexical_order_admin_replaces_vendor() {
        assert!(root_or_skip(), "unit tests run as root (see README)");
        let new = tree();
        let old = tree();
        mk(
            new.path(),
            "usr/lib/stagehand/pre-upgrade.d/20-b",
            "",
            0o755,
        );
        mk(
            new.path(),
            "usr/lib/stagehand/pre-upgrade.d/10-a",
            "",
            0o700,
        );
        mk(
            new.path(),
            "usr/lib/stagehand/pre-upgrade.d/.keep",
            "",
            0o644,
        );
        mk(
            new.path(),
            "usr/lib/stagehand/pre-upgrade.d/30-c",
            "",
            0o755,
        );
        mk(old.path(), "etc/stagehand/pre-upgrade.d/30-c", "", 0o755);
        mk(old.path(), "etc/stagehand/pre-upgrade.d/15-x", "", 0o755);
        let hooks = discover(new.path(), Some(old.path())).unwrap();
        let got: Vec<(&str, HookOrigin, &str)> = hooks
            .iter()
            .map(|h| (h.name.as_str(), h.origin, h.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "10-a",
                    HookOrigin::Vendor,
                    "/usr/lib/stagehand/pre-upgrade.d/10-a"
                ),
                (
                    "15-x",
                    HookOrigin::Admin,
                    "/etc/stagehand/pre-upgrade.d/15-x"
                ),
                (
                    "20-b",
                    HookOrigin::Vendor,
                    "/usr/lib/stagehand/pre-upgrade.d/20-b"
                ),
                (
                    "30-c",
                    HookOrigin::Admin,
                    "/etc/stagehand/pre-upgrade.d/30-c"
                ),
            ]
        );
        assert_eq!(
            hooks[0].host_path,
            new.path().join("usr/lib/stagehand/pre-upgrade.d/10-a")
        );
    }

    #[track_caller]
    fn refused(root: &Path, needle: &str, reason: &str) {
        let e = scan(root, VENDOR_HOOK_DIR, HookOrigin::Vendor).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::HookInvalid, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{needle:?} not named in: {msg}");
        assert!(msg.contains(reason), "{reason:?} not in: {msg}");
    }

    #[test]
    fn bad_hook_files_are_refused_by_name() {
        assert!(root_or_skip(), "unit tests run as root (see README)");
        let d = tree();
        mk(d.path(), "usr/lib/stagehand/pre-upgrade.d/10-ok", "", 0o755);
        let p = mk(
            d.path(),
            "usr/lib/stagehand/pre-upgrade.d/20-noexec",
            "",
            0o644,
        );
        refused(d.path(), "20-noexec", "not executable (mode 0644)");
        std::fs::remove_file(&p).unwrap();

        let p = mk(d.path(), "usr/lib/stagehand/pre-upgrade.d/20-ww", "", 0o757);
        refused(d.path(), "20-ww", "writable by group or others (mode 0757)");
        std::fs::remove_file(&p).unwrap();

        let p = mk(d.path(), "usr/lib/stagehand/pre-upgrade.d/20-gw", "", 0o775);
        refused(d.path(), "20-gw", "writable by group or others");
        std::fs::remove_file(&p).unwrap();

        let p = mk(
            d.path(),
            "usr/lib/stagehand/pre-upgrade.d/20-user",
            "",
            0o755,
        );
        chown(&p, Some(1000), Some(1000)).unwrap();
        refused(d.path(), "20-user", "owned by uid 1000, not root");
        std::fs::remove_file(&p).unwrap();

        let p = d.path().join("usr/lib/stagehand/pre-upgrade.d/20-link");
        symlink("/bin/true", &p).unwrap();
        refused(d.path(), "20-link", "a symlink (to /bin/true)");
        std::fs::remove_file(&p).unwrap();

        // Even a symlink that stays inside the tree: hooks are files, not links.
        symlink("10-ok", &p).unwrap();
        refused(d.path(), "20-link", "a symlink (to 10-ok)");
        std::fs::remove_file(&p).unwrap();

        let p = d.path().join("usr/lib/stagehand/pre-upgrade.d/20-dir");
        std::fs::create_dir(&p).unwrap();
        refused(d.path(), "20-dir", "is a directory");
        std::fs::remove_dir(&p).unwrap();

        let p = d.path().join("usr/lib/stagehand/pre-upgrade.d/20-fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            FileType::Fifo,
            Mode::from_raw_mode(0o755),
            0,
        )
        .unwrap();
        refused(d.path(), "20-fifo", "a FIFO");
        std::fs::remove_file(&p).unwrap();

        let p = d.path().join(OsStr::from_bytes(
            b"usr/lib/stagehand/pre-upgrade.d/20-\xff",
        ));
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        refused(d.path(), "20-", "not valid UTF-8");
        std::fs::remove_file(&p).unwrap();

        assert_eq!(
            scan(d.path(), VENDOR_HOOK_DIR, HookOrigin::Vendor)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn untrusted_or_symlinked_directories_are_refused() {
        assert!(root_or_skip(), "unit tests run as root (see README)");
        let d = tree();
        mk(d.path(), "usr/lib/stagehand/pre-upgrade.d/10-ok", "", 0o755);
        let dir = d.path().join("usr/lib/stagehand/pre-upgrade.d");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        refused(d.path(), "pre-upgrade.d", "the directory is writable");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

        let parent = d.path().join("usr/lib/stagehand");
        chown(&parent, Some(1000), None).unwrap();
        refused(d.path(), "usr/lib/stagehand", "owned by uid 1000");
        chown(&parent, Some(0), None).unwrap();

        // The hook directory (or one above it) as a symlink out of the root.
        let outside = tree();
        mk(outside.path(), "pre-upgrade.d/10-evil", "", 0o755);
        std::fs::rename(&parent, d.path().join("usr/lib/stagehand.real")).unwrap();
        symlink(outside.path(), &parent).unwrap();
        refused(d.path(), "usr/lib/stagehand", "a symlink (to /");

        // A file where a directory should be.
        std::fs::remove_file(&parent).unwrap();
        std::fs::write(&parent, "").unwrap();
        refused(
            d.path(),
            "usr/lib/stagehand",
            "a regular file, not a directory",
        );
    }
}
