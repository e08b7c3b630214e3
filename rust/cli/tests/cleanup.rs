//! The finalize-time cleanup stamp on booted test beds, with the real
//! `ostree admin finalize-staged` as the finalizer and the real unit files
//! (`systemd/`, plus ostree's own `ostree-finalize-staged.service`) deciding
//! which commands run, in which order, and whether a failure stops the rest.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use stagehand::ErrorCode;
use stagehand_testbed::unit::{ExecRun, UnitFile};
use stagehand_testbed::{Commit, Deployment, Machine, ObjectSet, Testbed};

/// ostree's unit, from Debian's `ostree-boot` (scripts/install-deps.sh).
const OSTREE_FINALIZE_UNIT: &str = "/lib/systemd/system/ostree-finalize-staged.service";
const DROPIN: &str = "ostree-finalize-staged.service.d/stagehand-cleanup-stamp.conf.in";

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd")
}

struct Units {
    record: UnitFile,
    finalize: UnitFile,
    autocleanup: UnitFile,
}

/// The units as meson would install them, with `@bindir@` the directory of
/// the stagehand binary under test (as `bindir` names it).
fn units(bindir: &str) -> Units {
    assert!(
        Path::new(OSTREE_FINALIZE_UNIT).exists(),
        "{OSTREE_FINALIZE_UNIT} is missing: apt-get install ostree-boot (scripts/install-deps.sh)"
    );
    let s = systemd_dir();
    let subst = [("bindir", bindir)];
    Units {
        record: UnitFile::load(s.join("stagehand-finalize-record.service.in"), &[], &subst),
        finalize: UnitFile::load(OSTREE_FINALIZE_UNIT, &[&s.join(DROPIN)], &subst),
        autocleanup: UnitFile::load(s.join("stagehand-autocleanup.service.in"), &[], &subst),
    }
}

fn machine_units(m: &Machine<'_>) -> Units {
    let exe = m.host_path(EXE);
    units(Path::new(&exe).parent().unwrap().to_str().unwrap())
}

/// A clean shutdown as systemd performs it once ostree-finalize-staged.service
/// is active (its path unit started it when something was staged this boot):
/// stagehand-finalize-record.service stops first (it is ordered after it),
/// then ostree-finalize-staged.service runs its ExecStop= list: ostree's
/// `finalize-staged`, then the drop-in's `finalize-stamp`.
fn shutdown(m: &Machine<'_>) -> (ExecRun, ExecRun) {
    let u = machine_units(m);
    assert!(m.unit_conditions_met(&u.record));
    let record = m.run_unit(&u.record, "ExecStop");
    assert!(
        !record.failed,
        "record step failed:\n{}",
        record.transcript()
    );
    let finalize = m.run_unit(&u.finalize, "ExecStop");
    (record, finalize)
}

/// Boot `d` and start stagehand-autocleanup.service the way systemd does:
/// `None` when its condition (the stamp) skips it.
fn autocleanup_unit(m: &Machine<'_>) -> Option<ExecRun> {
    let u = machine_units(m);
    m.unit_conditions_met(&u.autocleanup)
        .then(|| m.run_unit(&u.autocleanup, "ExecStart"))
}

fn stamp(tb: &Testbed) -> PathBuf {
    tb.sysroot().join(".cleanup")
}

fn stamp_text(tb: &Testbed) -> String {
    std::fs::read_to_string(stamp(tb)).unwrap()
}

fn host_json(tb: &Testbed, args: &[&str]) -> serde_json::Value {
    let out = host(tb, args);
    assert!(
        out.status.success(),
        "stagehand {args:?}: {}",
        text(&out.stderr)
    );
    serde_json::from_str(&text(&out.stdout)).unwrap()
}

fn commit_object(checksum: &str) -> String {
    format!("{}/{}.commit", &checksum[..2], &checksum[2..])
}

/// Objects in `a` that `b` lacks.
fn minus(a: &ObjectSet, b: &ObjectSet) -> ObjectSet {
    a.iter()
        .filter(|(k, _)| !b.contains_key(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn ostree_fsck(tb: &Testbed) {
    stagehand_testbed::run_ok(
        tb.ostree_cmd()
            .arg(format!("--repo={}", tb.repo().display()))
            .args(["fsck", "--quiet"]),
    );
}

/// v0 (rollback) and v1 (default) deployed, v2 committed: staging v2 and
/// finalizing drops v0, whose unique files are what a cleanup must reclaim.
fn three_versions(files: usize) -> (Testbed, [String; 3]) {
    let tb = Testbed::new();
    let v0 = tb.commit(&Commit::new("0.9").files(files));
    tb.deploy(&v0);
    let v1 = tb.commit(&Commit::new("1.0").files(files));
    tb.deploy(&v1);
    let v2 = tb.commit(&Commit::new("2.0").files(files));
    (tb, [v0, v1, v2])
}

fn find(deps: &[Deployment], checksum: &str) -> Deployment {
    deps.iter()
        .find(|d| d.checksum == checksum)
        .unwrap_or_else(|| panic!("no deployment of {checksum} in {deps:?}"))
        .clone()
}

/// Whether stagehand keeps two known-good deployments during a trial (the
/// default since health landed) or lets finalization drop the rollback as
/// plain libostree does (`stage --no-keep-known-good`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retention {
    Off,
    On,
}

/// `stagehand stage REV` with `retention`.
fn stage(m: &Machine<'_>, rev: &str, retention: Retention) {
    let mut args = vec!["stage", rev];
    if retention == Retention::Off {
        args.push("--no-keep-known-good");
    }
    ok_in(m, &args);
}

/// Checksums in `ostree admin status` order, `*` marking pinned ones.
fn order(deps: &[Deployment]) -> Vec<String> {
    deps.iter()
        .map(|d| format!("{}{}", &d.checksum[..8], if d.pinned { "*" } else { "" }))
        .collect()
}

fn short(c: &str) -> String {
    c[..8].to_string()
}

fn has_checkout(tb: &Testbed, id: &str) -> bool {
    let name = id.split_once(':').unwrap().1;
    tb.deployment_dirs().iter().any(|p| p.ends_with(name))
}

#[test]
fn full_cycle_without_retention_stamps_the_finalized_deployment_and_the_next_boot_prunes_exactly_the_dropped_objects(
) {
    let (tb, [v0, v1, v2]) = three_versions(120);
    let v0_id = find(&tb.deployments(), &v0).id();
    let m = tb.boot(&find(&tb.deployments(), &v1));
    stage(&m, &v2, Retention::Off);
    let staged = m.staged().unwrap();
    assert_eq!(status_json(&m)["cleanup_pending"], false);

    let (record, finalize) = shutdown(&m);
    assert!(
        record.transcript().contains(&staged.id()),
        "{}",
        record.transcript()
    );
    assert!(!finalize.failed, "{}", finalize.transcript());
    assert_eq!(finalize.ran.len(), 2, "{}", finalize.transcript());
    drop(m);

    // The stamp names the finalized deployment and the one finalization dropped.
    let s = stamp_text(&tb);
    assert!(s.starts_with("stagehand-cleanup-stamp 1\n"), "{s}");
    assert!(
        s.contains(&format!("\ndeployment {}\n", staged.id())),
        "{s}"
    );
    assert!(s.contains(&format!("\ndropped {v0_id}\n")), "{s}");
    assert!(!s.contains("\nremoved "), "{s}");
    assert_eq!(
        host_json(&tb, &["status", "--json"])["cleanup_pending"],
        true
    );

    // libostree's finalization dropped v0 and its checkout, not its objects.
    let deps = tb.deployments();
    assert_eq!(order(&deps), [short(&v2), short(&v1)]);
    assert!(!has_checkout(&tb, &v0_id));
    let live = tb.live_object_set();
    let before = tb.repo_object_set();
    let leftover = minus(&before, &live);
    assert!(
        leftover.contains_key(&commit_object(&v0)),
        "v0's objects are still there before the cleanup"
    );
    assert!(minus(&live, &before).is_empty());

    // Reboot into v2: the unit runs (its condition holds) and prunes.
    let m = tb.boot(&deps[0]);
    let run = autocleanup_unit(&m).expect("the stamp makes the unit start");
    assert!(!run.failed, "{}", run.transcript());
    let out = run.transcript();
    assert!(
        out.contains(&format!("after finalizing {}:", staged.id())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} objects", leftover.len())),
        "reports exactly the leftover objects ({}): {out}",
        leftover.len()
    );
    assert!(out.contains(&format!("removed {v0_id}")), "{out}");
    assert!(!stamp(&tb).exists(), "the stamp is removed after success");
    assert_eq!(status_json(&m)["cleanup_pending"], false);

    // Nothing leaked, nothing live lost: the repository is exactly what a
    // fresh repository holding the live commits needs, and ostree agrees.
    assert_eq!(tb.repo_object_set(), live);
    ostree_fsck(&tb);
    let st = m.status();
    assert!(st[0].has("booted") && st[0].checksum == v2, "{st:?}");
    assert_eq!(st[1].checksum, v1);

    // Next boot: no stamp, the unit does not even start.
    drop(m);
    let m = tb.boot_default();
    assert!(autocleanup_unit(&m).is_none());
}

#[test]
fn full_cycle_with_retention_stamps_the_finalization_then_the_cleanup_after_mark_good_removes_the_rollback_and_prunes_exactly_its_objects(
) {
    let (tb, [v0, v1, v2]) = three_versions(120);
    let v0_id = find(&tb.deployments(), &v0).id();
    let m = tb.boot(&find(&tb.deployments(), &v1));
    stage(&m, &v2, Retention::On);
    let staged = m.staged().unwrap();
    let (_, finalize) = shutdown(&m);
    assert!(!finalize.failed, "{}", finalize.transcript());
    drop(m);

    // Finalized, but nothing dropped: stagehand's pins keep both known-good
    // deployments while v2 is on trial. The stamp names the finalization only.
    let deps = tb.deployments();
    assert_eq!(
        order(&deps),
        [short(&v2), short(&v1) + "*", short(&v0) + "*"]
    );
    let s = stamp_text(&tb);
    assert!(s.starts_with("stagehand-cleanup-stamp 1\n"), "{s}");
    assert!(
        s.contains(&format!("\ndeployment {}\n", staged.id())),
        "{s}"
    );
    assert!(
        !s.contains("\ndropped ") && !s.contains("\nremoved "),
        "{s}"
    );
    let live = tb.live_object_set();
    assert!(
        !minus(&tb.repo_object_set(), &live).contains_key(&commit_object(&v0)),
        "v0 is still deployed: its objects are live"
    );

    // Reboot into v2; it proves good: mark-good writes the verdict only.
    // The autocleanup unit, ordered after it, then ends the trial's
    // retention — the pins go and v0, which only stagehand's pin kept, is
    // named in the stamp and dropped — and the same run deletes v0's
    // checkout and prunes exactly what only v0 used.
    let m = tb.boot(&deps[0]);
    let g: serde_json::Value = serde_json::from_str(&ok_in(&m, &["mark-good", "--json"])).unwrap();
    assert_eq!(g["retention_pending"], true, "{g}");
    // It removes nothing itself, so it reports no lists: the cleanup does.
    assert!(
        g.get("removed").is_none() && g.get("released_pins").is_none(),
        "{g}"
    );
    assert_eq!(
        order(&m.status()),
        [short(&v2), short(&v1) + "*", short(&v0) + "*"]
    );
    assert!(has_checkout(&tb, &v0_id));
    assert_eq!(stamp_text(&tb), s, "mark-good does not touch the stamp");
    assert!(tb
        .sysroot()
        .join(stagehand::health::RETENTION_TRIGGER)
        .exists());
    let before = tb.repo_object_set();
    assert!(before.contains_key(&commit_object(&v0)));

    let run = autocleanup_unit(&m).expect("the stamp makes the unit start");
    assert!(!run.failed, "{}", run.transcript());
    let out = run.transcript();
    assert!(out.contains("released stagehand's pins on "), "{out}");
    assert!(
        out.contains(&format!(
            "after finalizing {} and removing {v0_id}:",
            staged.id()
        )),
        "{out}"
    );
    assert!(out.contains(&format!("removed {v0_id}")), "{out}");
    assert_eq!(order(&m.status()), [short(&v2), short(&v1)]);
    assert!(!has_checkout(&tb, &v0_id), "the checkout went with it");
    assert!(!stamp(&tb).exists());
    assert!(!tb
        .sysroot()
        .join(stagehand::health::RETENTION_TRIGGER)
        .exists());
    let live = tb.live_object_set();
    let after = tb.repo_object_set();
    assert_eq!(after, live, "nothing leaked, nothing live lost");
    let freed = minus(&before, &after);
    assert!(freed.contains_key(&commit_object(&v0)), "v0's objects went");
    assert!(freed.len() > 120, "{} objects", freed.len());
    assert!(minus(&after, &before).is_empty());
    assert!(
        out.contains(&format!("{} objects", freed.len())),
        "reports exactly the freed objects ({}): {out}",
        freed.len()
    );
    ostree_fsck(&tb);
    drop(m);

    // Next boot: nothing pending, the unit does not even start.
    let m = tb.boot_default();
    assert!(autocleanup_unit(&m).is_none());
}

#[test]
fn with_retention_a_cleanup_before_mark_good_keeps_the_rollback_and_the_trigger_makes_the_next_cleanup_remove_it(
) {
    // The order a real boot has: the cleanup unit starts after basic.target,
    // mark-good only after boot-complete.target.
    let (tb, [v0, v1, v2]) = three_versions(40);
    let v0_id = find(&tb.deployments(), &v0).id();
    {
        let m = tb.boot(&find(&tb.deployments(), &v1));
        stage(&m, &v2, Retention::On);
        assert!(!shutdown(&m).1.failed);
    }
    let m = tb.boot_default();
    assert_eq!(m.booted().checksum, v2);
    let live = tb.live_object_set();
    let before = tb.repo_object_set();
    let run = autocleanup_unit(&m).expect("the finalization's stamp");
    assert!(!run.failed, "{}", run.transcript());
    assert!(!stamp(&tb).exists());
    let after = tb.repo_object_set();
    assert_eq!(after, live, "it pruned what was unreferenced ...");
    assert_eq!(minus(&before, &after), minus(&before, &live));
    assert!(
        after.contains_key(&commit_object(&v0)),
        "... and nothing of v0, still deployed and pinned"
    );
    assert!(has_checkout(&tb, &v0_id));

    // mark-good (late, or started by hand after the cleanup ran) ends the
    // trial: the verdict only; the trigger schedules the housekeeping.
    ok_in(&m, &["mark-good"]);
    assert!(!stamp(&tb).exists());
    let trigger = tb.sysroot().join(stagehand::health::RETENTION_TRIGGER);
    assert!(trigger.exists());
    let st = ok_in(&m, &["status"]);
    assert!(st.starts_with("Retention pending"), "status says so: {st}");
    drop(m);

    // Next boot: the trigger alone starts the unit. Its housekeeping removes
    // v0: a new stamp with no finalization in it, so format version 2 (an
    // older stagehand reads it as "pending"), which the same run acts on. A
    // stamp writer killed before its rename left a temporary file
    // (write_atomic names it `.<name>.tmp<pid>`): it goes.
    let dead_writer = tb.sysroot().join("..cleanup.tmp4242");
    let not_ours = tb.sysroot().join("..cleanup.tmp-keep");
    std::fs::write(&dead_writer, b"stagehand-cleanup-stamp 2\nremov").unwrap();
    std::fs::write(&not_ours, b"x").unwrap();
    let m = tb.boot_default();
    assert!(
        m.unit_conditions_met(&machine_units(&m).autocleanup),
        "the unit starts on this boot"
    );
    let before = tb.repo_object_set();
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["autocleanup", "--json"])).unwrap();
    assert!(
        !dead_writer.exists(),
        "a dead writer's temporary file is removed"
    );
    assert!(not_ours.exists(), "only ..cleanup.tmp<pid> files are");
    std::fs::remove_file(&not_ours).unwrap();
    assert_eq!(v["released_pins"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["stamp"]["kind"], "removed", "{v}");
    assert_eq!(v["stamp"]["removed"][0]["checksum"], v0.as_str(), "{v}");
    assert_eq!(v["deployments_removed"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["deployments_removed"][0]["checksum"], v0.as_str(), "{v}");
    let live = tb.live_object_set();
    let after = tb.repo_object_set();
    assert_eq!(after, live, "nothing leaked, nothing live lost");
    let freed = minus(&before, &after);
    assert!(freed.contains_key(&commit_object(&v0)));
    assert_eq!(v["objects_freed"], freed.len() as u64, "{v}");
    assert_eq!(
        v["bytes_freed"],
        stagehand_testbed::object_bytes(&freed),
        "{v}"
    );
    assert_eq!(v["stamp_removed"], true, "{v}");
    assert!(!stamp(&tb).exists());
    assert!(!trigger.exists());
    assert!(!has_checkout(&tb, &v0_id));
    ostree_fsck(&tb);
    drop(m);
    let m = tb.boot_default();
    assert!(autocleanup_unit(&m).is_none(), "nothing pending any more");
}

#[test]
fn shutdown_without_finalization_leaves_no_stamp_and_autocleanup_does_nothing() {
    // Power cut after staging: no shutdown unit runs, nothing is finalized.
    let (tb, [_, v1, v2]) = three_versions(16);
    let m = tb.boot(&find(&tb.deployments(), &v1));
    ok_in(&m, &["stage", &v2]);
    m.power_off();
    assert!(!stamp(&tb).exists());
    let before = tb.repo_object_set();
    let m = tb.boot_default();
    assert!(autocleanup_unit(&m).is_none(), "condition skips the unit");
    // Run by hand anyway: nothing to do, nothing touched.
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["autocleanup", "--json"])).unwrap();
    assert_eq!(v["performed"], false, "{v}");
    assert_eq!(tb.repo_object_set(), before);
    assert_eq!(ok_in(&m, &["autocleanup"]).trim(), "no cleanup pending");

    // Staged, then unstaged, then a clean shutdown: ostree-finalize-staged
    // is still active (its path unit started it), but nothing is finalized.
    ok_in(&m, &["stage", &v2]);
    ok_in(&m, &["unstage"]);
    let (record, finalize) = shutdown(&m);
    assert!(record.transcript().contains("nothing is staged"));
    assert!(!finalize.failed, "{}", finalize.transcript());
    assert!(
        finalize
            .transcript()
            .contains("no staged deployment was recorded"),
        "{}",
        finalize.transcript()
    );
    assert!(!stamp(&tb).exists());
    assert_eq!(tb.deployments()[0].checksum, v1);

    // The shutdown steps belong to the booted system: on another sysroot
    // they refuse instead of touching the running system's record in /run.
    for args in [&["finalize-stamp", "--record"][..], &["finalize-stamp"]] {
        assert_fails(
            &host(&tb, args),
            ErrorCode::NotBooted,
            "not the booted sysroot",
        );
    }
}

#[test]
fn locked_finalization_leaves_no_stamp_and_the_deployment_staged() {
    let (tb, [_, v1, v2]) = three_versions(16);
    let m = tb.boot(&find(&tb.deployments(), &v1));
    ok_in(&m, &["stage", &v2, "--lock-finalization"]);
    let (_, finalize) = shutdown(&m);
    assert!(!finalize.failed, "{}", finalize.transcript());
    assert!(
        finalize
            .transcript()
            .contains("is still staged (finalization locked); no cleanup stamp"),
        "{}",
        finalize.transcript()
    );
    assert!(!stamp(&tb).exists());
    assert_eq!(m.staged().map(|d| d.checksum), Some(v2));
    assert_eq!(tb.deployments()[0].checksum, v1, "bootloader untouched");
}

#[test]
fn finalization_failing_on_a_vanished_merge_deployment_leaves_no_stamp() {
    // The staged deployment's merge deployment is the one of its stateroot;
    // for another stateroot that is not the booted one, so it can be
    // undeployed under the staged deployment's feet, as an admin might.
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    tb.admin(&["os-init", "other"]);
    let o1 = tb.commit(&Commit::new("o1").branch("other/stable"));
    tb.admin(&["deploy", "--os=other", &o1]);
    let o2 = tb.commit(&Commit::new("o2").branch("other/stable"));
    let m = tb.boot(&find(&tb.deployments(), &v1));
    // Staged by another tool: the record step does not care who staged.
    m.ok(&["ostree", "admin", "deploy", "--stage", "--os=other", &o2]);
    let idx = m.status().iter().position(|d| d.checksum == o1).unwrap();
    m.ok(&["ostree", "admin", "undeploy", &idx.to_string()]);
    assert_eq!(m.staged().map(|d| d.checksum), Some(o2.clone()));

    let (_, finalize) = shutdown(&m);
    assert!(finalize.failed, "{}", finalize.transcript());
    assert_eq!(
        finalize.ran.len(),
        1,
        "systemd runs no further ExecStop after a failure"
    );
    let failure = tb.sysroot().join("boot/ostree/finalize-failure.stamp");
    assert!(
        std::fs::read_to_string(&failure)
            .unwrap()
            .contains("merge deployment"),
        "libostree recorded the failure"
    );
    assert!(!stamp(&tb).exists());
    // Even when run regardless, finalize-stamp sees the failure and refuses.
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["finalize-stamp", "--json"])).unwrap();
    assert_eq!(v["outcome"], "failed", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("merge deployment"),
        "{v}"
    );
    assert!(!stamp(&tb).exists());
}

#[test]
fn finalization_failing_on_an_unwritable_boot_leaves_no_stamp() {
    let (tb, [_, v1, v2]) = three_versions(16);
    let m = tb.boot(&find(&tb.deployments(), &v1));
    ok_in(&m, &["stage", &v2]);
    // /boot itself cannot take new entries (its subdirectories still can, so
    // libostree's failure stamp in /boot/ostree can be written).
    let boot = tb.sysroot().join("boot");
    stagehand_testbed::run_ok(std::process::Command::new("chattr").arg("+i").arg(&boot));
    let (_, finalize) = shutdown(&m);
    stagehand_testbed::run_ok(std::process::Command::new("chattr").arg("-i").arg(&boot));
    assert!(finalize.failed, "{}", finalize.transcript());
    assert!(boot.join("ostree/finalize-failure.stamp").exists());
    assert!(!stamp(&tb).exists());
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["finalize-stamp", "--json"])).unwrap();
    assert_eq!(v["outcome"], "failed", "{v}");
    assert!(v["message"].as_str().unwrap().contains("loader.1"), "{v}");
    // libostree failed after it had unlinked the staged state: only the
    // failure stamp (and the missing bootloader entry) tell.
    assert!(!m
        .run(&["test", "-e", "/run/ostree/staged-deployment"])
        .status
        .success());
    assert!(!stamp(&tb).exists());
    assert_eq!(tb.deployments()[0].checksum, v1, "still the old default");
}

#[test]
fn a_stale_failure_stamp_from_an_earlier_boot_does_not_block_the_stamp() {
    let (tb, [_, v1, v2]) = three_versions(16);
    let failure = tb.sysroot().join("boot/ostree/finalize-failure.stamp");
    std::fs::create_dir_all(failure.parent().unwrap()).unwrap();
    std::fs::write(&failure, "an old failure").unwrap();
    let m = tb.boot(&find(&tb.deployments(), &v1));
    ok_in(&m, &["stage", &v2]);
    let (_, finalize) = shutdown(&m);
    assert!(!finalize.failed, "{}", finalize.transcript());
    assert!(stamp_text(&tb).contains(&format!("deployment testos:{v2}.")));
}

#[test]
fn finalization_interrupted_after_unlinking_the_staged_state_leaves_no_stamp() {
    // libostree unlinks the staged state before writing anything; a kill
    // right then leaves neither the staged file nor a new bootloader entry.
    let (tb, [_, v1, v2]) = three_versions(16);
    let m = tb.boot(&find(&tb.deployments(), &v1));
    ok_in(&m, &["stage", &v2]);
    let u = machine_units(&m);
    assert!(!m.run_unit(&u.record, "ExecStop").failed);
    m.ok(&["rm", "/run/ostree/staged-deployment"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["finalize-stamp", "--json"])).unwrap();
    assert_eq!(v["outcome"], "not-deployed", "{v}");
    assert!(!stamp(&tb).exists());
    // The record was consumed: running again finds nothing recorded.
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["finalize-stamp", "--json"])).unwrap();
    assert_eq!(v["outcome"], "not-recorded", "{v}");
}

/// v2 staged from v1 and finalized by the real units (v0, v1 deployed
/// before), then v0 gone: without retention finalization drops it; with
/// retention the reboot into v2, mark-good and the retention housekeeping
/// remove it. Either way the stamp
/// names v0 (`dropped` or `removed`) and its objects wait for the cleanup.
/// Returns with no machine running.
fn finalized(files: usize, retention: Retention) -> (Testbed, [String; 3]) {
    let (tb, v) = three_versions(files);
    let v0_id = find(&tb.deployments(), &v[0]).id();
    {
        let m = tb.boot(&find(&tb.deployments(), &v[1]));
        stage(&m, &v[2], retention);
        let (_, finalize) = shutdown(&m);
        assert!(!finalize.failed, "{}", finalize.transcript());
    }
    if retention == Retention::On {
        let m = tb.boot_default();
        assert_eq!(m.booted().checksum, v[2]);
        ok_in(&m, &["mark-good"]);
        // The housekeeping alone (autocleanup runs it before its prune).
        ok_in(&m, &["health", "retention"]);
    }
    assert!(tb.deployment_of(&v[0]).is_none());
    let key = match retention {
        Retention::Off => "dropped",
        Retention::On => "removed",
    };
    let s = stamp_text(&tb);
    assert!(s.contains(&format!("\n{key} {v0_id}\n")), "{s}");
    (tb, v)
}

#[test]
fn cleanup_killed_mid_prune_keeps_the_stamp_and_the_next_run_converges() {
    for retention in [Retention::Off, Retention::On] {
        let (tb, _) = finalized(600, retention);
        let stamp_before = std::fs::read(stamp(&tb)).unwrap();
        let live = tb.live_object_set();
        let before = tb.repo_object_set();
        let leftover = minus(&before, &live).len();
        assert!(leftover > 600, "{retention:?}: {leftover} objects to prune");

        // libostree deletes every pruned object with unlinkat(2), after the
        // checkouts it deletes first (with retention, v0's: the housekeeping
        // dropped it from the list and left the checkout to the cleanup).
        // Count the calls of an uninterrupted run on a copy, then kill the
        // cleanup (SIGKILL, no chance to clean up) halfway into the prune.
        let saved = tb.save_state();
        let total: usize = {
            let m = tb.boot_default();
            let exe = m.host_path(EXE);
            m.ok(&[
                "strace",
                "-f",
                "-o",
                "/run/unlinks",
                "-e",
                "trace=unlinkat",
                exe.as_str(),
                "autocleanup",
            ]);
            m.ok(&["grep", "-c", "unlinkat(", "/run/unlinks"])
                .trim()
                .parse()
                .unwrap()
        };
        tb.restore_state(&saved);
        assert!(total > leftover, "{total} unlinkat calls");
        let when = format!(
            "inject=unlinkat:signal=SIGKILL:when={}",
            total - leftover / 2
        );
        let m = tb.boot_default();
        let exe = m.host_path(EXE);
        let out = m.run(&[
            "strace",
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "trace=unlinkat",
            "-e",
            when.as_str(),
            exe.as_str(),
            "autocleanup",
        ]);
        assert!(!out.status.success(), "{}", text(&out.stderr));
        let mid = tb.repo_object_set();
        assert!(
            mid.len() < before.len() && mid.len() > live.len(),
            "{retention:?}: killed mid-prune: {} objects before, {} after the kill, {} live",
            before.len(),
            mid.len(),
            live.len()
        );
        assert!(minus(&live, &mid).is_empty(), "no live object was deleted");
        assert_eq!(std::fs::read(stamp(&tb)).unwrap(), stamp_before);
        drop(m);

        // The next boot finishes the job.
        let m = tb.boot_default();
        let run = autocleanup_unit(&m).expect("the stamp is still there");
        assert!(!run.failed, "{}", run.transcript());
        assert!(!stamp(&tb).exists());
        assert_eq!(tb.repo_object_set(), live, "{retention:?}");
        ostree_fsck(&tb);
    }
}

#[test]
fn an_empty_stamp_written_by_older_tools_is_honoured() {
    let (tb, [_, v1, v2]) = three_versions(40);
    let m = tb.boot(&find(&tb.deployments(), &v1));
    m.ok(&["ostree", "admin", "deploy", "--stage", &v2]);
    // What eos-updater's drop-in does: finalize, then touch the stamp.
    assert!(m.finalize().status.success());
    m.ok(&["touch", "/sysroot/.cleanup"]);
    drop(m);
    assert_eq!(std::fs::metadata(stamp(&tb)).unwrap().len(), 0);
    assert_eq!(
        host_json(&tb, &["status", "--json"])["cleanup_pending"],
        true
    );
    let live = tb.live_object_set();
    let leftover = minus(&tb.repo_object_set(), &live);
    assert!(!leftover.is_empty());

    let m = tb.boot_default();
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["autocleanup", "--json"])).unwrap();
    assert_eq!(v["performed"], true, "{v}");
    assert_eq!(v["stamp"]["kind"], "legacy", "{v}");
    assert_eq!(v["objects_freed"], leftover.len() as u64, "{v}");
    assert_eq!(
        v["bytes_freed"],
        stagehand_testbed::object_bytes(&leftover),
        "{v}"
    );
    assert_eq!(v["objects_remaining"], live.len() as u64, "{v}");
    assert_eq!(v["stamp_removed"], true, "{v}");
    // Finalization already removed the dropped checkout; an empty stamp does
    // not say which deployment it was.
    assert_eq!(v["deployments_removed"], serde_json::json!([]), "{v}");
    assert!(!stamp(&tb).exists());
    assert_eq!(tb.repo_object_set(), live);
}

#[test]
fn a_garbage_torn_or_unreadable_stamp_is_a_typed_error_and_is_kept() {
    let (tb, [_, v1, v2]) = three_versions(16);
    // A garbage stamp at finalization is replaced: the new one says
    // "cleanup pending" all the same, and names the deployment.
    std::fs::write(stamp(&tb), b"\x00garbage\xff").unwrap();
    {
        let m = tb.boot(&find(&tb.deployments(), &v1));
        ok_in(&m, &["stage", &v2]);
        let (_, finalize) = shutdown(&m);
        assert!(
            finalize
                .transcript()
                .contains("replacing the pending cleanup stamp"),
            "{}",
            finalize.transcript()
        );
    }
    let good = std::fs::read(stamp(&tb)).unwrap();
    assert!(String::from_utf8_lossy(&good).contains(&format!("deployment testos:{v2}.")));
    let live = tb.live_object_set();
    let before = tb.repo_object_set();
    let m = tb.boot_default();

    let check = |content: Option<&[u8]>, needle: &str| {
        let p = stamp(&tb);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_dir(&p);
        match content {
            Some(c) => std::fs::write(&p, c).unwrap(),
            None => std::fs::create_dir(&p).unwrap(),
        }
        let out = sh_in(&m, &["autocleanup"]);
        assert_fails(&out, ErrorCode::Corrupt, needle);
        assert!(text(&out.stderr).contains("/sysroot/.cleanup"));
        // The unit fails visibly, so systemd shows it failed.
        assert!(autocleanup_unit(&m).unwrap().failed);
        match content {
            Some(c) => assert_eq!(std::fs::read(&p).unwrap(), c, "kept as it was"),
            None => assert!(p.is_dir(), "kept as it was"),
        }
        assert_eq!(tb.repo_object_set(), before, "nothing pruned");
        assert_eq!(status_json(&m)["cleanup_pending"], true);
    };
    check(Some(&good[..good.len() / 2]), "truncated");
    let mut edited = good.clone();
    let i = edited.iter().position(|b| *b == b'\n').unwrap() + 20;
    edited[i] ^= 1;
    check(Some(&edited), "checksum mismatch");
    check(Some(b"\x00garbage\xff"), "not UTF-8");
    check(
        Some(b"cleanup please\n"),
        "not a stagehand-cleanup-stamp file",
    );
    check(None, "cannot be read");

    // An administrator's override: clean up and remove it.
    std::fs::remove_dir(stamp(&tb)).unwrap();
    std::fs::write(stamp(&tb), b"garbage").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["autocleanup", "--force", "--json"])).unwrap();
    assert_eq!(v["performed"], true, "{v}");
    assert_eq!(v["stamp"], serde_json::Value::Null, "{v}");
    assert_eq!(v["stamp_removed"], true, "{v}");
    assert!(!stamp(&tb).exists());
    assert_eq!(tb.repo_object_set(), live);
}

/// A corrupt stamp while retention is pending (mark-good left the trigger
/// after the trial): the stamp stays the administrator's to inspect
/// (`Corrupt`, kept, nothing pruned, the unit fails visibly at every boot),
/// but the pins of the ended trial do not stay held for it: releasing them
/// needs no stamp. Removing v0, which only the pin kept, would replace the
/// stamp (it must name v0 first), so v0 stays listed, still pending, and
/// the error says so and what to do; `autocleanup --force` finishes it.
#[test]
fn a_corrupt_stamp_is_refused_but_the_pins_of_an_ended_trial_are_released() {
    let (tb, [v0, v1, v2]) = three_versions(16);
    let v0_id = find(&tb.deployments(), &v0).id();
    {
        let m = tb.boot(&find(&tb.deployments(), &v1));
        stage(&m, &v2, Retention::On);
        assert!(!shutdown(&m).1.failed);
    }
    let m = tb.boot_default();
    assert_eq!(m.booted().checksum, v2);
    ok_in(&m, &["mark-good"]);
    assert_eq!(
        order(&m.status()),
        [short(&v2), short(&v1) + "*", short(&v0) + "*"]
    );
    let trigger = tb.sysroot().join(stagehand::health::RETENTION_TRIGGER);
    assert!(trigger.exists());
    // The finalization's stamp, damaged.
    let garbage = b"\x00garbage\xff".to_vec();
    std::fs::write(stamp(&tb), &garbage).unwrap();
    let before = tb.repo_object_set();

    // The unit as systemd starts it; again on the next boot: the same.
    for boot in 0..2 {
        let m = tb.boot_default();
        let run = autocleanup_unit(&m).expect("the stamp and the trigger start it");
        let t = run.transcript();
        assert!(run.failed, "boot {boot}: {t}");
        for needle in [
            "/sysroot/.cleanup",
            "not UTF-8",
            "stays listed",
            "autocleanup --force",
        ] {
            assert!(t.contains(needle), "boot {boot}: no {needle:?} in {t}");
        }
        assert_eq!(
            std::fs::read(stamp(&tb)).unwrap(),
            garbage,
            "kept as it was"
        );
        assert_eq!(tb.repo_object_set(), before, "nothing pruned");
        assert_eq!(
            order(&m.status()),
            [short(&v2), short(&v1), short(&v0)],
            "boot {boot}: the trial's pins released; v0 stays listed"
        );
        assert!(has_checkout(&tb, &v0_id));
        let j = status_json(&m);
        assert_eq!(j["cleanup_pending"], true, "{j:#}");
        assert_eq!(
            j["retention_pending"], true,
            "v0's removal is still to do: {j:#}"
        );
        assert!(trigger.exists());
    }
    // The typed error, from the command and from the housekeeping alone.
    let m = tb.boot_default();
    for args in [&["autocleanup"][..], &["health", "retention"]] {
        // (The journal's warning comes first, so not `assert_fails`.)
        let out = sh_in(&m, args);
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(exit_for(ErrorCode::Corrupt)),
            "{err}"
        );
        assert!(
            err.contains("error: /sysroot/.cleanup is corrupt") && err.contains("stays listed"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(stamp(&tb)).unwrap(), garbage);

    // The administrator's override finishes both: v0 named in a new stamp,
    // dropped, its checkout deleted and its objects pruned, the stamp gone.
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["autocleanup", "--force", "--json"])).unwrap();
    assert_eq!(v["performed"], true, "{v}");
    assert_eq!(
        v["released_pins"],
        serde_json::json!([]),
        "released already: {v}"
    );
    assert_eq!(v["deployments_removed"][0]["checksum"], v0.as_str(), "{v}");
    assert_eq!(v["stamp_removed"], true, "{v}");
    assert!(!stamp(&tb).exists());
    assert!(!trigger.exists());
    assert_eq!(order(&m.status()), [short(&v2), short(&v1)]);
    assert!(!has_checkout(&tb, &v0_id));
    assert_eq!(status_json(&m)["retention_pending"], false);
    assert_eq!(tb.repo_object_set(), tb.live_object_set());
    assert!(!tb.repo_object_set().contains_key(&commit_object(&v0)));
    ostree_fsck(&tb);
}

#[test]
fn autocleanup_waits_for_the_sysroot_lock_then_proceeds_and_past_its_timeout_keeps_the_stamp() {
    let (tb, _) = finalized(16, Retention::On);
    let stamp_before = std::fs::read(stamp(&tb)).unwrap();
    let live = tb.live_object_set();
    let before = tb.repo_object_set();
    let m = tb.boot_default();

    // An update agent (this test process) holds the real sysroot lock.
    let sysroot = stagehand::open_sysroot(tb.sysroot(), None).unwrap();
    sysroot.lock().unwrap();
    let out = sh_in(&m, &["--lock-timeout", "1", "autocleanup"]);
    assert_fails(&out, ErrorCode::Locked, "locked by another process");
    assert_eq!(std::fs::read(stamp(&tb)).unwrap(), stamp_before);
    assert_eq!(tb.repo_object_set(), before);

    // The unit's own command line waits (long default), and proceeds as
    // soon as the agent is done.
    let u = machine_units(&m);
    let cmd = &u.autocleanup.exec("ExecStart")[0];
    assert!(
        cmd.argv.windows(2).any(|w| w == ["--lock-timeout", "1800"]),
        "{cmd:?}"
    );
    let mut child = m
        .command(&cmd.argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "it is still waiting");
    assert!(stamp(&tb).exists());
    assert_eq!(tb.repo_object_set(), before);
    sysroot.unlock();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!stamp(&tb).exists());
    assert_eq!(tb.repo_object_set(), live);
}

/// Write the units with `@bindir@` replaced, laid out as a unit directory.
fn install_units(dir: &Path, bindir: &str) {
    let s = systemd_dir();
    for f in [
        "stagehand-finalize-record.service.in",
        "stagehand-autocleanup.service.in",
        DROPIN,
    ] {
        let text = std::fs::read_to_string(s.join(f))
            .unwrap()
            .replace("@bindir@", bindir);
        let dest = dir.join(f.trim_end_matches(".in"));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, text).unwrap();
    }
}

fn analyze_verify(dir: &Path) -> std::process::Output {
    std::process::Command::new("systemd-analyze")
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .args([
            "verify",
            "ostree-finalize-staged.service",
            "stagehand-finalize-record.service",
            "stagehand-autocleanup.service",
        ])
        .output()
        .expect("systemd-analyze (apt-get install systemd)")
}

#[test]
fn units_pass_systemd_analyze_verify() {
    assert!(
        Path::new(OSTREE_FINALIZE_UNIT).exists(),
        "install ostree-boot"
    );
    let bindir = Path::new(EXE)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let d = tempfile::tempdir().unwrap();
    install_units(d.path(), &bindir);
    let out = analyze_verify(d.path());
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify ({}):\n{}",
        out.status,
        text(&out.stderr)
    );

    // Controls, so the check above cannot pass vacuously. The drop-in is
    // really read with ostree's unit (a bad line in it is reported) ...
    let bad = tempfile::tempdir().unwrap();
    install_units(bad.path(), &bindir);
    let dropin = bad.path().join(DROPIN.trim_end_matches(".in"));
    let mut t = std::fs::read_to_string(&dropin).unwrap();
    t.push_str("ExecStop=relative/path\n");
    std::fs::write(&dropin, t).unwrap();
    let out = analyze_verify(bad.path());
    assert!(
        text(&out.stderr).contains("stagehand-cleanup-stamp.conf"),
        "{}",
        text(&out.stderr)
    );
    // ... and executables are really checked: a wrong @bindir@ fails.
    let wrong = tempfile::tempdir().unwrap();
    install_units(wrong.path(), "/nonexistent/bin");
    let out = analyze_verify(wrong.path());
    assert!(!out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/nonexistent/bin/stagehand"));

    // systemd-analyze checks only the first command of each Exec list and
    // skips "-" ones: the drop-in's command is neither, so check it here.
    let u = units(&bindir);
    let stop = u.finalize.exec("ExecStop");
    let ours = stop.last().unwrap();
    assert!(Path::new(&ours.argv[0]).is_absolute());
    assert_eq!(Path::new(&ours.argv[0]), Path::new(EXE));
}

#[test]
fn units_never_delay_boot_and_record_before_ostree_finalizes() {
    let u = units("/usr/bin");
    let a = &u.autocleanup;
    let has = |unit: &UnitFile, key: &str, word: &str| {
        unit.words(
            if key.starts_with("Wanted") {
                "Install"
            } else {
                "Unit"
            },
            key,
        )
        .iter()
        .any(|w| w == word)
    };
    // Boot: without default dependencies, multi-user.target is not ordered
    // after a unit it wants, so reaching it never waits for the cleanup.
    assert_eq!(
        a.value("Unit", "DefaultDependencies").as_deref(),
        Some("no")
    );
    assert!(has(a, "WantedBy", "multi-user.target"));
    for t in ["sysinit.target", "basic.target"] {
        assert!(has(a, "After", t), "After={t}");
    }
    // The boot's verdict first: a long prune holding the sysroot lock must
    // not make mark-good (or assess) time out.
    for t in ["stagehand-assess.service", "stagehand-mark-good.service"] {
        assert!(has(a, "After", t), "After={t}");
    }
    for t in [
        "basic.target",
        "multi-user.target",
        "graphical.target",
        "default.target",
        "sysinit.target",
    ] {
        assert!(!has(a, "Before", t), "nothing on the boot path waits: {t}");
    }
    assert!(a.values("Unit", "Requires").is_empty() && a.values("Unit", "RequiredBy").is_empty());
    assert!(has(a, "Before", "shutdown.target") && has(a, "Conflicts", "shutdown.target"));
    // Either the stamp or the trigger mark-good leaves for the retention
    // housekeeping starts it (`|`: triggering conditions, any one suffices).
    assert_eq!(
        a.values("Unit", "ConditionPathExists"),
        [
            format!("|/sysroot/{}", stagehand::cleanup::STAMP_FILE_NAME),
            format!("|/sysroot/{}", stagehand::health::RETENTION_TRIGGER),
        ]
    );
    assert_eq!(a.value("Service", "Type").as_deref(), Some("oneshot"));
    assert_eq!(
        a.value("Service", "IOSchedulingClass").as_deref(),
        Some("idle")
    );
    assert_eq!(
        a.value("Service", "ProtectSystem").as_deref(),
        Some("strict")
    );
    assert_eq!(a.words("Service", "ReadWritePaths"), ["/sysroot", "/boot"]);

    // Shutdown: the record unit is pulled in by ostree's unit, ordered after
    // it (so stopped before it) and stopped with it.
    let (r, f) = (&u.record, &u.finalize);
    assert!(has(f, "Wants", "stagehand-finalize-record.service"));
    assert!(has(r, "After", "ostree-finalize-staged.service"));
    assert!(has(r, "PartOf", "ostree-finalize-staged.service"));
    assert_eq!(
        r.value("Unit", "DefaultDependencies").as_deref(),
        Some("no")
    );
    assert!(has(r, "Conflicts", "final.target") && has(r, "Before", "final.target"));
    assert_eq!(
        r.exec("ExecStop")[0].argv,
        ["/usr/bin/stagehand", "finalize-stamp", "--record"]
    );
    assert_eq!(
        r.value("Service", "RuntimeDirectory").as_deref(),
        Some("stagehand")
    );
    assert!(stagehand::cleanup::FINALIZE_RECORD_PATH.starts_with("/run/stagehand/"));
    // ostree's command stays first and untouched; ours follows, never failing it.
    let stop = f.exec("ExecStop");
    assert_eq!(
        stop[0].argv,
        ["/usr/bin/ostree", "admin", "finalize-staged"]
    );
    assert_eq!(stop.len(), 2);
    assert!(stop[1].ignore_failure);
    assert_eq!(stop[1].argv[0], "/usr/bin/stagehand");
    assert_eq!(stop[1].argv.last().unwrap(), "finalize-stamp");
}

#[test]
fn two_finalizations_before_a_cleanup_accumulate_in_one_stamp() {
    for retention in [Retention::Off, Retention::On] {
        let (tb, [v0, v1, _]) = finalized(40, retention);
        let key = match retention {
            Retention::Off => "dropped",
            Retention::On => "removed",
        };
        let v0_id = find(&parse_ids(&stamp_text(&tb), key), &v0).id();
        // The cleanup did not run (say the machine was shut down right
        // away); another update is staged and finalized.
        let v3 = tb.commit(&Commit::new("3.0").files(40));
        let m = tb.boot_default();
        let v1_id = find(&tb.deployments(), &v1).id();
        stage(&m, &v3, retention);
        let (_, finalize) = shutdown(&m);
        assert!(!finalize.failed, "{}", finalize.transcript());
        drop(m);
        let s = stamp_text(&tb);
        assert!(s.starts_with("stagehand-cleanup-stamp 1\n"), "{s}");
        assert!(s.contains(&format!("\ndeployment testos:{v3}.")), "{s}");
        match retention {
            Retention::Off => {
                for d in [&v0_id, &v1_id] {
                    assert!(s.contains(&format!("\ndropped {d}\n")), "{d} in {s}");
                }
            }
            Retention::On => {
                // The second finalization dropped nothing (v1 is pinned);
                // the earlier removal is kept. v3 proves good: v1 goes too.
                assert!(!s.contains("\ndropped "), "{s}");
                assert!(s.contains(&format!("\nremoved {v0_id}\n")), "{s}");
                assert!(tb.deployment_of(&v1).is_some());
                let m = tb.boot_default();
                assert_eq!(m.booted().checksum, v3);
                ok_in(&m, &["mark-good"]);
                ok_in(&m, &["health", "retention"]);
                let s = stamp_text(&tb);
                assert!(s.contains(&format!("\ndeployment testos:{v3}.")), "{s}");
                for d in [&v0_id, &v1_id] {
                    assert!(s.contains(&format!("\nremoved {d}\n")), "{d} in {s}");
                }
                assert!(tb.deployment_of(&v1).is_none());
            }
        }
        assert!(host(&tb, &["status"])
            .stdout
            .starts_with(b"Cleanup pending"));

        let live = tb.live_object_set();
        let leftover = minus(&tb.repo_object_set(), &live);
        for v in [&v0, &v1] {
            assert!(leftover.contains_key(&commit_object(v)), "{retention:?}");
        }
        let m = tb.boot_default();
        let v: serde_json::Value =
            serde_json::from_str(&ok_in(&m, &["autocleanup", "--json"])).unwrap();
        let removed: Vec<String> = v["deployments_removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{}:{}.{}",
                    d["stateroot"].as_str().unwrap(),
                    d["checksum"].as_str().unwrap(),
                    d["serial"]
                )
            })
            .collect();
        // In the stamp's order: what finalizations dropped, newest first,
        // then what stagehand removed, oldest first.
        match retention {
            Retention::Off => assert_eq!(removed, [v1_id, v0_id], "{v}"),
            Retention::On => assert_eq!(removed, [v0_id, v1_id], "{v}"),
        }
        assert_eq!(v["objects_freed"], leftover.len() as u64, "{v}");
        assert_eq!(tb.repo_object_set(), live, "one cleanup reclaims both");
        ostree_fsck(&tb);
    }
}

/// A stamp in stagehand's format, checksummed as stagehand checksums it.
fn sealed_stamp(version: u32, lines: &[String]) -> Vec<u8> {
    let mut body = format!("stagehand-cleanup-stamp {version}\n");
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    let sum = stagehand::glib::compute_checksum_for_data(
        stagehand::glib::ChecksumType::Sha256,
        body.as_bytes(),
    )
    .unwrap();
    format!("{body}sha256 {sum}\n").into_bytes()
}

#[test]
fn a_stamp_naming_a_deployment_that_still_exists_prunes_only_what_is_unreferenced() {
    // What a crash between writing the stamp and dropping the deployment
    // leaves (the kill itself is exercised at every system call of the
    // retention housekeeping in tests/health.rs): the stamp names v0, v0 is
    // still listed.
    let (tb, [v0, v1, v2]) = three_versions(40);
    let v0_id = find(&tb.deployments(), &v0).id();
    {
        let m = tb.boot(&find(&tb.deployments(), &v1));
        stage(&m, &v2, Retention::On);
        m.shutdown(); // no stagehand units: no stamp from the finalization
    }
    assert!(!stamp(&tb).exists());
    std::fs::write(
        stamp(&tb),
        sealed_stamp(
            2,
            &[
                format!("removed {v0_id}"),
                "removed-at 2024-05-01T10:05:00Z".into(),
            ],
        ),
    )
    .unwrap();
    let m = tb.boot_default();
    let live = tb.live_object_set();
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["autocleanup", "--json"])).unwrap();
    assert_eq!(v["performed"], true, "{v}");
    assert_eq!(v["stamp"]["kind"], "removed", "{v}");
    assert_eq!(
        v["deployments_removed"],
        serde_json::json!([]),
        "still deployed, so not reported removed: {v}"
    );
    assert_eq!(v["stamp_removed"], true, "{v}");
    assert!(tb.deployment_of(&v0).is_some() && has_checkout(&tb, &v0_id));
    let after = tb.repo_object_set();
    assert_eq!(after, live, "only what nothing references was pruned");
    assert!(after.contains_key(&commit_object(&v0)));
    ostree_fsck(&tb);

    // The interrupted operation, run again, finishes: the trial ends, the
    // housekeeping drops v0 with a new stamp, and the cleanup frees v0.
    ok_in(&m, &["mark-good"]);
    assert!(tb.deployment_of(&v0).is_some(), "mark-good drops nothing");
    ok_in(&m, &["health", "retention"]);
    assert!(tb.deployment_of(&v0).is_none());
    assert!(stamp_text(&tb).contains(&format!("\nremoved {v0_id}\n")));
    let live = tb.live_object_set();
    let leftover = minus(&tb.repo_object_set(), &live);
    assert!(leftover.contains_key(&commit_object(&v0)));
    let v: serde_json::Value =
        serde_json::from_str(&ok_in(&m, &["autocleanup", "--json"])).unwrap();
    assert_eq!(v["deployments_removed"][0]["checksum"], v0.as_str(), "{v}");
    assert_eq!(v["objects_freed"], leftover.len() as u64, "{v}");
    assert_eq!(tb.repo_object_set(), live);
    ostree_fsck(&tb);
}

#[test]
fn mark_bad_removing_a_pinned_deployment_stamps_it_and_the_next_cleanup_prunes_it() {
    let (tb, [v0, v1, v2]) = three_versions(40);
    let v3 = tb.commit(&Commit::new("3.0").files(40));
    let v0_id = find(&tb.deployments(), &v0).id();
    {
        let m = tb.boot(&find(&tb.deployments(), &v1));
        stage(&m, &v2, Retention::On);
        assert!(!shutdown(&m).1.failed);
    }
    let m = tb.boot_default();
    // The finalization's cleanup already ran (it prunes nothing of v0).
    assert!(!autocleanup_unit(&m).unwrap().failed);
    assert!(!stamp(&tb).exists());
    assert_eq!(
        order(&m.status()),
        [short(&v2), short(&v1) + "*", short(&v0) + "*"]
    );

    // v2 is on trial; a person finds v0, one of the two known-good
    // deployments pinned for it, broken. v0 is no longer known good, so its
    // pin is released and, being neither booted nor the default, it is
    // removed: named in the stamp, and nothing else done now — mark-bad may
    // run early at boot, so its checkout waits for the cleanup too.
    let b: serde_json::Value = serde_json::from_str(&ok_in(
        &m,
        &[
            "mark-bad",
            "--deployment",
            &v0_id,
            "--reason",
            "corrupts /var",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(b["removed"][0]["checksum"], v0.as_str(), "{b}");
    assert!(b["rolled_back_to"].is_null(), "{b}");
    assert_eq!(order(&m.status()), [short(&v2), short(&v1) + "*"]);
    assert!(has_checkout(&tb, &v0_id), "deferred to the cleanup");
    let s = stamp_text(&tb);
    assert!(s.starts_with("stagehand-cleanup-stamp 2\n"), "{s}");
    assert!(s.contains(&format!("\nremoved {v0_id}\n")), "{s}");
    assert_eq!(status_json(&m)["cleanup_pending"], true);
    let live = tb.live_object_set();
    let leftover = minus(&tb.repo_object_set(), &live);
    assert!(leftover.contains_key(&commit_object(&v0)));
    drop(m);

    let m = tb.boot_default();
    let run = autocleanup_unit(&m).expect("the stamp makes the unit start");
    assert!(!run.failed, "{}", run.transcript());
    let out = run.transcript();
    assert!(out.contains(&format!("after removing {v0_id}:")), "{out}");
    assert!(
        out.contains(&format!("{} objects", leftover.len())),
        "{} objects: {out}",
        leftover.len()
    );
    assert!(
        !has_checkout(&tb, &v0_id),
        "the cleanup deleted the checkout"
    );
    assert!(!stamp(&tb).exists());
    assert_eq!(
        tb.repo_object_set(),
        live,
        "nothing leaked, nothing live lost"
    );
    ostree_fsck(&tb);

    // mark-bad of the *staged* deployment unstages it and writes no stamp:
    // its commit is the one the agent just pulled, still the target of its
    // ref, so a prune would free nothing — checked here.
    stage(&m, &v3, Retention::On);
    let staged = m.staged().unwrap();
    let b: serde_json::Value = serde_json::from_str(&ok_in(
        &m,
        &["mark-bad", "--deployment", &staged.id(), "--json"],
    ))
    .unwrap();
    assert_eq!(b["unstaged"], true, "{b}");
    assert!(b["removed"].as_array().unwrap().is_empty(), "{b}");
    assert!(m.staged().is_none());
    assert!(!stamp(&tb).exists());
    assert_eq!(tb.repo_object_set(), tb.live_object_set());
}

/// Deployments named on `key` lines of a stamp, as test-bed deployments.
fn parse_ids(stamp: &str, key: &str) -> Vec<Deployment> {
    stamp
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key} ")))
        .map(|id| {
            let (stateroot, rest) = id.split_once(':').unwrap();
            let (checksum, serial) = rest.rsplit_once('.').unwrap();
            Deployment {
                index: 0,
                stateroot: stateroot.into(),
                checksum: checksum.into(),
                serial: serial.parse().unwrap(),
                flags: Vec::new(),
                version: None,
                pinned: false,
            }
        })
        .collect()
}
