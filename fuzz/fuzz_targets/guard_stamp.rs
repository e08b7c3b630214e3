//! The guard (red line) stamp reader: the first line of the input is the step
//! name, the rest the stamp. A stamp that reads re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
use stagehand::formats;

fuzz_target!(|data: &[u8]| {
    let (name, stamp) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"step"[..], data),
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    let owned;
    let stamp = match common::sealed(stamp) {
        Some(body) => {
            let mut s = b"stagehand-redline 1\n".to_vec();
            s.extend_from_slice(body);
            let sum = common::sha256(&s);
            s.extend_from_slice(format!("sha256={sum}\n").as_bytes());
            owned = s;
            &owned[..]
        }
        None => stamp,
    };
    if let Ok(s) = formats::parse_guard_stamp(name, stamp) {
        assert_eq!(
            formats::encode_guard_stamp(&s),
            stamp,
            "one encoding per stamp"
        );
    }
});
