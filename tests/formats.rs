//! Round-trips of every file format stagehand owns (`stagehand::formats`):
//! what stagehand writes reads back as exactly what it wrote, and a write
//! torn anywhere (a strict prefix) or any changed byte never reads as a
//! (different) valid state. The fuzz targets in `fuzz/` throw arbitrary bytes
//! at the same readers; regressions they found live at the end.

use proptest::prelude::*;
use stagehand::formats::{self, FinalizeRecord, GuardStamp, Unvetted};
use stagehand::redline::Phase;
use stagehand::{DeploymentId, ErrorCode};

fn deployment_id() -> impl Strategy<Value = DeploymentId> {
    ("[a-z][a-z0-9_-]{0,15}", "[0-9a-f]{64}", 0u32..1000).prop_map(
        |(stateroot, checksum, serial)| DeploymentId {
            stateroot,
            checksum,
            serial,
        },
    )
}

fn rfc3339() -> impl Strategy<Value = String> {
    (
        2000u32..2100,
        1u32..13,
        1u32..29,
        0u32..24,
        0u32..60,
        0u32..60,
    )
        .prop_map(|(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
}

fn guard_stamp() -> impl Strategy<Value = GuardStamp> {
    (
        "[A-Za-z0-9_][A-Za-z0-9_.@-]{0,40}",
        any::<bool>(),
        proptest::option::of("[0-9a-f]{64}"),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        rfc3339(),
        rfc3339(),
    )
        .prop_map(
            |(name, complete, digest, run, started, completed)| GuardStamp {
                name,
                phase: if complete {
                    Phase::Complete
                } else {
                    Phase::Started
                },
                digest,
                run,
                started,
                completed: complete.then_some(completed),
            },
        )
}

/// A strict prefix of `bytes` (a torn write) or `bytes` with one byte changed.
fn damaged(bytes: &[u8], cut: prop::sample::Index, at: prop::sample::Index, b: u8) -> [Vec<u8>; 2] {
    let torn = bytes[..cut.index(bytes.len())].to_vec();
    let mut flipped = bytes.to_vec();
    let i = at.index(bytes.len());
    flipped[i] = if flipped[i] == b { b ^ 1 } else { b };
    [torn, flipped]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn cleanup_stamp_round_trips_and_damage_is_corrupt(
        d in deployment_id(),
        dropped in proptest::collection::vec(deployment_id(), 0..5),
        at_time in rfc3339(),
        boot in proptest::option::of("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        cut: prop::sample::Index, at: prop::sample::Index, b: u8,
    ) {
        let bytes = formats::encode_cleanup_stamp(&d, &dropped, &at_time, boot.as_deref());
        let back = formats::parse_cleanup_stamp(&bytes).unwrap();
        prop_assert_eq!(back, formats::CleanupStamp::Finalized {
            deployment: d, dropped, finalized_at: at_time, boot_id: boot,
            removed: vec![], removed_at: None,
        });
        for bad in damaged(&bytes, cut, at, b) {
            match formats::parse_cleanup_stamp(&bad) {
                // Empty is the legacy stamp older tools write: still "pending".
                Ok(formats::CleanupStamp::Legacy) => prop_assert!(bad.is_empty()),
                // A changed version digit may announce a newer format: pending too.
                Ok(formats::CleanupStamp::Newer { .. }) => {}
                Ok(other) => prop_assert!(false, "damaged stamp read as {:?}", other),
                Err(e) => prop_assert_eq!(e.code(), ErrorCode::Corrupt),
            }
        }
    }

    #[test]
    fn finalize_record_round_trips_and_damage_is_corrupt(
        staged in deployment_id(),
        deployments in proptest::collection::vec(deployment_id(), 0..5),
        failure in "absent|[0-9]{1,6}:[0-9]{1,9}:[0-9]{1,5}:[0-9]{1,10}\\.[0-9]{9}",
        cut: prop::sample::Index, at: prop::sample::Index, b: u8,
    ) {
        let r = FinalizeRecord { staged, deployments, failure };
        let bytes = formats::encode_finalize_record(&r);
        prop_assert_eq!(formats::parse_finalize_record(&bytes).unwrap(), r);
        for bad in damaged(&bytes, cut, at, b) {
            let e = formats::parse_finalize_record(&bad).err().map(|e| e.code());
            prop_assert_eq!(e, Some(ErrorCode::Corrupt));
        }
    }

    #[test]
    fn guard_stamp_round_trips_and_damage_is_refused(
        s in guard_stamp(),
        cut: prop::sample::Index, at: prop::sample::Index, b: u8,
    ) {
        let bytes = formats::encode_guard_stamp(&s);
        prop_assert_eq!(formats::parse_guard_stamp(&s.name, &bytes).unwrap(), s.clone());
        for bad in damaged(&bytes, cut, at, b) {
            let e = formats::parse_guard_stamp(&s.name, &bad).err().map(|e| e.code());
            prop_assert!(
                matches!(e, Some(ErrorCode::Corrupt) | Some(ErrorCode::Unsupported)),
                "damaged stamp read as {:?}", e
            );
        }
        // A stamp is only ever the record of its own step.
        let other = format!("{}x", s.name);
        prop_assert!(formats::parse_guard_stamp(&other, &bytes).is_err());
    }

    #[test]
    fn unvetted_record_round_trips_and_a_torn_one_is_refused(
        d in deployment_id(),
        serial in proptest::option::of(0u32..1000),
        pre: bool,
        cut: prop::sample::Index,
    ) {
        let u = Unvetted::new(&d.stateroot, &d.checksum, serial, pre);
        let bytes = formats::encode_unvetted(&u);
        prop_assert_eq!(formats::parse_unvetted(&bytes).unwrap(), u);
        // JSON cut before its closing brace never parses (stagehand then
        // counts the staged deployment as unvetted).
        let torn = &bytes[..cut.index(bytes.len() - 1)];
        prop_assert!(formats::parse_unvetted(torn).is_err());
    }
}

#[test]
fn arbitrary_bytes_never_panic_the_readers() {
    // The fuzz targets' smoke, on the stable toolchain: a fixed pseudo-random
    // stream of inputs, including the prefixes of valid files.
    let mut seeds: Vec<Vec<u8>> = vec![
        formats::encode_cleanup_stamp(
            &"os:0000000000000000000000000000000000000000000000000000000000000000.0"
                .parse()
                .unwrap(),
            &[],
            "2026-01-01T00:00:00Z",
            None,
        ),
        b"stagehand-health 1\n{}\n".to_vec(),
        b"stagehand-red-line 1\nname=x\n".to_vec(),
        b"{\"stateroot\":\"os\"}".to_vec(),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 300) as usize;
        seeds.push((0..len).map(|i| (x >> (i % 56)) as u8).collect());
    }
    for s in &seeds {
        for end in [s.len(), s.len() / 2] {
            let b = &s[..end];
            let _ = formats::parse_health_store(b);
            let _ = formats::parse_cleanup_stamp(b);
            let _ = formats::parse_finalize_record(b);
            let _ = formats::parse_guard_stamp("x", b);
            let _ = formats::parse_unvetted(b);
        }
    }
}

/// Seal a body in the cleanup stamp / finalization record text format.
fn seal_text(magic: &str, body: &str) -> Vec<u8> {
    let text = format!("{magic} 1\n{body}");
    let sum = stagehand::glib::compute_checksum_for_data(
        stagehand::glib::ChecksumType::Sha256,
        text.as_bytes(),
    )
    .unwrap();
    format!("{text}sha256 {sum}\n").into_bytes()
}

#[test]
fn fuzz_regression_a_carriage_return_in_a_value_is_corrupt_not_rewritten() {
    // The cleanup_stamp and finalize_record fuzz targets found values that
    // read but would be written back differently ('\r' inside, '\r' before
    // the newline eaten by `lines()`, control characters, blanks around).
    let id1 = format!("os:{}1.0", "0".repeat(63));
    for body in [
        format!("deployment {id1}\nfinalized-at 2026-01\r01T00:00:00Z\n"),
        format!("deployment {id1}\r\nfinalized-at 2026-01-01T00:00:00Z\n"),
        format!("deployment {id1}\nfinalized-at  2026-01-01T00:00:00Z\n"),
        format!("deployment {id1}\nfinalized-at 2026-01-01T00:00:00Z\nboot-id a\0b\n"),
    ] {
        let bytes = seal_text("stagehand-cleanup-stamp", &body);
        let e = formats::parse_cleanup_stamp(&bytes).err().map(|e| e.code());
        assert_eq!(e, Some(ErrorCode::Corrupt), "{body:?}");
    }
    let body = format!("staged \rs:{}1.0\nfailure-stamp absent\n", "0".repeat(63));
    let bytes = seal_text("stagehand-finalize-record", &body);
    let e = formats::parse_finalize_record(&bytes)
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(ErrorCode::Corrupt));
    // The same files written properly read.
    let body = format!("deployment {id1}\nfinalized-at 2026-01-01T00:00:00Z\nboot-id ab\n");
    assert!(formats::parse_cleanup_stamp(&seal_text("stagehand-cleanup-stamp", &body)).is_ok());
}

mod bootloader_formats {
    use proptest::prelude::*;
    use stagehand::bootloader::bls::{Count, EntryName};
    use stagehand::bootloader::grubenv::{GrubEnv, BLOCK_SIZE};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn grubenv_round_trips_escapes_and_refuses_a_torn_block(
            vars in proptest::collection::btree_map("[a-z_][a-z0-9_]{0,10}", "[a-z0-9=#\\\\\n ]{0,24}", 0..8),
            cut: prop::sample::Index,
        ) {
            let mut env = GrubEnv::new();
            for (k, v) in &vars {
                env.set(k, v.as_bytes()).unwrap();
            }
            let bytes = env.to_bytes().unwrap();
            prop_assert_eq!(bytes.len(), BLOCK_SIZE);
            let back = GrubEnv::parse(&bytes).unwrap();
            for (k, v) in &vars {
                prop_assert_eq!(back.get(k), Some(v.as_bytes()));
            }
            prop_assert_eq!(back.vars(), env.vars());
            prop_assert!(GrubEnv::parse(&bytes[..cut.index(bytes.len())]).is_err());
        }

        #[test]
        fn bls_entry_names_round_trip(
            stem in "[a-z0-9][a-z0-9._-]{0,20}",
            count in proptest::option::of((0u32..100, proptest::option::of(0u32..100))),
        ) {
            let e = EntryName {
                stem,
                count: count.map(|(left, done)| Count { left, done: done.unwrap_or(0) }),
            };
            let name = e.file_name();
            let back = EntryName::parse(&name).expect("a .conf name parses");
            prop_assert_eq!(back.file_name(), name);
            prop_assert_eq!(back, e);
        }
    }
}

#[test]
fn fuzz_regression_an_unknown_number_is_written_back_unchanged() {
    // The health_store fuzz target found a number, in a field this version
    // does not know, that read as a double a few ulps off, was written back
    // as that neighbour and read differently again: the store's unknown
    // fields drifted with every rewrite. serde_json parses floats exactly
    // now (float_roundtrip), so a second rewrite is byte-identical.
    let payloads: [&[u8]; 3] = [
        b"{\"ers\":{\"ehteriaL\":500000000000000000000000000000000\n\n,\"?\":\"x\"}}",
        b"{\"future\":0.30000000000000004,\"later\":[1e308,-2.5e-308,123456789012345678901234567890]}",
        b"{\"future\":18446744073709551615,\"past\":-9223372036854775808}",
    ];
    for payload in payloads {
        let bytes = stagehand::health::store::seal(payload);
        let store = formats::parse_health_store(&bytes).expect("reads");
        let once = store.encode().unwrap();
        let again = formats::parse_health_store(&once).expect("what we write reads back");
        assert_eq!(
            again.encode().unwrap(),
            once,
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
    // 64-bit integers are kept exactly.
    let bytes = stagehand::health::store::seal(payloads[2]);
    let text = String::from_utf8(
        formats::parse_health_store(&bytes)
            .unwrap()
            .encode()
            .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("18446744073709551615") && text.contains("-9223372036854775808"),
        "{text}"
    );
}
