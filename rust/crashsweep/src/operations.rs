//! The catalogue: every state-changing operation of stagehand, each with the
//! start state it is swept from.
//!
//! Each start state is a real sysroot built by the test bed with the real
//! `ostree` CLI; operations that run on a booted system start on a booted
//! machine. The names are what `--ops` takes and what the table prints.

use std::path::PathBuf;
use std::process::Command;

use stagehand_testbed::{Commit, Machine, Testbed};

use crate::{exit_for, text, Stagehand};

/// A 64-hex digest for the guard's steps.
const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The guard's stamp directory inside the machine.
pub(crate) const GUARD_DIR: &str = "/var/lib/stagehand/guard";

/// One command line run inside the machine; a word `@` is the stagehand binary.
pub(crate) type Argv = Vec<String>;

fn argv(words: &[&str]) -> Argv {
    words.iter().map(|s| s.to_string()).collect()
}

/// An operation to sweep, from a start state.
pub(crate) struct Op {
    /// The name in the table.
    pub name: &'static str,
    /// The start state, said in a few words (docs and `--list`).
    pub start: &'static str,
    /// The start sysroot (saved and restored before every run).
    pub tb: Testbed,
    /// Which deployment (checksum) the machine boots.
    pub boot: String,
    /// Commands that rebuild the start state's `/run` after each boot
    /// (a staged deployment lives there).
    pub prep: Vec<Argv>,
    /// The operation.
    pub args: Argv,
    /// Exit statuses besides 0 a re-run may end with, having done nothing
    /// because the interrupted run already finished (the guard refuses to
    /// begin a step twice: that is its point).
    pub rerun_codes: Vec<i32>,
    /// A commit whose deployment serial may differ after an interrupted
    /// run (a killed checkout leaves an orphan, the next staging takes the
    /// next serial).
    pub any_serial: Option<String>,
    /// A `+reboot` row: after each kill the machine loses power and boots
    /// again instead of running the operation again in the same boot.
    pub reboot: Option<Reboot>,
}

/// How the boots after a power cut go, for a `+reboot` row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reboot {
    /// Whether the booted deployment passes its health check (so mark-good
    /// runs when it is on trial). What the uninterrupted run's end state
    /// implies: false for the rows whose operation fails the update
    /// (`mark-bad`, `health-deadline`): the failure it reacted to recurs.
    pub healthy: bool,
}

/// The suffix of the rows that reboot after each kill.
pub(crate) const REBOOT_SUFFIX: &str = "+reboot";

/// The operations with a `+reboot` row, and whether the boots after the
/// power cut are healthy ([`Reboot::healthy`]).
const REBOOT_ROWS: &[(&str, bool)] = &[
    ("finalize-stamp", true),
    ("autocleanup", true),
    ("assess", true),
    ("mark-good", true),
    ("mark-bad", false),
    ("mark-bad-finalized", false),
    ("health-deadline", false),
    ("boot-units", true),
];

/// The names and start states of every operation, in sweep order.
pub const OPERATIONS: &[(&str, &str)] = &[
    (
        "stage",
        "v1, v2 deployed, v2 booted; v3 has a vendor pre-upgrade hook (run in bubblewrap)",
    ),
    ("unstage", "v3 staged and vetted"),
    (
        "hooks-recover",
        "the agent killed while v4's pre-upgrade hook ran: v4 staged, locked, unvetted",
    ),
    ("finalization-lock", "v3 staged"),
    ("finalization-unlock", "v3 staged, finalization locked"),
    (
        "finalize-record",
        "v3 staged (the shutdown unit's record, before finalization)",
    ),
    (
        "finalize-stamp",
        "v3 staged, recorded, finalized by `ostree admin finalize-staged`",
    ),
    ("guard-begin", "no guard stamp"),
    ("guard-commit", "guard step begun"),
    (
        "grubenv-arm",
        "a GRUB environment block made by `grub-editenv create`",
    ),
    ("grubenv-bless", "the block armed"),
    (
        "bls-bless",
        "v2 booted from a counted BLS entry (`ostree-2-…+1-2.conf`)",
    ),
    (
        "bls-disarm",
        "v2 booted, its BLS entry counted (`…+0-3.conf`)",
    ),
    ("autocleanup", "booted into v3 after a stamped finalization"),
    ("autocleanup-retention", "v3 marked good (trial over): the retention mark-good deferred (two pins released, v1 stamped and dropped), then the prune"),
    ("assess", "booted into v3, on trial"),
    (
        "assess-fallback",
        "v3 finalized and on trial, v2 booted by the bootloader's fallback",
    ),
    ("mark-good", "v3 on trial, assessed"),
    ("mark-bad", "v3 on trial, assessed"),
    ("mark-bad-finalized", "v3 finalized with the GRUB counter armed for it, v2 still booted (no reboot yet): v3 marked bad"),
    (
        "health-deadline",
        "v3 on trial, assessed; the deadline passes (`--now`)",
    ),
    ("denylist-remove", "v3 marked bad (its commit denylisted)"),
    ("health-reset", "v3 marked bad"),
    (
        "boot-units",
        "booted into v3: assess, mark-good, autocleanup in a row (the boot's units)",
    ),
    (
        "finalize-stamp+reboot",
        "as `finalize-stamp`; each kill is a power cut, then boots into v3 (healthy)",
    ),
    (
        "autocleanup+reboot",
        "as `autocleanup`; each kill is a power cut, then boots (healthy)",
    ),
    (
        "assess+reboot",
        "as `assess`; each kill is a power cut, then boots (healthy: v3 passes its trial)",
    ),
    (
        "mark-good+reboot",
        "as `mark-good`; each kill is a power cut, then boots (healthy)",
    ),
    (
        "mark-bad+reboot",
        "as `mark-bad`; each kill is a power cut, then boots (v3 fails again)",
    ),
    (
        "mark-bad-finalized+reboot",
        "as `mark-bad-finalized`; each kill is a power cut, then GRUB boots (v3 fails)",
    ),
    (
        "health-deadline+reboot",
        "as `health-deadline`; each kill is a power cut, then boots (v3 fails again)",
    ),
    (
        "boot-units+reboot",
        "as `boot-units`; each kill is a power cut, then the next boot's units run (healthy)",
    ),
];

/// `[v1, v2]` deployed, v2 booted; v3 committed with a vendor pre-upgrade
/// hook, so staging it runs the hook in its sandbox; an empty guard
/// directory and a GRUB environment block.
fn base() -> (Testbed, Vec<String>) {
    let (tb, mut sums) = Testbed::with_deployments(&["1.0", "2.0"]);
    let v3 = tb.commit(&Commit::new("3.0").file(
        "usr/lib/stagehand/pre-upgrade.d/10-check",
        "#!/bin/sh\ntest -d \"$STAGEHAND_OLD_ROOT\"\n",
        0o755,
    ));
    sums.push(v3);
    std::fs::create_dir_all(guard_dir(&tb)).unwrap();
    // A GRUB environment block, made by GRUB's own tool.
    let env = grubenv(&tb);
    std::fs::create_dir_all(env.parent().unwrap()).unwrap();
    let out = Command::new("grub-editenv")
        .arg(&env)
        .arg("create")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (tb, sums)
}

/// The GRUB environment block, `/boot/grub2/grubenv` in the machine.
pub(crate) fn grubenv(tb: &Testbed) -> PathBuf {
    tb.sysroot().join("boot/grub2/grubenv")
}

/// The guard directory of the stateroot, seen from the host.
pub(crate) fn guard_dir(tb: &Testbed) -> PathBuf {
    tb.sysroot()
        .join("ostree/deploy")
        .join(tb.stateroot())
        .join("var")
        .join(GUARD_DIR.trim_start_matches("/var/"))
}

/// v3 staged from v2 with its record, finalized at shutdown with the cleanup
/// stamp, then booted (not yet assessed).
fn booted_into_v3(sh: &Stagehand) -> (Testbed, Vec<String>) {
    let (tb, sums) = base();
    let m = tb.boot_default();
    sh.ok(&m, &["stage", &sums[2]]);
    sh.ok(&m, &["finalize-stamp", "--record"]);
    assert!(m.finalize().status.success());
    sh.ok(&m, &["finalize-stamp"]);
    m.power_off();
    assert_eq!(tb.deployments()[0].checksum, sums[2]);
    (tb, sums)
}

/// The prep that stages v3 (with its hook).
fn staged(v3: &str) -> Vec<Argv> {
    vec![argv(&["@", "stage", v3])]
}

/// The BLS entry file (name in `/boot/loader/entries`) of the deployment of
/// `checksum`.
fn entry_of(tb: &Testbed, checksum: &str) -> String {
    let sysroot =
        stagehand::ostree::Sysroot::new(Some(&stagehand::gio::File::for_path(tb.sysroot())));
    sysroot.load(stagehand::gio::Cancellable::NONE).unwrap();
    let d = sysroot
        .deployments()
        .into_iter()
        .find(|d| d.csum() == checksum)
        .unwrap();
    let suffix = format!("/{}/{}/{}", d.osname(), d.bootcsum(), d.bootserial());
    let dir = tb.sysroot().join("boot/loader/entries");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| {
            std::fs::read_to_string(dir.join(n))
                .unwrap()
                .lines()
                .any(|l| l.starts_with("options ") && l.contains(&suffix))
        })
        .unwrap()
}

/// Give v2's BLS entry the counted name `stem+counter.conf` and select the
/// `bls` backend in v2's `/etc/stagehand/stagehand.conf` (libostree 2022.7
/// writes no counted entries; a newer libostree or an administrator does).
fn count_bls_entry(tb: &Testbed, v2: &str, counter: &str) {
    let dir = tb.sysroot().join("boot/loader/entries");
    let entry = entry_of(tb, v2);
    let stem = entry.strip_suffix(".conf").unwrap();
    std::fs::rename(dir.join(&entry), dir.join(format!("{stem}+{counter}.conf"))).unwrap();
    let d = tb
        .deployments()
        .into_iter()
        .find(|d| d.checksum == v2)
        .unwrap();
    let etc = tb
        .sysroot()
        .join("ostree/deploy")
        .join(tb.stateroot())
        .join("deploy")
        .join(format!("{}.{}", d.checksum, d.serial))
        .join("etc/stagehand");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("stagehand.conf"), "[bootloader]\nbackend = bls\n").unwrap();
}

/// The operations named in `wanted` (all when `None`), with their start
/// states built.
pub(crate) fn ops(sh: &Stagehand, wanted: Option<&[String]>) -> Vec<Op> {
    let want = |n: &str| wanted.is_none_or(|w| w.iter().any(|x| x == n));
    let start = |name: &str| {
        OPERATIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .unwrap()
    };
    let mut ops = Vec::new();
    // From `base()`, v2 booted.
    let simple = |name: &'static str, prep: fn(&str) -> Vec<Argv>, args: fn(&str) -> Argv| {
        let (tb, sums) = base();
        Op {
            name,
            start: start(name),
            prep: prep(&sums[2]),
            args: args(&sums[2]),
            tb,
            boot: sums[1].clone(),
            rerun_codes: vec![],
            any_serial: None,
            reboot: None,
        }
    };
    // From `booted_into_v3()` after `before`, v3 booted.
    let from_v3 = |name: &'static str, before: &[&[&str]], args: Argv| {
        let (tb, sums) = booted_into_v3(sh);
        if !before.is_empty() {
            let m = tb.boot(&tb.deployments()[0]);
            for a in before {
                sh.ok(&m, a);
            }
            m.power_off();
        }
        Op {
            name,
            start: start(name),
            tb,
            boot: sums[2].clone(),
            prep: vec![],
            args,
            rerun_codes: vec![],
            any_serial: None,
            reboot: None,
        }
    };
    let interrupted = exit_for(stagehand::ErrorCode::Interrupted);
    let already = exit_for(stagehand::ErrorCode::AlreadyComplete);
    let grubenv_cmd = |action: &str| {
        argv(&[
            "@",
            "bootloader",
            "--grubenv",
            "/boot/grub2/grubenv",
            action,
        ])
    };
    for &(full, _) in OPERATIONS {
        if !want(full) {
            continue;
        }
        // A `+reboot` row starts where its operation's row starts.
        let name = full.strip_suffix(REBOOT_SUFFIX).unwrap_or(full);
        let mut op = match name {
            "stage" => {
                let mut op = simple(name, |_| vec![], |v3| argv(&["@", "stage", v3]));
                op.any_serial = Some(op.args[2].clone());
                op
            }
            "unstage" => simple(name, staged, |_| argv(&["@", "unstage"])),
            "hooks-recover" => {
                let mut op = simple(name, |_| vec![], |_| argv(&["@", "hooks", "recover"]));
                let v4 = op.tb.commit(&Commit::new("4.0").file(
                    "usr/lib/stagehand/pre-upgrade.d/10-slow",
                    "#!/bin/sh\nexec sleep 600\n",
                    0o755,
                ));
                // The agent is SIGKILLed while the hook runs (bubblewrap's
                // --die-with-parent takes the hook along): what recovery is for.
                op.prep = vec![argv(&[
                    "sh",
                    "-c",
                    "timeout -s KILL 3 \"$0\" stage \"$1\"; test -e /run/stagehand/unvetted",
                    "@",
                    &v4,
                ])];
                op
            }
            "finalization-lock" => simple(name, staged, |_| argv(&["@", "finalization", "lock"])),
            "finalization-unlock" => simple(
                name,
                |v3| {
                    let mut p = staged(v3);
                    p.push(argv(&["@", "finalization", "lock"]));
                    p
                },
                |_| argv(&["@", "finalization", "unlock"]),
            ),
            "finalize-record" => {
                simple(name, staged, |_| argv(&["@", "finalize-stamp", "--record"]))
            }
            "finalize-stamp" => simple(
                name,
                |v3| {
                    let mut p = staged(v3);
                    p.push(argv(&["@", "finalize-stamp", "--record"]));
                    p.push(argv(&["ostree", "admin", "finalize-staged"]));
                    p
                },
                |_| argv(&["@", "finalize-stamp"]),
            ),
            "guard-begin" => {
                let mut op = simple(
                    name,
                    |_| vec![],
                    |_| argv(&["@", "guard", "begin", "step", "--digest", DIGEST]),
                );
                op.rerun_codes = vec![interrupted];
                op
            }
            "guard-commit" => {
                let mut op = simple(
                    name,
                    |_| vec![argv(&["@", "guard", "begin", "step", "--digest", DIGEST])],
                    |_| argv(&["@", "guard", "commit", "step", "--digest", DIGEST]),
                );
                op.rerun_codes = vec![already];
                op
            }
            "grubenv-arm" => {
                let mut op = simple(name, |_| vec![], |_| vec![]);
                op.args = grubenv_cmd("arm");
                op
            }
            "grubenv-bless" => {
                let mut op = simple(name, |_| vec![], |_| vec![]);
                op.prep = vec![grubenv_cmd("arm")];
                op.args = grubenv_cmd("bless");
                op
            }
            "bls-bless" => {
                let op = simple(name, |_| vec![], |_| argv(&["@", "bootloader", "bless"]));
                count_bls_entry(&op.tb, &op.boot, "1-2");
                op
            }
            "bls-disarm" => {
                let mut op = simple(name, |_| vec![], |_| vec![]);
                count_bls_entry(&op.tb, &op.boot, "0-3");
                op.args = argv(&["@", "bootloader", "disarm", "--deployment", &op.boot]);
                op
            }
            "autocleanup" => from_v3(name, &[], argv(&["@", "autocleanup"])),
            "autocleanup-retention" => from_v3(
                name,
                &[&["assess"], &["mark-good"]],
                argv(&["@", "autocleanup"]),
            ),
            "assess" => from_v3(name, &[], argv(&["@", "assess"])),
            "assess-fallback" => {
                // The same start as `assess`, but the machine boots v2: the
                // bootloader fell back from v3 after its tries ran out.
                let mut op = from_v3(
                    name,
                    &[],
                    argv(&["@", "assess", "--evidence", "fallback", "--tries", "3"]),
                );
                op.boot = op.tb.deployments()[1].checksum.clone();
                op
            }
            "mark-good" => from_v3(name, &[&["assess"]], argv(&["@", "mark-good"])),
            "mark-bad" => from_v3(
                name,
                &[&["assess"]],
                argv(&["@", "mark-bad", "--reason", "boom"]),
            ),
            "mark-bad-finalized" => {
                let (tb, sums) = base();
                let v2 = tb
                    .deployments()
                    .into_iter()
                    .find(|d| d.checksum == sums[1])
                    .unwrap();
                let etc = tb.deployment_dir(&v2).join("etc/stagehand");
                std::fs::create_dir_all(&etc).unwrap();
                std::fs::write(
                    etc.join("stagehand.conf"),
                    "[bootloader]\nbackend = grubenv\n",
                )
                .unwrap();
                let m = tb.boot(&v2);
                sh.ok(&m, &["stage", &sums[2]]);
                sh.ok(&m, &["finalize-stamp", "--record"]);
                assert!(m.finalize().status.success());
                let armed = sh.ok(&m, &["finalize-stamp"]);
                assert!(armed.contains("armed"), "{armed}");
                m.power_off();
                let args = argv(&[
                    "@",
                    "mark-bad",
                    "--deployment",
                    &sums[2],
                    "--reason",
                    "boom",
                ]);
                Op {
                    name,
                    start: start(name),
                    tb,
                    boot: sums[1].clone(),
                    prep: vec![],
                    args,
                    rerun_codes: vec![],
                    any_serial: None,
                    reboot: None,
                }
            }
            "health-deadline" => from_v3(
                name,
                &[&["assess"]],
                argv(&["@", "health-deadline", "--now", "--reboot-command", "true"]),
            ),
            "denylist-remove" => {
                let mut op = from_v3(
                    name,
                    &[&["assess"], &["mark-bad", "--reason", "boom"]],
                    vec![],
                );
                op.args = argv(&["@", "denylist", "remove", &op.boot.clone()]);
                // Killed after its change was durable (releasing the lock),
                // running it again says the commit is not on the denylist.
                op.rerun_codes = vec![exit_for(stagehand::ErrorCode::InvalidArgument)];
                op
            }
            "health-reset" => from_v3(
                name,
                &[&["assess"], &["mark-bad", "--reason", "boom"]],
                argv(&["@", "health", "reset"]),
            ),
            "boot-units" => from_v3(
                name,
                &[],
                argv(&[
                    "sh",
                    "-c",
                    "\"$0\" assess && \"$0\" mark-good && \"$0\" autocleanup",
                    "@",
                ]),
            ),
            other => unreachable!("operation {other} has no start state"),
        };
        if full != name {
            let healthy = REBOOT_ROWS
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{full} is not in REBOOT_ROWS"))
                .1;
            op.name = full;
            op.start = start(full);
            op.reboot = Some(Reboot { healthy });
            enable_auto_reboot(&op.tb);
        }
        ops.push(op);
    }
    ops
}

/// Turn on `auto-reboot` in every deployment's `/etc/stagehand/stagehand.conf`
/// (keeping what is there): the health deadline then reboots out of a failed
/// deployment, which the `+reboot` rows check. A deployment staged later
/// inherits it through the `/etc` merge.
fn enable_auto_reboot(tb: &Testbed) {
    for d in tb.deployments() {
        let etc = tb.deployment_dir(&d).join("etc/stagehand");
        std::fs::create_dir_all(&etc).unwrap();
        let conf = etc.join("stagehand.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        text += "[health]\nauto-reboot = true\n";
        std::fs::write(&conf, text).unwrap();
    }
}

/// Run `a` in `m` (`@` = stagehand), panicking on failure.
pub(crate) fn run_ok(sh: &Stagehand, m: &Machine<'_>, a: &Argv) {
    let out = sh.command(m, a).output().unwrap();
    assert!(
        out.status.success(),
        "{a:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}
