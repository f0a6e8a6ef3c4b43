//! Lowercase hexadecimal, for digests in files people read and edit
//! (`plugins.lock`, the verified-plugins memory, `sha256:` tokens).

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of `text`, two hex digits each; `None` if it is not hex.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_refusals() {
        assert_eq!(super::encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(super::decode("00abFF"), Some(vec![0, 0xab, 0xff]));
        for bad in ["0", "zz", "0g", "é1"] {
            assert_eq!(super::decode(bad), None, "{bad}");
        }
    }
}
