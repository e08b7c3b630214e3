//! Property tests of the health table at the store level.
//!
//! A booted test bed per case would make thousands of cases take hours, so
//! these drive the store the way the transitions do (the same primitives:
//! [`count_boot`], the Recent hand-over of mark-good, mark-bad's verdict,
//! denylist and rollback record, staging's pending record then entry) and
//! write it after every step, as the operations do. A *crash between any two
//! writes* throws the in-memory state away and continues from the bytes last
//! written; a write torn by a non-atomic writer must never read as a state.
//! The booted crash sweep (`rust/cli/tests/crashsweep.rs`) covers the real
//! operations, at every system call, on a real sysroot.

use std::path::Path;

use proptest::prelude::*;

use super::model::{Entry, Flags, Pending, State, Trigger};
use super::ops::count_boot;
use super::store::{Store, MAX_BYTES};
use crate::error::ErrorCode;
use crate::sysroot::DeploymentId;

#[derive(Debug, Clone)]
enum Event {
    /// Stage a new commit (two writes: the pending record, then the entry).
    Stage,
    /// Boot the newest deployment (the default).
    Boot,
    /// The bootloader fell back: boot the deployment at this index (mod len).
    Fallback(usize),
    /// Mark the booted deployment good.
    MarkGood,
    /// Mark the booted deployment bad.
    MarkBad(String),
    /// Take a commit (index mod len) off the denylist.
    Undeny(usize),
    /// Lose power: continue from the last bytes written.
    Crash,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => Just(Event::Stage),
        3 => Just(Event::Boot),
        2 => any::<usize>().prop_map(Event::Fallback),
        2 => Just(Event::MarkGood),
        1 => "[ -~]{0,40}".prop_map(Event::MarkBad),
        1 => any::<usize>().prop_map(Event::Undeny),
        2 => Just(Event::Crash),
    ]
}

fn id(n: usize) -> DeploymentId {
    DeploymentId {
        stateroot: "os".into(),
        checksum: format!("{n:064x}"),
        serial: 0,
    }
}

fn parse(bytes: &[u8]) -> crate::Result<Store> {
    Store::parse(bytes, Path::new("/x/health"))
}

/// The invariants of the table, on a store read back from disk.
fn check(s: &Store) -> Result<(), TestCaseError> {
    let mut recent = 0;
    for e in s.entries() {
        let r = e.state.flags().read().expect("a state's flags are valid");
        prop_assert_eq!(r.state, e.state);
        prop_assert!(!r.repaired);
        if e.state == State::Good {
            recent += 1;
        }
        // Untested means never counted; a trial that failed was counted.
        if e.state == State::Untested {
            prop_assert_eq!(e.attempts, 0, "{:?}", e);
        }
        if e.state == State::Failed && e.reason.is_none() {
            prop_assert!(e.attempts >= 1, "on trial without a boot: {:?}", e);
        }
    }
    prop_assert!(recent <= 1, "{} deployments have Recent", recent);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_keep_the_table_valid_across_crashes(
        events in proptest::collection::vec(event(), 1..40),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut store = Store::empty("/x/health");
        let mut disk: Vec<u8> = store.encode().unwrap();
        let mut deployments: Vec<DeploymentId> = vec![id(0)];
        let mut booted = 0usize;
        let mut boots = 0u32;
        let write = |store: &mut Store, disk: &mut Vec<u8>| -> Result<(), TestCaseError> {
            let bytes = store.encode().unwrap();
            prop_assert!(bytes.len() as u64 <= MAX_BYTES);
            // A write torn anywhere is refused, never read as a state.
            let torn = &bytes[..cut.index(bytes.len())];
            let e = parse(torn).err();
            prop_assert_eq!(e.map(|e| e.code()), Some(ErrorCode::Corrupt));
            // What was written reads back as exactly this state.
            let back = parse(&bytes).unwrap();
            prop_assert_eq!(back.encode().unwrap(), bytes.clone());
            check(&back)?;
            *disk = bytes;
            Ok(())
        };
        for ev in events {
            let now = format!("2026-01-01T00:00:{:02}Z", boots % 60);
            match ev {
                Event::Stage => {
                    let next = id(deployments.len());
                    store.set_pending(Some(Pending {
                        stateroot: next.stateroot.clone(),
                        checksum: next.checksum.clone(),
                        after_serial: None,
                        since: now.clone(),
                    }));
                    write(&mut store, &mut disk)?;
                    store.insert_entry(Entry::new(next.clone(), State::Untested, &now));
                    store.set_pending(None);
                    deployments.push(next);
                }
                Event::Boot | Event::Fallback(_) => {
                    booted = match ev {
                        Event::Fallback(i) => i % deployments.len(),
                        _ => deployments.len() - 1,
                    };
                    boots += 1;
                    let token = format!("boot-{boots}");
                    if !count_boot(&mut store, &deployments[booted], &token, &now) {
                        continue;
                    }
                    // Counting the same boot again changes nothing.
                    prop_assert!(!count_boot(&mut store, &deployments[booted], &token, &now));
                }
                Event::MarkGood => {
                    let me = deployments[booted].clone();
                    for e in store.entries_mut() {
                        if e.deployment != me && e.state == State::Good {
                            e.state = State::GoodFallback;
                        }
                    }
                    let e = store.entry_or_insert(&me, &now);
                    e.state = State::Good;
                    e.reason = None;
                    store.undeny(&me.checksum);
                }
                Event::MarkBad(reason) => {
                    let me = deployments[booted].clone();
                    let reason = super::store::sanitize_reason(&reason, "marked bad");
                    let e = store.entry_or_insert(&me, &now);
                    e.state = State::Failed;
                    e.reason = Some(reason.clone());
                    store.deny(&me.checksum, &reason, Some(&me));
                    store.record_rollback(&me, &deployments[0], &reason, Trigger::MarkBad);
                }
                Event::Undeny(i) => {
                    let c = deployments[i % deployments.len()].checksum.clone();
                    if store.undeny(&c).is_none() {
                        continue;
                    }
                }
                Event::Crash => {
                    store = parse(&disk).unwrap();
                    check(&store)?;
                    continue;
                }
            }
            write(&mut store, &mut disk)?;
        }
    }

    #[test]
    fn every_flag_combination_reads_as_the_table_or_is_refused(u: bool, f: bool, r: bool) {
        let flags = Flags::new(u, f, r);
        match flags.read() {
            Ok(reading) if reading.repaired => {
                prop_assert_eq!((u, f, r), (false, true, true));
                prop_assert_eq!(reading.state, State::Good);
            }
            Ok(reading) => prop_assert_eq!(reading.state.flags(), flags),
            // Y N N, Y N Y, Y Y Y.
            Err(_) => prop_assert!(u && (r || !f)),
        }
    }

    #[test]
    fn any_change_to_a_written_store_is_refused(
        events in proptest::collection::vec(event(), 1..10),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut store = Store::empty("/x/health");
        for (n, ev) in events.iter().enumerate() {
            if let Event::MarkBad(reason) = ev {
                let me = id(n);
                store.insert_entry(Entry::new(me.clone(), State::Failed, "t"));
                store.deny(&me.checksum, reason, Some(&me));
            } else {
                store.insert_entry(Entry::new(id(n), State::Untested, "t"));
            }
        }
        let mut bytes = store.encode().unwrap();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let e = parse(&bytes).err().map(|e| e.code());
        prop_assert!(
            matches!(e, Some(ErrorCode::Corrupt) | Some(ErrorCode::Unsupported)),
            "a changed byte at {} read as {:?}", i, e
        );
    }
}
