//! # stagehand-capi
//!
//! The C ABI of stagehand, `libstagehand-1.so.0`, declared by
//! `include/stagehand.h` (generated from this crate by cbindgen; see
//! `tests/header.rs`). Thin by design: every function converts its
//! arguments, calls the `stagehand` crate and converts the result back. If
//! the Rust API cannot do something, neither can the C API.
//!
//! Conventions (the ones libostree and GLib callers expect):
//! - fallible functions take the caller's `OstreeSysroot *`, a nullable
//!   `GCancellable *` and a nullable `GError **`, and return `FALSE`/`NULL`
//!   exactly when they set the error, in the `STAGEHAND_ERROR` domain whose
//!   codes are `stagehand::ErrorCode`'s numbers;
//! - `NULL` (or a wrong object type) where the API does not allow it is a
//!   programming error: a GLib critical, like `g_return_val_if_fail()`, and
//!   the failure value, never a crash;
//! - a panic never unwinds into C ([`guard`]);
//! - strings handed over to the caller (transfer full) are g_malloc'd;
//!   options and results are opaque heap objects with `_free` functions;
//! - messages go through GLib's logging in the `stagehand` domain.
//!
//! Adding a capability: a new module with its `#[no_mangle] pub unsafe
//! extern "C" fn stagehand_*` functions, each body inside
//! [`guard::fallible`] or [`guard::infallible`], gtk-doc comments on each,
//! the opaque types in `cbindgen.toml`'s autoptr trailer, then regenerate the
//! header (`STAGEHAND_UPDATE_HEADER=1 cargo test -p stagehand-capi --test
//! header`) and add C test cases under `tests/c/`.

#![deny(missing_docs)]
#![deny(unused_must_use)]
#![allow(clippy::missing_safety_doc)] // the safety contract is the C header's documentation

// The header declares functions in module order; one module per group keeps
// rustfmt from sorting them.
// The error domain.
pub mod error;

// The sysroot lock.
pub mod sysroot;

// Staging and the finalization lock.
pub mod stage;

// The status snapshot.
pub mod status;

// The finalize-time cleanup stamp.
pub mod cleanup;

// The interrupted-operation guard (`stagehand_guard_*`).
pub mod redline;

// Deployment health: mark-good, mark-bad, assess, the denylist.
pub mod health;

// Boot assessment with the boot counter (`stagehand_boot_assessment_*`).
pub mod assessment;

// Pre-upgrade hooks: the dry run and recovery.
pub mod hooks;

mod guard;

/// GLib's `guint`, which glib-sys spells `c_uint`: named here so the header
/// says `guint` (cbindgen is told not to emit a typedef for it).
#[allow(non_camel_case_types)]
pub type guint = std::ffi::c_uint;

/// GLib's `gint`, named for the header like [`guint`].
#[allow(non_camel_case_types)]
pub type gint = std::ffi::c_int;

/// GLib's `guint64`, named for the header like [`guint`] (a bare `u64`
/// would need `<stdint.h>`, which the header does not include).
#[allow(non_camel_case_types)]
pub type guint64 = u64;
