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

// ------------------------------------------- the directory fsync after a commit

/// The strace occurrence (`when=`) of the `fsync` that follows the commit
/// call of `marker` (its `rename` or `unlink`, the first call whose name
/// contains `commit` and whose line names `marker`): the fsyncs before it,
/// plus one. fsutil fsyncs the directory right after the commit call.
fn dir_fsync_after(calls: &[Call], commit: &str, marker: &str) -> u32 {
    let i = calls
        .iter()
        .position(|c| c.name.contains(commit) && c.line.contains(marker))
        .unwrap_or_else(|| {
            panic!(
                "no {commit} of {marker} in:\n{}",
                calls
                    .iter()
                    .map(|c| format!("{}\n", c.line))
                    .collect::<String>()
            )
        });
    calls[..i].iter().filter(|c| c.name == "fsync").count() as u32 + 1
}

/// Run `args` in `m` with exactly the directory fsync after the commit call
/// of `marker` failed with EIO (found by `trace`, a run of the same calls up
/// to that commit). Asserts the injected call was the fsync of a directory
/// whose path ends in `dir`; returns the run's output.
fn fail_dir_fsync(
    m: &Machine<'_>,
    args: &[&str],
    trace: &[String],
    commit: &str,
    marker: &str,
    dir: &str,
) -> Output {
    let exe = m.host_path(EXE);
    let mut a = trace.to_vec();
    a.push(exe.clone());
    a.extend(args.iter().map(|s| s.to_string()));
    let _ = m.run(&a);
    let calls = parse_calls(&m.sh("cat /tmp/trace.log"));
    let nth = dir_fsync_after(&calls, commit, marker);
    let mut argv = strace_args("/tmp/inject.log", Some(("fsync", nth, "EIO")));
    argv.push(exe);
    argv.extend(args.iter().map(|s| s.to_string()));
    let out = m.run(&argv);
    let log = m.sh("cat /tmp/inject.log");
    let injected = log
        .lines()
        .find(|l| l.contains("INJECTED"))
        .unwrap_or_else(|| panic!("nothing injected (fsync #{nth}):\n{log}"));
    assert!(
        injected.starts_with("fsync(") && injected.contains(&format!("{dir}>)")),
        "the injected call is not the fsync of {dir}: {injected}"
    );
    out
}

/// The fsyncs of a run of `args` in `m` (strace -y lines).
fn fsyncs_of(m: &Machine<'_>, args: &[&str]) -> (Output, Vec<String>) {
    let mut argv: Vec<String> = [
        "strace",
        "-qq",
        "-y",
        "-o",
        "/tmp/rerun.log",
        "-e",
        "signal=none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(["-e".into(), "trace=fsync".into(), m.host_path(EXE)]);
    argv.extend(args.iter().map(|s| s.to_string()));
    let out = m.run(&argv);
    let log = m.sh("cat /tmp/rerun.log");
    (out, log.lines().map(str::to_string).collect())
}

fn assert_not_durable(out: &Output, file: &str, what: &str) {
    assert_io(out, file, what);
    let err = text(&out.stderr);
    assert!(
        err.contains(what) && err.contains("the new state is visible; retrying converges")
            || err.contains(what) && err.contains("the file is gone; retrying converges"),
        "the error says the change is visible but not durable:\n{err}"
    );
}

/// `fsutil::write_atomic` when only the directory fsync after the rename
/// fails: the new health store is what everyone reads, but it may not
/// survive a power cut. An `Io` error that says exactly that; the re-run
/// succeeds and fsyncs the store's directory (though it finds nothing to
/// change), so it converges on a durable state.
#[test]
fn a_failed_directory_fsync_after_the_store_rename_is_visible_not_durable_and_a_rerun_converges() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    m.shutdown();
    let m = tb.boot(&tb.deployments()[0]);
    ok_in(&m, &["assess"]);
    let store = tb.sysroot().join("ostree/stagehand/health");
    let before = std::fs::read(&store).unwrap();
    let health = |m: &Machine<'_>| {
        let j = status_json(m);
        j["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["checksum"] == v3.as_str())
            .unwrap()["health"]
            .clone()
    };
    assert_ne!(health(&m), "good", "{}", status_json(&m));

    let out = fail_dir_fsync(
        &m,
        &["mark-good"],
        &dry_args("/tmp/trace.log"),
        "rename",
        ".health.tmp",
        "ostree/stagehand",
    );
    assert_not_durable(&out, "health", "written but not durable");
    // Visible: the new store is in place, complete, and read as good.
    assert_ne!(std::fs::read(&store).unwrap(), before);
    assert_eq!(health(&m), "good");
    assert!(status_json(&m)["health_error"].is_null());

    let (out, fsyncs) = fsyncs_of(&m, &["mark-good"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        fsyncs
            .iter()
            .any(|l| l.contains("ostree/stagehand>)") && l.ends_with("= 0")),
        "the re-run made the store durable: {fsyncs:?}"
    );
    assert_eq!(health(&m), "good");
}

/// The same for the GRUB environment block: the re-run of `arm` finds the
/// block already armed, writes nothing, and fsyncs its directory.
#[test]
fn a_failed_directory_fsync_after_the_grubenv_rename_is_visible_not_durable_and_a_rerun_converges()
{
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let env = tb.sysroot().join("boot/grub2/grubenv");
    std::fs::create_dir_all(env.parent().unwrap()).unwrap();
    let out = Command::new("grub-editenv")
        .arg(&env)
        .arg("create")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = tb.boot_default();
    let arm = ["bootloader", "--grubenv", "/boot/grub2/grubenv", "arm"];
    let out = fail_dir_fsync(
        &m,
        &arm,
        &dry_args("/tmp/trace.log"),
        "rename",
        ".grubenv.tmp",
        "grub2",
    );
    assert_not_durable(&out, "grubenv", "written but not durable");
    let armed = std::fs::read(&env).unwrap();
    let list = |b: &Path| {
        let o = Command::new("grub-editenv")
            .arg(b)
            .arg("list")
            .output()
            .unwrap();
        text(&o.stdout)
    };
    assert!(list(&env).contains("boot_counter="), "{}", list(&env));

    let (out, fsyncs) = fsyncs_of(&m, &arm);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        fsyncs
            .iter()
            .any(|l| l.contains("grub2>)") && l.ends_with("= 0")),
        "the re-run made the block durable: {fsyncs:?}"
    );
    assert_eq!(std::fs::read(&env).unwrap(), armed, "converged, unchanged");
}

/// `fsutil::remove_durable` when the directory fsync after the unlink fails
/// (`finalization unlock`, libostree's lock file): the file is gone for
/// everyone, the error says it may come back after a power cut, and the
/// re-run, finding it gone, still fsyncs the directory.
#[test]
fn a_failed_directory_fsync_after_an_unlink_is_visible_not_durable_and_a_rerun_converges() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let m = tb.boot_default();
    let lock_file = "/run/ostree/staged-deployment-locked";
    let locked = || m.run(&["test", "-e", lock_file]).status.success();
    ok_in(&m, &["finalization", "lock"]);
    assert!(locked());
    // A traced real run finds the calls (unlinks cannot be failed wholesale
    // the way renames are); then lock again.
    let mut trace: Vec<String> = [
        "strace",
        "-qq",
        "-y",
        "-o",
        "/tmp/trace.log",
        "-e",
        "signal=none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    trace.extend(["-e".into(), "trace=fsync,unlink,unlinkat".into()]);
    let exe = m.host_path(EXE);
    let mut a = trace.clone();
    a.push(exe.clone());
    a.extend(["finalization", "unlock"].map(String::from));
    let out = m.run(&a);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = parse_calls(&m.sh("cat /tmp/trace.log"));
    let nth = dir_fsync_after(&calls, "unlink", "staged-deployment-locked");
    ok_in(&m, &["finalization", "lock"]);

    let mut argv = strace_args("/tmp/inject.log", Some(("fsync", nth, "EIO")));
    argv.push(exe);
    argv.extend(["finalization", "unlock"].map(String::from));
    let out = m.run(&argv);
    let log = m.sh("cat /tmp/inject.log");
    assert!(
        log.lines().any(|l| l.contains("INJECTED")
            && l.starts_with("fsync(")
            && l.contains("/run/ostree>)")),
        "the injected call is the fsync of /run/ostree:\n{log}"
    );
    assert_not_durable(&out, "staged-deployment-locked", "removed but not durable");
    assert!(!locked(), "the removal is visible");

    let (out, fsyncs) = fsyncs_of(&m, &["finalization", "unlock"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        fsyncs
            .iter()
            .any(|l| l.contains("/run/ostree>)") && l.ends_with("= 0")),
        "the re-run made the removal durable: {fsyncs:?}"
    );
    assert!(!locked());
}

/// `mark-bad` whose first store write is visible but not durable: the
/// verdict and the denylist entry are in place, the rollback not yet made.
/// The re-run finds the deployment already failed (no second verdict), makes
/// the store durable and finishes: the rollback is the default.
#[test]
fn mark_bad_after_a_failed_directory_fsync_converges_on_a_durable_verdict_and_the_rollback() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    m.shutdown();
    let m = tb.boot(&tb.deployments()[0]);
    ok_in(&m, &["assess"]);
    assert_eq!(tb.deployments()[0].checksum, v3);

    let out = fail_dir_fsync(
        &m,
        &["mark-bad", "--reason", "boom"],
        &dry_args("/tmp/trace.log"),
        "rename",
        ".health.tmp",
        "ostree/stagehand",
    );
    assert_not_durable(&out, "health", "written but not durable");
    let j = status_json(&m);
    assert!(
        j["denylist"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["checksum"] == v3.as_str()),
        "the verdict is visible: {j}"
    );

    let (out, fsyncs) = fsyncs_of(&m, &["mark-bad", "--reason", "boom"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        fsyncs
            .iter()
            .any(|l| l.contains("ostree/stagehand>)") && l.ends_with("= 0")),
        "the re-run made the store durable: {fsyncs:?}"
    );
    assert_ne!(tb.deployments()[0].checksum, v3, "rolled back");
    let j = status_json(&m);
    assert!(
        j["denylist"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["checksum"] == v3.as_str()),
        "{j}"
    );
}

/// `assess` whose store write (the boot counted) is visible but not durable:
/// the re-run in the same boot finds nothing left to change and writes
/// nothing, so only `Store::load`'s fsync of the store's directory makes the
/// earlier write durable; without it the re-run would report success on a
/// state a power cut could undo.
#[test]
fn assess_after_a_failed_directory_fsync_makes_the_store_durable_though_it_writes_nothing() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    m.shutdown();
    let m = tb.boot(&tb.deployments()[0]);
    let store = tb.sysroot().join("ostree/stagehand/health");
    let before = std::fs::read(&store).unwrap();
    // This boot's token (a random name of the boot, written once per boot
    // in /run) made beforehand, so the store's is the first rename of the
    // tracing run that finds the calls.
    m.sh("mkdir -p /run/stagehand && echo a-boot-token > /run/stagehand/boot-token");

    let out = fail_dir_fsync(
        &m,
        &["assess"],
        &dry_args("/tmp/trace.log"),
        "rename",
        ".health.tmp",
        "ostree/stagehand",
    );
    assert_not_durable(&out, "health", "written but not durable");
    let after = std::fs::read(&store).unwrap();
    assert_ne!(after, before, "the counted boot is visible");

    let (out, fsyncs) = fsyncs_of(&m, &["assess"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(&store).unwrap(),
        after,
        "nothing left to write"
    );
    assert!(
        fsyncs
            .iter()
            .any(|l| l.contains("ostree/stagehand>)") && l.ends_with("= 0")),
        "the re-run made the store durable: {fsyncs:?}"
    );
}

/// A guard stamp whose directory fsync failed after the rename: `begin`
/// reports the step not begun (`Io`, "written but not durable"), though the
/// started record is visible. Its re-run answers `Interrupted` (the record
/// is there: the administrator decides) and first makes that record durable;
/// the same for `commit` and its re-run's `AlreadyComplete`.
#[test]
fn a_failed_directory_fsync_after_a_guard_stamp_rename_is_not_durable_and_the_rerun_makes_it_so() {
    let digest = "cd".repeat(32);
    let d = tempfile::tempdir().unwrap();
    let dir: PathBuf = d.path().into();
    let dir_s = dir.display().to_string();
    let log = dir.join("trace.log").display().to_string();
    let guard = |op: &str| -> Vec<String> {
        ["guard", op, "step", "--digest", &digest, "--dir", &dir_s]
            .map(String::from)
            .to_vec()
    };
    let run = |strace: Vec<String>, op: &str| -> Output {
        let mut a = strace;
        a.push(EXE.into());
        a.extend(guard(op));
        Command::new(&a[0]).args(&a[1..]).output().unwrap()
    };
    let stamp = dir.join("step.stamp");
    for (op, rerun_code) in [
        ("begin", ErrorCode::Interrupted),
        ("commit", ErrorCode::AlreadyComplete),
    ] {
        // The fsyncs before the stamp's rename, in a run whose renames fail.
        let _ = run(dry_args(&log), op);
        let calls = parse_calls(&std::fs::read_to_string(&log).unwrap());
        std::fs::remove_file(&log).unwrap();
        let nth = dir_fsync_after(&calls, "rename", ".step.stamp.tmp");
        let out = run(strace_args(&log, Some(("fsync", nth, "EIO"))), op);
        let injected = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        assert!(
            injected
                .lines()
                .any(|l| l.contains("INJECTED") && l.contains(&format!("{dir_s}>)"))),
            "{op}: the injected call is the fsync of the guard directory:\n{injected}"
        );
        assert_not_durable(&out, "step.stamp", "written but not durable");
        let s = std::fs::read_to_string(&stamp).unwrap();
        let phase = if op == "begin" { "started" } else { "complete" };
        assert!(s.contains(phase), "{op}: the new stamp is visible: {s}");

        let mut a: Vec<String> = [
            "strace",
            "-qq",
            "-y",
            "-o",
            &log,
            "-e",
            "signal=none",
            "-e",
            "trace=fsync",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(EXE.into());
        a.extend(guard(op));
        let out = Command::new(&a[0]).args(&a[1..]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(exit_for(rerun_code)),
            "{op} re-run: {}",
            text(&out.stderr)
        );
        let fsyncs = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        assert!(
            fsyncs
                .lines()
                .any(|l| l.contains(&format!("{dir_s}>)")) && l.ends_with("= 0")),
            "{op} re-run made the stamp durable: {fsyncs}"
        );
        assert_eq!(
            std::fs::read_to_string(&stamp).unwrap(),
            s,
            "{op}: unchanged"
        );
    }
}

/// The cleanup stamp whose directory fsync failed after its rename: the
/// stamp is visible, the finalization record is kept (the step did not
/// succeed), and the re-run merges into the stamp it finds (the same
/// deployment once, the same dropped deployments), rewrites it durably and
/// consumes the record.
#[test]
fn a_failed_directory_fsync_after_the_cleanup_stamp_rename_keeps_the_record_and_a_rerun_converges()
{
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    ok_in(&m, &["finalize-stamp", "--record"]);
    assert!(m.finalize().status.success());
    let stamp = tb.sysroot().join(".cleanup");
    let record = || m.run(&["cat", stagehand::cleanup::FINALIZE_RECORD_PATH]);
    assert!(record().status.success());

    let out = fail_dir_fsync(
        &m,
        &["finalize-stamp"],
        &dry_args("/tmp/trace.log"),
        "rename",
        ".cleanup.tmp",
        "sysroot",
    );
    assert_not_durable(&out, ".cleanup", "written but not durable");
    let visible = std::fs::read_to_string(&stamp).unwrap();
    assert!(
        visible.contains(&format!("deployment testos:{v3}.")),
        "{visible}"
    );
    assert!(record().status.success(), "the record is kept");

    let (out, fsyncs) = fsyncs_of(&m, &["finalize-stamp"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        fsyncs
            .iter()
            .any(|l| l.contains("sysroot>)") && l.ends_with("= 0")),
        "the re-run made the stamp durable: {fsyncs:?}"
    );
    let s = std::fs::read_to_string(&stamp).unwrap();
    assert_eq!(
        s.matches(&format!("deployment testos:{v3}.")).count(),
        1,
        "merged, not doubled: {s}"
    );
    let lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("dropped"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(lines(&s), lines(&visible), "{s}");
    assert!(!record().status.success(), "the record is consumed");
}
