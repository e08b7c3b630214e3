//! `stagehand`: the command the systemd units run, and a tool for admins.
//!
//! Thin by design: every subcommand parses its arguments, calls the library
//! and prints the result. Errors go to stderr as one line, `error: <cause>`,
//! with a non-zero exit status.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod cmd_bootloader;
mod cmd_cleanup;
mod cmd_guard;
mod cmd_health;
mod cmd_hooks;
mod demo;
mod logger;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stagehand::{HookOptions, Kargs, StageOptions, SysrootLock};

/// Staged deployment, cleanup stamps, pre-upgrade hooks and health bits for ostree systems.
#[derive(Parser, Debug)]
#[command(name = "stagehand", version, about, propagate_version = true)]
struct Cli {
    /// The sysroot to operate on.
    #[arg(long, global = true, default_value = "/", value_name = "PATH")]
    sysroot: PathBuf,
    /// Seconds to wait for the sysroot lock held by another process.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECS")]
    lock_timeout: u64,
    /// Log what is done (repeat for debug output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show deployments and stagehand's state.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stage REV (a ref or checksum in the sysroot repo); on a sysroot that is not booted, deploy it fully.
    Stage {
        /// The ref or commit checksum.
        rev: String,
        /// The stateroot (default: the booted one).
        #[arg(long)]
        stateroot: Option<String>,
        /// Origin refspec for the new deployment.
        #[arg(long, value_name = "REFSPEC")]
        origin: Option<String>,
        /// Set a kernel argument over the inherited ones (replacing one with the same key); repeatable.
        #[arg(long = "karg", value_name = "KARG")]
        kargs: Vec<String>,
        /// Do not inherit kernel arguments: use exactly the --karg ones.
        #[arg(long)]
        karg_none: bool,
        /// Keep finalization locked: the deployment stays staged across shutdowns until unlocked.
        #[arg(long)]
        lock_finalization: bool,
        /// Do not run pre-upgrade hooks (for administrators; logged).
        #[arg(long)]
        no_hooks: bool,
        /// Per-hook timeout in seconds.
        #[arg(long, value_name = "SECS")]
        hook_timeout: Option<u64>,
        /// Stage the commit even if it is on the denylist (an explicit retry).
        #[arg(long)]
        allow_denylisted: bool,
        #[command(flatten)]
        keep: cmd_health::KeepArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the staged deployment (and its finalization lock).
    Unstage,
    /// Lock, unlock or query finalization of the staged deployment.
    Finalization {
        /// lock, unlock or status.
        #[arg(value_parser = ["lock", "unlock", "status"])]
        action: String,
    },
    /// Interrupted-operation guard: a "red line" stamp around a step that must not run twice.
    Guard(cmd_guard::GuardArgs),
    /// Write the cleanup stamp if the staged deployment was really finalized (run at shutdown by the units).
    FinalizeStamp(cmd_cleanup::FinalizeStampArgs),
    /// Run the pending cleanup (prune) if a finalized update or a removed deployment left a stamp; reports what was freed.
    Autocleanup(cmd_cleanup::AutocleanupArgs),
    /// Pre-upgrade hooks: dry run (check REV) and recovery after an interrupted staging.
    Hooks(cmd_hooks::HooksArgs),
    #[command(flatten)]
    Health(cmd_health::HealthCmd),
    /// The bootloader's boot counter: status, arm, bless, disarm, and the GRUB script.
    Bootloader(cmd_bootloader::BootloaderArgs),
    /// Run a full update cycle on a throwaway sysroot, printing each step (needs root).
    Demo {
        /// Files in each generated commit.
        #[arg(long, default_value_t = 200)]
        files: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logger::init(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = e.to_string().replace('\n', "\n  ");
            eprintln!("error: {msg}");
            ExitCode::from(e.exit_status())
        }
    }
}

/// A CLI failure: a library error, or a usage problem found after parsing.
#[derive(Debug)]
enum CliError {
    Lib(stagehand::Error),
    Other(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Lib(e) => write!(f, "{e}"),
            CliError::Other(s) => f.write_str(s),
        }
    }
}

/// Exit status of library errors: [`EXIT_ERROR_BASE`] + the error code, so
/// scripts can branch on the kind (the table in docs/errors.md).
pub const EXIT_ERROR_BASE: u8 = 10;

impl CliError {
    fn exit_status(&self) -> u8 {
        match self {
            CliError::Lib(e) => EXIT_ERROR_BASE + e.code() as u8,
            CliError::Other(_) => 1,
        }
    }
}

impl From<stagehand::Error> for CliError {
    fn from(e: stagehand::Error) -> Self {
        CliError::Lib(e)
    }
}

fn lock(cli: &Cli, sysroot: &stagehand::ostree::Sysroot) -> Result<SysrootLock, CliError> {
    Ok(SysrootLock::acquire(
        sysroot,
        Duration::from_secs(cli.lock_timeout),
        None,
    )?)
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

fn run(cli: Cli) -> Result<(), CliError> {
    if let Cmd::Demo { files } = cli.command {
        return demo::run(files).map_err(CliError::Other);
    }
    // The guard never touches the sysroot: it may run before one is mounted.
    if let Cmd::Guard(args) = &cli.command {
        return cmd_guard::run(args);
    }
    match &cli.command {
        Cmd::FinalizeStamp(a) => return cmd_cleanup::finalize_stamp(&cli, a),
        Cmd::Autocleanup(a) => return cmd_cleanup::autocleanup(&cli, a),
        Cmd::Bootloader(args) => return cmd_bootloader::run(&cli.sysroot, args),
        _ => {}
    }
    let sysroot = stagehand::open_sysroot(&cli.sysroot, None)?;
    match &cli.command {
        Cmd::Status { json } => {
            let st = stagehand::status(&sysroot)?;
            if *json {
                print_json(&st);
            } else {
                print_status(&st);
            }
        }
        Cmd::Stage {
            rev,
            stateroot,
            origin,
            kargs,
            karg_none,
            lock_finalization,
            no_hooks,
            hook_timeout,
            allow_denylisted,
            keep,
            json,
        } => {
            let mut opts = StageOptions::new(rev.clone())
                .lock_finalization(*lock_finalization)
                .allow_denylisted(*allow_denylisted)
                .health(keep.health()?);
            if let Some(s) = stateroot {
                opts = opts.stateroot(s.clone());
            }
            if let Some(o) = origin {
                opts = opts.origin_refspec(o.clone());
            }
            opts = opts.kargs(if *karg_none {
                Kargs::Replace(kargs.clone())
            } else if kargs.is_empty() {
                Kargs::Inherit
            } else {
                Kargs::Append(kargs.clone())
            });
            let mut hooks = HookOptions::default().set_enabled(!no_hooks);
            if let Some(t) = hook_timeout {
                hooks = hooks.set_timeout(Duration::from_secs(*t));
            }
            opts = opts.hooks(hooks);
            let lock = lock(&cli, &sysroot)?;
            let out = stagehand::stage(&lock, &opts, None)?;
            if *json {
                print_json(&out);
            } else if out.unchanged {
                println!(
                    "{} is already {}; nothing to do",
                    out.deployment,
                    match out.method {
                        stagehand::StageMethod::Staged => "staged",
                        stagehand::StageMethod::Deployed => "the default deployment",
                    }
                );
            } else {
                match out.method {
                    stagehand::StageMethod::Staged => println!(
                        "staged {}{}",
                        out.deployment,
                        if out.finalization_locked {
                            " (finalization locked)"
                        } else {
                            "; it is finalized at shutdown"
                        }
                    ),
                    stagehand::StageMethod::Deployed => {
                        println!("deployed {} (sysroot not booted)", out.deployment)
                    }
                }
            }
        }
        Cmd::Unstage => {
            let lock = lock(&cli, &sysroot)?;
            match stagehand::unstage(&lock, None)? {
                Some(id) => println!("removed staged deployment {id}"),
                None => println!("no staged deployment"),
            }
        }
        Cmd::Finalization { action } => match action.as_str() {
            "lock" => {
                if sysroot.staged_deployment().is_none() {
                    log::warn!("no deployment is staged; the lock applies to the next one");
                }
                stagehand::lock_finalization(&sysroot)?;
                println!("finalization locked");
            }
            "unlock" => {
                let was = stagehand::unlock_finalization()?;
                println!(
                    "{}",
                    if was {
                        "finalization unlocked"
                    } else {
                        "finalization was not locked"
                    }
                );
            }
            _ => println!(
                "{}",
                if stagehand::finalization_locked() {
                    "locked"
                } else {
                    "unlocked"
                }
            ),
        },
        Cmd::Hooks(args) => cmd_hooks::run(&cli, &sysroot, args)?,
        Cmd::Health(c) => cmd_health::run(&cli, &sysroot, c)?,
        Cmd::Demo { .. }
        | Cmd::Guard(_)
        | Cmd::FinalizeStamp(_)
        | Cmd::Autocleanup(_)
        | Cmd::Bootloader(_) => {
            unreachable!()
        }
    }
    Ok(())
}

fn print_status(st: &stagehand::Status) {
    if st.deployments.is_empty() {
        println!("No deployments.");
    }
    if st.cleanup_pending {
        println!(
            "Cleanup pending: a finalized update or a removed deployment left objects to prune (stagehand autocleanup)"
        );
    }
    if st.retention_pending {
        println!(
            "Retention pending: stagehand holds pins no trial needs (a trial ended, or a release was interrupted); the next stagehand autocleanup releases them"
        );
    }
    for d in &st.deployments {
        let mut flags = Vec::new();
        if d.staged {
            flags.push("staged");
        }
        if d.finalization_locked {
            flags.push("finalization locked");
        }
        if d.unvetted {
            flags.push("unvetted");
        }
        if d.pinned {
            flags.push("pinned");
        }
        println!(
            "{} {} {}.{}{}",
            if d.booted { "*" } else { " " },
            d.stateroot,
            d.checksum,
            d.serial,
            if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            }
        );
        if let Some(v) = &d.version {
            println!("    Version: {v}");
        }
        cmd_health::print_deployment_health(d);
    }
    cmd_health::print_status_health(st);
}
