//! `stagehand-bench`: stagehand next to the `ostree` CLI doing the same work,
//! in the same booted test-bed sysroot, in the same run.
//!
//! Usage: `cargo run --release -p stagehand-bench [-- [--reps N] [--files N] [BENCH...]]`
//! Benchmarks: `stage`, `guard`, `cleanup`, `hooks`, `trial-end`, `grubenv`, `boot-assessment` (default: all). Prints one table row per
//! timed benchmark with the median wall time of each side and their ratio,
//! then the figures that are not times (bytes reclaimed by the cleanup).
//!
//! When re-executed inside a booted machine with `__inner ...`, it performs the
//! library side of a benchmark in-process (what a daemon linking stagehand does).

use std::process::Command;
use std::time::{Duration, Instant};

use stagehand_testbed::{Commit, Machine, Testbed};

mod assess;
mod grubenv;

enum Target {
    /// At most this ratio of stagehand's time to the peer's.
    Ratio(f64),
    /// At most this many milliseconds for stagehand's side.
    Millis(f64),
    /// No target: shown for information.
    Information,
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

/// A duration for the table: milliseconds, or microseconds below one.
fn show(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1}µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1}ms", ms(d))
    }
}

fn time(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn inner(args: &[String]) -> Result<(), String> {
    match args.first().map(|s| s.as_str()) {
        Some(op @ ("grubenv-arm" | "grubenv-bless")) => {
            let file = args.get(1).ok_or("grubenv-arm|grubenv-bless FILE")?;
            grubenv::grubenv_op(op, std::path::Path::new(file));
            Ok(())
        }
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
        Some("autocleanup") => {
            // What `stagehand autocleanup` does: without a stamp, one stat
            // and out; with one, the library's cleanup, report as JSON.
            let root = std::path::Path::new("/");
            if stagehand::cleanup::pending_cleanup_at(root)
                .map_err(|e| e.to_string())?
                .is_none()
                && !root.join(stagehand::health::RETENTION_TRIGGER).exists()
            {
                return Ok(());
            }
            stagehand::glib::set_print_handler(|_| {});
            let sysroot = stagehand::open_sysroot(root, None).map_err(|e| e.to_string())?;
            let report = stagehand::autocleanup(&sysroot, &stagehand::CleanupOptions::new(), None)
                .map_err(|e| e.to_string())?;
            println!(
                "{} {} {}",
                report.performed, report.objects_freed, report.bytes_freed
            );
            Ok(())
        }
        Some("time-stamp-check") => {
            // The whole per-boot cost without a stamp, in-process.
            let t = Instant::now();
            let pending = stagehand::cleanup::pending_cleanup_at(std::path::Path::new("/"))
                .map_err(|e| e.to_string())?;
            let ns = t.elapsed().as_nanos();
            if pending.is_some() {
                return Err("a stamp is present".into());
            }
            println!("{ns}");
            Ok(())
        }
        Some("time-ostree-cleanup") => {
            // What `ostree admin cleanup` does, in-process: open, load, cleanup.
            stagehand::glib::set_print_handler(|_| {});
            let t = Instant::now();
            let sysroot = stagehand::open_sysroot(std::path::Path::new("/"), None)
                .map_err(|e| e.to_string())?;
            sysroot
                .lock()
                .and_then(|_| sysroot.cleanup(stagehand::gio::Cancellable::NONE))
                .map_err(|e| e.to_string())?;
            sysroot.unlock();
            println!("{}", t.elapsed().as_nanos());
            Ok(())
        }
        Some("finalize-stamp") => {
            let sysroot = stagehand::open_sysroot(std::path::Path::new("/"), None)
                .map_err(|e| e.to_string())?;
            if args.get(1).map(|s| s.as_str()) == Some("--record") {
                stagehand::record_staged(&sysroot).map_err(|e| e.to_string())?;
            } else {
                let lock = stagehand::SysrootLock::acquire(&sysroot, Duration::from_secs(60), None)
                    .map_err(|e| e.to_string())?;
                let out = stagehand::record_finalized(&lock, None).map_err(|e| e.to_string())?;
                if !out.stamped() {
                    return Err(out.to_string());
                }
            }
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
        Some("assess-step") => assess::inner(args.get(1).ok_or("assess-step assess|mark-good")?),
        Some(op @ ("mark-good" | "end-trial" | "retention")) => {
            // mark-good, the retention housekeeping autocleanup does after
            // it, or both (the whole end of a trial).
            let sysroot = stagehand::open_sysroot(std::path::Path::new("/"), None)
                .map_err(|e| e.to_string())?;
            let lock = stagehand::SysrootLock::acquire(&sysroot, Duration::from_secs(60), None)
                .map_err(|e| e.to_string())?;
            if op != "retention" {
                stagehand::health::mark_good(&lock, &stagehand::HealthOptions::default(), None)
                    .map_err(|e| e.to_string())?;
            }
            if op != "mark-good" {
                stagehand::health::finish_retention(&lock, None).map_err(|e| e.to_string())?;
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

/// The guard's begin + commit, in-process as a daemon links it, against the
/// durable shell version of seed 001's stamp (write, fsync, rename, fsync the
/// directory, twice): the cost of crossing and closing a red line.
fn bench_guard(reps: usize) -> Row {
    let t = tempfile::tempdir().expect("temporary directory");
    let dir = t.path().join("guard");
    std::fs::create_dir(&dir).expect("guard directory");
    let d = dir.to_str().expect("UTF-8 path").to_owned();
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let shell = format!(
        "for s in started complete; do printf '%s {digest}\\n' $s > {d}/.s.tmp && sync {d}/.s.tmp \\
         && mv {d}/.s.tmp {d}/s.stamp && sync {d} || exit 1; done"
    );
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let ours_once = |ours: &mut Vec<Duration>| {
        stagehand::redline::reset(&dir, "s").expect("reset");
        ours.push(time(|| {
            let t = stagehand::redline::begin(&dir, "s", Some(digest)).expect("begin");
            stagehand::redline::commit(t).expect("commit");
        }));
    };
    let theirs_once = |theirs: &mut Vec<Duration>| {
        theirs.push(time(|| {
            let ok = Command::new("sh")
                .args(["-c", &shell])
                .status()
                .expect("sh")
                .success();
            assert!(ok, "shell stamp failed");
        }));
    };
    for i in 0..reps {
        if i % 2 == 0 {
            ours_once(&mut ours);
            theirs_once(&mut theirs);
        } else {
            theirs_once(&mut theirs);
            ours_once(&mut ours);
        }
    }
    Row {
        name: "guard begin+commit (durable)".into(),
        ours,
        theirs,
        target: Target::Ratio(1.0),
        note: "vs sh: printf > tmp; sync tmp; mv; sync dir (x2)".into(),
    }
}

/// A figure that is not a time: a measured value and whether it meets its target.
struct Figure {
    name: String,
    value: String,
    target: String,
    ok: bool,
    note: String,
}

/// The cleanup stamp, end to end, with the defaults (two known-good
/// deployments kept during the trial): stage, finalize at "shutdown"
/// (record, `ostree admin finalize-staged`, stamp; nothing dropped: the
/// rollback is pinned), reboot, mark-good and the retention housekeeping
/// (the trial ends: the deployment only the pin kept is removed and named in
/// the stamp), autocleanup.
/// Returns the bytes-reclaimed figure, and times `autocleanup` on a boot
/// without a stamp against `ostree admin cleanup` (what a unit without the
/// stamp condition would run on every boot) in the same booted machine.
fn bench_cleanup(reps: usize, files: usize) -> (Vec<Row>, Figure) {
    let mut tb = Testbed::new();
    let exe = std::env::current_exe().unwrap();
    tb.expose(exe.parent().unwrap());
    let v0 = tb.commit(&Commit::new("0.9").files(files));
    tb.deploy(&v0);
    let v1 = tb.commit(&Commit::new("1.0").files(files));
    tb.deploy(&v1);
    let v2 = tb.commit(&Commit::new("2.0").files(files));
    {
        let m = tb.boot_default();
        let exe_in = m.host_path(&exe);
        m.ok(&[exe_in.as_str(), "__inner", "stage", &v2]);
        m.ok(&[exe_in.as_str(), "__inner", "finalize-stamp", "--record"]);
        m.ok(&["ostree", "admin", "finalize-staged"]);
        m.ok(&[exe_in.as_str(), "__inner", "finalize-stamp"]);
    }
    {
        // mark-good, and the retention housekeeping autocleanup would do
        // first, separately, so the figure counts only the prune.
        let m = tb.boot_default();
        m.ok(&[m.host_path(&exe).as_str(), "__inner", "end-trial"]);
    }
    assert!(
        tb.deployment_of(&v0).is_none(),
        "the end of the trial removed v0: {:?}",
        tb.deployments()
    );
    let live = tb.live_object_set();
    let before = tb.repo_object_set();
    let reclaimable: u64 = before
        .iter()
        .filter(|(k, _)| !live.contains_key(*k))
        .map(|(_, v)| v)
        .sum();
    let m = tb.boot_default();
    let exe_in = m.host_path(&exe);
    let out = m.ok(&[exe_in.as_str(), "__inner", "autocleanup"]);
    let mut it = out.split_whitespace();
    assert_eq!(it.next(), Some("true"), "the stamp made it run: {out}");
    let reported: u64 = it.nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let after = tb.repo_object_set();
    let reclaimed = stagehand_testbed::object_bytes(&before)
        .saturating_sub(stagehand_testbed::object_bytes(&after));
    let leaked = after.keys().filter(|k| !live.contains_key(*k)).count();
    let pct = 100.0 * reclaimed as f64 / reclaimable.max(1) as f64;
    let figure = Figure {
        name: format!("cleanup: bytes reclaimed ({files}-file commits)"),
        value: format!("{pct:.1}%"),
        target: "100%".into(),
        ok: reclaimed == reclaimable && reported == reclaimed && leaked == 0,
        note: format!(
            "{reclaimed} of {reclaimable} reclaimable bytes (objects only the dropped \
             deployment used: v0, removed at mark-good), {reported} reported, {leaked} objects leaked"
        ),
    };

    // No stamp now: what every later boot costs. Once as processes (what a
    // unit without the stamp condition would start), once in-process (the
    // work itself, without process start-up).
    m.ok(&["ostree", "admin", "cleanup"]);
    let floor = median(
        &(0..reps)
            .map(|_| time(|| drop(m.ok(&["true"]))))
            .collect::<Vec<_>>(),
    );
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut ours_in = Vec::new();
    let mut theirs_in = Vec::new();
    let inner_ns = |what: &str| {
        let out = m.ok(&[exe_in.as_str(), "__inner", what]);
        Duration::from_nanos(out.trim().parse().expect("nanoseconds"))
    };
    for i in 0..reps {
        let mut run_ours = || {
            ours.push(time(|| {
                m.ok(&[exe_in.as_str(), "__inner", "autocleanup"]);
            }));
            ours_in.push(inner_ns("time-stamp-check"));
        };
        let mut run_theirs = || {
            theirs.push(time(|| {
                m.ok(&["ostree", "admin", "cleanup"]);
            }));
            theirs_in.push(inner_ns("time-ostree-cleanup"));
        };
        if i % 2 == 0 {
            run_ours();
            run_theirs();
        } else {
            run_theirs();
            run_ours();
        }
    }
    let rows = vec![
        Row {
            name: "no-stamp boot: autocleanup process".into(),
            ours,
            theirs,
            target: Target::Ratio(0.5),
            note: format!(
                "vs `ostree admin cleanup`; both pay process start-up ({:.1}ms floor)",
                ms(floor)
            ),
        },
        Row {
            name: "no-stamp boot: the work, in-process".into(),
            ours: ours_in,
            theirs: theirs_in,
            target: Target::Ratio(0.01),
            note: "stamp check vs ostree_sysroot_cleanup; the unit's condition is this stat".into(),
        },
    ];
    (rows, figure)
}

/// The end of a trial: v3 booted on trial with v2 and v1 pinned by
/// stagehand; mark-good records the verdict, then the retention housekeeping
/// (which autocleanup runs after mark-good, off the boot path) releases both
/// pins, names the deployment only the pin kept in the cleanup stamp and
/// drops it. The ostree CLI does the same deployment work (two unpins, one
/// undeploy) without a verdict to record; its undeploy also deletes the
/// checkout and prunes the repo, which stagehand leaves to the cleanup the
/// stamp schedules (2022.7's `undeploy` has no option to skip them).
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
            m.ok(&[exe_in.as_str(), "__inner", "end-trial"]);
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
        name: "end of a trial: mark-good + retention (2 unpins, 1 drop)".into(),
        ours,
        theirs,
        target: Target::Ratio(1.0),
        note:
            "own processes; the retention part runs in autocleanup, whose cleanup then deletes the \
             checkout; vs `ostree admin pin --unpin 1 2` + `undeploy 2` (records no verdict, no \
             stamp, but also deletes the checkout and prunes)"
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
                println!("usage: stagehand-bench [--reps N] [--files N] [stage] [guard] [cleanup] [hooks] [trial-end] [grubenv] [boot-assessment]");
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
    if all || which.iter().any(|w| w == "guard") {
        rows.push(bench_guard(reps));
    }
    let mut figures = Vec::new();
    if all || which.iter().any(|w| w == "cleanup") {
        let (more, figure) = bench_cleanup(reps, files);
        rows.extend(more);
        figures.push(figure);
    }
    if all || which.iter().any(|w| w == "grubenv") {
        rows.extend(grubenv::bench_grubenv(reps));
    }
    if all || which.iter().any(|w| w == "boot-assessment") {
        rows.extend(assess::bench_boot_assessment(reps));
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
        "benchmark", "stagehand", "peer", "ratio", "target"
    );
    for r in rows {
        let a = median(&r.ours);
        let b = median(&r.theirs);
        let ratio = a.as_secs_f64() / b.as_secs_f64();
        let (target, met) = match r.target {
            Target::Ratio(t) => (format!("<={t:.2}"), ratio <= t),
            Target::Millis(t) => (format!("<={t:.0}ms"), ms(a) <= t),
            Target::Information => ("-".to_string(), true),
        };
        println!(
            "{:<42} {:>12} {:>12} {:>8.3} {:>7}{} {}",
            r.name,
            show(a),
            show(b),
            ratio,
            target,
            if met { " " } else { "!" },
            r.note
        );
    }
    for f in figures {
        println!(
            "{:<42} {:>12} {:>12} {:>8} {:>7}{} {}",
            f.name,
            f.value,
            "",
            "",
            f.target,
            if f.ok { " " } else { "!" },
            f.note
        );
    }
}
