//! # stagehand-testbed
//!
//! Real ostree sysroots for tests, demos and benchmarks — no mocks.
//!
//! A [`Testbed`] is a throwaway sysroot in a temporary directory: a stateroot,
//! a stub bootloader, and a source repository in which [`Commit`]s with a
//! kernel, a version and a chosen number of files are generated and pulled into
//! the sysroot repository with the real `ostree` CLI.
//!
//! [`Testbed::boot`] makes the sysroot *booted* without a VM: a private mount
//! and PID namespace (`unshare`) in which the deployment is bind-mounted onto
//! itself (so `/` is a mount point, as after `ostree-prepare-root`, which
//! sandboxing tools such as bubblewrap need), the physical sysroot, its `/boot`
//! and the stateroot's `/var` are bind-mounted into it, `/proc`, `/dev`, a
//! fresh `/run` (with `/run/ostree-booted`) and `/tmp` are mounted, and the
//! namespace's init is chrooted into the deployment. That init reaps orphaned
//! processes like a real init, so a process whose parent was killed does not
//! linger as a zombie. The host's `/usr` is bound
//! over the deployment's so host binaries (`ostree`, `bwrap`, the code under
//! test) run inside. Commands then enter that namespace with `nsenter`.
//! [`Machine::finalize`] runs `ostree admin finalize-staged` as the shutdown
//! unit does; booting another deployment simulates a reboot into it.
//!
//! [`Testbed::save_state`] and [`Testbed::restore_state`] copy the sysroot
//! aside and back, so a test can start an operation many times from the same
//! state (to interrupt it at every step, for example).
//!
//! Nothing outlives the handles: the namespace dies with its init (killed on
//! drop, and killed by the kernel if the test process dies), its mounts were
//! never visible outside it, and the temporary directory is removed on drop,
//! also when a test fails or panics.
//!
//! [`crashpoints`] runs any command SIGKILLed at each of its mutating system
//! calls in turn, for crash-safety sweeps.
//! [`unit::UnitFile`] reads systemd units so tests run a unit's commands in
//! a machine in the order systemd would ([`Machine::run_unit`]).
//! [`Testbed::repo_object_set`] and [`Testbed::live_object_set`] tell what the
//! sysroot repository holds and what it needs to hold.
//!
//! Everything needs root. Under `CI=true` a missing prerequisite is a test
//! failure, never a silent skip.
//!
//! Programs that are not Rust tests (the C and C++ tests run by meson) use
//! the same test bed through the `stagehand-testbed run` binary
//! (`src/bin/stagehand-testbed.rs`): it builds a sysroot with the commits
//! asked for, boots it, runs the program inside with the checksums in
//! `STAGEHAND_TEST_*` environment variables, and exits with its status.
//! With `--boots N` it reboots into whatever the bootloader picks next and
//! runs the program again, for behaviour that spans a reboot (a stamp
//! written at shutdown, acted on at the next boot).

#![deny(missing_docs)]
#![deny(unused_must_use)]

pub mod crashpoints;
pub mod unit;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The stateroot test beds use unless told otherwise.
pub const DEFAULT_STATEROOT: &str = "testos";
/// The branch generated commits go to.
pub const DEFAULT_BRANCH: &str = "testos/stable";
/// Kernel arguments of the first deployment.
pub const DEFAULT_KARGS: &[&str] = &["root=LABEL=testroot", "rw", "quiet"];
/// Where host directories appear inside a booted machine.
pub const HOST_PREFIX: &str = "/run/testbed/host";

/// Environment every ostree command of the test bed runs with: deployments
/// stay mutable (no `chattr +i`), so temporary sysroots can be deleted.
pub const OSTREE_ENV: (&str, &str) = ("OSTREE_SYSROOT_DEBUG", "mutable-deployments");

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Panic unless the test bed can work here (root, `ostree`, `unshare`, `nsenter`).
///
/// Tests call this through [`Testbed::new`]; there is no skip path: a test
/// that needs a real sysroot fails loudly where it cannot get one.
pub fn require_prerequisites() {
    if !rustix_is_root() {
        panic!(
            "the stagehand test bed needs root (it builds sysroots and mount namespaces); \
             run the tests as root (see README.md)"
        );
    }
    for tool in ["ostree", "unshare", "nsenter", "chroot"] {
        if which(tool).is_none() {
            panic!("the stagehand test bed needs `{tool}` on PATH (apt-get install ostree util-linux coreutils)");
        }
    }
}

fn rustix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Find a program on `PATH`.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| PATH.into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Run a command, panicking with its output when it fails.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file to put into a generated commit.
#[derive(Debug, Clone)]
pub struct ExtraFile {
    /// Path inside the tree, relative (`usr/lib/stagehand/pre-upgrade.d/10-check`).
    pub path: String,
    /// Content; `None` makes a directory.
    pub content: Option<Vec<u8>>,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Make a symlink to this target instead of a file.
    pub symlink: Option<String>,
}

/// A commit to generate: version, file count, kernel, extra files.
#[derive(Debug, Clone)]
pub struct Commit {
    version: String,
    files: usize,
    file_size: usize,
    bootable: bool,
    with_shell: bool,
    branch: String,
    extra: Vec<ExtraFile>,
}

impl Commit {
    /// A bootable commit with this `version` metadata and 16 small files whose
    /// content is unique to the version (so dropping a deployment really frees
    /// objects).
    pub fn new(version: &str) -> Commit {
        Commit {
            version: version.into(),
            files: 16,
            file_size: 64,
            bootable: true,
            with_shell: true,
            branch: DEFAULT_BRANCH.into(),
            extra: Vec::new(),
        }
    }

    /// Generate `n` version-specific files.
    pub fn files(mut self, n: usize) -> Commit {
        self.files = n;
        self
    }

    /// Size of each generated file in bytes (at least a header line).
    pub fn file_size(mut self, bytes: usize) -> Commit {
        self.file_size = bytes;
        self
    }

    /// Leave the kernel out: libostree refuses to deploy such a commit.
    pub fn not_bootable(mut self) -> Commit {
        self.bootable = false;
        self
    }

    /// Leave out the minimal userspace (`sh` and a few coreutils copied from
    /// the host with their libraries) that lets hooks run inside the tree.
    pub fn without_shell(mut self) -> Commit {
        self.with_shell = false;
        self
    }

    /// Commit to this branch instead of [`DEFAULT_BRANCH`].
    pub fn branch(mut self, branch: &str) -> Commit {
        self.branch = branch.into();
        self
    }

    /// Add a regular file owned by root.
    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Commit {
        self.extra.push(ExtraFile {
            path: path.into(),
            content: Some(content.into()),
            mode,
            uid: 0,
            symlink: None,
        });
        self
    }

    /// Add a file with any owner.
    pub fn file_owned(
        mut self,
        path: &str,
        content: impl Into<Vec<u8>>,
        mode: u32,
        uid: u32,
    ) -> Commit {
        self.extra.push(ExtraFile {
            path: path.into(),
            content: Some(content.into()),
            mode,
            uid,
            symlink: None,
        });
        self
    }

    /// Add a symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> Commit {
        self.extra.push(ExtraFile {
            path: path.into(),
            content: None,
            mode: 0o777,
            uid: 0,
            symlink: Some(target.into()),
        });
        self
    }

    /// Add a directory with this mode.
    pub fn dir(mut self, path: &str, mode: u32) -> Commit {
        self.extra.push(ExtraFile {
            path: path.into(),
            content: None,
            mode,
            uid: 0,
            symlink: None,
        });
        self
    }
}

/// A deployment as the real `ostree admin status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Position in the list.
    pub index: usize,
    /// Stateroot.
    pub stateroot: String,
    /// Commit checksum.
    pub checksum: String,
    /// Deployment serial.
    pub serial: u32,
    /// The flags in parentheses (`staged`, `pending`, `rollback`) and `booted`
    /// for the `*` line.
    pub flags: Vec<String>,
    /// The `Version:` line, if any.
    pub version: Option<String>,
    /// Whether ostree shows it as pinned.
    pub pinned: bool,
}

impl Deployment {
    /// `checksum.serial`, as ostree prints it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.checksum, self.serial)
    }
    /// `stateroot:checksum.serial`, stagehand's identity string.
    pub fn id(&self) -> String {
        format!("{}:{}.{}", self.stateroot, self.checksum, self.serial)
    }
    /// Whether a flag is shown.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Parse the text of `ostree admin status`.
pub fn parse_admin_status(text: &str) -> Vec<Deployment> {
    let mut out: Vec<Deployment> = Vec::new();
    for line in text.lines() {
        let booted = line.starts_with("* ");
        let is_entry = booted || (line.starts_with("  ") && !line.starts_with("    "));
        if is_entry {
            let rest = line[2..].trim();
            let mut parts = rest.splitn(3, ' ');
            let (Some(stateroot), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some((checksum, serial)) = name.rsplit_once('.') else {
                continue;
            };
            let Ok(serial) = serial.parse() else { continue };
            let mut flags: Vec<String> = parts
                .next()
                .map(|f| {
                    f.trim_matches(|c| c == '(' || c == ')')
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if booted {
                flags.push("booted".into());
            }
            out.push(Deployment {
                index: out.len(),
                stateroot: stateroot.into(),
                checksum: checksum.into(),
                serial,
                flags,
                version: None,
                pinned: false,
            });
        } else if let Some(last) = out.last_mut() {
            let t = line.trim();
            if let Some(v) = t.strip_prefix("Version: ") {
                last.version = Some(v.to_string());
            } else if t == "Pinned: yes" {
                last.pinned = true;
            }
        }
    }
    out
}

/// A copy of a test bed's sysroot (see [`Testbed::save_state`]); it lives in
/// the test bed's directory and goes with it.
#[derive(Debug)]
pub struct SavedState {
    dir: PathBuf,
}

/// A throwaway sysroot. Removed with everything in it on drop.
#[derive(Debug)]
pub struct Testbed {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    sysroot: PathBuf,
    src_repo: PathBuf,
    stateroot: String,
    exposed: Vec<PathBuf>,
    commits: std::cell::Cell<u32>,
    running: std::cell::Cell<u32>,
    saved: std::cell::Cell<u32>,
}

impl Testbed {
    /// A sysroot with the stateroot [`DEFAULT_STATEROOT`] and no deployment.
    pub fn new() -> Testbed {
        Testbed::with_stateroot(DEFAULT_STATEROOT)
    }

    /// A sysroot with this stateroot and no deployment.
    pub fn with_stateroot(stateroot: &str) -> Testbed {
        require_prerequisites();
        let base = std::env::var_os("STAGEHAND_TESTBED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp"));
        std::fs::create_dir_all(&base).expect("creating the test bed base directory");
        let dir = tempfile::Builder::new()
            .prefix("stagehand-testbed.")
            .tempdir_in(&base)
            .expect("creating the test bed directory");
        let root = dir.path().to_path_buf();
        let sysroot = root.join("sysroot");
        let src_repo = root.join("src-repo");
        std::fs::create_dir(&sysroot).unwrap();
        let mut tb = Testbed {
            dir: Some(dir),
            root,
            sysroot,
            src_repo,
            stateroot: stateroot.into(),
            exposed: Vec::new(),
            commits: std::cell::Cell::new(0),
            running: std::cell::Cell::new(0),
            saved: std::cell::Cell::new(0),
        };
        tb.ostree_sysroot(&["admin", "init-fs", "--modern", "."]);
        tb.ostree_sysroot(&["admin", "os-init", stateroot]);
        // A syslinux stub, the simplest configuration libostree autodetects and
        // writes for real: boot/loader -> loader.0 and syslinux.cfg linked into it.
        let boot = tb.sysroot.join("boot");
        std::fs::create_dir_all(boot.join("loader.0")).unwrap();
        std::fs::create_dir_all(boot.join("syslinux")).unwrap();
        std::os::unix::fs::symlink("loader.0", boot.join("loader")).unwrap();
        std::fs::write(boot.join("loader.0/syslinux.cfg"), b"").unwrap();
        std::os::unix::fs::symlink("../loader/syslinux.cfg", boot.join("syslinux/syslinux.cfg"))
            .unwrap();
        run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", tb.src_repo.display()))
                .args(["init", "--mode=archive"]),
        );
        if let Ok(exe) = std::env::current_exe() {
            if let Some(dir) = exe.parent() {
                tb.expose(dir);
                if let Some(up) = dir.parent() {
                    tb.expose(up);
                }
            }
        }
        let _ = &mut tb;
        tb
    }

    /// The physical sysroot path (what `--sysroot` takes on the host).
    pub fn sysroot(&self) -> &Path {
        &self.sysroot
    }

    /// The temporary directory holding everything (sysroot, source repo, scratch).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The stateroot.
    pub fn stateroot(&self) -> &str {
        &self.stateroot
    }

    /// The sysroot repository path.
    pub fn repo(&self) -> PathBuf {
        self.sysroot.join("ostree/repo")
    }

    /// Make a host directory visible inside booted machines at
    /// `HOST_PREFIX + dir` (the test binary's directories are exposed already).
    pub fn expose(&mut self, dir: impl AsRef<Path>) {
        let dir = dir
            .as_ref()
            .canonicalize()
            .unwrap_or_else(|_| dir.as_ref().to_path_buf());
        if !self.exposed.contains(&dir) {
            self.exposed.push(dir);
        }
    }

    /// An `ostree` command with the test bed's environment.
    pub fn ostree_cmd(&self) -> Command {
        let mut c = Command::new("ostree");
        c.env(OSTREE_ENV.0, OSTREE_ENV.1);
        c
    }

    /// Run `ostree <args>` in the sysroot directory (for `admin --sysroot=.`-less
    /// commands), panicking on failure; returns stdout.
    fn ostree_sysroot(&self, args: &[&str]) -> String {
        let mut c = self.ostree_cmd();
        c.current_dir(&self.sysroot);
        if args.first() == Some(&"admin") && args.get(1) != Some(&"init-fs") {
            c.arg("admin")
                .arg(format!("--sysroot={}", self.sysroot.display()))
                .args(&args[1..]);
        } else {
            c.args(args);
        }
        run_ok(&mut c)
    }

    /// Run `ostree admin <args> --sysroot=<sysroot>` on the host; panics on failure.
    pub fn admin(&self, args: &[&str]) -> String {
        let mut full = vec!["admin"];
        full.extend_from_slice(args);
        self.ostree_sysroot(&full)
    }

    /// Generate a commit in the source repository and pull it into the
    /// sysroot repository. Returns its checksum.
    pub fn commit(&self, spec: &Commit) -> String {
        let n = self.commits.get() + 1;
        self.commits.set(n);
        let tree = self.root.join(format!("tree-{n}"));
        build_tree(&tree, spec);
        let out = run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", self.src_repo.display()))
                .arg("commit")
                .arg(format!("--branch={}", spec.branch))
                .arg(format!("--add-metadata-string=version={}", spec.version))
                .arg(format!("--subject=testbed {}", spec.version))
                .args(if spec.bootable {
                    &["--bootable"][..]
                } else {
                    &[][..]
                })
                .arg(format!("--tree=dir={}", tree.display())),
        );
        let _ = std::fs::remove_dir_all(&tree);
        let checksum = out.trim().to_string();
        self.pull(&spec.branch);
        checksum
    }

    /// Pull `branch` from the source repository into the sysroot repository.
    pub fn pull(&self, branch: &str) {
        run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", self.repo().display()))
                .args(["pull-local", "--untrusted"])
                .arg(&self.src_repo)
                .arg(branch),
        );
    }

    /// Fully deploy `rev` on the host with the real `ostree admin deploy`
    /// (non-booted), with [`DEFAULT_KARGS`] for the first deployment.
    pub fn deploy(&self, rev: &str) -> Deployment {
        let mut args = vec!["deploy".to_string(), format!("--os={}", self.stateroot)];
        if self.deployments().is_empty() {
            args.extend(DEFAULT_KARGS.iter().map(|k| format!("--karg={k}")));
        }
        args.push(rev.into());
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        self.admin(&refs);
        self.deployments()
            .into_iter()
            .next()
            .expect("a deployment after deploy")
    }

    /// A sysroot with `v1` deployed (and `v2`, `v3`... as rollbacks when
    /// `versions` has more): returns the checksums, oldest first.
    pub fn with_deployments(versions: &[&str]) -> (Testbed, Vec<String>) {
        let tb = Testbed::new();
        let mut sums = Vec::new();
        for v in versions {
            let c = tb.commit(&Commit::new(v));
            tb.deploy(&c);
            sums.push(c);
        }
        (tb, sums)
    }

    /// The deployments, as the real `ostree admin status` lists them from the
    /// host (not booted: staged deployments only show inside a [`Machine`]).
    pub fn deployments(&self) -> Vec<Deployment> {
        parse_admin_status(&self.admin(&["status"]))
    }

    /// The deployment's directory on the host.
    pub fn deployment_dir(&self, d: &Deployment) -> PathBuf {
        self.sysroot
            .join("ostree/deploy")
            .join(&d.stateroot)
            .join("deploy")
            .join(d.name())
    }

    /// Find a deployment by checksum (first match).
    pub fn deployment_of(&self, checksum: &str) -> Option<Deployment> {
        self.deployments()
            .into_iter()
            .find(|d| d.checksum == checksum)
    }

    /// Boot the default deployment (what the bootloader would pick).
    pub fn boot_default(&self) -> Machine<'_> {
        let d = self
            .deployments()
            .into_iter()
            .next()
            .expect("boot_default: no deployment");
        self.boot(&d)
    }

    /// "Boot" `d`: a private mount+PID namespace chrooted into it, with
    /// `/run/ostree-booted` present. Dropping the machine powers it off.
    pub fn boot(&self, d: &Deployment) -> Machine<'_> {
        Machine::start(self, d.clone())
    }

    /// Paths of all deployment directories on disk.
    pub fn deployment_dirs(&self) -> Vec<PathBuf> {
        let dir = self
            .sysroot
            .join("ostree/deploy")
            .join(&self.stateroot)
            .join("deploy");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every loose object of the sysroot repository (`xx/yyyy….type`) with
    /// its size in bytes.
    pub fn repo_object_set(&self) -> ObjectSet {
        object_set(&self.repo())
    }

    /// What the sysroot repository *needs* to hold: the objects of a fresh
    /// repository (same mode) into which the real `ostree pull-local` copied,
    /// without history, every ref target and every deployment's commit. A
    /// fully pruned sysroot repository holds exactly these.
    pub fn live_object_set(&self) -> ObjectSet {
        let repo = self.repo();
        let fresh = self.root.join(format!("live-repo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&fresh);
        let mode = run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", repo.display()))
                .args(["config", "get", "core.mode"]),
        );
        run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", fresh.display()))
                .arg("init")
                .arg(format!("--mode={}", mode.trim())),
        );
        let refs = run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", repo.display()))
                .arg("refs"),
        );
        let mut commits: std::collections::BTreeSet<String> =
            self.deployments().into_iter().map(|d| d.checksum).collect();
        for r in refs.lines().map(str::trim).filter(|r| !r.is_empty()) {
            let c = run_ok(
                Command::new("ostree")
                    .arg(format!("--repo={}", repo.display()))
                    .args(["rev-parse", r]),
            );
            commits.insert(c.trim().to_string());
        }
        if !commits.is_empty() {
            run_ok(
                Command::new("ostree")
                    .arg(format!("--repo={}", fresh.display()))
                    .args(["pull-local", "--untrusted", "--depth=0"])
                    .arg(&repo)
                    .args(&commits),
            );
        }
        let set = object_set(&fresh);
        let _ = std::fs::remove_dir_all(&fresh);
        set
    }

    /// Copy the whole sysroot aside (`cp -a`, so hardlinks between the repo
    /// and the deployments stay hardlinks in the copy) to put it back later
    /// with [`Testbed::restore_state`]: for tests that interrupt an operation
    /// at every step and need the same starting point each time. Panics while
    /// a machine is running (its mounts would see a half-copied sysroot).
    pub fn save_state(&self) -> SavedState {
        assert_eq!(self.running.get(), 0, "save_state with a machine running");
        let n = self.saved.get() + 1;
        self.saved.set(n);
        let dir = self.root.join(format!("saved-{n}"));
        run_ok(Command::new("cp").arg("-a").arg(&self.sysroot).arg(&dir));
        SavedState { dir }
    }

    /// Replace the sysroot with a copy taken by [`Testbed::save_state`]
    /// (the copy stays, so it can be restored again). Panics while a machine
    /// is running: its root and mounts are directories of the old sysroot.
    pub fn restore_state(&self, saved: &SavedState) {
        assert_eq!(
            self.running.get(),
            0,
            "restore_state with a machine running"
        );
        std::fs::remove_dir_all(&self.sysroot).expect("removing the sysroot");
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(&saved.dir)
                .arg(&self.sysroot),
        );
    }

    /// Number of objects and their total bytes in the sysroot repository.
    pub fn repo_objects(&self) -> (u64, u64) {
        let mut count = 0;
        let mut bytes = 0;
        let objects = self.repo().join("objects");
        for sub in std::fs::read_dir(&objects).into_iter().flatten().flatten() {
            for obj in std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(m) = obj.metadata() {
                    count += 1;
                    bytes += m.len();
                }
            }
        }
        (count, bytes)
    }
}

/// Loose objects of a repository: name (`xx/yyyy….type`) → size in bytes.
pub type ObjectSet = std::collections::BTreeMap<String, u64>;

/// The total size of an [`ObjectSet`].
pub fn object_bytes(set: &ObjectSet) -> u64 {
    set.values().sum()
}

fn object_set(repo: &Path) -> ObjectSet {
    let mut out = ObjectSet::new();
    for sub in std::fs::read_dir(repo.join("objects"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let prefix = sub.file_name().to_string_lossy().into_owned();
        for obj in std::fs::read_dir(sub.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(m) = obj.metadata() {
                out.insert(
                    format!("{prefix}/{}", obj.file_name().to_string_lossy()),
                    m.len(),
                );
            }
        }
    }
    out
}

impl Default for Testbed {
    fn default() -> Self {
        Testbed::new()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if std::env::var_os("STAGEHAND_TESTBED_KEEP").is_some() {
            if let Some(d) = self.dir.take() {
                eprintln!("keeping test bed {}", d.keep().display());
            }
            return;
        }
        if let Some(d) = self.dir.take() {
            let path = d.path().to_path_buf();
            if d.close().is_err() {
                // Something made a deployment immutable; undo and retry.
                let _ = Command::new("chattr")
                    .args(["-R", "-i"])
                    .arg(&path)
                    .stderr(Stdio::null())
                    .status();
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    eprintln!("warning: could not remove test bed {}: {e}", path.display());
                }
            }
        }
    }
}

fn write_file(path: &Path, content: &[u8], mode: u32) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The binaries copied into a tree so hooks can run in it.
const SHELL_TOOLS: &[&str] = &[
    "sh", "cat", "sleep", "true", "false", "echo", "ls", "mkdir", "rm", "env", "id", "stat",
    "test", "head", "tail", "touch", "sort", "wc", "printf", "tr", "cut", "dd",
];

fn in_usr(path: &Path) -> PathBuf {
    // Debian is merged-/usr: /lib, /lib64, /bin live under /usr.
    let s = path.to_string_lossy();
    if s.starts_with("/usr/") {
        PathBuf::from(&s[1..])
    } else {
        PathBuf::from(format!("usr{s}"))
    }
}

fn copy_shell(tree: &Path) {
    let mut libs = std::collections::BTreeSet::new();
    for tool in SHELL_TOOLS {
        let Some(bin) = which(tool).or_else(|| {
            let p = PathBuf::from(format!("/usr/bin/{tool}"));
            p.exists().then_some(p)
        }) else {
            continue;
        };
        let dest = tree.join("usr/bin").join(tool);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&bin, &dest).unwrap();
        let out = Command::new("ldd").arg(&bin).output().expect("ldd");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line
                .split("=>")
                .last()
                .and_then(|s| s.split_whitespace().next())
                .filter(|s| s.starts_with('/'));
            if let Some(p) = path {
                libs.insert(PathBuf::from(p));
            }
        }
    }
    for lib in libs {
        let dest = tree.join(in_usr(&lib));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&lib, &dest).unwrap();
    }
}

fn build_tree(tree: &Path, spec: &Commit) {
    let _ = std::fs::remove_dir_all(tree);
    std::fs::create_dir_all(tree).unwrap();
    // The skeleton of a merged-/usr ostree OS: mount points the booted test
    // bed binds onto, the /ostree link, and /etc defaults in /usr/etc.
    for d in [
        "sysroot", "boot", "var", "proc", "dev", "run", "tmp", "sys", "usr/bin", "usr/lib",
        "usr/etc",
    ] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    for (link, target) in [
        ("ostree", "sysroot/ostree"),
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, tree.join(link)).unwrap();
    }
    std::fs::create_dir_all(tree.join("usr/sbin")).unwrap();
    std::fs::create_dir_all(tree.join("usr/lib64")).unwrap();
    let os_release = format!(
        "NAME=\"Testbed OS\"\nID=testos\nPRETTY_NAME=\"Testbed OS {v}\"\nVERSION_ID={v}\nVERSION={v}\n",
        v = spec.version
    );
    write_file(
        &tree.join("usr/lib/os-release"),
        os_release.as_bytes(),
        0o644,
    );
    write_file(
        &tree.join("usr/etc/os-release"),
        os_release.as_bytes(),
        0o644,
    );
    write_file(&tree.join("usr/etc/hostname"), b"testbed\n", 0o644);
    write_file(
        &tree.join("usr/etc/motd"),
        format!("Testbed OS {}\n", spec.version).as_bytes(),
        0o644,
    );
    write_file(
        &tree.join("usr/etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    write_file(&tree.join("usr/etc/group"), b"root:x:0:\n", 0o644);
    if spec.bootable {
        let k = tree.join("usr/lib/modules/6.1.0-testbed");
        write_file(&k.join("vmlinuz"), b"testbed kernel 6.1.0\n", 0o644);
        write_file(
            &k.join("initramfs.img"),
            b"testbed initramfs 6.1.0\n",
            0o644,
        );
    }
    if spec.with_shell {
        copy_shell(tree);
    }
    let data = tree.join("usr/share/testbed");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..spec.files {
        let mut content = format!("{} file {i}\n", spec.version);
        while content.len() < spec.file_size {
            let _ = write!(
                content,
                "{:08x}",
                (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ content.len() as u64
            );
        }
        content.truncate(spec.file_size.max(content.find('\n').unwrap() + 1));
        // Spread files over subdirectories like a real tree.
        let sub = data.join(format!("{:02x}", i % 64));
        if i < 64 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("f{i}")), content).unwrap();
    }
    for f in &spec.extra {
        let p = tree.join(&f.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if let Some(t) = &f.symlink {
            std::os::unix::fs::symlink(t, &p).unwrap();
            continue;
        }
        match &f.content {
            Some(c) => write_file(&p, c, f.mode),
            None => {
                std::fs::create_dir_all(&p).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode)).unwrap();
            }
        }
        if f.uid != 0 {
            std::os::unix::fs::chown(&p, Some(f.uid), Some(f.uid)).unwrap();
        }
    }
}

/// A sysroot booted into one deployment, in a private mount+PID namespace.
///
/// Dropping it is a power cut: the namespace's processes are killed, no
/// shutdown step runs. [`Machine::shutdown`] is a clean shutdown: it first
/// runs what `ostree-finalize-staged.service` runs.
#[derive(Debug)]
pub struct Machine<'t> {
    tb: &'t Testbed,
    deployment: Deployment,
    unshare: Option<Child>,
    init_pid: i32,
    env: Vec<(String, String)>,
}

fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl<'t> Machine<'t> {
    fn start(tb: &'t Testbed, deployment: Deployment) -> Machine<'t> {
        let d = tb.deployment_dir(&deployment);
        assert!(
            d.is_dir(),
            "deployment directory {} is missing",
            d.display()
        );
        let q = |p: &Path| shell_quote(p.as_os_str());
        let var = tb
            .sysroot
            .join("ostree/deploy")
            .join(&deployment.stateroot)
            .join("var");
        let mut script = String::from("set -e\n");
        let _ = writeln!(script, "D={}", q(&d));
        // The deployment is a mount point of its own, as on a real ostree
        // system (ostree-prepare-root bind-mounts it before switching root):
        // tools that set up mount namespaces (bubblewrap) need `/` to be one.
        script.push_str("mount --bind \"$D\" \"$D\"\n");
        let _ = writeln!(script, "mount --bind {} \"$D/sysroot\"", q(&tb.sysroot));
        let _ = writeln!(
            script,
            "mount --bind {} \"$D/boot\"",
            q(&tb.sysroot.join("boot"))
        );
        let _ = writeln!(script, "mount --bind {} \"$D/var\"", q(&var));
        script.push_str(
            "mount --bind /usr \"$D/usr\"\n\
             mount -t proc proc \"$D/proc\"\n\
             mount --rbind /dev \"$D/dev\"\n\
             mount -t tmpfs -o mode=0755 tmpfs \"$D/run\"\n\
             mount -t tmpfs -o mode=1777 tmpfs \"$D/tmp\"\n\
             touch \"$D/run/ostree-booted\"\n",
        );
        if Path::new("/sys/kernel").is_dir() {
            script.push_str("mount --rbind /sys \"$D/sys\" 2>/dev/null || true\n");
        }
        for e in &tb.exposed {
            let inside = format!("$D{HOST_PREFIX}{}", e.display());
            let _ = writeln!(
                script,
                "mkdir -p \"{inside}\" && mount --bind {} \"{inside}\"",
                q(e)
            );
        }
        script.push_str(
            // The namespace's init reaps orphans, as a real init does:
            // processes whose parent died (an agent killed mid-operation)
            // must not linger as zombies. dash's `wait` reaps any child.
            "echo ready\nexec chroot \"$D\" /bin/sh -c 'while :; do wait; sleep 3600 & wait $!; done' </dev/null >/dev/null 2>&1\n",
        );

        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--pid",
            "--fork",
            "--propagation",
            "private",
            "--kill-child",
            "--",
            "/bin/sh",
            "-c",
        ])
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe. If the test process dies, the
        // kernel kills unshare, and --kill-child takes the namespace with it.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawning unshare");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        if line.trim() != "ready" {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "booting {} failed:\n{}",
                deployment.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The namespace's init is unshare's only child.
        let pid = child.id();
        let mut init_pid = 0;
        for _ in 0..200 {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            if let Some(p) = children.split_whitespace().next() {
                init_pid = p.parse().unwrap();
                // Wait for the exec into the chroot.
                let root = std::fs::read_link(format!("/proc/{init_pid}/root")).unwrap_or_default();
                if root == d {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            init_pid > 0,
            "could not find the init of the booted namespace"
        );
        tb.running.set(tb.running.get() + 1);
        Machine {
            tb,
            deployment,
            unshare: Some(child),
            init_pid,
            env: vec![(OSTREE_ENV.0.into(), OSTREE_ENV.1.into())],
        }
    }

    /// The deployment this machine booted.
    pub fn booted(&self) -> &Deployment {
        &self.deployment
    }

    /// The test bed.
    pub fn testbed(&self) -> &Testbed {
        self.tb
    }

    /// Set an environment variable for every later command.
    pub fn setenv(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// The path at which a host file appears inside the machine (its
    /// directory must be exposed, see [`Testbed::expose`]).
    pub fn host_path(&self, host: impl AsRef<Path>) -> String {
        let p = host
            .as_ref()
            .canonicalize()
            .unwrap_or_else(|_| host.as_ref().to_path_buf());
        format!("{HOST_PREFIX}{}", p.display())
    }

    /// A command that runs inside the machine (root `/` = the deployment),
    /// with a clean environment: `PATH`, the test bed's ostree settings, and
    /// whatever was [`Machine::setenv`]'d.
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.init_pid.to_string())
            .args(["-m", "-p", "-r", "-w", "--"])
            .args(argv)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8");
        for k in ["RUST_BACKTRACE", "RUST_LOG", "G_MESSAGES_DEBUG", "CI"] {
            if let Some(v) = std::env::var_os(k) {
                c.env(k, v);
            }
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Run a command inside; returns its output whatever the exit status.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Output {
        self.command(argv).output().expect("spawning nsenter")
    }

    /// Run a command inside, panicking (with its output) when it fails; returns stdout.
    #[track_caller]
    pub fn ok<S: AsRef<OsStr>>(&self, argv: &[S]) -> String {
        run_ok(&mut self.command(argv))
    }

    /// Run a shell script inside, panicking when it fails; returns stdout.
    #[track_caller]
    pub fn sh(&self, script: &str) -> String {
        self.ok(&["/bin/sh", "-ec", script])
    }

    /// `ostree admin status` inside the machine, parsed.
    pub fn status(&self) -> Vec<Deployment> {
        parse_admin_status(&self.ok(&["ostree", "admin", "status"]))
    }

    /// The staged deployment, as the real `ostree admin status` shows it.
    pub fn staged(&self) -> Option<Deployment> {
        self.status().into_iter().find(|d| d.has("staged"))
    }

    /// Run `ostree admin finalize-staged`, as `ostree-finalize-staged.service`
    /// does at shutdown. Returns its output (it may fail: that is for the
    /// test to judge).
    pub fn finalize(&self) -> Output {
        self.run(&["ostree", "admin", "finalize-staged"])
    }

    /// A clean shutdown: finalize, then power off. Panics if finalization fails.
    pub fn shutdown(self) {
        let out = self.finalize();
        assert!(
            out.status.success(),
            "finalize-staged failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Cut the power: nothing runs, the namespace and its mounts are gone.
    pub fn power_off(mut self) {
        self.kill();
    }

    /// The host PID of the namespace's init (for tests that check cleanup).
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    fn kill(&mut self) {
        if self.init_pid > 0 {
            // SAFETY: plain syscall on a PID we started.
            unsafe {
                libc::kill(self.init_pid, libc::SIGKILL);
            }
            self.init_pid = 0;
        }
        if let Some(mut c) = self.unshare.take() {
            // unshare reaps the namespace's init and exits; waiting for it
            // means the namespace, and every mount in it, is gone on return.
            let _ = c.wait();
            self.tb.running.set(self.tb.running.get() - 1);
        }
    }
}

impl Drop for Machine<'_> {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_admin_status() {
        let text = "  testos aaa.1 (staged)\n    Version: 2\n    origin refspec: x\n* testos bbb.0\n    Version: 1\n  testos ccc.0 (rollback)\n    Version: 0\n    Pinned: yes\n";
        let d = parse_admin_status(text);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].checksum, "aaa");
        assert_eq!(d[0].serial, 1);
        assert!(d[0].has("staged"));
        assert_eq!(d[0].version.as_deref(), Some("2"));
        assert!(d[1].has("booted"));
        assert!(d[2].has("rollback"));
        assert!(d[2].pinned);
        assert!(!d[1].pinned);
    }
}
