//! `stagehand-bench`: stagehand next to the `ostree` CLI doing the same work,
//! in the same booted test-bed sysroot, in the same run.
//!
//! Usage: `cargo run --release -p stagehand-bench [-- [--reps N] [--files N] [BENCH...]]`
//! Benchmarks: `stage`, `hooks` (default: all). Prints one table row per
//! benchmark with the median wall time of each side and their ratio.
//!
//! - `stage`: staging a commit, against `ostree admin deploy --stage`.
//! - `hooks`: the cost of the bubblewrap sandbox per pre-upgrade hook, against
//!   exec'ing the same no-op hook directly (no sandbox) in the same machine.
//!   Target: at most 20 ms per hook.
//!
//! When re-executed inside a booted machine with `__inner ...`, it performs the
//! library side of a benchmark in-process (what a daemon linking stagehand does).

use std::process::Command;
use std::time::{Duration, Instant};

use stagehand_testbed::{Commit, Machine, Testbed};

enum Target {
    /// At most this ratio of stagehand's time to the peer's.
    Ratio(f64),
    /// At most this many milliseconds for stagehand's side.
    Millis(f64),
}

struct Row {
    name: String,
    ours: Vec<Duration>,
    theirs: Vec<Duration>,
    target: Target,
    note: String,
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn inner(args: &[String]) -> Result<(), String> {
    match args.first().map(|s| s.as_str()) {
        Some("stage") => {
            let rev = args.get(1).ok_or("stage REV")?;
            let sysroot = stagehand::open_sysroot(std::path::Path::new("/"), None)
                .map_err(|e| e.to_string())?;
            let lock = stagehand::SysrootLock::acquire(&sysroot, Duration::from_secs(60), None)
                .map_err(|e| e.to_string())?;
            stagehand::stage(&lock, &stagehand::StageOptions::new(rev.clone()), None)
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        Some("hooks") => {
            // hooks REV0 REVN N REPS: time `hooks::check` of a commit without
            // hooks and of one with N no-op hooks (the difference / N is the
            // per-hook cost), and exec'ing the same no-op hook directly N
            // times. Prints "sandboxed_ns direct_ns" per repetition.
            let [rev0, revn, n, reps] = &args[1..] else {
                return Err("hooks REV0 REVN N REPS".into());
            };
            let n: u32 = n.parse().map_err(|_| "N")?;
            let reps: u32 = reps.parse().map_err(|_| "REPS")?;
            let sysroot = stagehand::open_sysroot(std::path::Path::new("/"), None)
                .map_err(|e| e.to_string())?;
            let lock = stagehand::SysrootLock::acquire(&sysroot, Duration::from_secs(60), None)
                .map_err(|e| e.to_string())?;
            let check = |rev: &str| -> Result<Duration, String> {
                let t = Instant::now();
                let r = stagehand::hooks::check(&lock, &stagehand::StageOptions::new(rev), None)
                    .map_err(|e| e.to_string())?;
                if !r.passed {
                    return Err(format!("{rev} did not pass its hooks"));
                }
                Ok(t.elapsed())
            };
            let direct = std::path::Path::new("/tmp/stagehand-bench-noop-hook");
            std::fs::write(direct, NOOP_HOOK).map_err(|e| e.to_string())?;
            std::fs::set_permissions(
                direct,
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
            )
            .map_err(|e| e.to_string())?;
            check(rev0)?;
            check(revn)?;
            for _ in 0..reps {
                let t0 = check(rev0)?;
                let tn = check(revn)?;
                let sandboxed = tn.saturating_sub(t0) / n;
                let t = Instant::now();
                for _ in 0..n {
                    let st = Command::new(direct)
                        .env_clear()
                        .status()
                        .map_err(|e| e.to_string())?;
                    if !st.success() {
                        return Err("the no-op hook failed".into());
                    }
                }
                let direct = t.elapsed() / n;
                println!("{} {}", sandboxed.as_nanos(), direct.as_nanos());
            }
            Ok(())
        }
        other => Err(format!("unknown inner benchmark {other:?}")),
    }
}

/// The hook that does nothing.
const NOOP_HOOK: &str = "#!/bin/sh\nexit 0\n";

fn bench_hooks(reps: usize) -> Row {
    const HOOKS: u32 = 40;
    let mut tb = Testbed::new();
    let exe = std::env::current_exe().unwrap();
    tb.expose(exe.parent().unwrap());
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let rev0 = tb.commit(&Commit::new("2.0"));
    let mut with = Commit::new("2.0");
    for i in 0..HOOKS {
        with = with.file(
            &format!("usr/lib/stagehand/pre-upgrade.d/{i:02}-noop"),
            NOOP_HOOK,
            0o755,
        );
    }
    let revn = tb.commit(&with);
    let m = tb.boot_default();
    let exe_in = m.host_path(&exe);
    let out = m.ok(&[
        exe_in.as_str(),
        "__inner",
        "hooks",
        &rev0,
        &revn,
        &HOOKS.to_string(),
        &reps.to_string(),
    ]);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for line in out.lines() {
        let mut it = line.split_whitespace().map(|s| s.parse::<u64>().unwrap());
        ours.push(Duration::from_nanos(it.next().unwrap()));
        theirs.push(Duration::from_nanos(it.next().unwrap()));
    }
    Row {
        name: "no-op pre-upgrade hook, per hook (booted)".into(),
        ours,
        theirs,
        target: Target::Millis(20.0),
        note: "sandboxed (bwrap) vs the same hook exec'd directly".into(),
    }
}

fn bench_stage(reps: usize, files: usize) -> Row {
    let mut tb = Testbed::new();
    let exe = std::env::current_exe().unwrap();
    tb.expose(exe.parent().unwrap());
    let v1 = tb.commit(&Commit::new("1.0").files(files));
    tb.deploy(&v1);
    let v2 = tb.commit(&Commit::new("2.0").files(files));
    let m = tb.boot_default();
    let exe_in = m.host_path(&exe);
    let unstage = |m: &Machine<'_>| {
        m.ok(&["ostree", "admin", "undeploy", "0"]);
        assert!(m.staged().is_none());
    };
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    // Warm the page cache for both sides alike.
    m.ok(&[exe_in.as_str(), "__inner", "stage", &v2]);
    unstage(&m);
    for i in 0..reps {
        // Alternate which side goes first so neither always gets a warmer cache.
        let mut run_ours = || {
            ours.push(time(|| {
                m.ok(&[exe_in.as_str(), "__inner", "stage", &v2]);
            }))
        };
        let mut run_theirs = || {
            theirs.push(time(|| {
                m.ok(&["ostree", "admin", "deploy", "--stage", &v2]);
            }))
        };
        if i % 2 == 0 {
            run_ours();
            unstage(&m);
            run_theirs();
            unstage(&m);
        } else {
            run_theirs();
            unstage(&m);
            run_ours();
            unstage(&m);
        }
    }
    Row {
        name: format!("stage a {files}-file commit (booted)"),
        ours,
        theirs,
        target: Target::Ratio(1.05),
        note: "vs `ostree admin deploy --stage`".into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(|s| s.as_str()) == Some("__inner") {
        if let Err(e) = inner(&args[1..]) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut reps = 7;
    let mut files = 5000;
    let mut which = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => reps = it.next().and_then(|s| s.parse().ok()).expect("--reps N"),
            "--files" => files = it.next().and_then(|s| s.parse().ok()).expect("--files N"),
            "-h" | "--help" => {
                println!("usage: stagehand-bench [--reps N] [--files N] [stage] [hooks]");
                return;
            }
            b => which.push(b.to_string()),
        }
    }
    stagehand_testbed::require_prerequisites();
    let all = which.is_empty();
    let mut rows = Vec::new();
    if all || which.iter().any(|w| w == "stage") {
        rows.push(bench_stage(reps, files));
    }
    if all || which.iter().any(|w| w == "hooks") {
        rows.push(bench_hooks(reps));
    }
    let ostree_version = Command::new("ostree")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    println!(
        "stagehand benchmarks ({reps} repetitions, median wall time; ostree {ostree_version})"
    );
    println!(
        "{:<42} {:>12} {:>12} {:>8} {:>8}  compared with",
        "benchmark", "stagehand", "peer", "ratio", "target"
    );
    for r in rows {
        let a = median(&r.ours);
        let b = median(&r.theirs);
        let ratio = a.as_secs_f64() / b.as_secs_f64();
        let (target, met) = match r.target {
            Target::Ratio(t) => (format!("<={t:.2}"), ratio <= t),
            Target::Millis(t) => (format!("<={t:.0}ms"), ms(a) <= t),
        };
        println!(
            "{:<42} {:>10.1}ms {:>10.1}ms {:>8.3} {:>7}{} {}",
            r.name,
            ms(a),
            ms(b),
            ratio,
            target,
            if met { " " } else { "!" },
            r.note
        );
    }
}
