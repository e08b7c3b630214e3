//! Pre-upgrade hooks on booted test-bed machines with the real bubblewrap:
//! pass, veto, timeout of a whole process tree, output floods, refused hook
//! files, what a hook sees, barriers, and an agent killed mid-hook.
//!
//! After every veto or failure the machine must look exactly as before:
//! `ostree admin status`, deployment directories, deployment refs, the
//! bootloader configuration, `/run/ostree` (no staged state, no finalization
//! lock) and `/run/stagehand` (no unvetted record).

mod common;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use stagehand::ErrorCode;
use stagehand_testbed::{Commit, Machine, Testbed};

const VENDOR: &str = "usr/lib/stagehand/pre-upgrade.d";

/// A commit shipping a vendor hook `name` (a shell script).
fn hook(c: Commit, name: &str, body: &str) -> Commit {
    c.file(
        &format!("{VENDOR}/{name}"),
        format!("#!/bin/sh\n{body}\n"),
        0o755,
    )
}

/// Install an admin hook in the booted system's /etc.
fn admin_hook(m: &Machine<'_>, name: &str, body: &str, mode: u32) {
    let script = format!("#!/bin/sh\n{body}\n");
    m.sh(&format!(
        "mkdir -p /etc/stagehand/pre-upgrade.d && cat > /etc/stagehand/pre-upgrade.d/{name} <<'EOF'\n{script}EOF\nchmod {mode:o} /etc/stagehand/pre-upgrade.d/{name}"
    ));
}

/// Everything staging could leave behind, from inside the machine.
fn full_snapshot(m: &Machine<'_>) -> String {
    m.sh("ostree admin status
         echo '--- deploy dirs'; ls /sysroot/ostree/deploy/*/deploy/
         echo '--- refs'; ostree refs --repo=/sysroot/ostree/repo | sort
         echo '--- boot'; readlink /boot/loader; ls /boot/loader/entries/ 2>/dev/null || true
         cat /boot/loader/syslinux.cfg
         echo '--- bootlinks'; ls /sysroot/ostree/ | grep boot || true
         echo '--- /run/ostree'; ls -A /run/ostree 2>/dev/null || true
         echo '--- /run/stagehand'; ls -A /run/stagehand 2>/dev/null || true")
}

#[track_caller]
fn assert_unchanged(m: &Machine<'_>, before: &str, what: &str) {
    let after = full_snapshot(m);
    assert_eq!(before, after, "{what} left something behind");
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// Host processes whose command line contains `needle`.
fn host_procs(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) {
            v.push((pid, cmd));
        }
    }
    v
}

#[track_caller]
fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Zombie processes anywhere in the machine (its /proc shows every PID
/// namespace nested in it, hooks' included).
fn zombies(m: &Machine<'_>) -> String {
    m.sh("for s in /proc/[0-9]*/stat; do read -r l < $s 2>/dev/null && case \"$l\" in *') Z '*) echo \"$l\";; esac; done; true")
}

/// Start `stagehand ARGS` inside the machine without waiting.
fn spawn_in(m: &Machine<'_>, args: &[&str]) -> Child {
    let exe = m.host_path(EXE);
    let mut argv = vec![exe.as_str()];
    argv.extend_from_slice(args);
    m.command(&argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn passing_hooks_run_in_lexical_order_across_vendor_and_admin() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(
        hook(
            hook(Commit::new("2.0"), "10-first", "echo ran 10-first"),
            "30-last",
            "echo ran 30-last",
        ),
        "20-overridden",
        "echo vendor 20 must not run; exit 1",
    ));
    let m = tb.boot_default();
    admin_hook(&m, "15-admin", "echo ran 15-admin", 0o755);
    admin_hook(&m, "20-overridden", "echo ran admin 20-overridden", 0o700);
    admin_hook(&m, ".hidden", "exit 1", 0o644);

    let out = sh_in(&m, &["-v", "stage", &v2]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let order: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split_once(": ran ").map(|(_, r)| r))
        .collect();
    assert_eq!(
        order,
        vec!["10-first", "15-admin", "admin 20-overridden", "30-last"],
        "{err}"
    );
    assert!(err.contains("admin hook /etc/stagehand/pre-upgrade.d/20-overridden replaces vendor hook /usr/lib/stagehand/pre-upgrade.d/20-overridden"), "{err}");

    // Vetted: staged, finalization unlocked, no unvetted record.
    let staged = m.staged().expect("staged");
    assert_eq!(staged.checksum, v2);
    let j = status_json(&m);
    assert_eq!(j["deployments"][0]["staged"], true);
    assert_eq!(j["deployments"][0]["unvetted"], false);
    assert_eq!(j["deployments"][0]["finalization_locked"], false);
    assert_eq!(m.sh("ls -A /run/stagehand 2>/dev/null || true"), "");
    m.shutdown();
    let d = tb.deployments();
    assert_eq!(d[0].checksum, v2);
    assert_eq!(d[1].checksum, sums[0]);
}

#[test]
fn a_veto_names_the_hook_and_its_output_and_leaves_nothing_behind() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let exits = tb.commit(&hook(
        hook(Commit::new("2.0"), "10-ok", "exit 0"),
        "20-refuse",
        "echo 'checking the database' ; echo 'cannot migrate schema 7' >&2; exit 3",
    ));
    let signals = tb.commit(&hook(
        Commit::new("2.1"),
        "50-crash",
        "echo dying; kill -ABRT $$",
    ));
    let no_interp = tb.commit(&Commit::new("2.2").file(
        &format!("{VENDOR}/60-python"),
        "#!/usr/bin/python3-not-in-this-image\nprint('hi')\n",
        0o755,
    ));
    let m = tb.boot_default();
    let before = full_snapshot(&m);

    let out = sh_in(&m, &["stage", &exits]);
    assert_fails(
        &out,
        ErrorCode::HookVetoed,
        "/usr/lib/stagehand/pre-upgrade.d/20-refuse",
    );
    let err = stderr(&out);
    assert!(err.contains("exit status 3"), "{err}");
    assert!(
        err.contains("checking the database") && err.contains("cannot migrate schema 7"),
        "{err}"
    );
    assert!(!err.contains("10-ok vetoed"), "{err}");
    assert_unchanged(&m, &before, "a hook exiting 3");

    let out = sh_in(&m, &["stage", &signals]);
    assert_fails(
        &out,
        ErrorCode::HookVetoed,
        "50-crash vetoed the update (killed by signal 6)",
    );
    assert!(stderr(&out).contains("dying"));
    assert_unchanged(&m, &before, "a hook killed by a signal");

    let out = sh_in(&m, &["stage", &no_interp]);
    assert_fails(
        &out,
        ErrorCode::HookVetoed,
        "60-python vetoed the update (could not be started",
    );
    assert!(
        stderr(&out).contains(
            "its interpreter /usr/bin/python3-not-in-this-image is not in the new deployment"
        ),
        "{}",
        stderr(&out)
    );
    assert_unchanged(&m, &before, "a hook that cannot start");

    // The real ostree CLI agrees nothing is staged, and a later staging works.
    assert!(m.staged().is_none());
    assert_eq!(zombies(&m), "");
}

#[test]
fn a_timeout_kills_the_whole_process_tree_even_children_ignoring_sigterm() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    // The forked child ignores SIGTERM (ignored signals stay ignored across
    // exec), and a grandchild daemonizes out of the hook's session.
    let v2 = tb.commit(&hook(
        Commit::new("2.0"),
        "10-hang",
        "(trap '' TERM; echo child ignores TERM; exec sleep 86401) &\n\
         (sh -c 'exec sleep 86402 </dev/null >/dev/null 2>&1' &) \n\
         echo hook waiting\n\
         exec sleep 86403",
    ));
    let m = tb.boot_default();
    let before = full_snapshot(&m);
    let started = Instant::now();
    let child = spawn_in(&m, &["stage", &v2, "--hook-timeout", "3"]);
    // While it runs, the whole tree exists (as seen from the host)...
    wait_for("the hook's processes", Duration::from_secs(30), || {
        ["sleep 86401", "sleep 86402", "sleep 86403"]
            .iter()
            .all(|n| !host_procs(n).is_empty())
    });
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the timeout did not fire"
    );
    assert_fails(
        &out,
        ErrorCode::HookVetoed,
        "10-hang vetoed the update (timed out after 3s)",
    );
    let err = stderr(&out);
    assert!(
        err.contains("child ignores TERM") && err.contains("hook waiting"),
        "{err}"
    );
    // ...and when stagehand returns, none of it is left: no process, no zombie.
    for n in ["sleep 86401", "sleep 86402", "sleep 86403"] {
        assert_eq!(host_procs(n), vec![], "{n} survived the timeout");
    }
    assert_eq!(host_procs("pre-upgrade.d/10-hang"), vec![]);
    assert_eq!(zombies(&m), "");
    assert_unchanged(&m, &before, "a timed-out hook");
}

#[test]
fn a_hook_flooding_output_keeps_only_a_bounded_tail() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    // 96 MiB without a newline, then a last line.
    let v2 = tb.commit(&hook(
        Commit::new("2.0"),
        "10-flood",
        "echo FIRST-LINE\nhead -c 100663296 /dev/zero | tr '\\0' x\necho\necho LAST-LINE >&2\nexit 4",
    ));
    let m = tb.boot_default();
    let before = full_snapshot(&m);
    // Run through wait4 to learn the peak memory of the agent.
    let exe = m.host_path(EXE);
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, for its rusage
    let child = m
        .command(&[exe.as_str(), "stage", &v2])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stderr_pipe = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut stderr_pipe, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let err = String::from_utf8(reader.join().unwrap()).unwrap();
    assert_eq!(
        libc::WEXITSTATUS(status),
        exit_for(ErrorCode::HookVetoed),
        "{err}"
    );
    assert!(
        err.contains("10-flood vetoed the update (exit status 4)"),
        "{err}"
    );
    assert!(err.contains("LAST-LINE"), "{err}");
    assert!(
        !err.contains("FIRST-LINE"),
        "the head of the output was kept"
    );
    assert!(
        err.len() < 2 * stagehand::hooks::OUTPUT_TAIL_LIMIT,
        "{} bytes of error for a tail of {}",
        err.len(),
        stagehand::hooks::OUTPUT_TAIL_LIMIT
    );
    // ru_maxrss (KiB) of the largest process in the tree (nsenter, the agent,
    // bwrap, head, tr): far below the 96 MiB that went through the pipe.
    assert!(
        usage.ru_maxrss < 48 * 1024,
        "peak RSS {} KiB: the output was buffered",
        usage.ru_maxrss
    );
    assert_unchanged(&m, &before, "a flooding hook");
}

#[test]
fn bad_hook_files_refuse_the_update_naming_the_file() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let ok = "usr/lib/stagehand/pre-upgrade.d/10-ok";
    let cases: Vec<(Commit, &str, &str)> = vec![
        (
            Commit::new("2.0").file(ok, "#!/bin/sh\n", 0o755).file(
                &format!("{VENDOR}/20-noexec"),
                "#!/bin/sh\nexit 0\n",
                0o644,
            ),
            "/usr/lib/stagehand/pre-upgrade.d/20-noexec: the hook is not executable (mode 0644)",
            "non-executable",
        ),
        (
            Commit::new("2.1")
                .file(ok, "#!/bin/sh\n", 0o755)
                .symlink(&format!("{VENDOR}/20-escape"), "../../../../../../../../run/testbed/host/usr/bin/true"),
            "/usr/lib/stagehand/pre-upgrade.d/20-escape: is a symlink (to ../../../../../../../../run/testbed/host/usr/bin/true)",
            "symlink out of the root",
        ),
        (
            Commit::new("2.2")
                .file(ok, "#!/bin/sh\n", 0o755)
                .symlink(&format!("{VENDOR}/20-abs"), "/usr/bin/true"),
            "/usr/lib/stagehand/pre-upgrade.d/20-abs: is a symlink (to /usr/bin/true)",
            "absolute symlink",
        ),
        (
            Commit::new("2.3").file(ok, "#!/bin/sh\n", 0o755).file(
                &format!("{VENDOR}/20-worldw"),
                "#!/bin/sh\nexit 0\n",
                0o757,
            ),
            "/usr/lib/stagehand/pre-upgrade.d/20-worldw: the hook is writable by group or others (mode 0757)",
            "world-writable",
        ),
        (
            Commit::new("2.4").file(ok, "#!/bin/sh\n", 0o755).file_owned(
                &format!("{VENDOR}/20-user"),
                "#!/bin/sh\nexit 0\n",
                0o755,
                1000,
            ),
            "/usr/lib/stagehand/pre-upgrade.d/20-user: the hook is owned by uid 1000, not root",
            "not owned by root",
        ),
        (
            Commit::new("2.5")
                .dir("usr/lib/stagehand", 0o777)
                .file(ok, "#!/bin/sh\n", 0o755),
            "/usr/lib/stagehand: the directory is writable by group or others (mode 0777)",
            "world-writable hook directory",
        ),
    ];
    let sums: Vec<String> = cases.iter().map(|(c, _, _)| tb.commit(c)).collect();
    let m = tb.boot_default();
    let before = full_snapshot(&m);
    for ((_, needle, what), sum) in cases.iter().zip(&sums) {
        let out = sh_in(&m, &["stage", sum]);
        assert_fails(&out, ErrorCode::HookInvalid, needle);
        assert!(
            stderr(&out).contains("refusing pre-upgrade hook /ostree/deploy/testos/deploy/"),
            "{what}: the error names the file where it is: {}",
            stderr(&out)
        );
        assert_unchanged(&m, &before, what);
    }

    // The admin's hooks in the booted /etc obey the same rules.
    let good = tb.commit(&Commit::new("3.0").file(ok, "#!/bin/sh\n", 0o755));
    admin_hook(&m, "50-local", "exit 0", 0o777);
    let out = sh_in(&m, &["stage", &good]);
    assert_fails(
        &out,
        ErrorCode::HookInvalid,
        "/etc/stagehand/pre-upgrade.d/50-local: the hook is writable by group or others (mode 0777)",
    );
    assert_unchanged(&m, &before, "a world-writable admin hook");
    m.sh("chmod 755 /etc/stagehand/pre-upgrade.d/50-local");
    ok_in(&m, &["stage", &good]);
    assert_eq!(m.staged().unwrap().checksum, good);
}

#[test]
fn hooks_see_the_booted_and_new_roots_read_only_and_a_clean_environment() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let probe = r#"echo "old=$(cat "$STAGEHAND_OLD_ROOT/etc/site-id")"
echo "new=$(cat /usr/share/new-data)"
echo "etc=$(cat /etc/motd)"
echo "var=$(cat /var/lib/app/schema)"
echo "oldvar=$(cat "$STAGEHAND_OLD_ROOT/var/lib/app/schema")"
for p in /etc/x /usr/x /var/x "$STAGEHAND_OLD_ROOT/etc/x" "$STAGEHAND_OLD_ROOT/var/x" /tmp/x /run/x /var/tmp/x; do
  if touch "$p" 2>/dev/null; then echo "writable $p"; else echo "read-only $p"; fi
done
echo "pid=$$"
while read -r k v; do case $k in NoNewPrivs:|CapEff:) echo "$k $v";; esac; done < /proc/self/status
cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | while read -r i; do echo "iface $i"; done
env | sort | while IFS= read -r l; do echo "env $l"; done
"#;
    let v2 = tb.commit(&hook(Commit::new("2.0"), "10-probe", probe).file(
        "usr/share/new-data",
        "shipped in 2.0\n",
        0o644,
    ));
    let mut m = tb.boot_default();
    m.sh("echo site-42 > /etc/site-id; mkdir -p /var/lib/app; echo schema-7 > /var/lib/app/schema");
    m.setenv("LEAKY_SECRET", "from the agent");
    let before = full_snapshot(&m);

    // The dry run reports the output of passing hooks too.
    let out = sh_in(&m, &["hooks", "check", &v2, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["passed"], true);
    assert_eq!(r["checksum"], v2.as_str());
    assert_eq!(r["version"], "2.0");
    assert_eq!(r["old_version"], "1.0");
    let h = &r["hooks"][0];
    assert_eq!(h["path"], "/usr/lib/stagehand/pre-upgrade.d/10-probe");
    assert_eq!(h["origin"], "vendor");
    let tail = h["output_tail"].as_str().unwrap();
    for want in [
        "old=site-42",
        "new=shipped in 2.0",
        // /etc is the new image's default configuration.
        "etc=Testbed OS 2.0",
        "var=schema-7",
        "oldvar=schema-7",
        "read-only /etc/x",
        "read-only /usr/x",
        "read-only /var/x",
        "read-only /run/stagehand/old/etc/x",
        "read-only /run/stagehand/old/var/x",
        "writable /tmp/x",
        "writable /run/x",
        "writable /var/tmp/x",
        // PID 1 is bwrap's init: the hook is in its own PID namespace.
        "pid=2",
        // Only CAP_CHOWN..CAP_SETUID (bits 0-7), and no way to gain more.
        "CapEff: 00000000000000ff",
        "NoNewPrivs: 1",
    ] {
        assert!(tail.lines().any(|l| l == want), "{want:?} not in:\n{tail}");
    }
    let ifaces: Vec<&str> = tail
        .lines()
        .filter_map(|l| l.strip_prefix("iface "))
        .collect();
    assert_eq!(ifaces, vec!["lo"], "no network but loopback:\n{tail}");
    let env: Vec<&str> = tail
        .lines()
        .filter_map(|l| l.strip_prefix("env "))
        .map(|l| l.split('=').next().unwrap())
        .collect();
    let documented = [
        "PATH",
        "STAGEHAND_HOOK_API",
        "STAGEHAND_HOOK",
        "STAGEHAND_HOOK_ORIGIN",
        "STAGEHAND_STATEROOT",
        "STAGEHAND_NEW_ROOT",
        "STAGEHAND_NEW_CHECKSUM",
        "STAGEHAND_NEW_VERSION",
        "STAGEHAND_NEW_DEPLOYMENT",
        "STAGEHAND_OLD_ROOT",
        "STAGEHAND_OLD_CHECKSUM",
        "STAGEHAND_OLD_VERSION",
        "STAGEHAND_OLD_DEPLOYMENT",
        // Set by the shell itself.
        "PWD",
    ];
    for k in &env {
        assert!(
            documented.contains(k),
            "undocumented variable {k} in the hook's environment:\n{tail}"
        );
    }
    for k in &documented[..documented.len() - 1] {
        assert!(env.contains(k), "{k} missing:\n{tail}");
    }
    for (k, v) in [
        ("STAGEHAND_OLD_CHECKSUM", sums[0].as_str()),
        ("STAGEHAND_NEW_CHECKSUM", v2.as_str()),
        ("STAGEHAND_OLD_VERSION", "1.0"),
        ("STAGEHAND_NEW_VERSION", "2.0"),
        ("STAGEHAND_STATEROOT", "testos"),
        ("STAGEHAND_OLD_ROOT", "/run/stagehand/old"),
        ("STAGEHAND_NEW_ROOT", "/"),
        ("STAGEHAND_HOOK_ORIGIN", "vendor"),
    ] {
        let line = format!("env {k}={v}");
        assert!(tail.lines().any(|l| l == line), "{line:?} not in:\n{tail}");
    }
    // Nothing a hook tried to write reached the booted system, and the
    // dry run left no deployment behind.
    assert_eq!(m.sh("ls /etc/x /var/x 2>/dev/null || true"), "");
    assert_unchanged(&m, &before, "hooks check");

    // Staging runs the same hook and logs its output (with -v).
    let out = sh_in(&m, &["-v", "stage", &v2]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("10-probe: old=site-42"),
        "{}",
        stderr(&out)
    );
    assert_eq!(m.staged().unwrap().checksum, v2);
}

#[test]
fn a_barrier_hook_refuses_upgrades_from_versions_too_old() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let barrier = r#"min=1.5
oldest=$(printf '%s\n%s\n' "$min" "$STAGEHAND_OLD_VERSION" | sort -V | head -n 1)
if [ "$oldest" != "$min" ]; then
  echo "cannot upgrade from $STAGEHAND_OLD_VERSION to $STAGEHAND_NEW_VERSION: update to $min first" >&2
  exit 1
fi"#;
    let v2 = tb.commit(&hook(Commit::new("2.0"), "00-barrier", barrier));
    let v15 = tb.commit(&Commit::new("1.5"));
    let m = tb.boot_default();
    let before = full_snapshot(&m);
    let out = sh_in(&m, &["stage", &v2]);
    assert_fails(
        &out,
        ErrorCode::HookVetoed,
        "cannot upgrade from 1.0 to 2.0: update to 1.5 first",
    );
    assert_unchanged(&m, &before, "the barrier");
    // The way through the barrier: 1.5 first, then 2.0.
    ok_in(&m, &["stage", &v15]);
    m.shutdown();
    let d = tb.deployments();
    assert_eq!(d[0].version.as_deref(), Some("1.5"));
    let m = tb.boot(&d[0]);
    ok_in(&m, &["stage", &v2]);
    assert_eq!(m.staged().unwrap().checksum, v2);
    m.shutdown();
    assert_eq!(tb.deployments()[0].version.as_deref(), Some("2.0"));
}

/// Kill the `stagehand stage` running inside the machine while its hook
/// runs (the hook prints nothing and sleeps with `token` in its command line).
fn kill_agent_mid_hook(m: &Machine<'_>, rev: &str, token: &str) {
    let child = spawn_in(m, &["stage", rev]);
    wait_for("the hook to run", Duration::from_secs(30), || {
        !host_procs(token).is_empty()
    });
    let exe = m.host_path(EXE);
    let agents: Vec<(i32, String)> = host_procs(&format!("{exe} stage {rev}"))
        .into_iter()
        .filter(|(_, cmd)| cmd.starts_with(&exe))
        .collect();
    assert_eq!(agents.len(), 1, "{agents:?}");
    // SAFETY: plain kill(2) of the agent process found above.
    assert_eq!(unsafe { libc::kill(agents[0].0, libc::SIGKILL) }, 0);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    // The hook dies with its agent (bwrap --die-with-parent).
    wait_for(
        "the hook to die with the agent",
        Duration::from_secs(10),
        || host_procs(token).is_empty(),
    );
}

#[test]
fn an_agent_killed_mid_hook_never_finalizes_and_is_recovered() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(Commit::new("2.0"), "10-slow", "exec sleep 86404"));
    let v3 = tb.commit(&Commit::new("3.0"));
    let m = tb.boot_default();
    let before = full_snapshot(&m);

    kill_agent_mid_hook(&m, &v2, "sleep 86404");
    // Staged, but locked and marked unvetted.
    let staged = m.staged().expect("the deployment is staged");
    assert_eq!(staged.checksum, v2);
    let j = status_json(&m);
    assert_eq!(j["deployments"][0]["staged"], true);
    assert_eq!(j["deployments"][0]["unvetted"], true, "{j}");
    assert_eq!(j["deployments"][0]["finalization_locked"], true, "{j}");
    assert!(ok_in(&m, &["status"]).contains("(staged, finalization locked, unvetted)"));
    // A shutdown now does not finalize it.
    let boot_before = m.sh("cat /boot/loader/syslinux.cfg");
    let fin = m.finalize();
    assert!(fin.status.success(), "{}", stderr(&fin));
    assert_eq!(m.staged().map(|d| d.checksum), Some(v2.clone()));
    assert_eq!(m.sh("cat /boot/loader/syslinux.cfg"), boot_before);
    assert_eq!(tb.deployments()[0].checksum, sums[0], "finalized on disk");

    // Nobody may unlock it into the next shutdown while it is unvetted.
    assert_fails(
        &sh_in(&m, &["finalization", "unlock"]),
        ErrorCode::Interrupted,
        "hooks recover",
    );
    assert!(m
        .run(&["test", "-e", "/run/ostree/staged-deployment-locked"])
        .status
        .success());
    // Explicit recovery removes it and everything that came with it.
    let out = ok_in(&m, &["hooks", "recover"]);
    assert!(
        out.contains("removed unvetted staged deployment testos:"),
        "{out}"
    );
    assert_unchanged(&m, &before, "recovery");
    assert_eq!(ok_in(&m, &["hooks", "recover"]), "nothing to recover\n");

    // Again, and this time the next staging cleans up by itself.
    kill_agent_mid_hook(&m, &v2, "sleep 86404");
    assert_eq!(status_json(&m)["deployments"][0]["unvetted"], true);
    let out = sh_in(&m, &["stage", &v3]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its pre-upgrade hooks never completed"),
        "{}",
        stderr(&out)
    );
    let j = status_json(&m);
    assert_eq!(j["deployments"][0]["checksum"], v3.as_str());
    assert_eq!(j["deployments"][0]["unvetted"], false);
    assert_eq!(j["deployments"][0]["finalization_locked"], false);
    assert_eq!(
        m.sh("ls /sysroot/ostree/deploy/testos/deploy/ | grep -c origin"),
        "2\n"
    );
    assert_eq!(zombies(&m), "");
    m.shutdown();
    assert_eq!(tb.deployments()[0].checksum, v3);
}

#[test]
fn a_shutdown_while_hooks_run_does_not_finalize() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(
        Commit::new("2.0"),
        "10-slow-veto",
        "sleep 5.14159; echo 'not this one'; exit 1",
    ));
    let m = tb.boot_default();
    let before = full_snapshot(&m);
    let child = spawn_in(&m, &["stage", &v2]);
    wait_for("the hook to run", Duration::from_secs(30), || {
        !host_procs("sleep 5.14159").is_empty()
    });
    // Meanwhile: staged, unvetted, locked.
    let j = status_json(&m);
    assert_eq!(j["deployments"][0]["unvetted"], true, "{j}");
    assert_eq!(j["deployments"][0]["finalization_locked"], true, "{j}");
    // ostree-finalize-staged.service's ExecStop runs now (it waits for the
    // sysroot lock the agent holds, then finds nothing left to finalize).
    let fin = m.finalize();
    assert!(fin.status.success(), "{}", stderr(&fin));
    let out = child.wait_with_output().unwrap();
    assert_fails(&out, ErrorCode::HookVetoed, "not this one");
    assert_unchanged(&m, &before, "a veto during shutdown");
    drop(m);
    assert_eq!(tb.deployments().len(), 1);
}

#[test]
fn on_a_sysroot_that_is_not_booted_a_veto_writes_nothing() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let veto = tb.commit(&hook(
        Commit::new("2.0"),
        "10-check",
        "echo \"old root says: $(cat $STAGEHAND_OLD_ROOT/etc/motd)\"; exit 5",
    ));
    let dirs = tb.deployment_dirs();
    let deployments = tb.deployments();
    let cfg = std::fs::read_to_string(tb.sysroot().join("boot/loader/syslinux.cfg")).unwrap();
    let out = host(&tb, &["stage", &veto]);
    // The old root of a sysroot that is not booted is the merge deployment.
    assert_fails(&out, ErrorCode::HookVetoed, "old root says: Testbed OS 1.0");
    assert_eq!(tb.deployment_dirs(), dirs);
    assert_eq!(tb.deployments(), deployments);
    assert_eq!(
        std::fs::read_to_string(tb.sysroot().join("boot/loader/syslinux.cfg")).unwrap(),
        cfg
    );

    let pass = tb.commit(&hook(Commit::new("2.1"), "10-check", "exit 0"));
    let out = host(&tb, &["stage", &pass]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = tb.deployments();
    assert_eq!(d[0].checksum, pass);
    assert_eq!(d[1].checksum, sums[0]);
}

#[test]
fn hooks_check_is_a_dry_run_that_reports_every_hook() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(
        hook(
            hook(Commit::new("2.0"), "10-pass", "echo fine"),
            "20-veto",
            "echo 'no way' >&2; exit 2",
        ),
        "30-pass",
        "echo also fine",
    ));
    let plain = tb.commit(&Commit::new("2.1"));
    let m = tb.boot_default();
    // A staged (and locked) deployment must come through a dry run untouched.
    ok_in(&m, &["stage", &plain, "--lock-finalization"]);
    let before = full_snapshot(&m);
    let out = sh_in(&m, &["hooks", "check", &v2]);
    assert_fails(
        &out,
        ErrorCode::HookVetoed,
        "20-veto vetoed the update (exit status 2)",
    );
    let report = text(&out.stdout);
    assert!(
        report.contains("pass  /usr/lib/stagehand/pre-upgrade.d/10-pass (vendor"),
        "{report}"
    );
    assert!(
        report.contains("VETO  /usr/lib/stagehand/pre-upgrade.d/20-veto (vendor): exit status 2"),
        "{report}"
    );
    assert!(report.contains("| no way"), "{report}");
    // Every hook runs in a dry run, also after a veto.
    assert!(
        report.contains("pass  /usr/lib/stagehand/pre-upgrade.d/30-pass"),
        "{report}"
    );
    assert!(report.contains("the update would be vetoed"), "{report}");
    assert_unchanged(&m, &before, "hooks check (veto)");

    let out = sh_in(&m, &["hooks", "check", &v2, "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["passed"], false);
    let hooks = r["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 3);
    assert_eq!(hooks[1]["end"]["exit-code"], 2);
    assert_eq!(hooks[1]["end"]["text"], "exit status 2");
    assert_eq!(hooks[0]["end"], serde_json::Value::Null);

    let out = ok_in(&m, &["hooks", "check", &plain]);
    assert!(out.contains("no pre-upgrade hooks; it would pass"), "{out}");
    assert_unchanged(&m, &before, "hooks check (pass)");
    let j = status_json(&m);
    assert_eq!(j["deployments"][0]["checksum"], plain.as_str());
    assert_eq!(j["deployments"][0]["finalization_locked"], true);
}

#[test]
fn passing_hooks_keep_finalization_locked_when_asked() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(Commit::new("2.0"), "10-ok", "exit 0"));
    let m = tb.boot_default();
    let out = ok_in(&m, &["stage", &v2, "--lock-finalization", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["finalization_locked"], true);
    let j = status_json(&m);
    assert_eq!(j["deployments"][0]["unvetted"], false);
    assert_eq!(j["deployments"][0]["finalization_locked"], true);
    // Locked means a shutdown leaves it staged.
    assert!(m.finalize().status.success());
    assert_eq!(m.staged().unwrap().checksum, v2);
    // ...and recovery leaves a vetted deployment alone.
    assert_eq!(ok_in(&m, &["hooks", "recover"]), "nothing to recover\n");
    assert_eq!(m.staged().unwrap().checksum, v2);
}

#[test]
fn recovery_after_a_crash_before_anything_was_staged() {
    // What an agent killed between recording "unvetted" (and locking
    // finalization) and the end of `stage_tree` leaves: the record, the lock,
    // and nothing staged.
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let m = tb.boot_default();
    let before = full_snapshot(&m);
    let record = |preexisting: bool| {
        m.sh(&format!(
            "mkdir -p /run/stagehand /run/ostree && touch /run/ostree/staged-deployment-locked && \
             echo '{{\"stateroot\":\"testos\",\"checksum\":\"{v2}\",\"serial\":null,\"lock_preexisting\":{preexisting},\"pid\":4242}}' > /run/stagehand/unvetted"
        ));
    };
    record(false);
    assert_eq!(
        ok_in(&m, &["hooks", "recover"]),
        "dropped a stale unvetted record; nothing was staged unvetted\n"
    );
    assert_unchanged(&m, &before, "recovery of a stale record");

    // A lock that was there before the crashed staging is the admin's: kept.
    record(true);
    ok_in(&m, &["hooks", "recover"]);
    assert_eq!(
        m.sh("ls -A /run/stagehand; ls -A /run/ostree"),
        "staged-deployment-locked\n"
    );
    m.sh("rm /run/ostree/staged-deployment-locked");

    // A torn record makes a staged deployment count as unvetted (never as
    // vetted), and the next staging replaces it.
    ok_in(&m, &["stage", &sums[0], "--no-hooks", "--karg", "x=1"]);
    m.sh("printf '{\"stateroot\":' > /run/stagehand/unvetted");
    assert_eq!(status_json(&m)["deployments"][0]["unvetted"], true);
    let out = ok_in(&m, &["hooks", "recover"]);
    assert!(
        out.starts_with("removed unvetted staged deployment"),
        "{out}"
    );
    assert_unchanged(&m, &before, "recovery of a torn record");
}

#[test]
fn no_hooks_skips_them_and_says_so() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(Commit::new("2.0"), "10-veto", "exit 1"));
    let m = tb.boot_default();
    let out = sh_in(&m, &["stage", &v2, "--no-hooks"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: pre-upgrade hooks are disabled"),
        "{}",
        stderr(&out)
    );
    assert_eq!(m.staged().unwrap().checksum, v2);
    assert_eq!(status_json(&m)["deployments"][0]["unvetted"], false);
}

#[test]
fn a_zero_timeout_is_refused() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&hook(Commit::new("2.0"), "10-ok", "exit 0"));
    let m = tb.boot_default();
    let before = full_snapshot(&m);
    let out = sh_in(&m, &["stage", &v2, "--hook-timeout", "0"]);
    assert_fails(
        &out,
        ErrorCode::InvalidArgument,
        "hook timeout must be longer than zero",
    );
    assert_unchanged(&m, &before, "a zero timeout");
}

/// `stagehand ARGS` inside `m` with every `pidfd_open` failing ENOSYS, as on
/// a kernel before 5.3 (RHEL 8's 4.18) or under valgrind; strace's log of the
/// injections is returned with the output.
fn without_pidfd(m: &Machine<'_>, args: &[&str]) -> (Output, String) {
    let exe = m.host_path(EXE);
    let mut argv = vec![
        "strace",
        "-qq",
        "-o",
        "/tmp/pidfd.log",
        "-e",
        "trace=pidfd_open",
        "-e",
        "inject=pidfd_open:error=ENOSYS",
        exe.as_str(),
    ];
    argv.extend_from_slice(args);
    let out = m.run(&argv);
    (out, m.sh("cat /tmp/pidfd.log"))
}

#[test]
fn without_pidfd_open_hooks_pass_veto_and_time_out_the_same() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let refuse = tb.commit(&hook(
        Commit::new("2.0"),
        "20-refuse",
        "echo 'cannot migrate schema 7' >&2; exit 3",
    ));
    let hang = tb.commit(&hook(
        Commit::new("2.1"),
        "10-hang",
        "(trap '' TERM; exec sleep 86411) &\necho hook waiting\nexec sleep 86412",
    ));
    let pass = tb.commit(&hook(Commit::new("2.2"), "10-ok", "echo all fine"));
    let m = tb.boot_default();
    let before = full_snapshot(&m);

    // A veto: reported with the hook's status and output, nothing left.
    let (out, log) = without_pidfd(&m, &["stage", &refuse]);
    assert!(
        log.contains("pidfd_open(") && log.contains("ENOSYS") && log.contains("INJECTED"),
        "the fault was not injected:\n{log}"
    );
    assert_fails(&out, ErrorCode::HookVetoed, "20-refuse");
    let err = stderr(&out);
    assert!(
        err.contains("exit status 3") && err.contains("cannot migrate schema 7"),
        "{err}"
    );
    assert_unchanged(&m, &before, "a veto without pidfd_open");

    // A timeout still kills the whole tree, a child ignoring SIGTERM too.
    let (out, _) = without_pidfd(&m, &["stage", &hang, "--hook-timeout", "2"]);
    assert_fails(
        &out,
        ErrorCode::HookVetoed,
        "10-hang vetoed the update (timed out after 2s)",
    );
    assert!(stderr(&out).contains("hook waiting"), "{}", stderr(&out));
    for n in ["sleep 86411", "sleep 86412"] {
        assert_eq!(host_procs(n), vec![], "{n} survived the timeout");
    }
    assert_eq!(zombies(&m), "", "zombies left");
    assert_unchanged(&m, &before, "a timeout without pidfd_open");

    // A passing hook: staged and vetted.
    let (out, log) = without_pidfd(&m, &["stage", &pass]);
    assert!(log.contains("INJECTED"), "{log}");
    assert!(out.status.success(), "{}", stderr(&out));
    let j = status_json(&m);
    let staged: Vec<&serde_json::Value> = j["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["staged"] == true)
        .collect();
    assert_eq!(staged.len(), 1, "{j}");
    assert_eq!(staged[0]["checksum"], pass.as_str());
    assert_eq!(staged[0]["unvetted"], false);
}
