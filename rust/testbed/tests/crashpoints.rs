//! The crash-point harness itself: exact kill points on a command whose
//! effect after each call is known, whole-tree kills, and agreement with
//! `strace` about which calls are mutating.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use stagehand_testbed::crashpoints::{self, Run};

fn dd(dir: &Path) -> Command {
    let mut c = Command::new("dd");
    c.current_dir(dir).args([
        "if=src",
        "of=dst",
        "bs=1",
        "count=3",
        "status=none",
        "conv=fsync",
    ]);
    c
}

#[test]
fn each_kill_stops_the_command_exactly_before_its_kth_mutating_call() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().canonicalize().unwrap();
    let reset = || {
        let _ = std::fs::remove_file(dir.join("dst"));
        std::fs::write(dir.join("src"), b"abc").unwrap();
    };
    let mut seen = Vec::new();
    let full = crashpoints::sweep(
        || dd(&dir),
        reset,
        |run: &Run| {
            if let Some(k) = run.killed_at {
                // Single-threaded: everything before the crash point returned.
                assert!(run.points[..k - 1].iter().all(|p| p.result.is_some()));
                assert_eq!(run.points[k - 1].result, None);
            }
            let dst = std::fs::read(dir.join("dst")).ok();
            seen.push((run.killed_at, dst));
        },
    );
    // dd with bs=1: create+truncate dst, three one-byte writes, fsync.
    let calls: Vec<_> = full
        .points
        .iter()
        .map(|p| (p.syscall, p.detail.clone()))
        .collect();
    let dst = dir.join("dst").display().to_string();
    assert_eq!(
        calls,
        vec![
            ("openat", format!("{dst} [write,create,trunc]")),
            ("write", dst.clone()),
            ("write", dst.clone()),
            ("write", dst.clone()),
            ("fsync", dst.clone()),
        ],
        "{}",
        full.listing()
    );
    assert!(full.status.success());
    assert!(full.points.iter().all(|p| p.process == 0));
    // Each call returned: the fd, then 1 byte three times, then 0.
    let results: Vec<_> = full.points.iter().map(|p| p.result).collect();
    assert!(results[0].is_some_and(|fd| fd >= 0), "{results:?}");
    assert_eq!(results[1..], [Some(1), Some(1), Some(1), Some(0)]);
    // Killed on entry to call k: call k did not run, calls before it did.
    assert_eq!(
        seen,
        vec![
            (None, Some(b"abc".to_vec())),
            (Some(1), None),
            (Some(2), Some(b"".to_vec())),
            (Some(3), Some(b"a".to_vec())),
            (Some(4), Some(b"ab".to_vec())),
            (Some(5), Some(b"abc".to_vec())),
        ]
    );
}

#[test]
fn a_kill_takes_down_every_process_of_the_command_at_once() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().canonicalize().unwrap();
    let cmd = || {
        let mut c = Command::new("sh");
        c.current_dir(&dir)
            .args(["-c", "echo 1 > a; touch b; echo 3 > c; echo done"]);
        c
    };
    let full = crashpoints::trace(cmd());
    assert!(full.status.success(), "{}", full.output());
    assert_eq!(full.stdout, b"done\n");
    // touch runs in a child process; its openat of b is the crash point.
    let b = full
        .points
        .iter()
        .find(|p| p.syscall == "openat" && p.detail.contains("/b "))
        .unwrap_or_else(|| panic!("no openat of b:\n{}", full.listing()));
    assert_ne!(b.process, 0, "touch is a child process: {b}");
    for f in ["a", "b", "c"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let run = crashpoints::kill_at(cmd(), b.index);
    assert_eq!(run.killed_at, Some(b.index));
    assert!(run.crash_point().unwrap().same_call(b));
    // The shell died with its child: nothing after the crash point happened.
    assert_eq!(run.status.signal(), Some(libc::SIGKILL), "{:?}", run.status);
    assert!(dir.join("a").exists());
    assert!(!dir.join("b").exists());
    assert!(!dir.join("c").exists());
    assert!(run.stdout.is_empty());
}

#[test]
fn a_crash_point_past_the_end_is_not_reached() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("src"), b"abc").unwrap();
    let full = crashpoints::trace(dd(d.path()));
    let run = crashpoints::kill_at(dd(d.path()), full.points.len() + 1);
    assert_eq!(run.killed_at, None);
    assert!(run.crash_point().is_none());
    assert!(run.status.success());
    assert_eq!(run.points.len(), full.points.len());
}

#[test]
fn reads_are_not_crash_points_and_output_is_captured() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("f"), b"x").unwrap();
    let mut c = Command::new("cat");
    c.arg(d.path().join("f"));
    let run = crashpoints::trace(c);
    assert_eq!(run.stdout, b"x");
    // cat opens only for reading; its one mutating call is the write to stdout.
    assert_eq!(run.points.len(), 1, "{}", run.listing());
    assert_eq!(run.points[0].syscall, "write");
    assert!(
        run.points[0].detail.starts_with("pipe:["),
        "{}",
        run.points[0]
    );
}

/// The calls strace reports for `cmd` that the harness counts as mutating,
/// in order: strace is the independent peer for what the tracer sees.
fn strace_mutating(dir: &Path, script: &str) -> Vec<String> {
    let set: Vec<String> = crashpoints::mutating_syscalls()
        .iter()
        .map(|s| format!("?{s}"))
        .collect();
    let log = dir.join("strace.log");
    let out = Command::new("strace")
        .current_dir(dir)
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .arg(format!("--trace={}", set.join(",")))
        .args(["sh", "-c", script])
        .output()
        .expect("strace is installed (scripts/install-deps.sh)");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    text.lines()
        .filter_map(|l| {
            // "PID name(args) = ret"; skip "<... name resumed>" halves and signals.
            let rest = l.split_once(' ')?.1.trim_start();
            let (name, args) = rest.split_once('(')?;
            if name.starts_with('<') || name.starts_with('-') {
                return None;
            }
            let opens = name == "openat" || name == "open" || name == "openat2";
            let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|f| args.contains(f));
            (!opens || writes).then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn the_tracer_sees_the_mutating_calls_strace_sees() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().canonicalize().unwrap();
    let script = "echo a > f1; mkdir d; mv f1 d/f2; ln -s f2 d/l; chmod 600 d/f2; \
                  truncate -s 10 d/f2; rm d/l; dd if=/dev/zero of=f3 bs=4 count=2 status=none; \
                  sync f3; rm -r d";
    let theirs = strace_mutating(&dir, script);
    std::fs::remove_file(dir.join("f3")).unwrap();
    let mut c = Command::new("sh");
    c.current_dir(&dir).args(["-c", script]);
    let run = crashpoints::trace(c);
    assert!(run.status.success(), "{}", run.output());
    let ours: Vec<String> = run.points.iter().map(|p| p.syscall.to_owned()).collect();
    assert_eq!(ours, theirs, "tracer:\n{}", run.listing());
    // The script does each kind of change at least once.
    for want in [
        "openat", "write", "mkdir", "rename", "symlink", "chmod", "truncate", "unlink", "fsync",
    ] {
        assert!(
            ours.iter().any(|n| n.contains(want)),
            "no {want} in:\n{}",
            run.listing()
        );
    }
}

#[test]
fn threads_of_a_command_are_followed_and_killed_together() {
    let d = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_crashpoint-threads"));
        c.arg(d.path());
        c
    };
    let written = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .starts_with('t')
            })
            .count()
    };
    let full = crashpoints::trace(cmd());
    assert!(full.status.success(), "{}", full.output());
    assert_eq!(written(d.path()), 40);
    let files: Vec<_> = full
        .points
        .iter()
        .filter(|p| p.syscall == "openat" && p.detail.contains("/t"))
        .collect();
    assert_eq!(files.len(), 40, "{}", full.listing());
    // The writes come from the worker threads, not the main thread.
    let threads: std::collections::HashSet<_> = files.iter().map(|p| p.process).collect();
    assert!(
        threads.len() >= 2 && !threads.contains(&0),
        "{}",
        full.listing()
    );

    // Killed at the 20th file creation: every thread dies at that instant.
    for e in std::fs::read_dir(d.path()).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let k = files[19].index;
    let run = crashpoints::kill_at(cmd(), k);
    assert_eq!(run.killed_at, Some(k));
    assert_eq!(run.status.signal(), Some(libc::SIGKILL));
    // The thread schedule differs from run to run, but not the rule: a
    // creation seen to return before the kill happened, one entered after it
    // did not, and one in flight in another thread at that instant may have.
    let before = &run.points[..k - 1];
    let is_file = |p: &&crashpoints::Point| p.syscall == "openat" && p.detail.contains("/t");
    let created_before_kill = before.iter().filter(is_file).count();
    let returned = before
        .iter()
        .filter(is_file)
        .filter(|p| p.result.is_some_and(|r| r >= 0))
        .count();
    let n = written(d.path());
    assert!(
        returned <= n && n <= created_before_kill,
        "{returned} <= {n} <= {created_before_kill} fails:\n{}",
        run.listing()
    );
    assert!(run.crash_point().unwrap().result.is_none());
    assert!(created_before_kill < 40);
}
