//! The `GpuInfo` column: a Python-literal dict in most catalogs, JSON in
//! Verda's, or a bare accelerator name (GCP TPUs, Azure). Only the memory of
//! one device is needed from it.

use serde_json::{Map, Number, Value};

/// Memory of one device in GiB, from `Gpus[0].MemoryInfo.SizeInMiB`.
///
/// Vast's catalog writes the memory of all devices there; for such a cloud
/// (`size_is_total`) the value is divided by `Gpus[0].Count`. A bare name
/// gives `None`.
pub fn device_memory_gib(text: &str, size_is_total: bool) -> Option<f64> {
    let text = text.trim();
    if !text.starts_with('{') {
        return None;
    }
    let value = parse_literal(text)?;
    let gpu = value.get("Gpus")?.get(0)?;
    let size = gpu.get("MemoryInfo")?.get("SizeInMiB")?.as_f64()?;
    let count = gpu.get("Count").and_then(Value::as_f64).filter(|c| *c >= 1.0).unwrap_or(1.0);
    let per_device = if size_is_total { size / count } else { size };
    Some(per_device / 1024.0)
}

/// Parses a Python literal (dicts, lists, strings, numbers, `True`, `False`,
/// `None`) or JSON into a JSON value. `None` on anything else.
pub fn parse_literal(text: &str) -> Option<Value> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
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

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => self.seq(b'}', true),
            b'[' | b'(' => {
                let close = if self.s[self.i] == b'[' { b']' } else { b')' };
                self.seq(close, false)
            }
            b'\'' | b'"' => self.string().map(Value::String),
            _ => self.atom(),
        }
    }

    fn seq(&mut self, close: u8, is_dict: bool) -> Option<Value> {
        self.i += 1;
        let mut map = Map::new();
        let mut list = Vec::new();
        loop {
            if self.eat(close) {
                break;
            }
            if is_dict {
                let Value::String(key) = self.value()? else { return None };
                if !self.eat(b':') {
                    return None;
                }
                map.insert(key, self.value()?);
            } else {
                list.push(self.value()?);
            }
            if !self.eat(b',') {
                if !self.eat(close) {
                    return None;
                }
                break;
            }
        }
        Some(if is_dict { Value::Object(map) } else { Value::Array(list) })
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&b) = self.s.get(self.i) {
            self.i += 1;
            match b {
                b'\\' => {
                    let escaped = *self.s.get(self.i)?;
                    self.i += 1;
                    out.push(match escaped {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                b if b == quote => return String::from_utf8(out).ok(),
                b => out.push(b),
            }
        }
        None
    }

    fn atom(&mut self) -> Option<Value> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)) {
            self.i += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        match word {
            "True" | "true" => Some(Value::Bool(true)),
            "False" | "false" => Some(Value::Bool(false)),
            "None" | "null" => Some(Value::Null),
            _ => {
                if let Ok(i) = word.parse::<i64>() {
                    Some(Value::Number(i.into()))
                } else {
                    Number::from_f64(word.parse::<f64>().ok()?).map(Value::Number)
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
        assert_eq!(device_memory_gib(py, false), Some(80.0));
        let json = r#"{"Gpus": [{"Name": "B300", "Count": 1, "MemoryInfo": {"SizeInMiB": 268288}}], "TotalGpuMemoryInMiB": 268288}"#;
        assert_eq!(device_memory_gib(json, false), Some(262.0));
        assert_eq!(device_memory_gib("tpu-v5p-8", false), None);
        assert_eq!(device_memory_gib("{'Gpus': [}", false), None);
        assert_eq!(device_memory_gib("{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]}", false), Some(40.0));
    }

    #[test]
    fn totals_written_as_device_memory_are_divided_where_the_cloud_does_that() {
        let vast = "{'Gpus': [{'Name': 'H200', 'Count': 2, 'MemoryInfo': {'SizeInMiB': 287542}}], 'TotalGpuMemoryInMiB': 287542}";
        assert_eq!(device_memory_gib(vast, true), Some(287542.0 / 2.0 / 1024.0));
        // Lambda writes the device size (and a total that is not one): keep it.
        let lambda = "{'Gpus': [{'Name': 'A100', 'Count': 2, 'MemoryInfo': {'SizeInMiB': 40960}}], 'TotalGpuMemoryInMiB': 40960}";
        assert_eq!(device_memory_gib(lambda, false), Some(40.0));
    }
}
