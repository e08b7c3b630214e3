//! Pre-upgrade hooks: code shipped in the new image vets an update before it
//! may take effect. (The runner lands with the hooks work; until then no hook
//! runs and every staged deployment counts as vetted.)

use std::time::Duration;

use crate::error::Result;
use crate::sysroot::SysrootLock;

/// Default per-hook timeout.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// How pre-upgrade hooks run during staging.
#[derive(Debug, Clone)]
pub struct HookOptions {
    enabled: bool,
    timeout: Duration,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            enabled: true,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

impl HookOptions {
    /// Whether hooks run at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// Turn hooks on or off (off is for administrators; it is logged).
    pub fn set_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
    /// The per-hook timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// Set the per-hook timeout.
    pub fn set_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Run the hooks that apply to `new` against the booted (or merge) deployment.
pub(crate) fn vet(
    _lock: &SysrootLock,
    _new: &ostree::Deployment,
    _merge: Option<&ostree::Deployment>,
    _opts: &HookOptions,
    _cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    Ok(())
}

/// Whether a staged deployment has not (yet) passed its hooks.
pub fn is_unvetted(_staged: &ostree::Deployment) -> bool {
    false
}
