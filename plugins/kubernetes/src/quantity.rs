//! Kubernetes resource quantities (`500m`, `16Gi`, `1.5`, `2e3`).

/// The value of a quantity string; `None` when it does not parse or is not a
/// finite number (`1e999`, `inf`: the API server's answer is input too).
pub fn parse(q: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        // `1E` is one exa; `1E3` is an exponent (no suffix matches it).
        ("E", 1e18),
    ];
    let q = q.trim();
    let (number, factor) =
        SUFFIXES.iter().find_map(|(suffix, factor)| q.strip_suffix(suffix).map(|n| (n, *factor))).unwrap_or((q, 1.0));
    // Only digits, a sign, a point and an exponent: no `inf` or `NaN`.
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    Some(value * factor).filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn suffixes() {
        assert_eq!(parse("8"), Some(8.0));
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("16Gi"), Some(16.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse("1k"), Some(1000.0));
        assert_eq!(parse("2e3"), Some(2000.0));
        assert_eq!(parse("1.5"), Some(1.5));
        assert_eq!(parse("12x"), None);
        // Regression (issue 11): the exa suffixes.
        assert_eq!(parse("1E"), Some(1e18));
        assert_eq!(parse("2Ei"), Some(2.0 * 1024f64.powi(6)));
        assert_eq!(parse("1E3"), Some(1000.0));
        assert_eq!(parse("E"), None);
        assert_eq!(parse("Gi"), None);
        assert_eq!(parse(""), None);
        for odd in ["1e999", "inf", "NaN", "1e300E"] {
            assert_eq!(parse(odd), None, "{odd}");
        }
    }
}
