//! The configuration file reader: arbitrary bytes are a configuration or a
//! typed `Config` error naming the line, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) =
        stagehand::Config::parse(std::path::Path::new("/etc/stagehand/stagehand.conf"), data)
    {
        assert_eq!(e.code(), stagehand::ErrorCode::Config, "{e}");
    }
});
