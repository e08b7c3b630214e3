//! `stagehand-testbed run`: run a program (a C test, a C++ test, a script)
//! on a throwaway test sysroot, booted or not, and exit with its status.
//!
//! ```text
//! stagehand-testbed run [OPTIONS] -- PROGRAM [ARGS...]
//!
//!   --deploy V[,V...]   commit version V and deploy it with `ostree admin deploy`
//!                       (repeatable; in order, so the last is the default)
//!   --versions V[,V...] the same as --deploy
//!   --commit V[,V...]   commit version V and pull it into the sysroot repository,
//!                       without deploying it (something to stage)
//!   --not-bootable      the commit named just before has no kernel
//!   --branch B          the commit named just before goes to branch B
//!                       (default testos/stable)
//!   --file PATH=HOSTFILE[:MODE]
//!                       the commit named just before gets the file PATH
//!                       (absolute, inside the commit) with HOSTFILE's
//!                       content, owned by root, mode MODE in octal
//!                       (default 644); repeatable. How a test ships a
//!                       pre-upgrade hook in an update.
//!   --no-boot           run PROGRAM on the host against the sysroot's path
//!                       instead of inside the booted default deployment
//!   --boots N           boot N times in a row (default 1), running PROGRAM
//!                       in each boot (see "Several boots" below)
//!   --grubenv PATH      before each boot, run GRUB's boot counting on the GRUB
//!                       environment block at PATH (as the booted system sees
//!                       it, e.g. /boot/grub/grubenv), when it exists, and boot
//!                       the entry it picks: the default, or the fallback (the
//!                       second deployment) once the counter ran out
//!   --expose DIR        make the host directory DIR visible inside
//!   --env KEY=VALUE     set KEY for PROGRAM (repeatable)
//! ```
//!
//! Inside the booted machine (the default) the sysroot is `/`, the real
//! `ostree` CLI works, and host paths appear under `/run/testbed/host`.
//! PROGRAM and every argument that is a path of a host file outside `/usr`
//! (absolute, or relative with a `/` in it; also as `--option=/path`) are
//! rewritten to that location,
//! and their directories exposed; shared libraries they load from outside
//! `/usr` (a build tree's `libstagehand-1.so.0`) are exposed too and found
//! through `LD_LIBRARY_PATH`. So `stagehand-testbed run --deploy 1.0 -- valgrind
//! --suppressions=$PWD/x.supp $PWD/build/test-prog --tap` works as written.
//!
//! PROGRAM gets, besides `PATH`, `HOME`, `LANG`, `OSTREE_SYSROOT_DEBUG` and
//! `G_MESSAGES_DEBUG`/`RUST_BACKTRACE`/`CI` from the caller:
//!
//! | variable | value |
//! |---|---|
//! | `STAGEHAND_TEST_SYSROOT` | the sysroot path: `/` when booted, the host path with `--no-boot` |
//! | `STAGEHAND_TEST_BOOTED` | `1` when running inside the booted machine, else `0` |
//! | `STAGEHAND_TEST_STATEROOT` | the stateroot (`testos`) |
//! | `STAGEHAND_TEST_BRANCH` | the default branch (`testos/stable`) |
//! | `STAGEHAND_TEST_COMMIT_<V>` | the checksum of version `V`, with every character that is not a letter or digit turned into `_` (`2.0` → `STAGEHAND_TEST_COMMIT_2_0`) |
//! | `STAGEHAND_TEST_BOOTED_COMMIT` | the checksum of the deployment that is booted (the default one) |
//! | `STAGEHAND_TEST_BOOT` | which boot this is, from `1` (only when booted) |
//! | `STAGEHAND_TEST_BOOTS` | how many boots the run has (`--boots`, only when booted) |
//! | `STAGEHAND_TEST_GRUB_CHOICE` | `default` or `fallback`: what GRUB's boot counting picked (only with `--grubenv` and an existing block) |
//!
//! ## Several boots
//!
//! Some behaviour spans a reboot: a shutdown step that writes a stamp, and
//! a boot step that acts on it. With `--boots N`, when PROGRAM exits with 0,
//! the machine is powered off (no shutdown step runs: PROGRAM runs what it
//! wants run at shutdown, for instance `ostree admin finalize-staged`, itself),
//! and the deployment the bootloader now picks (the first of `ostree admin
//! status`) is booted and PROGRAM runs again, with `STAGEHAND_TEST_BOOT` one
//! higher. With `--grubenv`, GRUB's boot counting (the model of
//! `data/grub/08_stagehand-boot-counting` in `stagehand::bootloader::grubenv`,
//! which updates the block as GRUB's `save_env` does) picks the default or
//! the fallback entry instead, before every boot including the first.
//! The sysroot, `/var` and `/boot` carry over; `/run` and `/tmp` are
//! new. The first boot that fails ends the run with its status.
//!
//! Every line PROGRAM writes to stdout in a boot but the last is passed on
//! as `# boot I: LINE`, a TAP comment, so a TAP producer (a GTest program with
//! `--tap`) run in several boots still makes one TAP document: the earlier
//! boots' results are in the log and decide the run through their exit
//! status, the last boot's are the ones `meson test` counts.
//!
//! Its stdout and stderr are the runner's (so TAP output reaches `meson
//! test`); the runner's own messages go to stderr. The exit status is
//! PROGRAM's, or 128 + the signal that killed it; 125 when the runner itself
//! fails. Everything is removed afterwards (`STAGEHAND_TESTBED_KEEP=1` keeps
//! it). Needs root, like every test bed.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use stagehand::bootloader::grubenv::{simulate_boot_file, GrubChoice};
use stagehand_testbed::{Commit, Testbed, DEFAULT_BRANCH, HOST_PREFIX, OSTREE_ENV};

const USAGE: &str = "usage: stagehand-testbed run [--deploy V[,V...]] [--commit V [--not-bootable] [--branch B] [--file PATH=HOSTFILE[:MODE]]...]... \
[--no-boot | --boots N [--grubenv PATH]] [--expose DIR]... [--env KEY=VALUE]... -- PROGRAM [ARGS...]";

#[derive(Debug)]
struct CommitSpec {
    version: String,
    deploy: bool,
    bootable: bool,
    branch: Option<String>,
    /// (path in the commit, content, mode)
    files: Vec<(String, Vec<u8>, u32)>,
}

#[derive(Debug, Default)]
struct Spec {
    commits: Vec<CommitSpec>,
    boot: bool,
    boots: u32,
    grubenv: Option<PathBuf>,
    expose: Vec<PathBuf>,
    env: Vec<(String, String)>,
    argv: Vec<OsString>,
}

fn parse(args: Vec<OsString>) -> Result<Spec, String> {
    let mut spec = Spec {
        boot: true,
        boots: 1,
        ..Spec::default()
    };
    let mut it = args.into_iter();
    match it.next().as_ref().and_then(|s| s.to_str()) {
        Some("run") => {}
        Some("--help" | "-h") => return Err(String::new()),
        other => return Err(format!("unknown command {other:?}")),
    }
    let value = |it: &mut std::vec::IntoIter<OsString>, opt: &str| -> Result<String, String> {
        it.next()
            .and_then(|v| v.into_string().ok())
            .ok_or_else(|| format!("{opt} needs a value"))
    };
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("bad argument {a:?}"))?;
        match arg.as_str() {
            "--" => {
                spec.argv = it.by_ref().collect();
                break;
            }
            "--deploy" | "--versions" | "--commit" => {
                let deploy = arg != "--commit";
                for v in value(&mut it, &arg)?.split(',').filter(|v| !v.is_empty()) {
                    spec.commits.push(CommitSpec {
                        version: v.to_string(),
                        deploy,
                        bootable: true,
                        branch: None,
                        files: Vec::new(),
                    });
                }
            }
            "--not-bootable" => {
                let c = spec
                    .commits
                    .last_mut()
                    .ok_or("--not-bootable must follow --commit")?;
                if c.deploy {
                    return Err("a deployed commit must be bootable".into());
                }
                c.bootable = false;
            }
            "--branch" => {
                let b = value(&mut it, &arg)?;
                spec.commits
                    .last_mut()
                    .ok_or("--branch must follow --commit or --deploy")?
                    .branch = Some(b);
            }
            "--file" => {
                let v = value(&mut it, &arg)?;
                let file = parse_file(&v)?;
                spec.commits
                    .last_mut()
                    .ok_or("--file must follow --commit or --deploy")?
                    .files
                    .push(file);
            }
            "--no-boot" => spec.boot = false,
            "--boots" => {
                let v = value(&mut it, &arg)?;
                spec.boots = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("--boots {v:?}: expected a number from 1"))?;
            }
            "--grubenv" => {
                let v = value(&mut it, &arg)?;
                if !v.starts_with('/') {
                    return Err(format!("--grubenv {v:?}: expected an absolute path"));
                }
                spec.grubenv = Some(v.into());
            }
            "--expose" => spec.expose.push(value(&mut it, &arg)?.into()),
            "--env" => {
                let kv = value(&mut it, &arg)?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--env {kv:?}: expected KEY=VALUE"))?;
                spec.env.push((k.into(), v.into()));
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if spec.argv.is_empty() {
        return Err("no program given after --".into());
    }
    if !spec.boot && spec.grubenv.is_some() {
        return Err("--grubenv needs booting; it cannot go with --no-boot".into());
    }
    if !spec.boot && spec.boots != 1 {
        return Err("--boots needs booting; it cannot go with --no-boot".into());
    }
    if spec.boot && !spec.commits.iter().any(|c| c.deploy) {
        return Err("booting needs at least one --deploy".into());
    }
    Ok(spec)
}

/// `PATH=HOSTFILE[:MODE]`: the file's path in the commit, the host file's
/// content (read now, so a missing file is a usage error), the mode.
fn parse_file(v: &str) -> Result<(String, Vec<u8>, u32), String> {
    let (path, rest) = v
        .split_once('=')
        .ok_or_else(|| format!("--file {v:?}: expected PATH=HOSTFILE[:MODE]"))?;
    if !path.starts_with('/') || path.len() < 2 {
        return Err(format!("--file {v:?}: PATH must be absolute"));
    }
    let (host, mode) = match rest.rsplit_once(':') {
        Some((h, m)) if !m.is_empty() && m.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
            let mode = u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| format!("--file {v:?}: bad mode {m:?}"))?;
            (h, mode)
        }
        _ => (rest, 0o644),
    };
    let content =
        std::fs::read(host).map_err(|e| format!("--file {v:?}: cannot read {host}: {e}"))?;
    Ok((path.trim_start_matches('/').to_string(), content, mode))
}

/// The environment variable name for a version's checksum.
fn commit_var(version: &str) -> String {
    let v: String = version
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("STAGEHAND_TEST_COMMIT_{v}")
}

/// Directories of shared libraries `file` loads from outside the host's
/// `/usr` (which every machine has), according to `ldd`.
fn private_lib_dirs(file: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(file).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split("=>")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(PathBuf::from)
        })
        .filter(|p| p.is_absolute() && !visible_inside(p))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect()
}

/// Whether a host path is the same file inside a machine: the host's `/usr`
/// is bound over the deployment's, and `/lib*`, `/bin` link into it.
fn visible_inside(p: &Path) -> bool {
    let p = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    p.starts_with("/usr")
}

struct Translator {
    expose: BTreeSet<PathBuf>,
    lib_dirs: BTreeSet<PathBuf>,
}

impl Translator {
    /// Rewrite an argument naming a host file to where it appears inside.
    fn arg(&mut self, arg: &OsString) -> OsString {
        let Some(s) = arg.to_str() else {
            return arg.clone();
        };
        let (prefix, path) = match s.split_once('=') {
            Some((opt, p)) if opt.starts_with('-') => (format!("{opt}="), p),
            _ => (String::new(), s),
        };
        let p = Path::new(path);
        // An absolute path, or a relative one with a directory part (what
        // meson passes for a test program), naming something that exists.
        let looks_like_path = p.is_absolute() || path.contains('/');
        if !looks_like_path || !p.exists() || visible_inside(p) {
            return arg.clone();
        }
        let real = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let dir = if real.is_dir() {
            real.clone()
        } else {
            real.parent().unwrap_or(Path::new("/")).to_path_buf()
        };
        self.expose.insert(dir);
        if real.is_file() {
            self.lib_dirs.extend(private_lib_dirs(&real));
        }
        format!("{prefix}{HOST_PREFIX}{}", real.display()).into()
    }
}

fn run(spec: Spec) -> Result<ExitStatus, String> {
    let mut tb = Testbed::new();
    let mut env: Vec<(String, String)> = vec![
        ("STAGEHAND_TEST_STATEROOT".into(), tb.stateroot().into()),
        ("STAGEHAND_TEST_BRANCH".into(), DEFAULT_BRANCH.into()),
    ];
    let mut booted_commit = None;
    for c in &spec.commits {
        let mut commit = Commit::new(&c.version);
        if !c.bootable {
            commit = commit.not_bootable();
        }
        if let Some(b) = &c.branch {
            commit = commit.branch(b);
        }
        for (path, content, mode) in &c.files {
            commit = commit.file(path, content.clone(), *mode);
        }
        let checksum = tb.commit(&commit);
        eprintln!("stagehand-testbed: committed {} as {checksum}", c.version);
        if c.deploy {
            tb.deploy(&checksum);
            booted_commit = Some(checksum.clone());
        }
        env.push((commit_var(&c.version), checksum));
    }
    // Booted, each boot names the deployment it booted (below).
    if let (Some(b), false) = (&booted_commit, spec.boot) {
        env.push(("STAGEHAND_TEST_BOOTED_COMMIT".into(), b.clone()));
    }
    env.extend(spec.env.iter().cloned());

    if !spec.boot {
        env.push((
            "STAGEHAND_TEST_SYSROOT".into(),
            tb.sysroot().display().to_string(),
        ));
        env.push(("STAGEHAND_TEST_BOOTED".into(), "0".into()));
        let mut cmd = Command::new(&spec.argv[0]);
        cmd.args(&spec.argv[1..]).env(OSTREE_ENV.0, OSTREE_ENV.1);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        return cmd
            .status()
            .map_err(|e| format!("running {:?}: {e}", spec.argv[0]));
    }

    let mut tr = Translator {
        expose: spec.expose.iter().cloned().collect(),
        lib_dirs: BTreeSet::new(),
    };
    let mut argv: Vec<OsString> = Vec::new();
    for (i, a) in spec.argv.iter().enumerate() {
        // PROGRAM itself may be a name on PATH (valgrind, sh).
        if i == 0 && !a.to_string_lossy().contains('/') {
            argv.push(a.clone());
            continue;
        }
        argv.push(tr.arg(a));
    }
    tr.expose.extend(tr.lib_dirs.iter().cloned());
    for d in &tr.expose {
        tb.expose(d);
    }
    env.push(("STAGEHAND_TEST_SYSROOT".into(), "/".into()));
    env.push(("STAGEHAND_TEST_BOOTED".into(), "1".into()));
    env.push(("STAGEHAND_TEST_BOOTS".into(), spec.boots.to_string()));
    if !tr.lib_dirs.is_empty() {
        let inside: Vec<String> = tr
            .lib_dirs
            .iter()
            .map(|d| format!("{HOST_PREFIX}{}", d.display()))
            .collect();
        env.push(("LD_LIBRARY_PATH".into(), inside.join(":")));
    }
    for boot in 1..=spec.boots {
        // What the bootloader picks now: the first deployment, which a
        // finalization in the previous boot may have changed; or, with
        // --grubenv, what GRUB's boot counting picks.
        let choice = match &spec.grubenv {
            Some(p) => grub_choice(&tb.sysroot().join(p.strip_prefix("/").unwrap_or(p)))?,
            None => None,
        };
        let mut m = match choice {
            Some(GrubChoice::Fallback) => {
                let deployments = tb.deployments();
                let d = deployments
                    .get(1)
                    .ok_or("GRUB fell back, but the sysroot has no second deployment")?;
                tb.boot(d)
            }
            _ => tb.boot_default(),
        };
        for (k, v) in &env {
            m.setenv(k, v);
        }
        if let Some(c) = choice {
            let c = match c {
                GrubChoice::Default => "default",
                GrubChoice::Fallback => "fallback",
            };
            eprintln!("stagehand-testbed: boot {boot}: GRUB's boot counting picked the {c} entry");
            m.setenv("STAGEHAND_TEST_GRUB_CHOICE", c);
        }
        m.setenv("STAGEHAND_TEST_BOOT", &boot.to_string());
        let booted = m.booted().checksum.clone();
        m.setenv("STAGEHAND_TEST_BOOTED_COMMIT", &booted);
        eprintln!(
            "stagehand-testbed: boot {boot}/{}: booted {}; running {:?}",
            spec.boots,
            m.booted().id(),
            argv
        );
        let mut cmd = m.command(&argv);
        if boot == spec.boots {
            return cmd
                .status()
                .map_err(|e| format!("running {:?}: {e}", argv[0]));
        }
        let status = run_commented(&mut cmd, boot)?;
        if !status.success() {
            eprintln!("stagehand-testbed: boot {boot} failed ({status}); not booting again");
            return Ok(status);
        }
        // Power off: dropping the machine kills its namespace.
        drop(m);
    }
    unreachable!("the last boot returns")
}

/// GRUB's boot counting on the block at `path` (which it updates as GRUB
/// does); `None` when there is no block.
fn grub_choice(path: &Path) -> Result<Option<GrubChoice>, String> {
    if !path.exists() {
        return Ok(None);
    }
    simulate_boot_file(path)
        .map(Some)
        .map_err(|e| format!("GRUB's boot counting on {}: {e}", path.display()))
}

/// Run `cmd` with each line of its stdout passed on to ours as a TAP
/// comment, `# boot I: LINE`.
fn run_commented(cmd: &mut Command, boot: u32) -> Result<ExitStatus, String> {
    use std::io::{BufRead, Write};
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {cmd:?}: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = Vec::new();
    let mut out = std::io::stdout().lock();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let _ = writeln!(out, "# boot {boot}: {}", text.trim_end_matches('\n'));
            }
            Err(e) => return Err(format!("reading the output of {cmd:?}: {e}")),
        }
    }
    let _ = out.flush();
    child
        .wait()
        .map_err(|e| format!("waiting for {cmd:?}: {e}"))
}

fn main() -> ExitCode {
    let spec = match parse(std::env::args_os().skip(1).collect()) {
        Ok(s) => s,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("stagehand-testbed: {e}\n{USAGE}");
            return ExitCode::from(125);
        }
    };
    // The test bed panics when it cannot build or boot the sysroot; that is
    // the runner failing, not PROGRAM (the test bed cleans up while unwinding).
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(spec)))
        .unwrap_or_else(|_| Err("the test bed failed (see the panic above)".into()));
    match result {
        Ok(status) => {
            let code = status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(125);
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Err(e) => {
            eprintln!("stagehand-testbed: {e}");
            ExitCode::from(125)
        }
    }
}
