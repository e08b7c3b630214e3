//! Health subcommands: `mark-good`, `mark-bad`, `assess`, `denylist`,
//! `health reset`, and the health part of `status`.

use clap::{Args, Subcommand, ValueEnum};
use stagehand::health::{self, State};
use stagehand::{BootEvidence, DeploymentId, HealthOptions};

use crate::{lock, print_json, Cli, CliError};

/// Retention during a trial (shared by every command that may start or end one).
#[derive(Args, Debug, Clone)]
pub(crate) struct KeepArgs {
    /// Do not pin two known-good deployments while a deployment is on trial
    /// (saves one deployment's space in /boot; stagehand's existing pins are released).
    #[arg(long)]
    pub no_keep_known_good: bool,
}

impl KeepArgs {
    pub fn options(&self) -> HealthOptions {
        HealthOptions::new().keep_known_good(!self.no_keep_known_good)
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
        /// What the bootloader says about how this boot's entry was chosen.
        #[arg(long, value_enum, default_value = "unknown")]
        evidence: EvidenceArg,
        /// With --evidence fallback: how many tries the entry had.
        #[arg(long, value_name = "N")]
        tries: Option<u32>,
        #[command(flatten)]
        keep: KeepArgs,
        /// Print the verdict as JSON.
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
            let lock = lock(cli, sysroot)?;
            let out = health::mark_good(&lock, &keep.options(), None)?;
            if *json {
                print_json(&out);
            } else {
                println!("marked {} good", out.deployment);
                if out.undenylisted {
                    println!("commit {} is off the denylist", out.deployment.checksum);
                }
                if !out.released_pins.is_empty() {
                    println!("released stagehand's pins on {}", ids(&out.released_pins));
                }
                if !out.removed.is_empty() {
                    println!(
                        "removed {} (only the released pin kept it); the next autocleanup prunes its objects",
                        ids(&out.removed)
                    );
                }
            }
        }
        HealthCmd::MarkBad {
            reason,
            deployment,
            keep,
            json,
        } => {
            let lock = lock(cli, sysroot)?;
            let target = deployment
                .as_deref()
                .map(|spec| DeploymentId::resolve(spec, sysroot))
                .transpose()?;
            let out = health::mark_bad(
                &lock,
                target.as_ref(),
                reason.as_deref().unwrap_or(""),
                &keep.options(),
                None,
            )?;
            if *json {
                print_json(&out);
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
                    println!("rolled back to {to}");
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
            }
        }
        HealthCmd::Assess {
            evidence,
            tries,
            keep,
            json,
        } => {
            let evidence = match evidence {
                EvidenceArg::Unknown => BootEvidence::Unknown,
                EvidenceArg::Fallback => BootEvidence::Fallback { tries: *tries },
                EvidenceArg::Manual => BootEvidence::ManualChoice,
            };
            let lock = lock(cli, sysroot)?;
            let v = health::assess(&lock, &evidence, &keep.options(), None)?;
            if *json {
                print_json(&v);
            } else {
                println!("{}", v.message);
                if !v.removed.is_empty() {
                    println!(
                        "removed {} (only a released pin kept it); the next autocleanup deletes it and prunes its objects",
                        ids(&v.removed)
                    );
                }
                if v.reboot_needed {
                    println!("reboot needed");
                }
            }
        }
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
        },
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
