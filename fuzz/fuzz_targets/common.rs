//! Shared by the targets: the formats are checksummed, so random bytes
//! rarely get past the checksum. Half the inputs (first byte odd) are
//! therefore sealed here with a correct checksum first, so the fuzzer
//! explores the parsers *behind* the checksum too.

#![allow(dead_code)]

pub fn sha256(data: &[u8]) -> String {
    stagehand::glib::compute_checksum_for_data(stagehand::glib::ChecksumType::Sha256, data)
        .unwrap()
        .to_string()
}

/// `Some(rest)` when the input asks to be sealed (first byte odd).
pub fn sealed(data: &[u8]) -> Option<&[u8]> {
    match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => Some(rest),
        _ => None,
    }
}

/// The cleanup stamp and finalization record's text format: header, body,
/// `sha256 <hex>` over both.
pub fn seal_text(magic: &str, body: &[u8]) -> Vec<u8> {
    let mut s = format!("{magic} 1\n").into_bytes();
    s.extend_from_slice(body);
    let sum = sha256(&s);
    s.extend_from_slice(format!("sha256 {sum}\n").as_bytes());
    s
}
