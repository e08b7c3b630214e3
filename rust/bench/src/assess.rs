//! The `boot-assessment` benchmark: boot assessment and mark-good as the
//! units run them (health store + the grubenv counter, through
//! `stagehand::assessment::BootAssessment`), on a booted sysroot with three
//! deployments (a new one on trial, two known-good ones pinned), against the
//! `grub-editenv` runs greenboot makes for the same boots, on the same block.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use stagehand_testbed::{Commit, Machine, Testbed};

use crate::{time, Row, Target};

/// The step of the benchmark, in-process inside the booted machine: prints
/// the nanoseconds the library call took (sysroot opened and locked before
/// the clock starts: a daemon has them already, and the lock is the same
/// for every operation).
pub fn inner(step: &str) -> Result<(), String> {
    use stagehand::assessment::BootAssessment;
    let sysroot = stagehand::open_sysroot(Path::new("/"), None).map_err(|e| e.to_string())?;
    let lock = stagehand::SysrootLock::acquire(&sysroot, Duration::from_secs(60), None)
        .map_err(|e| e.to_string())?;
    let ba =
        BootAssessment::new(&sysroot, stagehand::Config::default()).map_err(|e| e.to_string())?;
    let opts = ba.health_options();
    let t = Instant::now();
    match step {
        "assess" => {
            let a = ba
                .assess(&lock, None, &opts, None)
                .map_err(|e| e.to_string())?;
            if !a.verdict.counted {
                return Err("assess did not count the boot".into());
            }
        }
        "mark-good" => {
            let g = ba
                .mark_good(&lock, &opts, None)
                .map_err(|e| e.to_string())?;
            if !g.blessed {
                return Err("mark-good did not bless the counter".into());
            }
            if !g.outcome.retention_pending {
                return Err("mark-good ended no trial".into());
            }
        }
        "retention" => {
            // What stagehand-autocleanup.service does first after mark-good
            // ended a trial (off the boot path): release the two pins, drop
            // the third deployment (named in the cleanup stamp).
            let r = stagehand::health::finish_retention(&lock, None).map_err(|e| e.to_string())?;
            if r.released_pins.len() != 2 || r.removed.len() != 1 {
                return Err(format!("unexpected retention outcome {r:?}"));
            }
        }
        "mark-good-later" => {
            let g = ba
                .mark_good(&lock, &opts, None)
                .map_err(|e| e.to_string())?;
            if g.blessed {
                return Err("the counter was blessed already".into());
            }
        }
        other => return Err(format!("unknown step {other:?}")),
    }
    println!("{}", t.elapsed().as_nanos());
    Ok(())
}

/// Calls per syscall name in an `strace -c` summary.
fn strace_counts(summary: &str, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|n| {
            summary
                .lines()
                .filter(|l| l.split_whitespace().last() == Some(n))
                .map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    // % time, seconds, usecs/call, calls, [errors], syscall
                    w.get(3).and_then(|c| c.parse::<usize>().ok()).unwrap_or(0)
                })
                .sum()
        })
        .collect()
}

/// fsync + fdatasync, and syncfs + sync, of one step run under strace.
fn step_syncs(m: &Machine<'_>, exe: &str, step: &str) -> (usize, usize) {
    m.ok(&[
        "strace",
        "-f",
        "-c",
        "-e",
        "trace=fsync,fdatasync,syncfs,sync",
        "-o",
        "/run/bench-strace",
        exe,
        "__inner",
        "assess-step",
        step,
    ]);
    let summary = m.ok(&["cat", "/run/bench-strace"]);
    let c = strace_counts(&summary, &["fsync", "fdatasync", "syncfs", "sync"]);
    (c[0] + c[1], c[2] + c[3])
}

/// Wall time and fsyncs of `assess` (early in the boot of the deployment on
/// trial: counts the boot, reads the counter), of `mark-good` (the verdict,
/// the counter blessed) and, for information, of the retention housekeeping
/// mark-good leaves to autocleanup (the trial's pins released, the third
/// deployment dropped), each from a fresh copy of the same sysroot.
///
/// Peers, on the same GRUB environment block: at every boot greenboot reads
/// the block (`grub-editenv - list`, to see whether GRUB fell back); its
/// success marking is `grub-editenv - set boot_success=1`, then
/// `grub-editenv - unset boot_counter`. They record nothing else: no
/// per-deployment verdict, no denylist, no pins.
pub fn bench_boot_assessment(reps: usize) -> Vec<Row> {
    let mut tb = Testbed::new();
    let exe = std::env::current_exe().expect("own path");
    tb.expose(exe.parent().expect("a directory"));
    for v in ["1.0", "2.0"] {
        let c = tb.commit(&Commit::new(v));
        tb.deploy(&c);
    }
    let grub = tb.sysroot().join("boot/grub");
    std::fs::create_dir_all(&grub).expect("boot/grub");
    let env_path = grub.join("grubenv");
    let ok = Command::new("grub-editenv")
        .arg(&env_path)
        .arg("create")
        .status()
        .expect("grub-editenv (apt-get install grub-common)")
        .success();
    assert!(ok);
    // What the counting snippet puts into grub.cfg: backend=auto finds it.
    std::fs::write(
        grub.join("grub.cfg"),
        "load_env\nif [ -n \"${boot_counter}\" -a \"${boot_success}\" = \"0\" ]; then save_env boot_counter; fi\n",
    )
    .expect("grub.cfg");
    let v3 = tb.commit(&Commit::new("3.0"));
    {
        let m = tb.boot_default();
        m.ok(&[m.host_path(&exe).as_str(), "__inner", "stage", &v3]);
        m.shutdown();
    }
    // Armed as finalize-stamp arms it (the same variables); GRUB then
    // counts the first boot.
    let ok = Command::new("grub-editenv")
        .arg(&env_path)
        .args(["set", "boot_counter=3", "boot_success=0"])
        .status()
        .expect("grub-editenv")
        .success();
    assert!(ok);
    stagehand::bootloader::grubenv::simulate_boot_file(&env_path).expect("GRUB model");
    let d = tb.deployments();
    assert!(d.len() == 3 && d[0].checksum == v3, "{d:?}");
    let saved = tb.save_state();

    let editenv = |args: &[&str]| {
        let ok = Command::new("grub-editenv")
            .arg(&env_path)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("grub-editenv")
            .success();
        assert!(ok, "grub-editenv {args:?}");
    };
    let mut assess = Vec::new();
    let mut assess_proc = Vec::new();
    let mut good = Vec::new();
    let mut good_later = Vec::new();
    let mut peer_list = Vec::new();
    let mut peer_bless = Vec::new();
    let mut syncs = None;
    let mut retention_syncs = None;
    let mut retention = Vec::new();
    let mut peer_trial_end = Vec::new();
    for i in 0..reps {
        tb.restore_state(&saved);
        let m = tb.boot_default();
        let exe_in = m.host_path(&exe);
        let run = |step: &str| -> Duration {
            let out = m.ok(&[exe_in.as_str(), "__inner", "assess-step", step]);
            Duration::from_nanos(out.trim().parse().expect("nanoseconds"))
        };
        if i == 0 {
            // The fsync counts, from this state (strace slows the run, so
            // they get their own boot).
            let a = step_syncs(&m, &exe_in, "assess");
            let g = step_syncs(&m, &exe_in, "mark-good");
            let r = step_syncs(&m, &exe_in, "retention");
            drop(m);
            let m = tb.boot_default();
            let later = step_syncs(&m, &m.host_path(&exe), "mark-good-later");
            syncs = Some((a, g, later));
            retention_syncs = Some(r);
            drop(m);
            tb.restore_state(&saved);
            let m = tb.boot_default();
            let exe_in = m.host_path(&exe);
            // Process start-up included (and nsenter's, into the machine).
            assess_proc.push(time(|| {
                m.ok(&[exe_in.as_str(), "__inner", "assess-step", "assess"]);
            }));
            continue;
        }
        assess.push(run("assess"));
        good.push(run("mark-good"));
        retention.push(run("retention"));
        drop(m);
        let m = tb.boot_default();
        let out = m.ok(&[
            m.host_path(&exe).as_str(),
            "__inner",
            "assess-step",
            "mark-good-later",
        ]);
        good_later.push(Duration::from_nanos(
            out.trim().parse().expect("nanoseconds"),
        ));
        drop(m);
        // The peers, on the same block in the same state.
        tb.restore_state(&saved);
        peer_list.push(time(|| editenv(&["list"])));
        peer_bless.push(time(|| {
            editenv(&["set", "boot_success=1"]);
            editenv(&["unset", "boot_counter"]);
        }));
        tb.restore_state(&saved);
        let m = tb.boot_default();
        let exe_in = m.host_path(&exe);
        assess_proc.push(time(|| {
            m.ok(&[exe_in.as_str(), "__inner", "assess-step", "assess"]);
        }));
        drop(m);
        // The same deployment work with the ostree CLI: both pins released,
        // the third deployment undeployed.
        tb.restore_state(&saved);
        let m = tb.boot_default();
        peer_trial_end.push(time(|| {
            m.ok(&["ostree", "admin", "pin", "--unpin", "1", "2"]);
            m.ok(&["ostree", "admin", "undeploy", "2"]);
        }));
    }
    let ((a_fsync, a_syncfs), (g_fsync, g_syncfs), (l_fsync, l_syncfs)) = syncs.expect("measured");
    let (r_fsync, r_syncfs) = retention_syncs.expect("measured");
    vec![
        Row {
            name: "boot assessment, 3 deployments (in-process)".into(),
            ours: assess,
            theirs: peer_list.clone(),
            target: Target::Millis(5.0),
            note: format!(
                "fsyncs {a_fsync} (syncfs/sync {a_syncfs}; minimum 2: store file + dir); \
                 vs greenboot's `grub-editenv - list` at boot"
            ),
        },
        Row {
            name: "boot assessment (own process, via nsenter)".into(),
            ours: assess_proc,
            theirs: peer_list,
            target: Target::Information,
            note: "information: process start-up (libostree, GLib) and nsenter included".into(),
        },
        Row {
            name: "mark-good + bless, 3 deployments (in-process)".into(),
            ours: good,
            theirs: peer_bless.clone(),
            target: Target::Millis(5.0),
            note: format!(
                "fsyncs {g_fsync} (syncfs/sync {g_syncfs}; minimum 4: store and grubenv, file + dir \
                 each; the trial's pins are left to autocleanup, next row); vs greenboot's \
                 two grub-editenv runs (no verdict, no pins)"
            ),
        },
        Row {
            name: "retention after mark-good (autocleanup)".into(),
            ours: retention,
            theirs: peer_trial_end,
            target: Target::Information,
            note: format!(
                "information, off the boot path: fsyncs {r_fsync} (syncfs/sync {r_syncfs}); 2 pins \
                 released, the third deployment stamped and dropped (no prune); vs `ostree admin \
                 pin --unpin 1 2` + `undeploy 2`"
            ),
        },
        Row {
            name: "mark-good, every later boot (in-process)".into(),
            ours: good_later,
            theirs: peer_bless,
            target: Target::Millis(5.0),
            note: format!(
                "fsyncs {l_fsync} (syncfs/sync {l_syncfs}; minimum 2: the boot counted in the store; \
                 the counter is blessed already); vs greenboot's two grub-editenv runs, which it \
                 makes at every boot"
            ),
        },
    ]
}
