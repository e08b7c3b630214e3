//! `stagehand bootloader`: the boot counter (docs/boot-assessment.md).
//!
//! `status` is what the boot-assessment units and a person look at. `arm`,
//! `bless` and `disarm` are the low-level steps that `mark-good` and the
//! finalize-time unit perform as part of their work; they are here for
//! administrators (like `systemd-bless-boot good`) and tests. `grub-script`
//! prints the GRUB snippet for `/etc/grub.d`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;
use stagehand::bootloader::{self, grubenv, Backend, CounterEvidence, CounterState, Target};
use stagehand::config::{self, Config};
use stagehand::DeploymentId;

use crate::CliError;

/// Arguments of `stagehand bootloader`.
#[derive(Args, Debug)]
pub struct BootloaderArgs {
    /// The configuration file.
    #[arg(long, global = true, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Use the GRUB environment block at this path (as given, not inside
    /// --sysroot) instead of the configured backend.
    #[arg(long, global = true, value_name = "FILE")]
    grubenv: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Show the backend, the counter of the deployment on trial, and what it says about this boot.
    Status {
        /// The deployment whose counter to show (default: the default deployment).
        #[arg(long, value_name = "ID")]
        deployment: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give the default deployment its tries (done at finalize by stagehand's unit).
    Arm {
        /// The deployment (default: the default deployment; never a staged one).
        #[arg(long, value_name = "ID")]
        deployment: Option<String>,
        /// Tries (default: the configured `tries`).
        #[arg(long, value_name = "N")]
        tries: Option<u32>,
    },
    /// Mark the boot good: stop counting and record success.
    Bless {
        /// The deployment (default: the booted one, else the default one).
        #[arg(long, value_name = "ID")]
        deployment: Option<String>,
    },
    /// Stop counting without a verdict.
    Disarm {
        /// The deployment (default: the default deployment).
        #[arg(long, value_name = "ID")]
        deployment: Option<String>,
    },
    /// Print the GRUB script to install as /etc/grub.d/08_stagehand-boot-counting.
    GrubScript,
}

#[derive(Serialize)]
struct StatusJson<'a> {
    backend: Backend,
    reason: &'a str,
    location: Option<&'a Path>,
    config: &'a Config,
    deployment: String,
    booted: Option<String>,
    counter: CounterState,
    evidence: CounterEvidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    grubenv: Option<Vec<(String, String)>>,
}

/// Which deployment a command is about when none is named.
#[derive(Clone, Copy)]
enum Pick {
    DefaultDeployment,
    BootedElseDefault,
}

fn target(
    sysroot: &stagehand::ostree::Sysroot,
    spec: Option<&str>,
    default: Pick,
) -> Result<stagehand::ostree::Deployment, CliError> {
    if let Some(spec) = spec {
        let id = DeploymentId::resolve(spec, sysroot)?;
        return Ok(id.require(sysroot)?);
    }
    let booted = sysroot.booted_deployment();
    if let (Pick::BootedElseDefault, Some(b)) = (default, booted) {
        return Ok(b);
    }
    let staged = sysroot.staged_deployment();
    sysroot
        .deployments()
        .into_iter()
        .find(|d| staged.as_ref() != Some(d))
        .ok_or_else(|| {
            CliError::Lib(stagehand::Error::UnknownDeployment(
                "(the sysroot has no deployment)".into(),
            ))
        })
}

/// Run `stagehand bootloader ...`.
pub fn run(sysroot_path: &Path, args: &BootloaderArgs) -> Result<(), CliError> {
    if let Action::GrubScript = args.action {
        print!("{}", grubenv::GRUB_SCRIPT);
        return Ok(());
    }
    let cfg = Config::load(&args.config)?;
    let selected = match &args.grubenv {
        Some(p) => bootloader::Selected {
            counter: Box::new(bootloader::GrubenvCounter::new(p)),
            reason: "--grubenv".into(),
        },
        None => bootloader::select(sysroot_path, &cfg)?,
    };
    let counter = selected.counter.as_ref();
    let sysroot = stagehand::open_sysroot(sysroot_path, None)?;
    match &args.action {
        Action::Status { deployment, json } => {
            let d = target(&sysroot, deployment.as_deref(), Pick::DefaultDeployment)?;
            let t = Target::of(&d);
            let booted = sysroot.booted_deployment();
            let state = counter.state(&t)?;
            let evidence = match &booted {
                Some(b) => state.evidence(b == &d),
                None => CounterEvidence::NoEvidence,
            };
            let vars = match counter.backend() {
                Backend::Grubenv => counter
                    .location()
                    .map(grubenv::GrubEnv::read)
                    .transpose()?
                    .flatten()
                    .map(|e| e.vars()),
                _ => None,
            };
            if *json {
                crate::print_json(&StatusJson {
                    backend: counter.backend(),
                    reason: &selected.reason,
                    location: counter.location(),
                    config: &cfg,
                    deployment: t.id.to_string(),
                    booted: booted.as_ref().map(|b| DeploymentId::of(b).to_string()),
                    counter: state,
                    evidence,
                    grubenv: vars,
                });
            } else {
                println!("Backend: {} ({})", counter.backend(), selected.reason);
                if let Some(l) = counter.location() {
                    println!("Location: {}", l.display());
                }
                println!(
                    "Config: {}",
                    cfg.source
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "(no file: defaults)".into())
                );
                println!(
                    "Deployment: {}{}",
                    t.id,
                    if booted.as_ref() == Some(&d) {
                        " (booted)"
                    } else {
                        ""
                    }
                );
                println!("Counter: {}", describe_state(&state));
                println!("This boot: {}", describe_evidence(&evidence));
            }
        }
        Action::Arm { deployment, tries } => {
            let d = target(&sysroot, deployment.as_deref(), Pick::DefaultDeployment)?;
            if sysroot.staged_deployment().as_ref() == Some(&d) {
                return Err(CliError::Lib(stagehand::Error::InvalidArgument(format!(
                    "{} is staged: the counter is armed when it becomes the default (at finalize)",
                    DeploymentId::of(&d)
                ))));
            }
            let t = Target::of(&d);
            let tries = tries.unwrap_or(cfg.tries);
            counter.arm(&t, tries)?;
            println!("armed {} for {t}: {tries} tries", counter.backend());
        }
        Action::Bless { deployment } => {
            let d = target(&sysroot, deployment.as_deref(), Pick::BootedElseDefault)?;
            let t = Target::of(&d);
            if counter.bless(&t)? {
                println!("blessed {t} ({})", counter.backend());
            } else {
                println!("nothing to bless for {t} ({})", counter.backend());
            }
        }
        Action::Disarm { deployment } => {
            let d = target(&sysroot, deployment.as_deref(), Pick::DefaultDeployment)?;
            let t = Target::of(&d);
            if counter.disarm(&t)? {
                println!("disarmed {t} ({})", counter.backend());
            } else {
                println!("no counter armed for {t} ({})", counter.backend());
            }
        }
        Action::GrubScript => unreachable!(),
    }
    Ok(())
}

fn describe_state(s: &CounterState) -> String {
    match s {
        CounterState::NotArmed => "not armed".into(),
        CounterState::Counting { left, done } => format!(
            "counting, {left} {} left after this boot{}",
            if *left == 1 { "try" } else { "tries" },
            done.map(|d| format!(", {d} done")).unwrap_or_default()
        ),
        CounterState::Exhausted { done } => format!(
            "exhausted: the bootloader falls back{}",
            done.map(|d| format!(" ({d} tries done)"))
                .unwrap_or_default()
        ),
        CounterState::NoCounter => "none (userspace assessment only)".into(),
    }
}

fn describe_evidence(e: &CounterEvidence) -> String {
    match e {
        CounterEvidence::OnTrial { left } => format!("the deployment is on trial ({left} left)"),
        CounterEvidence::BootloaderFallback { tries } => format!(
            "the bootloader fell back: the deployment failed to boot{}",
            tries.map(|t| format!(" ({t} tries)")).unwrap_or_default()
        ),
        CounterEvidence::ManualChoice => "a person chose the boot entry".into(),
        CounterEvidence::NoEvidence => "no evidence from the bootloader".into(),
    }
}
