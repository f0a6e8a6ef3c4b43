//! Node states as Slurm reports them: `MIXED+DRAIN` (scontrol), `"mixed"` with
//! `state_flags` (22.05 JSON), `["MIXED","DRAIN"]` (23.02+ JSON), `mix*` (sinfo).

/// A node's state: a base and its flags, upper case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeState {
    /// `IDLE`, `MIXED`, `ALLOCATED`, `DOWN`, `UNKNOWN`, ...
    pub base: String,
    /// `DRAIN`, `NOT_RESPONDING`, `MAINTENANCE`, ...
    pub flags: Vec<String>,
}

const BASES: [&str; 9] = ["IDLE", "MIXED", "ALLOCATED", "DOWN", "UNKNOWN", "ERROR", "FUTURE", "COMPLETING", "END"];

/// Flags whose nodes give no GPUs.
const NOT_READY_FLAGS: [&str; 9] = [
    "DRAIN",
    "DRAINED",
    "DRAINING",
    "NOT_RESPONDING",
    "MAINTENANCE",
    "POWERED_DOWN",
    "POWERING_DOWN",
    "FAIL",
    "INVALID_REG",
];

impl NodeState {
    /// Parses `MIXED+DRAIN`, `mix*`, `down~`, `IDLE+CLOUD+POWERED_DOWN`.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let mut flags = Vec::new();
        // sinfo's one-character suffixes.
        let trimmed = text.trim_end_matches(['*', '~', '#', '%', '!', '$', '^', '@', '-']);
        for c in text[trimmed.len()..].chars() {
            let flag = match c {
                '*' => "NOT_RESPONDING",
                '~' => "POWERED_DOWN",
                '$' => "MAINTENANCE",
                '%' => "POWERING_DOWN",
                '#' => "POWERING_UP",
                '!' => "POWER_DOWN",
                '^' => "REBOOT_ISSUED",
                '@' => "REBOOT_REQUESTED",
                _ => continue,
            };
            flags.push(flag.to_string());
        }
        let mut parts = trimmed.split('+');
        let base = long_name(parts.next().unwrap_or_default());
        flags.extend(parts.filter(|p| !p.is_empty()).map(|p| p.to_ascii_uppercase()));
        let mut s = Self { base: base.to_string(), flags };
        // sinfo's `drain`, `drng`, `maint`: flags written as bases.
        match s.base.as_str() {
            "DRAINED" => {
                s.base = "IDLE".into();
                s.flags.insert(0, "DRAIN".into());
            }
            "DRAINING" => {
                s.base = "MIXED".into();
                s.flags.insert(0, "DRAIN".into());
            }
            "MAINTENANCE" => {
                s.base = "IDLE".into();
                s.flags.insert(0, "MAINTENANCE".into());
            }
            _ => {}
        }
        s
    }

    /// From a JSON array `["MIXED","DRAIN"]`: the first base, the rest flags.
    pub fn from_words(words: &[String]) -> Self {
        let mut s = Self::default();
        for w in words {
            let up = w.to_ascii_uppercase();
            if s.base.is_empty() && BASES.contains(&up.as_str()) {
                s.base = up;
            } else {
                s.flags.push(up);
            }
        }
        if s.base.is_empty() {
            s.base = "UNKNOWN".into();
        }
        s
    }

    /// Whether a job can get GPUs on this node now.
    pub fn ready(&self) -> bool {
        !matches!(self.base.as_str(), "DOWN" | "UNKNOWN" | "ERROR" | "FUTURE")
            && !self.flags.iter().any(|f| NOT_READY_FLAGS.contains(&f.as_str()))
    }

    /// As scontrol writes it: `MIXED+DRAIN`.
    pub fn display(&self) -> String {
        std::iter::once(self.base.as_str()).chain(self.flags.iter().map(String::as_str)).collect::<Vec<_>>().join("+")
    }
}

/// sinfo's compact and long names, lower case, to scontrol's.
fn long_name(word: &str) -> &'static str {
    match word.to_ascii_lowercase().as_str() {
        "idle" => "IDLE",
        "mix" | "mixed" => "MIXED",
        "alloc" | "allocated" => "ALLOCATED",
        "comp" | "completing" => "COMPLETING",
        "down" => "DOWN",
        "drain" | "drained" => "DRAINED",
        "drng" | "draining" => "DRAINING",
        "fail" | "failing" => "DOWN",
        "futr" | "future" => "FUTURE",
        "maint" | "maintenance" => "MAINTENANCE",
        "resv" | "reserved" => "IDLE",
        "plnd" | "planned" => "IDLE",
        "inval" | "invalid" => "ERROR",
        "err" | "error" => "ERROR",
        "boot" | "rebooting" => "DOWN",
        "block" | "blocked" => "IDLE",
        "npc" | "perfctrs" => "ALLOCATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_states() {
        let s = NodeState::parse("MIXED+DRAIN");
        assert_eq!((s.base.as_str(), s.flags.clone(), s.ready()), ("MIXED", vec!["DRAIN".to_string()], false));
        assert!(NodeState::parse("IDLE").ready());
        assert!(NodeState::parse("MIXED").ready());
        assert!(NodeState::parse("ALLOCATED").ready());
        assert!(NodeState::parse("ALLOCATED+COMPLETING").ready());
        assert!(NodeState::parse("IDLE+RESERVED").ready());
        assert!(!NodeState::parse("DOWN+NOT_RESPONDING").ready());
        assert!(!NodeState::parse("IDLE+NOT_RESPONDING").ready());
        assert!(!NodeState::parse("UNKNOWN+NOT_RESPONDING").ready());
        assert!(!NodeState::parse("IDLE+MAINTENANCE").ready());
        assert!(!NodeState::parse("IDLE+CLOUD+POWERED_DOWN").ready());
        assert!(!NodeState::parse("IDLE+DRAIN").ready());
        assert_eq!(NodeState::parse("IDLE+CLOUD+POWERED_DOWN").display(), "IDLE+CLOUD+POWERED_DOWN");
    }

    #[test]
    fn sinfo_states() {
        let s = NodeState::parse("mix*");
        assert_eq!((s.base.as_str(), s.flags.clone(), s.ready()), ("MIXED", vec!["NOT_RESPONDING".to_string()], false));
        assert_eq!(NodeState::parse("drng").display(), "MIXED+DRAIN");
        assert_eq!(NodeState::parse("drain").display(), "IDLE+DRAIN");
        assert!(!NodeState::parse("idle~").ready());
        assert!(NodeState::parse("mix-").ready());
        assert!(!NodeState::parse("maint").ready());
        assert!(NodeState::parse("alloc").ready());
    }

    #[test]
    fn json_words() {
        let s = NodeState::from_words(&["MIXED".into(), "DRAIN".into()]);
        assert_eq!((s.display(), s.ready()), ("MIXED+DRAIN".to_string(), false));
        assert!(NodeState::from_words(&["IDLE".into()]).ready());
        assert!(!NodeState::from_words(&["DOWN".into(), "NOT_RESPONDING".into()]).ready());
    }
}
