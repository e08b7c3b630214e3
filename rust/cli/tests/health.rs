//! Deployment health on real, booted test sysroots: every transition, the
//! flag table, the store's failure modes, the denylist, retention with pins
//! (checked with the real `ostree admin status`), rollback and boot
//! assessment, and a kill at every mutating system call of mark-good and
//! mark-bad.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;
use stagehand::health::{store, Flags};
use stagehand::ErrorCode;
use stagehand_testbed::{Commit, Machine, Testbed};

fn store_file(tb: &Testbed) -> PathBuf {
    tb.sysroot().join("ostree/stagehand/health")
}

fn quarantined(tb: &Testbed) -> Vec<PathBuf> {
    store::quarantined(&tb.sysroot().join("ostree/stagehand")).unwrap()
}

/// The status entry of the deployment with this checksum.
fn dep<'a>(j: &'a Value, checksum: &str) -> &'a Value {
    j["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["checksum"] == checksum)
        .unwrap_or_else(|| panic!("no deployment {checksum} in {j:#}"))
}

fn json_in(m: &Machine<'_>, args: &[&str]) -> Value {
    let out = ok_in(m, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{out}"))
}

fn id_of(d: &stagehand_testbed::Deployment) -> String {
    d.id()
}

/// Checksums in `ostree admin status` order, with `*` for pinned ones.
fn order(st: &[stagehand_testbed::Deployment]) -> Vec<String> {
    st.iter()
        .map(|d| format!("{}{}", &d.checksum[..8], if d.pinned { "*" } else { "" }))
        .collect()
}

fn short(c: &str) -> String {
    c[..8].to_string()
}

/// `[v2, v1]` deployed with the ostree CLI (stagehand has no record of them:
/// they read as good-fallback), v3 staged with stagehand from v2, finalized
/// at shutdown, and booted once and assessed: v3 is on trial.
fn v3_on_trial() -> (Testbed, Vec<String>) {
    let (tb, mut sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    m.shutdown();
    let m = tb.boot(&tb.deployments()[0]);
    assert_eq!(m.booted().checksum, v3);
    ok_in(&m, &["assess"]);
    m.power_off();
    sums.push(v3);
    (tb, sums)
}

#[test]
fn staging_starts_a_trial_keyed_by_identity_through_finalize_boot_and_mark_good() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v1 = &sums[0];
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    let j = status_json(&m);
    assert_eq!(dep(&j, v1)["health"], "good-fallback", "untracked: {j:#}");
    assert_eq!(dep(&j, v1)["attempts"], 0);
    assert!(j["denylist"].as_array().unwrap().is_empty());
    assert!(j["last_rollback"].is_null());
    assert!(j["health_error"].is_null());

    // staged -> U F -
    let out: Value = serde_json::from_str(&ok_in(&m, &["stage", &v2, "--json"])).unwrap();
    let staged_id = out["deployment"].clone();
    let j = status_json(&m);
    let s = dep(&j, &v2);
    assert_eq!(s["staged"], true);
    assert_eq!(s["health"], "untested");
    assert_eq!(s["on_trial"], true);
    assert_eq!(s["attempts"], 0);
    assert!(s["health_changed"].as_str().unwrap().ends_with('Z'));
    assert!(dep(&j, v1)["health_changed"].is_null(), "no record");
    // The known-good one is pinned by stagehand, and ostree agrees.
    assert_eq!(dep(&j, v1)["pinned_by_stagehand"], true);
    let st = m.status();
    assert!(st[1].checksum == *v1 && st[1].pinned, "{st:?}");
    let st_text = ok_in(&m, &["status"]);
    assert!(
        st_text.contains("Health: untested (on trial, not booted yet)"),
        "{st_text}"
    );

    // Finalized at shutdown: the same identity (checksum and serial).
    m.shutdown();
    let d = tb.deployments();
    assert_eq!(d[0].checksum, v2);
    assert_eq!(d[0].serial as u64, staged_id["serial"].as_u64().unwrap());
    let m = tb.boot(&d[0]);
    let j = status_json(&m);
    assert_eq!(
        dep(&j, &v2)["health"],
        "untested",
        "the record written at staging"
    );

    // booted -> U cleared, attempts + 1, once per boot
    let v = json_in(&m, &["assess", "--json"]);
    assert_eq!(v["outcome"], "on-trial");
    assert_eq!(v["counted"], true);
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["health"], "failed", "N Y N: booted, not confirmed");
    assert_eq!(v["booted"]["checksum"], v2.as_str());
    let v = json_in(&m, &["assess", "--json"]);
    assert_eq!(v["counted"], false);
    assert_eq!(v["attempts"], 1);
    let j = status_json(&m);
    assert_eq!(dep(&j, &v2)["on_trial"], true);
    assert!(dep(&j, &v2)["health_reason"].is_null());

    // mark good -> R on it, F cleared; the trial's pin stays until the
    // housekeeping (autocleanup) releases it, off the boot path.
    let g = json_in(&m, &["mark-good", "--json"]);
    assert_eq!(g["previous"], "failed");
    assert_eq!(g["attempts"], 1);
    assert_eq!(g["retention_pending"], true, "{g:#}");
    // It never releases a pin itself, so it reports none: the autocleanup
    // report below does.
    assert!(
        g.get("released_pins").is_none() && g.get("removed").is_none(),
        "{g:#}"
    );
    let j = status_json(&m);
    assert_eq!(dep(&j, &v2)["health"], "good");
    assert_eq!(dep(&j, &v2)["on_trial"], false);
    assert_eq!(dep(&j, v1)["health"], "good-fallback");
    assert_eq!(dep(&j, v1)["pinned_by_stagehand"], true, "still held");
    assert_eq!(j["retention_pending"], true);
    assert!(m.status().iter().any(|d| d.pinned));
    // Idempotent.
    let g = json_in(&m, &["mark-good", "--json"]);
    assert_eq!(g["retention_pending"], true);
    assert_eq!(status_json(&m)["deployments"], j["deployments"]);
    // The housekeeping releases the pin (nothing to remove: two deployments).
    let c = json_in(&m, &["autocleanup", "--json"]);
    assert_eq!(c["released_pins"][0]["checksum"], v1.as_str(), "{c:#}");
    let j = status_json(&m);
    assert_eq!(dep(&j, v1)["pinned"], false);
    assert_eq!(dep(&j, v1)["pinned_by_stagehand"], false);
    assert_eq!(j["retention_pending"], false);
    assert!(!m.status().iter().any(|d| d.pinned));
    assert!(!tb
        .sysroot()
        .join(stagehand::health::RETENTION_TRIGGER)
        .exists());
    let g = json_in(&m, &["mark-good", "--json"]);
    assert_eq!(g["retention_pending"], false);

    // The next boot is counted again.
    m.power_off();
    let m = tb.boot_default();
    let v = json_in(&m, &["assess", "--json"]);
    assert_eq!(v["outcome"], "good");
    assert_eq!(v["attempts"], 2);
    m.power_off();

    // Not booted: a full deploy starts a trial too.
    let v3 = tb.commit(&Commit::new("3.0"));
    let out = host(&tb, &["stage", &v3]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = host(&tb, &["status", "--json"]);
    let j: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(dep(&j, &v3)["health"], "untested");
    assert_eq!(dep(&j, &v2)["health"], "good");
    assert_eq!(dep(&j, &v2)["pinned_by_stagehand"], true);
}

#[test]
fn mark_good_sets_recent_on_the_booted_one_only() {
    let (tb, sums) = v3_on_trial();
    let m = tb.boot(&tb.deployments()[0]);
    ok_in(&m, &["mark-good"]);
    m.power_off();
    // A fourth version, marked good: Recent moves to it.
    let v4 = tb.commit(&Commit::new("4.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v4]);
    m.shutdown();
    let m = tb.boot_default();
    assert_eq!(m.booted().checksum, v4);
    ok_in(&m, &["mark-good"]);
    let j = status_json(&m);
    assert_eq!(dep(&j, &v4)["health"], "good");
    assert_eq!(dep(&j, &sums[2])["health"], "good-fallback");
    // On disk: exactly one entry with Recent, none with Failed or Untested.
    let s =
        store::Store::parse(&std::fs::read(store_file(&tb)).unwrap(), &store_file(&tb)).unwrap();
    let recent: Vec<_> = s
        .entries()
        .filter(|e| e.state.flags().recent)
        .map(|e| e.deployment.checksum.clone())
        .collect();
    assert_eq!(recent, vec![v4.clone()]);
    assert!(s.entries().all(|e| !e.state.flags().failed));
}

#[test]
fn mark_bad_fails_denylists_and_rolls_back_to_the_newest_known_good() {
    let (tb, sums) = v3_on_trial();
    let (v1, v2, v3) = (&sums[0], &sums[1], &sums[2]);
    let m = tb.boot(&tb.deployments()[0]);
    assert_eq!(
        order(&m.status()),
        vec![short(v3), short(v2) + "*", short(v1) + "*"],
        "three kept during the trial, the known-good ones pinned"
    );
    let b = json_in(
        &m,
        &["mark-bad", "--reason", "health check failed", "--json"],
    );
    assert_eq!(b["deployment"]["checksum"], v3.as_str());
    assert_eq!(b["reason"], "health check failed");
    assert_eq!(b["denylisted"], v3.as_str());
    assert_eq!(b["already_failed"], false);
    assert_eq!(b["rolled_back_to"]["checksum"], v2.as_str());
    assert_eq!(b["default"]["checksum"], v2.as_str());
    assert_eq!(b["reboot_needed"], true);
    // The real ostree: v2 is the default again, the failed one is last, pins released.
    assert_eq!(order(&m.status()), vec![short(v2), short(v1), short(v3)]);
    let j = status_json(&m);
    assert_eq!(dep(&j, v3)["health"], "failed");
    assert_eq!(dep(&j, v3)["health_reason"], "health check failed");
    assert_eq!(dep(&j, v3)["on_trial"], false);
    assert_eq!(j["denylist"][0]["checksum"], v3.as_str());
    assert_eq!(j["denylist"][0]["reason"], "health check failed");
    let r = &j["last_rollback"];
    assert_eq!(r["from"]["checksum"], v3.as_str());
    assert_eq!(r["to"]["checksum"], v2.as_str());
    assert_eq!(r["reason"], "health check failed");
    assert_eq!(r["trigger"], "mark-bad");
    assert!(r["at"].as_str().unwrap().ends_with('Z'));
    let st_text = ok_in(&m, &["status"]);
    assert!(
        st_text.contains("Last rollback:") && st_text.contains("Denylist:"),
        "{st_text}"
    );
    // Again: idempotent, nothing new recorded.
    let again = json_in(&m, &["mark-bad", "--json"]);
    assert_eq!(again["already_failed"], true);
    assert_eq!(again["reason"], "health check failed");
    let j2 = status_json(&m);
    assert_eq!(j2["denylist"], j["denylist"]);
    assert_eq!(j2["last_rollback"], j["last_rollback"]);
    // mark-good cannot overrule the verdict while the commit is denylisted.
    assert_fails(
        &sh_in(&m, &["mark-good"]),
        ErrorCode::Denylisted,
        "denylisted",
    );

    // Reboot: the bootloader's default is the known-good one.
    m.power_off();
    let m = tb.boot_default();
    assert_eq!(m.booted().checksum, *v2);
    let v = json_in(&m, &["assess", "--json"]);
    assert_eq!(v["outcome"], "good");
    // The update agent offers v3 again: refused, typed, nothing written.
    let before = snapshot(&m);
    assert_fails(
        &sh_in(&m, &["stage", v3]),
        ErrorCode::Denylisted,
        "health check failed",
    );
    assert_eq!(snapshot(&m), before);
    // Unless explicitly allowed.
    ok_in(&m, &["stage", v3, "--allow-denylisted"]);
    let j = status_json(&m);
    let staged = j["deployments"][0].clone();
    assert_eq!(staged["staged"], true);
    assert_eq!(staged["health"], "untested");
}

#[test]
fn denylist_blocks_restaging_and_survives_cleanup_of_the_failed_deployment() {
    let (tb, sums) = v3_on_trial();
    let (v2, v3) = (&sums[1], &sums[2]);
    let m = tb.boot(&tb.deployments()[0]);
    ok_in(&m, &["mark-bad", "--reason", "kernel panic"]);
    m.power_off();
    // The failed deployment goes away with the real ostree CLI.
    let idx = tb
        .deployments()
        .iter()
        .position(|d| d.checksum == *v3)
        .unwrap();
    tb.admin(&["undeploy", &idx.to_string()]);
    tb.admin(&["cleanup"]);
    assert!(tb.deployment_of(v3).is_none());
    assert!(!tb
        .deployment_dirs()
        .iter()
        .any(|p| p.to_string_lossy().contains(v3.as_str())));

    let m = tb.boot_default();
    assert_eq!(m.booted().checksum, *v2);
    ok_in(&m, &["assess"]); // a write: the record of the gone deployment is dropped
    let s =
        store::Store::parse(&std::fs::read(store_file(&tb)).unwrap(), &store_file(&tb)).unwrap();
    assert!(s.entries().all(|e| e.deployment.checksum != *v3));
    assert_eq!(s.denylist()[0].checksum, *v3, "the denylist is kept");
    let list = ok_in(&m, &["denylist", "list"]);
    assert!(
        list.contains(v3.as_str()) && list.contains("kernel panic"),
        "{list}"
    );
    assert_fails(&sh_in(&m, &["stage", v3]), ErrorCode::Denylisted, v3);
    assert_fails(
        &sh_in(&m, &["denylist", "remove", &"f".repeat(10)]),
        ErrorCode::InvalidArgument,
        "not on the denylist",
    );
    assert_fails(
        &sh_in(&m, &["denylist", "remove", "xyz"]),
        ErrorCode::InvalidArgument,
        "not a commit checksum",
    );
    let out = ok_in(&m, &["denylist", "remove", &v3[..12]]);
    assert!(out.contains(v3.as_str()), "{out}");
    assert_eq!(
        ok_in(&m, &["denylist", "list"]).trim(),
        "The denylist is empty."
    );
    ok_in(&m, &["stage", v3]);
    assert_eq!(m.staged().unwrap().checksum, *v3);
}

#[test]
fn mark_bad_of_the_staged_deployment_unstages_it() {
    let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    let before = m.status();
    ok_in(&m, &["stage", &v3]);
    let staged = m.staged().unwrap();
    let b = json_in(
        &m,
        &[
            "mark-bad",
            "--deployment",
            &id_of(&staged),
            "--reason",
            "hook said no",
            "--json",
        ],
    );
    assert_eq!(b["unstaged"], true);
    assert_eq!(b["reboot_needed"], false);
    assert!(b["rolled_back_to"].is_null());
    assert_eq!(b["default"]["checksum"], sums[1].as_str());
    assert!(m.staged().is_none());
    assert_eq!(m.status(), before, "pins released, order unchanged");
    let j = status_json(&m);
    assert_eq!(j["denylist"][0]["checksum"], v3.as_str());
    assert!(j["last_rollback"].is_null(), "nothing was rolled back");
    // An unknown deployment is a typed error.
    assert_fails(
        &sh_in(&m, &["mark-bad", "--deployment", &"a".repeat(64)]),
        ErrorCode::UnknownDeployment,
        "aaaa",
    );
}

#[test]
fn mark_bad_keeps_another_staged_deployment_staged() {
    let (tb, sums) = v3_on_trial();
    let (v2, v3) = (&sums[1], &sums[2]);
    let v4 = tb.commit(&Commit::new("4.0"));
    let m = tb.boot(&tb.deployments()[0]);
    ok_in(&m, &["stage", &v4]);
    let b = json_in(&m, &["mark-bad", "--json"]);
    assert_eq!(b["deployment"]["checksum"], v3.as_str());
    assert_eq!(b["default"]["checksum"], v2.as_str());
    assert_eq!(b["staged"]["checksum"], v4.as_str());
    let st = m.status();
    assert!(st[0].has("staged") && st[0].checksum == v4, "{st:?}");
    assert_eq!(st[1].checksum, *v2);
}

#[test]
fn mark_bad_with_no_known_good_deployment_left_refuses_and_changes_nothing() {
    let (tb, sums) = v3_on_trial();
    let (v1, v2) = (&sums[0], &sums[1]);
    let m = tb.boot(&tb.deployments()[0]);
    // The two older ones are marked bad (they are neither default nor booted).
    for v in [v1, v2] {
        let d = m.status().into_iter().find(|d| d.checksum == *v).unwrap();
        ok_in(
            &m,
            &["mark-bad", "--deployment", &id_of(&d), "--reason", "old"],
        );
    }
    let before_store = std::fs::read(store_file(&tb)).unwrap();
    let before = snapshot(&m);
    let out = sh_in(&m, &["mark-bad", "--reason", "broken"]);
    assert_fails(
        &out,
        ErrorCode::NoKnownGood,
        "no other deployment is known good",
    );
    assert!(text(&out.stderr).contains("Nothing was changed"));
    assert_eq!(snapshot(&m), before);
    assert_eq!(std::fs::read(store_file(&tb)).unwrap(), before_store);
    // A single deployment cannot be marked bad either.
    let (tb1, _) = Testbed::with_deployments(&["1.0"]);
    let m1 = tb1.boot_default();
    assert_fails(
        &sh_in(&m1, &["mark-bad"]),
        ErrorCode::NoKnownGood,
        "refusing",
    );
    assert!(!store_file(&tb1).exists());
}

#[test]
fn fallback_boot_then_assess_makes_the_good_one_default_again() {
    for booted_once in [false, true] {
        let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
        let v2 = &sums[1];
        let v3 = tb.commit(&Commit::new("3.0"));
        let m = tb.boot_default();
        ok_in(&m, &["stage", &v3]);
        m.shutdown();
        let d = tb.deployments();
        assert_eq!(d[0].checksum, v3);
        if booted_once {
            // It booted, was counted, and then hung before mark-good.
            let m = tb.boot(&d[0]);
            ok_in(&m, &["assess"]);
            m.power_off();
        }
        // The bootloader ran out of tries for v3 and fell back to v2.
        let m = tb.boot(&d[1]);
        assert_eq!(m.booted().checksum, *v2);
        let v = json_in(
            &m,
            &["assess", "--evidence", "fallback", "--tries", "3", "--json"],
        );
        assert_eq!(v["outcome"], "fell-back", "{v:#}");
        assert_eq!(v["failed"][0]["checksum"], v3.as_str());
        assert_eq!(v["default"]["checksum"], v2.as_str());
        assert_eq!(v["reboot_needed"], false);
        assert_eq!(v["evidence"]["kind"], "fallback");
        assert_eq!(v["evidence"]["tries"], 3);
        let st = m.status();
        assert_eq!(st[0].checksum, *v2, "v2 is the default again: {st:?}");
        assert!(st[0].has("booted"));
        let j = status_json(&m);
        assert_eq!(dep(&j, &v3)["health"], "failed");
        assert!(dep(&j, &v3)["health_reason"]
            .as_str()
            .unwrap()
            .contains("after 3 tries"));
        assert_eq!(j["denylist"][0]["checksum"], v3.as_str());
        assert_eq!(j["last_rollback"]["trigger"], "assess");
        assert_eq!(j["last_rollback"]["from"]["checksum"], v3.as_str());
        assert_eq!(j["last_rollback"]["to"]["checksum"], v2.as_str());
        // Nothing retries it by itself, and the next boot is the good one.
        assert_fails(&sh_in(&m, &["stage", &v3]), ErrorCode::Denylisted, &v3);
        m.power_off();
        assert_eq!(tb.deployments()[0].checksum, *v2);
    }
}

#[test]
fn an_older_entry_chosen_by_hand_or_without_evidence_is_not_a_failure() {
    for (evidence, outcome) in [("manual", "manual-choice"), ("unknown", "undetermined")] {
        let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
        let v3 = tb.commit(&Commit::new("3.0"));
        let m = tb.boot_default();
        ok_in(&m, &["stage", &v3]);
        m.shutdown();
        let d = tb.deployments();
        let m = tb.boot(&d[1]);
        let v = json_in(&m, &["assess", "--evidence", evidence, "--json"]);
        assert_eq!(v["outcome"], outcome);
        assert_eq!(v["newer"][0]["checksum"], v3.as_str());
        assert!(v["failed"].as_array().unwrap().is_empty());
        let j = status_json(&m);
        assert_eq!(dep(&j, &v3)["health"], "untested");
        assert!(j["denylist"].as_array().unwrap().is_empty());
        assert!(j["last_rollback"].is_null());
        let st = m.status();
        assert_eq!(st[0].checksum, v3, "v3 stays the default: {st:?}");
        assert!(st[1].has("booted") && st[1].checksum == sums[1]);
    }
}

#[test]
fn retention_keeps_three_during_a_trial_and_two_after_success() {
    for keep in [true, false] {
        let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
        let (v1, v2) = (&sums[0], &sums[1]);
        let v3 = tb.commit(&Commit::new("3.0"));
        let m = tb.boot_default();
        let mut args = vec!["stage", v3.as_str()];
        if !keep {
            args.push("--no-keep-known-good");
        }
        ok_in(&m, &args);
        m.shutdown();
        let d = tb.deployments();
        if keep {
            assert_eq!(
                order(&d),
                vec![short(&v3), short(v2) + "*", short(v1) + "*"],
                "three during the trial, two known-good pinned"
            );
        } else {
            assert_eq!(
                order(&d),
                vec![short(&v3), short(v2)],
                "without pins libostree keeps two"
            );
        }
        let v1_id = d.iter().find(|x| x.checksum == *v1).map(id_of);
        let m = tb.boot(&d[0]);
        let no_keep: &[&str] = if keep { &[] } else { &["--no-keep-known-good"] };
        ok_in(&m, &[&["assess"], no_keep].concat());
        let g = json_in(&m, &[&["mark-good", "--json"], no_keep].concat());
        assert!(
            g.get("removed").is_none() && g.get("released_pins").is_none(),
            "{g:#}"
        );
        assert_eq!(g["retention_pending"], keep, "{g:#}");
        let stamp = tb.sysroot().join(".cleanup");
        let trigger = tb.sysroot().join(stagehand::health::RETENTION_TRIGGER);
        if keep {
            // The verdict only: the three stay (the two known-good pinned)
            // until the housekeeping, which the trigger schedules.
            assert_eq!(
                order(&m.status()),
                vec![short(&v3), short(v2) + "*", short(v1) + "*"],
                "{g:#}"
            );
            assert!(trigger.exists());
            assert!(!stamp.exists());
            let c = json_in(&m, &["autocleanup", "--json"]);
            // The deployment only the pin kept is gone from the list, its
            // checkout with it, and its objects pruned by the same run.
            let v1_id: stagehand::DeploymentId = v1_id.unwrap().parse().unwrap();
            let v1_json = serde_json::to_value(&v1_id).unwrap();
            assert_eq!(c["released_pins"].as_array().unwrap().len(), 2, "{c:#}");
            assert_eq!(c["performed"], true, "{c:#}");
            assert_eq!(c["stamp"]["kind"], "removed", "{c:#}");
            assert_eq!(c["stamp"]["removed"][0], v1_json, "{c:#}");
            assert_eq!(c["deployments_removed"][0], v1_json, "{c:#}");
            assert!(c["objects_freed"].as_u64().unwrap() > 0, "{c:#}");
            assert!(!tb
                .deployment_dirs()
                .iter()
                .any(|p| p.to_string_lossy().contains(v1.as_str())));
            assert!(!stamp.exists(), "the cleanup is done");
            assert!(!trigger.exists());
        } else {
            // Finalization dropped v1 (the test bed's shutdown runs no
            // stagehand units, so no stamp); nothing is pending.
            assert!(!stamp.exists());
            assert!(!trigger.exists());
        }
        assert_eq!(
            order(&m.status()),
            vec![short(&v3), short(v2)],
            "two after success"
        );
        assert_eq!(status_json(&m)["retention_pending"], false);
    }
}

#[test]
fn a_pin_set_by_a_person_is_never_touched() {
    let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let (v1, v2) = (&sums[0], &sums[1]);
    tb.admin(&["pin", "1"]);
    assert!(tb.deployments()[1].pinned);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    ok_in(&m, &["stage", &v3]);
    let j = status_json(&m);
    assert_eq!(dep(&j, v1)["pinned_by_stagehand"], false, "a person's pin");
    assert_eq!(dep(&j, v2)["pinned_by_stagehand"], true);
    m.shutdown();
    let m = tb.boot_default();
    ok_in(&m, &["mark-good"]);
    ok_in(&m, &["autocleanup"]);
    assert_eq!(
        order(&m.status()),
        vec![short(&v3), short(v2), short(v1) + "*"],
        "stagehand released its own pin only; the person's keeps v1"
    );
    // Even a reset leaves it alone.
    ok_in(&m, &["health", "reset"]);
    assert!(m.status()[2].pinned);
}

/// A store with one entry for `d` with these flags.
fn store_with_flags(d: &stagehand_testbed::Deployment, f: Flags) -> Vec<u8> {
    let payload = serde_json::json!({
        "entries": [{
            "deployment": {"stateroot": d.stateroot, "checksum": d.checksum, "serial": d.serial},
            "untested": f.untested, "failed": f.failed, "recent": f.recent,
            "attempts": 1, "changed": "2024-01-01T00:00:00Z",
        }]
    });
    store::seal(serde_json::to_string(&payload).unwrap().as_bytes())
}

#[test]
fn all_eight_flag_combinations_read_as_seed_000s_table() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let m = tb.boot_default();
    let rollback = m.status()[1].clone();
    std::fs::create_dir_all(store_file(&tb).parent().unwrap()).unwrap();
    for f in Flags::all() {
        std::fs::write(store_file(&tb), store_with_flags(&rollback, f)).unwrap();
        let j = status_json(&m);
        let expect = match (f.untested, f.failed, f.recent) {
            (false, false, false) => Some("good-fallback"),
            (false, false, true) => Some("good"),
            (false, true, false) => Some("failed"),
            (false, true, true) => Some("good"),
            (true, true, false) => Some("untested"),
            _ => None,
        };
        match expect {
            Some(h) => {
                assert_eq!(dep(&j, &rollback.checksum)["health"], h, "{f}");
                assert!(j["health_error"].is_null(), "{f}: {j:#}");
                ok_in(&m, &["assess"]);
                let s =
                    store::Store::parse(&std::fs::read(store_file(&tb)).unwrap(), &store_file(&tb))
                        .unwrap();
                let e = s
                    .entries()
                    .find(|e| e.deployment.checksum == rollback.checksum)
                    .unwrap();
                if f == Flags::new(false, true, true) {
                    assert_eq!(e.state.flags(), Flags::new(false, false, true), "repaired");
                } else {
                    assert_eq!(e.state.flags(), f, "kept as is");
                }
            }
            None => {
                // Status still shows the deployments and says why health is unknown.
                assert!(dep(&j, &rollback.checksum)["health"].is_null(), "{f}");
                let err = j["health_error"].as_str().unwrap();
                assert!(err.contains("impossible health flags"), "{f}: {err}");
                let bytes = std::fs::read(store_file(&tb)).unwrap();
                assert_fails(&sh_in(&m, &["assess"]), ErrorCode::Corrupt, "impossible");
                let q = quarantined(&tb);
                assert_eq!(q.len(), 1, "moved aside");
                assert_eq!(std::fs::read(&q[0]).unwrap(), bytes);
                ok_in(&m, &["health", "reset"]);
                assert!(quarantined(&tb).is_empty());
            }
        }
    }
}

#[test]
fn damaged_store_files_are_refused_moved_aside_and_reset_only_by_the_admin() {
    let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    // A real store: a trial, then a mark-bad, so there is a denylist to lose.
    ok_in(&m, &["stage", &v3]);
    let staged = m.staged().unwrap();
    ok_in(&m, &["mark-bad", "--deployment", &id_of(&staged)]);
    let good = std::fs::read(store_file(&tb)).unwrap();
    let mut edited = good.clone();
    let pos = edited.len() - 10;
    edited[pos] = if edited[pos] == b'1' { b'2' } else { b'1' };
    let cases: Vec<(&str, Vec<u8>, ErrorCode, &str)> = vec![
        (
            "truncated",
            good[..good.len() * 2 / 3].to_vec(),
            ErrorCode::Corrupt,
            "checksum mismatch",
        ),
        (
            "garbage",
            b"\x7fELF\x02\x01\x01 not a store at all".to_vec(),
            ErrorCode::Corrupt,
            "not a health store",
        ),
        (
            "wrong checksum",
            edited,
            ErrorCode::Corrupt,
            "checksum mismatch",
        ),
        ("empty", Vec::new(), ErrorCode::Corrupt, "empty"),
        (
            "oversized",
            {
                let mut v = good.clone();
                v.resize(store::MAX_BYTES as usize + 1, b' ');
                v
            },
            ErrorCode::Corrupt,
            "bound",
        ),
        (
            "unknown version",
            store::seal_version(7, b"{}"),
            ErrorCode::Unsupported,
            "newer stagehand",
        ),
    ];
    for (what, bytes, code, needle) in cases {
        std::fs::write(store_file(&tb), &bytes).unwrap();
        let j = status_json(&m);
        let err = j["health_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {j:#}"));
        assert!(err.contains(needle), "{what}: {err}");
        assert!(j["deployments"][0]["health"].is_null());
        let st = m.status();
        assert_fails(&sh_in(&m, &["assess"]), code, needle);
        let later: [&[&str]; 4] = [
            &["mark-good"],
            &["stage", &sums[0]],
            &["denylist", "remove", &v3],
            &["assess"],
        ];
        if code == ErrorCode::Corrupt {
            // Moved aside at the first refusal, never replaced: every later
            // operation (staging too: the denylist is unknown) still refuses
            // and says what to do.
            assert!(!store_file(&tb).exists(), "{what}");
            let q = quarantined(&tb);
            assert_eq!(q.len(), 1, "{what}");
            assert_eq!(
                std::fs::read(&q[0]).unwrap(),
                bytes,
                "{what}: moved as it was"
            );
            for args in later {
                assert_fails(&sh_in(&m, args), ErrorCode::Corrupt, "health reset");
                assert!(!store_file(&tb).exists(), "{what}: {args:?} wrote a store");
            }
            let j = status_json(&m);
            assert!(j["health_error"].as_str().unwrap().contains("moved aside"));
        } else {
            for args in later {
                assert_fails(&sh_in(&m, args), code, needle);
            }
            assert_eq!(
                std::fs::read(store_file(&tb)).unwrap(),
                bytes,
                "{what}: left in place for the stagehand that wrote it"
            );
        }
        assert_eq!(m.status(), st, "{what}: refusing changed no deployment");
        let out = ok_in(&m, &["health", "reset"]);
        assert!(out.contains("unreadable"), "{what}: {out}");
        assert!(quarantined(&tb).is_empty());
        // A fresh, empty store: the denylist is gone (that is what reset means).
        let j = status_json(&m);
        assert!(j["health_error"].is_null(), "{what}");
        assert!(j["denylist"].as_array().unwrap().is_empty());
        ok_in(&m, &["assess"]);
    }
    // Temporary files of a writer that died are ignored and cleaned.
    std::fs::write(store_file(&tb).with_file_name(".health.tmp999"), b"junk").unwrap();
    assert!(status_json(&m)["health_error"].is_null());
    ok_in(&m, &["mark-good"]);
    assert!(!store_file(&tb).with_file_name(".health.tmp999").exists());
}

#[test]
fn health_commands_need_a_booted_deployment_where_they_act_on_it() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    for args in [&["mark-good"][..], &["mark-bad"][..], &["assess"][..]] {
        assert_fails(&host(&tb, args), ErrorCode::NotBooted, "booted");
    }
    let out = host(&tb, &["denylist", "list"]);
    assert!(out.status.success());
    assert!(
        !store_file(&tb).exists(),
        "nothing written by refusals and reads"
    );
}

/// System calls that change files or mounts. Killing the process before one
/// of them runs covers every state it can leave: a call outside this set
/// (opening, reading) changes nothing a later reader sees, and a file created
/// by `openat` is covered by the kill before the next call of the set.
const MUTATING: &str = "write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,syncfs,sync,\
sync_file_range,rename,renameat,renameat2,unlink,unlinkat,rmdir,mkdir,mkdirat,symlink,symlinkat,\
link,linkat,chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown,truncate,ftruncate,fallocate,\
utime,utimes,utimensat,futimesat,setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,\
fremovexattr,copy_file_range,mount,umount2";

/// One mutating system call of a traced run.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    /// Its number among calls of the same name (strace's `when=`).
    nth: u32,
    /// False for writes to a pipe or device (log lines): killing before them
    /// is the same state as killing before the next call.
    changes_files: bool,
    /// strace's line for it (with `-y`: file descriptors shown as paths).
    line: String,
}

/// The mutating system calls `stagehand args` makes in its main thread, in
/// order (the run completes: it is also a reference run).
fn mutating_calls(m: &Machine<'_>, args: &[&str]) -> Vec<Call> {
    let exe = m.host_path(EXE);
    let trace = format!("trace={MUTATING}");
    let mut argv = vec![
        "strace",
        "-qq",
        "-y",
        "-o",
        "/tmp/strace.log",
        "-e",
        "signal=none",
        "-e",
        &trace,
        &exe,
    ];
    argv.extend_from_slice(args);
    let out = m.run(&argv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = m.sh("cat /tmp/strace.log");
    let mut seen = std::collections::HashMap::<String, u32>::new();
    let mut calls = Vec::new();
    for line in log.lines() {
        let Some((name, rest)) = line.split_once('(') else {
            continue;
        };
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        let n = seen.entry(name.to_string()).or_default();
        *n += 1;
        let to_stream = name.starts_with("write")
            && rest
                .split_once('<')
                .is_some_and(|(_, t)| t.starts_with("pipe:") || t.starts_with("/dev/"));
        calls.push(Call {
            name: name.to_string(),
            nth: *n,
            changes_files: !to_stream,
            line: line.to_string(),
        });
    }
    calls
}

/// The calls worth killing at: each one that changes what a later reader
/// sees. Left out, because the state they would test is already tested:
/// - writes to a pipe or device (log lines) and sync calls (`fsync`,
///   `syncfs`, ...: they change durability, not content, and a SIGKILL is no
///   power cut): killing before one leaves the state of killing before the
///   next call;
/// - the middle of a run of consecutive `unlinkat` calls (libostree deleting
///   a checkout or an old boot version recursively): killing before the
///   first, the second and the last covers "nothing deleted", "part of the
///   tree deleted" and "all but the last entry deleted"; the states in
///   between differ only in how much of the tree is gone.
fn kill_points(calls: &[Call]) -> Vec<&Call> {
    const SYNCS: [&str; 5] = ["fsync", "fdatasync", "syncfs", "sync", "sync_file_range"];
    let relevant: Vec<&Call> = calls
        .iter()
        .filter(|c| c.changes_files && !SYNCS.contains(&c.name.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < relevant.len() {
        let mut j = i;
        while j + 1 < relevant.len()
            && relevant[i].name == "unlinkat"
            && relevant[j + 1].name == "unlinkat"
        {
            j += 1;
        }
        if j - i >= 3 {
            out.extend([relevant[i], relevant[i + 1], relevant[j]]);
        } else {
            out.extend(&relevant[i..=j]);
        }
        i = j + 1;
    }
    out
}

/// Run `stagehand args` under strace, killed with SIGKILL on entry to the
/// `nth` call of `name` (the call does not run).
fn run_killed_at(m: &Machine<'_>, args: &[&str], call: &Call) -> std::process::Output {
    let exe = m.host_path(EXE);
    let trace = format!("trace={}", call.name);
    let inject = format!("inject={}:signal=KILL:when={}", call.name, call.nth);
    let mut argv = vec![
        "strace",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        &trace,
        "-e",
        &inject,
        &exe,
    ];
    argv.extend_from_slice(args);
    m.run(&argv)
}

/// What an operation leaves: `stagehand status --json` without timestamps,
/// and what the real ostree shows.
fn end_state(m: &Machine<'_>) -> String {
    end_state_any_serial(m, None)
}

/// [`end_state`], with the serial of deployments of commit `any_serial`
/// left out (a killed staging leaves an orphan checkout, so the next one gets
/// the next serial).
fn end_state_any_serial(m: &Machine<'_>, any_serial: Option<&str>) -> String {
    let mut j = status_json(m);
    if let Some(list) = j["denylist"].as_array_mut() {
        for d in list {
            d["since"] = Value::Null;
        }
    }
    if j["last_rollback"].is_object() {
        j["last_rollback"]["at"] = Value::Null;
    }
    for d in j["deployments"].as_array_mut().unwrap() {
        d["health_changed"] = Value::Null;
        if any_serial.is_some_and(|c| d["checksum"] == c) {
            d["serial"] = Value::Null;
        }
    }
    // libostree writes an origin file as a linked temporary `tmp.XXXXXX`
    // renamed into place; killed in between, it leaves that file behind in
    // the deploy directory (its own garbage, ignored by its readers).
    let mut files: String = snapshot(m)
        .lines()
        .filter(|l| !l.starts_with("tmp."))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut st = m.status();
    if let Some(c) = any_serial {
        for n in 0..4 {
            files = files.replace(&format!("{c}.{n}"), &format!("{c}.N"));
        }
        for d in st.iter_mut().filter(|d| d.checksum == c) {
            d.serial = 0;
        }
    }
    format!(
        "{}\n{files}\n{st:?}",
        serde_json::to_string_pretty(&j).unwrap()
    )
}

/// Kill `stagehand args` (run in v3, on trial, after the commands `before`)
/// before each of its mutating system calls; after each kill the state must
/// read correctly (`check`), and running the operation again must end
/// exactly where an uninterrupted run ends. `min_points`: fewer kill points
/// means the trace missed the operation.
fn every_kill_point_converges(
    before: &[&[&str]],
    args: &[&str],
    min_points: usize,
    check: impl Fn(&Value, &[String]) -> Result<(), String>,
) {
    let (tb, sums) = v3_on_trial();
    assert!(!tb.sysroot().join(".cleanup").exists());
    let deployed: Vec<String> = tb.deployments().iter().map(id_of).collect();
    let saved = tb.save_state();
    let m = tb.boot(&tb.deployments()[0]);
    for b in before {
        ok_in(&m, b);
    }
    let calls = mutating_calls(&m, args);
    let reference = end_state(&m);
    m.power_off();
    let points = kill_points(&calls);
    assert!(
        points.len() >= min_points,
        "suspiciously few calls: {calls:?}"
    );
    eprintln!(
        "{args:?}: {} mutating calls, {} kill points",
        calls.len(),
        points.len()
    );
    for call in points {
        tb.restore_state(&saved);
        let m = tb.boot(&tb.deployments()[0]);
        for b in before {
            ok_in(&m, b);
        }
        let out = run_killed_at(&m, args, call);
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.signal() == Some(9) || out.status.code() == Some(128 + 9),
            "{call:?} was not reached ({}): the run is not deterministic?\n{}",
            out.status,
            text(&out.stderr)
        );
        // The state reads correctly: no corruption, no impossible flags.
        let j = status_json(&m);
        assert!(j["health_error"].is_null(), "killed at {call:?}: {j:#}");
        check(&j, &sums).unwrap_or_else(|e| panic!("killed at {call:?}: {e}\n{j:#}"));
        // A deployment stagehand dropped is named in the cleanup stamp
        // before it is dropped: no kill leaves its objects unaccounted for.
        let st = m.status();
        let stamp = std::fs::read_to_string(tb.sysroot().join(".cleanup")).unwrap_or_default();
        for gone in deployed
            .iter()
            .filter(|d| !st.iter().any(|x| id_of(x) == **d))
        {
            assert!(
                stamp.contains(&format!("\nremoved {gone}\n")),
                "killed at {call:?}: {gone} dropped, but the stamp does not name it:\n{stamp}"
            );
        }
        assert!(
            st.iter().any(|d| d.has("booted")),
            "killed at {call:?}: {st:?}"
        );
        // And the operation, run again, converges.
        ok_in(&m, args);
        assert_eq!(
            end_state(&m),
            reference,
            "killed at {call:?}, then run again"
        );
    }
}

/// The verdict alone: the store's atomic replace (and the boot token); no
/// pin released, nothing removed (that is the retention sweep below).
#[test]
fn a_kill_at_every_mutating_syscall_of_mark_good_leaves_a_valid_state() {
    every_kill_point_converges(&[], &["mark-good"], 5, |j, sums| {
        let v3 = dep(j, &sums[2]);
        match (v3["health"].as_str(), v3["on_trial"].as_bool()) {
            (Some("failed"), Some(true)) | (Some("good"), Some(false)) => {}
            other => return Err(format!("v3 is {other:?}")),
        }
        if !j["denylist"].as_array().unwrap().is_empty() {
            return Err("denylist changed".into());
        }
        // mark-good changes nothing but the store now: all three stay,
        // both known-good ones pinned by stagehand.
        let deps = j["deployments"].as_array().unwrap();
        let pinned = deps
            .iter()
            .filter(|d| d["pinned_by_stagehand"] == true)
            .count();
        if deps.len() != 3 || pinned != 2 {
            return Err(format!("{} deployments, {pinned} pinned", deps.len()));
        }
        Ok(())
    });
}

/// The housekeeping mark-good defers (`autocleanup` runs it first):
/// releasing the trial's pins (origin rewrites), the stamp naming v1, the
/// deployment list without it. Killed anywhere, it never leaves fewer than
/// two known-good deployments, and running it again converges.
#[test]
fn a_kill_at_every_mutating_syscall_of_the_retention_housekeeping_leaves_a_valid_state() {
    every_kill_point_converges(
        &[&["mark-good"]],
        &["health", "retention"],
        20,
        |j, sums| {
            let v3 = dep(j, &sums[2]);
            match (v3["health"].as_str(), v3["on_trial"].as_bool()) {
                (Some("good"), Some(false)) => {}
                other => return Err(format!("v3 is {other:?}")),
            }
            if !j["denylist"].as_array().unwrap().is_empty() {
                return Err("denylist changed".into());
            }
            // Never fewer than two known-good deployments listed.
            let good = j["deployments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["health"] == "good" || d["health"] == "good-fallback")
                .count();
            if good < 2 {
                return Err(format!("only {good} known-good deployments"));
            }
            Ok(())
        },
    );
}

#[test]
fn a_kill_at_every_mutating_syscall_of_mark_bad_leaves_a_valid_state() {
    every_kill_point_converges(&[], &["mark-bad", "--reason", "boom"], 20, |j, sums| {
        let v3 = dep(j, &sums[2]);
        let denied = j["denylist"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["checksum"] == sums[2].as_str());
        match (v3["health"].as_str(), v3["health_reason"].as_str()) {
            (Some("failed"), None) => {
                if denied || !j["last_rollback"].is_null() {
                    return Err("denylisted or rolled back without a verdict".into());
                }
            }
            (Some("failed"), Some("boom")) => {
                // Verdict, denylist and rollback record land together.
                if !denied || j["last_rollback"]["from"]["checksum"] != sums[2].as_str() {
                    return Err("verdict without denylist or rollback record".into());
                }
            }
            other => return Err(format!("v3 is {other:?}")),
        }
        Ok(())
    });
}

/// v3 (on trial) marked good, its pins left to the housekeeping, then v4
/// staged: a trial again, with v3 and v2 pinned (v1's pin released and v1
/// removed by the staging). Returns the machine booted in v3 (the staged
/// deployment lives in `/run`: this boot must go on).
fn v4_staged_after_v3_good<'a>(tb: &'a Testbed, sums: &[String]) -> (Machine<'a>, String) {
    let (v2, v3) = (&sums[1], &sums[2]);
    let v4 = tb.commit(&Commit::new("4.0"));
    let m = tb.boot(&tb.deployments()[0]);
    ok_in(&m, &["mark-good"]);
    ok_in(&m, &["stage", &v4]);
    assert_eq!(
        order(&m.status()),
        vec![short(&v4), short(v3) + "*", short(v2) + "*"],
        "v4 on trial: v3 and v2 pinned, v1 released and removed"
    );
    let j = status_json(&m);
    assert_eq!(dep(&j, &v4)["on_trial"], true);
    assert_eq!(j["retention_pending"], false, "the trial needs its pins");
    (m, v4)
}

/// An interrupted release during a trial: in [`v4_staged_after_v3_good`],
/// v2 (pinned by stagehand for v4's trial) marked bad — a known-good
/// deployment failing later — killed just before the origin rewrite that
/// unpins it, after the store write that recorded the pin as `releasing`.
/// `status` said "retention pending" there, while `autocleanup` (whose
/// housekeeping acted only once no trial was open) released nothing: they
/// disagreed until the trial ended. Now both follow one predicate: the
/// cleanup finishes exactly the recorded release (v2's pin, and v2, which
/// only that pin kept, named in the stamp, dropped and pruned), keeps the
/// trial's pin on v3 and the staged v4, and status agrees before and after.
#[test]
fn an_interrupted_release_during_a_trial_is_pending_and_autocleanup_finishes_it() {
    // A reference run finds the kill point: the rename of v2's new origin
    // file into place (libostree's deployment_set_pinned).
    let unpin = {
        let (tb, sums) = v3_on_trial();
        let (m, v4) = v4_staged_after_v3_good(&tb, &sums);
        let v2 = m.status()[2].clone();
        assert_eq!(v2.checksum, sums[1]);
        let origin = format!("{}.origin", id_of(&v2).split_once(':').unwrap().1);
        let calls = mutating_calls(&m, &["mark-bad", "--deployment", &sums[1]]);
        assert_eq!(
            order(&m.status()),
            vec![short(&v4), short(&sums[2]) + "*"],
            "uninterrupted: v2's pin released and v2 removed, v3 still pinned"
        );
        calls
            .into_iter()
            .find(|c| c.name.starts_with("rename") && c.line.contains(&origin))
            .unwrap_or_else(|| panic!("mark-bad never renamed {origin}"))
    };

    let (tb, sums) = v3_on_trial();
    let (v2, v3) = (&sums[1], &sums[2]);
    let (m, v4) = v4_staged_after_v3_good(&tb, &sums);
    let v2_id: stagehand::DeploymentId = id_of(&m.status()[2]).parse().unwrap();
    let v2_json = serde_json::to_value(&v2_id).unwrap();
    let args = ["mark-bad", "--deployment", v2.as_str()];
    let out = run_killed_at(&m, &args, &unpin);
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.signal() == Some(9) || out.status.code() == Some(128 + 9),
        "{unpin:?} was not reached ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    // Killed: the verdict is made, v2's release is recorded but not done,
    // and v4 is still on trial.
    assert_eq!(
        order(&m.status()),
        vec![short(&v4), short(v3) + "*", short(v2) + "*"]
    );
    let raw = std::fs::read_to_string(store_file(&tb)).unwrap();
    assert!(raw.contains("\"releasing\": true"), "{raw}");
    let j = status_json(&m);
    assert_eq!(dep(&j, &v4)["on_trial"], true, "{j:#}");
    assert_eq!(dep(&j, v2)["health"], "failed", "{j:#}");
    assert_eq!(j["retention_pending"], true, "{j:#}");
    assert!(ok_in(&m, &["status"]).contains("Retention pending"));

    // What status calls pending, autocleanup does (started by the trigger
    // mark-good left, and the stamp naming v1, which the staging removed).
    let c = json_in(&m, &["autocleanup", "--json"]);
    assert_eq!(c["released_pins"], serde_json::json!([v2_json]), "{c:#}");
    assert!(
        c["deployments_removed"]
            .as_array()
            .unwrap()
            .contains(&v2_json),
        "{c:#}"
    );
    assert_eq!(
        order(&m.status()),
        vec![short(&v4), short(v3) + "*"],
        "v2's pin released and v2 removed, the trial's pin on v3 kept"
    );
    assert!(m.status()[0].has("staged"));
    assert!(!tb
        .deployment_dirs()
        .iter()
        .any(|p| p.to_string_lossy().contains(v2.as_str())));
    let j = status_json(&m);
    assert_eq!(j["retention_pending"], false, "{j:#}");
    assert_eq!(dep(&j, &v4)["on_trial"], true);
    assert_eq!(dep(&j, v3)["pinned_by_stagehand"], true);
    assert!(!tb
        .sysroot()
        .join(stagehand::health::RETENTION_TRIGGER)
        .exists());
    // Nothing pending is nothing done.
    let before = end_state(&m);
    assert_eq!(
        ok_in(&m, &["health", "retention"]).trim(),
        "no retention housekeeping pending"
    );
    assert_eq!(ok_in(&m, &["autocleanup"]).trim(), "no cleanup pending");
    assert_eq!(end_state(&m), before);
}

#[test]
fn staging_killed_at_any_commit_point_still_starts_the_trial() {
    // Every atomic replace of `stage` (store writes, origin files, libostree's
    // staged-deployment file) is a commit point; kill it before each one.
    let (tb, sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0"));
    let saved = tb.save_state();
    let m = tb.boot_default();
    let calls = mutating_calls(&m, &["stage", &v3]);
    let reference = end_state_any_serial(&m, Some(&v3));
    drop(m);
    let points: Vec<&Call> = calls
        .iter()
        .filter(|c| c.name.starts_with("rename"))
        .collect();
    assert!(points.len() >= 4, "{calls:?}");
    for call in points {
        tb.restore_state(&saved);
        let m = tb.boot_default();
        let out = run_killed_at(&m, &["stage", &v3], call);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{call:?} not reached");
        let j = status_json(&m);
        assert!(j["health_error"].is_null(), "killed at {call:?}: {j:#}");
        if let Some(staged) = m.staged() {
            // Staged without its record: the pending record makes it untested,
            // and the known-good deployments were pinned before it existed.
            assert_eq!(staged.checksum, v3);
            assert_eq!(dep(&j, &v3)["health"], "untested", "killed at {call:?}");
            let st = m.status();
            assert!(
                st.iter()
                    .filter(|d| sums.contains(&d.checksum))
                    .all(|d| d.pinned),
                "killed at {call:?}: {st:?}"
            );
        }
        ok_in(&m, &["stage", &v3]);
        assert_eq!(
            end_state_any_serial(&m, Some(&v3)),
            reference,
            "killed at {call:?}, then staged again"
        );
    }
}

#[test]
fn a_deployment_staged_without_its_record_is_adopted_from_the_pending_record() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    // What a crash between libostree's staging and stagehand's record leaves:
    // the pending record, and a deployment staged by libostree.
    std::fs::create_dir_all(store_file(&tb).parent().unwrap()).unwrap();
    let pending = |after: Option<u32>| {
        serde_json::json!({"pending": {"stateroot": "testos", "checksum": v2,
            "after_serial": after, "since": "2024-01-01T00:00:00Z"}})
    };
    std::fs::write(
        store_file(&tb),
        store::seal(pending(None).to_string().as_bytes()),
    )
    .unwrap();
    m.ok(&["ostree", "admin", "deploy", "--stage", &v2]);
    let j = status_json(&m);
    assert_eq!(dep(&j, &v2)["health"], "untested");
    assert_eq!(dep(&j, &sums[0])["health"], "good-fallback");
    // The next operation under the lock makes it a record and drops `pending`.
    ok_in(&m, &["assess"]);
    let s =
        store::Store::parse(&std::fs::read(store_file(&tb)).unwrap(), &store_file(&tb)).unwrap();
    assert!(s.pending().is_none());
    assert_eq!(
        s.entries()
            .find(|e| e.deployment.checksum == v2)
            .unwrap()
            .state,
        stagehand::health::State::Untested
    );
    // A pending record for an older serial of the same commit does not adopt it.
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    std::fs::create_dir_all(store_file(&tb).parent().unwrap()).unwrap();
    std::fs::write(
        store_file(&tb),
        store::seal(
            serde_json::json!({"pending": {"stateroot": "testos", "checksum": v2,
                "after_serial": 0, "since": "2024-01-01T00:00:00Z"}})
            .to_string()
            .as_bytes(),
        ),
    )
    .unwrap();
    m.ok(&["ostree", "admin", "deploy", "--stage", &v2]);
    assert_eq!(m.staged().unwrap().serial, 0);
    assert_eq!(dep(&status_json(&m), &v2)["health"], "good-fallback");
}

/// libostree 2022.7 cannot move the last non-staged deployment to the front
/// while a deployment is staged (`ostree_sysroot_write_deployments` compares
/// the new list, without the staged one, against the current list, with
/// it, one position off, and takes the change for a no-op). So mark-bad of
/// the booted v3 with v4 staged cannot make v2 the default before the
/// reboot. The staged v4 boots next either way; what must not happen is
/// that the failed v3 stays ahead of v2 after finalization, where it would
/// be v4's fallback entry. stagehand says the reorder was deferred, and the
/// finalization step at shutdown (`finalize-stamp`) puts failures behind
/// the known-good deployments; a boot without that step (a power cut right
/// after finalization) is fixed by `assess`.
#[test]
fn a_failed_deployment_never_stays_the_fallback_of_a_staged_update() {
    let (tb, sums) = v3_on_trial();
    let (v2, v3) = (sums[1].clone(), sums[2].clone());
    let (m, v4) = v4_staged_after_v3_good(&tb, &sums);
    let said = ok_in(&m, &["mark-bad", "--reason", "boom"]);
    assert!(
        said.contains(&format!("rollback to testos:{v2}.0 deferred")),
        "{said}"
    );
    // The running system is the failed v3 and the staged v4 boots next:
    // a reboot leaves it, as it does with more deployments, where the
    // order is written.
    assert!(said.contains("reboot needed"), "{said}");
    let j = status_json(&m);
    assert_eq!(dep(&j, &v3)["health"], "failed", "{j:#}");
    assert_eq!(m.staged().map(|d| d.checksum), Some(v4.clone()), "{said}");
    // With the record of the shutdown unit, then ostree's finalization and
    // stagehand's step after it.
    ok_in(&m, &["finalize-stamp", "--record"]);
    let fin = m.finalize();
    assert!(fin.status.success(), "{}", text(&fin.stderr));
    ok_in(&m, &["finalize-stamp"]);
    assert_eq!(
        order(&m.status())[..3]
            .iter()
            .map(|s| s.trim_end_matches('*').to_string())
            .collect::<Vec<_>>(),
        vec![short(&v4), short(&v2), short(&v3)],
        "after finalization the fallback is the known-good v2"
    );
    m.power_off();

    // The same without stagehand's shutdown step: assess at the next boot.
    let (tb, sums) = v3_on_trial();
    let (v2, v3) = (sums[1].clone(), sums[2].clone());
    let (m, v4) = v4_staged_after_v3_good(&tb, &sums);
    ok_in(&m, &["mark-bad", "--reason", "boom"]);
    m.shutdown();
    let m = tb.boot(&tb.deployments()[0]);
    assert_eq!(m.booted().checksum, v4);
    ok_in(&m, &["assess"]);
    assert_eq!(
        order(&m.status())[..3]
            .iter()
            .map(|s| s.trim_end_matches('*').to_string())
            .collect::<Vec<_>>(),
        vec![short(&v4), short(&v2), short(&v3)],
        "assess puts the failed v3 behind the known-good v2"
    );
}
