//! Pre-upgrade hooks: code shipped in the new image (and by the local admin)
//! vets an update before it may take effect.
//!
//! The contract for hook authors is `docs/hooks.md`. In short: executables in
//! the new deployment's `/usr/lib/stagehand/pre-upgrade.d/` (vendor) and the
//! booted system's `/etc/stagehand/pre-upgrade.d/` (admin) run one at a time
//! in lexical order of file name, each inside a bubblewrap sandbox whose root
//! is the new deployment (read-only) with the booted root read-only at
//! `/run/stagehand/old`; exit status 0 passes, anything else vetoes the
//! update. A hook that runs past its timeout is killed with its whole
//! process tree.
//!
//! - [`crate::stage()`] runs them on every update unless
//!   [`HookOptions::set_enabled`] turned them off;
//! - [`check`] answers "would this revision pass its hooks?" and leaves no
//!   deployment behind;
//! - [`recover`] removes what an agent that died mid-hook left: a staged
//!   deployment that was never vetted (it stays finalization-locked until
//!   then, so it can never take effect).
//!
//! Why a sandbox and not just `chroot`: the hook must run the *new* image's
//! userspace (it knows how to migrate to itself), must not be able to change
//! the running system before the update is even accepted (a veto must leave
//! nothing behind, and `check` must be a true dry run), and must not outlive
//! its timeout through a forked child. The sandbox contains mistakes; it is
//! not a boundary against hostile code, which the image could run as root at
//! its next boot anyway.

mod discover;
mod runner;
pub(crate) mod unvetted;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gio::prelude::*;
use serde::Serialize;

pub use discover::{discover, scan, Hook, HookOrigin, ADMIN_HOOK_DIR, VENDOR_HOOK_DIR};
pub use runner::{OUTPUT_TAIL_LIMIT, SANDBOX_OLD_ROOT};
pub use unvetted::{Unvetted, UNVETTED_PATH};

use crate::error::{Error, GlibResultExt, HookEnd, Result};
use crate::repo;
use crate::stage::{self, StageOptions};
use crate::sysroot::{sysroot_path, DeploymentId, SysrootLock};

/// Default per-hook timeout.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// Where bubblewrap is looked for unless [`HookOptions::set_bwrap`] says otherwise.
pub const DEFAULT_BWRAP: &str = "/usr/bin/bwrap";

/// Version of the hook contract (`STAGEHAND_HOOK_API`), bumped when what a
/// hook sees changes incompatibly.
pub const HOOK_API_VERSION: u32 = 1;

/// How pre-upgrade hooks run during staging.
#[derive(Debug, Clone)]
pub struct HookOptions {
    enabled: bool,
    timeout: Duration,
    bwrap: PathBuf,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            enabled: true,
            timeout: DEFAULT_HOOK_TIMEOUT,
            bwrap: PathBuf::from(DEFAULT_BWRAP),
        }
    }
}

impl HookOptions {
    /// Whether hooks run at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// Turn hooks on or off (off is for administrators; it is logged).
    pub fn set_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
    /// The per-hook timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// Set the per-hook timeout (must not be zero).
    pub fn set_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// The bubblewrap binary.
    pub fn bwrap(&self) -> &Path {
        &self.bwrap
    }
    /// Use another bubblewrap binary (a distribution that installs it
    /// elsewhere). Hooks never run without it.
    pub fn set_bwrap(mut self, path: impl Into<PathBuf>) -> Self {
        self.bwrap = path.into();
        self
    }
}

/// How one hook ran.
#[derive(Debug, Clone, Serialize)]
pub struct HookRun {
    /// File name.
    pub name: String,
    /// Path as its system sees it (`/usr/lib/stagehand/pre-upgrade.d/NAME`
    /// or `/etc/stagehand/pre-upgrade.d/NAME`).
    pub path: String,
    /// Vendor or admin.
    pub origin: HookOrigin,
    /// Whether it passed (exit status 0).
    pub passed: bool,
    /// How it vetoed, `None` when it passed.
    #[serde(serialize_with = "ser_end")]
    pub end: Option<HookEnd>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// How many bytes it wrote to stdout and stderr together.
    pub output_bytes: u64,
    /// The last [`OUTPUT_TAIL_LIMIT`] bytes of that output.
    pub output_tail: String,
}

fn ser_end<S: serde::Serializer>(
    end: &Option<HookEnd>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let Some(end) = end else {
        return s.serialize_none();
    };
    let mut m = s.serialize_map(Some(2))?;
    match end {
        HookEnd::Exited(c) => m.serialize_entry("exit-code", c)?,
        HookEnd::Signaled(n) => m.serialize_entry("signal", n)?,
        HookEnd::TimedOut(d) => m.serialize_entry("timeout-secs", &d.as_secs_f64())?,
        HookEnd::SpawnFailed(e) => m.serialize_entry("spawn-failed", e)?,
    }
    m.serialize_entry("text", &end.to_string())?;
    m.end()
}

impl HookRun {
    /// The veto as an error, if it was one.
    pub fn to_error(&self) -> Option<Error> {
        self.end.as_ref().map(|end| Error::HookVetoed {
            hook: self.path.clone(),
            end: end.clone(),
            // bwrap's one line of output is the reason, already in `end`.
            output_tail: match end {
                HookEnd::SpawnFailed(_) => String::new(),
                _ => self.output_tail.trim_end().to_string(),
            },
        })
    }
}

/// The answer of [`check`]: every hook that applies to the revision and how
/// it ran.
#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    /// The stateroot the revision would be deployed into.
    pub stateroot: String,
    /// The commit checked.
    pub checksum: String,
    /// Its `version` metadata.
    pub version: Option<String>,
    /// The deployment it would upgrade from (the booted one, else the merge
    /// deployment).
    pub old: Option<DeploymentId>,
    /// The old deployment's version.
    pub old_version: Option<String>,
    /// Each hook in the order it ran.
    pub hooks: Vec<HookRun>,
    /// Whether every hook passed (true when there are none).
    pub passed: bool,
}

impl HookReport {
    /// The first veto as an error (what staging would have failed with).
    pub fn first_veto(&self) -> Option<Error> {
        self.hooks.iter().find_map(HookRun::to_error)
    }
}

/// Everything the runner needs about one update.
struct Subject {
    stateroot: String,
    new: ostree::Deployment,
    new_version: Option<String>,
    old: Option<ostree::Deployment>,
    old_version: Option<String>,
    layout: runner::Layout,
}

fn deployment_dir(sysroot: &ostree::Sysroot, d: &ostree::Deployment) -> PathBuf {
    sysroot_path(sysroot).join(sysroot.deployment_dirpath(d).as_str())
}

fn stateroot_var(sysroot: &ostree::Sysroot, stateroot: &str) -> PathBuf {
    sysroot_path(sysroot)
        .join("ostree/deploy")
        .join(stateroot)
        .join("var")
}

impl Subject {
    /// The old deployment is the booted one on a booted system (what the
    /// update replaces, and where the admin's /etc is), else the merge
    /// deployment (what the new one inherits /etc from).
    fn new(
        sysroot: &ostree::Sysroot,
        new: &ostree::Deployment,
        merge: Option<&ostree::Deployment>,
    ) -> Subject {
        let repo = sysroot.repo();
        let old = sysroot.booted_deployment().or_else(|| merge.cloned());
        let stateroot = new.osname().to_string();
        let layout = runner::Layout {
            new_root: deployment_dir(sysroot, new),
            new_var: stateroot_var(sysroot, &stateroot),
            old: old.as_ref().map(|o| {
                (
                    deployment_dir(sysroot, o),
                    stateroot_var(sysroot, o.osname().as_str()),
                )
            }),
        };
        Subject {
            new_version: repo::commit_version(&repo, &new.csum()),
            old_version: old
                .as_ref()
                .and_then(|o| repo::commit_version(&repo, &o.csum())),
            stateroot,
            new: new.clone(),
            old,
            layout,
        }
    }

    fn hooks(&self) -> Result<Vec<Hook>> {
        discover(
            &self.layout.new_root,
            self.layout.old.as_ref().map(|(r, _)| r.as_path()),
        )
    }

    /// The environment of every hook: nothing of the agent's, only this.
    fn env(&self, hook: &Hook) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("STAGEHAND_HOOK_API".into(), HOOK_API_VERSION.to_string()),
            ("STAGEHAND_HOOK".into(), hook.path.clone()),
            ("STAGEHAND_HOOK_ORIGIN".into(), hook.origin.to_string()),
            ("STAGEHAND_STATEROOT".into(), self.stateroot.clone()),
            ("STAGEHAND_NEW_ROOT".into(), "/".into()),
            ("STAGEHAND_NEW_CHECKSUM".into(), self.new.csum().to_string()),
            (
                "STAGEHAND_NEW_DEPLOYMENT".into(),
                DeploymentId::of(&self.new).to_string(),
            ),
        ];
        if let Some(v) = &self.new_version {
            env.push(("STAGEHAND_NEW_VERSION".into(), v.clone()));
        }
        if let Some(old) = &self.old {
            env.push(("STAGEHAND_OLD_ROOT".into(), SANDBOX_OLD_ROOT.into()));
            env.push(("STAGEHAND_OLD_CHECKSUM".into(), old.csum().to_string()));
            env.push((
                "STAGEHAND_OLD_DEPLOYMENT".into(),
                DeploymentId::of(old).to_string(),
            ));
            if let Some(v) = &self.old_version {
                env.push(("STAGEHAND_OLD_VERSION".into(), v.clone()));
            }
        }
        env
    }

    /// Where the hook file is inside the sandbox.
    fn exec_path(hook: &Hook) -> String {
        match hook.origin {
            HookOrigin::Vendor => hook.path.clone(),
            HookOrigin::Admin => format!("{SANDBOX_OLD_ROOT}{}", hook.path),
        }
    }

    fn run_one(
        &self,
        hook: &Hook,
        opts: &HookOptions,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<HookRun> {
        log::info!("running pre-upgrade hook {} ({})", hook.path, hook.origin);
        let started = Instant::now();
        let out = runner::run(
            &opts.bwrap,
            &self.layout,
            &Self::exec_path(hook),
            &self.env(hook),
            opts.timeout,
            cancellable,
        )?;
        let end = match out.end {
            Some(HookEnd::SpawnFailed(msg)) => {
                Some(HookEnd::SpawnFailed(explain_spawn_failure(hook, msg)))
            }
            end => end,
        };
        let run = HookRun {
            name: hook.name.clone(),
            path: hook.path.clone(),
            origin: hook.origin,
            passed: end.is_none(),
            end,
            duration_ms: started.elapsed().as_millis() as u64,
            output_bytes: out.output_bytes,
            output_tail: out.tail,
        };
        log_run(&run, out.duration);
        Ok(run)
    }

    /// Run the hooks in order. `stop_on_veto`: stop at the first veto (staging);
    /// otherwise run them all (the dry run reports every outcome).
    fn run_all(
        &self,
        hooks: &[Hook],
        opts: &HookOptions,
        stop_on_veto: bool,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<Vec<HookRun>> {
        if opts.timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "the hook timeout must be longer than zero".into(),
            ));
        }
        let mut runs = Vec::with_capacity(hooks.len());
        for hook in hooks {
            if cancellable.is_some_and(|c| c.is_cancelled()) {
                return Err(Error::Cancelled);
            }
            let run = self.run_one(hook, opts, cancellable)?;
            let vetoed = !run.passed;
            runs.push(run);
            if vetoed && stop_on_veto {
                break;
            }
        }
        Ok(runs)
    }
}

/// "execvp: No such file or directory" for a file that exists means its
/// `#!` interpreter is missing from the new root: say so.
fn explain_spawn_failure(hook: &Hook, msg: String) -> String {
    use std::io::Read;
    if !msg.contains("No such file or directory") {
        return msg;
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(&hook.host_path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    let Some(line) = head.strip_prefix(b"#!") else {
        return msg;
    };
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let interp = String::from_utf8_lossy(line);
    match interp.split_whitespace().next() {
        Some(i) => format!("{msg} (its interpreter {i} is not in the new deployment)"),
        None => msg,
    }
}

fn log_run(run: &HookRun, duration: Duration) {
    // The output goes to the info level even for a veto: the error carries
    // the tail already, and a warning per line would say it twice.
    let level = log::Level::Info;
    let shown = run.output_tail.len() as u64;
    if run.output_bytes > shown {
        log::log!(
            level,
            "{}: ({} earlier bytes of output not kept)",
            run.name,
            run.output_bytes - shown
        );
    }
    for line in run.output_tail.lines() {
        log::log!(level, "{}: {line}", run.name);
    }
    match &run.end {
        None => log::info!(
            "pre-upgrade hook {} passed ({} ms)",
            run.path,
            duration.as_millis()
        ),
        // Not a warning: the caller gets the veto as an error and reports it.
        Some(end) => log::info!("pre-upgrade hook {} vetoed the update ({end})", run.path),
    }
}

/// Run the hooks that apply to `new` (a deployment checked out but not yet
/// able to take effect); the first veto is the error.
pub(crate) fn vet(
    lock: &SysrootLock,
    new: &ostree::Deployment,
    merge: Option<&ostree::Deployment>,
    opts: &HookOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    let subject = Subject::new(lock.sysroot(), new, merge);
    let hooks = subject.hooks()?;
    if hooks.is_empty() {
        log::info!("no pre-upgrade hooks for {}", DeploymentId::of(new));
        return Ok(());
    }
    let runs = subject.run_all(&hooks, opts, true, cancellable)?;
    match runs.iter().find_map(HookRun::to_error) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether the staged deployment `staged` has not (yet) passed its hooks:
/// staging is in progress, or the agent died before the hooks finished.
///
/// Such a deployment is finalization-locked, so it never takes effect; the
/// next [`crate::stage()`] or [`recover`] removes it.
pub fn is_unvetted(staged: &ostree::Deployment) -> bool {
    staged.is_staged() && unvetted::is_unvetted(staged)
}

pub(crate) fn mark_unvetted(
    stateroot: &str,
    checksum: &str,
    serial: Option<u32>,
    lock_preexisting: bool,
) -> Result<()> {
    unvetted::write(&unvetted::Unvetted::new(
        stateroot,
        checksum,
        serial,
        lock_preexisting,
    ))
}

/// When a staging has not passed its hooks yet (its record exists), what it
/// staged, for messages; `None` when nothing is being vetted.
pub(crate) fn unvetted_staging() -> Option<String> {
    match unvetted::read()? {
        Ok(u) => Some(match u.serial {
            Some(serial) => format!("{}:{}.{serial}", u.stateroot, u.checksum),
            None => format!("{}:{}", u.stateroot, u.checksum),
        }),
        Err(e) => Some(format!(
            "a staged deployment (its record is unreadable: {e})"
        )),
    }
}

pub(crate) fn clear_unvetted() -> Result<bool> {
    unvetted::clear()
}

/// What [`recover`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverOutcome {
    /// The unvetted staged deployment that was removed, if any.
    pub removed: Option<DeploymentId>,
    /// Whether an unvetted record was found (and dropped).
    pub record_found: bool,
}

/// Remove what a staging that died during its hooks left behind: the
/// unvetted staged deployment with its finalization lock, its record, and
/// any deployment checkout that never made it into the deployment list (an
/// interrupted non-booted deploy or [`check`]).
///
/// A vetted staged deployment is left alone. Safe to call at any time: under
/// the sysroot lock no staging is in progress, so an unvetted record means
/// its writer is gone.
pub fn recover(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<RecoverOutcome> {
    let out = remove_unvetted_staged(lock, cancellable)?;
    lock.sysroot()
        .prepare_cleanup(cancellable)
        .ctx(|| "removing deployment checkouts not in the deployment list".into())?;
    lock.reload(cancellable)?;
    if out.removed.is_none() && !out.record_found {
        log::info!("nothing to recover: no unvetted staged deployment");
    }
    Ok(out)
}

/// Unstage the staged deployment if it is unvetted, and drop a record that
/// describes nothing staged. Needs the sysroot lock (which proves no staging
/// is running).
pub(crate) fn remove_unvetted_staged(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<RecoverOutcome> {
    let Some(record) = unvetted::read() else {
        return Ok(RecoverOutcome::default());
    };
    let sysroot = lock.sysroot();
    let staged = sysroot.staged_deployment();
    let matches = match (&record, &staged) {
        (Ok(u), Some(d)) => u.matches(d),
        (Err(e), Some(_)) => {
            log::warn!(
                "{UNVETTED_PATH} is unreadable ({e}); treating the staged deployment as unvetted"
            );
            true
        }
        (_, None) => false,
    };
    let mut out = RecoverOutcome {
        removed: None,
        record_found: true,
    };
    if let (true, Some(d)) = (matches, &staged) {
        let id = DeploymentId::of(d);
        log::warn!("removing staged deployment {id}: its pre-upgrade hooks never completed");
        out.removed = stage::unstage(lock, cancellable)?;
    } else {
        // Nothing staged matches: the agent died before `stage_tree` finished
        // or after unstaging, or someone staged another commit since. The
        // record is stale; so is the finalization lock it took, unless that
        // lock predates it or now guards someone else's staged deployment.
        if staged.is_none() && matches!(record, Ok(ref u) if !u.lock_preexisting) {
            stage::remove_finalization_lock()?;
        }
        if staged.is_none() {
            // An unstage of it may have been killed after libostree dropped
            // it: its trial's pins and deployment ref are still to go. The
            // record goes last, so a kill in between is recovered again.
            stage::finish_unstage(lock, cancellable)?;
        }
        clear_unvetted()?;
    }
    Ok(out)
}

/// Dry run: would `opts.revision()` pass its pre-upgrade hooks if staged
/// with `opts` now?
///
/// The revision is checked out as a deployment (exactly as staging would,
/// with the same merge deployment) but never added to the deployment list;
/// every hook runs against it, even after a veto, and the checkout is removed
/// again whatever happens. Nothing staged, no bootloader change, no
/// finalization lock: afterwards the sysroot is as it was. An agent killed
/// during the check leaves a checkout that the next stage, cleanup or
/// [`recover`] removes.
///
/// Invalid hook files are an error ([`Error::HookInvalid`]), as they would be
/// for staging; vetoes are not errors but outcomes in the report.
pub fn check(
    lock: &SysrootLock,
    opts: &StageOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<HookReport> {
    let sysroot = lock.sysroot();
    let repo_ = sysroot.repo();
    let stateroot = stage::resolve_stateroot(sysroot, opts.stateroot_opt())?;
    let checksum = repo::resolve_commit(&repo_, opts.revision())?;
    repo::require_bootable(&repo_, &checksum)?;
    stage::require_writable(sysroot)?;
    let merge = sysroot.merge_deployment(Some(&stateroot));
    let origin = sysroot.origin_new_from_refspec(opts.revision());
    let new = sysroot
        .deploy_tree_with_options(
            Some(&stateroot),
            &checksum,
            Some(&origin),
            merge.as_ref(),
            None,
            cancellable,
        )
        .ctx(|| format!("checking out {checksum} for its hooks"))?;
    log::info!(
        "checked out {} to run its hooks (not deployed)",
        DeploymentId::of(&new)
    );
    let result = (|| {
        let subject = Subject::new(sysroot, &new, merge.as_ref());
        let hooks = subject.hooks()?;
        let runs = subject.run_all(&hooks, opts.hooks_options(), false, cancellable)?;
        Ok(HookReport {
            stateroot: stateroot.clone(),
            checksum: checksum.clone(),
            version: subject.new_version.clone(),
            old: subject.old.as_ref().map(DeploymentId::of),
            old_version: subject.old_version.clone(),
            passed: runs.iter().all(|r| r.passed),
            hooks: runs,
        })
    })();
    // The checkout is not in the deployment list: prepare_cleanup removes it.
    // Not cancellable: after a cancellation the checkout must go all the same.
    let cleaned = sysroot
        .prepare_cleanup(gio::Cancellable::NONE)
        .ctx(|| "removing the checked-out deployment".into());
    match (result, cleaned) {
        (Err(e), cleaned) => {
            if let Err(c) = cleaned {
                log::warn!("{c}");
            }
            Err(e)
        }
        (Ok(_), Err(e)) => Err(e),
        (Ok(r), Ok(())) => {
            lock.reload(gio::Cancellable::NONE)?;
            Ok(r)
        }
    }
}
