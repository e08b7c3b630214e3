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
    assert!(!record.failed, "record step failed:\n{}", record.transcript());
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

#[test]
fn full_cycle_stamps_the_finalized_deployment_and_the_next_boot_prunes_exactly_the_dropped_objects(
) {
    let (tb, [v0, v1, v2]) = three_versions(120);
    let v0_id = find(&tb.deployments(), &v0).id();
    let m = tb.boot(&find(&tb.deployments(), &v1));
    ok_in(&m, &["stage", &v2]);
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
    assert!(s.contains(&format!("\ndeployment {}\n", staged.id())), "{s}");
    assert!(s.contains(&format!("\ndropped {v0_id}\n")), "{s}");
    assert_eq!(host_json(&tb, &["status", "--json"])["cleanup_pending"], true);

    // libostree's finalization dropped v0 and its checkout, not its objects.
    let deps = tb.deployments();
    assert_eq!(
        deps.iter().map(|d| d.checksum.as_str()).collect::<Vec<_>>(),
        [v2.as_str(), v1.as_str()]
    );
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
        out.contains(&format!("after finalizing {}", staged.id())),
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
