//! Boot assessment end to end: the health transitions ([`crate::health`])
//! wired to the configured bootloader counter ([`crate::bootloader`]) and the
//! configuration file ([`crate::Config`]).
//!
//! The systemd units (`systemd/stagehand-*.service.in`) run these steps:
//!
//! | when | step | health | counter |
//! |---|---|---|---|
//! | shutdown, after `ostree admin finalize-staged` | [`BootAssessment::arm_finalized`] | — | armed with `tries`, only if the finalized deployment is the default and on trial |
//! | early in every boot | [`BootAssessment::assess`] | [`health::assess`] with the counter's evidence | disarmed once the default is not on trial (after a fallback) |
//! | after `boot-complete.target` | [`BootAssessment::mark_good`] | [`health::mark_good`] | blessed; counters of deployments no longer on trial disarmed |
//! | deadline missed, or a check failed | [`BootAssessment::deadline`], [`BootAssessment::mark_bad`] | [`health::mark_bad`] | disarmed, so the rolled-back default boots |
//!
//! The health store is always written first and the counter second: the
//! store holds the verdict, and a counter left armed by an interruption is
//! settled by the next step (every one of them ends with the same
//! "settle" rule: a counter that runs for a deployment no longer on trial is
//! disarmed). The other order could let GRUB fall back into a deployment
//! whose verdict was lost.
//!
//! Why disarming matters for "no loops": GRUB's counting snippet boots the
//! *fallback entry* (entry 1) while `boot_counter` is exhausted. After a
//! rollback the failed deployment *is* entry 1, so a counter left at `-1`
//! would boot it again at every boot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::bootloader::{
    self, Backend, BootCounter, CounterEvidence, CounterState, Selected, Target,
};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::health::{self, BootEvidence, HealthOptions, Store};
use crate::sysroot::{DeploymentId, SysrootLock};

impl From<CounterEvidence> for BootEvidence {
    /// The one-to-one mapping of docs/boot-assessment.md: a fallback is a
    /// fallback, a manual choice a manual choice, and a boot on trial or a
    /// silent counter says nothing about deployments that did not boot.
    fn from(e: CounterEvidence) -> BootEvidence {
        match e {
            CounterEvidence::BootloaderFallback { tries } => BootEvidence::Fallback { tries },
            CounterEvidence::ManualChoice => BootEvidence::ManualChoice,
            CounterEvidence::OnTrial { .. } | CounterEvidence::NoEvidence => BootEvidence::Unknown,
        }
    }
}

/// The configuration and the boot counter it selects, for one sysroot.
#[derive(Debug)]
pub struct BootAssessment {
    config: Config,
    selected: Selected,
}

/// What [`BootAssessment::assess`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Assessed {
    /// The health verdict.
    #[serde(flatten)]
    pub verdict: health::Verdict,
    /// The counter backend.
    pub backend: Backend,
    /// What the counter said (`None` when the evidence was given explicitly,
    /// or the counter could not be read: see `counter_error`).
    pub counter_evidence: Option<CounterEvidence>,
    /// Why the counter could not be read; assessment went on without its
    /// evidence (a garbage `boot_counter` makes GRUB fall back anyway).
    pub counter_error: Option<String>,
    /// Counters stopped because their deployment is no longer on trial.
    pub disarmed: Vec<DeploymentId>,
}

/// What [`BootAssessment::mark_good`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MarkedGood {
    /// The health transition.
    #[serde(flatten)]
    pub outcome: health::MarkGoodOutcome,
    /// The counter backend.
    pub backend: Backend,
    /// Whether the counter was blessed (false: nothing was armed for the
    /// booted deployment, or it is not the one the counter counts).
    pub blessed: bool,
    /// Counters stopped because their deployment is no longer on trial.
    pub disarmed: Vec<DeploymentId>,
}

/// What [`BootAssessment::mark_bad`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MarkedBad {
    /// The health transition.
    #[serde(flatten)]
    pub outcome: health::MarkBadOutcome,
    /// The counter backend.
    pub backend: Backend,
    /// Counters stopped: the failed deployment's, or the global one once the
    /// default is a known-good deployment.
    pub disarmed: Vec<DeploymentId>,
    /// `reboot_needed` and `auto-reboot = true`: the caller should reboot
    /// into the rollback now.
    pub reboot: bool,
}

/// What [`BootAssessment::arm_finalized`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "armed", rename_all = "kebab-case")]
pub enum Armed {
    /// The counter now gives the deployment `tries` boots.
    Armed {
        /// The finalized deployment, now the default.
        deployment: DeploymentId,
        /// The backend.
        backend: Backend,
        /// Tries given.
        tries: u32,
    },
    /// Nothing armed, and why (not the default, not on trial, no counter,
    /// a backend that cannot be armed here).
    Skipped {
        /// The finalized deployment.
        deployment: DeploymentId,
        /// Why.
        reason: String,
    },
}

/// What [`BootAssessment::deadline`] concluded.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "deadline", rename_all = "kebab-case")]
pub enum Deadline {
    /// The booted deployment is not on trial (good, or already judged):
    /// nothing to do.
    NotOnTrial {
        /// The booted deployment.
        booted: DeploymentId,
    },
    /// The booted deployment was still on trial at the deadline: marked bad.
    Missed(Box<MarkedBad>),
}

/// Seconds since boot (`CLOCK_BOOTTIME`, which counts suspend too, as the
/// first field of `/proc/uptime` does).
pub fn since_boot() -> Result<Duration> {
    let text = std::fs::read_to_string("/proc/uptime")
        .map_err(|e| Error::io("reading", Path::new("/proc/uptime"), e))?;
    let secs: f64 = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Corrupt {
            path: PathBuf::from("/proc/uptime"),
            detail: format!("unexpected content {text:?}"),
        })?;
    Ok(Duration::from_secs_f64(secs.max(0.0)))
}

/// How long to wait from `now` (time since boot) until `deadline` (time
/// since boot); zero once it has passed.
pub fn remaining(deadline: Duration, now: Duration) -> Duration {
    deadline.saturating_sub(now)
}

/// `90s`, `10min`, `2h`: as the configuration file spells a duration.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s > 0 && s % 60 == 0 {
        format!("{}min", s / 60)
    } else {
        format!("{s}s")
    }
}

fn sysroot_path(sysroot: &ostree::Sysroot) -> PathBuf {
    gio::prelude::FileExt::path(&sysroot.path()).unwrap_or_else(|| PathBuf::from("/"))
}

/// The default deployment: the first one that is not staged.
fn default_deployment(sysroot: &ostree::Sysroot) -> Option<ostree::Deployment> {
    let staged = sysroot.staged_deployment();
    sysroot
        .deployments()
        .into_iter()
        .find(|d| staged.as_ref() != Some(d))
}

fn on_trial(store: &Store, id: &DeploymentId) -> bool {
    store.entry(id).is_some_and(|e| e.on_trial())
}

fn armed(state: &CounterState) -> bool {
    matches!(
        state,
        CounterState::Counting { .. } | CounterState::Exhausted { .. }
    )
}

impl BootAssessment {
    /// The counter `config` selects for `sysroot` (see [`bootloader::select`]).
    pub fn new(sysroot: &ostree::Sysroot, config: Config) -> Result<BootAssessment> {
        let selected = bootloader::select(&sysroot_path(sysroot), &config)?;
        Ok(BootAssessment { config, selected })
    }

    /// With a counter chosen by the caller (tests, `--grubenv`).
    pub fn with_counter(config: Config, selected: Selected) -> BootAssessment {
        BootAssessment { config, selected }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counter.
    pub fn counter(&self) -> &dyn BootCounter {
        self.selected.counter.as_ref()
    }

    /// Why this counter was selected.
    pub fn reason(&self) -> &str {
        &self.selected.reason
    }

    /// Health options from the configuration (`keep-two-known-good`).
    pub fn health_options(&self) -> HealthOptions {
        HealthOptions::new().keep_known_good(self.config.keep_two_known_good)
    }

    /// The counter's global (grubenv) or per-entry (bls) nature: a global
    /// counter is about the default entry only.
    fn global(&self) -> bool {
        self.counter().backend() == Backend::Grubenv
    }

    /// What the counter says about this boot: the counter of the default
    /// deployment (the one a trial is about), read against the booted one.
    pub fn evidence(&self, sysroot: &ostree::Sysroot) -> Result<CounterEvidence> {
        let Some(booted) = sysroot.booted_deployment() else {
            return Ok(CounterEvidence::NoEvidence);
        };
        let Some(default) = default_deployment(sysroot) else {
            return Ok(CounterEvidence::NoEvidence);
        };
        let state = self.counter().state(&Target::of(&default))?;
        Ok(state.evidence(booted == default))
    }

    /// Stop counters that count for deployments no longer on trial. A global
    /// counter belongs to the default entry: it is stopped when the default
    /// is not on trial. Per-entry counters: every such deployment's. The
    /// booted deployment's counter is left to [`BootAssessment::mark_good`]
    /// unless it has a failure verdict, or `rolled_back` says a rollback just
    /// made the booted deployment the default: a global counter then still
    /// counts for the entry it was armed for, the failed one.
    fn settle(&self, sysroot: &ostree::Sysroot, rolled_back: bool) -> Result<Vec<DeploymentId>> {
        let mut out = Vec::new();
        if self.counter().backend() == Backend::None {
            return Ok(out);
        }
        let store = Store::read(sysroot)?;
        let booted = sysroot.booted_deployment().map(|d| DeploymentId::of(&d));
        let staged = sysroot.staged_deployment();
        let candidates: Vec<ostree::Deployment> = if self.global() {
            default_deployment(sysroot).into_iter().collect()
        } else {
            sysroot
                .deployments()
                .into_iter()
                .filter(|d| staged.as_ref() != Some(d))
                .collect()
        };
        for d in candidates {
            let t = Target::of(&d);
            if on_trial(&store, &t.id) {
                continue;
            }
            let state = match self.counter().state(&t) {
                Ok(s) if armed(&s) => s,
                Ok(_) => continue,
                // A counter that cannot be read (garbage `boot_counter`) is
                // left for a person: GRUB falls back on it by itself.
                Err(e) => {
                    log::warn!("not settling the boot counter of {}: {e}", t.id);
                    continue;
                }
            };
            // The booted deployment's own counter ends with mark-good's
            // bless (or with a failure verdict): a deployment stagehand has
            // no trial for may still be counted by the bootloader (libostree
            // or another tool armed it), and stopping that early would take
            // away the fallback for its next boots. A global counter that is
            // exhausted is not the booted entry's: it belongs to the entry
            // the bootloader fell back from.
            let booted_fell_back = self.global() && matches!(state, CounterState::Exhausted { .. });
            // A rollback onto the booted deployment, while it is not on
            // trial: a global counter was armed for the deployment rolled
            // back from (finalized, then marked bad before its first boot),
            // never for this one. Read from the store's rollback record, not
            // only from this call, so a re-run after a kill converges.
            let armed_for_another = self.global()
                && (rolled_back || store.last_rollback().is_some_and(|r| r.to == t.id));
            if booted.as_ref() == Some(&t.id)
                && !store.entry(&t.id).is_some_and(|e| e.concluded_failed())
                && !booted_fell_back
                && !armed_for_another
            {
                continue;
            }
            if self.counter().disarm(&t)? {
                log::info!(
                    "stopped the {} boot counter: {} is not on trial",
                    self.counter().backend(),
                    t.id
                );
                out.push(t.id);
            }
        }
        Ok(out)
    }

    /// Early at every boot: [`health::assess`] with the counter's evidence
    /// (or `explicit`, when given), then the counter is settled (after a
    /// fallback the exhausted counter is stopped so the rolled-back default
    /// boots). A counter that cannot be read does not stop assessment: the
    /// boot is still counted, without evidence.
    pub fn assess(
        &self,
        lock: &SysrootLock,
        explicit: Option<BootEvidence>,
        opts: &HealthOptions,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<Assessed> {
        let sysroot = lock.sysroot();
        let (evidence, counter_evidence, counter_error) = match explicit {
            Some(e) => (e, None, None),
            None => match self.evidence(sysroot) {
                Ok(ce) => (BootEvidence::from(ce), Some(ce), None),
                Err(e) => {
                    log::warn!("reading the boot counter: {e}; assessing without its evidence");
                    (BootEvidence::Unknown, None, Some(e.to_string()))
                }
            },
        };
        let verdict = health::assess(lock, &evidence, opts, cancellable)?;
        let disarmed = self.settle(sysroot, false)?;
        Ok(Assessed {
            verdict,
            backend: self.counter().backend(),
            counter_evidence,
            counter_error,
            disarmed,
        })
    }

    /// After `boot-complete.target`: [`health::mark_good`], then the counter
    /// is blessed — for a global counter only when the booted deployment is
    /// the default (a good boot of an entry picked by hand says nothing about
    /// the default on trial) — and counters of deployments no longer on
    /// trial are stopped.
    pub fn mark_good(
        &self,
        lock: &SysrootLock,
        opts: &HealthOptions,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<MarkedGood> {
        let sysroot = lock.sysroot();
        let outcome = match health::mark_good(lock, opts, cancellable) {
            Ok(o) => o,
            Err(e) => {
                // The verdict is written before the retention housekeeping
                // that follows it; if only the housekeeping failed, the store
                // says Good and the counter must not go on counting down
                // towards a fallback from a good deployment.
                if let Some(booted) = sysroot.booted_deployment() {
                    let id = crate::DeploymentId::of(&booted);
                    let good = health::read(sysroot)
                        .map(|s| matches!(s.state_of(&id), health::State::Good))
                        .unwrap_or(false);
                    let is_default = default_deployment(sysroot).as_ref() == Some(&booted);
                    if good && (!self.global() || is_default) {
                        if let Err(b) = self.counter().bless(&Target::of(&booted)) {
                            log::warn!("blessing the boot counter after a failed mark-good: {b}");
                        }
                    }
                }
                return Err(e);
            }
        };
        let booted = sysroot
            .booted_deployment()
            .ok_or_else(|| Error::NotBooted("mark-good applies to the booted deployment".into()))?;
        let is_default = default_deployment(sysroot).as_ref() == Some(&booted);
        let blessed = if !self.global() || is_default {
            self.counter().bless(&Target::of(&booted))?
        } else {
            false
        };
        if blessed {
            log::info!(
                "blessed the {} boot counter for {}",
                self.counter().backend(),
                outcome.deployment
            );
        }
        let disarmed = self.settle(sysroot, false)?;
        Ok(MarkedGood {
            outcome,
            backend: self.counter().backend(),
            blessed,
            disarmed,
        })
    }

    /// [`health::mark_bad`], then the counter is settled: the failed
    /// deployment's counter stops, and a global counter stops once the
    /// default is known good again, so the bootloader boots the rollback
    /// instead of counting down into the failed entry.
    pub fn mark_bad(
        &self,
        lock: &SysrootLock,
        target: Option<&DeploymentId>,
        reason: &str,
        opts: &HealthOptions,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<MarkedBad> {
        let outcome = health::mark_bad(lock, target, reason, opts, cancellable)?;
        let rolled_back_onto_booted = outcome.rolled_back_to.is_some()
            && outcome.rolled_back_to.as_ref()
                == lock
                    .sysroot()
                    .booted_deployment()
                    .map(|d| DeploymentId::of(&d))
                    .as_ref();
        let disarmed = self.settle(lock.sysroot(), rolled_back_onto_booted)?;
        let reboot = outcome.reboot_needed && self.config.auto_reboot;
        Ok(MarkedBad {
            outcome,
            backend: self.counter().backend(),
            disarmed,
            reboot,
        })
    }

    /// The health deadline passed: if the booted deployment is still on
    /// trial (`boot-complete.target` was not reached, or mark-good did not
    /// run), mark it bad. A verdict an interrupted run left unfinished
    /// ([`crate::health::unfinished_verdict`]) is finished. `reboot` in the result follows `auto-reboot`.
    /// With no known-good deployment left this is [`Error::NoKnownGood`] and
    /// nothing changes: stagehand never rolls into an untested or failed
    /// deployment, and never reboots into one it chose. (A deployment the
    /// agent staged boots first at any reboot: with one staged, the reboot
    /// that leaves the failed deployment boots that update, on its own
    /// trial; unstage it to boot the known-good default instead.)
    pub fn deadline(
        &self,
        lock: &SysrootLock,
        opts: &HealthOptions,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<Deadline> {
        let sysroot = lock.sysroot();
        let booted = sysroot
            .booted_deployment()
            .map(|d| DeploymentId::of(&d))
            .ok_or_else(|| {
                Error::NotBooted("the health deadline applies to the booted deployment".into())
            })?;
        let store = Store::read(sysroot)?;
        if on_trial(&store, &booted) {
            let reason = format!(
                "boot-complete.target was not reached within {}",
                format_duration(self.config.health_deadline)
            );
            let out = self.mark_bad(lock, Some(&booted), &reason, opts, cancellable)?;
            return Ok(Deadline::Missed(Box::new(out)));
        }
        let Some(unfinished) = crate::health::unfinished_verdict(sysroot, &store) else {
            return Ok(Deadline::NotOnTrial { booted });
        };
        // An earlier verdict was interrupted before its rollback or its
        // housekeeping: finish it (mark-bad is idempotent and keeps the
        // recorded reason). Reboot only if the running system is owed one:
        // the rollback was still to make, or this boot's assessment made it
        // (the failed deployment booted as the default).
        log::warn!("{booted} was marked bad by an interrupted run: finishing its verdict");
        let reason = store
            .entry(&booted)
            .and_then(|e| e.reason.clone())
            .unwrap_or_default();
        let mut out = self.mark_bad(lock, Some(&booted), &reason, opts, cancellable)?;
        out.reboot &= unfinished.reboot_owed;
        Ok(Deadline::Missed(Box::new(out)))
    }

    /// At shutdown, after `ostree admin finalize-staged` finalized
    /// `deployment` (the cleanup stamp's evidence, see
    /// [`crate::record_finalized`]): give it `tries` boots, if it is the
    /// default deployment now and on trial. Never call it at staging: a
    /// staged deployment that is never finalized must not leave a counter.
    pub fn arm_finalized(&self, lock: &SysrootLock, deployment: &DeploymentId) -> Result<Armed> {
        let sysroot = lock.sysroot();
        let skip = |reason: String| {
            log::info!("boot counter not armed for {deployment}: {reason}");
            Ok(Armed::Skipped {
                deployment: deployment.clone(),
                reason,
            })
        };
        if self.counter().backend() == Backend::None {
            return skip(format!("no boot counter ({})", self.reason()));
        }
        let Some(default) = default_deployment(sysroot) else {
            return skip("the sysroot has no deployment".into());
        };
        if !deployment.matches(&default) {
            return skip(format!(
                "it is not the default deployment ({} is)",
                DeploymentId::of(&default)
            ));
        }
        let store = match Store::read(sysroot) {
            Ok(s) => s,
            // Without a readable store nothing could bless the counter, and
            // the bootloader would fall back from a good deployment.
            Err(e) => return skip(format!("the health store is unreadable: {e}")),
        };
        if !on_trial(&store, deployment) {
            return skip("it is not on trial".into());
        }
        let tries = self.config.tries;
        match self.counter().arm(&Target::of(&default), tries) {
            Ok(()) => {}
            Err(e @ Error::Unsupported(_)) => return skip(e.to_string()),
            Err(e) => return Err(e),
        }
        log::info!(
            "armed the {} boot counter for {deployment}: {tries} tries",
            self.counter().backend()
        );
        Ok(Armed::Armed {
            deployment: deployment.clone(),
            backend: self.counter().backend(),
            tries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_evidence_maps_one_to_one() {
        assert_eq!(
            BootEvidence::from(CounterEvidence::BootloaderFallback { tries: Some(3) }),
            BootEvidence::Fallback { tries: Some(3) }
        );
        assert_eq!(
            BootEvidence::from(CounterEvidence::ManualChoice),
            BootEvidence::ManualChoice
        );
        for e in [
            CounterEvidence::OnTrial { left: 1 },
            CounterEvidence::NoEvidence,
        ] {
            assert_eq!(BootEvidence::from(e), BootEvidence::Unknown);
        }
    }

    #[test]
    fn remaining_time_until_the_deadline() {
        let d = Duration::from_secs(600);
        assert_eq!(
            remaining(d, Duration::from_secs(30)),
            Duration::from_secs(570)
        );
        assert_eq!(remaining(d, Duration::from_secs(600)), Duration::ZERO);
        assert_eq!(remaining(d, Duration::from_secs(9000)), Duration::ZERO);
    }

    #[test]
    fn uptime_is_read() {
        assert!(since_boot().unwrap() > Duration::ZERO);
    }
}
