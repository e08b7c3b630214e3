//! `stagehand finalize-stamp` and `stagehand autocleanup`: the commands the
//! cleanup-stamp units run (see `systemd/` and docs/cleanup.md).

use std::time::Duration;

use clap::Args;
use stagehand::assessment::{Armed, BootAssessment};
use stagehand::{CleanupOptions, CleanupReport, CleanupStamp};

use crate::{print_json, CliError};

/// Arguments of `stagehand finalize-stamp`.
#[derive(Args, Debug)]
pub struct FinalizeStampArgs {
    /// The step before `ostree admin finalize-staged`: record what is staged
    /// (run by stagehand-finalize-record.service when it stops).
    #[arg(long)]
    record: bool,
    /// The configuration file: after a finalization, the boot counter it
    /// selects is armed for the new default deployment.
    #[arg(long, value_name = "FILE", default_value = stagehand::config::DEFAULT_PATH)]
    config: std::path::PathBuf,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `stagehand autocleanup`.
#[derive(Args, Debug)]
pub struct AutocleanupArgs {
    /// Clean up even without a stamp, or with one that cannot be read (the stamp is removed after success).
    #[arg(long)]
    force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// libostree's cleanup announces what it freed on stdout with `g_print()`;
/// our stdout belongs to the report (`--json` must stay parseable), so route
/// it to the log.
fn quiet_libostree_prints() {
    stagehand::glib::set_print_handler(|s| log::info!("libostree: {}", s.trim_end()));
}

pub fn finalize_stamp(cli: &crate::Cli, args: &FinalizeStampArgs) -> Result<(), CliError> {
    let sysroot = stagehand::open_sysroot(&cli.sysroot, None)?;
    if args.record {
        let staged = stagehand::record_staged(&sysroot)?;
        if args.json {
            print_json(&serde_json::json!({ "staged": staged }));
        } else {
            match staged {
                Some(id) => println!("recorded staged deployment {id}"),
                None => println!("nothing is staged"),
            }
        }
        return Ok(());
    }
    // The lock also makes libostree remount a read-only /sysroot writable
    // in our mount namespace, so the stamp can be written.
    let lock = crate::lock(cli, &sysroot)?;
    let outcome = match stagehand::record_finalized(&lock, None) {
        Ok(o) => o,
        Err(e) => {
            // The stamp could not be decided or written (I/O, a damaged
            // record). The boot counter must not depend on that bookkeeping:
            // arm the new default if it really is a deployment on trial
            // (arm_finalized checks), then report the stamp's error.
            let default = lock
                .sysroot()
                .deployments()
                .into_iter()
                .find(|d| !d.is_staged());
            let booted = lock.sysroot().booted_deployment();
            if let Some(d) = default.filter(|d| booted.as_ref().is_none_or(|b| !b.equal(d))) {
                let id = stagehand::DeploymentId::of(&d);
                let armed = stagehand::Config::load(&args.config)
                    .and_then(|cfg| BootAssessment::new(lock.sysroot(), cfg))
                    .and_then(|ba| ba.arm_finalized(&lock, &id));
                if let Err(a) = armed {
                    log::warn!("arming the boot counter of {id}: {a}");
                }
            }
            return Err(e.into());
        }
    };
    // The same evidence that writes the stamp arms the boot counter: the
    // deployment became the default now, not when it was staged.
    let armed = match &outcome {
        stagehand::FinalizeOutcome::Stamped { deployment, .. } => {
            let armed = stagehand::Config::load(&args.config)
                .and_then(|cfg| BootAssessment::new(lock.sysroot(), cfg))
                .and_then(|ba| ba.arm_finalized(&lock, deployment));
            match armed {
                Ok(a) => Some(a),
                Err(e) => {
                    // The stamp is written; report the counter failure
                    // after saying so.
                    println!("{outcome}");
                    return Err(e.into());
                }
            }
        }
        _ => None,
    };
    if args.json {
        let mut v = serde_json::to_value(&outcome).expect("serializable");
        v["counter"] = serde_json::to_value(&armed).expect("serializable");
        print_json(&v);
    } else {
        println!("{outcome}");
        match &armed {
            Some(Armed::Armed { backend, tries, .. }) => {
                println!("armed the {backend} boot counter: {tries} tries")
            }
            Some(Armed::Skipped { reason, .. }) => println!("boot counter not armed: {reason}"),
            None => {}
        }
    }
    Ok(())
}

pub fn autocleanup(cli: &crate::Cli, args: &AutocleanupArgs) -> Result<(), CliError> {
    // Without a stamp or the retention trigger (the pins of an ended trial,
    // left by mark-good), stop before the sysroot is even opened: this is
    // what every boot without a finalized update costs (when the unit's
    // condition does not already skip it).
    // A corrupt stamp is reported here too, unless the trigger is set: then
    // the library releases the pins first (that needs no stamp) and reports
    // the stamp after.
    let retention_trigger = cli.sysroot.join(stagehand::health::RETENTION_TRIGGER);
    if !args.force
        && !retention_trigger.exists()
        && stagehand::cleanup::pending_cleanup_at(&cli.sysroot)?.is_none()
    {
        if args.json {
            print_json(&CleanupReport::default());
        } else {
            println!("no cleanup pending");
        }
        return Ok(());
    }
    quiet_libostree_prints();
    let sysroot = stagehand::open_sysroot(&cli.sysroot, None)?;
    let opts = CleanupOptions::new()
        .lock_timeout(Duration::from_secs(cli.lock_timeout))
        .force(args.force);
    let report = stagehand::autocleanup(&sysroot, &opts, None)?;
    if args.json {
        print_json(&report);
        return Ok(());
    }
    if !report.released_pins.is_empty() {
        println!(
            "released stagehand's pins on {} (the trial they protected has ended)",
            report
                .released_pins
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !report.performed {
        println!("no cleanup pending");
        return Ok(());
    }
    let list = |v: &[stagehand::DeploymentId]| {
        v.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let after = match &report.stamp {
        Some(CleanupStamp::Finalized {
            deployment,
            removed,
            ..
        }) if removed.is_empty() => format!("after finalizing {deployment}"),
        Some(CleanupStamp::Finalized {
            deployment,
            removed,
            ..
        }) => format!(
            "after finalizing {deployment} and removing {}",
            list(removed)
        ),
        Some(CleanupStamp::Removed { removed, .. }) => {
            format!("after removing {}", list(removed))
        }
        Some(CleanupStamp::Legacy) => "(stamp written by an older tool)".into(),
        Some(CleanupStamp::Newer { version }) => format!("(stamp format version {version})"),
        Some(_) => "(stamp of an unknown kind)".into(),
        None => "(forced)".into(),
    };
    println!(
        "cleaned up {after}: {} deployment(s) removed, {} objects ({}) freed",
        report.deployments_removed.len(),
        report.objects_freed,
        stagehand::glib::format_size(report.bytes_freed)
    );
    for d in &report.deployments_removed {
        println!("  removed {d}");
    }
    if report.stamp.is_some() && !report.stamp_removed {
        println!("the cleanup stamp was kept: it changed while the cleanup ran");
    }
    Ok(())
}
