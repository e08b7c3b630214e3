//! BLS entry file names with boot counting (`NAME+LEFT[-DONE].conf`): a name
//! that parses prints back as the same name.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stagehand::bootloader::bls::EntryName;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(e) = EntryName::parse(name) {
        let again = EntryName::parse(&e.file_name()).expect("what we name parses");
        assert_eq!(again, e);
    }
});
