//! `stagehand guard`: the interrupted-operation guard, driven through the real
//! binary the units run — exit codes, a SIGKILL between begin and commit, a
//! kill at every mutating system call of each state change, bad input,
//! read-only and missing directories, and the example units.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use stagehand::redline::{self, Phase, Stamp};
use stagehand::ErrorCode;
use stagehand_testbed::crashpoints::{self, Point, Run};

const D1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const D2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn guard(dir: &Path, args: &[&str]) -> Output {
    Command::new(EXE)
        .arg("guard")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[track_caller]
fn guard_ok(dir: &Path, args: &[&str]) -> String {
    let out = guard(dir, args);
    assert!(
        out.status.success(),
        "guard {args:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn state(dir: &Path, name: &str) -> Option<Stamp> {
    redline::status(dir, name).unwrap_or_else(|e| panic!("stamp of {name} unreadable: {e}"))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A guard directory in a fresh temporary directory (canonical, so paths in
/// syscall traces compare equal).
fn guard_dir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().canonicalize().unwrap().join("guard");
    std::fs::create_dir(&dir).unwrap();
    (t, dir)
}

#[test]
fn begin_commit_status_reset_with_documented_exit_codes() {
    let (_t, dir) = guard_dir();
    assert_eq!(guard_ok(&dir, &["status", "disk"]), "disk: absent\n");
    let j: serde_json::Value =
        serde_json::from_str(&guard_ok(&dir, &["status", "disk", "--json"])).unwrap();
    assert_eq!(j["state"], "absent");
    assert_eq!(j["path"], dir.join("disk.stamp").to_str().unwrap());

    assert_eq!(
        guard_ok(&dir, &["begin", "disk", "--digest", D1]),
        format!("step disk started (digest {D1})\n")
    );
    let started = state(&dir, "disk").unwrap();
    assert_eq!(started.phase, Phase::Started);
    let j: serde_json::Value =
        serde_json::from_str(&guard_ok(&dir, &["status", "disk", "--json"])).unwrap();
    assert_eq!(j["state"], "started");
    assert_eq!(j["digest"], D1);
    assert_eq!(j["started"], started.started.as_str());
    assert_eq!(j["completed"], serde_json::Value::Null);

    // 25: interrupted (also with another digest: the system may be half-done).
    let out = guard(&dir, &["begin", "disk", "--digest", D1]);
    assert_fails(&out, ErrorCode::Interrupted, "never completed");
    assert_eq!(out.status.code(), Some(25));
    assert_fails(
        &guard(&dir, &["begin", "disk", "--digest", D2]),
        ErrorCode::Interrupted,
        "\"disk\"",
    );

    assert_eq!(
        guard_ok(&dir, &["commit", "disk", "--digest", D1]),
        format!("step disk complete (digest {D1})\n")
    );
    let done = state(&dir, "disk").unwrap();
    assert_eq!(done.phase, Phase::Complete);
    assert_eq!(done.run, started.run);
    assert!(guard_ok(&dir, &["status", "disk"]).starts_with(&format!(
        "disk: complete (digest {D1}, started {}, completed ",
        started.started
    )));

    // 26: already complete with this digest; 27: another digest.
    let out = guard(&dir, &["begin", "disk", "--digest", D1]);
    assert_fails(&out, ErrorCode::AlreadyComplete, "already completed");
    assert_eq!(out.status.code(), Some(26));
    let out = guard(&dir, &["begin", "disk", "--digest", D2]);
    assert_fails(&out, ErrorCode::ConfigChanged, D2);
    assert_eq!(out.status.code(), Some(27));
    // A second commit is refused, not silently repeated.
    assert_fails(
        &guard(&dir, &["commit", "disk", "--digest", D1]),
        ErrorCode::AlreadyComplete,
        "already completed",
    );
    assert_eq!(state(&dir, "disk").unwrap(), done);

    assert_eq!(
        guard_ok(&dir, &["reset", "disk"]),
        format!("step disk reset (was complete, digest {D1})\n")
    );
    assert_eq!(state(&dir, "disk"), None);
    assert_eq!(
        guard_ok(&dir, &["reset", "disk"]),
        "step disk had no record\n"
    );
    guard_ok(&dir, &["begin", "disk", "--digest", D2]);
    assert!(listing(&dir) == ["disk.stamp"], "{:?}", listing(&dir));
}

#[test]
fn sigkill_between_begin_and_commit_makes_the_next_begin_fail_interrupted() {
    let (t, dir) = guard_dir();
    let marker = t.path().join("destructive-step-running");
    // A unit's life in one script: cross the red line, do the destructive
    // part (here: announce it and sleep), complete.
    let script = format!(
        "set -e\n\
         {exe} guard begin disk --dir {dir} --digest {D1}\n\
         touch {marker}\n\
         sleep 60\n\
         {exe} guard commit disk --dir {dir} --digest {D1}\n",
        exe = EXE,
        dir = dir.display(),
        marker = marker.display()
    );
    let mut child = Command::new("setsid")
        .args(["sh", "-c", &script])
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the script never reached its destructive part"
        );
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the script ended early: {st}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Power cut, as far as the step is concerned: the whole session dies.
    // SAFETY: kill(2) on the process group setsid created.
    assert_eq!(
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) },
        0
    );
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL));

    let s = state(&dir, "disk").unwrap();
    assert_eq!(s.phase, Phase::Started, "commit never ran");
    let out = guard(&dir, &["begin", "disk", "--digest", D1]);
    assert_fails(&out, ErrorCode::Interrupted, &s.started);
    assert!(
        text(&out.stderr).contains("reset it or force"),
        "{}",
        text(&out.stderr)
    );
    // Refusing wrote nothing.
    assert_eq!(state(&dir, "disk").unwrap(), s);

    // The administrator's way out after inspecting the system: reset (or --force).
    assert!(guard_ok(&dir, &["reset", "disk"]).contains("was started"));
    guard_ok(&dir, &["begin", "disk", "--digest", D1]);
    guard_ok(&dir, &["commit", "disk", "--digest", D1]);
    assert_eq!(state(&dir, "disk").unwrap().phase, Phase::Complete);
}

#[test]
fn digest_file_is_sha256_and_a_changed_file_is_config_changed() {
    let (t, dir) = guard_dir();
    let cfg = t.path().join("config.json");
    std::fs::write(&cfg, b"test").unwrap();
    let f = cfg.to_str().unwrap();
    assert_eq!(
        guard_ok(&dir, &["begin", "prov", "--digest-file", f]),
        format!("step prov started (digest {D1})\n")
    );
    // commit with the same file finds the started stamp; --digest is equivalent.
    std::fs::write(&cfg, b"edited while the step ran").unwrap();
    let out = guard(&dir, &["commit", "prov", "--digest-file", f]);
    assert_fails(&out, ErrorCode::ConfigChanged, D1);
    assert_eq!(state(&dir, "prov").unwrap().phase, Phase::Started);
    guard_ok(&dir, &["commit", "prov", "--digest", &D1.to_uppercase()]);
    let out = guard(&dir, &["begin", "prov", "--digest-file", f]);
    assert_fails(
        &out,
        ErrorCode::ConfigChanged,
        "ran with configuration digest",
    );
    std::fs::write(&cfg, b"test").unwrap();
    assert_fails(
        &guard(&dir, &["begin", "prov", "--digest-file", f]),
        ErrorCode::AlreadyComplete,
        "prov",
    );
    // No digest at all is its own configuration.
    assert_fails(
        &guard(&dir, &["begin", "prov"]),
        ErrorCode::ConfigChanged,
        "(none)",
    );
    // A missing digest file is an I/O error naming it; nothing is written.
    let before = std::fs::read(dir.join("prov.stamp")).unwrap();
    let missing = t.path().join("nope.json");
    assert_fails(
        &guard(
            &dir,
            &["begin", "x", "--digest-file", missing.to_str().unwrap()],
        ),
        ErrorCode::Io,
        "nope.json",
    );
    assert_eq!(std::fs::read(dir.join("prov.stamp")).unwrap(), before);
    assert_eq!(listing(&dir), ["prov.stamp"]);
}

#[test]
fn commit_needs_a_started_step_with_the_same_digest() {
    let (_t, dir) = guard_dir();
    assert_fails(
        &guard(&dir, &["commit", "never", "--digest", D1]),
        ErrorCode::InvalidArgument,
        "not started",
    );
    assert!(listing(&dir).is_empty());
    guard_ok(&dir, &["begin", "s", "--digest", D1]);
    assert_fails(
        &guard(&dir, &["commit", "s", "--digest", D2]),
        ErrorCode::ConfigChanged,
        D2,
    );
    assert_fails(
        &guard(&dir, &["commit", "s"]),
        ErrorCode::ConfigChanged,
        "(none)",
    );
    assert_eq!(state(&dir, "s").unwrap().phase, Phase::Started);
}

#[test]
fn force_overrides_interrupted_complete_and_corrupt_and_says_so() {
    let (_t, dir) = guard_dir();
    guard_ok(&dir, &["begin", "f", "--digest", D1]);
    let first = state(&dir, "f").unwrap();
    let out = guard(&dir, &["begin", "f", "--digest", D1, "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("overriding its started record"),
        "{}",
        text(&out.stderr)
    );
    let second = state(&dir, "f").unwrap();
    assert_eq!(second.phase, Phase::Started);
    assert_ne!(second.run, first.run);
    guard_ok(&dir, &["commit", "f", "--digest", D1]);

    let out = guard(&dir, &["begin", "f", "--digest", D2, "--force"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("overriding its complete record"));
    assert_eq!(state(&dir, "f").unwrap().digest.as_deref(), Some(D2));

    std::fs::write(
        dir.join("f.stamp"),
        b"stagehand-redline 1\nname=f\nstate=compl",
    )
    .unwrap();
    assert_fails(
        &guard(&dir, &["begin", "f", "--digest", D2]),
        ErrorCode::Corrupt,
        "f.stamp",
    );
    assert_fails(
        &guard(&dir, &["status", "f"]),
        ErrorCode::Corrupt,
        "truncated",
    );
    let out = guard(&dir, &["begin", "f", "--digest", D2, "--force"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("unreadable stamp"));
    assert_eq!(state(&dir, "f").unwrap().phase, Phase::Started);
}

#[test]
fn invalid_names_and_digests_are_refused_and_write_nothing() {
    let (_t, dir) = guard_dir();
    let long = "n".repeat(redline::NAME_MAX + 1);
    for name in [
        "../escape",
        "a/b",
        ".hidden",
        "..",
        "-dash",
        "sp ace",
        "semi;colon",
        "",
        long.as_str(),
    ] {
        for action in ["begin", "commit", "status", "reset"] {
            // `--` so that names starting with '-' reach stagehand, not clap.
            let out = Command::new(EXE)
                .args(["guard", action, "--dir"])
                .arg(&dir)
                .args(["--", name])
                .output()
                .unwrap();
            assert_fails(&out, ErrorCode::InvalidArgument, "step name");
        }
    }
    for digest in ["xyz", "abc", "0xdeadbeef", "dead beef", ""] {
        assert_fails(
            &guard(&dir, &["begin", "ok", "--digest", digest]),
            ErrorCode::InvalidArgument,
            "not a hex digest",
        );
    }
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    assert!(!dir.parent().unwrap().join("escape.stamp").exists());
    // Both digest options at once is a usage error (clap).
    let out = guard(
        &dir,
        &[
            "begin",
            "ok",
            "--digest",
            D1,
            "--digest-file",
            "/etc/hostname",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn missing_directory_is_an_io_error_and_is_not_created() {
    let (_t, dir) = guard_dir();
    let missing = dir.join("not-mounted");
    for args in [
        &["begin", "m", "--digest", D1][..],
        &["commit", "m", "--digest", D1],
        &["status", "m"],
        &["reset", "m"],
    ] {
        let out = guard(&missing, args);
        assert_fails(&out, ErrorCode::Io, "guard directory");
        assert!(text(&out.stderr).contains(missing.to_str().unwrap()));
        assert!(text(&out.stderr).contains("never creates it"));
    }
    assert!(!missing.exists());
}

/// Run the CLI with `dir` bind-mounted read-only over itself, in a private
/// mount namespace (nothing changes outside it).
fn guard_read_only(dir: &Path, args: &[&str]) -> Output {
    let d = dir.to_str().unwrap();
    let mut argv = vec![EXE, "guard"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--dir", d]);
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"d="$1"; shift; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && touch "$d/probe" 2>/dev/null && exit 99; exec "$@""#)
        .arg("sh")
        .arg(d)
        .args(&argv)
        .output()
        .unwrap()
}

#[test]
fn read_only_directory_is_read_only_and_reads_still_work() {
    let (_t, dir) = guard_dir();
    // Absent: begin must write, so it fails as read-only and runs nothing.
    let out = guard_read_only(&dir, &["begin", "ro", "--digest", D1]);
    assert_fails(&out, ErrorCode::ReadOnly, "read-only");
    assert_eq!(out.status.code(), Some(16));
    assert!(text(&out.stderr).contains(dir.to_str().unwrap()));
    assert!(listing(&dir).is_empty());

    guard_ok(&dir, &["begin", "ro", "--digest", D1]);
    let started = std::fs::read(dir.join("ro.stamp")).unwrap();
    assert_fails(
        &guard_read_only(&dir, &["commit", "ro", "--digest", D1]),
        ErrorCode::ReadOnly,
        "read-only",
    );
    assert_fails(
        &guard_read_only(&dir, &["reset", "ro"]),
        ErrorCode::ReadOnly,
        "read-only",
    );
    // Refusals need no write: interrupted is still reported as such.
    assert_fails(
        &guard_read_only(&dir, &["begin", "ro", "--digest", D1]),
        ErrorCode::Interrupted,
        "never completed",
    );
    let out = guard_read_only(&dir, &["status", "ro"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ro: started"));
    assert_eq!(std::fs::read(dir.join("ro.stamp")).unwrap(), started);

    guard_ok(&dir, &["commit", "ro", "--digest", D1]);
    assert_fails(
        &guard_read_only(&dir, &["begin", "ro", "--digest", D1]),
        ErrorCode::AlreadyComplete,
        "already completed",
    );
    assert_eq!(listing(&dir), ["ro.stamp"]);
}

// --- A kill at every mutating system call ---------------------------------

/// One state change to sweep: the start state (a stamp's bytes or nothing),
/// the CLI arguments, and the states allowed before and after the call that
/// publishes the change (`rename` of the stamp, or its `unlink`).
struct Case {
    name: &'static str,
    start: Option<Vec<u8>>,
    args: Vec<String>,
    before: Expect,
    after: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Absent,
    /// The start stamp, byte for byte.
    Unchanged,
    /// A new started record with digest D1 (a run id other than the start's).
    NewStarted,
    /// Complete with D1, with the start's run id.
    Completed,
}

fn check(dir: &Path, name: &str, start: &Option<Vec<u8>>, want: Expect, ctx: &str) {
    let path = dir.join(format!("{name}.stamp"));
    // Never unreadable: the library reads every state there can be.
    let now = redline::status(dir, name)
        .unwrap_or_else(|e| panic!("{ctx}: stamp unreadable after the kill: {e}"));
    let start_stamp = start.as_ref().map(|b| read_stamp_bytes(dir, name, b));
    match want {
        Expect::Absent => assert_eq!(now, None, "{ctx}"),
        Expect::Unchanged => {
            assert_eq!(
                std::fs::read(&path).ok(),
                *start,
                "{ctx}: the stamp changed"
            )
        }
        Expect::NewStarted => {
            let s = now.unwrap_or_else(|| panic!("{ctx}: no stamp"));
            assert_eq!(s.phase, Phase::Started, "{ctx}");
            assert_eq!(s.digest.as_deref(), Some(D1), "{ctx}");
            if let Some(old) = &start_stamp {
                assert_ne!(s.run, old.run, "{ctx}: not a new run");
            }
        }
        Expect::Completed => {
            let s = now.unwrap_or_else(|| panic!("{ctx}: no stamp"));
            let old = start_stamp.expect("commit starts from a stamp");
            assert_eq!(s.phase, Phase::Complete, "{ctx}");
            assert_eq!(
                (s.run, s.started, s.digest),
                (old.run, old.started, old.digest),
                "{ctx}"
            );
        }
    }
}

/// Parse stamp bytes by putting them in a scratch directory (the library is
/// the only parser; the test does not keep a second one).
fn read_stamp_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Stamp {
    let scratch = dir.parent().unwrap().join("scratch");
    let _ = std::fs::create_dir(&scratch);
    std::fs::write(scratch.join(format!("{name}.stamp")), bytes).unwrap();
    let s = redline::status(&scratch, name).unwrap().unwrap();
    std::fs::remove_dir_all(&scratch).unwrap();
    s
}

/// The index of the call that publishes the change: the rename of a
/// temporary file onto the stamp, or the unlink of the stamp.
fn publish_point(full: &Run, stamp: &Path) -> usize {
    let s = stamp.to_str().unwrap();
    full.points
        .iter()
        .find(|p| {
            (p.syscall.starts_with("rename") && p.detail.ends_with(&format!("-> {s}")))
                || (p.syscall.starts_with("unlink") && p.detail == s)
        })
        .unwrap_or_else(|| panic!("no rename onto / unlink of {s}:\n{}", full.listing()))
        .index
}

fn sweep_case(case: &Case) -> Run {
    let (_t, dir) = guard_dir();
    let name = case.name;
    let stamp = dir.join(format!("{name}.stamp"));
    let reset = || {
        for f in listing(&dir) {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        if let Some(b) = &case.start {
            std::fs::write(&stamp, b).unwrap();
        }
    };
    let make = || {
        let mut c = Command::new(EXE);
        c.arg("guard").args(&case.args).arg("--dir").arg(&dir);
        c
    };
    let mut publish = None;
    let mut kills = 0;
    let full = crashpoints::sweep(make, reset, |run: &Run| {
        let Some(at) = run.crash_point() else {
            // The uninterrupted run: it succeeded and published.
            assert!(run.status.success(), "{:?}: {}", case.args, run.output());
            publish = Some(publish_point(run, &stamp));
            check(&dir, name, &case.start, case.after, "uninterrupted run");
            return;
        };
        kills += 1;
        assert_eq!(run.status.signal(), Some(libc::SIGKILL));
        let p = publish.unwrap();
        let ctx = format!("{:?} killed at {at}", case.args);
        let want = if at.index <= p {
            case.before
        } else {
            case.after
        };
        check(&dir, name, &case.start, want, &ctx);
        // Only temporary files may be left over, never a second stamp.
        for f in listing(&dir) {
            assert!(
                f == format!("{name}.stamp") || f.starts_with(&format!(".{name}.stamp.tmp")),
                "{ctx}: left {f}"
            );
        }
        // And it converges: the administrator's reset (which also removes a
        // killed writer's temporary file), then a full begin + commit.
        guard_ok(&dir, &["reset", name]);
        guard_ok(&dir, &["begin", name, "--digest", D1]);
        guard_ok(&dir, &["commit", name, "--digest", D1]);
        assert_eq!(listing(&dir), [format!("{name}.stamp")], "{ctx}");
    });
    assert_eq!(kills, full.points.len());
    assert_durable_before_reporting(&full, &dir, &stamp);
    full
}

/// In the traced run: the data is fsynced before it is renamed into place,
/// and the directory is fsynced after the rename (or unlink) and before the
/// command reports success on stdout — so "started"/"complete" is on disk
/// before anyone can act on it.
fn assert_durable_before_reporting(full: &Run, dir: &Path, stamp: &Path) {
    let p = publish_point(full, stamp);
    let pts = &full.points;
    let publish: &Point = &pts[p - 1];
    let d = dir.to_str().unwrap();
    if publish.syscall.starts_with("rename") {
        let tmp = publish.detail.split(" -> ").next().unwrap();
        assert!(
            pts[..p - 1]
                .iter()
                .any(|q| q.syscall == "fsync" && q.detail == tmp),
            "the temporary file is not fsynced before the rename:\n{}",
            full.listing()
        );
    }
    // The last line printed is the report (a forced begin warns on stderr first).
    let report = pts
        .iter()
        .rposition(|q| q.syscall == "write" && q.detail.starts_with("pipe:"))
        .unwrap_or_else(|| panic!("no report on stdout:\n{}", full.listing()));
    assert!(
        pts[p..report]
            .iter()
            .any(|q| q.syscall == "fsync" && q.detail == d),
        "the directory is not fsynced between the change and the report:\n{}",
        full.listing()
    );
}

fn stamp_bytes(setup: &[&[&str]]) -> Vec<u8> {
    let (_t, dir) = guard_dir();
    for args in setup {
        guard_ok(&dir, args);
    }
    std::fs::read(dir.join("k.stamp")).unwrap()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_kill_at_every_mutating_call_of_begin_leaves_absent_or_started() {
    let full = sweep_case(&Case {
        name: "k",
        start: None,
        args: args(&["begin", "k", "--digest", D1]),
        before: Expect::Absent,
        after: Expect::NewStarted,
    });
    // temp create, write, fchmod, fsync, rename, dir fsync, report.
    assert!(full.points.len() >= 7, "{}", full.listing());
}

#[test]
fn a_kill_at_every_mutating_call_of_commit_leaves_started_or_complete() {
    let started = stamp_bytes(&[&["begin", "k", "--digest", D1]]);
    sweep_case(&Case {
        name: "k",
        start: Some(started),
        args: args(&["commit", "k", "--digest", D1]),
        before: Expect::Unchanged,
        after: Expect::Completed,
    });
}

#[test]
fn a_kill_at_every_mutating_call_of_a_forced_begin_leaves_the_old_or_the_new_record() {
    let complete = stamp_bytes(&[
        &["begin", "k", "--digest", D2],
        &["commit", "k", "--digest", D2],
    ]);
    sweep_case(&Case {
        name: "k",
        start: Some(complete),
        args: args(&["begin", "k", "--digest", D1, "--force"]),
        before: Expect::Unchanged,
        after: Expect::NewStarted,
    });
}

#[test]
fn a_kill_at_every_mutating_call_of_reset_leaves_the_record_or_nothing() {
    let started = stamp_bytes(&[&["begin", "k", "--digest", D1]]);
    sweep_case(&Case {
        name: "k",
        start: Some(started),
        args: args(&["reset", "k"]),
        before: Expect::Unchanged,
        after: Expect::Absent,
    });
}

// --- The example units ----------------------------------------------------

const UNITS: [&str; 2] = [
    "example-reprovision.service",
    "example-reprovision-complete.service",
];

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd/examples")
}

/// The example units with their placeholder paths replaced.
fn units_with(subst: &[(&str, &str)]) -> Vec<(String, String)> {
    UNITS
        .iter()
        .map(|u| {
            let mut text = std::fs::read_to_string(units_dir().join(u)).unwrap();
            for (from, to) in subst {
                text = text.replace(from, to);
            }
            (u.to_string(), text)
        })
        .collect()
}

#[test]
fn example_units_pass_systemd_analyze_verify() {
    let t = tempfile::tempdir().unwrap();
    // verify checks that executables exist: use the binary under test.
    let units = units_with(&[
        ("/usr/bin/stagehand", EXE),
        ("/usr/libexec/example-reprovision", "/bin/true"),
    ]);
    let mut paths = Vec::new();
    for (name, text) in &units {
        let p = t.path().join(name);
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("systemd-analyze (package systemd)");
    // verify exits 0 on mere warnings (an unknown Type=, a bad
    // SuccessExitStatus=), so any output about our units is a failure too.
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("example-reprovision"), "{all}");
    // The real paths are what the docs promise.
    let shipped = units_with(&[]);
    for (_, text) in &shipped {
        assert!(text.contains("/usr/bin/stagehand guard "), "{text}");
        assert!(text.contains("--dir /var/lib/stagehand/guard"), "{text}");
        assert!(text.contains("Type=oneshot"), "{text}");
    }
}

/// Just enough of systemd's semantics for the two example units, to run
/// their real command lines in the order and with the outcomes systemd gives
/// them (systemd.service(5)): ConditionPathExists=; ExecCondition= exit 0
/// runs the unit, 1-254 skips it (not a failure), 255 fails it; Requires= +
/// After= does not start the completion unit when the step unit failed;
/// SuccessExitStatus= adds success codes. Exec lines are run by sh after
/// systemd's `$$` -> `$` unescaping (they use no other systemd syntax).
struct Sim {
    _t: tempfile::TempDir,
    dir: PathBuf,
    cfg: PathBuf,
    log: PathBuf,
    mode: PathBuf,
    units: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// ConditionPathExists= was false: nothing ran.
    ConditionFalse,
    /// The step ran and the completion unit succeeded.
    Done,
    /// ExecCondition= skipped the step; the completion unit succeeded.
    Skipped,
    /// The step unit failed (refusal or step failure); completion did not run.
    Failed,
}

impl Sim {
    fn new() -> Sim {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let dir = root.join("guard");
        std::fs::create_dir(&dir).unwrap();
        let cfg = root.join("reprovision.json");
        let log = root.join("step.log");
        let mode = root.join("step.exit");
        std::fs::write(&mode, "0").unwrap();
        let step = root.join("example-reprovision");
        std::fs::write(
            &step,
            format!(
                "#!/bin/sh\necho \"ran with $(cat \"$1\")\" >> {}\nexit $(cat {})\n",
                log.display(),
                mode.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&step, std::fs::Permissions::from_mode(0o755)).unwrap();
        let units = units_with(&[
            ("/usr/bin/stagehand", EXE),
            ("/usr/libexec/example-reprovision", step.to_str().unwrap()),
            ("/var/lib/stagehand/guard", dir.to_str().unwrap()),
            ("/etc/example/reprovision.json", cfg.to_str().unwrap()),
        ]);
        Sim {
            _t: t,
            dir,
            cfg,
            log,
            mode,
            units,
        }
    }

    fn key(&self, unit: usize, key: &str) -> Option<String> {
        let v = self.units[unit]
            .1
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))?;
        // A lone `$` would be expanded by systemd itself: the units must double it.
        assert!(
            !v.replace("$$", "").contains('$'),
            "{key}= has an unescaped $: {v}"
        );
        Some(v.replace("$$", "$"))
    }

    fn exec(&self, line: &str) -> i32 {
        let out = Command::new("sh").args(["-c", line]).output().unwrap();
        out.status.code().expect("not killed")
    }

    /// The journal-free life of one boot.
    fn boot(&self) -> Outcome {
        self.boot_until(false)
    }

    /// A boot that loses power after the red line, while the step runs.
    fn boot_cut_during_step(&self) -> Outcome {
        self.boot_until(true)
    }

    fn boot_until(&self, cut: bool) -> Outcome {
        let cond = self.key(0, "ConditionPathExists").unwrap();
        assert_eq!(Some(&cond), self.key(1, "ConditionPathExists").as_ref());
        if !Path::new(&cond).exists() {
            return Outcome::ConditionFalse;
        }
        assert_eq!(self.key(0, "Type").as_deref(), Some("oneshot"));
        assert_eq!(
            self.key(1, "Requires").as_deref(),
            Some("example-reprovision.service")
        );
        assert_eq!(
            self.key(1, "After").as_deref(),
            Some("example-reprovision.service")
        );
        let skipped = match self.exec(&self.key(0, "ExecCondition").unwrap()) {
            0 => {
                if cut {
                    return Outcome::Failed;
                }
                if self.exec(&self.key(0, "ExecStart").unwrap()) != 0 {
                    return Outcome::Failed;
                }
                false
            }
            1..=254 => true,
            _ => return Outcome::Failed,
        };
        let ok: Vec<i32> = self
            .key(1, "SuccessExitStatus")
            .map(|v| v.split_whitespace().map(|c| c.parse().unwrap()).collect())
            .unwrap_or_default();
        let rc = self.exec(&self.key(1, "ExecStart").unwrap());
        assert!(rc == 0 || ok.contains(&rc), "completion unit failed: {rc}");
        if skipped {
            Outcome::Skipped
        } else {
            Outcome::Done
        }
    }

    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

#[test]
fn example_units_run_the_step_once_per_configuration_and_stop_after_an_interruption() {
    let sim = Sim::new();
    // No configuration: the condition keeps both units from running.
    assert_eq!(sim.boot(), Outcome::ConditionFalse);
    assert!(listing(&sim.dir).is_empty());

    std::fs::write(&sim.cfg, "disk=A").unwrap();
    assert_eq!(sim.boot(), Outcome::Done);
    assert_eq!(
        state(&sim.dir, "reprovision").unwrap().phase,
        Phase::Complete
    );
    // Every later boot skips it, and the completion unit still succeeds.
    assert_eq!(sim.boot(), Outcome::Skipped);
    assert_eq!(sim.boot(), Outcome::Skipped);
    assert_eq!(sim.runs(), ["ran with disk=A"]);

    // A different configuration is refused: the unit fails, the step does not run.
    std::fs::write(&sim.cfg, "disk=B").unwrap();
    assert_eq!(sim.boot(), Outcome::Failed);
    assert_eq!(sim.runs(), ["ran with disk=A"]);

    // The admin accepts the new configuration: reset, and it runs once with it.
    guard_ok(&sim.dir, &["reset", "reprovision"]);
    assert_eq!(sim.boot(), Outcome::Done);
    assert_eq!(sim.runs(), ["ran with disk=A", "ran with disk=B"]);

    // Power lost while the step runs: every later boot fails loudly instead
    // of running it again on a half-changed disk.
    guard_ok(&sim.dir, &["reset", "reprovision"]);
    assert_eq!(sim.boot_cut_during_step(), Outcome::Failed);
    assert_eq!(sim.boot(), Outcome::Failed);
    assert_eq!(sim.boot(), Outcome::Failed);
    assert_eq!(
        state(&sim.dir, "reprovision").unwrap().phase,
        Phase::Started
    );
    assert_eq!(sim.runs().len(), 2);

    // The step itself fails: completion does not run, the next boot refuses.
    guard_ok(&sim.dir, &["reset", "reprovision"]);
    std::fs::write(&sim.mode, "3").unwrap();
    assert_eq!(sim.boot(), Outcome::Failed);
    std::fs::write(&sim.mode, "0").unwrap();
    assert_eq!(sim.boot(), Outcome::Failed);
    assert_eq!(
        sim.runs().len(),
        3,
        "the failed attempt ran once, not twice"
    );

    // The admin finished it by hand: commit marks it complete, later boots skip.
    guard_ok(
        &sim.dir,
        &[
            "commit",
            "reprovision",
            "--digest-file",
            sim.cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(sim.boot(), Outcome::Skipped);
    assert_eq!(sim.runs().len(), 3);
}
