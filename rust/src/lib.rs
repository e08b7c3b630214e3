//! # stagehand
//!
//! The hard-won pieces every OS update agent on an ostree system needs,
//! in one library that links in-process:
//!
//! - [`stage`]: staged deployment on a booted system (so `/etc` changes made
//!   after the update is prepared survive), a full deploy elsewhere, unstaging
//!   and the finalization lock;
//! - [`hooks`]: pre-upgrade hooks shipped in the new image that can veto it;
//! - [`sysroot`]: the RAII sysroot lock and stable deployment identities;
//! - [`redline`]: the interrupted-operation guard, a "red line" stamp around a
//!   step that must never silently run twice;
//! - [`bootloader`]: boot counters (GRUB environment block, systemd boot
//!   counting, none) — the bootloader's half of boot assessment;
//! - [`config`]: the configuration file, `/etc/stagehand/stagehand.conf`.
//!
//! Every function takes a loaded [`ostree::Sysroot`] that belongs to the
//! caller; functions that change deployments take a [`SysrootLock`], proof
//! that the sysroot lock is held. Errors are one [`enum@Error`] type whose kinds
//! map one-to-one onto stable [`ErrorCode`]s, shared with the C ABI.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unused_must_use)]
#![warn(clippy::all)]

pub mod bootloader;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod hooks;
pub mod redline;
pub mod repo;
pub mod stage;
pub mod status;
pub mod sysroot;

pub use config::Config;
pub use error::{Error, ErrorCode, HookEnd, Result};
pub use hooks::HookOptions;
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
