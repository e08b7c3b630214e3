//! Boot counters: the bootloader's half of boot assessment.
//!
//! A deployment on trial gets a number of *tries*: the bootloader counts the
//! boots of its entry, and when the tries run out without userspace saying
//! "this boot was good", it boots the previous entry by itself — the one
//! recovery that still works when the new kernel or initramfs never reaches
//! userspace. This module is the userspace side of that counter, behind one
//! trait, [`BootCounter`], with three backends:
//!
//! - [`grubenv::GrubenvCounter`] — `boot_counter` / `boot_success` in GRUB's
//!   environment block, the protocol of Fedora's GRUB and greenboot, with a
//!   GRUB snippet for distributions that lack one
//!   (`data/grub/08_stagehand-boot-counting`);
//! - [`bls::BlsCounter`] — systemd boot counting: `+LEFT-DONE` in the name of
//!   the deployment's Boot Loader Specification entry, decremented by
//!   systemd-boot. libostree writes counted entries only from 2025.3
//!   (`sysroot.boot-counting-tries`); older versions cannot be armed and
//!   [`BootCounter::arm`] says so;
//! - [`NoCounter`] — no bootloader counter: assessment happens in userspace
//!   only, and a boot that never reaches userspace is not caught.
//!
//! # How health code uses it
//!
//! ```text
//! finalize (shutdown)   counter.arm(&Target::of(&new_default), config.tries)
//! every boot (early)    counter.state(&Target::of(&on_trial))?.evidence(booted == on_trial)
//! boot-complete         counter.bless(&Target::of(&booted))
//! mark-bad / reset      counter.disarm(&Target::of(&deployment))
//! ```
//!
//! [`select`] picks the backend from the configuration (`backend=auto`
//! detects it). The counter holds no lock of its own beyond a short `flock`
//! around each write; callers hold the sysroot lock for anything that must be
//! ordered with deployment changes.

pub mod bls;
pub mod grubenv;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{BackendChoice, Config};
use crate::error::{Error, Result};
use crate::sysroot::DeploymentId;

pub use bls::BlsCounter;
pub use grubenv::{GrubEnv, GrubenvCounter};

/// The most tries a deployment can get: the GRUB snippet counts down with a
/// chain of string comparisons this long.
pub const MAX_TRIES: u32 = 16;

/// Which kind of counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// `boot_counter` / `boot_success` in the GRUB environment block.
    Grubenv,
    /// systemd boot counting in Boot Loader Specification entry names.
    Bls,
    /// No bootloader counter.
    None,
}

impl Backend {
    /// `"grubenv"`, `"bls"` or `"none"`, as in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Grubenv => "grubenv",
            Backend::Bls => "bls",
            Backend::None => "none",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The deployment a counter is about, as its boot entry names it.
///
/// A GRUB environment block holds one counter for "the default entry", so
/// the grubenv backend ignores the target; a BLS entry is found by the
/// `ostree=/ostree/boot.N/STATEROOT/BOOTCSUM/BOOTSERIAL` argument of its
/// `options` line, which names the deployment whatever the entry file is
/// called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The deployment.
    pub id: DeploymentId,
    /// Its boot checksum (kernel + initramfs).
    pub bootcsum: String,
    /// Its boot serial among deployments with the same boot checksum.
    pub bootserial: i32,
}

impl Target {
    /// The target of `deployment`.
    pub fn of(deployment: &ostree::Deployment) -> Target {
        Target {
            id: DeploymentId::of(deployment),
            bootcsum: deployment.bootcsum().to_string(),
            bootserial: deployment.bootserial(),
        }
    }

    /// The tail of the `ostree=` kernel argument of this deployment's entry.
    pub(crate) fn bootlink_suffix(&self) -> String {
        format!(
            "/{}/{}/{}",
            self.id.stateroot, self.bootcsum, self.bootserial
        )
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

/// What the bootloader's counter says.
///
/// `left` is the number of boots the bootloader will still give the target
/// *after* the current one (the bootloader decrements before it boots), so
/// `left: 0` means this boot is the last try and the next one falls back
/// unless the deployment is blessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum CounterState {
    /// No counter armed: the bootloader boots the default entry as always
    /// (never armed, blessed, or disarmed).
    NotArmed,
    /// Counting down: the bootloader boots the target while tries are left.
    Counting {
        /// Boots left after the current one.
        left: u32,
        /// Boots done, where the backend records it (BLS does, grubenv not).
        done: Option<u32>,
    },
    /// Tries used up: the bootloader boots the fallback entry by itself.
    Exhausted {
        /// Boots done, where the backend records it.
        done: Option<u32>,
    },
    /// The backend keeps no counter ([`Backend::None`]).
    NoCounter,
}

/// Why this boot booted what it did, as far as the bootloader can tell.
///
/// Boot assessment (`stagehand::health::assess`) takes its own `BootEvidence`; the
/// mapping is one-to-one: `BootloaderFallback { tries }` is its
/// `Fallback { tries }`, `ManualChoice` its `ManualChoice`, and `OnTrial` /
/// `NoEvidence` its `Unknown` (the booted deployment is the one on trial, or
/// the bootloader says nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "evidence", rename_all = "kebab-case")]
pub enum CounterEvidence {
    /// The target is booted and its counter is running: it is on trial.
    OnTrial {
        /// Boots left after this one.
        left: u32,
    },
    /// The target's tries ran out and the bootloader booted another entry by
    /// itself: the target failed to boot.
    BootloaderFallback {
        /// The boots the target had, where the backend records them (BLS).
        tries: Option<u32>,
    },
    /// A person chose the entry: another one while the target still had
    /// tries (the bootloader would have booted the target), or the target
    /// after its tries ran out. Never a reason to mark anything bad.
    ManualChoice,
    /// No counter is armed (or there is none): the bootloader says nothing.
    NoEvidence,
}

impl CounterState {
    /// Interpret the counter of the deployment on trial for this boot;
    /// `booted_is_target` says whether the booted deployment is that one.
    pub fn evidence(&self, booted_is_target: bool) -> CounterEvidence {
        match (*self, booted_is_target) {
            (CounterState::Counting { left, .. }, true) => CounterEvidence::OnTrial { left },
            (CounterState::Counting { .. }, false) => CounterEvidence::ManualChoice,
            (CounterState::Exhausted { .. }, true) => CounterEvidence::ManualChoice,
            (CounterState::Exhausted { done }, false) => {
                CounterEvidence::BootloaderFallback { tries: done }
            }
            (CounterState::NotArmed | CounterState::NoCounter, _) => CounterEvidence::NoEvidence,
        }
    }
}

/// A bootloader boot counter.
///
/// Every method is idempotent, and every change is one atomic, durable
/// write: a crash leaves the old state or the new one. Methods that change
/// something return whether they did (`false`: it was already so, and
/// nothing was written).
pub trait BootCounter: std::fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// The file or directory the counter lives in, if any.
    fn location(&self) -> Option<&Path>;

    /// Give `target`, which has just become the default deployment, `tries`
    /// boots (1..=[`MAX_TRIES`]). Call it when the deployment becomes the
    /// default (at finalize), not at staging: a staged deployment that is
    /// never finalized must not leave a counter behind.
    fn arm(&self, target: &Target, tries: u32) -> Result<()>;

    /// The counter as the bootloader left it for `target`.
    fn state(&self, target: &Target) -> Result<CounterState>;

    /// `target` booted well (after `boot-complete.target`): stop counting
    /// and record the success where the backend can.
    fn bless(&self, target: &Target) -> Result<bool>;

    /// Stop counting for `target` without a verdict.
    fn disarm(&self, target: &Target) -> Result<bool>;
}

/// The backend that keeps no counter: the bootloader gives no evidence, and
/// every change is a no-op.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCounter;

impl BootCounter for NoCounter {
    fn backend(&self) -> Backend {
        Backend::None
    }
    fn location(&self) -> Option<&Path> {
        None
    }
    fn arm(&self, _target: &Target, tries: u32) -> Result<()> {
        check_tries(tries)
    }
    fn state(&self, _target: &Target) -> Result<CounterState> {
        Ok(CounterState::NoCounter)
    }
    fn bless(&self, _target: &Target) -> Result<bool> {
        Ok(false)
    }
    fn disarm(&self, _target: &Target) -> Result<bool> {
        Ok(false)
    }
}

pub(crate) fn check_tries(tries: u32) -> Result<()> {
    if !(1..=MAX_TRIES).contains(&tries) {
        return Err(Error::InvalidArgument(format!(
            "{tries} tries: a deployment gets 1 to {MAX_TRIES}"
        )));
    }
    Ok(())
}

/// The chosen counter and why it was chosen.
#[derive(Debug)]
pub struct Selected {
    /// The counter.
    pub counter: Box<dyn BootCounter>,
    /// Why this backend (for `status` and logs): configured, or what
    /// detection found.
    pub reason: String,
}

/// `path` (absolute, as the booted system sees it) inside `sysroot`.
fn in_sysroot(sysroot: &Path, path: &Path) -> PathBuf {
    if sysroot == Path::new("/") {
        path.to_owned()
    } else {
        sysroot.join(path.strip_prefix("/").unwrap_or(path))
    }
}

/// The boot counter the configuration asks for, on the sysroot at `sysroot`
/// (`/` on a booted system).
///
/// Paths in the configuration (`grubenv`) are absolute paths of the booted
/// system and are looked up inside `sysroot`. With `backend = auto`:
///
/// 1. `grubenv` when a GRUB environment block exists (the configured path, or
///    `/boot/grub2/grubenv`, then `/boot/grub/grubenv`) *and* the `grub.cfg`
///    next to it counts boots (mentions `boot_counter`): a counter nobody
///    decrements would only look like a trial that never ends;
/// 2. `bls` when an entry in `/boot/loader/entries` is counted already
///    (libostree 2025.3 with `sysroot.boot-counting-tries`, or by hand);
/// 3. `none` otherwise.
pub fn select(sysroot: &Path, config: &Config) -> Result<Selected> {
    let entries = in_sysroot(sysroot, Path::new(bls::ENTRIES_DIR));
    let grubenv_path = |found_only: bool| -> Option<PathBuf> {
        match &config.grubenv {
            Some(p) => Some(in_sysroot(sysroot, p)),
            None => {
                let found = grubenv::DEFAULT_PATHS
                    .iter()
                    .map(|p| in_sysroot(sysroot, Path::new(p)))
                    .find(|p| p.exists());
                if found_only {
                    found
                } else {
                    found
                        .or_else(|| Some(in_sysroot(sysroot, Path::new(grubenv::DEFAULT_PATHS[0]))))
                }
            }
        }
    };
    let selected = match config.backend {
        BackendChoice::Grubenv => {
            let path = grubenv_path(false).expect("a default path");
            Selected {
                reason: "configured (backend=grubenv)".into(),
                counter: Box::new(GrubenvCounter::new(path)),
            }
        }
        BackendChoice::Bls => Selected {
            reason: "configured (backend=bls)".into(),
            counter: Box::new(BlsCounter::new(entries)),
        },
        BackendChoice::None => Selected {
            reason: "configured (backend=none)".into(),
            counter: Box::new(NoCounter),
        },
        BackendChoice::Auto => {
            let env = grubenv_path(true).filter(|p| p.exists());
            let counting_cfg = env.as_deref().and_then(grub_cfg_counts);
            match (env, counting_cfg) {
                (Some(path), Some(cfg)) => Selected {
                    reason: format!(
                        "detected: {} exists and {} counts boots",
                        path.display(),
                        cfg.display()
                    ),
                    counter: Box::new(GrubenvCounter::new(path)),
                },
                (env, _) => {
                    let bls = BlsCounter::new(&entries);
                    if bls.any_counted()? {
                        Selected {
                            reason: format!("detected: counted entries in {}", entries.display()),
                            counter: Box::new(bls),
                        }
                    } else {
                        Selected {
                            reason: match env {
                                Some(p) => format!(
                                    "detected: {} exists but no grub.cfg next to it counts boots \
                                     (install data/grub/08_stagehand-boot-counting, or set backend=grubenv)",
                                    p.display()
                                ),
                                None => "detected: no GRUB environment block and no counted boot entries".into(),
                            },
                            counter: Box::new(NoCounter),
                        }
                    }
                }
            }
        }
    };
    Ok(selected)
}

/// The `grub.cfg` next to the block at `grubenv` if it mentions
/// `boot_counter` (the generated config of a counting snippet does).
fn grub_cfg_counts(grubenv: &Path) -> Option<PathBuf> {
    let cfg = grubenv.parent()?.join("grub.cfg");
    // grub.cfg is a few hundred KiB at most; a bounded read keeps a broken
    // symlink loop or a huge file from hurting.
    let text = crate::fsutil::read_bounded(&cfg, 16 << 20).ok()??;
    let needle = b"boot_counter";
    text.windows(needle.len())
        .any(|w| w == needle)
        .then_some(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_tells_fallback_from_manual_choice() {
        use CounterEvidence::*;
        let counting = CounterState::Counting {
            left: 2,
            done: None,
        };
        let exhausted = CounterState::Exhausted { done: Some(3) };
        assert_eq!(counting.evidence(true), OnTrial { left: 2 });
        assert_eq!(counting.evidence(false), ManualChoice);
        assert_eq!(
            exhausted.evidence(false),
            BootloaderFallback { tries: Some(3) }
        );
        assert_eq!(exhausted.evidence(true), ManualChoice);
        for s in [CounterState::NotArmed, CounterState::NoCounter] {
            assert_eq!(s.evidence(true), NoEvidence);
            assert_eq!(s.evidence(false), NoEvidence);
        }
    }

    #[test]
    fn tries_are_bounded() {
        assert!(check_tries(1).is_ok());
        assert!(check_tries(MAX_TRIES).is_ok());
        for t in [0, MAX_TRIES + 1] {
            assert_eq!(
                check_tries(t).unwrap_err().code(),
                crate::ErrorCode::InvalidArgument
            );
        }
    }

    #[test]
    fn snippet_chain_matches_max_tries() {
        assert!(grubenv::GRUB_SCRIPT.contains(&format!("max={MAX_TRIES}\n")));
    }

    #[test]
    fn serde_shapes() {
        let j = serde_json::to_value(CounterState::Counting {
            left: 1,
            done: Some(2),
        })
        .unwrap();
        assert_eq!(
            j,
            serde_json::json!({"state": "counting", "left": 1, "done": 2})
        );
        let j = serde_json::to_value(CounterEvidence::BootloaderFallback { tries: None }).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"evidence": "bootloader-fallback", "tries": null})
        );
    }

    #[test]
    fn auto_detection() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let cfg = Config::default();
        let sel = select(root, &cfg).unwrap();
        assert_eq!(sel.counter.backend(), Backend::None);
        assert!(
            sel.reason.contains("no GRUB environment block"),
            "{}",
            sel.reason
        );

        std::fs::create_dir_all(root.join("boot/grub")).unwrap();
        std::fs::write(
            root.join("boot/grub/grubenv"),
            GrubEnv::new().to_bytes().unwrap(),
        )
        .unwrap();
        let sel = select(root, &cfg).unwrap();
        assert_eq!(sel.counter.backend(), Backend::None);
        assert!(sel.reason.contains("counts boots"), "{}", sel.reason);

        std::fs::write(
            root.join("boot/grub/grub.cfg"),
            "load_env\nif [ -n \"${boot_counter}\" ]; then true; fi\n",
        )
        .unwrap();
        let sel = select(root, &cfg).unwrap();
        assert_eq!(sel.counter.backend(), Backend::Grubenv);
        assert_eq!(
            sel.counter.location(),
            Some(root.join("boot/grub/grubenv").as_path())
        );

        // Configured backends are taken as they are.
        let mut cfg = Config {
            backend: BackendChoice::Grubenv,
            grubenv: Some("/elsewhere/grubenv".into()),
            ..Config::default()
        };
        let sel = select(root, &cfg).unwrap();
        assert_eq!(
            sel.counter.location(),
            Some(root.join("elsewhere/grubenv").as_path())
        );
        cfg.backend = BackendChoice::Bls;
        let sel = select(root, &cfg).unwrap();
        assert_eq!(sel.counter.backend(), Backend::Bls);
        assert_eq!(
            sel.counter.location(),
            Some(root.join("boot/loader/entries").as_path())
        );
    }
}
