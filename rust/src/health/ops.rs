//! The transitions. Each changes the store with one atomic write before it
//! touches the deployment list (reorder, pins), and everything after that
//! write is redone by [`retention::reconcile`] at the next operation, so an
//! interruption at any system call converges:
//!
//! | transition | store write | then |
//! |---|---|---|
//! | staged / deployed | `pending` (before libostree writes), then the entry `U F -` | pins |
//! | booted (in [`assess`] and [`mark_good`]) | `U` cleared, attempts + 1, once per boot | |
//! | mark good | `R` set on the booted one, cleared on the others, `F` cleared | nothing: the pins are released later by [`super::finish_retention`] |
//! | mark bad | `F` + reason, commit denylisted, rollback recorded | new default, pins released |
//! | assess, fallback | each deployment that did not boot: as mark bad | booted one made default |
//!
//! With a single atomic write, "set Recent, clear Recent elsewhere, clear
//! Failed" land together: the `N Y Y` state seed 000 warns about (power lost
//! between setting Recent and clearing Failed) cannot be produced by stagehand.
//! It is still read correctly (as good) and repaired, for files written by
//! other tools or versions.

use serde::Serialize;

use super::model::{Entry, Pending, State, Trigger};
use super::retention::{
    known_good, make_default, pending_in, reconcile, set_trigger, trial_open, Housekeeping, View,
};
use super::store::{self, now, sanitize_reason, Store};
use super::{boot_token, BootEvidence, HealthOptions};
use crate::error::{Error, GlibResultExt, Result};
use crate::fsutil;
use crate::stage::{StageMethod, StageOutcome};
use crate::sysroot::{DeploymentId, SysrootLock};

/// Count this boot for `id` (once per boot): an untested deployment that was
/// picked for a boot loses Untested. Returns whether anything changed.
pub(super) fn count_boot(store: &mut Store, id: &DeploymentId, token: &str, now: &str) -> bool {
    let e = store.entry_or_insert(id, now);
    if e.counted_boot.as_deref() == Some(token) {
        return false;
    }
    e.attempts = e.attempts.saturating_add(1);
    e.counted_boot = Some(token.to_string());
    if e.state == State::Untested {
        e.state = State::Failed;
        e.changed = now.to_string();
    }
    true
}

fn booted_id(sysroot: &ostree::Sysroot, what: &str) -> Result<DeploymentId> {
    sysroot
        .booted_deployment()
        .map(|d| DeploymentId::of(&d))
        .ok_or_else(|| Error::NotBooted(format!("{what} applies to the booted deployment")))
}

fn denylisted_error(d: &super::Denied) -> Error {
    Error::Denylisted {
        checksum: d.checksum.clone(),
        reason: d.reason.clone(),
        since: d.since.clone(),
    }
}

// ---- mark good -------------------------------------------------------------

/// What [`mark_good`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MarkGoodOutcome {
    /// The booted deployment, now good.
    pub deployment: DeploymentId,
    /// Its state before.
    pub previous: State,
    /// Boots counted into it.
    pub attempts: u32,
    /// Its commit was on the denylist (staged again explicitly) and came off it.
    pub undenylisted: bool,
    /// The trial's pins are still held: retention housekeeping (releasing
    /// them and removing the deployment only they kept) is pending, for
    /// [`crate::autocleanup`] / [`super::finish_retention`], or the next
    /// staging. mark-good itself never releases a pin or removes a
    /// deployment; what the housekeeping released and removed is reported
    /// by it: [`crate::CleanupReport::released_pins`] and
    /// `deployments_removed`, or [`super::RetentionOutcome`].
    pub retention_pending: bool,
    /// Entries whose `N Y Y` flags were repaired by this write.
    pub repaired: Vec<DeploymentId>,
}

/// Mark the booted deployment good: Recent set on it and cleared on every
/// other one, Failed (and Untested) cleared — one atomic store write, the
/// only durable change (two fsyncs).
///
/// The trial's pins are *not* released here: that is housekeeping (two
/// origin rewrites and a deployment-list write, tens of milliseconds) that
/// protects nothing, so it is left to [`super::finish_retention`], which
/// [`crate::autocleanup`] runs after mark-good. `retention_pending` in the
/// result says so, and the trigger file [`super::RETENTION_TRIGGER`] lets
/// `stagehand-autocleanup.service` start. If the default deployment has a
/// failure verdict, it still gives way to the newest known-good one here.
///
/// Idempotent. A deployment with a failure verdict whose commit is still
/// denylisted is refused with [`Error::Denylisted`]: remove it from the
/// denylist first to overrule the verdict.
pub fn mark_good(
    lock: &SysrootLock,
    opts: &HealthOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<MarkGoodOutcome> {
    let sysroot = lock.sysroot();
    let id = booted_id(sysroot, "mark-good")?;
    let mut store = Store::load(sysroot)?;
    let repaired = store.repaired().to_vec();
    let previous = store.state_of(&id);
    if store.entry(&id).is_some_and(|e| e.concluded_failed()) {
        if let Some(d) = store.denied(&id.checksum) {
            return Err(denylisted_error(d));
        }
    }
    let now = now();
    let token = boot_token()?;
    count_boot(&mut store, &id, &token, &now);
    for e in store.entries_mut() {
        if e.deployment != id && e.state == State::Good {
            e.state = State::GoodFallback;
            e.changed = now.clone();
        }
    }
    let e = store.entry_or_insert(&id, &now);
    if e.state != State::Good || e.reason.is_some() {
        e.state = State::Good;
        e.reason = None;
        e.changed = now.clone();
    }
    let attempts = e.attempts;
    let undenylisted = store.undeny(&id.checksum).is_some();
    if undenylisted {
        log::info!(
            "{} proved good: commit {} is off the denylist",
            id,
            id.checksum
        );
    }
    store.save(sysroot)?;
    log::info!("marked {id} good");
    // The verdict is durable; releasing the trial's pins is housekeeping.
    reconcile(lock, &mut store, opts, Housekeeping::Defer, cancellable)?;
    let retention_pending = pending_in(&store, &View::of(sysroot));
    if retention_pending {
        set_trigger(sysroot);
    }
    Ok(MarkGoodOutcome {
        deployment: id,
        previous,
        attempts,
        undenylisted,
        retention_pending,
        repaired,
    })
}

// ---- mark bad --------------------------------------------------------------

/// What [`mark_bad`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MarkBadOutcome {
    /// The deployment marked failed.
    pub deployment: DeploymentId,
    /// The reason on record.
    pub reason: String,
    /// The commit now on the denylist.
    pub denylisted: String,
    /// It had been marked bad before: only the deployment order was checked.
    pub already_failed: bool,
    /// It was the staged deployment, and was removed.
    pub unstaged: bool,
    /// The known-good deployment rolled back to, when the failed one was the
    /// default or the booted one. While another deployment is staged,
    /// libostree 2022.7 cannot write some orders (moving the last deployment
    /// to the front): then `default` is not this one yet. The staged
    /// deployment boots next either way, and the order is made when it is
    /// finalized (`record_finalized`) or by the next `assess` (the
    /// known-good deployment survives finalization when it is pinned, as
    /// `keep_known_good` does during a trial).
    pub rolled_back_to: Option<DeploymentId>,
    /// The default deployment now (first in the boot menu).
    pub default: Option<DeploymentId>,
    /// Another deployment is staged and stays staged: it becomes the default
    /// when it is finalized at shutdown (unstage it to boot `default`).
    pub staged: Option<DeploymentId>,
    /// The running system is the failed deployment and the next boot is
    /// another one (the default, or the staged deployment, which boots
    /// first): reboot to leave it.
    pub reboot_needed: bool,
    /// Deployments removed from the deployment list because only a released
    /// pin kept them (for example a pinned known-good deployment marked bad
    /// during a trial). Named in the cleanup stamp; their checkouts and
    /// objects go with the next cleanup.
    pub removed: Vec<DeploymentId>,
}

/// Mark a deployment bad: the booted one, or `target`.
///
/// One atomic store write sets Failed with `reason`, puts its commit on the
/// denylist and records the rollback; then the newest known-good deployment
/// becomes the default (the deployment order is rewritten with libostree; a
/// staged deployment stays staged). When `target` is the staged deployment it
/// is unstaged instead.
///
/// A deployment that only a released pin kept (a pinned known-good one
/// marked bad during a trial) is removed from the deployment list and named
/// in the cleanup stamp; its checkout is left to the cleanup, since mark-bad
/// may run early at boot.
///
/// Refused with [`Error::NoKnownGood`], changing nothing, when the failed
/// deployment is the default or the booted one and no other deployment is
/// known good: stagehand never rolls into an untested or failed deployment.
/// Idempotent: marking a failed deployment bad again only redoes the order.
pub fn mark_bad(
    lock: &SysrootLock,
    target: Option<&DeploymentId>,
    reason: &str,
    opts: &HealthOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<MarkBadOutcome> {
    let sysroot = lock.sysroot();
    let id = match target {
        Some(t) => {
            t.require(sysroot)?;
            t.clone()
        }
        None => booted_id(sysroot, "mark-bad without --deployment")?,
    };
    let mut store = Store::load(sysroot)?;
    let view = View::of(sysroot);
    let i = view.index_of(&id).expect("required above");
    let reason = sanitize_reason(reason, "marked bad");
    let is_staged = Some(i) == view.staged;
    let is_booted = Some(i) == view.booted;
    let needs_rollback = !is_staged && (Some(i) == view.default_index() || is_booted);
    let rollback_to = if needs_rollback {
        let good: Vec<usize> = known_good(&store, &view, &[i])
            .into_iter()
            .filter(|&g| view.ids[g].checksum != id.checksum)
            .collect();
        match good.first() {
            Some(&g) => Some(view.ids[g].clone()),
            None => {
                return Err(Error::NoKnownGood(format!(
                    "{id} is the {} deployment and no other deployment is known good (the others \
                     are untested, failed or of a denylisted commit); refusing to make a failed \
                     or untested deployment the default. Nothing was changed",
                    if is_booted { "booted" } else { "default" }
                )))
            }
        }
    } else {
        None
    };
    let already_failed = store.entry(&id).is_some_and(|e| e.concluded_failed())
        && store.denied(&id.checksum).is_some();
    let reason = if already_failed {
        store
            .entry(&id)
            .and_then(|e| e.reason.clone())
            .unwrap_or(reason)
    } else {
        let now = now();
        let e = store.entry_or_insert(&id, &now);
        e.state = State::Failed;
        e.reason = Some(reason.clone());
        e.changed = now;
        store.deny(&id.checksum, &reason, Some(&id));
        if let Some(to) = &rollback_to {
            store.record_rollback(&id, to, &reason, Trigger::MarkBad);
        }
        store.save(sysroot)?;
        log::warn!(
            "marked {id} bad: {reason}; commit {} denylisted",
            id.checksum
        );
        reason
    };

    let mut unstaged = false;
    if is_staged {
        crate::stage::unstage(lock, cancellable)?;
        unstaged = true;
        store = Store::load(sysroot)?;
    }
    if let Some(to) = &rollback_to {
        if make_default(lock, &store, to, cancellable)? {
            log::warn!("rolled back from {id} to {to}");
        }
    }
    // Possibly early at boot (a failing health check): only the stamp.
    let rec = reconcile(lock, &mut store, opts, Housekeeping::Release, cancellable)?;

    let view = View::of(sysroot);
    let booted_failed = view.booted.is_some_and(|b| {
        store
            .entry(&view.ids[b])
            .is_some_and(|e| e.concluded_failed())
    });
    Ok(MarkBadOutcome {
        denylisted: id.checksum.clone(),
        deployment: id,
        reason,
        already_failed,
        unstaged,
        rolled_back_to: rollback_to,
        default: view.default_index().map(|d| view.ids[d].clone()),
        staged: view.staged.map(|s| view.ids[s].clone()),
        // Leaving the failed deployment takes a reboot when the next boot is
        // another one: the default, or the staged deployment (which boots
        // first whatever the order; libostree 2022.7 may not even have
        // written the rollback's order while it is staged, see
        // `write_order`).
        reboot_needed: booted_failed
            && (view.booted != view.default_index() || view.staged.is_some()),
        removed: rec.removed,
    })
}

/// A verdict on the booted deployment that an interrupted run left
/// unfinished: see [`unfinished_verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedVerdict {
    /// The booted deployment, concluded failed (with a verdict, its commit
    /// denylisted).
    pub deployment: DeploymentId,
    /// It is still the default deployment: the rollback was not made. When
    /// false, only the housekeeping that follows a verdict (releasing the
    /// trial's pins) is missing.
    pub rollback: bool,
    /// The running system is owed a reboot into the rollback: the rollback is
    /// still to make, or this boot started the failed deployment as the
    /// default and boot assessment made the rollback (a verdict interrupted
    /// before its rollback, then a reboot). A person who picks a failed
    /// entry in the boot menu is owed nothing.
    pub reboot_owed: bool,
}

/// The booted deployment's verdict, if a mark-bad (or a missed deadline)
/// made it durable and was then interrupted before finishing: the failed
/// deployment is still the default (the next boot would boot it again), or
/// was this boot's default until boot assessment rolled it back (the reboot
/// into the rollback is still owed), or the pins stagehand placed for the
/// trial are still held although no deployment is on trial. Running [`mark_bad`] on it again finishes it
/// (it is idempotent).
pub fn unfinished_verdict(sysroot: &ostree::Sysroot, store: &Store) -> Option<UnfinishedVerdict> {
    let view = View::of(sysroot);
    let b = view.booted?;
    let id = &view.ids[b];
    let failed = store.entry(id).is_some_and(|e| e.concluded_failed())
        && store.denied(&id.checksum).is_some();
    if !failed {
        return None;
    }
    let rollback = view.default_index() == Some(b);
    // The note counts for the verdict it was written for: after a reset and
    // a new verdict (`changed` differs) it is stale.
    let noted = super::reboot_owed().is_some_and(|(d, changed)| {
        &d == id && store.entry(id).is_some_and(|e| e.changed == changed)
    });
    let reboot_owed = rollback || noted;
    // The verdict's own housekeeping (mark-bad releases the trial's pins at
    // once) is unfinished only if this verdict was the last rollback: pins
    // left by a deferred mark-good are the cleanup's (retention::pending_in),
    // and a person who boots an old failed deployment is not an interruption.
    let last_rollback_from_booted = store.last_rollback().is_some_and(|r| &r.from == id);
    let pins_left = last_rollback_from_booted && super::retention::pending_in(store, &view);
    (reboot_owed || pins_left).then(|| UnfinishedVerdict {
        deployment: id.clone(),
        rollback,
        reboot_owed,
    })
}

// ---- assess ----------------------------------------------------------------

/// What boot assessment concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The booted deployment is known good.
    Good,
    /// The booted deployment is on trial: it booted and waits for mark-good.
    OnTrial,
    /// The booted deployment has a failure verdict (picked by hand, or the
    /// last resort).
    BootedFailed,
    /// The bootloader fell back from newer deployments that did not boot:
    /// they are failed and denylisted, the booted one is the default again.
    FellBack,
    /// Newer deployments on trial were passed over by a person's choice:
    /// nothing is marked.
    ManualChoice,
    /// Newer deployments on trial were passed over and the bootloader gave no
    /// evidence why: nothing is marked (a bootloader backend that counts
    /// tries is needed to conclude more).
    Undetermined,
}

/// The structured result of [`assess`].
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The booted deployment.
    pub booted: DeploymentId,
    /// Its health after assessment.
    pub health: State,
    /// Boots counted into it.
    pub attempts: u32,
    /// Whether this call counted the boot (false when it ran before in this boot).
    pub counted: bool,
    /// The conclusion.
    pub outcome: Outcome,
    /// The evidence it was based on.
    pub evidence: BootEvidence,
    /// Deployments ahead of the booted one that are on trial (were, for `fell-back`).
    pub newer: Vec<DeploymentId>,
    /// Deployments this assessment marked failed and denylisted.
    pub failed: Vec<DeploymentId>,
    /// The default deployment now.
    pub default: Option<DeploymentId>,
    /// The booted deployment has a failure verdict, the next boot is another
    /// one (a known-good default, or a staged deployment), and no person
    /// chose the booted one: reboot to leave it.
    pub reboot_needed: bool,
    /// Entries whose `N Y Y` flags were repaired.
    pub repaired: Vec<DeploymentId>,
    /// No trial is open and stagehand still holds pins, or a release an
    /// interrupted run left half done is to be finished: retention
    /// housekeeping is pending, for [`crate::autocleanup`] /
    /// [`super::finish_retention`] (or the next staging).
    pub retention_pending: bool,
    /// One sentence for people.
    pub message: String,
}

/// Assess the boot, early in every boot: count it (the booted deployment
/// loses Untested, its attempts grow — once per boot), and when the booted
/// deployment is older than deployments on trial ahead of it, decide with
/// `evidence` whether they failed to boot.
///
/// Only [`BootEvidence::Fallback`] marks them failed and denylists them (one
/// atomic write with a rollback record) and makes the booted deployment the
/// default again; a manual choice or no evidence marks nothing. Also finishes
/// what an interrupted transition left that matters for the boot (a failed
/// default gives way, a trial gets its pins); releasing pins a trial no
/// longer needs is left to [`super::finish_retention`] (`retention_pending`).
pub fn assess(
    lock: &SysrootLock,
    evidence: &BootEvidence,
    opts: &HealthOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Verdict> {
    let sysroot = lock.sysroot();
    let booted = booted_id(sysroot, "boot assessment")?;
    let mut store = Store::load(sysroot)?;
    let repaired = store.repaired().to_vec();
    let mut dirty = !repaired.is_empty();
    let now = now();
    let token = boot_token()?;
    let counted = count_boot(&mut store, &booted, &token, &now);
    dirty |= counted;

    let view = View::of(sysroot);
    let b = view.index_of(&booted).expect("booted is listed");
    let newer: Vec<DeploymentId> = view
        .non_staged()
        .filter(|&i| i < b)
        .map(|i| view.ids[i].clone())
        .filter(|id| store.entry(id).is_some_and(|e| e.on_trial()))
        .collect();
    let mut failed = Vec::new();
    let outcome = if newer.is_empty() {
        let e = store.entry(&booted).expect("counted above");
        match e.state {
            State::Good | State::GoodFallback => Outcome::Good,
            _ if e.on_trial() => Outcome::OnTrial,
            _ => Outcome::BootedFailed,
        }
    } else {
        match evidence {
            BootEvidence::Fallback { tries } => {
                let reason = sanitize_reason(
                    &format!(
                        "did not boot: the bootloader fell back to {booted}{}",
                        tries
                            .map(|t| format!(" after {t} tries"))
                            .unwrap_or_default()
                    ),
                    "did not boot",
                );
                for id in &newer {
                    let e: &mut Entry = store.entry_or_insert(id, &now);
                    e.state = State::Failed;
                    e.reason = Some(reason.clone());
                    e.changed = now.clone();
                    store.deny(&id.checksum, &reason, Some(id));
                    failed.push(id.clone());
                    log::warn!("{id} {reason}; commit {} denylisted", id.checksum);
                }
                store.record_rollback(&newer[0], &booted, &reason, Trigger::Assess);
                dirty = true;
                Outcome::FellBack
            }
            BootEvidence::ManualChoice => Outcome::ManualChoice,
            BootEvidence::Unknown => {
                log::warn!(
                    "booted {booted}, older than {} on trial, without bootloader evidence of a \
                     fallback: treating it as a choice, marking nothing",
                    newer
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Outcome::Undetermined
            }
        }
    };
    if dirty {
        store.save(sysroot)?;
    }
    if outcome == Outcome::FellBack {
        make_default(lock, &store, &booted, cancellable)?;
    }
    // The booted deployment has a failure verdict and is the default: this
    // boot started it by default (a verdict interrupted before its rollback,
    // then a reboot), and reconcile below makes the rollback. Noted first, so
    // the health deadline still reboots into the rollback once it is made.
    {
        let view = View::of(sysroot);
        let b = view.index_of(&booted).expect("booted is listed");
        let failed = store.entry(&booted).filter(|e| e.concluded_failed());
        if let Some(e) = failed.filter(|_| {
            view.default_index() == Some(b)
                && evidence != &BootEvidence::ManualChoice
                && !known_good(&store, &view, &[b]).is_empty()
        }) {
            // Only ever adds a reboot: a note that cannot be written must
            // not keep the rollback below from being made.
            if let Err(err) = super::note_reboot_owed(&booted, &e.changed) {
                log::warn!("noting that a reboot into the rollback is owed: {err}");
            }
        }
    }
    // Early at boot: pins are set if a trial needs them, never released
    // (that is housekeeping for autocleanup, which runs after assess).
    reconcile(lock, &mut store, opts, Housekeeping::Defer, cancellable)?;
    let retention_pending = pending_in(&store, &View::of(sysroot));
    if retention_pending {
        set_trigger(sysroot);
    }

    let view = View::of(sysroot);
    let default = view.default_index().map(|d| view.ids[d].clone());
    let e = store.entry(&booted).expect("booted has an entry");
    let reboot_needed = e.concluded_failed()
        && (default.as_ref().is_some_and(|d| d != &booted) || view.staged.is_some())
        && evidence != &BootEvidence::ManualChoice;
    let message = match outcome {
        Outcome::Good => format!("{booted} is known good"),
        Outcome::OnTrial => format!("{booted} is on trial (boot {}); mark it good once it is healthy", e.attempts),
        Outcome::BootedFailed => format!(
            "{booted} failed before ({}){}",
            e.reason.as_deref().unwrap_or("no reason"),
            if reboot_needed { "; reboot into the default" } else { "" }
        ),
        Outcome::FellBack => format!(
            "the bootloader fell back to {booted}: {} marked failed and denylisted; {booted} is the default again",
            failed.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        ),
        Outcome::ManualChoice => format!("{booted} was chosen by hand; newer deployments stay on trial"),
        Outcome::Undetermined => format!(
            "{booted} booted instead of newer deployments on trial, without bootloader evidence; nothing marked"
        ),
    };
    Ok(Verdict {
        health: e.state,
        attempts: e.attempts,
        booted,
        counted,
        outcome,
        evidence: evidence.clone(),
        newer,
        failed,
        default,
        reboot_needed,
        repaired,
        retention_pending,
        message,
    })
}

// ---- denylist, reset, read ---------------------------------------------------

/// The health state of a loaded sysroot, read without the lock (status).
pub fn read(sysroot: &ostree::Sysroot) -> Result<Store> {
    Store::read(sysroot)
}

/// The denylist, oldest first.
pub fn denylist(sysroot: &ostree::Sysroot) -> Result<Vec<super::Denied>> {
    Ok(Store::read(sysroot)?.denylist().to_vec())
}

/// Take a commit off the denylist (full checksum or a unique prefix), so it
/// may be staged again. Returns the entry removed.
pub fn denylist_remove(lock: &SysrootLock, checksum: &str) -> Result<super::Denied> {
    if checksum.is_empty() || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidArgument(format!(
            "{checksum:?} is not a commit checksum"
        )));
    }
    let sysroot = lock.sysroot();
    let mut store = Store::load(sysroot)?;
    let want = checksum.to_ascii_lowercase();
    let found: Vec<String> = store
        .denylist()
        .iter()
        .filter(|d| d.checksum.starts_with(&want))
        .map(|d| d.checksum.clone())
        .collect();
    let full = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::InvalidArgument(format!(
                "commit {checksum} is not on the denylist"
            )))
        }
        _ => {
            return Err(Error::InvalidArgument(format!(
                "{checksum} matches {} denylisted commits; give more of the checksum",
                found.len()
            )))
        }
    };
    let removed = store.undeny(&full).expect("found above");
    store.save(sysroot)?;
    log::info!("removed {full} from the denylist");
    Ok(removed)
}

/// What [`reset`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ResetOutcome {
    /// The store path.
    pub path: std::path::PathBuf,
    /// Why the previous store could not be read, if it could not.
    pub previous_error: Option<String>,
    /// Deployment entries and denylisted commits forgotten.
    pub forgotten_entries: usize,
    /// Denylisted commits forgotten.
    pub forgotten_denylist: usize,
    /// Pins stagehand had set and released.
    pub released_pins: Vec<DeploymentId>,
    /// Moved-aside corrupt stores that were deleted.
    pub removed_files: Vec<std::path::PathBuf>,
}

/// Start over with an empty store: for an administrator, after inspecting a
/// corrupt one. Every record, the denylist and the rollback history are
/// forgotten; deployments then read as `good-fallback`. Pins stagehand
/// recorded are released first; when the store is unreadable they cannot be
/// told from a person's pins and are left as they are.
pub fn reset(lock: &SysrootLock, cancellable: Option<&gio::Cancellable>) -> Result<ResetOutcome> {
    let sysroot = lock.sysroot();
    let path = store::store_path(sysroot);
    let mut out = ResetOutcome {
        path: path.clone(),
        previous_error: None,
        forgotten_entries: 0,
        forgotten_denylist: 0,
        released_pins: Vec::new(),
        removed_files: Vec::new(),
    };
    match Store::read(sysroot) {
        Ok(old) => {
            out.forgotten_entries = old.entries().count();
            out.forgotten_denylist = old.denylist().len();
            let view = View::of(sysroot);
            for p in old.pins() {
                if let Some(i) = view.index_of(&p.deployment) {
                    let d = &view.deployments[i];
                    if d.is_pinned() && !d.is_staged() {
                        sysroot
                            .deployment_set_pinned(d, false)
                            .ctx(|| format!("unpinning {}", p.deployment))?;
                        out.released_pins.push(p.deployment.clone());
                    }
                }
            }
            if !out.released_pins.is_empty() {
                sysroot
                    .load(cancellable)
                    .ctx(|| "reloading sysroot".into())?;
            }
        }
        Err(e) => {
            log::warn!(
                "resetting an unreadable health store ({e}); pins stagehand set cannot be told \
                 apart from others and are left alone"
            );
            out.previous_error = Some(e.to_string());
        }
    }
    Store::empty(&path).save(sysroot)?;
    // The verdicts are forgotten, so is a reboot owed for one of them (the
    // note is the booted system's: only a booted sysroot's reset drops it).
    if sysroot.booted_deployment().is_some() {
        super::forget_reboot_owed();
    }
    let dir = path.parent().expect("store path has a directory");
    for q in store::quarantined(dir)? {
        if fsutil::remove_durable(&q)? {
            out.removed_files.push(q);
        }
    }
    log::warn!("health store {} reset", path.display());
    Ok(out)
}

// ---- staging -----------------------------------------------------------------

/// Before staging `checksum`: refuse a denylisted commit (unless allowed),
/// record the staging as pending, pin the known-good deployments. Called by
/// [`crate::stage()`] after its checks, before libostree writes anything.
pub(crate) fn stage_begin(
    lock: &SysrootLock,
    stateroot: &str,
    checksum: &str,
    allow_denylisted: bool,
    opts: &HealthOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    let sysroot = lock.sysroot();
    let mut store = Store::load(sysroot)?;
    if let Some(d) = store.denied(checksum) {
        if !allow_denylisted {
            return Err(denylisted_error(d));
        }
        log::warn!(
            "staging denylisted commit {checksum} as explicitly allowed (failed {}: {})",
            d.since,
            d.reason
        );
    }
    let after_serial = sysroot
        .deployments()
        .iter()
        .filter(|d| d.osname() == stateroot && d.csum() == checksum)
        .map(|d| d.deployserial().max(0) as u32)
        .max();
    store.set_pending(Some(Pending {
        stateroot: stateroot.to_string(),
        checksum: checksum.to_string(),
        after_serial,
        since: now(),
    }));
    store.save(sysroot)?;
    reconcile(lock, &mut store, opts, Housekeeping::Release, cancellable)?;
    Ok(())
}

/// After staging (`outcome` is `None` when it failed): the new deployment's
/// trial starts (`U F -`), the pending record goes, pins follow.
pub(crate) fn stage_end(
    lock: &SysrootLock,
    outcome: Option<&StageOutcome>,
    opts: &HealthOptions,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    let sysroot = lock.sysroot();
    // Loading adopts the pending record: a deployment it produced starts as
    // untested, exactly as after an interruption.
    let mut store = Store::load(sysroot)?;
    if let Some(o) = outcome {
        let new = !o.unchanged || o.method == StageMethod::Staged;
        if new && store.entry(&o.deployment).is_none() {
            store.insert_entry(Entry::new(o.deployment.clone(), State::Untested, &now()));
        }
        if !o.unchanged {
            log::info!("{} is on trial", o.deployment);
        }
    }
    store.save(sysroot)?;
    reconcile(lock, &mut store, opts, Housekeeping::Release, cancellable)?;
    Ok(())
}

/// After the staged deployment was removed: its record goes, and when no
/// trial is left the pins are released.
pub(crate) fn after_unstage(
    lock: &SysrootLock,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    let sysroot = lock.sysroot();
    let mut store = Store::load(sysroot)?;
    store.save(sysroot)?;
    if !trial_open(&store, &View::of(sysroot)) {
        reconcile(
            lock,
            &mut store,
            &HealthOptions::new().keep_known_good(false),
            Housekeeping::Release,
            cancellable,
        )?;
    }
    Ok(())
}
