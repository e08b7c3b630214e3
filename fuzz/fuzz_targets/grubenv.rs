//! The GRUB environment block reader: arbitrary bytes (padded to the block
//! size half the time, so the parser behind the size check is explored) are
//! a block or an error; a block that reads writes back to a block that reads
//! with the same variables.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stagehand::bootloader::grubenv::{GrubEnv, BLOCK_SIZE, HEADER};

fuzz_target!(|data: &[u8]| {
    let owned;
    let data = match data.split_first() {
        Some((b, rest)) if b & 1 == 1 && HEADER.len() + rest.len() <= BLOCK_SIZE => {
            let mut v = HEADER.as_bytes().to_vec();
            v.extend_from_slice(rest);
            v.resize(BLOCK_SIZE, b'#');
            owned = v;
            &owned[..]
        }
        _ => data,
    };
    if let Ok(env) = GrubEnv::parse(data) {
        if let Ok(bytes) = env.to_bytes() {
            let again = GrubEnv::parse(&bytes).expect("what we write reads back");
            assert_eq!(again.vars(), env.vars());
        }
    }
});
