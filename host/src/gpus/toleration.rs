//! `--toleration KEY[=VALUE][:EFFECT]` and `[kubernetes] tolerations`: the
//! taints the user's pods tolerate, in `kubectl taint`'s spelling.

use skyhost_plugin_api::Toleration;

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `KEY` (any value, `Exists`), `KEY=VALUE` (`Equal`), either followed by
/// `:EFFECT` (otherwise every effect). The error is one line naming `text`.
pub fn parse(text: &str) -> Result<Toleration, String> {
    let (rest, effect) = match text.rsplit_once(':') {
        Some((rest, effect)) if EFFECTS.contains(&effect) => (rest, effect),
        Some((_, effect)) => {
            return Err(format!(
                "invalid toleration '{text}': unknown effect '{effect}' (expected NoSchedule, PreferNoSchedule or NoExecute)"
            ));
        }
        None => (text, ""),
    };
    let (key, operator, value) = match rest.split_once('=') {
        Some((key, value)) => (key, "Equal", value),
        None => (rest, "Exists", ""),
    };
    if key.trim().is_empty() {
        return Err(format!("invalid toleration '{text}': the key is empty (expected KEY[=VALUE][:EFFECT])"));
    }
    Ok(Toleration { key: key.into(), operator: operator.into(), value: value.into(), effect: effect.into() })
}

/// `t` in the spelling [`parse`] reads.
pub fn format(t: &Toleration) -> String {
    let mut s = t.key.clone();
    if t.operator != "Exists" {
        s.push('=');
        s.push_str(&t.value);
    }
    if !t.effect.is_empty() {
        s.push(':');
        s.push_str(&t.effect);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_taint_spelling() {
        let t = parse("dedicated=gpuGroup:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.operator.as_str(), t.value.as_str(), t.effect.as_str()),
            ("dedicated", "Equal", "gpuGroup", "NoSchedule")
        );
        let t = parse("example.com/team").unwrap();
        assert_eq!((t.operator.as_str(), t.effect.as_str()), ("Exists", ""));
        let t = parse("team:NoExecute").unwrap();
        assert_eq!((t.key.as_str(), t.operator.as_str(), t.effect.as_str()), ("team", "Exists", "NoExecute"));
        assert_eq!(parse("team=").unwrap().operator, "Equal");
        assert!(parse("team:NoSchedul").unwrap_err().contains("unknown effect 'NoSchedul'"));
        assert!(parse("=x").unwrap_err().contains("the key is empty"));
        assert!(parse("").is_err());
        for text in ["dedicated=gpuGroup:NoSchedule", "team", "team:NoExecute", "team="] {
            assert_eq!(format(&parse(text).unwrap()), text);
        }
    }
}
