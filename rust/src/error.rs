//! The one error type of the library.
//!
//! Every variant is one *kind* of failure, and every kind maps to exactly one
//! [`ErrorCode`]. The C ABI exposes those codes unchanged in its
//! `STAGEHAND_ERROR` domain, and the cxx bridge carries the same code in its
//! exceptions, so a daemon can branch on the kind in any language while the
//! message carries the context for a person.

use std::path::PathBuf;

/// A result whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable numeric codes, one per error kind.
///
/// The numbers are ABI: they are the `STAGEHAND_ERROR` codes of the C library
/// and never change meaning. New kinds get new numbers at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A failure reported by libostree or GLib that has no kind of its own.
    Failed = 0,
    /// The caller passed something that can never be valid.
    InvalidArgument = 1,
    /// The operation was cancelled through its `GCancellable`.
    Cancelled = 2,
    /// A file operation failed (permission, missing directory, I/O error, full disk).
    Io = 3,
    /// The sysroot lock was still held by someone else when the timeout ran out.
    Locked = 4,
    /// The operation needs a system booted into an ostree deployment.
    NotBooted = 5,
    /// The sysroot (or another place stagehand must write) is read-only.
    ReadOnly = 6,
    /// A revision (ref or checksum) is not in the sysroot repository.
    UnknownRevision = 7,
    /// The stateroot does not exist in the sysroot.
    UnknownStateroot = 8,
    /// The commit has no kernel, so it cannot be deployed.
    NotBootable = 9,
    /// No deployment matches the given identity.
    UnknownDeployment = 10,
    /// A pre-upgrade hook refused the update (non-zero exit, signal or timeout).
    HookVetoed = 11,
    /// A pre-upgrade hook file is not acceptable (permissions, owner, type, symlink).
    HookInvalid = 12,
    /// The commit is on the denylist because it failed before.
    Denylisted = 13,
    /// A state file stagehand owns is unreadable, torn or inconsistent.
    Corrupt = 14,
    /// A guarded step was started and never completed.
    Interrupted = 15,
    /// A guarded step already completed with the same configuration.
    AlreadyComplete = 16,
    /// A guarded step completed with a different configuration.
    ConfigChanged = 17,
    /// No known-good deployment is left to roll back to.
    NoKnownGood = 18,
    /// The configuration file has an error.
    Config = 19,
    /// The running libostree or bootloader cannot do what was asked.
    Unsupported = 20,
    /// The operation needs the sysroot lock held by the caller, and nobody holds it.
    NotLocked = 21,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::Failed,
        ErrorCode::InvalidArgument,
        ErrorCode::Cancelled,
        ErrorCode::Io,
        ErrorCode::Locked,
        ErrorCode::NotBooted,
        ErrorCode::ReadOnly,
        ErrorCode::UnknownRevision,
        ErrorCode::UnknownStateroot,
        ErrorCode::NotBootable,
        ErrorCode::UnknownDeployment,
        ErrorCode::HookVetoed,
        ErrorCode::HookInvalid,
        ErrorCode::Denylisted,
        ErrorCode::Corrupt,
        ErrorCode::Interrupted,
        ErrorCode::AlreadyComplete,
        ErrorCode::ConfigChanged,
        ErrorCode::NoKnownGood,
        ErrorCode::Config,
        ErrorCode::Unsupported,
        ErrorCode::NotLocked,
    ];

    /// A short, stable, machine-friendly name (`"locked"`, `"hook-vetoed"`, ...).
    pub fn nick(self) -> &'static str {
        match self {
            ErrorCode::Failed => "failed",
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Io => "io",
            ErrorCode::Locked => "locked",
            ErrorCode::NotBooted => "not-booted",
            ErrorCode::ReadOnly => "read-only",
            ErrorCode::UnknownRevision => "unknown-revision",
            ErrorCode::UnknownStateroot => "unknown-stateroot",
            ErrorCode::NotBootable => "not-bootable",
            ErrorCode::UnknownDeployment => "unknown-deployment",
            ErrorCode::HookVetoed => "hook-vetoed",
            ErrorCode::HookInvalid => "hook-invalid",
            ErrorCode::Denylisted => "denylisted",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::Interrupted => "interrupted",
            ErrorCode::AlreadyComplete => "already-complete",
            ErrorCode::ConfigChanged => "config-changed",
            ErrorCode::NoKnownGood => "no-known-good",
            ErrorCode::Config => "config",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::NotLocked => "not-locked",
        }
    }

    /// The code with this number, if any.
    pub fn from_i32(v: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| *c as i32 == v)
    }
}

/// How a pre-upgrade hook ended when it vetoed an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEnd {
    /// It exited with this non-zero status.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// It ran past its timeout and its whole process tree was killed.
    TimedOut(std::time::Duration),
    /// It could not be started at all.
    SpawnFailed(String),
}

impl std::fmt::Display for HookEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookEnd::Exited(c) => write!(f, "exit status {c}"),
            HookEnd::Signaled(s) => write!(f, "killed by signal {s}"),
            HookEnd::TimedOut(d) => write!(f, "timed out after {}s", d.as_secs_f64()),
            HookEnd::SpawnFailed(e) => write!(f, "could not be started: {e}"),
        }
    }
}

/// Every way a stagehand operation can fail.
///
/// Match on [`Error::code`] to branch on the kind; display the error for a
/// person: the message names the file, deployment or hook involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A libostree or GLib call failed; `context` says what stagehand was doing.
    #[error("{context}: {source}")]
    Failed {
        /// What stagehand was doing.
        context: String,
        /// The underlying GLib error.
        #[source]
        source: glib::Error,
    },
    /// A caller-supplied value can never be valid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Cancelled through the caller's `GCancellable`.
    #[error("operation was cancelled")]
    Cancelled,
    /// A file operation on `path` failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What stagehand was doing.
        context: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The sysroot lock was held by another process for longer than the timeout.
    #[error("sysroot {} is locked by another process (waited {waited_ms} ms)", sysroot.display())]
    Locked {
        /// The sysroot path.
        sysroot: PathBuf,
        /// How long stagehand waited.
        waited_ms: u64,
    },
    /// The operation needs a booted ostree system.
    #[error("not booted into an ostree deployment: {0}")]
    NotBooted(String),
    /// `path` is on a read-only file system.
    #[error("{} is read-only; cannot {what}", path.display())]
    ReadOnly {
        /// The read-only location.
        path: PathBuf,
        /// What stagehand needed to write.
        what: String,
    },
    /// The revision does not resolve in the sysroot repository.
    #[error("revision {rev:?} is not in the sysroot repository{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    UnknownRevision {
        /// The ref or checksum that was asked for.
        rev: String,
        /// More detail from libostree, if any.
        detail: Option<String>,
    },
    /// The stateroot does not exist.
    #[error(
        "stateroot {0:?} does not exist in this sysroot (create it with `ostree admin os-init`)"
    )]
    UnknownStateroot(String),
    /// The commit has no kernel.
    #[error("commit {checksum} is not bootable: no kernel in /usr/lib/modules/*/vmlinuz, /usr/lib/ostree-boot or /boot")]
    NotBootable {
        /// The commit checksum.
        checksum: String,
    },
    /// No deployment matches.
    #[error("no deployment {0} in this sysroot")]
    UnknownDeployment(String),
    /// A pre-upgrade hook refused the update.
    #[error("pre-upgrade hook {hook} vetoed the update ({end}){}", if output_tail.is_empty() { String::new() } else { format!("; output ends with:\n{output_tail}") })]
    HookVetoed {
        /// The hook's path, as found in its directory.
        hook: String,
        /// How it ended.
        end: HookEnd,
        /// The last bytes of its combined stdout/stderr.
        output_tail: String,
    },
    /// A hook file is not acceptable.
    #[error("refusing pre-upgrade hook {}: {reason}", path.display())]
    HookInvalid {
        /// The offending file.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// The commit failed before and is denylisted.
    #[error("commit {checksum} is denylisted (failed {since}: {reason}); remove it from the denylist or allow it explicitly")]
    Denylisted {
        /// The commit.
        checksum: String,
        /// Why it was denylisted.
        reason: String,
        /// When, as RFC 3339 UTC.
        since: String,
    },
    /// A state file stagehand owns cannot be trusted.
    #[error("{} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (and where it was moved, if it was).
        detail: String,
    },
    /// A guarded step was interrupted.
    #[error("step {name:?} was started at {started} and never completed; inspect the system, then reset it or force")]
    Interrupted {
        /// The step name.
        name: String,
        /// When it started, RFC 3339 UTC.
        started: String,
    },
    /// A guarded step completed already with the same digest.
    #[error("step {name:?} already completed at {completed}")]
    AlreadyComplete {
        /// The step name.
        name: String,
        /// When it completed, RFC 3339 UTC.
        completed: String,
    },
    /// A guarded step ran with another configuration.
    #[error("step {name:?} ran with configuration digest {recorded}, not {requested}")]
    ConfigChanged {
        /// The step name.
        name: String,
        /// The digest on record.
        recorded: String,
        /// The digest asked for now.
        requested: String,
    },
    /// No known-good deployment remains.
    #[error("no known-good deployment left to roll back to: {0}")]
    NoKnownGood(String),
    /// The configuration file is wrong.
    #[error("{}:{line}: {msg}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// The 1-based line number (0 when the error is not tied to a line).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Not possible with this libostree, bootloader or system.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The caller was to hold the sysroot lock and nobody holds it.
    ///
    /// A programming error of the caller, not contention: waiting and
    /// retrying does not help (that is [`Error::Locked`]); taking the lock
    /// with `ostree_sysroot_lock()` first does.
    #[error("sysroot {} is not locked: {what} needs the caller to hold the sysroot lock (ostree_sysroot_lock())", sysroot.display())]
    NotLocked {
        /// The sysroot path.
        sysroot: PathBuf,
        /// What needed the lock.
        what: String,
    },
}

impl Error {
    /// The kind of this error, as a stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Failed { .. } => ErrorCode::Failed,
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::Cancelled => ErrorCode::Cancelled,
            Error::Io { .. } => ErrorCode::Io,
            Error::Locked { .. } => ErrorCode::Locked,
            Error::NotBooted(_) => ErrorCode::NotBooted,
            Error::ReadOnly { .. } => ErrorCode::ReadOnly,
            Error::UnknownRevision { .. } => ErrorCode::UnknownRevision,
            Error::UnknownStateroot(_) => ErrorCode::UnknownStateroot,
            Error::NotBootable { .. } => ErrorCode::NotBootable,
            Error::UnknownDeployment(_) => ErrorCode::UnknownDeployment,
            Error::HookVetoed { .. } => ErrorCode::HookVetoed,
            Error::HookInvalid { .. } => ErrorCode::HookInvalid,
            Error::Denylisted { .. } => ErrorCode::Denylisted,
            Error::Corrupt { .. } => ErrorCode::Corrupt,
            Error::Interrupted { .. } => ErrorCode::Interrupted,
            Error::AlreadyComplete { .. } => ErrorCode::AlreadyComplete,
            Error::ConfigChanged { .. } => ErrorCode::ConfigChanged,
            Error::NoKnownGood(_) => ErrorCode::NoKnownGood,
            Error::Config { .. } => ErrorCode::Config,
            Error::Unsupported(_) => ErrorCode::Unsupported,
            Error::NotLocked { .. } => ErrorCode::NotLocked,
        }
    }

    /// Wrap a GLib error with what stagehand was doing, keeping cancellation
    /// and read-only file systems as their own kinds.
    pub(crate) fn glib(context: impl Into<String>, source: glib::Error) -> Error {
        if source.matches(gio::IOErrorEnum::Cancelled) {
            return Error::Cancelled;
        }
        Error::Failed {
            context: context.into(),
            source,
        }
    }

    /// Wrap an I/O error on `path`; `EROFS` becomes [`Error::ReadOnly`].
    pub(crate) fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        let context = context.into();
        let path = path.into();
        if source.raw_os_error() == Some(libc::EROFS) {
            return Error::ReadOnly {
                path,
                what: context,
            };
        }
        Error::Io {
            context,
            path,
            source,
        }
    }
}

/// Attach context to GLib results.
pub(crate) trait GlibResultExt<T> {
    /// Turn a `glib::Error` into [`Error::Failed`] with `context`.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> GlibResultExt<T> for std::result::Result<T, glib::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::glib(context(), e))
    }
}

/// Attach context and a path to I/O results.
pub(crate) trait IoResultExt<T> {
    /// Turn an `io::Error` into [`Error::Io`] (or `ReadOnly`) naming `path`.
    fn io_ctx(self, context: &str, path: impl AsRef<std::path::Path>) -> Result<T>;
}

impl<T> IoResultExt<T> for std::io::Result<T> {
    fn io_ctx(self, context: &str, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|e| Error::io(context, path.as_ref(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_and_round_trip() {
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*c as i32, i as i32, "{c:?} out of order");
            assert_eq!(ErrorCode::from_i32(i as i32), Some(*c));
        }
        assert_eq!(ErrorCode::from_i32(ErrorCode::ALL.len() as i32), None);
        let mut nicks: Vec<_> = ErrorCode::ALL.iter().map(|c| c.nick()).collect();
        nicks.sort();
        nicks.dedup();
        assert_eq!(nicks.len(), ErrorCode::ALL.len(), "nicks must be unique");
    }

    #[test]
    fn erofs_is_read_only() {
        let e = Error::io(
            "write",
            "/x",
            std::io::Error::from_raw_os_error(libc::EROFS),
        );
        assert_eq!(e.code(), ErrorCode::ReadOnly);
        let e = Error::io(
            "write",
            "/x",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(e.code(), ErrorCode::Io);
        assert!(e.to_string().contains("/x"), "{e}");
    }

    #[test]
    fn cancelled_glib_error_is_cancelled() {
        let g = glib::Error::new(gio::IOErrorEnum::Cancelled, "x");
        assert_eq!(Error::glib("stage", g).code(), ErrorCode::Cancelled);
        let g = glib::Error::new(gio::IOErrorEnum::Failed, "boom");
        let e = Error::glib("stage", g);
        assert_eq!(e.code(), ErrorCode::Failed);
        assert_eq!(e.to_string(), "stage: boom");
    }
}
