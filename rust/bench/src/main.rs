//! `stagehand-bench`: stagehand next to the `ostree` CLI doing the same work,
//! in the same booted test-bed sysroot, in the same run.
//!
//! Usage: `cargo run --release -p stagehand-bench [-- [--reps N] [--files N] [BENCH...]]`
//! Benchmarks: `stage`, `guard`, `grubenv` (default: all). Prints one table row per
//! benchmark with the median wall time of each side and their ratio (or, where the
//! target is an absolute time, stagehand's median against it).
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
    /// An absolute target for stagehand's median, in ms (instead of the ratio).
    abs_target_ms: Option<f64>,
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
        Some(op @ ("grubenv-arm" | "grubenv-bless")) => {
            let file = args.get(1).ok_or("grubenv-arm|grubenv-bless FILE")?;
            grubenv_op(op, std::path::Path::new(file));
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
        abs_target_ms: None,
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
        target: 1.0,
        abs_target_ms: None,
        note: "vs sh: printf > tmp; sync tmp; mv; sync dir (x2)".into(),
    }
}

/// One grubenv operation, in-process (what `mark-good` and the finalize unit do).
fn grubenv_op(op: &str, file: &std::path::Path) {
    use stagehand::bootloader::{BootCounter, GrubenvCounter, Target};
    let target = Target {
        id: "bench:0000000000000000000000000000000000000000000000000000000000000000.0"
            .parse()
            .expect("an id"),
        bootcsum: String::new(),
        bootserial: 0,
    };
    let c = GrubenvCounter::new(file);
    match op {
        "grubenv-arm" => c.arm(&target, 3).expect("arm"),
        _ => {
            c.bless(&target).expect("bless");
        }
    }
}

/// fsync + fdatasync calls `cmd` makes (all its processes), counted by strace.
fn count_syncs(cmd: &mut Command) -> usize {
    let out = tempfile::NamedTempFile::new().expect("temporary file");
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let ok = Command::new("strace")
        .args(["-f", "-c", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(out.path())
        .arg(prog)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("strace (apt-get install strace)")
        .success();
    assert!(ok, "{cmd:?} failed under strace");
    std::fs::read_to_string(out.path())
        .expect("strace output")
        .lines()
        .filter(|l| l.ends_with(" fsync") || l.ends_with(" fdatasync"))
        .map(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Arming and blessing the grubenv counter against the `grub-editenv` runs
/// greenboot makes for the same change (arming: `set boot_success=0`, then
/// `set boot_counter=3`; success: `set boot_success=1`, then `unset
/// boot_counter`), on the same file. greenboot passes `-` (the default
/// block, /boot/grub/grubenv here); the benchmark names a scratch file
/// instead so the host's bootloader is never touched — the same code path.
/// Wall time (target: <= 5 ms in-process) and fsyncs (a durable atomic
/// replace needs two: the new file, then the directory after the rename).
fn bench_grubenv(reps: usize) -> Vec<Row> {
    use stagehand::bootloader::grubenv::GrubEnv;
    let t = tempfile::tempdir_in("/var/tmp").expect("temporary directory");
    let file = t.path().join("grubenv");
    let blessed = {
        let mut env = GrubEnv::new();
        env.set("saved_entry", b"ostree-0-bench").expect("set");
        env.set("boot_success", b"1").expect("set");
        env.to_bytes().expect("fits")
    };
    let armed = {
        let mut env = GrubEnv::parse(&blessed).expect("parses");
        env.set("boot_counter", b"3").expect("set");
        env.set("boot_success", b"0").expect("set");
        env.to_bytes().expect("fits")
    };
    let exe = std::env::current_exe().expect("own path");
    let editenv = |args: &[&str]| {
        let ok = Command::new("grub-editenv")
            .arg(&file)
            .args(args)
            .status()
            .expect("grub-editenv (apt-get install grub-common)")
            .success();
        assert!(ok, "grub-editenv {args:?} failed");
    };
    let reset = |bytes: &[u8]| std::fs::write(&file, bytes).expect("reset");
    let peer_arm = || {
        editenv(&["set", "boot_success=0"]);
        editenv(&["set", "boot_counter=3"]);
    };
    let peer_bless = || {
        editenv(&["set", "boot_success=1"]);
        editenv(&["unset", "boot_counter"]);
    };
    // Sanity: both sides make the same change.
    reset(&blessed);
    peer_arm();
    let theirs_armed = GrubEnv::read(&file).expect("read").expect("exists");
    assert_eq!(
        theirs_armed.vars(),
        GrubEnv::parse(&armed).expect("parses").vars()
    );

    let sh_arm = "grub-editenv F set boot_success=0; grub-editenv F set boot_counter=3";
    let sh_bless = "grub-editenv F set boot_success=1; grub-editenv F unset boot_counter";
    let syncs = |op: &str, start: &[u8]| {
        reset(start);
        let ours = count_syncs(Command::new(&exe).args(["__inner", op]).arg(&file));
        reset(start);
        let script = if op == "grubenv-arm" {
            sh_arm
        } else {
            sh_bless
        };
        let f = file.to_str().expect("UTF-8 path");
        let theirs = count_syncs(Command::new("sh").args(["-c", &script.replace('F', f)]));
        (ours, theirs)
    };
    let mut rows = Vec::new();
    for (op, start, peer, what) in [
        ("grubenv-arm", &blessed, &peer_arm as &dyn Fn(), sh_arm),
        ("grubenv-bless", &armed, &peer_bless as &dyn Fn(), sh_bless),
    ] {
        let (s_ours, s_theirs) = syncs(op, start);
        let mut in_process = Vec::new();
        let mut one_process = Vec::new();
        let mut theirs = Vec::new();
        for i in 0..reps {
            let sides: [&mut dyn FnMut(); 3] = [
                &mut || {
                    reset(start);
                    in_process.push(time(|| grubenv_op(op, &file)));
                },
                &mut || {
                    reset(start);
                    one_process.push(time(|| {
                        let ok = Command::new(&exe)
                            .args(["__inner", op])
                            .arg(&file)
                            .status()
                            .expect("spawn")
                            .success();
                        assert!(ok);
                    }));
                },
                &mut || {
                    reset(start);
                    theirs.push(time(peer));
                },
            ];
            // Rotate the order so no side always runs on a warmer cache.
            for k in 0..3 {
                (sides[(i + k) % 3])();
            }
        }
        let verb = if op == "grubenv-arm" { "arm" } else { "bless" };
        rows.push(Row {
            name: format!("grubenv {verb} (in-process)"),
            ours: in_process,
            theirs: theirs.clone(),
            target: 1.0,
            abs_target_ms: Some(5.0),
            note: format!("fsyncs {s_ours} vs {s_theirs}; vs greenboot: {what}"),
        });
        rows.push(Row {
            name: format!("grubenv {verb} (own process)"),
            ours: one_process,
            theirs,
            target: f64::INFINITY,
            abs_target_ms: None,
            note: "information: one process linking stagehand (libostree, GLib: their start-up \
                   dominates) vs the two grub-editenv processes"
                .into(),
        });
    }
    rows
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
                println!("usage: stagehand-bench [--reps N] [--files N] [stage] [guard] [grubenv]");
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
    if all || which.iter().any(|w| w == "guard") {
        rows.push(bench_guard(reps));
    }
    if all || which.iter().any(|w| w == "grubenv") {
        rows.extend(bench_grubenv(reps));
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
        let (target, met) = match r.abs_target_ms {
            Some(t) => (format!("<={t}ms"), ms(a) <= t),
            None if r.target.is_infinite() => ("-".to_string(), true),
            None => (format!("<={:.2}", r.target), ratio <= r.target),
        };
        println!(
            "{:<42} {:>10.2}ms {:>10.2}ms {:>8.3} {:>7}{} {}",
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
