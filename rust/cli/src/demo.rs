//! `stagehand demo`: one full update cycle on a throwaway sysroot, narrated.
//!
//! It uses the same test bed as the test suite: a real sysroot built with the
//! real `ostree` CLI, "booted" in a private mount namespace, and this very
//! binary running inside it as an update agent would.

use std::process::Output;

use stagehand_testbed::{Commit, Machine, Testbed};

fn step(n: u32, text: &str) {
    println!("\n== {n}. {text}");
}

fn show(out: &Output) {
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("   | {line}");
    }
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        println!("   ! {line}");
    }
}

fn must(out: Output, what: &str) -> Result<Output, String> {
    show(&out);
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("demo step failed: {what} ({})", out.status))
    }
}

fn stagehand(m: &Machine<'_>, exe: &str, args: &[&str], what: &str) -> Result<Output, String> {
    let mut argv = vec![exe];
    argv.extend_from_slice(args);
    println!("   $ stagehand {}", args.join(" "));
    must(m.run(&argv), what)
}

/// Run the demo.
pub fn run(files: usize) -> Result<(), String> {
    if !is_root() {
        return Err("the demo needs root: it builds a sysroot and mount namespaces (run it with sudo, or as root)".into());
    }
    for tool in ["ostree", "unshare", "nsenter"] {
        if stagehand_testbed::which(tool).is_none() {
            return Err(format!(
                "the demo needs `{tool}`: apt-get install ostree util-linux"
            ));
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;

    step(
        1,
        "Build a throwaway sysroot and deploy version 1.0 (real `ostree admin deploy`)",
    );
    let mut tb = Testbed::new();
    if let Some(dir) = exe.parent() {
        tb.expose(dir);
    }
    println!("   sysroot: {}", tb.sysroot().display());
    let v1 = tb.commit(&Commit::new("1.0").files(files));
    tb.deploy(&v1);
    println!("   deployed 1.0 = {v1}");

    step(
        2,
        "Boot version 1.0 (mount namespace + chroot, /run/ostree-booted present)",
    );
    let m = tb.boot_default();
    let exe_in = m.host_path(&exe);
    stagehand(&m, &exe_in, &["status"], "status")?;

    step(3, "A person edits /etc before the update is prepared");
    m.sh("echo 'edited before staging' > /etc/demo-before");
    println!("   wrote /etc/demo-before");

    step(4, "The update agent stages version 2.0");
    let v2 = tb.commit(&Commit::new("2.0").files(files));
    println!("   new commit 2.0 = {v2}");
    stagehand(&m, &exe_in, &["stage", &v2], "stage")?;
    stagehand(&m, &exe_in, &["status"], "status")?;
    println!("   the real ostree CLI agrees:");
    must(m.run(&["ostree", "admin", "status"]), "ostree admin status")?;

    step(
        5,
        "A person edits /etc again, after staging (a full deploy would lose this)",
    );
    m.sh("echo 'edited after staging' > /etc/demo-after");
    println!("   wrote /etc/demo-after");

    step(
        6,
        "Shutdown: ostree-finalize-staged.service runs `ostree admin finalize-staged`",
    );
    must(m.finalize(), "finalize-staged")?;
    m.power_off();

    step(7, "Reboot into the new default deployment");
    let d = tb.deployments();
    let new = d.first().ok_or("no deployment after finalization")?;
    if new.checksum != v2 {
        return Err(format!(
            "the default deployment is {} instead of 2.0",
            new.name()
        ));
    }
    let m = tb.boot(new);
    stagehand(&m, &exe_in, &["status"], "status")?;

    step(8, "Both /etc edits survived the update");
    let etc = m.sh("cat /etc/demo-before /etc/demo-after; cat /etc/motd");
    for line in etc.lines() {
        println!("   | {line}");
    }
    if !(etc.contains("edited before staging")
        && etc.contains("edited after staging")
        && etc.contains("2.0"))
    {
        return Err("an /etc edit was lost".into());
    }

    step(
        9,
        "Health: assess the boot early, mark good after boot-complete.target",
    );
    stagehand(&m, &exe_in, &["assess"], "assess")?;
    stagehand(&m, &exe_in, &["mark-good"], "mark-good")?;
    stagehand(&m, &exe_in, &["status"], "status")?;
    m.power_off();
    println!("\nDemo complete: staged, finalized at shutdown, rebooted into 2.0, nothing in /etc was lost, and 2.0 is marked good.");
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
