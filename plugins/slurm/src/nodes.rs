//! What a Slurm cluster says about its nodes, read from any of the forms
//! Slurm prints: `scontrol show node --json` (23.02+), 22.05's `sinfo --json`,
//! or `scontrol --oneliner --details show node` text. JSON is read by field
//! names with tolerant defaults, since the documents change between data
//! parser versions (v0.0.38 … v0.0.44).

use serde::{
    Deserialize, Deserializer,
    de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;

use crate::{
    gres::{self, GpuGres},
    state::NodeState,
};

/// One node, whatever form it was read from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// State and flags.
    pub state: NodeState,
    /// Partitions the node belongs to.
    pub partitions: Vec<String>,
    /// CPUs.
    pub cpus: Option<f64>,
    /// CPUs allocated to jobs.
    pub alloc_cpus: Option<f64>,
    /// RealMemory, MB.
    pub memory_mb: Option<f64>,
    /// Memory allocated to jobs, MB.
    pub alloc_memory_mb: Option<f64>,
    /// Configured GPUs, per type.
    pub gres: Vec<GpuGres>,
    /// GPUs in use per type (`GresUsed`); `None` when not reported.
    pub gres_used: Option<Vec<GpuGres>>,
    /// `gres/gpu` of AllocTRES, when accounting tracks it.
    pub alloc_tres_gpus: Option<u32>,
}

/// A parsed listing, with the Slurm version when the document names it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Every node.
    pub nodes: Vec<Node>,
    /// `22.05.8`.
    pub version: Option<String>,
}

/// Why a document could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or not the expected shape.
    Malformed(String),
    /// The document carries `errors`: Slurm failed, even if it exited 0.
    Slurm(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(m) | Self::Slurm(m) => f.write_str(m),
        }
    }
}

/// A number that may be plain, a `{"set","infinite","number"}` wrapper, a
/// string, or null; negative and unset values (NO_VAL: 0xfffffffe as u32,
/// -2 as i64) are unknown.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Num(Option<f64>);

impl Num {
    fn known(n: f64) -> Self {
        Self((0.0..4_294_967_294.0).contains(&n).then_some(n))
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, a number wrapper or null")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num::known(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num::known(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num::known(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                Ok(v.trim().parse().map_or(Num(None), Num::known))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Num, A::Error> {
                let (mut set, mut infinite, mut number) = (true, false, Num(None));
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "set" => set = map.next_value::<Option<bool>>()?.unwrap_or(true),
                        "infinite" => infinite = map.next_value::<Option<bool>>()?.unwrap_or(false),
                        "number" => number = map.next_value::<Num>()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(if set && !infinite { number } else { Num(None) })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Num, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Num(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of words: a JSON array of strings, or one comma-separated string
/// (`features` changed from one to the other in 23.02).
#[derive(Debug, Default)]
struct Words(Vec<String>);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Words;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of strings or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Words, E> {
                Ok(Words(if v.is_empty() { Vec::new() } else { v.split(',').map(str::to_string).collect() }))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Words, E> {
                Ok(Words::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words, A::Error> {
                let mut out = Vec::new();
                while let Some(w) = seq.next_element::<Option<std::borrow::Cow<'de, str>>>()? {
                    out.extend(w.map(|w| w.into_owned()));
                }
                Ok(Words(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `state`: `"mixed"` (v0.0.38) or `["MIXED","DRAIN"]` (v0.0.39+).
#[derive(Debug)]
enum RawState {
    Text(String),
    Words(Vec<String>),
}

impl<'de> Deserialize<'de> for RawState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawState;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a state word or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawState, E> {
                Ok(RawState::Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawState, E> {
                Ok(RawState::Text("unknown".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawState, A::Error> {
                Ok(RawState::Words(Words::deserialize(de::value::SeqAccessDeserializer::new(seq))?.0))
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields of a node object that are read; the rest are skipped unparsed.
#[derive(Debug, Deserialize)]
struct RawNode<'a> {
    #[serde(default, borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    state: Option<RawState>,
    #[serde(default)]
    state_flags: Words,
    #[serde(default)]
    partitions: Words,
    #[serde(default)]
    cpus: Num,
    #[serde(default)]
    alloc_cpus: Num,
    #[serde(default)]
    real_memory: Num,
    #[serde(default)]
    alloc_memory: Num,
    #[serde(default, borrow)]
    gres: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    gres_used: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    tres_used: Option<std::borrow::Cow<'a, str>>,
}

/// The document: only `nodes` is read field by field.
#[derive(Debug, Deserialize)]
struct RawDoc<'a> {
    #[serde(default, borrow)]
    nodes: Option<Vec<RawNode<'a>>>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default)]
    meta: Option<Value>,
    #[serde(default)]
    sinfo: Option<IgnoredAny>,
}

fn string<'a>(o: &'a Value, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The `errors` of a document as one line; none → `None`.
fn errors(doc: &Value) -> Option<String> {
    let list = doc.get("errors")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    let texts: Vec<String> = list
        .iter()
        .map(|e| {
            let (description, error) = (string(e, "description"), string(e, "error"));
            let text = match (description, error) {
                ("", "") => "unspecified error".to_string(),
                (d, "") => d.to_string(),
                ("", x) => x.to_string(),
                (d, x) if d == x => d.to_string(),
                (d, x) => format!("{d}: {x}"),
            };
            let code = e.get("error_number").or_else(|| e.get("errno")).and_then(Value::as_i64);
            match code {
                Some(c) if c != 0 => format!("{text} (error {c})"),
                _ => text,
            }
        })
        .collect();
    Some(texts.join("; "))
}

/// The release named by `meta`: `Slurm.release` (≤23.02) or `slurm.release` (23.11+).
fn version(doc: &Value) -> Option<String> {
    let meta = doc.get("meta")?;
    let slurm = meta.get("slurm").or_else(|| meta.get("Slurm"))?;
    if let Some(r) = slurm.get("release").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        return Some(r.to_string());
    }
    let v = slurm.get("version")?;
    let part = |k: &str| match v.get(k)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    Some(format!("{}.{:0>2}.{}", part("major")?, part("minor")?, part("micro")?))
}

fn node_from_raw(o: RawNode<'_>) -> Node {
    let state = match o.state {
        Some(RawState::Words(words)) => NodeState::from_words(&words),
        Some(RawState::Text(text)) => {
            let mut st = NodeState::parse(&text);
            st.flags.extend(o.state_flags.0.into_iter().map(|f| f.to_ascii_uppercase()));
            st
        }
        None => NodeState::parse("unknown"),
    };
    Node {
        name: o.name.map(|n| n.into_owned()).unwrap_or_default(),
        state,
        partitions: o.partitions.0,
        cpus: o.cpus.0,
        alloc_cpus: o.alloc_cpus.0,
        memory_mb: o.real_memory.0,
        alloc_memory_mb: o.alloc_memory.0,
        gres: gres::gpus(o.gres.as_deref().unwrap_or_default()),
        gres_used: o.gres_used.as_deref().map(gres::gpus),
        alloc_tres_gpus: o.tres_used.as_deref().and_then(gres::tres_gpus),
    }
}

/// Reads `scontrol show node --json` (any version) or 22.05's `sinfo --json`.
/// A document with `errors` is an error even when it also has nodes.
pub fn parse_json(text: &str) -> Result<Listing, ParseError> {
    let doc: RawDoc<'_> = serde_json::from_str(text)
        .map_err(|e| ParseError::Malformed(format!("the JSON answer does not parse: {e}")))?;
    let envelope = serde_json::json!({ "errors": doc.errors, "meta": doc.meta });
    if let Some(e) = errors(&envelope) {
        return Err(ParseError::Slurm(e));
    }
    let nodes = match doc.nodes {
        Some(list) => list.into_iter().map(node_from_raw).filter(|n| !n.name.is_empty()).collect(),
        None if doc.sinfo.is_some() => {
            return Err(ParseError::Malformed(
                "the JSON answer holds grouped `sinfo` records, not nodes (use `scontrol show node --json`)".into(),
            ));
        }
        None => return Err(ParseError::Malformed("the JSON answer has no `nodes` list".into())),
    };
    Ok(Listing { nodes, version: version(&envelope) })
}

/// Keys of `scontrol -o show node` whose values may hold spaces; a value runs
/// until the next ` Key=` of a known key.
const TEXT_KEYS: &[&str] = &[
    "NodeName",
    "Arch",
    "CoresPerSocket",
    "CPUAlloc",
    "CPUEfctv",
    "CPUTot",
    "CPULoad",
    "AvailableFeatures",
    "ActiveFeatures",
    "Gres",
    "GresDrain",
    "GresUsed",
    "NodeAddr",
    "NodeHostName",
    "Port",
    "Version",
    "OS",
    "RealMemory",
    "AllocMem",
    "FreeMem",
    "Sockets",
    "Boards",
    "State",
    "ThreadsPerCore",
    "TmpDisk",
    "Weight",
    "Owner",
    "MCS_label",
    "Partitions",
    "BootTime",
    "SlurmdStartTime",
    "LastBusyTime",
    "ResumeAfterTime",
    "CfgTRES",
    "AllocTRES",
    "CapWatts",
    "CurrentWatts",
    "AveWatts",
    "ExtSensorsJoules",
    "ExtSensorsWatts",
    "ExtSensorsTemp",
    "Reason",
    "Comment",
    "Extra",
    "ReservationName",
    "RestrictedCoresPerGPU",
    "NextState",
    "Features",
    "InstanceId",
    "InstanceType",
    "Topology",
    "MemSpecLimit",
    "CoreSpecCount",
    "CPUSpecList",
    "LastBusy",
    "AllocTRESCnt",
    "GPUs",
];

/// `Key=value` pairs of one line, values running to the next known key.
fn pairs(line: &str) -> Vec<(&str, &str)> {
    // Start offsets of `Key=` tokens of known keys, at the line start or after a space.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    loop {
        let token_end = line[at..].find([' ', '=']).map_or(line.len(), |p| at + p);
        if line[token_end..].starts_with('=') && TEXT_KEYS.contains(&&line[at..token_end]) {
            starts.push((at, token_end + 1));
        }
        match line[at..].find(' ') {
            Some(p) => at += p + 1,
            None => break,
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, (key_at, value_at))| {
            let end = starts.get(i + 1).map_or(line.len(), |(next, _)| *next);
            (&line[*key_at..value_at - 1], line[*value_at..end].trim())
        })
        .collect()
}

/// Reads `scontrol --oneliner --details show node` text, one node a line.
pub fn parse_text(text: &str) -> Result<Listing, ParseError> {
    let mut nodes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.starts_with("NodeName=") {
            if line.starts_with("No nodes in the system") {
                continue;
            }
            return Err(ParseError::Malformed(format!(
                "unexpected line in `scontrol show node`: {}",
                line.chars().take(80).collect::<String>()
            )));
        }
        let kv = pairs(line);
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let num = |k: &str| get(k).and_then(|v| v.parse::<f64>().ok()).filter(|n| *n >= 0.0);
        nodes.push(Node {
            name: get("NodeName").unwrap_or_default().to_string(),
            state: NodeState::parse(get("State").unwrap_or("UNKNOWN")),
            partitions: get("Partitions")
                .filter(|p| !p.is_empty() && *p != "(null)")
                .map(|p| p.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            cpus: num("CPUTot"),
            alloc_cpus: num("CPUAlloc"),
            memory_mb: num("RealMemory"),
            alloc_memory_mb: num("AllocMem"),
            gres: gres::gpus(get("Gres").unwrap_or_default()),
            gres_used: get("GresUsed").map(gres::gpus),
            alloc_tres_gpus: get("AllocTRES").and_then(gres::tres_gpus),
        });
    }
    Ok(Listing { nodes, version: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "NodeName=gpu01 Arch=x86_64 CoresPerSocket=32 CPUAlloc=16 CPUEfctv=64 CPUTot=64 CPULoad=3.10 AvailableFeatures=(null) ActiveFeatures=(null) Gres=gpu:h100:8(S:0-1) GresDrain=N/A GresUsed=gpu:h100:3(IDX:0-2) NodeAddr=gpu01 NodeHostName=gpu01 Version=23.11.4 OS=Linux 5.14.0 #1 SMP PREEMPT_DYNAMIC RealMemory=515000 AllocMem=131072 FreeMem=400000 Sockets=2 Boards=1 State=MIXED+DRAIN ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu,all BootTime=2024-05-01T10:00:00 SlurmdStartTime=2024-05-01T10:00:00 LastBusyTime=2024-05-01T10:00:00 ResumeAfterTime=None CfgTRES=cpu=64,mem=515000M,billing=64,gres/gpu=8 AllocTRES=cpu=16,mem=128G,gres/gpu=3 CurrentWatts=0 AveWatts=0 Reason=maint window [root@2024-05-01T10:00:00]";

    #[test]
    fn text_line_with_spaces_in_values() {
        let l = parse_text(LINE).unwrap();
        let n = &l.nodes[0];
        assert_eq!(n.name, "gpu01");
        assert_eq!(n.state.display(), "MIXED+DRAIN");
        assert_eq!(n.partitions, vec!["gpu", "all"]);
        assert_eq!((n.cpus, n.alloc_cpus, n.memory_mb), (Some(64.0), Some(16.0), Some(515000.0)));
        assert_eq!(n.gres, vec![GpuGres { kind: Some("h100".into()), count: 8 }]);
        assert_eq!(n.gres_used, Some(vec![GpuGres { kind: Some("h100".into()), count: 3 }]));
        assert_eq!(n.alloc_tres_gpus, Some(3));
    }

    #[test]
    fn text_without_details_has_no_gres_used() {
        let l = parse_text(
            "NodeName=a CPUTot=2 Gres=gpu:4 State=IDLE Partitions=p\n\nNodeName=b State=DOWN+NOT_RESPONDING\n",
        )
        .unwrap();
        assert_eq!(l.nodes.len(), 2);
        assert_eq!(l.nodes[0].gres_used, None);
        assert!(!l.nodes[1].state.ready());
        assert!(parse_text("slurm_load_node error: Unable to contact slurm controller").is_err());
    }

    #[test]
    fn json_errors_are_errors() {
        let e =
            parse_json(r#"{"meta":{},"errors":[{"error":"Unspecified error","errno":-1}],"nodes":[]}"#).unwrap_err();
        assert_eq!(e, ParseError::Slurm("Unspecified error (error -1)".into()));
        let e = parse_json(r#"{"errors":[{"description":"Failure to query nodes","error_number":1007,"error":"x","source":"_dump_nodes"}],"nodes":[]}"#).unwrap_err();
        assert_eq!(e.to_string(), "Failure to query nodes: x (error 1007)");
        assert!(matches!(parse_json("not json"), Err(ParseError::Malformed(_))));
        assert!(matches!(parse_json(r#"{"sinfo":[]}"#), Err(ParseError::Malformed(_))));
    }

    #[test]
    fn numbers_in_every_shape() {
        let n = |t: &str| serde_json::from_str::<Num>(t).unwrap().0;
        assert_eq!(n("5"), Some(5.0));
        assert_eq!(n(r#"{"set":true,"infinite":false,"number":7}"#), Some(7.0));
        assert_eq!(n(r#"{"set":false,"infinite":false,"number":0}"#), None);
        assert_eq!(n(r#"{"set":true,"infinite":true,"number":0}"#), None);
        assert_eq!(n("-2"), None);
        assert_eq!(n("4294967294"), None);
        assert_eq!(n("null"), None);
        assert_eq!(n(r#""12""#), Some(12.0));
        assert_eq!(n("1.5"), Some(1.5));
    }
}
