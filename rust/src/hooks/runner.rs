//! Running one hook inside bubblewrap: the sandbox layout, the environment,
//! output capture with a bounded tail, and the timeout that kills the hook's
//! whole process tree.
//!
//! The process tree: stagehand spawns `bwrap`; bwrap clones the sandbox's
//! PID 1 into a new PID namespace (`--unshare-pid`), and that init runs the
//! hook. Everything the hook forks, daemonized or not, stays in the namespace,
//! and the kernel kills every process of a PID namespace when its PID 1 dies.
//! So:
//!
//! - on timeout or cancellation stagehand SIGKILLs the namespace's PID 1
//!   (bwrap's child); bwrap itself stays alive to reap it and exits only when
//!   the namespace is empty, so "bwrap exited" means "nothing of the hook is
//!   left", with no zombie left for anyone else to reap;
//! - if stagehand itself dies, `--die-with-parent` (`PR_SET_PDEATHSIG`) kills
//!   bwrap, which takes the namespace with it.
//!
//! Output: stdout and stderr share one pipe, read by this thread with `poll`
//! alongside a pidfd of bwrap, keeping only the last [`OUTPUT_TAIL_LIMIT`]
//! bytes. A hook writing without end never blocks (the pipe is always
//! drained) and never grows memory.
//!
//! Without `pidfd_open` (Linux before 5.3, as on RHEL 8's 4.18; valgrind
//! 3.19; a seccomp filter refusing it) bwrap's exit is polled instead with a
//! non-blocking `waitpid` every [`EXIT_POLL`], between waits on the pipe:
//! the same outcomes, at most that much later.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gio::prelude::*;
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal};

use crate::error::{Error, HookEnd, Result};

/// How many bytes of a hook's combined stdout/stderr are kept (the tail).
pub const OUTPUT_TAIL_LIMIT: usize = 8 * 1024;

/// Where the old (booted) root appears inside the sandbox.
pub const SANDBOX_OLD_ROOT: &str = "/run/stagehand/old";

/// How long to wait for the process tree to go after SIGKILL before giving
/// up on a clean reap and killing bwrap too.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// How often bwrap's exit is looked for when there is no pidfd to wait on.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// How this thread learns that bwrap exited.
enum Watch {
    /// A pidfd of bwrap: readable when it exits.
    Pidfd(OwnedFd),
    /// No pidfd (`pidfd_open` unavailable): `try_wait` every [`EXIT_POLL`].
    Poll,
}

impl Watch {
    /// A pidfd of `child`, or [`Watch::Poll`] where the system has none.
    fn of(child: &Child) -> std::io::Result<Watch> {
        match rustix::process::pidfd_open(
            Pid::from_child(child),
            rustix::process::PidfdFlags::empty(),
        ) {
            Ok(fd) => Ok(Watch::Pidfd(fd)),
            // ENOSYS: kernel before 5.3, or valgrind; EPERM: a seccomp
            // filter that refuses system calls it does not know.
            Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
                log::debug!("pidfd_open is not available: polling for the hook's exit");
                Ok(Watch::Poll)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The roots a hook runs against, in the caller's file system.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The new deployment's checkout.
    pub new_root: PathBuf,
    /// The new deployment's stateroot `/var`.
    pub new_var: PathBuf,
    /// The old deployment's checkout and its `/var`, if there is one.
    pub old: Option<(PathBuf, PathBuf)>,
}

/// What bwrap needs to find in the new root to mount over.
const MOUNT_POINTS: &[&str] = &["proc", "dev", "tmp", "run", "var", "etc"];

impl Layout {
    /// The bwrap arguments up to (not including) the command.
    fn bwrap_args(&self) -> std::result::Result<Vec<OsString>, String> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |xs: &[&dyn AsRef<std::ffi::OsStr>]| {
            for x in xs {
                a.push(x.as_ref().to_os_string());
            }
        };
        for m in MOUNT_POINTS {
            if !self.new_root.join(m).is_dir() {
                return Err(format!(
                    "the new deployment has no /{m} directory for the sandbox to mount on"
                ));
            }
        }
        push(&[
            &"--die-with-parent",
            &"--unshare-pid",
            &"--unshare-ipc",
            &"--unshare-uts",
            &"--unshare-net",
            &"--unshare-cgroup-try",
            &"--new-session",
            // Root without the capabilities that could undo the sandbox
            // (mount, raw I/O, modules, reboot, ptrace...): what remains lets
            // a check read any file and run helpers as other users.
            &"--cap-drop",
            &"ALL",
        ]);
        for cap in [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
        ] {
            push(&[&"--cap-add", &cap]);
        }
        push(&[&"--ro-bind", &self.new_root, &"/"]);
        // The image's own default configuration; see docs/hooks.md for why
        // not the deployment's (possibly merged) /etc.
        let usr_etc = self.new_root.join("usr/etc");
        if usr_etc.is_dir() {
            push(&[&"--ro-bind", &usr_etc, &"/etc"]);
        }
        push(&[&"--ro-bind", &self.new_var, &"/var"]);
        push(&[
            &"--proc", &"/proc", &"--dev", &"/dev", &"--tmpfs", &"/tmp", &"--tmpfs", &"/run",
        ]);
        if self.new_var.join("tmp").is_dir() {
            push(&[&"--tmpfs", &"/var/tmp"]);
        }
        if let Some((old_root, old_var)) = &self.old {
            push(&[&"--ro-bind", old_root, &SANDBOX_OLD_ROOT]);
            if old_root.join("var").is_dir() {
                push(&[&"--ro-bind", old_var, &format!("{SANDBOX_OLD_ROOT}/var")]);
            }
        }
        push(&[&"--chdir", &"/"]);
        Ok(a)
    }
}

/// How a run ended, with its output.
#[derive(Debug, Clone)]
pub(crate) struct RunOutcome {
    /// `None` = exit status 0.
    pub end: Option<HookEnd>,
    pub duration: Duration,
    pub output_bytes: u64,
    pub tail: String,
}

struct Tail {
    buf: VecDeque<u8>,
    total: u64,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let data = if data.len() > OUTPUT_TAIL_LIMIT {
            &data[data.len() - OUTPUT_TAIL_LIMIT..]
        } else {
            data
        };
        let over = (self.buf.len() + data.len()).saturating_sub(OUTPUT_TAIL_LIMIT);
        self.buf.drain(..over);
        self.buf.extend(data);
    }

    /// The tail as text; when earlier output was dropped, start at a line
    /// boundary so the first line is not a fragment.
    fn text(&self) -> String {
        let bytes: Vec<u8> = self.buf.iter().copied().collect();
        let mut s = &bytes[..];
        if self.total > bytes.len() as u64 {
            if let Some(i) = s.iter().position(|&b| b == b'\n') {
                if i + 1 < s.len() {
                    s = &s[i + 1..];
                }
            }
        }
        String::from_utf8_lossy(s).into_owned()
    }
}

fn pids_of_children(pid: u32) -> Vec<Pid> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .filter_map(Pid::from_raw)
        .collect()
}

/// Kill the hook's PID namespace: SIGKILL its init (bwrap's child), which
/// makes the kernel kill everything else in it. If bwrap has no child (it
/// failed, or has not cloned yet), kill bwrap itself.
fn kill_tree(child: &Child, watch: &Watch) {
    let inits = pids_of_children(child.id());
    if inits.is_empty() {
        match watch {
            Watch::Pidfd(fd) => {
                let _ = rustix::process::pidfd_send_signal(fd, Signal::KILL);
            }
            // Not reaped yet (only `try_wait` reaps it, and then this is not
            // called again), so the PID is still bwrap's.
            Watch::Poll => {
                let _ = rustix::process::kill_process(Pid::from_child(child), Signal::KILL);
            }
        }
    }
    for p in inits {
        let _ = rustix::process::kill_process(p, Signal::KILL);
    }
}

enum Wake {
    Exited,
    Deadline,
    Cancelled,
}

/// Spawn bwrap running `exec_path` (a path inside the sandbox) and wait for
/// it, at most `timeout`.
pub(crate) fn run(
    bwrap: &Path,
    layout: &Layout,
    exec_path: &str,
    env: &[(String, String)],
    timeout: Duration,
    cancellable: Option<&gio::Cancellable>,
) -> Result<RunOutcome> {
    let start = Instant::now();
    let spawn_failed = |msg: String| {
        Ok(RunOutcome {
            end: Some(HookEnd::SpawnFailed(msg)),
            duration: start.elapsed(),
            output_bytes: 0,
            tail: String::new(),
        })
    };
    let args = match layout.bwrap_args() {
        Ok(a) => a,
        Err(msg) => return spawn_failed(msg),
    };
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("creating a pipe for", exec_path, e.into()))?;
    let wr2 = wr
        .try_clone()
        .map_err(|e| Error::io("creating a pipe for", exec_path, e))?;
    let mut cmd = Command::new(bwrap);
    cmd.args(&args)
        .arg("--")
        .arg(exec_path)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(wr))
        .stderr(Stdio::from(wr2));
    let spawned = cmd.spawn();
    // Our copies of the write end must go now, or the pipe never reaches EOF.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return spawn_failed(format!("running {}: {e}", bwrap.display())),
    };
    let watch = match Watch::of(&child) {
        Ok(w) => w,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::io("watching the sandbox of", exec_path, e));
        }
    };

    let mut tail = Tail {
        buf: VecDeque::with_capacity(OUTPUT_TAIL_LIMIT),
        total: 0,
    };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pipe_open = true;
    let deadline = start + timeout;
    let mut killed: Option<Wake> = None;
    let mut kill_deadline = None;

    let wake = loop {
        let now = Instant::now();
        let limit = match (killed.as_ref(), kill_deadline) {
            (Some(_), Some(kd)) => kd,
            _ => deadline,
        };
        if now >= limit {
            if killed.is_none() {
                kill_tree(&child, &watch);
                killed = Some(Wake::Deadline);
                kill_deadline = Some(now + KILL_GRACE);
                continue;
            }
            // The tree did not go within the grace period: take bwrap too
            // and stop waiting for a clean exit.
            let _ = child.kill();
            break killed.take().unwrap_or(Wake::Exited);
        }
        let mut wait = limit - now;
        if cancellable.is_some() {
            // GCancellable's fd cannot be borrowed without unsafe code; look
            // at it a few times a second instead.
            wait = wait.min(Duration::from_millis(100));
        }
        if let Watch::Poll = watch {
            wait = wait.min(EXIT_POLL);
        }
        let ts = rustix::event::Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: wait.subsec_nanos() as i64,
        };
        let mut fds = Vec::with_capacity(2);
        if pipe_open {
            fds.push(PollFd::new(&rd, PollFlags::IN));
        }
        if let Watch::Pidfd(fd) = &watch {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                kill_tree(&child, &watch);
                let _ = child.wait();
                return Err(Error::io("waiting for", exec_path, e.into()));
            }
        }
        let readable = pipe_open && !fds[0].revents().is_empty();
        let pidfd_ready = match watch {
            Watch::Pidfd(_) => !fds[fds.len() - 1].revents().is_empty(),
            Watch::Poll => false,
        };
        drop(fds);
        if readable {
            match rustix::io::read(&rd, &mut chunk[..]) {
                Ok(0) => pipe_open = false,
                Ok(n) => tail.push(&chunk[..n]),
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(_) => pipe_open = false,
            }
        }
        // `try_wait` reaps bwrap and keeps its status for the `wait` below.
        let exited = match watch {
            Watch::Pidfd(_) => pidfd_ready,
            Watch::Poll => matches!(child.try_wait(), Ok(Some(_))),
        };
        if exited {
            break killed.take().unwrap_or(Wake::Exited);
        }
        if killed.is_none() && cancellable.is_some_and(|c| c.is_cancelled()) {
            kill_tree(&child, &watch);
            killed = Some(Wake::Cancelled);
            kill_deadline = Some(Instant::now() + KILL_GRACE);
        }
    };
    // bwrap is gone, and with it every process that held the pipe: read what
    // is left without blocking on anyone.
    drain(&rd, &mut tail, &mut chunk);
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for", exec_path, e))?;
    let duration = start.elapsed();
    let text = tail.text();
    let end = match wake {
        Wake::Cancelled => return Err(Error::Cancelled),
        Wake::Deadline => Some(HookEnd::TimedOut(timeout)),
        Wake::Exited => classify(status, &text),
    };
    Ok(RunOutcome {
        end,
        duration,
        output_bytes: tail.total,
        tail: text,
    })
}

fn drain(rd: &OwnedFd, tail: &mut Tail, chunk: &mut [u8]) {
    // Non-blocking by poll with a zero timeout: a writer that escaped the
    // namespace (impossible with bwrap, but cheap to guard) cannot hang us.
    loop {
        let mut fds = [PollFd::new(rd, PollFlags::IN)];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(0) => return,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        match rustix::io::read(rd.as_fd(), &mut *chunk) {
            Ok(0) => return,
            Ok(n) => tail.push(&chunk[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Turn bwrap's exit status into how the hook ended.
///
/// bwrap reports the hook's own status, a signal as `128 + n` like a shell
/// does (so a hook that *exits* 130 reads as SIGINT; that is bwrap's
/// encoding and cannot be told apart). When bwrap itself fails to set up the
/// sandbox or to exec the hook it prints one `bwrap: ...` line and exits 1.
fn classify(status: std::process::ExitStatus, output: &str) -> Option<HookEnd> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        return Some(HookEnd::Signaled(sig));
    }
    match status.code() {
        Some(0) => None,
        Some(1) if output.starts_with("bwrap: ") && output.trim_end().lines().count() == 1 => {
            Some(HookEnd::SpawnFailed(output.trim_end().to_string()))
        }
        Some(c) if c > 128 && c <= 128 + 64 => Some(HookEnd::Signaled(c - 128)),
        Some(c) => Some(HookEnd::Exited(c)),
        None => Some(HookEnd::Exited(-1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_and_starts_on_a_line() {
        let mut t = Tail {
            buf: VecDeque::new(),
            total: 0,
        };
        t.push(b"first\n");
        assert_eq!(t.text(), "first\n");
        for i in 0..10_000 {
            t.push(format!("line {i}\n").as_bytes());
        }
        let s = t.text();
        assert!(s.len() <= OUTPUT_TAIL_LIMIT);
        assert!(s.ends_with("line 9999\n"), "{s}");
        assert!(s.starts_with("line "), "starts on a whole line: {s:.20}");
        assert!(!s.contains("first"));
        assert_eq!(
            t.total,
            6 + (0..10_000)
                .map(|i| format!("line {i}\n").len() as u64)
                .sum::<u64>()
        );
        // A single write larger than the limit.
        t.push(&vec![b'x'; 3 * OUTPUT_TAIL_LIMIT]);
        assert_eq!(t.buf.len(), OUTPUT_TAIL_LIMIT);
        assert!(t.buf.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn exit_statuses() {
        use std::os::unix::process::ExitStatusExt;
        let st = |code: i32| std::process::ExitStatus::from_raw(code << 8);
        assert_eq!(classify(st(0), ""), None);
        assert_eq!(classify(st(3), "x"), Some(HookEnd::Exited(3)));
        assert_eq!(classify(st(137), ""), Some(HookEnd::Signaled(9)));
        assert_eq!(
            classify(st(1), "bwrap: execvp /x: No such file or directory\n"),
            Some(HookEnd::SpawnFailed(
                "bwrap: execvp /x: No such file or directory".into()
            ))
        );
        assert_eq!(
            classify(st(1), "bwrap: looks like bwrap\nbut the hook said more\n"),
            Some(HookEnd::Exited(1))
        );
        assert_eq!(
            classify(std::process::ExitStatus::from_raw(9), ""),
            Some(HookEnd::Signaled(9))
        );
    }
}
