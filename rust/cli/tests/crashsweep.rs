//! The crash sweep in CI: a deterministic sample of crash points of every
//! state-changing operation (`stagehand_crashsweep`, whose command
//! `stagehand-crashsweep` runs the full sweep: docs/reliability.md), the
//! `+reboot` rows included (each kill a power cut, then the next boots).
//!
//! `STAGEHAND_CRASHSWEEP` = `full` or N changes which points are tried
//! (default 1: the middle point and the middle commit point of each
//! operation); `STAGEHAND_CRASHSWEEP_OPS=stage,unstage` restricts the
//! operations.
//!
//! Keep this the only test in this file: the sweep reaps the orphans of the
//! agents it kills with `waitpid(-1)` (`crashpoints::adopt_orphans`), which
//! would steal the children of another test running in the same process.

mod common;

use common::*;
use stagehand_crashsweep::{Options, Points};

#[test]
fn every_state_change_survives_a_kill_at_its_crash_points() {
    let points = std::env::var("STAGEHAND_CRASHSWEEP")
        .ok()
        .map(|s| Points::parse(&s).expect("STAGEHAND_CRASHSWEEP: `full` or a number"))
        .unwrap_or(Points::Sample(1));
    let opts = Options {
        stagehand: EXE.into(),
        points,
        ops: std::env::var("STAGEHAND_CRASHSWEEP_OPS")
            .ok()
            .map(|s| s.split(',').map(String::from).collect()),
        times: std::env::var_os("STAGEHAND_CRASHSWEEP_TIMES").is_some(),
    };
    let rows = stagehand_crashsweep::run(&opts, |r| {
        eprintln!(
            "{}: {} points, {} tried, {} violations",
            r.name,
            r.points,
            r.tried,
            r.violations.len()
        )
    });
    let table = stagehand_crashsweep::table(&rows);
    println!("\n{table}");
    // Every operation was swept and every chosen point was reached.
    let wanted = opts
        .ops
        .as_ref()
        .map_or(stagehand_crashsweep::OPERATIONS.len(), |o| o.len());
    assert_eq!(rows.len(), wanted, "{table}");
    assert!(rows.iter().all(|r| r.points > 0 && r.tried > 0), "{table}");
    let all: Vec<&String> = rows.iter().flat_map(|r| &r.violations).collect();
    assert!(
        all.is_empty(),
        "{table}\n{}",
        all.iter().map(|v| format!("{v}\n\n")).collect::<String>()
    );
}
