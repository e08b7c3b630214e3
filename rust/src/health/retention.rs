//! Deployment order and retention: which deployment is the default, which
//! known-good deployments stagehand pins during a trial, and which ones a
//! released pin no longer keeps.
//!
//! # Two known-good deployments
//!
//! libostree keeps the new deployment, the booted one and the merge one
//! (plus pinned ones) when it writes deployments, so a normal update cycle
//! leaves two: the new one and the one before it. If the new one is bad and
//! the one before turns out bad too, nothing good is left. So while any
//! deployment is on trial (staged or deployed and not yet marked good or
//! bad), stagehand pins the two newest known-good deployments; the pins are
//! recorded in the store, and only recorded pins are ever released. A
//! deployment that is pinned already (by a person or another tool) is left
//! alone, never recorded, never unpinned.
//!
//! During a trial that is three deployments instead of two, so `/boot` holds
//! one more kernel and initramfs (when the kernels differ): budget for it, or
//! turn it off with [`super::HealthOptions::keep_known_good`].
//!
//! When the trial ends (mark-good, mark-bad, a fallback found at boot, or an
//! unstaged candidate), the pins are released and a deployment that only the
//! pin kept is removed from the deployment list, leaving the two newest
//! known-good ones: after a successful update, the new one and the previous
//! one, as without stagehand. Releasing is recorded first (`releasing`) and
//! forgotten last, so an interruption anywhere resumes at the next operation
//! instead of leaking a pin.
//!
//! # What a removed deployment leaves
//!
//! The deployment list is written without a repository prune (a prune walks
//! every reachable object: far too slow for an operation that may run at
//! boot), so the objects only the removed deployment used stay in the
//! repository. Before the list is written, the removed deployment is named
//! in the cleanup stamp ([`crate::cleanup::record_removed`]), so the next
//! `autocleanup` prunes them; in that order, a crash in between leaves a
//! stamp naming a deployment that still exists (harmless), never a dropped
//! deployment nobody will prune after.
//!
//! Its checkout and its kernel in `/boot` go at once when the trial ends
//! with mark-good ([`Removal::Now`], libostree's `prepare_cleanup`): mark-good
//! runs after `boot-complete.target`, off the boot path, and removing one
//! checkout is bounded work. Operations that may run early at boot (assess,
//! mark-bad from a failing health check) leave that to the cleanup too
//! ([`Removal::Deferred`]): it runs in the background with idle I/O priority
//! and never delays boot.

use super::model::PinRecord;
use super::store::Store;
use super::HealthOptions;
use crate::error::{GlibResultExt, Result};
use crate::sysroot::{DeploymentId, SysrootLock};

/// The deployments of a loaded sysroot, in order, with what decisions need.
pub(crate) struct View {
    pub deployments: Vec<ostree::Deployment>,
    pub ids: Vec<DeploymentId>,
    pub booted: Option<usize>,
    pub staged: Option<usize>,
}

impl View {
    pub fn of(sysroot: &ostree::Sysroot) -> View {
        let deployments = sysroot.deployments();
        let ids = deployments.iter().map(DeploymentId::of).collect();
        let booted = sysroot
            .booted_deployment()
            .and_then(|b| deployments.iter().position(|d| d.equal(&b)));
        let staged = deployments.iter().position(|d| d.is_staged());
        View {
            deployments,
            ids,
            booted,
            staged,
        }
    }

    /// The default: the first deployment that is not staged.
    pub fn default_index(&self) -> Option<usize> {
        (0..self.ids.len()).find(|&i| Some(i) != self.staged)
    }

    pub fn index_of(&self, id: &DeploymentId) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    pub fn non_staged(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.ids.len()).filter(move |&i| Some(i) != self.staged)
    }
}

/// Whether deployment `i` is known good: its state says so and its commit is
/// not denylisted. Never the staged one (it has not booted).
pub(crate) fn is_known_good(store: &Store, view: &View, i: usize) -> bool {
    let id = &view.ids[i];
    Some(i) != view.staged
        && store.state_of(id).is_known_good()
        && store.denied(&id.checksum).is_none()
}

/// Known-good deployments, best first: the one marked good most recently,
/// then the others in deployment order (newest first).
pub(crate) fn known_good(store: &Store, view: &View, exclude: &[usize]) -> Vec<usize> {
    let mut v: Vec<usize> = view
        .non_staged()
        .filter(|i| !exclude.contains(i) && is_known_good(store, view, *i))
        .collect();
    v.sort_by_key(|&i| (store.state_of(&view.ids[i]).boot_rank(), i));
    v
}

/// Whether a trial is open: a staging in progress, or a deployment that is
/// untested or booted without a verdict.
pub(crate) fn trial_open(store: &Store, view: &View) -> bool {
    store.pending().is_some()
        || view
            .ids
            .iter()
            .any(|id| store.entry(id).is_some_and(|e| e.on_trial()))
}

/// What happens to the checkout (and `/boot` files) of a deployment that
/// stagehand removes from the deployment list; its objects always wait for
/// the cleanup stamp's prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Removed at once with libostree's `prepare_cleanup` (no prune): for
    /// mark-good, which runs after `boot-complete.target`.
    Now,
    /// Left to the next cleanup, which the stamp schedules: for operations
    /// that may run early at boot.
    Deferred,
}

/// Write the deployment list: the staged deployment (if any) first, then
/// `order`. A non-staged deployment left out of `order` is dropped; it is
/// named in the cleanup stamp first, durably, so its objects are pruned by
/// the next cleanup whatever happens after.
fn write_order(
    lock: &SysrootLock,
    view: &View,
    order: &[usize],
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    let sysroot = lock.sysroot();
    let dropped: Vec<DeploymentId> = view
        .non_staged()
        .filter(|i| !order.contains(i))
        .map(|i| view.ids[i].clone())
        .collect();
    crate::cleanup::record_removed(lock, &dropped)?;
    // libostree compares deployments by pointer here (the booted one must be
    // in the list, the staged one is kept only when it is first), so the
    // list holds the very objects the sysroot holds: `Clone::clone` takes a
    // reference, while the inherent `Deployment::clone` is
    // `ostree_deployment_clone`, a copy libostree would not recognize.
    let mut list: Vec<ostree::Deployment> = Vec::with_capacity(order.len() + 1);
    if let Some(s) = view.staged {
        list.push(Clone::clone(&view.deployments[s]));
    }
    list.extend(order.iter().map(|&i| Clone::clone(&view.deployments[i])));
    let names: Vec<String> = order.iter().map(|&i| view.ids[i].to_string()).collect();
    // No post-clean: this runs at boot and from health checks, where a repo
    // prune would only add latency; the stamp written above schedules it.
    let opts = ostree::SysrootWriteDeploymentsOpts {
        do_postclean: false,
    };
    sysroot
        .write_deployments_with_options(&list, &opts, cancellable)
        .ctx(|| format!("writing the deployment order {}", names.join(", ")))?;
    sysroot
        .load(cancellable)
        .ctx(|| "reloading sysroot".into())?;
    Ok(())
}

/// Make deployment `first` the default; the staged deployment stays staged,
/// concluded failures move to the end. Returns whether anything was written.
pub(crate) fn make_default(
    lock: &SysrootLock,
    store: &Store,
    first: &DeploymentId,
    cancellable: Option<&gio::Cancellable>,
) -> Result<bool> {
    let view = View::of(lock.sysroot());
    let Some(f) = view.index_of(first) else {
        return Ok(false);
    };
    let current: Vec<usize> = view.non_staged().collect();
    let mut rest: Vec<usize> = current.iter().copied().filter(|&i| i != f).collect();
    rest.sort_by_key(|&i| {
        store
            .entry(&view.ids[i])
            .is_some_and(|e| e.concluded_failed())
    });
    let mut order = vec![f];
    order.extend(rest);
    if order == current {
        return Ok(false);
    }
    log::info!("making {first} the default deployment");
    write_order(lock, &view, &order, cancellable)?;
    Ok(true)
}

/// What [`reconcile`] changed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reconciled {
    pub reordered_to: Option<DeploymentId>,
    pub pinned: Vec<DeploymentId>,
    pub released: Vec<DeploymentId>,
    pub removed: Vec<DeploymentId>,
}

/// Bring the sysroot in line with the store; idempotent, and the way every
/// interrupted transition converges:
///
/// 1. a default deployment with a failure verdict gives way to the newest
///    known-good one (a mark-bad interrupted between its store write and the
///    reorder);
/// 2. the pins match the policy: the two newest known-good deployments while a
///    trial is open, none otherwise;
/// 3. released pins are undone and what only they kept is removed: named in
///    the cleanup stamp, dropped from the deployment list, and with
///    [`Removal::Now`] its checkout deleted (see the module docs).
pub(crate) fn reconcile(
    lock: &SysrootLock,
    store: &mut Store,
    opts: &HealthOptions,
    removal: Removal,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Reconciled> {
    let sysroot = lock.sysroot();
    let mut out = Reconciled::default();

    // 1. Never leave a failed deployment as the default.
    let view = View::of(sysroot);
    if let Some(d) = view.default_index() {
        if store
            .entry(&view.ids[d])
            .is_some_and(|e| e.concluded_failed())
        {
            if let Some(&g) = known_good(store, &view, &[d]).first() {
                let to = view.ids[g].clone();
                if make_default(lock, store, &to, cancellable)? {
                    out.reordered_to = Some(to);
                }
            }
        }
    }

    // 2. Record what to pin and what to release, then act on it.
    let view = View::of(sysroot);
    let desired: Vec<DeploymentId> = if opts.keep_known_good && trial_open(store, &view) {
        known_good(store, &view, &[])
            .into_iter()
            .take(2)
            .map(|i| view.ids[i].clone())
            .collect()
    } else {
        Vec::new()
    };
    let mut changed = false;
    for id in &desired {
        let i = view.index_of(id).expect("desired pins exist");
        match store.pins_mut().iter_mut().find(|p| &p.deployment == id) {
            Some(p) if p.releasing => {
                p.releasing = false;
                changed = true;
            }
            Some(_) => {}
            None if view.deployments[i].is_pinned() => {
                log::debug!("{id} is pinned by someone else; leaving its pin alone");
            }
            None => {
                store.pins_mut().push(PinRecord {
                    deployment: id.clone(),
                    releasing: false,
                });
                changed = true;
            }
        }
    }
    for p in store.pins_mut().iter_mut() {
        if !p.releasing && !desired.contains(&p.deployment) {
            p.releasing = true;
            changed = true;
        }
    }
    if changed {
        store.save(sysroot)?;
    }
    let mut touched = false;
    for p in store.pins().to_vec() {
        let Some(i) = view.index_of(&p.deployment) else {
            continue;
        };
        let d = &view.deployments[i];
        if d.is_staged() {
            continue;
        }
        let want = !p.releasing;
        if d.is_pinned() != want {
            sysroot.deployment_set_pinned(d, want).ctx(|| {
                format!(
                    "{} {}",
                    if want { "pinning" } else { "unpinning" },
                    p.deployment
                )
            })?;
            touched = true;
            if want {
                log::info!("pinned {} while a deployment is on trial", p.deployment);
                out.pinned.push(p.deployment.clone());
            } else {
                log::info!("released stagehand's pin on {}", p.deployment);
                out.released.push(p.deployment.clone());
            }
        }
    }
    if touched {
        sysroot
            .load(cancellable)
            .ctx(|| "reloading sysroot".into())?;
    }

    // 3. Remove what only a released pin kept, then forget the records.
    if store.pins().iter().any(|p| p.releasing) {
        let view = View::of(sysroot);
        let keep_good: Vec<usize> = known_good(store, &view, &[]).into_iter().take(2).collect();
        let releasing: Vec<DeploymentId> = store
            .pins()
            .iter()
            .filter(|p| p.releasing)
            .map(|p| p.deployment.clone())
            .collect();
        let drop: Vec<usize> = view
            .non_staged()
            .filter(|&i| {
                releasing.contains(&view.ids[i])
                    && !keep_good.contains(&i)
                    && Some(i) != view.booted
                    && Some(i) != view.default_index()
                    && !view.deployments[i].is_pinned()
            })
            .collect();
        if !drop.is_empty() {
            let order: Vec<usize> = view.non_staged().filter(|i| !drop.contains(i)).collect();
            for &i in &drop {
                log::info!(
                    "removing {}: only stagehand's released pin kept it",
                    view.ids[i]
                );
                out.removed.push(view.ids[i].clone());
            }
            write_order(lock, &view, &order, cancellable)?;
        }
        // Also when nothing was dropped just now: an earlier run may have
        // been interrupted after its drop, before its checkout was gone (the
        // `releasing` records are forgotten only after this).
        if removal == Removal::Now {
            if let Err(e) = sysroot.prepare_cleanup(cancellable) {
                log::warn!(
                    "removing dropped deployment directories: {e}; the next cleanup finishes it"
                );
            }
        }
        store.pins_mut().retain(|p| !p.releasing);
        store.save(sysroot)?;
    }
    Ok(out)
}
