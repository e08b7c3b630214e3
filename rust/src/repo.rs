//! Commit lookups in the sysroot repository: resolving revisions, checking
//! that a commit can boot, reading its version.

use gio::prelude::*;

use crate::error::{Error, GlibResultExt, Result};

/// Whether `s` looks like a full commit checksum.
pub fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Resolve a ref or checksum to a commit that is fully present in `repo`.
///
/// A checksum is not trusted just because it parses: the commit object must
/// exist and must not be partial, otherwise deploying it would fail half-way.
pub fn resolve_commit(repo: &ostree::Repo, rev: &str) -> Result<String> {
    if rev.is_empty() {
        return Err(Error::InvalidArgument("empty revision".into()));
    }
    let checksum = match repo.resolve_rev(rev, true) {
        Ok(Some(c)) => c.to_string(),
        Ok(None) => {
            return Err(Error::UnknownRevision {
                rev: rev.into(),
                detail: None,
            })
        }
        Err(e) => {
            return Err(Error::UnknownRevision {
                rev: rev.into(),
                detail: Some(e.message().to_string()),
            })
        }
    };
    match repo.load_commit(&checksum) {
        Ok((_, state)) if state.contains(ostree::RepoCommitState::PARTIAL) => {
            Err(Error::UnknownRevision {
                rev: rev.into(),
                detail: Some(format!("commit {checksum} is only partially pulled")),
            })
        }
        Ok(_) => Ok(checksum),
        Err(e) => Err(Error::UnknownRevision {
            rev: rev.into(),
            detail: Some(e.message().to_string()),
        }),
    }
}

/// The `version` metadata of a commit, if it has one.
pub fn commit_version(repo: &ostree::Repo, checksum: &str) -> Option<String> {
    let (commit, _) = repo.load_commit(checksum).ok()?;
    let meta = commit.child_value(0);
    let dict = glib::VariantDict::new(Some(&meta));
    dict.lookup::<String>("version").ok().flatten()
}

fn has_child_with_prefix(dir: &gio::File, prefix: &str) -> Result<bool> {
    if !dir.query_exists(gio::Cancellable::NONE) {
        return Ok(false);
    }
    let iter = match dir.enumerate_children(
        "standard::name",
        gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
        gio::Cancellable::NONE,
    ) {
        Ok(i) => i,
        Err(e) if e.matches(gio::IOErrorEnum::NotFound) => return Ok(false),
        Err(e) => return Err(Error::glib("listing commit directory", e)),
    };
    for info in iter {
        let info = info.ctx(|| "listing commit directory".into())?;
        if info.name().to_string_lossy().starts_with(prefix) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Fail with [`Error::NotBootable`] unless the commit carries a kernel where
/// libostree looks for one (`/usr/lib/modules/$kver/vmlinuz`,
/// `/usr/lib/ostree-boot/vmlinuz*`, `/boot/vmlinuz*`).
///
/// Checked before anything is written, so a bad commit leaves no trace
/// instead of failing half-way through a deployment.
pub fn require_bootable(repo: &ostree::Repo, checksum: &str) -> Result<()> {
    let (root, _) = repo
        .read_commit(checksum, gio::Cancellable::NONE)
        .ctx(|| format!("reading commit {checksum}"))?;
    let modules = root.resolve_relative_path("usr/lib/modules");
    let has_modules = modules.query_exists(gio::Cancellable::NONE);
    if !has_modules {
        // fall through to the legacy locations
    } else if let Ok(iter) = modules.enumerate_children(
        "standard::name",
        gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
        gio::Cancellable::NONE,
    ) {
        for info in iter {
            let info = info.ctx(|| "listing /usr/lib/modules".into())?;
            let kdir = modules.child(info.name());
            if kdir.child("vmlinuz").query_exists(gio::Cancellable::NONE) {
                return Ok(());
            }
        }
    }
    for legacy in ["usr/lib/ostree-boot", "boot"] {
        if has_child_with_prefix(&root.resolve_relative_path(legacy), "vmlinuz")? {
            return Ok(());
        }
    }
    Err(Error::NotBootable {
        checksum: checksum.into(),
    })
}
