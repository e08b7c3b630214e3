//! Boot assessment end to end, on real sysroots booted in the test bed: the
//! units' own command lines (read from `systemd/`), the real GRUB
//! environment block (checked with the real `grub-editenv`), and
//! `stagehand::bootloader::grubenv::simulate_boot` — the Rust model of
//! `data/grub/08_stagehand-boot-counting`, checked against real GRUB in
//! tests/bootloader.rs — deciding at each "reboot" which deployment GRUB
//! boots: the default (`deployments[0]`) or the fallback (`deployments[1]`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;
use stagehand::bootloader::grubenv::{simulate_boot_file, GrubChoice};
use stagehand::ErrorCode;
use stagehand_testbed::crashpoints;
use stagehand_testbed::unit::{ExecRun, UnitFile};
use stagehand_testbed::{Commit, Deployment, Machine, Testbed};

const OSTREE_FINALIZE_UNIT: &str = "/lib/systemd/system/ostree-finalize-staged.service";
const DROPIN: &str = "ostree-finalize-staged.service.d/stagehand-cleanup-stamp.conf.in";
const HEALTH_CHECK: &str = "examples/example-health-check.service";
const CHECK_PROGRAM: &str = "/usr/libexec/example-health-check";

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd")
}

/// The units as meson installs them, `@bindir@` the directory of the binary
/// under test; the example health check runs `check` instead of its
/// placeholder program.
struct Units {
    assess: UnitFile,
    mark_good: UnitFile,
    deadline: UnitFile,
    record: UnitFile,
    finalize: UnitFile,
    check: UnitFile,
    autocleanup: UnitFile,
}

fn units(bindir: &str, check: &str) -> Units {
    let s = systemd_dir();
    let subst = [("bindir", bindir)];
    let load = |f: &str| UnitFile::load(s.join(f), &[], &subst);
    let check_text = std::fs::read_to_string(s.join(HEALTH_CHECK))
        .unwrap()
        .replace(CHECK_PROGRAM, check);
    Units {
        assess: load("stagehand-assess.service.in"),
        mark_good: load("stagehand-mark-good.service.in"),
        deadline: load("stagehand-health-deadline.service.in"),
        record: load("stagehand-finalize-record.service.in"),
        finalize: UnitFile::load(OSTREE_FINALIZE_UNIT, &[&s.join(DROPIN)], &subst),
        check: UnitFile::parse("example-health-check.service", &check_text),
        autocleanup: load("stagehand-autocleanup.service.in"),
    }
}

fn machine_units(m: &Machine<'_>, check: &str) -> Units {
    let exe = m.host_path(EXE);
    units(Path::new(&exe).parent().unwrap().to_str().unwrap(), check)
}

#[track_caller]
fn run_ok(m: &Machine<'_>, u: &UnitFile, key: &str) -> ExecRun {
    assert!(m.unit_conditions_met(u), "{}: condition not met", u.name());
    let r = m.run_unit(u, key);
    assert!(!r.failed, "{} failed:\n{}", u.name(), r.transcript());
    r
}

fn stdout(r: &ExecRun) -> String {
    r.ran
        .iter()
        .map(|(_, o)| text(&o.stdout))
        .collect::<Vec<_>>()
        .join("")
}

/// The grubenv in the test sysroot's /boot, as GRUB and the booted system see it.
fn grubenv(tb: &Testbed) -> PathBuf {
    tb.sysroot().join("boot/grub/grubenv")
}

/// `grub-editenv FILE list`: the real tool reads the block stagehand wrote.
fn editenv_list(tb: &Testbed) -> Vec<String> {
    let out = Command::new("grub-editenv")
        .arg(grubenv(tb))
        .arg("list")
        .output()
        .expect("grub-editenv (apt-get install grub-common)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

fn var(tb: &Testbed, name: &str) -> Option<String> {
    editenv_list(tb)
        .into_iter()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(String::from))
}

/// A sysroot with v1 deployed, a GRUB environment block created by the real
/// `grub-editenv`, a grub.cfg with the counting snippet's output (so
/// `backend = auto` selects grubenv), and v1's /etc/stagehand/stagehand.conf
/// (carried into new deployments by the /etc merge).
fn setup(conf: &str) -> (Testbed, String) {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let grub = tb.sysroot().join("boot/grub");
    std::fs::create_dir_all(&grub).unwrap();
    let out = Command::new("grub-editenv")
        .arg(grubenv(&tb))
        .arg("create")
        .output()
        .expect("grub-editenv");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let snippet = Command::new("sh")
        .arg(systemd_dir().join("../data/grub/08_stagehand-boot-counting"))
        .output()
        .unwrap();
    assert!(snippet.status.success(), "{}", text(&snippet.stderr));
    let cfg = text(&snippet.stdout);
    assert!(cfg.contains("boot_counter"), "{cfg}");
    std::fs::write(grub.join("grub.cfg"), format!("load_env\n{cfg}")).unwrap();
    let d = &tb.deployments()[0];
    let etc = tb.deployment_dir(d).join("etc/stagehand");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("stagehand.conf"), conf).unwrap();
    (tb, sums[0].clone())
}

/// A clean shutdown with something staged, as systemd runs it: the record
/// unit's ExecStop, then ostree's finalize-staged and stagehand's
/// `finalize-stamp` (which arms the counter).
fn shutdown(m: Machine<'_>) -> String {
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.record, "ExecStop");
    let r = m.run_unit(&u.finalize, "ExecStop");
    assert!(!r.failed, "{}", r.transcript());
    assert!(
        r.ran.iter().all(|(_, o)| o.status.success()),
        "{}",
        r.transcript()
    );
    let t = stdout(&r);
    drop(m);
    t
}

/// One "reboot": the GRUB model updates the block and picks the entry;
/// the test bed boots that deployment.
fn reboot(tb: &Testbed) -> (GrubChoice, Machine<'_>) {
    let choice = simulate_boot_file(&grubenv(tb)).unwrap();
    let deps = tb.deployments();
    let d = match choice {
        GrubChoice::Default => &deps[0],
        GrubChoice::Fallback => &deps[1],
    };
    (choice, tb.boot(d))
}

/// The boot as systemd runs it: assessment early; then the health check;
/// boot-complete.target is reached only if it passes, and only then
/// mark-good runs; the cleanup unit (ordered after both) last, if its
/// conditions hold. Returns the assessment's JSON verdict and whether the
/// boot was marked good.
fn boot_sequence(m: &Machine<'_>, check: &str) -> (Value, bool) {
    let u = machine_units(m, check);
    run_ok(m, &u.assess, "ExecStart");
    let v = json_in(m, &["assess", "--json"]);
    let checked = m.run_unit(&u.check, "ExecStart");
    let good = !checked.failed;
    if good {
        run_ok(m, &u.mark_good, "ExecStart");
    }
    if m.unit_conditions_met(&u.autocleanup) {
        run_ok(m, &u.autocleanup, "ExecStart");
    }
    (v, good)
}

fn json_in(m: &Machine<'_>, args: &[&str]) -> Value {
    let out = ok_in(m, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{out}"))
}

fn dep<'a>(j: &'a Value, checksum: &str) -> &'a Value {
    j["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["checksum"] == checksum)
        .unwrap_or_else(|| panic!("no deployment {checksum} in {j:#}"))
}

fn checksums(d: &[Deployment]) -> Vec<String> {
    d.iter().map(|d| d.checksum[..8].to_string()).collect()
}

/// The reboot command the deadline runs in these tests: it leaves a trace.
const REBOOT_TRACE: &str = "/run/stagehand/rebooted";

/// Run the health deadline unit with a reboot command that leaves
/// [`REBOOT_TRACE`].
fn run_deadline(m: &mut Machine<'_>, u: &Units) -> ExecRun {
    m.setenv("STAGEHAND_REBOOT_COMMAND", &format!("touch {REBOOT_TRACE}"));
    run_ok(m, &u.deadline, "ExecStart")
}

/// Whether the deadline ran its reboot command in this boot.
fn rebooted(m: &Machine<'_>) -> bool {
    m.run(&["test", "-e", REBOOT_TRACE]).status.success()
}

const CONF: &str = "[bootloader]\nbackend = auto\ntries = 2\n[health]\ndeadline = 10s\n";

#[test]
fn bad_update_falls_back_after_its_tries_is_denylisted_and_a_good_one_is_blessed() {
    let (tb, v1) = setup(CONF);
    let v2 = tb.commit(&Commit::new("2.0"));
    let v3 = tb.commit(&Commit::new("3.0"));

    // v1 boots; v2 is staged (no counter yet: arming waits for finalize).
    let (choice, m) = reboot(&tb);
    assert_eq!(choice, GrubChoice::Default);
    let (v, good) = boot_sequence(&m, "/bin/true");
    assert!(good);
    assert_eq!(v["backend"], "grubenv", "{v:#}");
    ok_in(&m, &["stage", &v2]);
    assert_eq!(var(&tb, "boot_counter"), None, "never armed at staging");
    let out = shutdown(m);
    assert!(
        out.contains("armed the grubenv boot counter: 2 tries"),
        "{out}"
    );
    assert_eq!(var(&tb, "boot_counter").as_deref(), Some("2"));
    assert_eq!(var(&tb, "boot_success").as_deref(), Some("0"));

    // v2's health check fails at every boot: boot-complete.target is never
    // reached, nothing blesses the counter. It gets exactly two boots.
    for n in 1..=2 {
        let (choice, m) = reboot(&tb);
        assert_eq!(choice, GrubChoice::Default, "boot {n}");
        assert_eq!(m.booted().checksum, v2);
        let (v, good) = boot_sequence(&m, "/bin/false");
        assert!(!good);
        assert_eq!(v["outcome"], "on-trial", "{v:#}");
        assert_eq!(v["counter_evidence"]["evidence"], "on-trial", "{v:#}");
        assert_eq!(v["counter_evidence"]["left"], 2 - n, "{v:#}");
        assert_eq!(v["attempts"], n);
        m.power_off();
    }

    // Tries used up: GRUB boots the fallback entry, v1; assessment sees the
    // fallback, fails and denylists v2, makes v1 the default again and stops
    // the exhausted counter.
    let (choice, m) = reboot(&tb);
    assert_eq!(choice, GrubChoice::Fallback);
    assert_eq!(m.booted().checksum, v1);
    let u = machine_units(&m, "/bin/true");
    let r = run_ok(&m, &u.assess, "ExecStart");
    assert!(
        stdout(&r).contains("the bootloader fell back"),
        "{}",
        r.transcript()
    );
    let j = status_json(&m);
    assert_eq!(dep(&j, &v2)["health"], "failed", "{j:#}");
    assert!(
        dep(&j, &v2)["health_reason"]
            .as_str()
            .unwrap()
            .contains("fell back"),
        "{j:#}"
    );
    assert_eq!(dep(&j, &v2)["attempts"], 2);
    assert_eq!(j["denylist"][0]["checksum"], v2.as_str());
    assert_eq!(j["last_rollback"]["to"]["checksum"], v1.as_str(), "{j:#}");
    assert_eq!(checksums(&m.status())[0], v1[..8], "v1 is the default");
    assert_eq!(var(&tb, "boot_counter"), None, "exhausted counter stopped");
    // Assessment is idempotent within the boot.
    let v = json_in(&m, &["assess", "--json"]);
    assert_eq!(v["counted"], false);
    assert!(v["failed"].as_array().unwrap().is_empty(), "{v:#}");
    // Nothing retries v2 by itself: staging it is refused.
    assert_fails(&sh_in(&m, &["stage", &v2]), ErrorCode::Denylisted, &v2);
    boot_sequence(&m, "/bin/true");
    drop(m);

    // No loop: the next boots are v1, whose counter is not running.
    for _ in 0..2 {
        let (choice, m) = reboot(&tb);
        assert_eq!(choice, GrubChoice::Default);
        assert_eq!(m.booted().checksum, v1);
        let (v, good) = boot_sequence(&m, "/bin/true");
        assert!(good);
        assert_eq!(v["outcome"], "good", "{v:#}");
    }

    // A good v3: armed at finalize, boots, passes its check, marked good.
    let (_, m) = reboot(&tb);
    ok_in(&m, &["stage", &v3]);
    let out = shutdown(m);
    assert!(out.contains("armed the grubenv boot counter"), "{out}");
    let (choice, m) = reboot(&tb);
    assert_eq!(choice, GrubChoice::Default);
    assert_eq!(m.booted().checksum, v3);
    // During the trial, v1 (the known-good rollback) is pinned by stagehand.
    let st = m.status();
    assert!(st.iter().any(|d| d.checksum == v1 && d.pinned), "{st:?}");
    let (v, good) = boot_sequence(&m, "/bin/true");
    assert_eq!(v["outcome"], "on-trial");
    assert!(good);
    let j = status_json(&m);
    assert_eq!(dep(&j, &v3)["health"], "good", "{j:#}");
    // mark-good leaves the pin; the cleanup unit after it released it.
    assert_eq!(dep(&j, &v1)["pinned_by_stagehand"], false, "{j:#}");
    assert_eq!(j["retention_pending"], false, "{j:#}");
    assert!(m.status().iter().all(|d| !d.pinned), "pin released");
    // Counters cleared, as the real grub-editenv reads them.
    assert_eq!(var(&tb, "boot_success").as_deref(), Some("1"));
    assert_eq!(var(&tb, "boot_counter"), None);
    // mark-good is idempotent and costs no second bless.
    let g = json_in(&m, &["mark-good", "--json"]);
    assert_eq!(g["blessed"], false, "{g:#}");
    drop(m);
    let (choice, m) = reboot(&tb);
    assert_eq!(
        (choice, m.booted().checksum.as_str()),
        (GrubChoice::Default, v3.as_str())
    );
}

#[test]
fn picking_an_older_entry_by_hand_is_not_a_failure() {
    let (tb, v1) = setup("[bootloader]\ntries = 3\n");
    let v2 = tb.commit(&Commit::new("2.0"));
    let (_, m) = reboot(&tb);
    ok_in(&m, &["stage", &v2]);
    shutdown(m);
    assert_eq!(var(&tb, "boot_counter").as_deref(), Some("3"));

    // GRUB counts (the snippet runs before the menu), but a person picks v1.
    let choice = simulate_boot_file(&grubenv(&tb)).unwrap();
    assert_eq!(choice, GrubChoice::Default);
    let m = tb.boot(&tb.deployments()[1]);
    assert_eq!(m.booted().checksum, v1);
    let (v, good) = boot_sequence(&m, "/bin/true");
    assert!(good);
    assert_eq!(v["outcome"], "manual-choice", "{v:#}");
    assert_eq!(v["counter_evidence"]["evidence"], "manual-choice");
    assert!(v["failed"].as_array().unwrap().is_empty());
    let j = status_json(&m);
    assert_eq!(dep(&j, &v2)["on_trial"], true, "{j:#}");
    assert!(j["denylist"].as_array().unwrap().is_empty());
    assert_eq!(checksums(&m.status())[0], v2[..8], "v2 stays the default");
    // v1's good boot does not bless the counter of v2's trial.
    assert_eq!(var(&tb, "boot_counter").as_deref(), Some("2"));
    assert_eq!(var(&tb, "boot_success").as_deref(), Some("0"));
    drop(m);

    // The next boot is v2's, still on trial, and it passes.
    let (choice, m) = reboot(&tb);
    assert_eq!(choice, GrubChoice::Default);
    assert_eq!(m.booted().checksum, v2);
    let (v, good) = boot_sequence(&m, "/bin/true");
    assert_eq!(v["outcome"], "on-trial");
    assert!(good);
    assert_eq!(var(&tb, "boot_counter"), None);
    assert_eq!(var(&tb, "boot_success").as_deref(), Some("1"));

    // Choosing v1 by hand after v2 is good is not a failure either.
    drop(m);
    simulate_boot_file(&grubenv(&tb)).unwrap();
    let m = tb.boot(&tb.deployments()[1]);
    let (v, _) = boot_sequence(&m, "/bin/true");
    assert_eq!(v["outcome"], "good", "{v:#}");
    assert!(status_json(&m)["denylist"].as_array().unwrap().is_empty());
}

#[test]
fn a_boot_that_misses_the_deadline_is_marked_bad_and_rolled_back_without_a_reboot() {
    let (tb, v1) = setup(CONF);
    let v2 = tb.commit(&Commit::new("2.0"));
    let (_, m) = reboot(&tb);
    let u = machine_units(&m, "/bin/true");
    // Not on trial: the deadline ends at once.
    let r = run_ok(&m, &u.deadline, "ExecStart");
    assert!(
        stdout(&r).contains("not on trial: no deadline"),
        "{}",
        r.transcript()
    );
    ok_in(&m, &["stage", &v2]);
    shutdown(m);

    let (_, mut m) = reboot(&tb);
    assert_eq!(m.booted().checksum, v2);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.assess, "ExecStart");
    // boot-complete.target is never reached; the deadline (10s after boot,
    // long past in the test bed) fires. auto-reboot is off: a reboot command
    // that would leave a trace must not run.
    let r = run_deadline(&mut m, &u);
    let out = stdout(&r);
    assert!(
        out.contains("boot-complete.target was not reached within 10s"),
        "{out}"
    );
    assert!(out.contains("auto-reboot is off"), "{out}");
    assert!(!rebooted(&m));
    let j = status_json(&m);
    assert_eq!(dep(&j, &v2)["health"], "failed", "{j:#}");
    assert_eq!(j["denylist"][0]["checksum"], v2.as_str());
    assert_eq!(checksums(&m.status())[0], v1[..8], "rolled back");
    assert_eq!(var(&tb, "boot_counter"), None, "counter stopped");
    // Running it again changes nothing.
    let r = run_ok(&m, &u.deadline, "ExecStart");
    assert!(stdout(&r).contains("not on trial"), "{}", r.transcript());
    drop(m);
    // The next boot is v1, by default, not by a fallback.
    let (choice, m) = reboot(&tb);
    assert_eq!(
        (choice, m.booted().checksum.as_str()),
        (GrubChoice::Default, v1.as_str())
    );
}

#[test]
fn with_auto_reboot_the_deadline_reboots_but_never_without_a_known_good_deployment() {
    let conf = format!("{CONF}auto-reboot = true\n");
    let (tb, v1) = setup(&conf);
    let v2 = tb.commit(&Commit::new("2.0"));
    let v3 = tb.commit(&Commit::new("3.0"));
    let (_, m) = reboot(&tb);
    ok_in(&m, &["stage", &v2]);
    shutdown(m);
    let (_, mut m) = reboot(&tb);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.assess, "ExecStart");
    let r = run_deadline(&mut m, &u);
    assert!(
        stdout(&r).contains("rebooting into the rollback"),
        "{}",
        r.transcript()
    );
    assert!(rebooted(&m));
    drop(m);
    let (_, m) = reboot(&tb);
    assert_eq!(m.booted().checksum, v1);

    // v3 on trial, and v1 — the only other deployment — marked bad by hand:
    // at the deadline nothing known-good is left. stagehand says so,
    // changes nothing and does not reboot.
    ok_in(&m, &["assess"]);
    ok_in(&m, &["stage", &v3]);
    shutdown(m);
    let (_, mut m) = reboot(&tb);
    assert_eq!(m.booted().checksum, v3);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.assess, "ExecStart");
    for d in m.status() {
        if d.checksum != v3 {
            ok_in(
                &m,
                &["mark-bad", "--deployment", &d.id(), "--reason", "test"],
            );
        }
    }
    let before = snapshot(&m);
    let env_before = std::fs::read(grubenv(&tb)).unwrap();
    m.setenv("STAGEHAND_REBOOT_COMMAND", &format!("touch {REBOOT_TRACE}"));
    let r = m.run_unit(&u.deadline, "ExecStart");
    assert!(r.failed, "{}", r.transcript());
    let (_, o) = r.ran.last().unwrap();
    assert_eq!(o.status.code(), Some(exit_for(ErrorCode::NoKnownGood)));
    assert!(!rebooted(&m));
    assert_eq!(snapshot(&m), before);
    assert_eq!(std::fs::read(grubenv(&tb)).unwrap(), env_before);
    assert_eq!(dep(&status_json(&m), &v3)["on_trial"], true);
}

/// v1 booted with `auto-reboot = true`, v2 staged and finalized at a clean
/// shutdown (the counter armed for it): the next boot is v2's first.
fn v2_finalized_with_auto_reboot() -> (Testbed, String, String) {
    let (tb, v1) = setup(&format!("{CONF}auto-reboot = true\n"));
    let v2 = tb.commit(&Commit::new("2.0"));
    let (_, m) = reboot(&tb);
    ok_in(&m, &["stage", &v2]);
    shutdown(m);
    (tb, v1, v2)
}

/// The health deadline (with auto-reboot) killed after its verdict is
/// durable and before the rollback, then a reboot (a watchdog, a person): the
/// failed deployment boots once more, as the default. Boot assessment makes
/// the rollback, and the deadline must still reboot into it; before the
/// reboot-owed note it found the rollback done and left the failed
/// deployment running until some later reboot. A failed entry picked by hand
/// is not owed a reboot (`picking_a_failed_entry_by_hand_is_not_rebooted`).
#[test]
fn a_deadline_killed_before_its_rollback_still_reboots_after_the_next_boot() {
    let (tb, v1, v2) = v2_finalized_with_auto_reboot();
    let (_, m) = reboot(&tb);
    assert_eq!(m.booted().checksum, v2);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.assess, "ExecStart");

    drop(m);

    // The deadline's calls (traced from this state in a boot of v2): kill it
    // at the first one after the store's rename (the verdict is durable,
    // nothing else has happened).
    let saved = tb.save_state();
    let deadline = |m: &Machine<'_>| {
        m.command(&[
            m.host_path(EXE).as_str(),
            "health-deadline",
            "--now",
            "--reboot-command",
            "touch /run/rebooted",
        ])
    };
    let v2_dep = tb.deployment_of(&v2).unwrap();
    let m = tb.boot(&v2_dep);
    let traced = crashpoints::trace(deadline(&m));
    assert!(traced.status.success(), "{}", traced.output());
    let store_rename = traced
        .points
        .iter()
        .position(|p| {
            p.syscall.starts_with("rename") && p.detail.ends_with("/ostree/stagehand/health")
        })
        .unwrap_or_else(|| panic!("no store rename:\n{}", traced.listing()));
    drop(m);
    tb.restore_state(&saved);
    let m = tb.boot(&v2_dep);
    let killed = crashpoints::kill_at(deadline(&m), store_rename + 2);
    assert!(killed.killed_at.is_some(), "{}", killed.output());
    let j = status_json(&m);
    assert_eq!(dep(&j, &v2)["health"], "failed", "{j:#}");
    assert_eq!(
        m.status()[0].checksum,
        v2,
        "killed before the rollback: {}",
        killed.crash_point().unwrap()
    );
    assert!(!m.run(&["test", "-e", "/run/rebooted"]).status.success());
    drop(m);
    let killed_state = tb.save_state();

    // A person who picks the failed default at the boot menu (the
    // bootloader says so: a manual choice) is not rebooted away: the
    // rollback is made, no reboot is owed.
    let mut m = tb.boot(&v2_dep);
    ok_in(&m, &["assess", "--evidence", "manual"]);
    assert_eq!(
        checksums(&m.status())[0],
        v1[..8],
        "rolled back all the same"
    );
    assert!(!m
        .run(&["test", "-e", stagehand::health::REBOOT_OWED_PATH])
        .status
        .success());
    let u = machine_units(&m, "/bin/true");
    // (The deadline finishes the interrupted verdict's housekeeping, the
    // trial's pins, and does not reboot.)
    let r = run_deadline(&mut m, &u);
    assert!(!stdout(&r).contains("rebooting"), "{}", r.transcript());
    assert!(!rebooted(&m));
    drop(m);
    tb.restore_state(&killed_state);

    // The note is for that verdict: after `health reset` a person marking
    // the running v2 bad by hand is not rebooted by the deadline.
    let mut m = tb.boot(&v2_dep);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.assess, "ExecStart");
    m.sh(&format!("test -e {}", stagehand::health::REBOOT_OWED_PATH));
    ok_in(&m, &["health", "reset"]);
    ok_in(&m, &["mark-bad", "--reason", "a person's verdict"]);
    let r = run_deadline(&mut m, &u);
    assert!(!stdout(&r).contains("rebooting"), "{}", r.transcript());
    assert!(!rebooted(&m));
    drop(m);
    tb.restore_state(&killed_state);

    // The note cannot be written (a directory is in its way): assess still
    // makes the rollback and succeeds; only the owed reboot is lost, which
    // is what the note adds (it never holds back the rollback).
    let m = tb.boot(&v2_dep);
    m.sh(&format!(
        "mkdir -p {}/x",
        stagehand::health::REBOOT_OWED_PATH
    ));
    let u = machine_units(&m, "/bin/true");
    let r = run_ok(&m, &u.assess, "ExecStart");
    assert!(
        r.transcript()
            .contains("noting that a reboot into the rollback is owed"),
        "{}",
        r.transcript()
    );
    assert_eq!(
        checksums(&m.status())[0],
        v1[..8],
        "rolled back all the same"
    );
    drop(m);
    tb.restore_state(&killed_state);

    // The reboot: the failed v2 is still the default and boots.
    let (choice, mut m) = reboot(&tb);
    assert_eq!(
        (choice, m.booted().checksum.as_str()),
        (GrubChoice::Default, v2.as_str())
    );
    let u = machine_units(&m, "/bin/true");
    let r = run_ok(&m, &u.assess, "ExecStart");
    assert_eq!(
        checksums(&m.status())[0],
        v1[..8],
        "assess rolled back: {}",
        r.transcript()
    );
    let r = run_deadline(&mut m, &u);
    assert!(
        stdout(&r).contains("rebooting into the rollback"),
        "{}",
        r.transcript()
    );
    assert!(rebooted(&m));
    drop(m);
    let (choice, m) = reboot(&tb);
    assert_eq!(
        (choice, m.booted().checksum.as_str()),
        (GrubChoice::Default, v1.as_str())
    );
    // A boot of the known-good default owes nothing.
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.assess, "ExecStart");
    let r = run_ok(&m, &u.deadline, "ExecStart");
    assert!(
        stdout(&r).contains("not on trial: no deadline"),
        "{}",
        r.transcript()
    );
}

/// A person boots the failed deployment on purpose, from the boot menu
/// (it is not the default): nothing reboots it away, with auto-reboot on.
#[test]
fn picking_a_failed_entry_by_hand_is_not_rebooted() {
    let (tb, v1, v2) = v2_finalized_with_auto_reboot();
    let (_, m) = reboot(&tb);
    ok_in(&m, &["mark-bad", "--reason", "test"]);
    drop(m);
    let deps = tb.deployments();
    assert_eq!(deps[0].checksum, v1);
    let mut m = tb.boot(&deps[1]);
    assert_eq!(m.booted().checksum, v2);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.assess, "ExecStart");
    assert!(!m
        .run(&["test", "-e", stagehand::health::REBOOT_OWED_PATH])
        .status
        .success());
    let r = run_deadline(&mut m, &u);
    assert!(
        stdout(&r).contains("not on trial: no deadline"),
        "{}",
        r.transcript()
    );
    assert!(!rebooted(&m));
}

#[test]
fn finalization_that_did_not_happen_arms_nothing() {
    let (tb, _) = setup(CONF);
    let v2 = tb.commit(&Commit::new("2.0"));
    let (_, m) = reboot(&tb);
    ok_in(&m, &["stage", &v2, "--lock-finalization"]);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.record, "ExecStop");
    let r = m.run_unit(&u.finalize, "ExecStop");
    assert!(stdout(&r).contains("still staged"), "{}", r.transcript());
    assert_eq!(var(&tb, "boot_counter"), None);
    drop(m);
    // backend = none: finalized, but there is no counter to arm.
    let (tb, _) = setup("[bootloader]\nbackend = none\n");
    let v2 = tb.commit(&Commit::new("2.0"));
    let (_, m) = reboot(&tb);
    ok_in(&m, &["stage", &v2]);
    let out = shutdown(m);
    assert!(
        out.contains("boot counter not armed: no boot counter"),
        "{out}"
    );
    assert_eq!(var(&tb, "boot_counter"), None);
}

#[test]
fn a_garbage_counter_does_not_stop_assessment() {
    let (tb, _) = setup(CONF);
    let (_, m) = reboot(&tb);
    let st = Command::new("grub-editenv")
        .arg(grubenv(&tb))
        .args(["set", "boot_counter=abc", "boot_success=0"])
        .status()
        .unwrap();
    assert!(st.success());
    let v = json_in(&m, &["assess", "--json"]);
    assert!(
        v["counter_error"]
            .as_str()
            .unwrap()
            .contains("boot_counter"),
        "{v:#}"
    );
    assert_eq!(v["counted"], true);
    assert_eq!(v["outcome"], "good");
}

// ---- the unit files ---------------------------------------------------------

fn install_units(dir: &Path, bindir: &str, check: &str) {
    let s = systemd_dir();
    for f in [
        "stagehand-assess.service.in",
        "stagehand-mark-good.service.in",
        "stagehand-health-deadline.service.in",
        HEALTH_CHECK,
    ] {
        let text = std::fs::read_to_string(s.join(f))
            .unwrap()
            .replace("@bindir@", bindir)
            .replace(CHECK_PROGRAM, check);
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        std::fs::write(dir.join(name.trim_end_matches(".in")), text).unwrap();
    }
}

fn analyze_verify(dir: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .args([
            "verify",
            "stagehand-assess.service",
            "stagehand-mark-good.service",
            "stagehand-health-deadline.service",
            "example-health-check.service",
        ])
        .output()
        .expect("systemd-analyze (apt-get install systemd)")
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let bindir = Path::new(EXE)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let d = tempfile::tempdir().unwrap();
    install_units(d.path(), &bindir, "/bin/false");
    let out = analyze_verify(d.path());
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    // Control: the executables are really checked.
    let wrong = tempfile::tempdir().unwrap();
    install_units(wrong.path(), "/nonexistent/bin", "/bin/false");
    let out = analyze_verify(wrong.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/bin/stagehand"));
}

#[test]
fn units_follow_the_boot_complete_conventions() {
    let u = units("/usr/bin", "/bin/false");
    let words = |f: &UnitFile, s: &str, k: &str| f.words(s, k);
    let has = |f: &UnitFile, s: &str, k: &str, w: &str| words(f, s, k).iter().any(|x| x == w);

    // Assessment: early, before anything that could fail the boot.
    let a = &u.assess;
    assert_eq!(
        a.value("Unit", "DefaultDependencies").as_deref(),
        Some("no")
    );
    assert!(has(a, "Unit", "Before", "sysinit.target"));
    assert!(has(a, "Unit", "Before", "boot-complete.target"));
    assert_eq!(words(a, "Unit", "RequiresMountsFor"), ["/sysroot", "/boot"]);
    assert!(has(a, "Install", "WantedBy", "sysinit.target"));
    assert_eq!(a.exec("ExecStart")[0].argv.last().unwrap(), "assess");

    // Mark-good: like systemd-bless-boot.service.
    let g = &u.mark_good;
    assert!(has(g, "Unit", "Requires", "boot-complete.target"));
    assert!(has(g, "Unit", "After", "boot-complete.target"));
    assert!(has(g, "Install", "WantedBy", "multi-user.target"));
    assert_eq!(g.exec("ExecStart")[0].argv.last().unwrap(), "mark-good");

    // Deadline: never delays the boot.
    let dl = &u.deadline;
    assert_eq!(dl.value("Service", "Type").as_deref(), Some("exec"));
    assert!(!has(dl, "Unit", "Before", "multi-user.target"));
    assert!(has(dl, "Unit", "After", "stagehand-assess.service"));
    assert_eq!(
        dl.exec("ExecStart")[0].argv.last().unwrap(),
        "health-deadline"
    );

    // A health check: before boot-complete.target and required by it.
    let c = &u.check;
    assert!(has(c, "Unit", "Before", "boot-complete.target"));
    assert!(has(c, "Install", "RequiredBy", "boot-complete.target"));
    assert_eq!(c.exec("ExecStart")[0].argv, ["/bin/false"]);

    // Arming rides on the finalize-stamp step: ostree's command first, ours
    // after it and never failing it.
    let stop = u.finalize.exec("ExecStop");
    assert_eq!(
        stop[0].argv,
        ["/usr/bin/ostree", "admin", "finalize-staged"]
    );
    assert!(stop[1].ignore_failure);
    assert_eq!(stop[1].argv.last().unwrap(), "finalize-stamp");
}

fn entry_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn bls_counters_of_deployments_not_on_trial_stop_and_the_booted_one_is_blessed() {
    // Two deployments stagehand has no trial for (deployed with the ostree
    // CLI), whose entries are counted as libostree 2025.3 and systemd-boot
    // would leave them (libostree 2022.7 reads such names).
    let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let entries = tb.sysroot().join("boot/loader/entries");
    let names = entry_names(&entries);
    assert_eq!(names.len(), 2, "{names:?}");
    let count_all = || {
        for n in &names {
            std::fs::rename(
                entries.join(n),
                entries.join(n.replace(".conf", "+1-2.conf")),
            )
            .unwrap();
        }
    };
    count_all();
    let d = tb.deployments();
    assert_eq!(d.len(), 2, "ostree reads counted names");
    let etc = tb.deployment_dir(&d[0]).join("etc/stagehand");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("stagehand.conf"), "[bootloader]\nbackend = bls\n").unwrap();

    let m = tb.boot(&d[0]);
    assert_eq!(m.booted().checksum, sums[1]);
    let v = json_in(&m, &["assess", "--json"]);
    assert_eq!(v["backend"], "bls");
    // The booted default is counting: on trial as far as the bootloader
    // goes. Its counter is left for mark-good to bless; the other one, of a
    // deployment not on trial, is stopped.
    assert_eq!(v["counter_evidence"]["evidence"], "on-trial", "{v:#}");
    assert_eq!(v["disarmed"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["disarmed"][0]["checksum"], sums[0].as_str(), "{v:#}");
    let counted: Vec<String> = entry_names(&entries)
        .into_iter()
        .filter(|n| n.contains('+'))
        .collect();
    assert_eq!(counted.len(), 1, "{counted:?}");

    // Both counted again: mark-good blesses the booted entry and stops the other.
    for n in entry_names(&entries) {
        if !n.contains('+') {
            std::fs::rename(
                entries.join(&n),
                entries.join(n.replace(".conf", "+1-2.conf")),
            )
            .unwrap();
        }
    }
    let g = json_in(&m, &["mark-good", "--json"]);
    assert_eq!(g["blessed"], true, "{g:#}");
    let disarmed: Vec<&str> = g["disarmed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["checksum"].as_str().unwrap())
        .collect();
    assert_eq!(disarmed, [sums[0].as_str()], "{g:#}");
    assert_eq!(entry_names(&entries), names, "both entries uncounted again");
    assert_eq!(m.status().len(), 2);
}

#[test]
fn marking_bad_a_finalized_update_before_its_first_boot_stops_its_counter() {
    // Finalized at a shutdown that did not reboot (aborted, or the agent ran
    // finalize-staged itself): the global counter counts for 2.0, and 2.0 is
    // marked bad in the same boot. The rollback makes the booted 1.0 the
    // default again, and the counter must not count 1.0's boots down: GRUB
    // would fall back into the failed 2.0.
    let (tb, v1) = setup(CONF);
    let v2 = tb.commit(&Commit::new("2.0"));
    let (_, m) = reboot(&tb);
    ok_in(&m, &["stage", &v2]);
    let u = machine_units(&m, "/bin/true");
    run_ok(&m, &u.record, "ExecStop");
    let r = m.run_unit(&u.finalize, "ExecStop");
    assert!(!r.failed, "{}", r.transcript());
    assert!(
        var(&tb, "boot_counter").is_some(),
        "{:?}",
        editenv_list(&tb)
    );
    assert_eq!(tb.deployments()[0].checksum, v2);
    let j = json_in(
        &m,
        &["mark-bad", "--deployment", &v2, "--reason", "bad", "--json"],
    );
    assert_eq!(j["rolled_back_to"]["checksum"], v1.as_str(), "{j}");
    assert_eq!(tb.deployments()[0].checksum, v1);
    assert_eq!(
        var(&tb, "boot_counter"),
        None,
        "the counter armed for 2.0 still counts: {:?}",
        editenv_list(&tb)
    );
    drop(m);
    // However many boots follow, GRUB boots 1.0.
    for _ in 0..3 {
        let (choice, m) = reboot(&tb);
        assert_eq!(choice, GrubChoice::Default);
        assert_eq!(
            m.status()
                .iter()
                .find(|d| d.has("booted"))
                .unwrap()
                .checksum,
            v1
        );
    }
}
