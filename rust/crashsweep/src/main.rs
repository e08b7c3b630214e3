//! `stagehand-crashsweep`: kill every state-changing stagehand operation at
//! its crash points on a booted test sysroot and print the table
//! (operation, crash points, tried, violations). Exits 1 on any violation,
//! listing each. Needs root.
//!
//! `scripts/crashsweep.sh` builds it with the `stagehand` binary and runs it;
//! Without `--points` every crash point is tried (the full sweep).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use stagehand_crashsweep::{Options, Points, OPERATIONS};

/// Kill stagehand's state-changing operations at their crash points and check what they leave.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Which crash points of each operation: `full` (every one) or N (N evenly
    /// spaced plus N commit points).
    #[arg(long, value_name = "full|N", default_value = "full", value_parser = parse_points)]
    points: Points,
    /// Only these operations (comma-separated; see --list).
    #[arg(long, value_name = "OP,...", value_delimiter = ',')]
    ops: Option<Vec<String>>,
    /// The stagehand binary under test (default: the one next to this program).
    #[arg(long, value_name = "PATH")]
    stagehand: Option<PathBuf>,
    /// Print how long each kill's phases took.
    #[arg(long)]
    times: bool,
    /// List the operations and their start states, and exit.
    #[arg(long)]
    list: bool,
}

fn parse_points(s: &str) -> Result<Points, String> {
    Points::parse(s).ok_or_else(|| format!("{s:?} is neither `full` nor a positive number"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for (name, start) in OPERATIONS {
            println!("{name:<26} {start}");
        }
        return ExitCode::SUCCESS;
    }
    if let Some(unknown) = args
        .ops
        .iter()
        .flatten()
        .find(|o| !OPERATIONS.iter().any(|(n, _)| n == o))
    {
        eprintln!("error: unknown operation {unknown:?} (see --list)");
        return ExitCode::from(2);
    }
    let Some(stagehand) = args
        .stagehand
        .or_else(stagehand_crashsweep::sibling_stagehand)
    else {
        eprintln!(
            "error: no stagehand binary next to this program; build it \
             (cargo build --release -p stagehand-cli) or pass --stagehand"
        );
        return ExitCode::from(2);
    };
    let opts = Options {
        stagehand,
        points: args.points,
        ops: args.ops,
        times: args.times,
    };
    let rows = stagehand_crashsweep::run(&opts, |r| {
        eprintln!(
            "{}: {} crash points, {} tried, {} violations ({:.0} s)",
            r.name,
            r.points,
            r.tried,
            r.violations.len(),
            r.elapsed.as_secs_f64()
        );
    });
    print!("{}", stagehand_crashsweep::table(&rows));
    let violations: Vec<&String> = rows.iter().flat_map(|r| &r.violations).collect();
    if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        for v in violations {
            eprintln!("\n{v}");
        }
        ExitCode::FAILURE
    }
}
