//! The crash sweep: every state-changing operation of stagehand, killed
//! (SIGKILL of its whole process tree) at its k-th mutating system call, on a
//! booted test-bed machine restored to the same start state before each kill.
//!
//! After each kill the invariants of docs/reliability.md are checked, then
//! the operation is run again and must end exactly where an uninterrupted run
//! ends. The test prints a table (operation, crash points, tried, violations)
//! and fails on any violation.
//!
//! Which points are tried (`STAGEHAND_CRASHSWEEP`):
//! - unset (CI): a deterministic sample per operation: the point in the
//!   middle of the run and one *commit point* (the middle rename or unlink
//!   of a stagehand state file: where a half-done operation becomes
//!   visible), see [`sample`];
//! - `full`: every crash point of every operation (the full sweep; see
//!   docs/reliability.md for the command);
//! - a number N: N evenly spaced points plus N evenly spaced commit points.
//!
//! `STAGEHAND_CRASHSWEEP_OPS=stage,unstage` restricts the sweep to some
//! operations.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::Value;
use stagehand_testbed::crashpoints::{self, Point, Run};
use stagehand_testbed::{Commit, Machine, Testbed};

/// Points per operation in the CI sample, besides the commit points.
const SAMPLE: usize = 1;

const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const GUARD_DIR: &str = "/var/lib/stagehand/guard";

/// One argv run inside the machine; `@` as the first word is stagehand.
type Argv = Vec<String>;

fn argv(words: &[&str]) -> Argv {
    words.iter().map(|s| s.to_string()).collect()
}

/// An operation to sweep, from a start state.
struct Op {
    name: &'static str,
    /// The start sysroot (saved and restored before every run).
    tb: Testbed,
    /// Which deployment (checksum) the machine boots.
    boot: String,
    /// Commands that rebuild the start state's `/run` after each boot
    /// (a staged deployment lives there).
    prep: Vec<Argv>,
    /// The operation (a stagehand command line).
    args: Argv,
    /// Exit statuses besides 0 a re-run may end with, having done nothing
    /// because the interrupted run already finished (the guard refuses to
    /// begin a step twice: that is its point).
    rerun_codes: Vec<i32>,
    /// A commit whose deployment serial may differ after an interrupted
    /// run (a killed checkout leaves an orphan, the next staging takes the
    /// next serial).
    any_serial: Option<String>,
}

/// `[v1, v2]` deployed, v2 booted; v3 committed with a vendor pre-upgrade
/// hook, so staging it runs the hook in its sandbox.
fn base() -> (Testbed, Vec<String>) {
    let (tb, mut sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0").file(
        "usr/lib/stagehand/pre-upgrade.d/10-check",
        "#!/bin/sh\ntest -d \"$STAGEHAND_OLD_ROOT\"\n",
        0o755,
    ));
    sums.push(v3);
    let guard = tb
        .sysroot()
        .join("ostree/deploy")
        .join(tb.stateroot())
        .join("var")
        .join(GUARD_DIR.trim_start_matches("/var/"));
    std::fs::create_dir_all(guard).unwrap();
    // A GRUB environment block, made by GRUB's own tool.
    let env = grubenv(&tb);
    std::fs::create_dir_all(env.parent().unwrap()).unwrap();
    let out = Command::new("grub-editenv")
        .arg(&env)
        .arg("create")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (tb, sums)
}

/// The GRUB environment block, `/boot/grub2/grubenv` in the machine.
fn grubenv(tb: &Testbed) -> PathBuf {
    tb.sysroot().join("boot/grub2/grubenv")
}

/// Run `argv` in `m` (`@` = stagehand), panicking on failure.
fn run_ok(m: &Machine<'_>, a: &Argv) {
    if a[0] == "@" {
        let args: Vec<&str> = a[1..].iter().map(|s| s.as_str()).collect();
        ok_in(m, &args);
    } else {
        m.ok(a);
    }
}

/// v3 staged from v2 with its record, finalized at shutdown with the cleanup
/// stamp, then booted (not yet assessed).
fn booted_into_v3() -> (Testbed, Vec<String>) {
    let (tb, sums) = base();
    let m = tb.boot_default();
    ok_in(&m, &["stage", &sums[2]]);
    ok_in(&m, &["finalize-stamp", "--record"]);
    assert!(m.finalize().status.success());
    ok_in(&m, &["finalize-stamp"]);
    m.power_off();
    assert_eq!(tb.deployments()[0].checksum, sums[2]);
    (tb, sums)
}

fn ops() -> Vec<Op> {
    let mut ops = Vec::new();
    let wanted: Option<Vec<String>> = std::env::var("STAGEHAND_CRASHSWEEP_OPS")
        .ok()
        .map(|s| s.split(',').map(String::from).collect());
    let want = |n: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == n));
    let simple = |name: &'static str, prep: fn(&str) -> Vec<Argv>, args: fn(&str) -> Argv| {
        let (tb, sums) = base();
        let boot = sums[1].clone();
        Op {
            name,
            prep: prep(&sums[2]),
            args: args(&sums[2]),
            tb,
            boot,
            rerun_codes: vec![],
            any_serial: None,
        }
    };
    if want("stage") {
        let mut op = simple("stage", |_| vec![], |v3| argv(&["@", "stage", v3]));
        op.any_serial = Some(op.args[2].clone());
        ops.push(op);
    }
    if want("unstage") {
        ops.push(simple("unstage", staged, |_| argv(&["@", "unstage"])));
    }
    if want("finalization-lock") {
        ops.push(simple("finalization-lock", staged, |_| {
            argv(&["@", "finalization", "lock"])
        }));
    }
    if want("finalization-unlock") {
        ops.push(simple(
            "finalization-unlock",
            |v3| {
                let mut p = staged(v3);
                p.push(argv(&["@", "finalization", "lock"]));
                p
            },
            |_| argv(&["@", "finalization", "unlock"]),
        ));
    }
    if want("finalize-stamp") {
        ops.push(simple(
            "finalize-stamp",
            |v3| {
                let mut p = staged(v3);
                p.push(argv(&["@", "finalize-stamp", "--record"]));
                p.push(argv(&["ostree", "admin", "finalize-staged"]));
                p
            },
            |_| argv(&["@", "finalize-stamp"]),
        ));
    }
    if want("guard-begin") {
        let mut op = simple(
            "guard-begin",
            |_| vec![],
            |_| argv(&["@", "guard", "begin", "step", "--digest", DIGEST]),
        );
        op.rerun_codes = vec![exit_for(stagehand::ErrorCode::Interrupted)];
        ops.push(op);
    }
    if want("guard-commit") {
        let mut op = simple(
            "guard-commit",
            |_| vec![argv(&["@", "guard", "begin", "step", "--digest", DIGEST])],
            |_| argv(&["@", "guard", "commit", "step", "--digest", DIGEST]),
        );
        op.rerun_codes = vec![exit_for(stagehand::ErrorCode::AlreadyComplete)];
        ops.push(op);
    }
    let arm = || argv(&["@", "bootloader", "--grubenv", "/boot/grub2/grubenv", "arm"]);
    if want("grubenv-arm") {
        ops.push(simple(
            "grubenv-arm",
            |_| vec![],
            |_| argv(&["@", "bootloader", "--grubenv", "/boot/grub2/grubenv", "arm"]),
        ));
    }
    if want("grubenv-bless") {
        let mut op = simple(
            "grubenv-bless",
            |_| vec![],
            |_| {
                argv(&[
                    "@",
                    "bootloader",
                    "--grubenv",
                    "/boot/grub2/grubenv",
                    "bless",
                ])
            },
        );
        op.prep = vec![arm()];
        ops.push(op);
    }
    let from_v3 = |name: &'static str, before: &[&[&str]], args: Argv| {
        let (tb, sums) = booted_into_v3();
        if !before.is_empty() {
            let m = tb.boot(&tb.deployments()[0]);
            for a in before {
                ok_in(&m, a);
            }
            m.power_off();
        }
        Op {
            name,
            tb,
            boot: sums[2].clone(),
            prep: vec![],
            args,
            rerun_codes: vec![],
            any_serial: None,
        }
    };
    if want("autocleanup") {
        ops.push(from_v3("autocleanup", &[], argv(&["@", "autocleanup"])));
        // After mark-good ended the trial: the retention housekeeping it
        // defers (two pins released, v1 stamped and dropped), then the prune.
        ops.push(from_v3(
            "autocleanup after mark-good",
            &[&["assess"], &["mark-good"]],
            argv(&["@", "autocleanup"]),
        ));
    }
    if want("assess") {
        ops.push(from_v3("assess", &[], argv(&["@", "assess"])));
    }
    if want("mark-good") {
        ops.push(from_v3(
            "mark-good",
            &[&["assess"]],
            argv(&["@", "mark-good"]),
        ));
    }
    if want("mark-bad") {
        ops.push(from_v3(
            "mark-bad",
            &[&["assess"]],
            argv(&["@", "mark-bad", "--reason", "boom"]),
        ));
    }
    if want("denylist-remove") {
        let mut op = from_v3(
            "denylist-remove",
            &[&["assess"], &["mark-bad", "--reason", "boom"]],
            vec![],
        );
        op.args = argv(&["@", "denylist", "remove", &op.boot.clone()]);
        // Killed after its change was durable (releasing the lock), running
        // it again says the commit is not on the denylist.
        op.rerun_codes = vec![exit_for(stagehand::ErrorCode::InvalidArgument)];
        ops.push(op);
    }
    ops
}

/// The prep that stages v3 (with its hook).
fn staged(v3: &str) -> Vec<Argv> {
    vec![argv(&["@", "stage", v3])]
}

/// The command for `a` inside `m`.
fn command(m: &Machine<'_>, a: &Argv) -> Command {
    let mut full = a.clone();
    if full[0] == "@" {
        full[0] = m.host_path(EXE);
    }
    m.command(&full)
}

/// Whether a crash point is a commit point of a stagehand state file: a
/// rename or unlink in the health store's directory, `/run/stagehand`, the
/// guard directory, or of the cleanup stamp.
fn is_commit_point(p: &Point) -> bool {
    (p.syscall.starts_with("rename") || p.syscall.starts_with("unlink"))
        && [
            "ostree/stagehand/",
            "/run/stagehand/",
            "/.cleanup",
            "/stagehand/guard/",
        ]
        .iter()
        .any(|s| p.detail.contains(s))
}

/// Whether two runs made the same call: same system call on the same files,
/// ignoring numbers and the random part of temporary names (libostree's
/// `staging-<boot id>-XXXXXX`, `tmp.XXXXXX`), which differ from run to run.
fn same_call(a: &Point, b: &Point) -> bool {
    fn norm(p: &Point) -> String {
        p.detail
            .split(['/', ' '])
            .map(|c| {
                if c.contains("tmp") || c.contains("staging-") {
                    "*"
                } else {
                    c
                }
            })
            .collect::<Vec<_>>()
            .join("/")
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect()
    }
    a.syscall == b.syscall && norm(a) == norm(b)
}

/// Which of `points` to try: all (`full`), or `n` evenly spaced (the first
/// and the last included) plus up to `n` of the commit points, evenly chosen.
fn sample(points: &[Point]) -> Vec<usize> {
    let n = points.len();
    let mode = std::env::var("STAGEHAND_CRASHSWEEP").unwrap_or_default();
    if mode == "full" {
        return (1..=n).collect();
    }
    let s: usize = mode.parse().unwrap_or(SAMPLE).max(1);
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
        .filter(|p| is_commit_point(p))
        .map(|p| p.index)
        .collect();
    ks.extend(spaced(commits.len()).into_iter().map(|i| commits[i]));
    ks.into_iter().collect()
}

/// The deployments the start state must keep: the booted one and the
/// rollback (the first non-staged one after it), with their serials.
fn keepers(m: &Machine<'_>) -> Vec<(String, u32)> {
    let st = m.status();
    let b = st.iter().position(|d| d.has("booted")).unwrap();
    let mut keep = vec![(st[b].checksum.clone(), st[b].serial)];
    if let Some(r) = st[b + 1..].iter().find(|d| !d.has("staged")) {
        keep.push((r.checksum.clone(), r.serial));
    }
    keep
}

/// The invariants every interrupted run must leave; returns the violations.
fn invariants(tb: &Testbed, m: &Machine<'_>, keep: &[(String, u32)]) -> Vec<String> {
    let mut v = Vec::new();
    // `ostree admin status` succeeds; booted and rollback are intact.
    let out = m.run(&["ostree", "admin", "status"]);
    if !out.status.success() {
        v.push(format!("ostree admin status failed: {}", text(&out.stderr)));
        return v;
    }
    let st = stagehand_testbed::parse_admin_status(&text(&out.stdout));
    for (c, s) in keep {
        if !st.iter().any(|d| &d.checksum == c && d.serial == *s) {
            v.push(format!("deployment {c}.{s} is gone: {st:?}"));
        }
        let dir = tb
            .sysroot()
            .join("ostree/deploy")
            .join(tb.stateroot())
            .join("deploy")
            .join(format!("{c}.{s}"));
        if !dir.join("usr/bin").is_dir() {
            v.push(format!("deployment directory {} damaged", dir.display()));
        }
    }
    if !st.iter().any(|d| d.has("booted")) {
        v.push("no booted deployment".into());
    }
    // Every stagehand state file parses and reads as a state the model allows.
    let out = sh_in(m, &["status", "--json"]);
    if !out.status.success() {
        v.push(format!("stagehand status failed: {}", text(&out.stderr)));
        return v;
    }
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    if !j["health_error"].is_null() {
        v.push(format!("health store: {}", j["health_error"]));
    }
    let deps = j["deployments"].as_array().unwrap();
    let staged: Vec<&Value> = deps.iter().filter(|d| d["staged"] == true).collect();
    if staged.len() > 1 {
        v.push(format!("{} staged deployments", staged.len()));
    }
    for d in &staged {
        if d["unvetted"] == true && d["finalization_locked"] != true {
            v.push(format!("unvetted staged deployment not locked: {d}"));
        }
    }
    for d in deps {
        if d["booted"] == true && d["health"] == "failed" && d["on_trial"] == false {
            // A concluded failure of the running system is allowed only with
            // a verdict (mark-bad's reason).
            if d["health_reason"].is_null() {
                v.push(format!("booted deployment failed without a verdict: {d}"));
            }
        }
    }
    match stagehand::cleanup::pending_cleanup_at(tb.sysroot()) {
        Ok(_) => {}
        Err(e) => v.push(format!("cleanup stamp: {e}")),
    }
    if let Err(e) = stagehand::redline::status(&guard_dir(tb), "step") {
        v.push(format!("guard stamp: {e}"));
    }
    if grubenv(tb).exists() {
        if let Err(e) = stagehand::bootloader::grubenv::GrubEnv::read(&grubenv(tb)) {
            v.push(format!("grubenv: {e}"));
        }
        // And GRUB's own tool reads it.
        let out = Command::new("grub-editenv")
            .arg(grubenv(tb))
            .arg("list")
            .output()
            .unwrap();
        if !out.status.success() {
            v.push(format!("grub-editenv list: {}", text(&out.stderr)));
        }
    }
    let rec = m.run(&["cat", stagehand::hooks::UNVETTED_PATH]);
    if rec.status.success() {
        if let Err(e) = stagehand::formats::parse_unvetted(&rec.stdout) {
            v.push(format!("unvetted record: {e}"));
        }
    }
    let rec = m.run(&["cat", stagehand::cleanup::FINALIZE_RECORD_PATH]);
    if rec.status.success() {
        if let Err(e) = stagehand::formats::parse_finalize_record(&rec.stdout) {
            v.push(format!("finalize record: {e}"));
        }
    }
    v
}

fn guard_dir(tb: &Testbed) -> PathBuf {
    tb.sysroot()
        .join("ostree/deploy")
        .join(tb.stateroot())
        .join("var")
        .join(GUARD_DIR.trim_start_matches("/var/"))
}

/// What an operation leaves, normalized for timestamps (and the serial of
/// `any_serial`): stagehand's status, what ostree shows, the files in /run,
/// the cleanup stamp's kind and the guard step's phase.
fn end_state(tb: &Testbed, m: &Machine<'_>, any_serial: Option<&str>) -> String {
    let mut j = status_json(m);
    if let Some(list) = j["denylist"].as_array_mut() {
        for d in list {
            d["since"] = Value::Null;
        }
    }
    if j["last_rollback"].is_object() {
        j["last_rollback"]["at"] = Value::Null;
    }
    for d in j["deployments"].as_array_mut().unwrap() {
        d["health_changed"] = Value::Null;
        if any_serial.is_some_and(|c| d["checksum"] == c) {
            d["serial"] = Value::Null;
        }
    }
    let mut files: String = m
        .sh("ostree admin status; ls /ostree/deploy/*/deploy/; ls -A /run/ostree /run/stagehand /sysroot /sysroot/ostree/stagehand /var/lib/stagehand/guard /boot/grub2 2>/dev/null || true; ls /boot/loader/entries/")
        .lines()
        // libostree's linked temporary origin file (tmp.XXXXXX), left by a
        // kill between its link and its rename: its own garbage, ignored by
        // its readers and removed by its next cleanup.
        .filter(|l| !l.starts_with("tmp."))
        .map(|l| format!("{l}\n"))
        .collect();
    if let Some(c) = any_serial {
        for n in 0..6 {
            files = files.replace(&format!("{c}.{n}"), &format!("{c}.N"));
        }
        files = files.replace(&format!("{c}.N.origin"), "");
    }
    let stamp = match stagehand::cleanup::pending_cleanup_at(tb.sysroot()) {
        Ok(Some(s)) => format!("{:?}", s.deployment()),
        Ok(None) => "no stamp".into(),
        Err(e) => format!("{e}"),
    };
    let guard = match stagehand::redline::status(&guard_dir(tb), "step") {
        Ok(s) => format!("{:?}", s.map(|s| s.phase)),
        Err(e) => format!("{e}"),
    };
    let env = Command::new("grub-editenv")
        .arg(grubenv(tb))
        .arg("list")
        .output()
        .map(|o| text(&o.stdout) + &text(&o.stderr))
        .unwrap_or_default();
    format!(
        "{}\n{files}\ncleanup: {stamp}\nguard: {guard}\ngrubenv:\n{env}",
        serde_json::to_string_pretty(&j).unwrap()
    )
}

/// The lines only in `a` (`-`) or only in `b` (`+`), with line numbers.
fn diff(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for (i, l) in al.iter().enumerate() {
        if bl.get(i) != Some(l) {
            out += &format!("{i:4} - {l}\n{i:4} + {}\n", bl.get(i).unwrap_or(&"<none>"));
        }
    }
    for (i, l) in bl.iter().enumerate().skip(al.len()) {
        out += &format!("{i:4} + {l}\n");
    }
    out
}

struct Row {
    name: &'static str,
    points: usize,
    tried: usize,
    violations: Vec<String>,
}

fn sweep(op: Op) -> Row {
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
            run_ok(&m, a);
        }
        *machine.borrow_mut() = Some(m);
    };
    // The uninterrupted run: its crash points and its end state.
    boot();
    let (full, reference, keep) = {
        let g = machine.borrow();
        let m = g.as_ref().unwrap();
        let keep = keepers(m);
        let full = crashpoints::trace(command(m, &op.args));
        assert!(
            full.status.success(),
            "{}: the uninterrupted run failed\n{}",
            op.name,
            full.output()
        );
        let reference = end_state(tb, m, op.any_serial.as_deref());
        (full, reference, keep)
    };
    let ks = sample(&full.points);
    let started = std::time::Instant::now();
    let mut violations = Vec::new();
    for &k in &ks {
        let t0 = std::time::Instant::now();
        boot();
        let t_boot = t0.elapsed();
        let g = machine.borrow();
        let m = g.as_ref().unwrap();
        let run: Run = crashpoints::kill_at(command(m, &op.args), k);
        let at = full.points[k - 1].to_string();
        let mut bad = |what: String| violations.push(format!("{} killed at {at}: {what}", op.name));
        if run.killed_at != Some(k) || run.status.signal() != Some(9) {
            bad(format!(
                "not reached (the run is not deterministic?): {}\n{}",
                run.status,
                run.listing()
            ));
            continue;
        }
        if let Some((a, b)) = full
            .points
            .iter()
            .zip(&run.points)
            .find(|(a, b)| !same_call(a, b))
        {
            bad(format!("diverged from the traced run: {a} vs {b}"));
            continue;
        }
        let t_kill = t0.elapsed();
        for v in invariants(tb, m, &keep) {
            bad(v);
        }
        let t_inv = t0.elapsed();
        if std::env::var_os("STAGEHAND_CRASHSWEEP_TIMES").is_some() {
            eprintln!("  k={k}: boot {t_boot:?} kill {t_kill:?} invariants {t_inv:?}");
        }
        // Run again: it converges to the uninterrupted end state.
        let out = command(m, &op.args).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code != 0 && !op.rerun_codes.contains(&code) {
            bad(format!(
                "re-run failed ({}): {}",
                out.status,
                text(&out.stderr)
            ));
            continue;
        }
        let end = end_state(tb, m, op.any_serial.as_deref());
        if end != reference {
            bad(format!(
                "re-run ended elsewhere:\n{}",
                diff(&reference, &end)
            ));
        }
    }
    if let Some(m) = machine.borrow_mut().take() {
        m.power_off();
    }
    eprintln!(
        "{}: {} points tried in {:?}",
        op.name,
        ks.len(),
        started.elapsed()
    );
    Row {
        name: op.name,
        points: full.points.len(),
        tried: ks.len(),
        violations,
    }
}

#[test]
fn every_state_change_survives_a_kill_at_its_crash_points() {
    stagehand_testbed::require_prerequisites();
    let mut rows = Vec::new();
    for op in ops() {
        let row = sweep(op);
        eprintln!(
            "{}: {} points, {} tried, {} violations",
            row.name,
            row.points,
            row.tried,
            row.violations.len()
        );
        rows.push(row);
    }
    let mut table = format!(
        "\n{:<22} {:>12} {:>7} {:>11}\n",
        "operation", "crash points", "tried", "violations"
    );
    for r in &rows {
        table += &format!(
            "{:<22} {:>12} {:>7} {:>11}\n",
            r.name,
            r.points,
            r.tried,
            r.violations.len()
        );
    }
    println!("{table}");
    let all: Vec<&String> = rows.iter().flat_map(|r| &r.violations).collect();
    assert!(
        all.is_empty(),
        "{table}\n{}",
        all.iter().map(|v| format!("{v}\n\n")).collect::<String>()
    );
}
