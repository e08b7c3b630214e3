//! Staging, finalization lock, unstage and the non-booted fallback, on real
//! sysroots, with the real `ostree` CLI as the peer that must agree.

mod common;

use common::*;
use stagehand::ErrorCode;
use stagehand_testbed::{Commit, Testbed};

#[test]
fn staged_deployment_is_what_ostree_sees_and_survives_etc_edits_after_staging() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    m.sh("echo before > /etc/edit-before");
    let out = ok_in(&m, &["stage", &v2, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["method"], "staged");
    assert_eq!(v["unchanged"], false);
    assert_eq!(v["finalization_locked"], false);
    assert_eq!(v["deployment"]["checksum"], v2.as_str());

    // The real ostree CLI sees it staged, the booted one unchanged.
    let st = m.status();
    assert_eq!(st.len(), 2, "{st:?}");
    assert!(st[0].has("staged") && st[0].checksum == v2, "{st:?}");
    assert!(st[1].has("booted") && st[1].checksum == sums[0], "{st:?}");
    assert!(m
        .run(&["test", "-e", "/run/ostree/staged-deployment"])
        .status
        .success());
    assert!(!m
        .run(&["test", "-e", "/run/ostree/staged-deployment-locked"])
        .status
        .success());

    let j = status_json(&m);
    let deps = j["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 2);
    for key in [
        "index",
        "stateroot",
        "checksum",
        "serial",
        "version",
        "booted",
        "staged",
        "pinned",
        "finalization_locked",
    ] {
        assert!(deps[0].get(key).is_some(), "status --json lacks {key}: {j}");
    }
    assert_eq!(deps[0]["staged"], true);
    assert_eq!(deps[0]["version"], "2.0");
    assert_eq!(deps[1]["booted"], true);
    assert_eq!(deps[1]["index"], 1);

    // Edits after staging must survive: that is the point of staging.
    m.sh("echo after > /etc/edit-after");
    m.shutdown();
    let d = tb.deployments();
    assert_eq!(d[0].checksum, v2, "{d:?}");
    let m = tb.boot(&d[0]);
    assert_eq!(
        m.sh("cat /etc/edit-before /etc/edit-after /etc/motd"),
        "before\nafter\nTestbed OS 2.0\n"
    );
    let st = m.status();
    assert!(st[0].has("booted") && st[0].checksum == v2);
    assert_eq!(
        st[1].checksum, sums[0],
        "the old deployment is the rollback"
    );
}

#[test]
fn inherited_and_appended_kernel_arguments() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    ok_in(
        &m,
        &["stage", &v2, "--karg", "quiet=1", "--karg", "console=ttyS0"],
    );
    m.shutdown();
    let entry = std::fs::read_to_string(tb.sysroot().join("boot/loader/syslinux.cfg")).unwrap();
    let first = entry.lines().find(|l| l.contains("APPEND")).unwrap();
    assert!(
        first.contains("root=LABEL=testroot") && first.contains("rw"),
        "inherited: {first}"
    );
    assert!(
        first.contains("console=ttyS0") && first.contains("quiet=1"),
        "appended: {first}"
    );
    assert!(!first.contains("quiet "), "quiet=1 replaced quiet: {first}");

    let v3 = tb.commit(&Commit::new("3.0"));
    let d = tb.deployments();
    let m = tb.boot(&d[0]);
    ok_in(
        &m,
        &["stage", &v3, "--karg-none", "--karg", "root=LABEL=other"],
    );
    m.shutdown();
    let entry = std::fs::read_to_string(tb.sysroot().join("boot/loader/syslinux.cfg")).unwrap();
    let first = entry.lines().find(|l| l.contains("APPEND")).unwrap();
    assert!(
        first.contains("root=LABEL=other") && !first.contains("console=") && !first.contains(" rw"),
        "replaced: {first}"
    );
}

#[test]
fn locked_finalization_leaves_it_staged_until_unlocked() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    let out = ok_in(&m, &["stage", &v2, "--lock-finalization"]);
    assert!(out.contains("finalization locked"), "{out}");
    assert!(m
        .run(&["test", "-e", "/run/ostree/staged-deployment-locked"])
        .status
        .success());
    assert_eq!(
        status_json(&m)["deployments"][0]["finalization_locked"],
        true
    );
    assert_eq!(ok_in(&m, &["finalization", "status"]).trim(), "locked");

    // Shutdown with the lock: the real finalizer refuses, nothing changes.
    let fin = m.finalize();
    assert!(fin.status.success());
    let st = m.status();
    assert!(
        st[0].has("staged") && st[0].checksum == v2,
        "still staged: {st:?}"
    );
    assert_eq!(tb.deployments().len(), 1, "bootloader untouched");
    assert_eq!(tb.deployments()[0].checksum, sums[0]);

    // Unlock: the next shutdown finalizes.
    assert_eq!(
        ok_in(&m, &["finalization", "unlock"]).trim(),
        "finalization unlocked"
    );
    assert_eq!(
        status_json(&m)["deployments"][0]["finalization_locked"],
        false
    );
    m.shutdown();
    assert_eq!(tb.deployments()[0].checksum, v2);
}

#[test]
fn lock_after_staging_then_power_cut_keeps_the_old_default() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v2]);
    ok_in(&m, &["finalization", "lock"]);
    assert!(m.finalize().status.success());
    m.power_off();
    let d = tb.deployments();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].checksum, sums[0]);
}

#[test]
fn unstage_removes_staged_state_checkout_and_lock_only() {
    let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    let before = snapshot(&m);
    let dirs_before = tb.deployment_dirs();
    ok_in(&m, &["stage", &v3, "--lock-finalization"]);
    assert_eq!(tb.deployment_dirs().len(), dirs_before.len() + 1);
    let out = ok_in(&m, &["unstage"]);
    assert!(out.contains(&v3), "{out}");
    assert_eq!(
        snapshot(&m),
        before,
        "unstage must restore the exact prior state"
    );
    assert_eq!(tb.deployment_dirs(), dirs_before);
    let st = m.status();
    assert_eq!(st.len(), 2);
    assert!(st[0].has("booted") && st[0].checksum == sums[1]);
    assert!(st[1].has("rollback") && st[1].checksum == sums[0]);
    // Nothing staged: unstage is a no-op that says so.
    assert_eq!(ok_in(&m, &["unstage"]).trim(), "no staged deployment");
}

#[test]
fn restaging_the_same_commit_is_a_no_op_and_a_different_one_replaces_it() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    let first: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["stage", &v2, "--json"])).unwrap();
    let dirs = tb.deployment_dirs();
    let again: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["stage", &v2, "--json"])).unwrap();
    assert_eq!(again["unchanged"], true);
    assert_eq!(
        again["deployment"], first["deployment"],
        "same deployment, same serial"
    );
    assert_eq!(tb.deployment_dirs(), dirs);
    // The same commit with the lock requested only locks.
    let locked: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["stage", &v2, "--lock-finalization", "--json"])).unwrap();
    assert_eq!(locked["unchanged"], true);
    assert_eq!(locked["finalization_locked"], true);
    // The same commit with other kernel arguments is a different request.
    let k: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["stage", &v2, "--karg", "x=1", "--json"])).unwrap();
    assert_eq!(k["unchanged"], false);
    assert_ne!(k["deployment"], first["deployment"]);
    assert_eq!(k["finalization_locked"], false);

    let replaced: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["stage", &v3, "--json"])).unwrap();
    assert_eq!(replaced["unchanged"], false);
    let st = m.status();
    assert_eq!(st.len(), 2, "one staged deployment only: {st:?}");
    assert!(st[0].has("staged") && st[0].checksum == v3);
    assert_eq!(
        tb.deployment_dirs().len(),
        2,
        "the replaced checkout is gone"
    );
    m.shutdown();
    assert_eq!(tb.deployments()[0].checksum, v3);
}

#[test]
fn not_booted_falls_back_to_a_full_deploy() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let out = host(&tb, &["stage", &v2, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["method"], "deployed");
    let d = tb.deployments();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].checksum, v2);
    assert_eq!(d[1].checksum, sums[0]);
    // Again: already the default, nothing written.
    let out = host(&tb, &["stage", &v2, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["unchanged"], true);
    assert_eq!(tb.deployments(), d);
    // And it boots.
    let m = tb.boot(&d[0]);
    assert_eq!(m.sh("cat /etc/motd"), "Testbed OS 2.0\n");
}

#[test]
fn errors_are_typed_and_leave_nothing_behind() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let broken = tb.commit(
        &Commit::new("2.1-nokernel")
            .not_bootable()
            .branch("testos/broken"),
    );
    let m = tb.boot_default();
    // Errors on top of an existing staged deployment must keep it intact.
    ok_in(&m, &["stage", &v2]);
    let before = snapshot(&m);

    assert_fails(
        &sh_in(&m, &["stage", &"0".repeat(64)]),
        ErrorCode::UnknownRevision,
        &"0".repeat(64),
    );
    assert_fails(
        &sh_in(&m, &["stage", "no/such/ref"]),
        ErrorCode::UnknownRevision,
        "no/such/ref",
    );
    assert_fails(
        &sh_in(&m, &["stage", &broken]),
        ErrorCode::NotBootable,
        &broken,
    );
    assert_fails(
        &sh_in(&m, &["stage", &v2, "--stateroot", "nosuchos"]),
        ErrorCode::UnknownStateroot,
        "nosuchos",
    );
    assert_fails(
        &sh_in(&m, &["stage", &v2, "--stateroot", "../x"]),
        ErrorCode::InvalidArgument,
        "../x",
    );
    assert_eq!(snapshot(&m), before);

    assert_eq!(snapshot(&m), before);

    // A bad karg-free usage error is clap's (exit 2), not a library error.
    assert_eq!(sh_in(&m, &["stage"]).status.code(), Some(2));
}

#[test]
fn sysroot_lock_waits_then_times_out_with_a_typed_error() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    let before = snapshot(&m);

    // Another agent (this test process) holds the real ostree sysroot lock.
    let sysroot = stagehand::open_sysroot(tb.sysroot(), None).unwrap();
    sysroot.lock().unwrap();
    let t = std::time::Instant::now();
    let out = sh_in(&m, &["--lock-timeout", "1", "stage", &v2]);
    assert_fails(&out, ErrorCode::Locked, "locked by another process");
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "it waited"
    );
    assert_eq!(snapshot(&m), before);

    // Released while the agent waits: it proceeds.
    let child = m
        .command(&[
            m.host_path(EXE).as_str(),
            "--lock-timeout",
            "60",
            "stage",
            &v2,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    sysroot.unlock();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(m.staged().unwrap().checksum, v2);
}

#[test]
fn read_only_sysroot_is_a_typed_error_when_nothing_may_remount_it() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let before = tb.admin(&["status"]);
    let dirs = tb.deployment_dirs();
    // Not booted: libostree never remounts, so a read-only sysroot stays read-only.
    let s = tb.sysroot().display().to_string();
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("mount --bind '{s}' '{s}' && mount -o remount,bind,ro '{s}' && exec \"$0\" --sysroot '{s}' stage {v2}"))
        .arg(EXE)
        .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
        .output()
        .unwrap();
    assert_fails(&out, ErrorCode::ReadOnly, "read-only");
    assert_eq!(tb.admin(&["status"]), before);
    assert_eq!(tb.deployment_dirs(), dirs);
}

#[test]
fn staged_checkout_hardlinks_repo_objects_instead_of_copying() {
    // Regression: libostree 2022.7's initialize_with_mount_namespace keeps a
    // sysroot fd from the old mount namespace; without reopening it, every
    // hardlink from the repo fails with EXDEV and files are copied.
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0").files(50));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v2]);
    let staged = m.staged().unwrap();
    let f = tb.deployment_dir(&staged).join("usr/share/testbed/00/f0");
    use std::os::unix::fs::MetadataExt;
    let nlink = std::fs::metadata(&f).unwrap().nlink();
    assert!(
        nlink >= 2,
        "{} has {nlink} link(s): copied, not hardlinked from the repo",
        f.display()
    );
}
