//! The test bed's unit runner and repository object sets, against the real
//! ostree CLI and ostree's own shutdown unit.

use stagehand_testbed::unit::UnitFile;
use stagehand_testbed::{object_bytes, run_ok, Commit, Testbed};

const OSTREE_FINALIZE_UNIT: &str = "/lib/systemd/system/ostree-finalize-staged.service";

#[test]
fn ostree_finalize_unit_run_as_systemd_would_finalizes() {
    assert!(
        std::path::Path::new(OSTREE_FINALIZE_UNIT).exists(),
        "apt-get install ostree-boot"
    );
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    m.ok(&["ostree", "admin", "deploy", "--stage", &v2]);
    let unit = UnitFile::load(OSTREE_FINALIZE_UNIT, &[], &[]);
    assert!(m.unit_conditions_met(&unit), "/run/ostree-booted exists");
    let run = m.run_unit(&unit, "ExecStop");
    assert!(!run.failed, "{}", run.transcript());
    assert_eq!(run.ran.len(), 1);
    assert_eq!(tb.deployments()[0].checksum, v2);
}

#[test]
fn unit_commands_stop_at_the_first_failure_unless_prefixed_with_dash() {
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let m = tb.boot_default();
    let strict = UnitFile::parse(
        "t.service",
        "[Unit]\nConditionPathExists=/run/ostree-booted\n[Service]\nExecStop=/usr/bin/false\nExecStop=/usr/bin/touch /tmp/ran\n",
    );
    let run = m.run_unit(&strict, "ExecStop");
    assert!(run.failed);
    assert_eq!(run.ran.len(), 1);
    assert!(!m.run(&["test", "-e", "/tmp/ran"]).status.success());
    let lenient = UnitFile::parse(
        "t.service",
        "[Service]\nExecStop=-/usr/bin/false\nExecStop=/usr/bin/touch /tmp/ran\n",
    );
    let run = m.run_unit(&lenient, "ExecStop");
    assert!(!run.failed);
    assert!(m.run(&["test", "-e", "/tmp/ran"]).status.success());
    assert!(m.unit_conditions_met(&strict));
    let skipped = UnitFile::parse("t.service", "[Unit]\nConditionPathExists=/nonexistent\n");
    assert!(!m.unit_conditions_met(&skipped));
    let negated = UnitFile::parse("t.service", "[Unit]\nConditionPathExists=!/nonexistent\n");
    assert!(m.unit_conditions_met(&negated));
}

#[test]
fn live_object_set_is_what_a_full_ostree_cleanup_leaves() {
    let tb = Testbed::new();
    let v1 = tb.commit(&Commit::new("1.0"));
    tb.deploy(&v1);
    let repo = format!("--repo={}", tb.repo().display());
    // A commit nothing references any more: its ref is deleted.
    tb.commit(&Commit::new("orphan").files(30).branch("testos/orphan"));
    run_ok(
        tb.ostree_cmd()
            .arg(&repo)
            .args(["refs", "--delete", "testos/orphan"]),
    );
    // Another one that only a stale deployment ref of the other boot
    // version names, as a deployment dropped without a cleanup leaves it.
    let stale = tb.commit(&Commit::new("dropped").files(30).branch("testos/dropped"));
    run_ok(
        tb.ostree_cmd()
            .arg(&repo)
            .args(["refs", "--delete", "testos/dropped"]),
    );
    let loader = std::fs::read_link(tb.sysroot().join("boot/loader")).unwrap();
    let other = if loader.to_string_lossy().ends_with(".0") {
        1
    } else {
        0
    };
    let stale_ref = format!("ostree/{other}/1/3");
    run_ok(
        tb.ostree_cmd()
            .arg(&repo)
            .args(["refs", &format!("--create={stale_ref}"), &stale]),
    );
    let live = tb.live_object_set();
    let before = tb.repo_object_set();
    assert!(
        before.len() > live.len() + 60,
        "the orphan's and the dropped commit's objects are extra"
    );
    assert!(!live.contains_key(&format!("{}/{}.commit", &stale[..2], &stale[2..])));
    assert!(live.keys().all(|k| before.contains_key(k)));
    tb.admin(&["cleanup"]);
    let refs = run_ok(tb.ostree_cmd().arg(&repo).arg("refs"));
    assert!(
        !refs.contains(&stale_ref),
        "the cleanup regenerated the deployment refs: {refs}"
    );
    let after = tb.repo_object_set();
    assert_eq!(after, live);
    assert_eq!(object_bytes(&after), tb.repo_objects().1);
}
