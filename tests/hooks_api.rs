//! The hooks API as a Rust agent links it, on real (not booted) sysroots:
//! the dry run's report, cancellation of a running hook, and no bubblewrap
//! meaning no hook runs at all (never an unsandboxed fallback).

use std::time::{Duration, Instant};

use stagehand::gio::prelude::*;
use stagehand::{hooks, ErrorCode, HookEnd, HookOptions, StageOptions, SysrootLock};
use stagehand_testbed::{Commit, Testbed};

const VENDOR: &str = "usr/lib/stagehand/pre-upgrade.d";

fn hook(c: Commit, name: &str, body: &str) -> Commit {
    c.file(
        &format!("{VENDOR}/{name}"),
        format!("#!/bin/sh\n{body}\n"),
        0o755,
    )
}

fn sysroot(tb: &Testbed) -> stagehand::ostree::Sysroot {
    let s = stagehand::ostree::Sysroot::new(Some(&stagehand::gio::File::for_path(tb.sysroot())));
    s.load(stagehand::gio::Cancellable::NONE).unwrap();
    s
}

fn host_procs(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn check_reports_each_hook_and_leaves_no_deployment() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(
        hook(Commit::new("2.0"), "10-pass", "echo hello from 10"),
        "20-veto",
        "echo refusing >&2; exit 2",
    ));
    let dirs = tb.deployment_dirs();
    let sysroot = sysroot(&tb);
    let lock = SysrootLock::acquire(&sysroot, Duration::from_secs(10), None).unwrap();
    let report = hooks::check(&lock, &StageOptions::new(v2.clone()), None).unwrap();
    assert!(!report.passed);
    assert_eq!(report.checksum, v2);
    assert_eq!(report.version.as_deref(), Some("2.0"));
    assert_eq!(report.old.as_ref().unwrap().checksum, sums[0]);
    assert_eq!(report.old_version.as_deref(), Some("1.0"));
    assert_eq!(report.hooks.len(), 2);
    assert!(report.hooks[0].passed);
    assert_eq!(report.hooks[0].output_tail, "hello from 10\n");
    assert_eq!(report.hooks[1].end, Some(HookEnd::Exited(2)));
    assert_eq!(report.hooks[1].origin, hooks::HookOrigin::Vendor);
    let e = report.first_veto().unwrap();
    assert_eq!(e.code(), ErrorCode::HookVetoed);
    assert!(
        e.to_string()
            .contains("20-veto vetoed the update (exit status 2)"),
        "{e}"
    );
    assert_eq!(tb.deployment_dirs(), dirs, "the dry run left a checkout");
    assert_eq!(sysroot.deployments().len(), 1);
}

#[test]
fn cancelling_kills_the_running_hook() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(Commit::new("2.0"), "10-slow", "exec sleep 86405"));
    let dirs = tb.deployment_dirs();
    let sysroot = sysroot(&tb);
    let lock = SysrootLock::acquire(&sysroot, Duration::from_secs(10), None).unwrap();
    let cancellable = stagehand::gio::Cancellable::new();
    let c = cancellable.clone();
    let watcher = std::thread::spawn(move || {
        let start = Instant::now();
        while host_procs("sleep 86405") == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the hook never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c.cancel();
    });
    let start = Instant::now();
    let e = hooks::check(&lock, &StageOptions::new(v2), Some(&cancellable)).unwrap_err();
    watcher.join().unwrap();
    assert_eq!(e.code(), ErrorCode::Cancelled, "{e}");
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(
        host_procs("sleep 86405"),
        0,
        "the hook outlived the cancellation"
    );
    assert_eq!(tb.deployment_dirs(), dirs);
}

#[test]
fn without_bubblewrap_no_hook_runs_and_the_update_is_vetoed() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(Commit::new("2.0"), "10-ok", "exit 0"));
    let dirs = tb.deployment_dirs();
    let sysroot = sysroot(&tb);
    let lock = SysrootLock::acquire(&sysroot, Duration::from_secs(10), None).unwrap();
    let opts =
        StageOptions::new(v2.clone()).hooks(HookOptions::default().set_bwrap("/nonexistent/bwrap"));
    let e = stagehand::stage(&lock, &opts, None).unwrap_err();
    assert_eq!(e.code(), ErrorCode::HookVetoed, "{e}");
    match &e {
        stagehand::Error::HookVetoed {
            end: HookEnd::SpawnFailed(msg),
            ..
        } => assert!(msg.contains("/nonexistent/bwrap"), "{msg}"),
        e => panic!("{e:?}"),
    }
    assert_eq!(tb.deployment_dirs(), dirs);
    assert_eq!(tb.deployments()[0].checksum, sums[0]);

    // With hooks off it deploys (the admin's explicit choice).
    let opts = StageOptions::new(v2.clone()).hooks(
        HookOptions::default()
            .set_bwrap("/nonexistent/bwrap")
            .set_enabled(false),
    );
    stagehand::stage(&lock, &opts, None).unwrap();
    assert_eq!(tb.deployments()[0].checksum, v2);
}
