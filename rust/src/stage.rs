//! Staged deployment, the full-deploy fallback, unstaging, and the
//! finalization lock.
//!
//! On a booted system a new deployment is *staged*: its tree is checked out
//! now, but `/etc` is merged and the bootloader written only at shutdown by
//! `ostree-finalize-staged.service`, so changes people make to `/etc` after the
//! update was prepared are kept (seed 004). On a sysroot that is not booted
//! (image builds, tests) there is no shutdown to wait for, so the deployment
//! is written fully at once.

use std::path::Path;

use crate::error::{Error, GlibResultExt, IoResultExt, Result};
use crate::fsutil;
use crate::health::{self, HealthOptions};
use crate::hooks::{self, HookOptions};
use crate::repo;
use crate::sysroot::{is_booted, sysroot_path, DeploymentId, SysrootLock};

/// Where libostree (2022.7) keeps the state of the staged deployment.
pub const STAGED_STATE_PATH: &str = "/run/ostree/staged-deployment";

/// While this file exists, `ostree admin finalize-staged` leaves the staged
/// deployment alone (libostree 2022.7 has no API for it; the file is the API).
pub const FINALIZATION_LOCK_PATH: &str = "/run/ostree/staged-deployment-locked";

/// Kernel arguments of the new deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Kargs {
    /// The merge deployment's arguments, unchanged (the default).
    #[default]
    Inherit,
    /// The merge deployment's arguments, then these (a `key=value` here
    /// replaces an inherited `key=...`).
    Append(Vec<String>),
    /// Exactly these.
    Replace(Vec<String>),
}

/// What to stage. Built with [`StageOptions::new`] and its setters, so new
/// options never break callers.
#[derive(Debug, Clone)]
pub struct StageOptions {
    revision: String,
    stateroot: Option<String>,
    origin_refspec: Option<String>,
    kargs: Kargs,
    lock_finalization: bool,
    hooks: HookOptions,
    allow_denylisted: bool,
    health: HealthOptions,
}

impl StageOptions {
    /// Stage `revision`: a ref or a commit checksum in the sysroot repository.
    pub fn new(revision: impl Into<String>) -> StageOptions {
        StageOptions {
            revision: revision.into(),
            stateroot: None,
            origin_refspec: None,
            kargs: Kargs::Inherit,
            lock_finalization: false,
            hooks: HookOptions::default(),
            allow_denylisted: false,
            health: HealthOptions::default(),
        }
    }

    /// Deploy into this stateroot (default: the booted one, else the one of the
    /// current default deployment).
    pub fn stateroot(mut self, stateroot: impl Into<String>) -> Self {
        self.stateroot = Some(stateroot.into());
        self
    }

    /// The refspec written into the new deployment's origin file (default:
    /// `revision` when it is a ref; for a checksum, the merge deployment's
    /// origin, so later upgrades keep following the same ref).
    pub fn origin_refspec(mut self, refspec: impl Into<String>) -> Self {
        self.origin_refspec = Some(refspec.into());
        self
    }

    /// How to set kernel arguments.
    pub fn kargs(mut self, kargs: Kargs) -> Self {
        self.kargs = kargs;
        self
    }

    /// Keep finalization locked after staging: the deployment stays staged
    /// across shutdowns until [`unlock_finalization`] is called.
    pub fn lock_finalization(mut self, lock: bool) -> Self {
        self.lock_finalization = lock;
        self
    }

    /// How pre-upgrade hooks run (default: they run, with the default timeout).
    pub fn hooks(mut self, hooks: HookOptions) -> Self {
        self.hooks = hooks;
        self
    }

    /// Stage the commit even when it is on the denylist because it failed
    /// before (default: refused with [`Error::Denylisted`]). For an explicit
    /// retry by a person; it stays denylisted until a deployment of it is
    /// marked good.
    pub fn allow_denylisted(mut self, allow: bool) -> Self {
        self.allow_denylisted = allow;
        self
    }

    /// How the trial the new deployment starts treats retention (default:
    /// two known-good deployments are pinned while it is on trial).
    pub fn health(mut self, health: HealthOptions) -> Self {
        self.health = health;
        self
    }

    /// The revision to stage.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub(crate) fn stateroot_opt(&self) -> Option<&str> {
        self.stateroot.as_deref()
    }

    pub(crate) fn hooks_options(&self) -> &HookOptions {
        &self.hooks
    }
}

/// How the new deployment was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageMethod {
    /// Staged on a booted system; finalized at shutdown.
    Staged,
    /// Fully deployed at once (the sysroot is not booted).
    Deployed,
}

/// What [`stage`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageOutcome {
    /// The new (or already present) deployment.
    pub deployment: DeploymentId,
    /// Whether it was staged or fully deployed.
    pub method: StageMethod,
    /// True when the same commit was already staged (or, not booted, already
    /// the default) with the same kernel arguments: nothing was written.
    pub unchanged: bool,
    /// Whether finalization is locked now.
    pub finalization_locked: bool,
}

/// Whether finalization of the staged deployment is locked.
pub fn finalization_locked() -> bool {
    Path::new(FINALIZATION_LOCK_PATH).exists()
}

/// Lock finalization: `ostree admin finalize-staged` will leave the staged
/// deployment staged. Durable for this boot only (the file lives in `/run`),
/// which is what libostree honours. Needs a booted system.
pub fn lock_finalization(sysroot: &ostree::Sysroot) -> Result<()> {
    if !is_booted(sysroot) {
        return Err(Error::NotBooted(
            "finalization locking applies to the booted system's staged deployment".into(),
        ));
    }
    let path = Path::new(FINALIZATION_LOCK_PATH);
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).io_ctx("creating", dir)?;
    // Only the file's existence matters, and creating it is atomic by
    // itself: no temporary file that an interruption could leave behind.
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .io_ctx("creating", path)?;
    fsutil::fsync_dir(dir)
}

/// Unlock finalization. Returns whether it was locked.
///
/// Refused with [`Error::Interrupted`] while a staged deployment has not
/// passed its pre-upgrade hooks (an agent is vetting it, or died doing so):
/// unlocking then would let the next shutdown finalize an unvetted
/// deployment. `stagehand hooks recover` ([`crate::hooks::recover`]) removes
/// such a deployment; staging again replaces it.
pub fn unlock_finalization() -> Result<bool> {
    if let Some(what) = hooks::unvetted_staging() {
        return Err(Error::Interrupted {
            name: format!("pre-upgrade hooks of {what}"),
            started: "an earlier staging (an agent is vetting it, or died doing so; \
                      `stagehand hooks recover` removes it)"
                .into(),
        });
    }
    remove_finalization_lock()
}

/// Remove the lock file, for stagehand's own flows that know the state of
/// the unvetted record.
pub(crate) fn remove_finalization_lock() -> Result<bool> {
    fsutil::remove_durable(Path::new(FINALIZATION_LOCK_PATH))
}

fn set_finalization_lock(sysroot: &ostree::Sysroot, locked: bool) -> Result<()> {
    if locked {
        lock_finalization(sysroot)
    } else {
        remove_finalization_lock().map(|_| ())
    }
}

/// Kernel arguments of a deployment, without the `ostree=` argument that
/// libostree writes itself.
pub fn deployment_kargs(deployment: &ostree::Deployment) -> Vec<String> {
    let options = deployment
        .bootconfig()
        .and_then(|b| b.get("options"))
        .map(|s| s.to_string())
        .unwrap_or_default();
    let kargs = ostree::KernelArgs::from_string(&options);
    let _ = kargs.delete_key_entry("ostree");
    kargs.to_strv().into_iter().map(|s| s.to_string()).collect()
}

fn compute_kargs(merge: Option<&ostree::Deployment>, kargs: &Kargs) -> Vec<String> {
    let base = || merge.map(deployment_kargs).unwrap_or_default();
    match kargs {
        Kargs::Inherit => base(),
        Kargs::Replace(v) => v.clone(),
        Kargs::Append(extra) => {
            let k = ostree::KernelArgs::new();
            let base = base();
            let base: Vec<&str> = base.iter().map(|s| s.as_str()).collect();
            k.append_argv(&base);
            for arg in extra {
                k.replace(arg);
            }
            k.to_strv().into_iter().map(|s| s.to_string()).collect()
        }
    }
}

pub(crate) fn resolve_stateroot(
    sysroot: &ostree::Sysroot,
    requested: Option<&str>,
) -> Result<String> {
    let name = match requested {
        Some(s) => {
            if s.is_empty() || s.contains('/') || s == "." || s == ".." {
                return Err(Error::InvalidArgument(format!(
                    "{s:?} is not a stateroot name"
                )));
            }
            s.to_string()
        }
        None => sysroot
            .booted_deployment()
            .or_else(|| sysroot.deployments().into_iter().find(|d| !d.is_staged()))
            .map(|d| d.osname().to_string())
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "no stateroot given and no deployment to take one from".into(),
                )
            })?,
    };
    let dir = sysroot_path(sysroot).join("ostree/deploy").join(&name);
    if !dir.is_dir() {
        return Err(Error::UnknownStateroot(name));
    }
    Ok(name)
}

pub(crate) fn require_writable(sysroot: &ostree::Sysroot) -> Result<()> {
    let root = sysroot_path(sysroot);
    for (path, what) in [
        (root.join("ostree/deploy"), "write a deployment"),
        (root.join("boot"), "write the bootloader configuration"),
    ] {
        if path.exists() && fsutil::is_read_only(&path)? {
            return Err(Error::ReadOnly {
                path,
                what: what.into(),
            });
        }
    }
    Ok(())
}

/// Stage `opts.revision` (booted) or deploy it fully (not booted).
///
/// Before anything is written: the revision must resolve to a complete commit
/// with a kernel, the stateroot must exist and the sysroot must be writable;
/// each failure is its own error kind and leaves the disk as it was.
///
/// When pre-upgrade hooks run, finalization is locked *before* the deployment
/// is staged, so a shutdown while they run cannot finalize an unvetted
/// deployment; a veto removes the deployment again. The pointless repo prune
/// libostree would do after staging is not run: the old rollback is still
/// referenced until finalization, so it would reclaim nothing.
pub fn stage(
    lock: &SysrootLock,
    opts: &StageOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<StageOutcome> {
    let sysroot = lock.sysroot();
    let repo = sysroot.repo();
    let stateroot = resolve_stateroot(sysroot, opts.stateroot.as_deref())?;
    let checksum = repo::resolve_commit(&repo, &opts.revision)?;
    repo::require_bootable(&repo, &checksum)?;
    require_writable(sysroot)?;
    // The new deployment starts its trial: a denylisted commit is refused,
    // the staging is recorded as pending before libostree writes anything
    // (so an interruption still leaves it untested), and the known-good
    // deployments are pinned before anything could drop them.
    health::stage_begin(
        lock,
        &stateroot,
        &checksum,
        opts.allow_denylisted,
        &opts.health,
        cancellable,
    )?;

    if !opts.hooks.enabled() {
        log::warn!(
            "pre-upgrade hooks are disabled: {} takes effect without being vetted",
            opts.revision
        );
    }

    let merge = sysroot.merge_deployment(Some(&stateroot));
    let kargs = compute_kargs(merge.as_ref(), &opts.kargs);
    let origin_refspec = opts.origin_refspec.clone().unwrap_or_else(|| {
        let from_merge = merge
            .as_ref()
            .and_then(|m| m.origin())
            .and_then(|o| o.string("origin", "refspec").ok());
        match from_merge {
            Some(r) if repo::is_checksum(&opts.revision) && !repo::is_checksum(&r) => r.to_string(),
            _ => opts.revision.clone(),
        }
    });
    let origin = sysroot.origin_new_from_refspec(&origin_refspec);

    let result = if is_booted(sysroot) {
        stage_booted(
            lock,
            opts,
            &stateroot,
            &checksum,
            merge.as_ref(),
            &kargs,
            &origin,
            cancellable,
        )
    } else {
        deploy_full(
            lock,
            opts,
            &stateroot,
            &checksum,
            merge.as_ref(),
            &kargs,
            &origin,
            cancellable,
        )
    };
    // The deployment is written either way; if its record cannot be, the
    // pending record already makes every later reader see it as untested.
    if let Err(e) = health::stage_end(lock, result.as_ref().ok(), &opts.health, cancellable) {
        log::warn!("recording the health of the new deployment: {e}");
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn stage_booted(
    lock: &SysrootLock,
    opts: &StageOptions,
    stateroot: &str,
    checksum: &str,
    merge: Option<&ostree::Deployment>,
    kargs: &[String],
    origin: &glib::KeyFile,
    cancellable: Option<&gio::Cancellable>,
) -> Result<StageOutcome> {
    let sysroot = lock.sysroot();
    // A staged deployment whose hooks never completed (its agent died) is
    // finalization-locked and must never be reused: remove it first.
    hooks::remove_unvetted_staged(lock, cancellable)?;
    if let Some(staged) = sysroot.staged_deployment() {
        if staged.csum() == checksum
            && staged.osname() == stateroot
            && deployment_kargs(&staged) == kargs
        {
            // Already staged (and vetted): only bring the lock to the
            // requested state.
            set_finalization_lock(sysroot, opts.lock_finalization)?;
            log::info!(
                "{} is already staged; nothing to do",
                DeploymentId::of(&staged)
            );
            return Ok(StageOutcome {
                deployment: DeploymentId::of(&staged),
                method: StageMethod::Staged,
                unchanged: true,
                finalization_locked: finalization_locked(),
            });
        }
    }

    let run_hooks = opts.hooks.enabled();
    let was_locked = finalization_locked();
    // Order matters for crash safety: the finalization lock and the unvetted
    // record exist before the deployment does, so there is no instant at
    // which a shutdown could finalize it or a restarted agent could take it
    // for vetted.
    if run_hooks || opts.lock_finalization {
        lock_finalization(sysroot)?;
    }
    if run_hooks {
        if let Err(e) = hooks::mark_unvetted(stateroot, checksum, None, was_locked) {
            if !was_locked {
                let _ = remove_finalization_lock();
            }
            return Err(e);
        }
    }
    let karg_refs: Vec<&str> = kargs.iter().map(|s| s.as_str()).collect();
    let tree_opts = ostree::SysrootDeployTreeOpts {
        override_kernel_argv: Some(&karg_refs),
        ..Default::default()
    };
    let previous = sysroot.staged_deployment().map(|d| DeploymentId::of(&d));
    let staged = match sysroot.stage_tree_with_options(
        Some(stateroot),
        checksum,
        Some(origin),
        merge,
        &tree_opts,
        cancellable,
    ) {
        Ok(d) => d,
        Err(e) => {
            let err = Error::glib(format!("staging {checksum}"), e);
            // Cleanup is never cancelled: a cancelled staging must still
            // leave nothing behind.
            // When recovery cannot even tell what is staged now, the lock and
            // the unvetted record stay: safer that a deployment waits for
            // `hooks recover` than that an unvetted one finalizes.
            if recover_failed_stage(lock, previous.as_ref(), was_locked) && run_hooks {
                let _ = hooks::clear_unvetted();
            }
            return Err(err);
        }
    };
    let id = DeploymentId::of(&staged);
    log::info!("staged {id}");

    if run_hooks {
        let vetted = hooks::mark_unvetted(stateroot, checksum, Some(id.serial), was_locked)
            .and_then(|()| hooks::vet(lock, &staged, merge, &opts.hooks, cancellable));
        if let Err(e) = vetted {
            log::info!("removing {id}: it did not pass its pre-upgrade hooks");
            remove_vetoed(lock, &id);
            return Err(e);
        }
        // Vetted: drop the record before the lock, so a crash in between
        // leaves a locked vetted deployment, never an unlocked unvetted one.
        hooks::clear_unvetted()?;
    }
    if !opts.lock_finalization {
        remove_finalization_lock()?;
    }
    Ok(StageOutcome {
        deployment: id,
        method: StageMethod::Staged,
        unchanged: false,
        finalization_locked: finalization_locked(),
    })
}

/// After a veto: unstage, which drops the checkout, the staged state, the
/// finalization lock, the unvetted record and the deployment refs.
///
/// Never cancelled: it also runs after a cancellation, which must not leave
/// the unvetted deployment behind.
fn remove_vetoed(lock: &SysrootLock, id: &DeploymentId) {
    if let Err(e) = unstage(lock, gio::Cancellable::NONE) {
        log::warn!("could not remove vetoed deployment {id}: {e}");
    }
}

/// After a failed `stage_tree`, put things back as they were: the previously
/// staged deployment (if libostree kept it) with its lock state, no orphaned
/// deployment directory, and no half-staged new deployment.
///
/// Recovery ignores the caller's cancellable: when staging failed *because*
/// it was cancelled, the cancellable is triggered, and honouring it here
/// would leave the half-written checkout behind.
///
/// Returns false when the sysroot could not even be reloaded: then nothing
/// is touched (the finalization lock stays).
fn recover_failed_stage(
    lock: &SysrootLock,
    previous: Option<&DeploymentId>,
    was_locked: bool,
) -> bool {
    let cancellable = gio::Cancellable::NONE;
    let sysroot = lock.sysroot();
    if let Err(e) = sysroot.load(cancellable) {
        log::warn!("reloading sysroot after a failed stage: {e}; finalization stays locked");
        return false;
    }
    let now = sysroot.staged_deployment().map(|d| DeploymentId::of(&d));
    if now.is_some() && now.as_ref() != previous {
        // The new deployment got as far as being staged: it was never vetted.
        let _ = unstage(lock, cancellable);
    }
    if !was_locked {
        let _ = remove_finalization_lock();
    }
    if let Err(e) = sysroot.prepare_cleanup(cancellable) {
        log::warn!("cleaning up after a failed stage: {e}");
    }
    true
}

#[allow(clippy::too_many_arguments)]
fn deploy_full(
    lock: &SysrootLock,
    opts: &StageOptions,
    stateroot: &str,
    checksum: &str,
    merge: Option<&ostree::Deployment>,
    kargs: &[String],
    origin: &glib::KeyFile,
    cancellable: Option<&gio::Cancellable>,
) -> Result<StageOutcome> {
    let sysroot = lock.sysroot();
    if let Some(first) = sysroot.deployments().into_iter().next() {
        if first.csum() == checksum
            && first.osname() == stateroot
            && deployment_kargs(&first) == kargs
        {
            log::info!(
                "{} is already the default deployment; nothing to do",
                DeploymentId::of(&first)
            );
            return Ok(StageOutcome {
                deployment: DeploymentId::of(&first),
                method: StageMethod::Deployed,
                unchanged: true,
                finalization_locked: false,
            });
        }
    }
    let karg_refs: Vec<&str> = kargs.iter().map(|s| s.as_str()).collect();
    let tree_opts = ostree::SysrootDeployTreeOpts {
        override_kernel_argv: Some(&karg_refs),
        ..Default::default()
    };
    let cleanup_orphan = || {
        // The checkout is not in the deployment list yet; prepare_cleanup
        // removes deployment directories that are not listed. Not
        // cancellable, for the reason recover_failed_stage gives.
        if let Err(e) = sysroot.prepare_cleanup(gio::Cancellable::NONE) {
            log::warn!("removing the unwritten deployment: {e}");
        }
    };
    let new = match sysroot.deploy_tree_with_options(
        Some(stateroot),
        checksum,
        Some(origin),
        merge,
        Some(&tree_opts),
        cancellable,
    ) {
        Ok(d) => d,
        Err(e) => {
            cleanup_orphan();
            return Err(Error::glib(format!("deploying {checksum}"), e));
        }
    };
    if opts.hooks.enabled() {
        if let Err(e) = hooks::vet(lock, &new, merge, &opts.hooks, cancellable) {
            cleanup_orphan();
            return Err(e);
        }
    }
    // Not booted, so nothing to keep for a shutdown: write the bootloader
    // configuration now. libostree keeps the merge deployment and pinned ones,
    // drops older ones and prunes what they alone referenced.
    sysroot
        .simple_write_deployment(
            Some(stateroot),
            &new,
            merge,
            ostree::SysrootSimpleWriteDeploymentFlags::NONE,
            cancellable,
        )
        .ctx(|| format!("writing deployment {}", DeploymentId::of(&new)))?;
    lock.reload(cancellable)?;
    let id = DeploymentId::of(&new);
    log::info!("deployed {id}");
    Ok(StageOutcome {
        deployment: id,
        method: StageMethod::Deployed,
        unchanged: false,
        finalization_locked: false,
    })
}

/// Remove the staged deployment, and the finalization lock with it.
///
/// The booted and rollback deployments are untouched. Returns the removed
/// deployment, or `None` when nothing was staged (a stray lock file is still
/// removed). Writing the deployment list without the staged deployment is how
/// libostree itself unstages: it deletes the staged state, the checkout and
/// the lock file.
pub fn unstage(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Option<DeploymentId>> {
    let sysroot = lock.sysroot();
    let Some(staged) = sysroot.staged_deployment() else {
        remove_finalization_lock()?;
        finish_unstage(lock, cancellable)?;
        hooks::clear_unvetted()?;
        return Ok(None);
    };
    let id = DeploymentId::of(&staged);
    let rest: Vec<ostree::Deployment> = sysroot
        .deployments()
        .into_iter()
        .filter(|d| !d.is_staged())
        .collect();
    let wopts = ostree::SysrootWriteDeploymentsOpts {
        do_postclean: false,
    };
    sysroot
        .write_deployments_with_options(&rest, &wopts, cancellable)
        .ctx(|| format!("removing staged deployment {id}"))?;
    remove_finalization_lock()?;
    sysroot
        .load(cancellable)
        .ctx(|| "reloading sysroot".into())?;
    // Its deployment ref goes, and its trial ends with it: the health record,
    // and the pins when no other deployment is on trial.
    finish_unstage(lock, cancellable)?;
    // Last: while the unvetted record is there, `hooks recover` (or the next
    // stage) knows an interrupted removal is to be finished (found by the
    // crash sweep's hooks-recover row).
    hooks::clear_unvetted()?;
    log::info!("unstaged {id}");
    Ok(Some(id))
}

/// What follows libostree's removal of a staged deployment: its stale
/// deployment ref goes, and its trial ends (the health record, and the pins
/// when no other deployment is on trial).
///
/// An unstage (or a hooks recovery) killed after libostree dropped the
/// staged deployment left this undone: running it when nothing is staged
/// finishes the job, so running the operation again converges (found by the
/// crash sweep, `rust/crashsweep`). Idempotent and cheap when there is
/// nothing to do.
pub(crate) fn finish_unstage(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    drop_stale_deployment_refs(lock.sysroot(), cancellable)?;
    health::after_unstage(lock, cancellable)
}

/// Bring libostree's deployment refs (`ostree/BOOTVERSION/SUBBOOTVERSION/INDEX`,
/// which keep deployed commits from being pruned) back in line with the
/// deployment list.
///
/// Staging regenerates them with the staged deployment at index 0, which
/// shifts every other deployment up by one. After unstaging, libostree's own
/// cleanup rewrites the refs for the indexes that exist now but never deletes
/// the highest one, which the staged deployment had added (2022.7
/// `generate_deployment_refs` only clears the *other* boot versions): that
/// stray ref would outlive the unstaged deployment. Remove it.
fn drop_stale_deployment_refs(
    sysroot: &ostree::Sysroot,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    sysroot
        .prepare_cleanup(cancellable)
        .ctx(|| "rewriting deployment refs".into())?;
    let repo = sysroot.repo();
    let prefix = format!(
        "ostree/{}/{}",
        sysroot.bootversion(),
        sysroot.subbootversion()
    );
    let count = sysroot.deployments().len();
    let refs = repo
        .list_refs(Some(&prefix), cancellable)
        .ctx(|| format!("listing refs {prefix}"))?;
    for name in refs.keys() {
        let index = name.trim_start_matches('/');
        if index.parse::<usize>().is_ok_and(|i| i >= count) {
            let full = format!("{prefix}/{index}");
            repo.set_ref_immediate(None, &full, None, cancellable)
                .ctx(|| format!("deleting stale deployment ref {full}"))?;
            log::debug!("deleted stale deployment ref {full}");
        }
    }
    Ok(())
}
