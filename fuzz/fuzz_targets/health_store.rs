//! The health store reader: arbitrary bytes are a store or a typed error,
//! and a store that reads re-encodes to bytes that read as the same store.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
use stagehand::formats;

fuzz_target!(|data: &[u8]| {
    let owned;
    let data = match common::sealed(data) {
        Some(payload) => {
            owned = stagehand::health::store::seal(payload);
            &owned[..]
        }
        None => data,
    };
    if let Ok(s) = formats::parse_health_store(data) {
        if let Ok(bytes) = s.encode() {
            let again = formats::parse_health_store(&bytes).expect("what we write reads back");
            assert_eq!(again.encode().unwrap(), bytes);
        }
    }
});
