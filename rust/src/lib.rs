//! # stagehand
//!
//! The hard-won pieces every OS update agent on an ostree system needs,
//! in one library that links in-process:
//!
//! - [`mod@stage`]: staged deployment on a booted system (so `/etc` changes made
//!   after the update is prepared survive), a full deploy elsewhere, unstaging
//!   and the finalization lock;
//! - [`hooks`]: pre-upgrade hooks shipped in the new image (and by the local
//!   admin) that vet an update in a bubblewrap sandbox and can veto it, with
//!   a dry run ([`hooks::check`]) and recovery after a crash mid-hook
//!   ([`hooks::recover`]);
//! - [`redline`]: the interrupted-operation guard, a "red line" stamp around a
//!   step that must never silently run twice;
//! - [`cleanup`]: the finalize-time cleanup stamp: prune the repository on
//!   the boot after a staged deployment was really finalized, or after
//!   stagehand removed a deployment at the end of a trial;
//! - [`health`]: per-deployment health (untested / failed / recent), mark-good,
//!   mark-bad, boot assessment, rollback, the denylist, two known-good kept;
//! - [`bootloader`]: boot counters (GRUB environment block, systemd boot
//!   counting, none) — the bootloader's half of boot assessment;
//! - [`assessment`]: boot assessment end to end: health wired to the configured
//!   boot counter (arm at finalize, assess at boot, bless at mark-good, deadline);
//! - [`config`]: the configuration file, `/etc/stagehand/stagehand.conf`;
//! - [`sysroot`]: the RAII sysroot lock and stable deployment identities.
//!
//! Every function takes a loaded [`ostree::Sysroot`] that belongs to the
//! caller; functions that change deployments take a [`SysrootLock`], proof
//! that the sysroot lock is held. Errors are one [`enum@Error`] type whose kinds
//! map one-to-one onto stable [`ErrorCode`]s, shared with the C ABI.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unused_must_use)]
#![warn(clippy::all)]

pub mod assessment;
pub mod bootloader;
pub mod cleanup;
pub mod config;
pub mod error;
pub mod formats;
pub mod fsutil;
pub mod glib_log;
pub mod health;
pub mod hooks;
pub mod redline;
pub mod repo;
pub mod stage;
pub mod status;
pub mod sysroot;

pub use cleanup::{
    autocleanup, pending_cleanup, record_finalized, record_removed, record_staged, run_cleanup,
    CleanupOptions, CleanupReport, CleanupStamp, FinalizeOutcome,
};
pub use config::Config;
pub use error::{Error, ErrorCode, HookEnd, Result};
pub use health::{BootEvidence, HealthOptions};
pub use hooks::{HookOptions, HookOrigin, HookReport, HookRun, RecoverOutcome};
pub use stage::{
    finalization_locked, lock_finalization, stage, unlock_finalization, unstage, Kargs,
    StageMethod, StageOptions, StageOutcome,
};
pub use status::{status, DeploymentStatus, Status};
pub use sysroot::{is_booted, open_sysroot, DeploymentId, SysrootLock, DEFAULT_LOCK_TIMEOUT};

// Re-exported so callers use the exact versions stagehand was built with.
pub use gio;
pub use glib;
pub use ostree;
