//! Crash points: run any command and SIGKILL it at its k-th mutating system
//! call, to prove that an interruption at *every* point leaves state that
//! converges.
//!
//! A *mutating* system call is one that can change a file system: `openat`
//! with `O_WRONLY`/`O_RDWR`/`O_CREAT`/`O_TRUNC`, the `write` family, `fsync`
//! and `fdatasync`, `rename*`, `unlink*`, `mkdir*`, `link*`, `symlink*`,
//! `truncate`, `fallocate`, `chmod`/`chown` families, xattr writes,
//! `utimensat`, `copy_file_range`, `sendfile`, `splice`, `mount`... (the full
//! list is [`mutating_syscalls`]). Writes to pipes (a command's stdout) count
//! too: a crash just before printing "done" is a crash point like any other.
//!
//! The recipe, for an operation and a start state:
//!
//! 1. [`trace`] it once from the start state: the list of mutating calls it
//!    makes ([`Run::points`], each with the files involved);
//! 2. for every `k` in `1..=n`, restore the start state and [`kill_at`] `k`:
//!    every process of the command is SIGKILLed on *entry* to its k-th
//!    mutating call, before the kernel runs it. Every call the same thread
//!    made before it has completed; a call another thread or process had
//!    entered but not finished may or may not take effect, as at a real
//!    crash ([`Point::result`] says which calls were seen to return);
//! 3. check what is on disk after each kill.
//!
//! [`sweep`] does all three, and also checks that each killed run made the
//! same calls as the traced one up to the kill (a nondeterministic command
//! would otherwise make the sweep silently test something else).
//!
//! ```no_run
//! use std::process::Command;
//! use stagehand_testbed::crashpoints;
//!
//! let dir = std::path::Path::new("/tmp/state");
//! let traced = crashpoints::sweep(
//!     || {
//!         let mut c = Command::new("my-tool");
//!         c.arg("--dir").arg(dir);
//!         c
//!     },
//!     || { /* put `dir` back into the start state */ },
//!     |run| {
//!         // run.killed_at: None for the traced run, Some(k) when killed at
//!         // run.crash_point(); check `dir` holds the old or the new state.
//!     },
//! );
//! println!("{} crash points:\n{}", traced.points.len(), traced.listing());
//! ```
//!
//! # Why not `strace -e inject=...:signal=KILL:when=k`
//!
//! strace counts injections *per system call and per process*, so `when=k`
//! over a set of calls kills at the k-th call *of each kind*, not at the k-th
//! mutating call; and it kills only the process that makes the call, while
//! its parent carries on (a hook runner would see a killed hook, not a crash).
//! A power cut stops everything at one instant. This module is a small ptrace
//! tracer that counts one sequence across all processes and threads of the
//! command and SIGKILLs all of them at once. Its own test checks it against
//! `strace`, which must see the same mutating calls.
//!
//! Limits: a SIGKILL is not a power cut — data written but not fsynced
//! survives a kill (the page cache outlives the process) and would not survive
//! a power loss, so durability (fsync before rename, directory fsync before
//! reporting success) is checked separately by looking at the order of
//! [`Run::points`]. Writes through shared memory maps are not system calls
//! and are invisible here (`msync` is counted). Tracees must be native
//! (not 32-bit compat) processes. Needs `ptrace` (root, or the same user with
//! `kernel.yama.ptrace_scope` <= 1) and Linux >= 5.3 (`PTRACE_GET_SYSCALL_INFO`).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether [`adopt_orphans`] was called.
static ADOPTING: AtomicBool = AtomicBool::new(false);

/// Make this process the reaper of the processes its traced commands leave
/// orphaned, and reap them after each run.
///
/// A command killed at a crash point often has a parent that is killed with
/// it — `nsenter` for a command run inside a test-bed machine, whose child
/// lives in the machine's PID namespace. The orphan goes to the nearest
/// *child subreaper* above it, or to the host's init, which in a container
/// may never reap it: its zombie then keeps its PID "alive" for `kill(pid,
/// 0)`, unlike on a real system, where systemd reaps it at once. With this,
/// the orphans come here and are reaped at the end of [`trace`]/[`kill_at`].
///
/// Reaping waits for *any* child of this process, so call it only in a
/// process that starts no other children concurrently (the crash sweep's
/// command, a test binary with one test).
pub fn adopt_orphans() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) has no memory preconditions.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "PR_SET_CHILD_SUBREAPER: {}",
        std::io::Error::last_os_error()
    );
    ADOPTING.store(true, Ordering::SeqCst);
}

/// How long a traced command may run before it is killed and the harness panics.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// One mutating system call the command made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Its 1-based position among all mutating calls of the run.
    pub index: usize,
    /// Which process or thread made it: 0 is the command itself, then in the
    /// order the tracer learnt of them.
    pub process: usize,
    /// The system call (`"openat"`, `"rename"`, `"fsync"`, ...).
    pub syscall: &'static str,
    /// The files involved, as the kernel names them at that instant: paths
    /// (relative ones resolved against the directory fd or the cwd), what a
    /// file descriptor refers to (`/tmp/x/.a.tmp123`, `pipe:[4242]`), and
    /// for `openat` the flags that make it mutating (`[create,trunc]`).
    /// Several files are separated by ` -> `.
    pub detail: String,
    /// What it returned (a negative errno on failure), or `None` if it was
    /// not seen to return: the call the run was killed at, or a call another
    /// thread or process had entered and not finished when the kill came
    /// (which, as at a real crash, may or may not have taken effect).
    pub result: Option<i64>,
}

impl Point {
    /// Whether `other` is the same call, ignoring numbers in the detail
    /// (pids in temporary names, pipe inodes differ from run to run).
    pub fn same_call(&self, other: &Point) -> bool {
        fn norm(s: &str) -> String {
            let mut out = String::with_capacity(s.len());
            let mut in_digits = false;
            for c in s.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('#');
                    }
                    in_digits = true;
                } else {
                    out.push(c);
                    in_digits = false;
                }
            }
            out
        }
        self.syscall == other.syscall && norm(&self.detail) == norm(&other.detail)
    }
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {} {}", self.index, self.syscall, self.detail)?;
        match self.result {
            Some(r) if r < 0 => write!(f, " = -{}", std::io::Error::from_raw_os_error(-r as i32))?,
            Some(_) => {}
            None => write!(f, " (did not return)")?,
        }
        if self.process != 0 {
            write!(f, " (process {})", self.process)?;
        }
        Ok(())
    }
}

/// What happened to a traced command.
#[derive(Debug)]
pub struct Run {
    /// How the command ended (killed by SIGKILL when [`Run::killed_at`] is set).
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Every mutating call it entered, in order. When it was killed, the last
    /// one is the call it was killed at, which did not run.
    pub points: Vec<Point>,
    /// The crash point, when the run was killed.
    pub killed_at: Option<usize>,
}

impl Run {
    /// The call the command was killed at (it did not run), if it was killed.
    pub fn crash_point(&self) -> Option<&Point> {
        self.killed_at.map(|k| &self.points[k - 1])
    }

    /// The points, one per line, for assertion messages.
    pub fn listing(&self) -> String {
        self.points.iter().map(|p| format!("{p}\n")).collect()
    }

    /// Standard output and error, lossily decoded, for assertion messages.
    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

/// Run `cmd` to completion under the tracer, recording its mutating calls.
///
/// Standard input is `/dev/null`; standard output and error are captured.
pub fn trace(cmd: Command) -> Run {
    traced(cmd, None)
}

/// Run `cmd` and SIGKILL all its processes on entry to its `k`-th (1-based)
/// mutating call. If it makes fewer than `k`, it runs to completion and
/// [`Run::killed_at`] is `None`.
pub fn kill_at(cmd: Command, k: usize) -> Run {
    assert!(k >= 1, "crash points are numbered from 1");
    traced(cmd, Some(k))
}

/// The whole sweep: `reset` to the start state, [`trace`] `make()`, then for
/// every crash point `k`: `reset`, [`kill_at`] `k`, and `verify` the result.
/// `verify` also sees the traced, uninterrupted run first (its
/// [`Run::killed_at`] is `None`). Returns the traced run.
///
/// Panics if a killed run did not reach its crash point or made different
/// calls than the traced run before it (the command is not deterministic
/// from the start state, so the sweep would not cover what it claims).
pub fn sweep(
    mut make: impl FnMut() -> Command,
    mut reset: impl FnMut(),
    mut verify: impl FnMut(&Run),
) -> Run {
    reset();
    let full = trace(make());
    verify(&full);
    for k in 1..=full.points.len() {
        reset();
        let run = kill_at(make(), k);
        assert_eq!(
            run.killed_at,
            Some(k),
            "the command finished before crash point {k}; traced run:\n{}this run:\n{}{}",
            full.listing(),
            run.listing(),
            run.output()
        );
        for (a, b) in full.points.iter().zip(&run.points) {
            assert!(
                a.same_call(b),
                "run killed at {k} diverged from the traced run at {a} vs {b}; traced:\n{}this run:\n{}",
                full.listing(),
                run.listing()
            );
        }
        verify(&run);
    }
    full
}

/// Where a system call names a file.
#[derive(Clone, Copy)]
enum Arg {
    /// A file descriptor in argument `n`.
    Fd(usize),
    /// A path in argument `n` (relative to the cwd).
    Path(usize),
    /// A directory fd in argument `.0` and a path in argument `.1`.
    At(usize, usize),
    /// A string that is not a path to resolve (a symlink target).
    Str(usize),
}

/// A system call that may mutate a file system: number, name, arguments.
struct Sys {
    nr: libc::c_long,
    name: &'static str,
    args: &'static [Arg],
    /// For the open family: where the flags are; such a call is mutating
    /// only when they ask for writing, creating or truncating.
    open_flags: OpenFlags,
}

#[derive(Clone, Copy)]
enum OpenFlags {
    /// Not an open call: always mutating.
    NotOpen,
    /// The flags are argument `n`.
    Arg(usize),
    /// Argument `n` points at a `struct open_how` (`openat2`).
    How(usize),
}

macro_rules! sys {
    ($nr:ident, $name:literal, [$($a:expr),*]) => {
        Sys { nr: libc::$nr, name: $name, args: &[$($a),*], open_flags: OpenFlags::NotOpen }
    };
    ($nr:ident, $name:literal, [$($a:expr),*], flags = $f:expr) => {
        Sys { nr: libc::$nr, name: $name, args: &[$($a),*], open_flags: $f }
    };
}

use Arg::{At, Fd, Path, Str};

/// Every system call this module counts as mutating.
const MUTATING: &[Sys] = &[
    sys!(SYS_openat, "openat", [At(0, 1)], flags = OpenFlags::Arg(2)),
    sys!(
        SYS_openat2,
        "openat2",
        [At(0, 1)],
        flags = OpenFlags::How(2)
    ),
    sys!(SYS_write, "write", [Fd(0)]),
    sys!(SYS_writev, "writev", [Fd(0)]),
    sys!(SYS_pwrite64, "pwrite64", [Fd(0)]),
    sys!(SYS_pwritev, "pwritev", [Fd(0)]),
    sys!(SYS_pwritev2, "pwritev2", [Fd(0)]),
    sys!(SYS_fsync, "fsync", [Fd(0)]),
    sys!(SYS_fdatasync, "fdatasync", [Fd(0)]),
    sys!(SYS_sync_file_range, "sync_file_range", [Fd(0)]),
    sys!(SYS_syncfs, "syncfs", [Fd(0)]),
    sys!(SYS_sync, "sync", []),
    sys!(SYS_msync, "msync", []),
    sys!(SYS_renameat, "renameat", [At(0, 1), At(2, 3)]),
    sys!(SYS_renameat2, "renameat2", [At(0, 1), At(2, 3)]),
    sys!(SYS_unlinkat, "unlinkat", [At(0, 1)]),
    sys!(SYS_mkdirat, "mkdirat", [At(0, 1)]),
    sys!(SYS_mknodat, "mknodat", [At(0, 1)]),
    sys!(SYS_linkat, "linkat", [At(0, 1), At(2, 3)]),
    sys!(SYS_symlinkat, "symlinkat", [Str(0), At(1, 2)]),
    sys!(SYS_truncate, "truncate", [Path(0)]),
    sys!(SYS_ftruncate, "ftruncate", [Fd(0)]),
    sys!(SYS_fallocate, "fallocate", [Fd(0)]),
    sys!(SYS_fchmod, "fchmod", [Fd(0)]),
    sys!(SYS_fchmodat, "fchmodat", [At(0, 1)]),
    sys!(SYS_fchown, "fchown", [Fd(0)]),
    sys!(SYS_fchownat, "fchownat", [At(0, 1)]),
    sys!(SYS_setxattr, "setxattr", [Path(0)]),
    sys!(SYS_lsetxattr, "lsetxattr", [Path(0)]),
    sys!(SYS_fsetxattr, "fsetxattr", [Fd(0)]),
    sys!(SYS_removexattr, "removexattr", [Path(0)]),
    sys!(SYS_lremovexattr, "lremovexattr", [Path(0)]),
    sys!(SYS_fremovexattr, "fremovexattr", [Fd(0)]),
    sys!(SYS_utimensat, "utimensat", [At(0, 1)]),
    sys!(SYS_copy_file_range, "copy_file_range", [Fd(2)]),
    sys!(SYS_sendfile, "sendfile", [Fd(0)]),
    sys!(SYS_splice, "splice", [Fd(2)]),
    sys!(SYS_mount, "mount", [Path(1)]),
    sys!(SYS_umount2, "umount2", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_open, "open", [Path(0)], flags = OpenFlags::Arg(1)),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_creat, "creat", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_rename, "rename", [Path(0), Path(1)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_unlink, "unlink", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_rmdir, "rmdir", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_mkdir, "mkdir", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_mknod, "mknod", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_link, "link", [Path(0), Path(1)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_symlink, "symlink", [Str(0), Path(1)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_chmod, "chmod", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_chown, "chown", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_lchown, "lchown", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_utimes, "utimes", [Path(0)]),
    #[cfg(target_arch = "x86_64")]
    sys!(SYS_futimesat, "futimesat", [At(0, 1)]),
];

/// The names of the system calls counted as mutating on this architecture
/// (the `open` family only when it writes, creates or truncates).
pub fn mutating_syscalls() -> Vec<&'static str> {
    MUTATING.iter().map(|s| s.name).collect()
}

/// Whether open flags ask for a change: write access, create or truncate.
fn open_mutates(flags: u64) -> bool {
    let flags = flags as libc::c_int;
    (flags & libc::O_ACCMODE) != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0
}

fn open_flag_names(flags: u64) -> String {
    let flags = flags as libc::c_int;
    let mut v = Vec::new();
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        v.push("write");
    }
    if flags & libc::O_ACCMODE == libc::O_RDWR {
        v.push("rdwr");
    }
    if flags & libc::O_CREAT != 0 {
        v.push("create");
    }
    if flags & libc::O_EXCL != 0 {
        v.push("excl");
    }
    if flags & libc::O_TRUNC != 0 {
        v.push("trunc");
    }
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        v.push("tmpfile");
    }
    format!("[{}]", v.join(","))
}

/// Read a NUL-terminated string from the tracee (at most 4096 bytes).
fn read_string(pid: libc::pid_t, mut addr: u64) -> String {
    if addr == 0 {
        return String::from("(null)");
    }
    let mut out = Vec::new();
    while out.len() < 4096 {
        // Never cross a page boundary in one read: the next page may be unmapped.
        let room = 4096 - (addr as usize % 4096);
        let mut buf = vec![0u8; room.min(256)];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: both iovecs describe valid buffers of the stated length
        // (the remote one in the stopped tracee; the kernel checks it).
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        if n <= 0 {
            break;
        }
        let got = &buf[..n as usize];
        if let Some(end) = got.iter().position(|b| *b == 0) {
            out.extend_from_slice(&got[..end]);
            return String::from_utf8_lossy(&out).into_owned();
        }
        out.extend_from_slice(got);
        addr += n as u64;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fd_target(pid: libc::pid_t, fd: i32) -> String {
    if fd == libc::AT_FDCWD {
        return std::fs::read_link(format!("/proc/{pid}/cwd"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "(cwd)".into());
    }
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("fd {fd}"))
}

fn describe(pid: libc::pid_t, sys: &Sys, args: &[u64; 6], flags: Option<u64>) -> String {
    let parts: Vec<String> = sys
        .args
        .iter()
        .map(|a| match *a {
            Fd(i) => fd_target(pid, args[i] as i32),
            Str(i) => read_string(pid, args[i]),
            Path(i) => {
                let p = read_string(pid, args[i]);
                if p.starts_with('/') {
                    p
                } else {
                    format!("{}/{p}", fd_target(pid, libc::AT_FDCWD))
                }
            }
            At(d, i) => {
                let base = fd_target(pid, args[d] as i32);
                if args[i] == 0 {
                    // utimensat(fd, NULL, ...) acts on the fd itself.
                    return base;
                }
                let p = read_string(pid, args[i]);
                if p.starts_with('/') {
                    p
                } else if p.is_empty() {
                    base
                } else {
                    format!("{base}/{p}")
                }
            }
        })
        .collect();
    let mut s = parts.join(" -> ");
    if let Some(f) = flags {
        s.push(' ');
        s.push_str(&open_flag_names(f));
    }
    s
}

/// The first 8 bytes of `struct open_how` (its `flags`) for `openat2`.
fn openat2_flags(pid: libc::pid_t, addr: u64) -> u64 {
    let mut flags = 0u64;
    let local = libc::iovec {
        iov_base: (&mut flags as *mut u64).cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: valid 8-byte local buffer; the kernel checks the remote one.
    unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    flags
}

/// If the system call at this entry stop is mutating, its name and detail.
fn classify(pid: libc::pid_t, nr: u64, args: &[u64; 6]) -> Option<(&'static str, String)> {
    let sys = MUTATING.iter().find(|s| s.nr as u64 == nr)?;
    let flags = match sys.open_flags {
        OpenFlags::NotOpen => None,
        OpenFlags::Arg(i) => Some(args[i]),
        OpenFlags::How(i) => Some(openat2_flags(pid, args[i])),
    };
    if let Some(f) = flags {
        if !open_mutates(f) {
            return None;
        }
    }
    // creat() is open(O_CREAT|O_WRONLY|O_TRUNC).
    let flags = if sys.name == "creat" {
        Some((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64)
    } else {
        flags
    };
    Some((sys.name, describe(pid, sys, args, flags)))
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ptrace(req: libc::c_uint, pid: libc::pid_t, addr: usize, data: usize) -> libc::c_long {
    // SAFETY: every request used here either takes no pointer (addr/data are
    // plain integers) or points data at a live, large enough local buffer.
    unsafe {
        libc::ptrace(
            req,
            pid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    }
}

fn resume(pid: libc::pid_t, sig: i32) {
    // ESRCH: it died meanwhile (killed); the exit is reaped by the loop.
    ptrace(libc::PTRACE_SYSCALL, pid, 0, sig as usize);
}

/// `(op, nr, args)` of the system call at a syscall stop; for an exit stop,
/// `nr` is 0 and `args[0]` the return value.
fn syscall_info(pid: libc::pid_t) -> Option<(u8, u64, [u64; 6])> {
    // SAFETY: an all-zero ptrace_syscall_info is a valid value.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    let r = ptrace(
        libc::PTRACE_GET_SYSCALL_INFO,
        pid,
        size,
        &mut info as *mut _ as usize,
    );
    if r <= 0 {
        return None;
    }
    if info.op == libc::PTRACE_SYSCALL_INFO_ENTRY {
        // SAFETY: op says the entry member is the one filled in.
        let e = unsafe { info.u.entry };
        Some((info.op, e.nr, e.args))
    } else if info.op == libc::PTRACE_SYSCALL_INFO_EXIT {
        // SAFETY: op says the exit member is the one filled in.
        let x = unsafe { info.u.exit };
        Some((info.op, 0, [x.sval as u64, 0, 0, 0, 0, 0]))
    } else {
        Some((info.op, 0, [0; 6]))
    }
}

fn traced(cmd: Command, kill_at: Option<usize>) -> Run {
    // A fresh thread: ptrace tracers are threads, and with __WNOTHREAD it
    // waits only for its own children and tracees, never for processes
    // other threads of a test spawned.
    std::thread::spawn(move || traced_in_this_thread(cmd, kill_at))
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn traced_in_this_thread(mut cmd: Command, kill_at: Option<usize>) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure only calls ptrace(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(
                libc::PTRACE_TRACEME,
                0,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            ) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?} under the tracer: {e}"));
    let main = child.id() as libc::pid_t;
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));

    // Watchdog: kill everything if the command hangs.
    let live: Arc<Mutex<HashSet<libc::pid_t>>> = Arc::new(Mutex::new(HashSet::from([main])));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let live = live.clone();
        std::thread::spawn(move || {
            if done_rx.recv_timeout(TIMEOUT) == Err(mpsc::RecvTimeoutError::Timeout) {
                for p in live.lock().unwrap().iter() {
                    // SAFETY: kill(2) has no memory preconditions.
                    unsafe { libc::kill(*p, libc::SIGKILL) };
                }
                return true;
            }
            false
        })
    };

    let wait = |status: &mut i32| -> libc::pid_t {
        loop {
            // SAFETY: status points at a live i32.
            let r = unsafe { libc::waitpid(-1, status, libc::__WALL | libc::__WNOTHREAD) };
            if r == -1 && errno() == libc::EINTR {
                continue;
            }
            return r;
        }
    };

    // The child stops with SIGTRAP right after its exec (PTRACE_TRACEME).
    let mut status = 0;
    let r = wait(&mut status);
    assert!(
        r == main && libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP,
        "traced child did not stop after exec (pid {r}, status {status:#x})"
    );
    let opts = libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_EXITKILL;
    assert_eq!(
        ptrace(libc::PTRACE_SETOPTIONS, main, 0, opts as usize),
        0,
        "PTRACE_SETOPTIONS: {}",
        std::io::Error::last_os_error()
    );
    resume(main, 0);

    // pid -> process index
    let mut tracees: HashMap<libc::pid_t, usize> = HashMap::from([(main, 0)]);
    let mut next_index = 1;
    // New tracees announced by a fork event whose initial SIGSTOP is still due.
    let mut expect_stop: HashSet<libc::pid_t> = HashSet::new();
    let mut points: Vec<Point> = Vec::new();
    // pid -> its mutating call in flight (index into points).
    let mut in_flight: HashMap<libc::pid_t, usize> = HashMap::new();
    let mut killed_at = None;
    let mut main_status = None;
    let kill_all = |tracees: &HashMap<libc::pid_t, usize>| {
        for p in tracees.keys() {
            // SAFETY: kill(2) has no memory preconditions.
            unsafe { libc::kill(*p, libc::SIGKILL) };
            // Wake it from its ptrace stop so it dies now (ESRCH if gone).
            ptrace(libc::PTRACE_CONT, *p, 0, 0);
        }
    };

    while !tracees.is_empty() {
        let pid = wait(&mut status);
        if pid == -1 {
            assert_eq!(
                errno(),
                libc::ECHILD,
                "waitpid: {}",
                std::io::Error::last_os_error()
            );
            break;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            tracees.remove(&pid);
            live.lock().unwrap().remove(&pid);
            if pid == main {
                main_status = Some(status);
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        let known = tracees.contains_key(&pid);
        if !known {
            // A new process whose first stop beat its parent's fork event.
            tracees.insert(pid, next_index);
            next_index += 1;
            live.lock().unwrap().insert(pid);
        }
        if killed_at.is_some() {
            // Everything is being killed; one that was not known yet goes too.
            kill_all(&HashMap::from([(pid, 0)]));
            continue;
        }
        if sig == libc::SIGTRAP | 0x80 {
            if let Some((op, nr, args)) = syscall_info(pid) {
                if op == libc::PTRACE_SYSCALL_INFO_EXIT {
                    if let Some(i) = in_flight.remove(&pid) {
                        points[i].result = Some(args[0] as i64);
                    }
                } else if op == libc::PTRACE_SYSCALL_INFO_ENTRY {
                    if let Some((name, detail)) = classify(pid, nr, &args) {
                        in_flight.insert(pid, points.len());
                        points.push(Point {
                            index: points.len() + 1,
                            process: tracees[&pid],
                            syscall: name,
                            detail,
                            result: None,
                        });
                        if kill_at == Some(points.len()) {
                            killed_at = kill_at;
                            kill_all(&tracees);
                            continue;
                        }
                    }
                }
            }
            resume(pid, 0);
        } else if sig == libc::SIGTRAP && event != 0 {
            if matches!(
                event,
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE
            ) {
                let mut new: libc::c_ulong = 0;
                ptrace(
                    libc::PTRACE_GETEVENTMSG,
                    pid,
                    0,
                    &mut new as *mut _ as usize,
                );
                let new = new as libc::pid_t;
                if let std::collections::hash_map::Entry::Vacant(e) = tracees.entry(new) {
                    e.insert(next_index);
                    next_index += 1;
                    expect_stop.insert(new);
                    live.lock().unwrap().insert(new);
                }
            }
            resume(pid, 0);
        } else if sig == libc::SIGSTOP && (!known || expect_stop.remove(&pid)) {
            // The initial stop of a new tracee: not a real signal.
            resume(pid, 0);
        } else {
            // A signal-delivery stop: pass the signal on. A group stop (job
            // control) has no siginfo; just let it run on.
            // SAFETY: an all-zero siginfo_t is a valid buffer.
            let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let group_stop =
                ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut si as *mut _ as usize) == -1;
            resume(pid, if group_stop { 0 } else { sig });
        }
    }
    if ADOPTING.load(Ordering::SeqCst) {
        // Killed processes whose parent was killed too were adopted by this
        // process (see [`adopt_orphans`]): reap them, as an init would.
        let mut st = 0;
        // SAFETY: st points at a live i32.
        while unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG | libc::__WALL) } > 0 {}
    }
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap();
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    // The child was reaped above; std's Child must not wait for it again.
    drop(child);
    assert!(
        !timed_out,
        "traced command ran longer than {TIMEOUT:?} and was killed; calls so far:\n{}",
        points
            .iter()
            .map(|p: &Point| format!("{p}\n"))
            .collect::<String>()
    );
    Run {
        status: ExitStatus::from_raw(main_status.expect("the traced command was reaped")),
        stdout,
        stderr,
        points,
        killed_at,
    }
}
