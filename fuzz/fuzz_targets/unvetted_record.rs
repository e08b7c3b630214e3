//! The hooks' unvetted record reader: arbitrary bytes are a record or a typed
//! error; a record re-encodes to bytes that read as the same record.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stagehand::formats;

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = formats::parse_unvetted(data) {
        let bytes = formats::encode_unvetted(&u);
        assert_eq!(formats::parse_unvetted(&bytes).expect("reads back"), u);
    }
});
