//! `stagehand hooks check|recover`: the dry run and the recovery after an
//! agent died during hooks.

use std::time::Duration;

use clap::{Args, Subcommand};
use stagehand::hooks::{self, HookReport};
use stagehand::{HookOptions, StageOptions};

use crate::{lock, print_json, Cli, CliError};

/// Arguments of `stagehand hooks`.
#[derive(Args, Debug)]
pub struct HooksArgs {
    #[command(subcommand)]
    action: HooksCmd,
}

#[derive(Subcommand, Debug)]
enum HooksCmd {
    /// Would REV pass its pre-upgrade hooks? Runs them all against a checkout of REV that is
    /// removed afterwards (nothing is staged). Exit status 0 when every hook passes.
    Check {
        /// The ref or commit checksum.
        rev: String,
        /// The stateroot (default: the booted one).
        #[arg(long)]
        stateroot: Option<String>,
        /// Per-hook timeout in seconds.
        #[arg(long, value_name = "SECS")]
        hook_timeout: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a staged deployment whose hooks never completed (the agent died), and any
    /// deployment checkout left by an interrupted deploy or check.
    Recover {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(
    cli: &Cli,
    sysroot: &stagehand::ostree::Sysroot,
    args: &HooksArgs,
) -> Result<(), CliError> {
    match &args.action {
        HooksCmd::Check {
            rev,
            stateroot,
            hook_timeout,
            json,
        } => {
            let mut hopts = HookOptions::default();
            if let Some(t) = hook_timeout {
                hopts = hopts.set_timeout(Duration::from_secs(*t));
            }
            let mut opts = StageOptions::new(rev.clone()).hooks(hopts);
            if let Some(s) = stateroot {
                opts = opts.stateroot(s.clone());
            }
            let lock = lock(cli, sysroot)?;
            let report = hooks::check(&lock, &opts, None)?;
            drop(lock);
            if *json {
                print_json(&report);
            } else {
                print_report(rev, &report);
            }
            match report.first_veto() {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
        HooksCmd::Recover { json } => {
            let lock = lock(cli, sysroot)?;
            let out = hooks::recover(&lock, None)?;
            if *json {
                print_json(&out);
            } else {
                match &out.removed {
                    Some(id) => println!("removed unvetted staged deployment {id}"),
                    None if out.record_found => {
                        println!("dropped a stale unvetted record; nothing was staged unvetted")
                    }
                    None => println!("nothing to recover"),
                }
            }
            Ok(())
        }
    }
}

fn print_report(rev: &str, r: &HookReport) {
    let version = r
        .version
        .as_deref()
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default();
    let from = match (&r.old, &r.old_version) {
        (Some(_), Some(v)) => format!(" from version {v}"),
        (Some(o), None) => format!(" from {}", o.checksum),
        (None, _) => String::new(),
    };
    if r.hooks.is_empty() {
        println!("{rev}{version}: no pre-upgrade hooks; it would pass");
        return;
    }
    println!("{rev}{version}, upgrading{from}:");
    for h in &r.hooks {
        match &h.end {
            None => println!("  pass  {} ({}, {} ms)", h.path, h.origin, h.duration_ms),
            Some(end) => {
                println!("  VETO  {} ({}): {end}", h.path, h.origin);
                for line in h.output_tail.lines() {
                    println!("        | {line}");
                }
            }
        }
    }
    println!(
        "{}",
        if r.passed {
            "all hooks pass: the update would be allowed"
        } else {
            "the update would be vetoed"
        }
    );
}
