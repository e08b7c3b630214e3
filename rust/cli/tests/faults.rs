//! Fault injection: a full disk (ENOSPC) or a failing device (EIO) on the
//! write, fsync or rename of each stagehand state file (the health store,
//! the cleanup stamp, the guard stamp) must end in a typed `Io` error naming
//! the file, with the previous state intact on disk, and the next run (the
//! fault gone) must succeed. strace injects the error into exactly the call
//! that touches the file's temporary copy: a first traced run finds which
//! occurrence of the call that is, the run is deterministic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use stagehand::ErrorCode;
use stagehand_testbed::{Commit, Machine, Testbed};

const SYSCALLS: &str = "write,fsync,fdatasync,rename,renameat,renameat2";

/// One call of a traced run: its name and its occurrence among calls of
/// that name (strace's `when=`).
#[derive(Debug)]
struct Call {
    name: String,
    nth: u32,
    line: String,
}

fn parse_calls(log: &str) -> Vec<Call> {
    let mut seen = std::collections::HashMap::<String, u32>::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let Some((name, _)) = line.split_once('(') else {
            continue;
        };
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        let n = seen.entry(name.to_string()).or_default();
        *n += 1;
        out.push(Call {
            name: name.to_string(),
            nth: *n,
            line: line.to_string(),
        });
    }
    out
}

/// The calls to inject into: the first write, fsync and rename touching a
/// file whose name contains `tmp_marker`.
fn targets(calls: &[Call], tmp_marker: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for kind in ["write", "sync", "rename"] {
        if let Some(c) = calls
            .iter()
            .find(|c| c.name.contains(kind) && c.line.contains(tmp_marker))
        {
            out.push((c.name.clone(), c.nth));
        }
    }
    assert_eq!(
        out.len(),
        3,
        "no write, fsync and rename of {tmp_marker} in:\n{}",
        calls
            .iter()
            .map(|c| format!("{}\n", c.line))
            .collect::<String>()
    );
    out
}

/// strace's arguments to trace (`inject` None) or fail one call.
fn strace_args(log: &str, inject: Option<(&str, u32, &str)>) -> Vec<String> {
    let mut a: Vec<String> = ["strace", "-qq", "-y", "-o", log, "-e", "signal=none"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match inject {
        None => a.extend(["-e".into(), format!("trace={SYSCALLS}")]),
        Some((name, nth, errno)) => a.extend([
            "-e".into(),
            format!("trace={name}"),
            "-e".into(),
            format!("inject={name}:error={errno}:when={nth}"),
        ]),
    }
    a
}

/// [`strace_args`] tracing every candidate call, with every rename failed.
fn dry_args(log: &str) -> Vec<String> {
    let mut a = strace_args(log, None);
    a.extend([
        "-e".to_string(),
        "inject=rename,renameat,renameat2:error=EXDEV".to_string(),
    ]);
    a
}

fn assert_io(out: &Output, file: &str, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(exit_for(ErrorCode::Io)),
        "{what}: expected an Io error:\n{err}"
    );
    assert!(err.contains(file), "{what}: the error names {file}:\n{err}");
}

/// Run `args` in `m` failing each target call with ENOSPC and EIO in turn;
/// `intact` checks the previous state after each.
fn inject_in_machine(
    m: &Machine<'_>,
    args: &[&str],
    marker: &str,
    file: &str,
    intact: &dyn Fn(&str),
) {
    let exe = m.host_path(EXE);
    // Find the calls with a run that changes nothing: every rename fails
    // (EXDEV), so the operation stops at its first commit point; the
    // writes and the fsync before it are the ones to fail.
    let mut dry = dry_args("/tmp/trace.log");
    dry.push(exe.clone());
    dry.extend(args.iter().map(|s| s.to_string()));
    let _ = m.run(&dry);
    let calls = parse_calls(&m.sh("cat /tmp/trace.log"));
    intact("after the tracing run");
    let targets = targets(&calls, marker);
    for (name, nth) in &targets {
        for errno in ["ENOSPC", "EIO"] {
            let mut argv = strace_args("/dev/null", Some((name, *nth, errno)));
            argv.push(exe.clone());
            argv.extend(args.iter().map(|s| s.to_string()));
            let out = m.run(&argv);
            let what = format!("{errno} on {name} #{nth}");
            assert_io(&out, file, &what);
            intact(&what);
        }
    }
}

#[test]
fn a_full_disk_or_io_error_writing_the_health_store_keeps_the_old_store() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    m.shutdown();
    let m = tb.boot(&tb.deployments()[0]);
    ok_in(&m, &["assess"]);
    let store = tb.sysroot().join("ostree/stagehand/health");
    let before = std::fs::read(&store).unwrap();
    let intact = |what: &str| {
        assert_eq!(
            std::fs::read(&store).unwrap(),
            before,
            "{what}: store changed"
        );
        let j = status_json(&m);
        assert!(j["health_error"].is_null(), "{what}: {j}");
        let leftovers: Vec<_> = std::fs::read_dir(store.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    };
    inject_in_machine(&m, &["mark-good"], ".health.tmp", "health", &intact);
    // With the fault gone, the operation goes through.
    ok_in(&m, &["mark-good"]);
    assert_ne!(std::fs::read(&store).unwrap(), before);
    let j = status_json(&m);
    let v3s = j["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["checksum"] == v3.as_str())
        .unwrap();
    assert_eq!(v3s["health"], "good");
}

#[test]
fn a_full_disk_or_io_error_writing_the_cleanup_stamp_leaves_no_stamp_and_the_record() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    ok_in(&m, &["finalize-stamp", "--record"]);
    assert!(m.finalize().status.success());
    let stamp = tb.sysroot().join(".cleanup");
    let record = || m.run(&["cat", stagehand::cleanup::FINALIZE_RECORD_PATH]);
    let rec_before = record().stdout;
    assert!(!rec_before.is_empty());
    let intact = |what: &str| {
        assert!(!stamp.exists(), "{what}: a stamp was written");
        assert_eq!(record().stdout, rec_before, "{what}: the record changed");
        let leftovers: Vec<_> = std::fs::read_dir(tb.sysroot())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    };
    inject_in_machine(&m, &["finalize-stamp"], ".cleanup.tmp", ".cleanup", &intact);
    // The record is still there, so the stamp step can run again and stamp.
    ok_in(&m, &["finalize-stamp"]);
    let s = std::fs::read_to_string(&stamp).unwrap();
    assert!(s.contains(&format!("deployment testos:{v3}.")), "{s}");
}

fn guard_cmd(dir: &Path, inject: Option<(&str, u32, &str)>, log: &str, args: &[&str]) -> Command {
    let mut a = strace_args(log, inject);
    a.push(EXE.into());
    a.push("guard".into());
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend(["--dir".into(), dir.display().to_string()]);
    let mut c = Command::new(&a[0]);
    c.args(&a[1..]);
    c
}

#[test]
fn a_full_disk_or_io_error_writing_a_guard_stamp_keeps_the_previous_stamp() {
    let digest = "ab".repeat(32);
    for (setup, op) in [(None, "begin"), (Some("begin"), "commit")] {
        let d = tempfile::tempdir().unwrap();
        let dir: PathBuf = d.path().into();
        if let Some(s) = setup {
            let out = Command::new(EXE)
                .args(["guard", s, "step", "--digest", &digest, "--dir"])
                .arg(&dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let stamp = dir.join("step.stamp");
        let before = std::fs::read(&stamp).ok();
        let log = dir.join("trace.log").display().to_string();
        // Trace a run whose every rename fails (nothing changes) to find
        // the calls on the stamp's temporary file.
        let mut a = dry_args(&log);
        a.push(EXE.into());
        a.extend(["guard", op, "step", "--digest", &digest, "--dir"].map(String::from));
        a.push(dir.display().to_string());
        let _ = Command::new(&a[0]).args(&a[1..]).output().unwrap();
        let calls = parse_calls(&std::fs::read_to_string(&log).unwrap());
        std::fs::remove_file(&log).unwrap();
        assert_eq!(std::fs::read(&stamp).ok(), before);
        for (name, nth) in targets(&calls, ".step.stamp.tmp") {
            for errno in ["ENOSPC", "EIO"] {
                let out = guard_cmd(
                    &dir,
                    Some((&name, nth, errno)),
                    "/dev/null",
                    &[op, "step", "--digest", &digest],
                )
                .output()
                .unwrap();
                let what = format!("guard {op}: {errno} on {name} #{nth}");
                assert_io(&out, "step.stamp", &what);
                assert_eq!(std::fs::read(&stamp).ok(), before, "{what}: stamp changed");
                let names: Vec<String> = std::fs::read_dir(&dir)
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                assert!(
                    names.iter().all(|n| !n.contains(".tmp")),
                    "{what}: {names:?}"
                );
            }
        }
        let out = Command::new(EXE)
            .args(["guard", op, "step", "--digest", &digest, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_ne!(std::fs::read(&stamp).ok(), before);
    }
}

#[test]
fn a_full_disk_or_io_error_writing_grubenv_keeps_the_old_block() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let env = tb.sysroot().join("boot/grub2/grubenv");
    std::fs::create_dir_all(env.parent().unwrap()).unwrap();
    let out = Command::new("grub-editenv")
        .arg(&env)
        .args(["set", "saved_entry=keep"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = std::fs::read(&env).unwrap();
    let m = tb.boot_default();
    let intact = |what: &str| {
        assert_eq!(
            std::fs::read(&env).unwrap(),
            before,
            "{what}: grubenv changed"
        );
        let names: Vec<String> = std::fs::read_dir(env.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["grubenv"], "{what}");
    };
    let arm = ["bootloader", "--grubenv", "/boot/grub2/grubenv", "arm"];
    inject_in_machine(&m, &arm, ".grubenv.tmp", "grubenv", &intact);
    ok_in(&m, &arm);
    let list = Command::new("grub-editenv")
        .arg(&env)
        .arg("list")
        .output()
        .unwrap();
    let list = text(&list.stdout);
    assert!(
        list.contains("saved_entry=keep") && list.contains("boot_counter="),
        "{list}"
    );
}
