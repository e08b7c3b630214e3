//! The crash sweep: every state-changing operation of stagehand, killed
//! (SIGKILL of its whole process tree) at its k-th mutating system call, on a
//! booted test-bed machine restored to the same start state before each kill.
//!
//! For each operation of [`OPERATIONS`]: build its start state (a real
//! sysroot made with the real `ostree` CLI), run the operation once under the
//! test bed's ptrace tracer to list its crash points, then for each chosen
//! point `k` restore the start state, boot, run the operation again and kill
//! it on entry to its k-th mutating call. After each kill the invariants of
//! docs/reliability.md are checked (`checks::invariants`), then the operation
//! is run again and must end exactly where an uninterrupted run ends
//! (`checks::end_state`). [`table`] prints operation, crash points, tried,
//! violations.
//!
//! # The `+reboot` rows
//!
//! A kill in the same boot is not all a crash can be: a power cut (or a
//! watchdog) is followed by a reboot, and the next boot's units, not a
//! re-run of the operation, must pick up the pieces. For the operations
//! where that matters (`finalize-stamp`, `autocleanup`, `assess`,
//! `mark-good`, `mark-bad`, `mark-bad-finalized`, `health-deadline`,
//! `boot-units`) a row `<operation>+reboot` starts from the same state, with
//! `auto-reboot = true` in every deployment's `/etc/stagehand/stagehand.conf`.
//! After the kill at point `k` the machine is powered off (its `/run` is
//! lost, as in a power cut) and booted again the way the bootloader boots:
//! GRUB's model (`grubenv::simulate_boot_file`, which counts the boot
//! against an armed counter) picks the default deployment or, when the
//! counter ran out, the fallback. The boot's units run in systemd's order:
//! `assess`; `mark-good` if the booted deployment is on trial and the row's
//! boots are *healthy* (boot-complete.target reached: every row but those
//! whose operation fails the update, `mark-bad`, `mark-bad-finalized` and
//! `health-deadline`, where the failure recurs); `health-deadline --now`
//! with a reboot command that leaves a trace in `/run`; `autocleanup` if
//! its unit's conditions hold. After each such boot:
//!
//! 1. every unit succeeds;
//! 2. the invariants of a kill hold (every state file parses, `ostree admin
//!    status` succeeds, ...), with this boot's booted deployment and its
//!    known-good rollback (read before the units ran) listed and intact;
//! 3. the default deployment has no failure verdict (health `failed`, or
//!    its commit denylisted) while a known-good deployment exists;
//! 4. the running deployment has a failure verdict only if the deadline
//!    requested a reboot in this boot. (A person who picks a failed entry
//!    in the boot menu is the other explanation the design allows; here the
//!    bootloader picks every boot, so it never applies.)
//! 5. A requested reboot is followed, up to three boots in all; the third
//!    requests none.
//!
//! Where the boots settle must not depend on `k`: the deployments in order
//! with their health and which one runs, the denylist, whether a cleanup
//! or the retention housekeeping is pending, and the GRUB environment's
//! variables equal what the same power cut and boots give after the
//! uninterrupted run (`checks::settled_state`; reasons, attempts, serials
//! and timestamps left out: a deadline's verdict on a boot that failed
//! again reads differently from mark-bad's, and a boot more or less is
//! counted). The re-run in the same boot and its byte-exact comparison are
//! the plain rows' job; a `+reboot` row does neither.
//!
//! The `stagehand-crashsweep` command runs it (`sh scripts/crashsweep.sh` is
//! the full sweep, every point); the `crashsweep` test of the CLI crate runs
//! a sample in CI. Needs root, like the test bed.

#![deny(missing_docs, unused_must_use)]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use stagehand_testbed::crashpoints::{self, Point, Run};
use stagehand_testbed::Machine;

mod checks;
mod operations;

pub use operations::OPERATIONS;

use operations::{Argv, Op};

/// Which crash points of each operation to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Points {
    /// Every crash point: the full sweep.
    All,
    /// `n` evenly spaced points (the first and last included; the middle one
    /// for `n == 1`) plus up to `n` evenly chosen *commit points* (a rename
    /// or unlink of a stagehand state file, where a half-done change becomes
    /// visible).
    Sample(usize),
}

impl Points {
    /// `full`/`all` or a number, as `--points` and `STAGEHAND_CRASHSWEEP` take it.
    pub fn parse(s: &str) -> Option<Points> {
        match s {
            "full" | "all" => Some(Points::All),
            n => n.parse().ok().filter(|n| *n > 0).map(Points::Sample),
        }
    }
}

/// What to sweep.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `stagehand` binary under test (run inside the machines).
    pub stagehand: PathBuf,
    /// Which crash points to try.
    pub points: Points,
    /// Which operations (names of [`OPERATIONS`]); all when `None`.
    pub ops: Option<Vec<String>>,
    /// Print the phases of each kill (boot, kill, invariants) to stderr.
    pub times: bool,
}

/// One operation's line of the table.
#[derive(Debug)]
pub struct Row {
    /// The operation's name.
    pub name: &'static str,
    /// Its start state.
    pub start: &'static str,
    /// How many mutating system calls the uninterrupted run made.
    pub points: usize,
    /// How many of them were tried.
    pub tried: usize,
    /// What was wrong, one message per violation (crash point and what).
    pub violations: Vec<String>,
    /// How long the kills took.
    pub elapsed: Duration,
}

/// Lossy UTF-8.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The CLI's exit status for a library error code (docs/errors.md).
pub(crate) fn exit_for(code: stagehand::ErrorCode) -> i32 {
    10 + code as i32
}

/// The stagehand binary, run inside machines.
pub(crate) struct Stagehand(PathBuf);

impl Stagehand {
    /// The command for `a` inside `m`: every word `@` is the stagehand binary.
    pub(crate) fn command(&self, m: &Machine<'_>, a: &Argv) -> Command {
        let exe = m.host_path(&self.0);
        let full: Vec<String> = a
            .iter()
            .map(|w| if w == "@" { exe.clone() } else { w.clone() })
            .collect();
        m.command(&full)
    }

    /// Run `stagehand args...` inside `m`.
    pub(crate) fn run(&self, m: &Machine<'_>, args: &[&str]) -> Output {
        let mut a = vec!["@".to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        self.command(m, &a).output().unwrap()
    }

    /// Run `stagehand args...` inside `m`, panicking on failure; its stdout.
    pub(crate) fn ok(&self, m: &Machine<'_>, args: &[&str]) -> String {
        let out = self.run(m, args);
        assert!(
            out.status.success(),
            "stagehand {args:?} failed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

/// Which of `points` to try (1-based).
fn choose(points: &[Point], which: Points) -> Vec<usize> {
    let n = points.len();
    let s = match which {
        Points::All => return (1..=n).collect(),
        Points::Sample(s) => s.max(1),
    };
    let spaced = |len: usize| -> Vec<usize> {
        if len <= s {
            (0..len).collect()
        } else if s == 1 {
            vec![len / 2]
        } else {
            (0..s).map(|i| i * (len - 1) / (s - 1)).collect()
        }
    };
    let mut ks: BTreeSet<usize> = spaced(n).into_iter().map(|i| i + 1).collect();
    let commits: Vec<usize> = points
        .iter()
        .filter(|p| checks::is_commit_point(p))
        .map(|p| p.index)
        .collect();
    ks.extend(spaced(commits.len()).into_iter().map(|i| commits[i]));
    ks.into_iter().collect()
}

/// How many times a kill at one point is tried when the run does not
/// follow the traced one up to it.
const ATTEMPTS: usize = 3;

/// Why a run killed at `k` did not test crash point `k` of `full`, if it
/// did not: never reached it, or made other calls before it.
fn reach_mismatch(full: &Run, run: &Run, k: usize) -> Option<String> {
    if run.killed_at != Some(k) || run.status.signal() != Some(9) {
        return Some(format!(
            "not reached (the run is not deterministic?): {}\n{}",
            run.status,
            run.listing()
        ));
    }
    full.points
        .iter()
        .zip(&run.points)
        .find(|(a, b)| !checks::same_call(a, b))
        .map(|(a, b)| format!("diverged from the traced run: {a} vs {b}"))
}

/// Sweep one operation.
fn sweep(sh: &Stagehand, op: Op, opts: &Options) -> Row {
    let tb = &op.tb;
    let saved = tb.save_state();
    let machine: RefCell<Option<Machine<'_>>> = RefCell::new(None);
    let boot = || {
        if let Some(m) = machine.borrow_mut().take() {
            m.power_off();
        }
        tb.restore_state(&saved);
        let d = tb
            .deployments()
            .into_iter()
            .find(|d| d.checksum == op.boot)
            .unwrap();
        let m = tb.boot(&d);
        for a in &op.prep {
            operations::run_ok(sh, &m, a);
        }
        *machine.borrow_mut() = Some(m);
    };
    // The uninterrupted run: its crash points and its end state.
    boot();
    let (full, reference, keep) = {
        let g = machine.borrow();
        let m = g.as_ref().unwrap();
        let keep = checks::keepers(m);
        let full = crashpoints::trace(sh.command(m, &op.args));
        assert!(
            full.status.success(),
            "{}: the uninterrupted run failed\n{}",
            op.name,
            full.output()
        );
        let reference = checks::end_state(sh, tb, m, op.any_serial.as_deref());
        (full, reference, keep)
    };
    let mut violations = Vec::new();
    // A `+reboot` row compares with the uninterrupted run followed by the
    // same power cut and boots.
    let settled = op.reboot.map(|r| {
        if let Some(m) = machine.borrow_mut().take() {
            m.power_off();
        }
        let s = checks::after_power_cut(sh, tb, r.healthy);
        for x in &s.violations {
            violations.push(format!("{}, uninterrupted, then a power cut: {x}", op.name));
        }
        s.end
    });
    let ks = choose(&full.points, opts.points);
    let started = Instant::now();
    for &k in &ks {
        let t0 = Instant::now();
        // Threads race (libostree syncs in a worker thread while the main
        // one logs): a killed run may order its calls differently from the
        // traced one and so stop elsewhere. Such a run tests another point;
        // it is tried again, and reported only if it never matches.
        let mut mismatch = None;
        for _ in 0..ATTEMPTS {
            boot();
            let g = machine.borrow();
            let m = g.as_ref().unwrap();
            let run: Run = crashpoints::kill_at(sh.command(m, &op.args), k);
            mismatch = reach_mismatch(&full, &run, k);
            if mismatch.is_none() {
                break;
            }
        }
        let t_boot = t0.elapsed();
        let g = machine.borrow();
        let m = g.as_ref().unwrap();
        let at = full.points[k - 1].to_string();
        let mut bad = |what: String| violations.push(format!("{} killed at {at}: {what}", op.name));
        if let Some(why) = mismatch {
            bad(format!("{why} (in each of {ATTEMPTS} attempts)"));
            continue;
        }
        let t_kill = t0.elapsed();
        if let (Some(r), Some(reference)) = (op.reboot, &settled) {
            // The power is cut where the kill was; the boots that follow
            // must settle where they settle after the uninterrupted run.
            drop(g);
            if let Some(m) = machine.borrow_mut().take() {
                m.power_off();
            }
            let s = checks::after_power_cut(sh, tb, r.healthy);
            let boots = s.boots.join(" → ");
            for x in s.violations {
                bad(format!("then a power cut ({boots}): {x}"));
            }
            if !s.end.is_empty() && &s.end != reference {
                bad(format!(
                    "then a power cut ({boots}): settled elsewhere:\n{}",
                    checks::diff(reference, &s.end)
                ));
            }
            if opts.times {
                eprintln!(
                    "  k={k}: boot+kill {t_boot:?} {t_kill:?} boots {boots} {:?}",
                    t0.elapsed()
                );
            }
            continue;
        }
        for v in checks::invariants(sh, tb, m, &keep) {
            bad(v);
        }
        let t_inv = t0.elapsed();
        if opts.times {
            eprintln!("  k={k}: boot+kill {t_boot:?} {t_kill:?} invariants {t_inv:?}");
        }
        // Run again: it converges to the uninterrupted end state.
        let out = sh.command(m, &op.args).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code != 0 && !op.rerun_codes.contains(&code) {
            bad(format!(
                "re-run failed ({}): {}",
                out.status,
                text(&out.stderr)
            ));
            continue;
        }
        let end = checks::end_state(sh, tb, m, op.any_serial.as_deref());
        if end != reference {
            bad(format!(
                "re-run ended elsewhere:\n{}",
                checks::diff(&reference, &end)
            ));
        }
    }
    if let Some(m) = machine.borrow_mut().take() {
        m.power_off();
    }
    Row {
        name: op.name,
        start: op.start,
        points: full.points.len(),
        tried: ks.len(),
        violations,
        elapsed: started.elapsed(),
    }
}

/// Run the sweep; `progress` is called with each row as it completes.
///
/// Makes this process the reaper of killed agents
/// ([`crashpoints::adopt_orphans`]): run it in a process that starts no
/// other children meanwhile.
///
/// Panics when an operation's start state cannot be built or its
/// uninterrupted run fails (a broken harness, not a violation), and when an
/// operation name is unknown.
pub fn run(opts: &Options, mut progress: impl FnMut(&Row)) -> Vec<Row> {
    stagehand_testbed::require_prerequisites();
    // Killed agents are reaped at once, as systemd would: a zombie would keep
    // its PID alive for the stale-temporary checks of the re-run.
    crashpoints::adopt_orphans();
    if let Some(w) = &opts.ops {
        for n in w {
            assert!(
                OPERATIONS.iter().any(|(o, _)| o == n),
                "unknown operation {n:?}; the operations: {}",
                OPERATIONS
                    .iter()
                    .map(|(o, _)| *o)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let sh = Stagehand(opts.stagehand.clone());
    let mut rows = Vec::new();
    // One start state at a time: each is a whole sysroot.
    for &(name, _) in OPERATIONS {
        if opts
            .ops
            .as_ref()
            .is_some_and(|w| !w.iter().any(|o| o == name))
        {
            continue;
        }
        let mut ops = operations::ops(&sh, Some(&[name.to_string()]));
        let row = sweep(&sh, ops.remove(0), opts);
        progress(&row);
        rows.push(row);
    }
    rows
}

/// The table: operation, crash points, tried, violations, time.
pub fn table(rows: &[Row]) -> String {
    let mut t = format!(
        "{:<26} {:>12} {:>7} {:>11} {:>9}\n",
        "operation", "crash points", "tried", "violations", "time"
    );
    for r in rows {
        t += &format!(
            "{:<26} {:>12} {:>7} {:>11} {:>8.0}s\n",
            r.name,
            r.points,
            r.tried,
            r.violations.len(),
            r.elapsed.as_secs_f64()
        );
    }
    let (p, k, v) = rows.iter().fold((0, 0, 0), |(p, k, v), r| {
        (p + r.points, k + r.tried, v + r.violations.len())
    });
    t += &format!("{:<26} {p:>12} {k:>7} {v:>11}\n", "total");
    t
}

/// The `stagehand` binary next to the running executable (both built into
/// the same cargo target directory), if it is there.
pub fn sibling_stagehand() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir: &Path = exe.parent()?;
    [dir.join("stagehand"), dir.join("../stagehand")]
        .into_iter()
        .find(|p| p.is_file())
}
