//! Health subcommands: `mark-good`, `mark-bad`, `assess`, `health-deadline`,
//! `denylist`, `health reset`, `health retention`, and the health part of `status`.
//!
//! `assess`, `mark-good`, `mark-bad` and `health-deadline` go through
//! [`stagehand::assessment::BootAssessment`]: the configuration file picks
//! the boot counter, which supplies the evidence and is blessed or disarmed
//! along with the health transition.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use stagehand::assessment::{self, BootAssessment, Deadline};
use stagehand::health::{self, State};
use stagehand::{config, BootEvidence, Config, DeploymentId, HealthOptions};

use crate::{lock, print_json, Cli, CliError};

/// Retention during a trial (shared by every command that may start or end one).
#[derive(Args, Debug, Clone)]
pub(crate) struct KeepArgs {
    /// Do not pin two known-good deployments while a deployment is on trial
    /// (saves one deployment's space in /boot; stagehand's existing pins are released).
    #[arg(long)]
    pub no_keep_known_good: bool,
    /// The configuration file (keep-two-known-good, boot counter, deadline).
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
}

impl KeepArgs {
    /// The configuration file's settings.
    pub fn config(&self) -> Result<Config, CliError> {
        Ok(Config::load(&self.config)?)
    }

    /// Health options: the configuration's `keep-two-known-good`, unless
    /// `--no-keep-known-good` turns it off.
    pub fn options_with(&self, cfg: &Config) -> HealthOptions {
        HealthOptions::new().keep_known_good(cfg.keep_two_known_good && !self.no_keep_known_good)
    }

    /// Health options from the configuration file and the flag.
    pub fn health(&self) -> Result<HealthOptions, CliError> {
        Ok(self.options_with(&self.config()?))
    }

    /// The configured boot counter, and the health options.
    fn assessment(
        &self,
        sysroot: &stagehand::ostree::Sysroot,
    ) -> Result<(BootAssessment, HealthOptions), CliError> {
        let cfg = self.config()?;
        let opts = self.options_with(&cfg);
        Ok((BootAssessment::new(sysroot, cfg)?, opts))
    }
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum EvidenceArg {
    /// No bootloader evidence: an older boot is treated as a choice (nothing marked).
    Unknown,
    /// The bootloader fell back because the default entry's tries ran out.
    Fallback,
    /// A person picked the entry by hand.
    Manual,
}

#[derive(Subcommand, Debug)]
pub(crate) enum HealthCmd {
    /// Mark the booted deployment good (run after boot-complete.target).
    MarkGood {
        #[command(flatten)]
        keep: KeepArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark a deployment bad: it is failed, its commit denylisted, and the newest
    /// known-good deployment becomes the default.
    MarkBad {
        /// Why (recorded with the failure and on the denylist).
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// The deployment ([stateroot:]checksum[.serial]); default: the booted one.
        #[arg(long, value_name = "ID")]
        deployment: Option<String>,
        #[command(flatten)]
        keep: KeepArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Assess this boot (early at boot): count it, and decide whether newer
    /// deployments on trial failed to boot.
    Assess {
        /// What the bootloader says about how this boot's entry was chosen
        /// (default: read it from the configured boot counter).
        #[arg(long, value_enum)]
        evidence: Option<EvidenceArg>,
        /// With --evidence fallback: how many tries the entry had.
        #[arg(long, value_name = "N")]
        tries: Option<u32>,
        #[command(flatten)]
        keep: KeepArgs,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The health deadline (run at boot by stagehand-health-deadline.service):
    /// wait until the configured deadline after boot; if the booted deployment
    /// is still on trial then, mark it bad and, with auto-reboot, reboot into
    /// the rollback.
    HealthDeadline {
        /// Do not wait: the deadline is now (a health check failed for good).
        #[arg(long)]
        now: bool,
        /// The command that reboots (with auto-reboot), split at whitespace.
        #[arg(
            long,
            value_name = "CMD",
            env = "STAGEHAND_REBOOT_COMMAND",
            default_value = "systemctl reboot"
        )]
        reboot_command: String,
        #[command(flatten)]
        keep: KeepArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List or remove denylisted commits.
    Denylist {
        #[command(subcommand)]
        action: DenylistCmd,
    },
    /// Administer the health store.
    Health {
        #[command(subcommand)]
        action: HealthAdmin,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum DenylistCmd {
    /// List denylisted commits.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a commit off the denylist so it may be staged again.
    Remove {
        /// The commit checksum (or a unique prefix).
        checksum: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum HealthAdmin {
    /// Start over with an empty health store (forgets every record and the
    /// denylist; for use after inspecting a corrupt store).
    Reset {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The retention housekeeping mark-good leaves off the boot path: when no
    /// trial is open, release stagehand's pins and remove the deployment only
    /// they kept (named in the cleanup stamp; its checkout and objects go with
    /// the next autocleanup); during a trial, finish only a release an
    /// interrupted run recorded. Exactly what `status` calls "retention
    /// pending". `autocleanup` does this first by itself. With a corrupt
    /// cleanup stamp the pins are released but nothing is removed (exit 24).
    Retention {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn ids(v: &[DeploymentId]) -> String {
    v.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn run(
    cli: &Cli,
    sysroot: &stagehand::ostree::Sysroot,
    cmd: &HealthCmd,
) -> Result<(), CliError> {
    match cmd {
        HealthCmd::MarkGood { keep, json } => {
            let (ba, opts) = keep.assessment(sysroot)?;
            let lock = lock(cli, sysroot)?;
            let full = ba.mark_good(&lock, &opts, None)?;
            let out = &full.outcome;
            if *json {
                print_json(&full);
            } else {
                println!("marked {} good", out.deployment);
                if out.undenylisted {
                    println!("commit {} is off the denylist", out.deployment.checksum);
                }
                if out.retention_pending {
                    println!(
                        "retention pending: the trial's pins are released by the next \
                         `stagehand autocleanup` (stagehand-autocleanup.service runs it next)"
                    );
                }
                if full.blessed {
                    println!("blessed the {} boot counter", full.backend);
                }
                if !full.disarmed.is_empty() {
                    println!("stopped the boot counter of {}", ids(&full.disarmed));
                }
            }
        }
        HealthCmd::MarkBad {
            reason,
            deployment,
            keep,
            json,
        } => {
            let (ba, opts) = keep.assessment(sysroot)?;
            let lock = lock(cli, sysroot)?;
            let target = deployment
                .as_deref()
                .map(|spec| DeploymentId::resolve(spec, sysroot))
                .transpose()?;
            let full = ba.mark_bad(
                &lock,
                target.as_ref(),
                reason.as_deref().unwrap_or(""),
                &opts,
                None,
            )?;
            let out = &full.outcome;
            if *json {
                print_json(&full);
            } else {
                println!(
                    "{} {} bad: {}; commit {} is denylisted",
                    if out.already_failed {
                        "already marked"
                    } else {
                        "marked"
                    },
                    out.deployment,
                    out.reason,
                    out.denylisted
                );
                if out.unstaged {
                    println!("removed it from staging");
                }
                if let Some(to) = &out.rolled_back_to {
                    match &out.staged {
                        Some(s) if out.default.as_ref() != Some(to) => println!(
                            "rollback to {to} deferred: libostree cannot write that order while \
                             {s} is staged; {s} boots next and {to} becomes its fallback when it \
                             is finalized"
                        ),
                        _ => println!("rolled back to {to}"),
                    }
                }
                if let Some(d) = &out.default {
                    println!("default deployment: {d}");
                }
                if let Some(s) = &out.staged {
                    println!("still staged: {s} (it becomes the default at shutdown; unstage it to boot the default)");
                }
                if !out.removed.is_empty() {
                    println!(
                        "removed {} (only the released pin kept it); the next autocleanup deletes it and prunes its objects",
                        ids(&out.removed)
                    );
                }
                if out.reboot_needed {
                    println!("reboot needed: the running system is the failed deployment");
                }
                if !full.disarmed.is_empty() {
                    println!("stopped the boot counter of {}", ids(&full.disarmed));
                }
            }
        }
        HealthCmd::Assess {
            evidence,
            tries,
            keep,
            json,
        } => {
            let explicit = evidence.map(|e| match e {
                EvidenceArg::Unknown => BootEvidence::Unknown,
                EvidenceArg::Fallback => BootEvidence::Fallback { tries: *tries },
                EvidenceArg::Manual => BootEvidence::ManualChoice,
            });
            let (ba, opts) = keep.assessment(sysroot)?;
            let lock = lock(cli, sysroot)?;
            let a = ba.assess(&lock, explicit, &opts, None)?;
            if *json {
                print_json(&a);
            } else {
                println!("{}", a.verdict.message);
                if let Some(e) = &a.counter_error {
                    println!("the {} boot counter could not be read: {e}", a.backend);
                }
                if !a.disarmed.is_empty() {
                    println!("stopped the boot counter of {}", ids(&a.disarmed));
                }
                if a.verdict.retention_pending {
                    println!(
                        "retention pending: pins no trial needs are released by the next \
                         `stagehand autocleanup`"
                    );
                }
                if a.verdict.reboot_needed {
                    println!("reboot needed");
                }
            }
        }
        HealthCmd::HealthDeadline {
            now,
            reboot_command,
            keep,
            json,
        } => deadline(cli, sysroot, *now, reboot_command, keep, *json)?,
        HealthCmd::Denylist { action } => match action {
            DenylistCmd::List { json } => {
                let list = health::denylist(sysroot)?;
                if *json {
                    print_json(&list);
                } else if list.is_empty() {
                    println!("The denylist is empty.");
                } else {
                    for d in list {
                        println!("{}  {}  {}", d.checksum, d.since, d.reason);
                    }
                }
            }
            DenylistCmd::Remove { checksum } => {
                let lock = lock(cli, sysroot)?;
                let d = health::denylist_remove(&lock, checksum)?;
                println!("removed {} from the denylist", d.checksum);
            }
        },
        HealthCmd::Health { action } => match action {
            HealthAdmin::Reset { json } => {
                let lock = lock(cli, sysroot)?;
                let out = health::reset(&lock, None)?;
                if *json {
                    print_json(&out);
                } else {
                    println!("health store {} reset", out.path.display());
                    if let Some(e) = &out.previous_error {
                        println!("the previous store was unreadable: {e}");
                    } else {
                        println!(
                            "forgot {} deployment records and {} denylisted commits",
                            out.forgotten_entries, out.forgotten_denylist
                        );
                    }
                    if !out.released_pins.is_empty() {
                        println!("released stagehand's pins on {}", ids(&out.released_pins));
                    }
                    for f in &out.removed_files {
                        println!("deleted {}", f.display());
                    }
                }
            }
            HealthAdmin::Retention { json } => {
                let lock = lock(cli, sysroot)?;
                let out = health::finish_retention(&lock, None)?;
                if *json {
                    print_json(&out);
                } else if out.released_pins.is_empty() && out.removed.is_empty() {
                    println!("no retention housekeeping pending");
                } else {
                    if !out.released_pins.is_empty() {
                        println!("released stagehand's pins on {}", ids(&out.released_pins));
                    }
                    if !out.removed.is_empty() {
                        println!(
                            "removed {} (only a released pin kept it); the next autocleanup deletes it and prunes its objects",
                            ids(&out.removed)
                        );
                    }
                }
            }
        },
    }
    Ok(())
}

/// `stagehand health-deadline`: the deadline unit's command.
fn deadline(
    cli: &Cli,
    sysroot: &stagehand::ostree::Sysroot,
    now: bool,
    reboot_command: &str,
    keep: &KeepArgs,
    json: bool,
) -> Result<(), CliError> {
    let (ba, opts) = keep.assessment(sysroot)?;
    let booted = sysroot.booted_deployment().ok_or_else(|| {
        stagehand::Error::NotBooted("the health deadline applies to the booted deployment".into())
    })?;
    let id = DeploymentId::of(&booted);
    // Before waiting, a cheap look: a deployment not on trial has no
    // deadline, unless an interrupted verdict left its rollback to finish
    // (at once: the verdict is in).
    let store = health::read(sysroot)?;
    let on_trial = store.entry(&id).is_some_and(|e| e.on_trial());
    let unfinished = health::unfinished_verdict(sysroot, &store).is_some();
    let now = now || unfinished;
    if !on_trial && !unfinished {
        if json {
            print_json(&Deadline::NotOnTrial { booted: id });
        } else {
            println!("{id} is not on trial: no deadline");
        }
        return Ok(());
    }
    if !now {
        let wait = assessment::remaining(ba.config().health_deadline, assessment::since_boot()?);
        if !wait.is_zero() {
            log::info!(
                "{id} is on trial: waiting {}s for boot-complete.target",
                wait.as_secs()
            );
            std::thread::sleep(wait);
        }
    }
    // The lock reloads the sysroot: mark-good may have run meanwhile.
    let lock = lock(cli, sysroot)?;
    let out = ba.deadline(&lock, &opts, None)?;
    if json {
        print_json(&out);
    }
    let Deadline::Missed(bad) = out else {
        if !json {
            println!("{id} is not on trial any more: nothing to do");
        }
        return Ok(());
    };
    if !json {
        println!(
            "marked {} bad: {}; commit {} is denylisted",
            bad.outcome.deployment, bad.outcome.reason, bad.outcome.denylisted
        );
        if let Some(d) = &bad.outcome.default {
            println!("default deployment: {d}");
        }
    }
    if bad.reboot {
        drop(lock);
        log::warn!("auto-reboot: rebooting into the rollback ({reboot_command})");
        if !json {
            println!("rebooting into the rollback");
        }
        let argv: Vec<&str> = reboot_command.split_whitespace().collect();
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| CliError::Other("--reboot-command is empty".into()))?;
        let st = std::process::Command::new(prog)
            .args(args)
            .status()
            .map_err(|e| CliError::Other(format!("running {reboot_command}: {e}")))?;
        if !st.success() {
            return Err(CliError::Other(format!("{reboot_command} failed ({st})")));
        }
    } else if bad.outcome.reboot_needed && !json {
        println!("reboot needed to leave the failed deployment (auto-reboot is off)");
    }
    Ok(())
}

/// The health line of one deployment in `stagehand status`.
pub(crate) fn print_deployment_health(d: &stagehand::DeploymentStatus) {
    let Some(h) = d.health else { return };
    let mut line = format!("    Health: {h}");
    if d.on_trial {
        line.push_str(if h == State::Untested {
            " (on trial, not booted yet)"
        } else {
            " (on trial: booted, not marked good yet)"
        });
    }
    if d.attempts > 0 {
        line.push_str(&format!(", {} boot(s)", d.attempts));
    }
    if d.pinned_by_stagehand {
        line.push_str(", pinned by stagehand");
    }
    println!("{line}");
    if let Some(r) = &d.health_reason {
        println!("    Failed: {r}");
    }
}

/// The health part of `stagehand status`: store errors, denylist, last rollback.
pub(crate) fn print_status_health(st: &stagehand::Status) {
    if let Some(e) = &st.health_error {
        println!("Health store: {e}");
    }
    if !st.denylist.is_empty() {
        println!("Denylist:");
        for d in &st.denylist {
            println!("  {} (since {}): {}", d.checksum, d.since, d.reason);
        }
    }
    if let Some(r) = &st.last_rollback {
        println!(
            "Last rollback: {} from {} to {}: {}",
            r.at, r.from, r.to, r.reason
        );
    }
}
