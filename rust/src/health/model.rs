//! Seed 000's state model: three flags per deployment and the table that says
//! what each combination means.
//!
//! | U F R | [`State`] | meaning |
//! |---|---|---|
//! | N N N | [`State::GoodFallback`] | successful boot, fallback |
//! | N N Y | [`State::Good`] | successful boot, most recent |
//! | N Y N | [`State::Failed`] | tried, unsuccessful (or not confirmed yet): last resort only |
//! | N Y Y | [`State::Good`], repaired | successful (probably): power lost before F was cleared |
//! | Y Y N | [`State::Untested`] | just installed, boot this if available |
//! | Y N N, Y N Y, Y Y Y | refused | impossible: [`ImpossibleFlags`], reported as corruption |
//!
//! The flags are what the store keeps on disk (so other tools, and stagehand
//! versions before and after this one, read the same words); [`State`] is
//! what the code works with, so an impossible or unrepaired combination cannot
//! even be represented past the point where a file is read.

use serde::{Deserialize, Serialize};

use crate::sysroot::DeploymentId;

/// The three flags of seed 000, exactly as the store keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Flags {
    /// Untested: installed, never picked for a boot.
    pub untested: bool,
    /// Failed: not (yet) known to boot successfully.
    pub failed: bool,
    /// Recent: the most recent deployment that booted successfully.
    pub recent: bool,
}

impl Flags {
    /// Flags from the three bits.
    pub const fn new(untested: bool, failed: bool, recent: bool) -> Flags {
        Flags {
            untested,
            failed,
            recent,
        }
    }

    /// All eight combinations, in table order (`NNN` first, `YYY` last).
    pub fn all() -> [Flags; 8] {
        let mut out = [Flags::default(); 8];
        for (i, f) in out.iter_mut().enumerate() {
            *f = Flags::new(i & 4 != 0, i & 2 != 0, i & 1 != 0);
        }
        out
    }

    /// Read the combination with seed 000's table.
    pub fn read(self) -> Result<Reading, ImpossibleFlags> {
        let state = match (self.untested, self.failed, self.recent) {
            (false, false, false) => State::GoodFallback,
            (false, false, true) => State::Good,
            (false, true, false) => State::Failed,
            // Power was lost between setting Recent and clearing Failed in a
            // multi-step design (or an older tool wrote it): Recent is only
            // ever set after a successful boot, so it wins; the next write
            // clears Failed.
            (false, true, true) => {
                return Ok(Reading {
                    state: State::Good,
                    repaired: true,
                })
            }
            (true, true, false) => State::Untested,
            (true, _, _) => return Err(ImpossibleFlags(self)),
        };
        Ok(Reading {
            state,
            repaired: false,
        })
    }
}

impl std::fmt::Display for Flags {
    /// `U`, `F`, `R` for set flags and `-` for clear ones (`UF-`, `--R`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(self.untested, 'U'),
            c(self.failed, 'F'),
            c(self.recent, 'R')
        )
    }
}

/// A flag combination the table calls impossible ("Untested" without
/// "Failed", or with "Recent"): something other than stagehand's transitions
/// wrote it, so stagehand refuses to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImpossibleFlags(pub Flags);

impl std::fmt::Display for ImpossibleFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "impossible health flags {} (untested={}, failed={}, recent={}): refusing to guess",
            self.0, self.0.untested, self.0.failed, self.0.recent
        )
    }
}

/// What a valid flag combination means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// `Y Y N`: installed (staged or deployed), never booted. Boot this if available.
    Untested,
    /// `N Y N`: booted but never confirmed, or marked bad. Last resort only.
    ///
    /// While the booted deployment is in this state it is *on trial*: it
    /// booted and waits for mark-good. [`super::Entry::on_trial`] tells that
    /// apart from a concluded failure, which carries a reason.
    Failed,
    /// `N N Y`: booted successfully, the most recent such deployment.
    Good,
    /// `N N N`: booted successfully before; a fallback. Deployments stagehand
    /// has no record of (installed before it, or by another tool) read as this.
    GoodFallback,
}

impl State {
    /// Every state.
    pub const ALL: [State; 4] = [
        State::Untested,
        State::Failed,
        State::Good,
        State::GoodFallback,
    ];

    /// The flags that represent this state on disk.
    pub fn flags(self) -> Flags {
        match self {
            State::Untested => Flags::new(true, true, false),
            State::Failed => Flags::new(false, true, false),
            State::Good => Flags::new(false, false, true),
            State::GoodFallback => Flags::new(false, false, false),
        }
    }

    /// The stable name used in JSON and by the CLI: `untested`, `failed`,
    /// `good`, `good-fallback`.
    pub fn nick(self) -> &'static str {
        match self {
            State::Untested => "untested",
            State::Failed => "failed",
            State::Good => "good",
            State::GoodFallback => "good-fallback",
        }
    }

    /// Whether a deployment in this state is known to boot successfully.
    pub fn is_known_good(self) -> bool {
        matches!(self, State::Good | State::GoodFallback)
    }

    /// Seed 000's selection order: untested first, then recent, then the
    /// other good ones, failed last. Lower ranks are preferred.
    pub fn boot_rank(self) -> u8 {
        match self {
            State::Untested => 0,
            State::Good => 1,
            State::GoodFallback => 2,
            State::Failed => 3,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.nick())
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.nick())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let s = String::deserialize(d)?;
        State::ALL
            .into_iter()
            .find(|st| st.nick() == s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown health state {s:?}")))
    }
}

/// The result of reading flags with the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// What the flags mean.
    pub state: State,
    /// True for `N Y Y`: read as good; the next write stores `N N Y`.
    pub repaired: bool,
}

/// The health record of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Its state.
    pub state: State,
    /// How many boots into it were counted.
    pub attempts: u32,
    /// When the last transition happened (RFC 3339 UTC).
    pub changed: String,
    /// Why it failed, once it was marked bad or found not to boot.
    pub reason: Option<String>,
    /// The boot (see [`super::boot_token`]) that was counted last, so a boot
    /// is counted once however often assessment runs.
    #[serde(skip)]
    pub counted_boot: Option<String>,
    /// Fields a newer stagehand wrote; kept as they are on rewrite.
    #[serde(skip)]
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl Entry {
    /// A fresh record.
    pub(crate) fn new(deployment: DeploymentId, state: State, now: &str) -> Entry {
        Entry {
            deployment,
            state,
            attempts: 0,
            changed: now.to_string(),
            reason: None,
            counted_boot: None,
            extra: Default::default(),
        }
    }

    /// Whether this deployment's trial is open: installed and not booted yet,
    /// or booted without a verdict (neither marked good nor found bad).
    pub fn on_trial(&self) -> bool {
        match self.state {
            State::Untested => true,
            State::Failed => self.reason.is_none(),
            State::Good | State::GoodFallback => false,
        }
    }

    /// Whether a verdict says this deployment failed.
    pub fn concluded_failed(&self) -> bool {
        self.state == State::Failed && self.reason.is_some()
    }
}

/// A commit that failed: staging it again is refused unless allowed explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denied {
    /// The commit checksum.
    pub checksum: String,
    /// Why it was denylisted.
    pub reason: String,
    /// When (RFC 3339 UTC).
    pub since: String,
    /// The deployment that failed, if it was one.
    pub deployment: Option<DeploymentId>,
    #[serde(skip)]
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

/// What made stagehand roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// An explicit mark-bad (a failing health check or an administrator).
    MarkBad,
    /// Boot assessment found that the bootloader fell back.
    Assess,
}

/// A reliable "we rolled back" record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackRecord {
    /// The deployment rolled back from.
    pub from: DeploymentId,
    /// The known-good deployment that became the default.
    pub to: DeploymentId,
    /// Why.
    pub reason: String,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// What made the decision.
    pub trigger: Trigger,
    #[serde(skip)]
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

/// A pin stagehand set (and so may release); pins set by anyone else are
/// never recorded and never touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinRecord {
    /// The pinned deployment.
    pub deployment: DeploymentId,
    /// The pin is no longer wanted: unpin, drop the deployment if only the
    /// pin kept it, then forget the record. Kept on disk until all three are
    /// done so an interruption resumes instead of leaking a pin.
    pub releasing: bool,
}

/// Staging in progress: recorded before libostree writes the deployment, so
/// a deployment that appears without its record (the process died in
/// between) is still read as untested instead of as good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// The stateroot.
    pub stateroot: String,
    /// The commit being deployed.
    pub checksum: String,
    /// Deployments of that commit with this serial or lower existed before;
    /// only a higher serial is the new one.
    pub after_serial: Option<u32>,
    /// When staging started.
    pub since: String,
}

impl Pending {
    /// Whether `id` is the deployment this staging produced.
    pub fn matches(&self, id: &DeploymentId) -> bool {
        id.stateroot == self.stateroot
            && id.checksum == self.checksum
            && self.after_serial.is_none_or(|s| id.serial > s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        let expect = |u, f, r| Flags::new(u, f, r).read();
        assert_eq!(
            expect(false, false, false).unwrap().state,
            State::GoodFallback
        );
        assert_eq!(expect(false, false, true).unwrap().state, State::Good);
        assert_eq!(expect(false, true, false).unwrap().state, State::Failed);
        let nyy = expect(false, true, true).unwrap();
        assert_eq!(nyy.state, State::Good);
        assert!(nyy.repaired);
        assert_eq!(expect(true, true, false).unwrap().state, State::Untested);
        for (u, f, r) in [
            (true, false, false),
            (true, false, true),
            (true, true, true),
        ] {
            let e = expect(u, f, r).unwrap_err();
            assert_eq!(e.0, Flags::new(u, f, r));
            assert!(e.to_string().contains("impossible"), "{e}");
        }
    }

    #[test]
    fn all_combinations_are_distinct_and_states_round_trip() {
        let all = Flags::all();
        let set: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(set.len(), 8);
        assert_eq!(all.iter().filter(|f| f.read().is_err()).count(), 3);
        for s in State::ALL {
            let r = s.flags().read().unwrap();
            assert_eq!(r.state, s);
            assert!(!r.repaired);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.nick()));
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
        }
        assert_eq!(Flags::new(true, true, false).to_string(), "UF-");
        assert_eq!(Flags::new(false, false, true).to_string(), "--R");
    }

    #[test]
    fn selection_order_is_seed_000s() {
        let mut v = State::ALL.to_vec();
        v.sort_by_key(|s| s.boot_rank());
        assert_eq!(
            v,
            [
                State::Untested,
                State::Good,
                State::GoodFallback,
                State::Failed
            ]
        );
    }

    #[test]
    fn trial_and_verdicts() {
        let id = DeploymentId {
            stateroot: "os".into(),
            checksum: "a".repeat(64),
            serial: 0,
        };
        let mut e = Entry::new(id.clone(), State::Untested, "t");
        assert!(e.on_trial());
        e.state = State::Failed;
        assert!(e.on_trial() && !e.concluded_failed());
        e.reason = Some("x".into());
        assert!(!e.on_trial() && e.concluded_failed());
        e.state = State::Good;
        assert!(!e.on_trial());
        let p = Pending {
            stateroot: "os".into(),
            checksum: id.checksum.clone(),
            after_serial: Some(0),
            since: "t".into(),
        };
        assert!(!p.matches(&id));
        assert!(p.matches(&DeploymentId {
            serial: 1,
            ..id.clone()
        }));
        let p = Pending {
            after_serial: None,
            ..p
        };
        assert!(p.matches(&id));
    }
}
