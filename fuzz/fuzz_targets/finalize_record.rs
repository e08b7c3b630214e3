//! The finalization record reader: arbitrary bytes are a record or a typed
//! error; a record re-encodes to bytes that read as the same record.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
use stagehand::formats;

fuzz_target!(|data: &[u8]| {
    let owned;
    let data = match common::sealed(data) {
        Some(body) => {
            owned = common::seal_text("stagehand-finalize-record", body);
            &owned[..]
        }
        None => data,
    };
    if let Ok(r) = formats::parse_finalize_record(data) {
        let bytes = formats::encode_finalize_record(&r);
        assert_eq!(
            formats::parse_finalize_record(&bytes).expect("reads back"),
            r
        );
    }
});
