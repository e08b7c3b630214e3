//! `stagehand-bench`: stagehand next to the `ostree` CLI doing the same work,
//! in the same booted test-bed sysroot, in the same run.
//!
//! Usage: `cargo run --release -p stagehand-bench [-- [--reps N] [--files N] [BENCH...]]`
//! Benchmarks: `stage`, `trial-end` (default: all). Prints one table row per benchmark with
//! the median wall time of each side and their ratio.
//!
//! When re-executed inside a booted machine with `__inner ...`, it performs the
//! library side of a benchmark in-process (what a daemon linking stagehand does).

use std::process::Command;
use std::time::{Duration, Instant};

use stagehand_testbed::{Commit, Machine, Testbed};

struct Row {
    name: String,
    ours: Vec<Duration>,
    theirs: Vec<Duration>,
    target: f64,
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
        Some("mark-good") => {
            let sysroot = stagehand::open_sysroot(std::path::Path::new("/"), None)
                .map_err(|e| e.to_string())?;
            let lock = stagehand::SysrootLock::acquire(&sysroot, Duration::from_secs(60), None)
                .map_err(|e| e.to_string())?;
            stagehand::health::mark_good(&lock, &stagehand::HealthOptions::default(), None)
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        other => Err(format!("unknown inner benchmark {other:?}")),
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
        target: 1.05,
        note: "vs `ostree admin deploy --stage`".into(),
    }
}

/// The end of a trial: v3 booted on trial with v2 and v1 pinned by
/// stagehand; mark-good records the verdict, releases both pins and drops the
/// deployment only the pin kept. The ostree CLI does the same deployment work
/// (two unpins, one undeploy) without a verdict to record; its undeploy also
/// deletes the deployment and prunes the repo, which stagehand leaves to the
/// next cleanup (2022.7's `undeploy` has no option to skip it).
fn bench_trial_end(reps: usize) -> Row {
    let mut tb = Testbed::new();
    let exe = std::env::current_exe().unwrap();
    tb.expose(exe.parent().unwrap());
    for v in ["1.0", "2.0"] {
        let c = tb.commit(&Commit::new(v));
        tb.deploy(&c);
    }
    let v3 = tb.commit(&Commit::new("3.0"));
    {
        let m = tb.boot_default();
        m.ok(&[m.host_path(&exe).as_str(), "__inner", "stage", &v3]);
        m.shutdown();
    }
    let d = tb.deployments();
    assert!(d.len() == 3 && d[1].pinned && d[2].pinned, "{d:?}");
    let saved = tb.save_state();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..reps {
        tb.restore_state(&saved);
        let m = tb.boot_default();
        let exe_in = m.host_path(&exe);
        ours.push(time(|| {
            m.ok(&[exe_in.as_str(), "__inner", "mark-good"]);
        }));
        assert_eq!(m.status().len(), 2);
        drop(m);
        tb.restore_state(&saved);
        let m = tb.boot_default();
        theirs.push(time(|| {
            m.ok(&["ostree", "admin", "pin", "--unpin", "1", "2"]);
            m.ok(&["ostree", "admin", "undeploy", "2"]);
        }));
        assert_eq!(m.status().len(), 2);
    }
    Row {
        name: "end of a trial: mark-good, 2 unpins, 1 drop".into(),
        ours,
        theirs,
        target: 1.0,
        note:
            "vs `ostree admin pin --unpin 1 2` + `undeploy 2` (records no verdict, but also prunes)"
                .into(),
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
                println!("usage: stagehand-bench [--reps N] [--files N] [stage] [trial-end]");
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
    if all || which.iter().any(|w| w == "trial-end") {
        rows.push(bench_trial_end(reps));
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
        "benchmark", "stagehand", "ostree CLI", "ratio", "target"
    );
    for r in rows {
        let a = median(&r.ours);
        let b = median(&r.theirs);
        let ratio = a.as_secs_f64() / b.as_secs_f64();
        println!(
            "{:<42} {:>10.1}ms {:>10.1}ms {:>8.3} {:>7}{} {}",
            r.name,
            ms(a),
            ms(b),
            ratio,
            format!("<={:.2}", r.target),
            if ratio <= r.target { " " } else { "!" },
            r.note
        );
    }
}
