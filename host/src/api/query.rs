//! Query strings (`application/x-www-form-urlencoded`), read strictly.

/// The `key=value` pairs of a query string, each decoded.
pub fn decode_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Decodes one `application/x-www-form-urlencoded` component, strictly: a bad
/// `%` escape or bytes that are not UTF-8 are errors, not replacement characters.
pub fn decode(text: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next(), bytes.next()];
                let value = match hex {
                    [Some(h), Some(l)] => {
                        std::str::from_utf8(&[h, l]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
                    }
                    _ => None,
                };
                out.push(value.ok_or_else(|| format!("bad percent escape in '{text}'"))?);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{text}' does not decode to UTF-8"))
}

/// A boolean parameter: empty, `1`, `true`, `yes`; `0`, `false`, `no`.
pub fn truthy(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "" | "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        other => Err(format!("query parameter '{key}' must be true or false, not '{other}'")),
    }
}
