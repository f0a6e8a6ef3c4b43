//! The `GpuInfo` column: a Python-literal dict in most catalogs, JSON in
//! Verda's, or a bare accelerator name (GCP TPUs, Azure). Only the memory of
//! one device is needed from it.
//!
//! A downloaded catalog is network input: the parser recurses at most
//! [`MAX_DEPTH`] brackets deep, so a value nested a million levels deep is
//! refused (and its row skipped) instead of overflowing the stack.

use serde_json::{Map, Number, Value};

/// Deepest nesting of dicts, lists and tuples read; real values nest four deep.
pub const MAX_DEPTH: usize = 32;

/// Why a literal was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralError {
    /// Not a Python literal or JSON value.
    Invalid,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Memory of one device in GiB, from `Gpus[0].MemoryInfo.SizeInMiB`.
///
/// Vast's catalog writes the memory of all devices there; for such a cloud
/// (`size_is_total`) the value is divided by `Gpus[0].Count`. A bare name, a
/// value that does not parse, or a size that is not a positive finite number
/// gives `Ok(None)`: the memory is unknown. A value nested too deep is an
/// error, for the caller to skip the row.
pub fn device_memory_gib(text: &str, size_is_total: bool) -> Result<Option<f64>, String> {
    let text = text.trim();
    if !text.starts_with('{') {
        return Ok(None);
    }
    match parse_literal(text) {
        Ok(value) => Ok(memory_of(&value, size_is_total)),
        Err(LiteralError::Invalid) => Ok(None),
        Err(LiteralError::TooDeep) => Err(format!("GpuInfo nests brackets more than {MAX_DEPTH} levels deep")),
    }
}

fn memory_of(value: &Value, size_is_total: bool) -> Option<f64> {
    let gpu = value.get("Gpus")?.get(0)?;
    let size = gpu.get("MemoryInfo")?.get("SizeInMiB")?.as_f64().filter(|s| s.is_finite() && *s > 0.0)?;
    let count = gpu.get("Count").and_then(Value::as_f64).filter(|c| c.is_finite() && *c >= 1.0).unwrap_or(1.0);
    let per_device = if size_is_total { size / count } else { size };
    Some(per_device / 1024.0)
}

/// Parses a Python literal (dicts, lists, tuples, strings, numbers, `True`,
/// `False`, `None`) or JSON into a JSON value.
pub fn parse_literal(text: &str) -> Result<Value, LiteralError> {
    let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    if p.i == p.s.len() { Ok(v) } else { Err(LiteralError::Invalid) }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// Brackets open at the current position.
    depth: usize,
}

type Parsed<T> = Result<T, LiteralError>;

fn invalid<T>() -> Parsed<T> {
    Err(LiteralError::Invalid)
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Parsed<Value> {
        self.ws();
        match *self.s.get(self.i).ok_or(LiteralError::Invalid)? {
            b'{' => self.seq(b'}', true),
            b'[' | b'(' => {
                let close = if self.s[self.i] == b'[' { b']' } else { b')' };
                self.seq(close, false)
            }
            b'\'' | b'"' => self.string().map(Value::String),
            _ => self.atom(),
        }
    }

    fn seq(&mut self, close: u8, is_dict: bool) -> Parsed<Value> {
        if self.depth >= MAX_DEPTH {
            return Err(LiteralError::TooDeep);
        }
        self.depth += 1;
        self.i += 1;
        let mut map = Map::new();
        let mut list = Vec::new();
        loop {
            if self.eat(close) {
                break;
            }
            if is_dict {
                let Value::String(key) = self.value()? else { return invalid() };
                if !self.eat(b':') {
                    return invalid();
                }
                map.insert(key, self.value()?);
            } else {
                list.push(self.value()?);
            }
            if !self.eat(b',') {
                if !self.eat(close) {
                    return invalid();
                }
                break;
            }
        }
        self.depth -= 1;
        Ok(if is_dict { Value::Object(map) } else { Value::Array(list) })
    }

    fn string(&mut self) -> Parsed<String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&b) = self.s.get(self.i) {
            self.i += 1;
            match b {
                b'\\' => {
                    let escaped = *self.s.get(self.i).ok_or(LiteralError::Invalid)?;
                    self.i += 1;
                    out.push(match escaped {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                b if b == quote => return String::from_utf8(out).map_err(|_| LiteralError::Invalid),
                b => out.push(b),
            }
        }
        invalid()
    }

    fn atom(&mut self) -> Parsed<Value> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)) {
            self.i += 1;
        }
        // Only ASCII bytes were taken, so this is UTF-8.
        let word = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| LiteralError::Invalid)?;
        match word {
            "True" | "true" => Ok(Value::Bool(true)),
            "False" | "false" => Ok(Value::Bool(false)),
            "None" | "null" => Ok(Value::Null),
            _ => {
                if let Ok(i) = word.parse::<i64>() {
                    Ok(Value::Number(i.into()))
                } else {
                    // `inf` and `nan` parse as floats but have no JSON number.
                    word.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).ok_or(LiteralError::Invalid)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_dict_json_and_bare_names() {
        let py = "{'Gpus': [{'Name': 'H100', 'Manufacturer': 'NVIDIA', 'Count': 8, 'Workloads': ['ml-ai'], \
                  'GpuPartitionSize': 1.0, 'MemoryInfo': {'SizeInMiB': 81920}}], 'TotalGpuMemoryInMiB': 655360}";
        assert_eq!(device_memory_gib(py, false).unwrap(), Some(80.0));
        let json = r#"{"Gpus": [{"Name": "B300", "Count": 1, "MemoryInfo": {"SizeInMiB": 268288}}], "TotalGpuMemoryInMiB": 268288}"#;
        assert_eq!(device_memory_gib(json, false).unwrap(), Some(262.0));
        assert_eq!(device_memory_gib("tpu-v5p-8", false).unwrap(), None);
        assert_eq!(device_memory_gib("{'Gpus': [}", false).unwrap(), None);
        assert_eq!(device_memory_gib("{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]}", false).unwrap(), Some(40.0));
    }

    #[test]
    fn totals_written_as_device_memory_are_divided_where_the_cloud_does_that() {
        let vast = "{'Gpus': [{'Name': 'H200', 'Count': 2, 'MemoryInfo': {'SizeInMiB': 287542}}], 'TotalGpuMemoryInMiB': 287542}";
        assert_eq!(device_memory_gib(vast, true).unwrap(), Some(287542.0 / 2.0 / 1024.0));
        // Lambda writes the device size (and a total that is not one): keep it.
        let lambda = "{'Gpus': [{'Name': 'A100', 'Count': 2, 'MemoryInfo': {'SizeInMiB': 40960}}], 'TotalGpuMemoryInMiB': 40960}";
        assert_eq!(device_memory_gib(lambda, false).unwrap(), Some(40.0));
    }

    #[test]
    fn nesting_is_bounded_and_too_deep_is_an_error_not_a_stack_overflow() {
        // Deep enough to overflow any thread's stack if the parser followed it.
        let deep = format!("{{'Gpus': {}", "[".repeat(400_000));
        let e = device_memory_gib(&deep, false).unwrap_err();
        assert_eq!(e, "GpuInfo nests brackets more than 32 levels deep");
        let closed = format!("{{'Gpus': {}{}}}", "(".repeat(200_000), ")".repeat(200_000));
        assert!(device_memory_gib(&closed, false).is_err());
        // Exactly the limit is fine: the dict is level 1.
        let at_limit = format!("{{'Gpus': {}{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert_eq!(parse_literal(&at_limit).map(|_| ()), Ok(()));
        let over = format!("{{'Gpus': {}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(parse_literal(&over).map(|_| ()), Err(LiteralError::TooDeep));
    }

    #[test]
    fn sizes_that_are_not_positive_finite_numbers_are_unknown() {
        for size in ["1e999", "-40960", "0", "nan", "inf", "None", "'big'"] {
            let text = format!("{{'Gpus': [{{'Count': 1, 'MemoryInfo': {{'SizeInMiB': {size}}}}}]}}");
            assert_eq!(device_memory_gib(&text, false), Ok(None), "{text}");
        }
        // A count that makes no sense is ignored, not divided by.
        for (count, expected) in [("0", Some(2.0)), ("-2", Some(2.0)), ("None", Some(2.0)), ("1e999", None)] {
            let text = format!("{{'Gpus': [{{'Count': {count}, 'MemoryInfo': {{'SizeInMiB': 2048}}}}]}}");
            assert_eq!(device_memory_gib(&text, true), Ok(expected), "{text}");
        }
    }
}
