//! GRES strings as Slurm prints them: configured (`gpu:h100:8(S:0-1)`) and in
//! use (`gpu:h100:3(IDX:0-2)`), several entries per node, other GRES beside.

/// One GPU entry of a GRES list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuGres {
    /// The type as written (`h100`, `nvidia_h100_80gb_hbm3`); `None` when untyped.
    pub kind: Option<String>,
    /// How many.
    pub count: u32,
}

/// Splits on commas outside parentheses (`gpu:a:2(IDX:0,2),gpu:b:1`).
fn top_level(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    out
}

/// `1K` → 1024 (Slurm abbreviates counts divisible by 1024).
fn count(text: &str) -> Option<u32> {
    let (digits, mult) = match text.chars().last()? {
        'K' | 'k' => (&text[..text.len() - 1], 1024u64),
        'M' | 'm' => (&text[..text.len() - 1], 1024 * 1024),
        'G' | 'g' => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    let n: u64 = digits.parse().ok()?;
    u32::try_from(n.checked_mul(mult)?).ok()
}

/// The GPU entries of a GRES list; other GRES (`shard`, `mps`, `nic`) and
/// `(null)`/`N/A`/empty lists give none.
pub fn gpus(list: &str) -> Vec<GpuGres> {
    let list = list.trim();
    if list.is_empty() || list == "(null)" || list == "N/A" {
        return Vec::new();
    }
    let mut out: Vec<GpuGres> = Vec::new();
    for entry in top_level(list) {
        // `gpu:(null):3(IDX:0-2)`: a topology without a type.
        let entry = entry.replace(":(null):", "::");
        // Drop the `(S:0-1)` / `(IDX:0-2)` suffix.
        let head = entry.split('(').next().unwrap_or_default().trim();
        let mut fields: Vec<&str> = head.split(':').collect();
        if fields.first() != Some(&"gpu") {
            continue;
        }
        fields.retain(|f| *f != "no_consume");
        let (kind, n) = match fields.as_slice() {
            ["gpu"] => (None, Some(1)),
            ["gpu", n] => match count(n) {
                Some(n) => (None, Some(n)),
                None => (Some(n.to_string()), Some(1)),
            },
            ["gpu", kind, n, ..] => (Some(kind.to_string()), count(n)),
            _ => (None, None),
        };
        let kind = kind.filter(|k| !k.is_empty());
        let Some(n) = n else { continue };
        match out.iter_mut().find(|g| g.kind == kind) {
            Some(g) => g.count += n,
            None => out.push(GpuGres { kind, count: n }),
        }
    }
    out
}

/// `gres/gpu=N` of a TRES string (`cpu=16,mem=128G,gres/gpu=3`).
pub fn tres_gpus(tres: &str) -> Option<u32> {
    tres.split(',').find_map(|kv| kv.trim().strip_prefix("gres/gpu=")).and_then(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(kind: Option<&str>, count: u32) -> GpuGres {
        GpuGres { kind: kind.map(str::to_string), count }
    }

    #[test]
    fn configured_lists() {
        assert_eq!(gpus("gpu:h100:8(S:0-1)"), vec![g(Some("h100"), 8)]);
        assert_eq!(gpus("gpu:8(S:0)"), vec![g(None, 8)]);
        assert_eq!(gpus("gpu:h100:8"), vec![g(Some("h100"), 8)]);
        assert_eq!(gpus("gpu:a100:4(S:0),gpu:v100:2(S:1)"), vec![g(Some("a100"), 4), g(Some("v100"), 2)]);
        assert_eq!(gpus("gpu:a100:no_consume:4"), vec![g(Some("a100"), 4)]);
        assert_eq!(gpus("shard:1K,gpu:l4:2,mps:200,nic:1"), vec![g(Some("l4"), 2)]);
        assert_eq!(gpus("(null)"), vec![]);
        assert_eq!(gpus(""), vec![]);
        assert_eq!(gpus("N/A"), vec![]);
    }

    #[test]
    fn used_lists() {
        assert_eq!(gpus("gpu:h100:3(IDX:0-2)"), vec![g(Some("h100"), 3)]);
        assert_eq!(gpus("gpu:h100:0(IDX:N/A)"), vec![g(Some("h100"), 0)]);
        assert_eq!(gpus("gpu:h100:3(IDX:0,2-3),gpu:l4:1(IDX:0)"), vec![g(Some("h100"), 3), g(Some("l4"), 1)]);
        assert_eq!(gpus("gpu:(null):3(IDX:0-2)"), vec![g(None, 3)]);
        assert_eq!(gpus("gpu:2"), vec![g(None, 2)]);
        assert_eq!(gpus("gpu:0"), vec![g(None, 0)]);
        assert_eq!(gpus("shard:h100:5(2/8,3/8),gpu:h100:1(IDX:1)"), vec![g(Some("h100"), 1)]);
    }

    #[test]
    fn tres() {
        assert_eq!(tres_gpus("cpu=16,mem=128G,gres/gpu=3"), Some(3));
        assert_eq!(tres_gpus("cpu=16,gres/gpu:h100=2,gres/gpu=2"), Some(2));
        assert_eq!(tres_gpus("cpu=1,mem=2000M"), None);
        assert_eq!(tres_gpus(""), None);
    }
}
