//! Helpers shared by the CLI integration tests: run the real `stagehand`
//! binary on the host or inside a booted test-bed machine.

#![allow(dead_code)]

use std::process::{Command, Output};

use stagehand_testbed::{Machine, Testbed};

/// The `stagehand` binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_stagehand");

/// Exit status for a library error code (the table in docs/errors.md).
pub fn exit_for(code: stagehand::ErrorCode) -> i32 {
    10 + code as i32
}

/// Run `stagehand` inside a booted machine.
pub fn sh_in(m: &Machine<'_>, args: &[&str]) -> Output {
    let exe = m.host_path(EXE);
    let mut argv = vec![exe.as_str()];
    argv.extend_from_slice(args);
    m.run(&argv)
}

/// Run `stagehand` inside a booted machine, panicking on failure; returns stdout.
#[track_caller]
pub fn ok_in(m: &Machine<'_>, args: &[&str]) -> String {
    let out = sh_in(m, args);
    assert!(
        out.status.success(),
        "stagehand {args:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Run `stagehand --sysroot <tb> ...` on the host (the sysroot is not booted).
pub fn host(tb: &Testbed, args: &[&str]) -> Output {
    Command::new(EXE)
        .arg("--sysroot")
        .arg(tb.sysroot())
        .args(args)
        .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
        .output()
        .unwrap()
}

/// Lossy UTF-8.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Assert a failed run with the exit status of `code` and a message containing `needle`.
#[track_caller]
pub fn assert_fails(out: &Output, code: stagehand::ErrorCode, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(exit_for(code)),
        "expected {code:?}; stderr:\n{err}\nstdout:\n{}",
        text(&out.stdout)
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in:\n{err}");
}

/// Everything an operation could leave behind on a booted machine: the real
/// `ostree admin status`, deployment directories, and the runtime state in /run.
pub fn snapshot(m: &Machine<'_>) -> String {
    m.sh("ostree admin status; ls /ostree/deploy/*/deploy/; ls -A /run/ostree 2>/dev/null || true; ls /boot/loader/entries/")
}

/// `stagehand status --json` inside the machine.
pub fn status_json(m: &Machine<'_>) -> serde_json::Value {
    serde_json::from_str(&ok_in(m, &["status", "--json"])).unwrap()
}
