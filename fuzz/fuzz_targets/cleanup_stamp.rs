//! The cleanup stamp reader: arbitrary bytes are a stamp or a typed error;
//! a finalized stamp re-encodes to bytes that read as the same stamp.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
use stagehand::formats::{self, CleanupStamp};

fuzz_target!(|data: &[u8]| {
    let owned;
    let data = match common::sealed(data) {
        Some(body) => {
            owned = common::seal_text("stagehand-cleanup-stamp", body);
            &owned[..]
        }
        None => data,
    };
    if let Ok(CleanupStamp::Finalized {
        deployment,
        dropped,
        finalized_at,
        boot_id,
        removed,
        removed_at,
    }) = formats::parse_cleanup_stamp(data)
    {
        // encode_cleanup_stamp writes finalization stamps; removals are
        // merged in by the library's own writer.
        if !removed.is_empty() || removed_at.is_some() {
            return;
        }
        let bytes =
            formats::encode_cleanup_stamp(&deployment, &dropped, &finalized_at, boot_id.as_deref());
        let again = formats::parse_cleanup_stamp(&bytes).expect("what we write reads back");
        assert_eq!(
            again,
            CleanupStamp::Finalized {
                deployment,
                dropped,
                finalized_at,
                boot_id,
                removed: vec![],
                removed_at: None,
            }
        );
    }
});
