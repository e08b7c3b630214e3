//! Concurrency: stagehand processes changing the same sysroot at the same
//! time are serialized by the sysroot lock (libostree's `flock` on
//! `/ostree/lock`): every change lands, none is lost to a read-modify-write
//! race, and a process that cannot get the lock in time fails with `Locked`
//! having changed nothing.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use stagehand::health::store;
use stagehand::ErrorCode;
use stagehand_testbed::{Commit, Machine, Testbed};

fn spawn(m: &Machine<'_>, args: &[&str]) -> Child {
    let exe = m.host_path(EXE);
    let mut argv = vec![exe.as_str(), "--lock-timeout", "120"];
    argv.extend_from_slice(args);
    m.command(&argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn denied(j: &Value) -> Vec<String> {
    let mut v: Vec<String> = j["denylist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["checksum"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn concurrent_store_changes_are_serialized_and_none_is_lost() {
    let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let m = tb.boot_default();
    let path = tb.sysroot().join("ostree/stagehand/health");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let fake: Vec<String> = (0..4).map(|i| format!("{i}").repeat(64)).collect();
    for round in 0..3 {
        // Four denylisted commits and the booted deployment on trial.
        let store = json!({
            "entries": [{"deployment": {"stateroot": "testos", "checksum": sums[1], "serial": 0},
                "untested": false, "failed": true, "recent": false,
                "attempts": 1, "changed": "2026-01-01T00:00:00Z"}],
            "denylist": fake.iter().map(|c| json!({"checksum": c, "reason": "boom",
                "since": "2026-01-01T00:00:00Z"})).collect::<Vec<_>>(),
        });
        std::fs::write(&path, store::seal(store.to_string().as_bytes())).unwrap();
        let j = status_json(&m);
        assert_eq!(denied(&j).len(), 4, "{j:#}");
        // Five processes at once: four denylist removals and a mark-good,
        // each a read-modify-write of the same store.
        let mut children: Vec<(String, Child)> = fake
            .iter()
            .map(|c| {
                (
                    format!("denylist remove {c}"),
                    spawn(&m, &["denylist", "remove", c]),
                )
            })
            .collect();
        children.push(("mark-good".into(), spawn(&m, &["mark-good"])));
        for (what, c) in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {what}: {}",
                text(&out.stderr)
            );
        }
        // Every change is there.
        let j = status_json(&m);
        assert_eq!(denied(&j), Vec::<String>::new(), "round {round}: {j:#}");
        let booted = j["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["booted"] == true)
            .unwrap();
        assert_eq!(booted["health"], "good", "round {round}: {j:#}");
    }
}

#[test]
fn concurrent_stagings_are_serialized_and_the_last_one_is_staged() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    let a = spawn(&m, &["stage", &v2]);
    let b = spawn(&m, &["stage", &v3]);
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Exactly one staged deployment, one of the two, fully vetted, and
    // ostree agrees; no checkout of the other is left behind.
    let st = m.status();
    let staged: Vec<_> = st.iter().filter(|d| d.has("staged")).collect();
    assert_eq!(staged.len(), 1, "{st:?}");
    assert!(staged[0].checksum == v2 || staged[0].checksum == v3);
    let j = status_json(&m);
    let s = j["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["staged"] == true)
        .unwrap();
    assert_eq!(s["unvetted"], false, "{j:#}");
    assert_eq!(s["health"], "untested", "{j:#}");
    let dirs = m.sh("ls /ostree/deploy/testos/deploy/ | grep -v origin | wc -l");
    assert_eq!(dirs.trim(), "2", "booted + staged only");
}

#[test]
fn a_marker_waiting_for_the_lock_times_out_with_locked_and_changes_nothing() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let m = tb.boot_default();
    ok_in(&m, &["assess"]);
    let path = tb.sysroot().join("ostree/stagehand/health");
    let before = std::fs::read(&path).ok();
    // Another agent (this test process) holds the real ostree sysroot lock.
    let sysroot = stagehand::open_sysroot(tb.sysroot(), None).unwrap();
    sysroot.lock().unwrap();
    for args in [
        &["mark-good"][..],
        &["mark-bad", "--reason", "x"],
        &["denylist", "remove", &"a".repeat(64)],
    ] {
        let t = Instant::now();
        let mut argv = vec!["--lock-timeout", "1"];
        argv.extend_from_slice(args);
        let out = sh_in(&m, &argv);
        assert_fails(&out, ErrorCode::Locked, "locked by another process");
        assert!(t.elapsed() >= Duration::from_secs(1), "{args:?} waited");
        assert_eq!(std::fs::read(&path).ok(), before, "{args:?} wrote");
    }
    // Released while one waits: it proceeds.
    let child = spawn(&m, &["mark-good"]);
    std::thread::sleep(Duration::from_millis(700));
    sysroot.unlock();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(std::fs::read(&path).ok(), before);
}
