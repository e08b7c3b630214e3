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
