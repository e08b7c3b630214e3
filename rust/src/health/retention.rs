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
//! instead of leaking a pin — `autocleanup` included, even while a trial is
//! open (it then finishes only the recorded release; see [`owed`], the one
//! predicate behind "retention pending" and [`finish_retention`]).
//!
//! # Housekeeping, off the boot path
//!
//! Releasing is housekeeping: it protects nothing, it only gives space back.
//! It costs two origin-file rewrites and a deployment-list write (a new
//! bootloader configuration, the boot-version swap, `syncfs`): tens of
//! milliseconds, against about one for the verdict itself. So the verdicts
//! that run on the boot path — [`super::assess`] and [`super::mark_good`] —
//! never release ([`Housekeeping::Defer`]): they write the verdict, keep
//! every pin, and leave the release to [`finish_retention`], which
//! `stagehand autocleanup` runs (its unit is ordered after mark-good; see
//! [`RETENTION_TRIGGER`]). Staging, unstaging and mark-bad, which rewrite the
//! deployment list anyway, release at once ([`Housekeeping::Release`]).
//!
//! Deferring loses nothing: until it runs, the pinned deployments are only
//! one more known-good deployment than needed, and the pin records in the
//! store say which pins are stagehand's. If it never runs, the next staging
//! releases them (it computes the pins afresh and releases the ones it no
//! longer wants), and a pin is never left on a deployment stagehand did not
//! record.
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
//! deployment nobody will prune after. Its checkout and its kernel in
//! `/boot` go with that cleanup too (libostree's full cleanup), which runs
//! in the background with idle I/O priority and never delays boot; from
//! `autocleanup` that is the same run.

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

/// Whether [`reconcile`] releases pins the policy no longer wants (and
/// removes what only they kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Housekeeping {
    /// Leave them pinned and recorded: for the verdicts on the boot path
    /// (assess, mark-good), where a release would cost tens of milliseconds
    /// for space only; [`finish_retention`] does it later.
    Defer,
    /// Release them now: for operations that write the deployment list
    /// anyway (staging, unstaging, mark-bad) and for [`finish_retention`]
    /// when no trial is open.
    Release,
    /// Finish only the release an interrupted run recorded (`releasing`
    /// records): no new pins, no new releases, whatever the policy. For
    /// [`finish_retention`] while a trial is open ([`Owed::InterruptedRelease`]).
    Complete,
}

/// File whose presence tells systemd that retention housekeeping is
/// pending (`ConditionPathExists=|` of `stagehand-autocleanup.service`),
/// relative to the sysroot path (`/sysroot/ostree/stagehand/retention-pending`
/// on a booted system). Only a trigger: the health store is the
/// truth ([`retention_pending`]). It is created and removed without fsync —
/// lost in a power cut, the next staging still releases the pins; left
/// behind, the cleanup runs once and finds nothing to do.
pub const RETENTION_TRIGGER: &str = "ostree/stagehand/retention-pending";

fn trigger_path(sysroot: &ostree::Sysroot) -> std::path::PathBuf {
    super::store::store_path(sysroot)
        .parent()
        .expect("the store has a directory")
        .join("retention-pending")
}

/// What retention housekeeping is owed: the one predicate behind
/// [`pending_in`] (status, the verdicts' `retention_pending`, the trigger)
/// and [`finish_retention`] (what `autocleanup` does), so that "retention
/// pending" always means "the next `autocleanup` has something to do".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owed {
    /// No trial is open and stagehand still holds pins (a verdict on the
    /// boot path deferred their release): release them all.
    TrialOver,
    /// A trial is open and an interrupted release (staging, mark-bad of a
    /// pinned deployment during a trial) left `releasing` records: finish
    /// that release, keep the trial's pins. The decision is durable (the
    /// records say which pins the policy no longer wanted), so finishing it
    /// needs no policy: the pins not marked `releasing` stay as they are.
    InterruptedRelease,
}

/// Which housekeeping is owed for this store and these deployments, if any.
/// A staging's `pending` record counts as an open trial: without the lock
/// (status) it may be a staging that is running; with it,
/// [`Store::load`] has adopted it first.
pub(crate) fn owed(store: &Store, view: &View) -> Option<Owed> {
    if store.pins().is_empty() {
        None
    } else if !trial_open(store, view) {
        Some(Owed::TrialOver)
    } else if store.pins().iter().any(|p| p.releasing) {
        Some(Owed::InterruptedRelease)
    } else {
        None
    }
}

/// Whether retention housekeeping is pending ([`owed`]): no trial is open
/// and stagehand still holds pins, or an interrupted release left
/// `releasing` records. Exactly when [`finish_retention`] acts.
pub(crate) fn pending_in(store: &Store, view: &View) -> bool {
    owed(store, view).is_some()
}

/// [`pending_in`] for a store read from `sysroot` (status).
pub(crate) fn pending_in_sysroot(store: &Store, sysroot: &ostree::Sysroot) -> bool {
    pending_in(store, &View::of(sysroot))
}

/// Whether retention housekeeping is pending: one read of the health store,
/// no lock. [`finish_retention`] (run by [`crate::autocleanup`]) does it.
pub fn retention_pending(sysroot: &ostree::Sysroot) -> Result<bool> {
    let store = Store::read(sysroot)?;
    Ok(pending_in(&store, &View::of(sysroot)))
}

/// Set the trigger for systemd (see [`RETENTION_TRIGGER`]): an empty file,
/// no fsync. Failing to create it only delays the housekeeping.
pub(crate) fn set_trigger(sysroot: &ostree::Sysroot) {
    let p = trigger_path(sysroot);
    if let Err(e) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
    {
        log::warn!(
            "creating {}: {e}; the pins are released at the next staging",
            p.display()
        );
    }
}

fn clear_trigger(sysroot: &ostree::Sysroot) {
    let p = trigger_path(sysroot);
    match std::fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("removing {}: {e}", p.display()),
    }
}

/// What [`finish_retention`] did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RetentionOutcome {
    /// Pins stagehand released because no trial needs them any more.
    pub released_pins: Vec<DeploymentId>,
    /// Deployments removed from the deployment list because only a released
    /// pin kept them: named in the cleanup stamp first, so the cleanup that
    /// follows deletes their checkouts and prunes their objects.
    pub removed: Vec<DeploymentId>,
}

/// The retention housekeeping the boot-path verdicts defer, and the end of
/// a release an interruption left half done (`owed`): when no trial is
/// open, release the pins stagehand recorded and remove from the deployment
/// list what only they kept (named in the cleanup stamp first); while a
/// trial is open, finish only the release an interrupted run recorded
/// (`releasing`), keeping the trial's pins. Idempotent and crash-safe (the
/// release protocol of `reconcile`); does nothing when nothing is
/// pending, which is exactly when `status` says no retention is pending.
/// [`crate::run_cleanup`] calls it first, so the same cleanup prunes what
/// it removed.
///
/// A corrupt cleanup stamp (docs/cleanup.md) is the administrator's to
/// inspect, and removing a deployment would have to replace it; so the
/// pins are still released (that needs no stamp), but a deployment only
/// they kept stays listed, its record kept as `releasing` (still pending),
/// and the result is [`crate::Error::Corrupt`] naming the stamp and what to
/// do. `stagehand autocleanup --force` finishes it.
pub fn finish_retention(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<RetentionOutcome> {
    finish_retention_with(lock, false, cancellable)
}

/// [`finish_retention`]; with `replace_corrupt_stamp` (a forced cleanup) a
/// corrupt stamp is replaced like any writer replaces it, and the removal
/// goes ahead.
pub(crate) fn finish_retention_with(
    lock: &SysrootLock,
    replace_corrupt_stamp: bool,
    cancellable: Option<&gio::Cancellable>,
) -> Result<RetentionOutcome> {
    let sysroot = lock.sysroot();
    let view = View::of(sysroot);
    let mut out = RetentionOutcome::default();
    // A read first: the cleanup that calls this must not move a corrupt
    // store aside (that is for the health operations, which report it). A
    // `pending` staging record needs the load to be adopted (we hold the
    // lock: that staging is over), which may end the trial it opened.
    let peek = Store::read(sysroot)?;
    if peek.pending().is_none() && owed(&peek, &view).is_none() {
        clear_trigger(sysroot);
        return Ok(out);
    }
    let mut store = Store::load(sysroot)?;
    let housekeeping = match owed(&store, &view) {
        None => {
            clear_trigger(sysroot);
            return Ok(out);
        }
        Some(Owed::TrialOver) => Housekeeping::Release,
        Some(Owed::InterruptedRelease) => Housekeeping::Complete,
    };
    let stamp_error = if replace_corrupt_stamp {
        None
    } else {
        crate::cleanup::pending_cleanup(sysroot).err()
    };
    // No trial is open (or the release to finish was decided already), so
    // the policy wants no new pins whatever the configuration says.
    let rec = reconcile_with(
        lock,
        &mut store,
        &HealthOptions::new().keep_known_good(false),
        housekeeping,
        stamp_error.is_some(),
        cancellable,
    )?;
    out.released_pins = rec.released;
    out.removed = rec.removed;
    if let (Some(e), false) = (stamp_error, rec.held.is_empty()) {
        // Still pending: the trigger stays (the stamp starts the unit too).
        let names: Vec<String> = rec.held.iter().map(|d| d.to_string()).collect();
        let released: Vec<String> = out.released_pins.iter().map(|d| d.to_string()).collect();
        let path = crate::cleanup::stamp_path(sysroot);
        return Err(crate::error::Error::Corrupt {
            path,
            detail: format!(
                "{}; retention housekeeping {}, but {} stays listed until the stamp is \
                 cleared, since removing it would replace the stamp: inspect the stamp, then \
                 run `stagehand autocleanup --force`",
                match e {
                    crate::error::Error::Corrupt { detail, .. } => detail,
                    other => other.to_string(),
                },
                if released.is_empty() {
                    "released no pin".to_string()
                } else {
                    format!("released stagehand's pins on {}", released.join(", "))
                },
                names.join(", ")
            ),
        });
    }
    clear_trigger(sysroot);
    Ok(out)
}

/// Write the deployment list: the staged deployment (if any) first, then
/// `order`. A non-staged deployment left out of `order` is dropped; it is
/// named in the cleanup stamp first, durably, so its objects are pruned by
/// the next cleanup whatever happens after. Returns whether libostree wrote
/// it (see below for when it does not).
fn write_order(
    lock: &SysrootLock,
    view: &View,
    order: &[usize],
    cancellable: Option<&gio::Cancellable>,
) -> Result<bool> {
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
    // libostree 2022.7 takes some new orders for a no-op while a deployment
    // is staged: its no-op check compares the new list, staged deployment
    // filtered out, with the current one, staged deployment first, one
    // position off. Moving the last deployment to the front (the rollback
    // of two deployments) is then silently not written. The staged
    // deployment boots next whatever the order; the order is made again
    // once it is finalized ([`order_after_finalization`], `assess`).
    let written = View::of(sysroot);
    let now: Vec<&DeploymentId> = written.non_staged().map(|i| &written.ids[i]).collect();
    let wanted: Vec<&DeploymentId> = order.iter().map(|&i| &view.ids[i]).collect();
    let before: Vec<&DeploymentId> = view.non_staged().map(|i| &view.ids[i]).collect();
    if now != wanted {
        // Only the no-op: nothing written at all. Anything else is not
        // that bug and is an error.
        if let (Some(staged), true) = (view.staged, now == before) {
            log::warn!(
                "libostree did not write the deployment order {} while {} is staged \
                 (ostree 2022.7 takes it for a no-op); it is made once that deployment is \
                 finalized",
                names.join(", "),
                view.ids[staged]
            );
            return Ok(false);
        }
        return Err(crate::Error::Failed {
            context: format!("writing the deployment order {}", names.join(", ")),
            source: glib::Error::new(
                gio::IOErrorEnum::Failed,
                &format!(
                    "libostree reported success, but the sysroot lists {}",
                    now.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        });
    }
    Ok(true)
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
    write_order(lock, &view, &order, cancellable)
}

/// Whether a deployment with a failure verdict is listed ahead of a
/// known-good one: it would be the fallback (the entry after the default)
/// before a deployment known to boot.
pub(crate) fn failure_ahead_of_known_good(store: &Store, view: &View) -> bool {
    let mut failed_seen = false;
    for i in view.non_staged() {
        if store
            .entry(&view.ids[i])
            .is_some_and(|e| e.concluded_failed())
        {
            failed_seen = true;
        } else if failed_seen && is_known_good(store, view, i) {
            return true;
        }
    }
    false
}

/// After `ostree admin finalize-staged`: a failure verdict given while the
/// deployment was staged may have left the failed deployment right behind
/// the new default (libostree could not reorder then, see `write_order`),
/// where it would be the fallback entry of the update's trial. Put
/// failures behind the known-good deployments, keeping the default.
/// Returns whether the order was written.
pub(crate) fn order_after_finalization(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<bool> {
    let sysroot = lock.sysroot();
    let store = Store::read(sysroot)?;
    let view = View::of(sysroot);
    if view.staged.is_some() {
        return Ok(false);
    }
    put_failures_last(lock, &store, &view, cancellable)
}

/// When a deployment with a failure verdict is listed ahead of a known-good
/// one, write the order again with failures last, the default unchanged.
/// Returns whether the order was written.
fn put_failures_last(
    lock: &SysrootLock,
    store: &Store,
    view: &View,
    cancellable: Option<&gio::Cancellable>,
) -> Result<bool> {
    let Some(d) = view.default_index() else {
        return Ok(false);
    };
    if !failure_ahead_of_known_good(store, view) {
        return Ok(false);
    }
    let written = make_default(lock, store, &view.ids[d].clone(), cancellable)?;
    if written {
        log::info!("moved deployments with a failure verdict behind the known-good ones");
    }
    Ok(written)
}

/// What [`reconcile`] changed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reconciled {
    pub reordered_to: Option<DeploymentId>,
    pub pinned: Vec<DeploymentId>,
    pub released: Vec<DeploymentId>,
    pub removed: Vec<DeploymentId>,
    /// Deployments only a released pin kept, left listed because the
    /// caller could not name them in the cleanup stamp (`hold_drops`).
    pub held: Vec<DeploymentId>,
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
///    the cleanup stamp and dropped from the deployment list; its checkout
///    goes with the next cleanup (see the module docs).
///
/// With [`Housekeeping::Defer`] steps 2 and 3 only ever add pins: pins the
/// policy no longer wants stay, recorded, for [`finish_retention`] (and
/// pins an interrupted release left `releasing` stay as they are). With
/// [`Housekeeping::Complete`] the wanted pins are the recorded ones not
/// `releasing`: only the recorded release is finished.
pub(crate) fn reconcile(
    lock: &SysrootLock,
    store: &mut Store,
    opts: &HealthOptions,
    housekeeping: Housekeeping,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Reconciled> {
    reconcile_with(lock, store, opts, housekeeping, false, cancellable)
}

/// [`reconcile`]; with `hold_drops`, step 3 removes nothing from the
/// deployment list (removing needs the cleanup stamp, which the caller
/// must not replace): the pins are released all the same, and the records
/// of what would have been removed stay `releasing`, so the release is
/// still pending and finishes at the next run that may write the stamp.
pub(crate) fn reconcile_with(
    lock: &SysrootLock,
    store: &mut Store,
    opts: &HealthOptions,
    housekeeping: Housekeeping,
    hold_drops: bool,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Reconciled> {
    let release = housekeeping != Housekeeping::Defer;
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
        } else {
            // Nor as the fallback ahead of a known-good deployment (a verdict
            // given while an update was staged, see `write_order`).
            put_failures_last(lock, store, &view, cancellable)?;
        }
    }

    // 2. Record what to pin and what to release, then act on it.
    let view = View::of(sysroot);
    let desired: Vec<DeploymentId> = if housekeeping == Housekeeping::Complete {
        store
            .pins()
            .iter()
            .filter(|p| !p.releasing && view.index_of(&p.deployment).is_some())
            .map(|p| p.deployment.clone())
            .collect()
    } else if opts.keep_known_good && trial_open(store, &view) {
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
        if release && !p.releasing && !desired.contains(&p.deployment) {
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
        // Deferred: set pins, never take one off.
        if d.is_pinned() != want && (release || want) {
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
    if release && store.pins().iter().any(|p| p.releasing) {
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
        let held: Vec<DeploymentId> = if hold_drops {
            drop.iter().map(|&i| view.ids[i].clone()).collect()
        } else {
            Vec::new()
        };
        if !held.is_empty() {
            for d in &held {
                log::warn!(
                    "{d} stays listed: only stagehand's released pin kept it, but the cleanup \
                     stamp that must name it first is corrupt"
                );
            }
            out.held = held.clone();
        } else if !drop.is_empty() {
            let order: Vec<usize> = view.non_staged().filter(|i| !drop.contains(i)).collect();
            for &i in &drop {
                log::info!(
                    "removing {}: only stagehand's released pin kept it",
                    view.ids[i]
                );
                out.removed.push(view.ids[i].clone());
            }
            // A shorter list is never taken for a no-op.
            if !write_order(lock, &view, &order, cancellable)? {
                out.removed.clear();
            }
        }
        store
            .pins_mut()
            .retain(|p| !p.releasing || held.contains(&p.deployment));
        store.save(sysroot)?;
    }
    Ok(out)
}
