//! What is checked after each kill: the invariants every interrupted run
//! must leave, and the end state a re-run must converge to
//! (docs/reliability.md lists them).

use std::process::Command;

use serde_json::Value;
use stagehand_testbed::crashpoints::Point;
use stagehand_testbed::{Machine, Testbed};

use crate::operations::{grubenv, guard_dir};
use crate::{text, Stagehand};

/// Whether a crash point is a commit point of a stagehand state file: a
/// rename or unlink in the health store's directory, `/run/stagehand`, the
/// guard directory, or of the cleanup stamp.
pub(crate) fn is_commit_point(p: &Point) -> bool {
    (p.syscall.starts_with("rename") || p.syscall.starts_with("unlink"))
        && [
            "ostree/stagehand/",
            "/run/stagehand/",
            "/.cleanup",
            "/stagehand/guard/",
            "/loader/entries/",
        ]
        .iter()
        .any(|s| p.detail.contains(s))
}

/// Whether two runs made the same call: same system call on the same files,
/// ignoring numbers and the random part of temporary names (libostree's
/// `staging-<boot id>-XXXXXX`, `tmp.XXXXXX`), which differ from run to run.
pub(crate) fn same_call(a: &Point, b: &Point) -> bool {
    fn norm(p: &Point) -> String {
        p.detail
            .split(['/', ' '])
            .map(|c| {
                if c.contains("tmp") || c.contains("staging-") {
                    "*"
                } else {
                    c
                }
            })
            .collect::<Vec<_>>()
            .join("/")
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect()
    }
    a.syscall == b.syscall && norm(a) == norm(b)
}

/// The deployments the start state must keep: the booted one and the
/// rollback (the first non-staged one after it), with their serials.
pub(crate) fn keepers(m: &Machine<'_>) -> Vec<(String, u32)> {
    let st = m.status();
    let b = st.iter().position(|d| d.has("booted")).unwrap();
    let mut keep = vec![(st[b].checksum.clone(), st[b].serial)];
    if let Some(r) = st[b + 1..].iter().find(|d| !d.has("staged")) {
        keep.push((r.checksum.clone(), r.serial));
    }
    keep
}

/// The invariants every interrupted run must leave; returns the violations.
pub(crate) fn invariants(
    sh: &Stagehand,
    tb: &Testbed,
    m: &Machine<'_>,
    keep: &[(String, u32)],
) -> Vec<String> {
    let mut v = Vec::new();
    // `ostree admin status` succeeds; booted and rollback are intact.
    let out = m.run(&["ostree", "admin", "status"]);
    if !out.status.success() {
        v.push(format!("ostree admin status failed: {}", text(&out.stderr)));
        return v;
    }
    let st = stagehand_testbed::parse_admin_status(&text(&out.stdout));
    for (c, s) in keep {
        if !st.iter().any(|d| &d.checksum == c && d.serial == *s) {
            v.push(format!("deployment {c}.{s} is gone: {st:?}"));
        }
        let dir = tb
            .sysroot()
            .join("ostree/deploy")
            .join(tb.stateroot())
            .join("deploy")
            .join(format!("{c}.{s}"));
        if !dir.join("usr/bin").is_dir() {
            v.push(format!("deployment directory {} damaged", dir.display()));
        }
    }
    if !st.iter().any(|d| d.has("booted")) {
        v.push("no booted deployment".into());
    }
    // Every stagehand state file parses and reads as a state the model allows.
    let out = sh.run(m, &["status", "--json"]);
    if !out.status.success() {
        v.push(format!("stagehand status failed: {}", text(&out.stderr)));
        return v;
    }
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    if !j["health_error"].is_null() {
        v.push(format!("health store: {}", j["health_error"]));
    }
    let deps = j["deployments"].as_array().unwrap();
    let staged: Vec<&Value> = deps.iter().filter(|d| d["staged"] == true).collect();
    if staged.len() > 1 {
        v.push(format!("{} staged deployments", staged.len()));
    }
    for d in &staged {
        if d["unvetted"] == true && d["finalization_locked"] != true {
            v.push(format!("unvetted staged deployment not locked: {d}"));
        }
    }
    for d in deps {
        if d["booted"] == true && d["health"] == "failed" && d["on_trial"] == false {
            // A concluded failure of the running system is allowed only with
            // a verdict (mark-bad's reason).
            if d["health_reason"].is_null() {
                v.push(format!("booted deployment failed without a verdict: {d}"));
            }
        }
    }
    match stagehand::cleanup::pending_cleanup_at(tb.sysroot()) {
        Ok(_) => {}
        Err(e) => v.push(format!("cleanup stamp: {e}")),
    }
    if let Err(e) = stagehand::redline::status(&guard_dir(tb), "step") {
        v.push(format!("guard stamp: {e}"));
    }
    if grubenv(tb).exists() {
        if let Err(e) = stagehand::bootloader::grubenv::GrubEnv::read(&grubenv(tb)) {
            v.push(format!("grubenv: {e}"));
        }
        // And GRUB's own tool reads it.
        let out = Command::new("grub-editenv")
            .arg(grubenv(tb))
            .arg("list")
            .output()
            .unwrap();
        if !out.status.success() {
            v.push(format!("grub-editenv list: {}", text(&out.stderr)));
        }
    }
    let rec = m.run(&["cat", stagehand::hooks::UNVETTED_PATH]);
    if rec.status.success() {
        if let Err(e) = stagehand::formats::parse_unvetted(&rec.stdout) {
            v.push(format!("unvetted record: {e}"));
        }
    }
    let rec = m.run(&["cat", stagehand::cleanup::FINALIZE_RECORD_PATH]);
    if rec.status.success() {
        if let Err(e) = stagehand::formats::parse_finalize_record(&rec.stdout) {
            v.push(format!("finalize record: {e}"));
        }
    }
    v
}

/// What an operation leaves, normalized for timestamps (and the serial of
/// `any_serial`): stagehand's status, what ostree shows, the files in /run,
/// the cleanup stamp's kind and the guard step's phase.
pub(crate) fn end_state(
    sh: &Stagehand,
    tb: &Testbed,
    m: &Machine<'_>,
    any_serial: Option<&str>,
) -> String {
    let mut j: Value = serde_json::from_str(&sh.ok(m, &["status", "--json"])).unwrap();
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
    let mut files: String = m
        .sh("ostree admin status; ls /ostree/deploy/*/deploy/; ls -A /run/ostree /run/stagehand /sysroot /sysroot/ostree/stagehand /var/lib/stagehand/guard /boot/grub2 2>/dev/null || true; ls /boot/loader/entries/")
        .lines()
        // libostree's linked temporary origin file (tmp.XXXXXX), left by a
        // kill between its link and its rename: its own garbage, ignored by
        // its readers and removed by its next cleanup.
        .filter(|l| !l.starts_with("tmp."))
        .map(|l| format!("{l}\n"))
        .collect();
    if let Some(c) = any_serial {
        for n in 0..6 {
            files = files.replace(&format!("{c}.{n}"), &format!("{c}.N"));
        }
        files = files.replace(&format!("{c}.N.origin"), "");
    }
    let stamp = match stagehand::cleanup::pending_cleanup_at(tb.sysroot()) {
        Ok(Some(s)) => format!("{:?}", s.deployment()),
        Ok(None) => "no stamp".into(),
        Err(e) => format!("{e}"),
    };
    let guard = match stagehand::redline::status(&guard_dir(tb), "step") {
        Ok(s) => format!("{:?}", s.map(|s| s.phase)),
        Err(e) => format!("{e}"),
    };
    let env = Command::new("grub-editenv")
        .arg(grubenv(tb))
        .arg("list")
        .output()
        .map(|o| text(&o.stdout) + &text(&o.stderr))
        .unwrap_or_default();
    format!(
        "{}\n{files}\ncleanup: {stamp}\nguard: {guard}\ngrubenv:\n{env}",
        serde_json::to_string_pretty(&j).unwrap()
    )
}

/// The lines only in `a` (`-`) or only in `b` (`+`), with line numbers.
pub(crate) fn diff(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for (i, l) in al.iter().enumerate() {
        if bl.get(i) != Some(l) {
            out += &format!("{i:4} - {l}\n{i:4} + {}\n", bl.get(i).unwrap_or(&"<none>"));
        }
    }
    for (i, l) in bl.iter().enumerate().skip(al.len()) {
        out += &format!("{i:4} + {l}\n");
    }
    out
}

/// The file the health deadline's reboot command creates in the `+reboot`
/// rows: the trace that a reboot was requested in this boot (`/run` is empty
/// at every boot).
pub(crate) const REBOOT_TRACE: &str = "/run/stagehand-crashsweep-rebooted";

/// How many boots a power cut may take to settle: the boot after it, and the
/// reboot its health deadline may request out of a failed deployment (and
/// one more, so a loop shows as one).
pub(crate) const MAX_BOOTS: usize = 3;

/// Where the boots after a power cut ended ([`after_power_cut`]).
pub(crate) struct Settled {
    /// What the last boot left, in the terms that must not depend on where
    /// the kill was ([`settled_state`]).
    pub end: String,
    /// Which deployment each boot ran (short checksums), for the messages.
    pub boots: Vec<String>,
    /// What was wrong along the way, one message each.
    pub violations: Vec<String>,
}

/// Boot what the bootloader boots after a power cut, run the boot's units,
/// check the invariants of a settled boot, and follow a requested reboot,
/// up to [`MAX_BOOTS`] boots.
///
/// The bootloader is GRUB's model: `grubenv::simulate_boot_file` on the
/// environment block (every start state has one) counts a boot against an
/// armed counter and picks the default entry (`deployments()[0]`) or, when
/// the counter ran out, the fallback (`[1]`). The boot's units run in the
/// order systemd gives them: `assess`; `mark-good` if the booted deployment
/// is on trial and the boot is `healthy` (boot-complete.target reached);
/// the health deadline, its time up (`--now`), with a reboot command that
/// leaves [`REBOOT_TRACE`] (the machines run with `auto-reboot = true`); the
/// cleanup if its unit's conditions hold. Then, after each boot:
///
/// 1. every unit succeeded;
/// 2. [`invariants`] (state files parse, `ostree admin status` succeeds,
///    ...), with the deployments to keep being this boot's: the booted one
///    and its rollback, the first known-good one after it, as they were
///    before the units ran (the start state's rollback may go: once an
///    update is marked good, retention drops the oldest deployment);
/// 3. the default deployment has no failure verdict (health `failed` or its
///    commit denylisted) while a known-good one exists;
/// 4. the running deployment has a failure verdict only if a reboot was
///    requested in this boot (the trace exists). The bootloader, not a
///    person, picks every boot here, so no boot is a person's choice;
/// 5. a requested reboot is followed; the [`MAX_BOOTS`]th boot requests
///    none.
pub(crate) fn after_power_cut(sh: &Stagehand, tb: &Testbed, healthy: bool) -> Settled {
    use stagehand::bootloader::grubenv::{simulate_boot_file, GrubChoice};
    let mut v = Vec::new();
    let mut boots = Vec::new();
    for n in 1..=MAX_BOOTS {
        let choice = match simulate_boot_file(&grubenv(tb)) {
            Ok(c) => c,
            Err(e) => {
                v.push(format!("boot {n}: GRUB's model cannot read the block: {e}"));
                GrubChoice::Default
            }
        };
        let deps = tb.deployments();
        let d = match choice {
            GrubChoice::Default => &deps[0],
            GrubChoice::Fallback => &deps[1],
        };
        boots.push(format!("{}({choice:?})", &d.checksum[..8]));
        let m = tb.boot(d);
        let keep = boot_keepers(sh, &m);
        let mut bad = |what: String| v.push(format!("boot {n} into {}: {what}", d.id()));
        let unit = |args: &[&str], bad: &mut dyn FnMut(String)| {
            let out = sh.run(&m, args);
            if !out.status.success() {
                bad(format!(
                    "{args:?} failed ({}): {}{}",
                    out.status,
                    text(&out.stdout),
                    text(&out.stderr)
                ));
            }
        };
        unit(&["assess"], &mut bad);
        if healthy && booted_status(sh, &m).is_some_and(|b| b["on_trial"] == true) {
            unit(&["mark-good"], &mut bad);
        }
        let reboot = format!("touch {REBOOT_TRACE}");
        unit(
            &["health-deadline", "--now", "--reboot-command", &reboot],
            &mut bad,
        );
        if tb.sysroot().join(".cleanup").exists()
            || tb
                .sysroot()
                .join("ostree/stagehand/retention-pending")
                .exists()
        {
            unit(&["autocleanup"], &mut bad);
        }
        for x in invariants(sh, tb, &m, &keep) {
            bad(x);
        }
        let rebooted = m.run(&["test", "-e", REBOOT_TRACE]).status.success();
        for x in verdict_invariants(sh, &m, rebooted) {
            bad(x);
        }
        if !rebooted {
            let end = settled_state(sh, tb, &m);
            m.power_off();
            return Settled {
                end,
                boots,
                violations: v,
            };
        }
        m.power_off();
    }
    v.push(format!(
        "still requesting a reboot after {MAX_BOOTS} boots ({})",
        boots.join(" → ")
    ));
    Settled {
        end: String::new(),
        boots,
        violations: v,
    }
}

/// The deployments a boot's units must keep, as [`invariants`] takes them:
/// the booted one and the first known-good one after it (the rollback),
/// read before the units run.
fn boot_keepers(sh: &Stagehand, m: &Machine<'_>) -> Vec<(String, u32)> {
    let j: Value = serde_json::from_str(&sh.ok(m, &["status", "--json"])).unwrap();
    let denied = |d: &Value| {
        j["denylist"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["checksum"] == d["checksum"]))
    };
    let deps = j["deployments"].as_array().unwrap();
    let id = |d: &Value| {
        (
            d["checksum"].as_str().unwrap().to_string(),
            d["serial"].as_u64().unwrap() as u32,
        )
    };
    let Some(b) = deps.iter().position(|d| d["booted"] == true) else {
        return vec![];
    };
    let mut keep = vec![id(&deps[b])];
    if let Some(r) = deps[b + 1..].iter().find(|d| {
        d["staged"] != true
            && (d["health"] == "good" || d["health"] == "good-fallback")
            && !denied(d)
    }) {
        keep.push(id(r));
    }
    keep
}

/// The booted deployment's entry of `stagehand status --json`.
fn booted_status(sh: &Stagehand, m: &Machine<'_>) -> Option<Value> {
    let out = sh.run(m, &["status", "--json"]);
    let j: Value = serde_json::from_slice(&out.stdout).ok()?;
    j["deployments"]
        .as_array()?
        .iter()
        .find(|d| d["booted"] == true)
        .cloned()
}

/// Invariants 3 and 4 of [`after_power_cut`], on a boot whose units ran.
fn verdict_invariants(sh: &Stagehand, m: &Machine<'_>, rebooted: bool) -> Vec<String> {
    let mut v = Vec::new();
    let out = sh.run(m, &["status", "--json"]);
    let Ok(j) = serde_json::from_slice::<Value>(&out.stdout) else {
        v.push(format!("stagehand status failed: {}", text(&out.stderr)));
        return v;
    };
    let denied = |d: &Value| {
        j["denylist"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["checksum"] == d["checksum"]))
    };
    let failed = |d: &Value| d["health"] == "failed" || denied(d);
    let known_good =
        |d: &Value| (d["health"] == "good" || d["health"] == "good-fallback") && !denied(d);
    let deps: Vec<&Value> = j["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["staged"] != true)
        .collect();
    if let Some(default) = deps.first() {
        if failed(default) && deps.iter().any(|d| known_good(d)) {
            v.push(format!(
                "the default deployment has a failure verdict while a known-good one exists: {default}"
            ));
        }
    }
    if let Some(b) = deps.iter().find(|d| d["booted"] == true) {
        if failed(b) && !rebooted {
            v.push(format!(
                "running on a deployment with a failure verdict and no reboot requested: {b}"
            ));
        }
    }
    v
}

/// What a settled boot leaves, in the terms that must not depend on where
/// the power was cut: the deployments in order (checksum, health, booted),
/// the denylisted commits, whether a cleanup or retention housekeeping is
/// still pending, and the GRUB environment's variables. Not compared (they
/// legitimately differ): reasons (a deadline's verdict on a boot that failed
/// again reads differently from mark-bad's), boot attempts and timestamps,
/// serials.
pub(crate) fn settled_state(sh: &Stagehand, tb: &Testbed, m: &Machine<'_>) -> String {
    let j: Value = serde_json::from_str(&sh.ok(m, &["status", "--json"])).unwrap();
    let mut s = String::new();
    for d in j["deployments"].as_array().unwrap() {
        s += &format!(
            "{} {}{}{}\n",
            &d["checksum"].as_str().unwrap()[..8],
            d["health"],
            if d["booted"] == true { " booted" } else { "" },
            if d["staged"] == true { " staged" } else { "" },
        );
    }
    for d in j["denylist"].as_array().into_iter().flatten() {
        s += &format!("denied {}\n", &d["checksum"].as_str().unwrap_or("?")[..8]);
    }
    s += &format!(
        "cleanup pending {}, retention pending {}\n",
        j["cleanup_pending"], j["retention_pending"]
    );
    let env = Command::new("grub-editenv")
        .arg(grubenv(tb))
        .arg("list")
        .output()
        .map(|o| text(&o.stdout) + &text(&o.stderr))
        .unwrap_or_default();
    s + "grubenv:\n" + &env
}
