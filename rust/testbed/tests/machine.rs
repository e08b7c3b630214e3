//! The test bed itself, against the real ostree CLI.

use stagehand_testbed::{Commit, Testbed};

#[test]
fn boot_stage_finalize_reboot_with_the_ostree_cli() {
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let m = tb.boot_default();
    let st = m.status();
    assert_eq!(st.len(), 1);
    assert!(st[0].has("booted"), "{st:?}");
    assert_eq!(st[0].checksum, v1);
    assert_eq!(m.sh("cat /etc/motd"), "Testbed OS 1.0\n");
    assert!(m
        .run(&["test", "-e", "/run/ostree-booted"])
        .status
        .success());

    let v2 = tb.commit(&Commit::new("2.0"));
    m.sh("echo before > /etc/edit-before");
    m.ok(&["ostree", "admin", "deploy", "--stage", &v2]);
    let staged = m.staged().expect("a staged deployment");
    assert_eq!(staged.checksum, v2);
    m.sh("echo after > /etc/edit-after");
    let pid = m.init_pid();
    m.shutdown();
    // The namespace is gone with its init.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_link(format!("/proc/{pid}/root")).is_err()
    );

    let d = tb.deployments();
    assert_eq!(d[0].checksum, v2, "{d:?}");
    let m = tb.boot(&d[0]);
    assert_eq!(
        m.sh("cat /etc/motd /etc/edit-before /etc/edit-after"),
        "Testbed OS 2.0\nbefore\nafter\n"
    );
    assert!(m.status()[0].has("booted"));
}

#[test]
fn power_cut_without_finalize_keeps_the_old_default() {
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let m = tb.boot_default();
    let v2 = tb.commit(&Commit::new("2.0"));
    m.ok(&["ostree", "admin", "deploy", "--stage", &v2]);
    m.power_off();
    let d = tb.deployments();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].checksum, v1);
}

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let root;
    let pid;
    {
        let tb = Testbed::new();
        root = tb.root().to_path_buf();
        let c = tb.commit(&Commit::new("1.0").files(3));
        tb.deploy(&c);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let m = tb.boot_default();
            let p = m.init_pid();
            std::panic::panic_any(p);
        }));
        pid = *r.unwrap_err().downcast::<i32>().unwrap();
    }
    assert!(!root.exists(), "{} left behind", root.display());
    let alive = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!alive.contains("sleep"), "namespace init {pid} still alive");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "mounts left behind:\n{mounts}"
    );
}

#[test]
fn not_bootable_commit_is_refused_by_ostree() {
    let tb = Testbed::new();
    let c = tb.commit(&Commit::new("1.0").not_bootable());
    let out = tb
        .ostree_cmd()
        .args([
            "admin",
            &format!("--sysroot={}", tb.sysroot().display()),
            "deploy",
            "--os=testos",
            &c,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn root_is_a_mount_point_so_bubblewrap_runs_inside() {
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let m = tb.boot_default();
    let mountinfo = m.sh("cat /proc/self/mountinfo");
    assert!(
        mountinfo.lines().any(|l| l.split(' ').nth(4) == Some("/")),
        "/ is not a mount point inside the machine:\n{mountinfo}"
    );
    // bwrap makes `/` a slave mount first thing; that fails unless `/` is a
    // mount point.
    let out = m.sh("bwrap --ro-bind / / --unshare-pid --die-with-parent /usr/bin/echo sandboxed");
    assert_eq!(out, "sandboxed\n");
}

#[test]
fn init_reaps_orphans() {
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let m = tb.boot_default();
    // A grandchild whose parent exits at once is re-parented to the init,
    // which must reap it when it exits.
    m.sh("sh -c 'sleep 0.2 & exit 0'");
    let mut zombies = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        zombies = m.sh("for s in /proc/[0-9]*/stat; do read -r l < $s && case \"$l\" in *') Z '*) echo \"$l\";; esac; done 2>/dev/null || true");
        if zombies.is_empty() {
            break;
        }
    }
    assert!(zombies.is_empty(), "zombies left: {zombies}");
}

#[test]
fn saved_state_restores_the_exact_sysroot_with_its_hardlinks() {
    use std::os::unix::fs::MetadataExt;
    let (tb, sums) = stagehand_testbed::Testbed::with_deployments(&["1.0"]);
    let before = tb.deployments();
    let saved = tb.save_state();
    let v2 = tb.commit(&Commit::new("2.0"));
    tb.deploy(&v2);
    {
        let m = tb.boot_default();
        m.sh("echo x > /etc/new");
    }
    assert_ne!(tb.deployments(), before);
    tb.restore_state(&saved);
    assert_eq!(tb.deployments(), before);
    assert_eq!(tb.deployments()[0].checksum, sums[0]);
    // Deployment files are still hardlinks into the repository.
    let f = tb
        .deployment_dir(&before[0])
        .join("usr/share/testbed/00/f0");
    assert!(std::fs::metadata(&f).unwrap().nlink() >= 2);
    let m = tb.boot_default();
    assert!(!m.run(&["test", "-e", "/etc/new"]).status.success());
    assert_eq!(m.sh("cat /etc/motd"), "Testbed OS 1.0\n");
    // Restoring under a running machine is refused.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tb.restore_state(&saved)));
    assert!(
        r.is_err(),
        "restore_state with a machine running must panic"
    );
    drop(m);
    // The saved copy stays usable.
    tb.restore_state(&saved);
    assert_eq!(tb.deployments(), before);
}
