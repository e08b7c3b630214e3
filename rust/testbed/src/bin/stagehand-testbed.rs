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
//!   --no-boot           run PROGRAM on the host against the sysroot's path
//!                       instead of inside the booted default deployment
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
use std::process::{Command, ExitCode, ExitStatus};

use stagehand_testbed::{Commit, Testbed, DEFAULT_BRANCH, HOST_PREFIX, OSTREE_ENV};

const USAGE: &str = "usage: stagehand-testbed run [--deploy V[,V...]] [--commit V [--not-bootable] [--branch B]]... \
[--no-boot] [--expose DIR]... [--env KEY=VALUE]... -- PROGRAM [ARGS...]";

#[derive(Debug)]
struct CommitSpec {
    version: String,
    deploy: bool,
    bootable: bool,
    branch: Option<String>,
}

#[derive(Debug, Default)]
struct Spec {
    commits: Vec<CommitSpec>,
    boot: bool,
    expose: Vec<PathBuf>,
    env: Vec<(String, String)>,
    argv: Vec<OsString>,
}

fn parse(args: Vec<OsString>) -> Result<Spec, String> {
    let mut spec = Spec {
        boot: true,
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
            "--no-boot" => spec.boot = false,
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
    if spec.boot && !spec.commits.iter().any(|c| c.deploy) {
        return Err("booting needs at least one --deploy".into());
    }
    Ok(spec)
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
        let checksum = tb.commit(&commit);
        eprintln!("stagehand-testbed: committed {} as {checksum}", c.version);
        if c.deploy {
            tb.deploy(&checksum);
            booted_commit = Some(checksum.clone());
        }
        env.push((commit_var(&c.version), checksum));
    }
    if let Some(b) = &booted_commit {
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
    let mut m = tb.boot_default();
    env.push(("STAGEHAND_TEST_SYSROOT".into(), "/".into()));
    env.push(("STAGEHAND_TEST_BOOTED".into(), "1".into()));
    if !tr.lib_dirs.is_empty() {
        let inside: Vec<String> = tr
            .lib_dirs
            .iter()
            .map(|d| format!("{HOST_PREFIX}{}", d.display()))
            .collect();
        env.push(("LD_LIBRARY_PATH".into(), inside.join(":")));
    }
    for (k, v) in &env {
        m.setenv(k, v);
    }
    eprintln!(
        "stagehand-testbed: booted {}; running {:?}",
        m.booted().id(),
        argv
    );
    m.command(&argv)
        .status()
        .map_err(|e| format!("running {:?}: {e}", argv[0]))
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
