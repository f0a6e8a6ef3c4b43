//! slurmrestd's REST API, where a cluster names it: `GET
//! /slurm/v0.0.NN/nodes/` over a Unix socket (`unix:/run/slurmrestd.sock`,
//! `rest_auth/local`) or plain HTTP (`http://host:6820`, with a JWT sent as
//! `X-SLURM-USER-NAME` and `X-SLURM-USER-TOKEN`). The answer is the same node
//! document as `scontrol show node --json`. One small HTTP/1.0 request per
//! call, bounded by the cluster's deadline.

use std::{
    io::{Read, Write},
    sync::Mutex,
    time::{Duration, Instant},
};

use skyhost_plugin_api::ClusterError;

use crate::nodes::{self, Listing, ParseError};

/// Where slurmrestd listens, and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestTarget {
    /// `unix:/path` or `http://host:port`.
    pub url: String,
    /// JWT for `X-SLURM-USER-TOKEN`.
    pub token: Option<String>,
    /// `X-SLURM-USER-NAME`.
    pub user: Option<String>,
}

/// Data parser versions, newest first (`/slurm/vX/nodes/`); 22.05 serves v0.0.36-38.
const VERSIONS: [&str; 7] = ["v0.0.44", "v0.0.43", "v0.0.42", "v0.0.41", "v0.0.40", "v0.0.39", "v0.0.38"];

/// The version that answered last time, per URL.
static SERVED: Mutex<Vec<(String, &'static str)>> = Mutex::new(Vec::new());

#[derive(Debug)]
enum Endpoint<'a> {
    Unix(&'a str),
    Tcp(&'a str),
}

fn endpoint(url: &str) -> Result<Endpoint<'_>, String> {
    if let Some(path) = url.strip_prefix("unix:") {
        return Ok(Endpoint::Unix(path));
    }
    if let Some(rest) = url.strip_prefix("http://") {
        return Ok(Endpoint::Tcp(rest.trim_end_matches('/')));
    }
    Err(format!(
        "rest_url = {url:?}: give unix:/path/to/slurmrestd.sock or http://host:port (https is not supported; reach it through an ssh tunnel)"
    ))
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn connect(url: &str, left: Duration) -> Result<Box<dyn Stream>, String> {
    let s: Box<dyn Stream> = match endpoint(url)? {
        Endpoint::Unix(path) => {
            let s =
                std::os::unix::net::UnixStream::connect(path).map_err(|e| format!("cannot connect to {path}: {e}"))?;
            s.set_read_timeout(Some(left)).and_then(|_| s.set_write_timeout(Some(left))).map_err(|e| e.to_string())?;
            Box::new(s)
        }
        Endpoint::Tcp(host) => {
            use std::net::ToSocketAddrs;
            let addr = host
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("cannot resolve {host}"))?;
            let s = std::net::TcpStream::connect_timeout(&addr, left)
                .map_err(|e| format!("cannot connect to {host}: {e}"))?;
            s.set_read_timeout(Some(left)).and_then(|_| s.set_write_timeout(Some(left))).map_err(|e| e.to_string())?;
            Box::new(s)
        }
    };
    Ok(s)
}

/// One GET; `(status, body)`.
fn get(t: &RestTarget, path: &str, deadline: Instant) -> Result<(u16, String), String> {
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let mut s = connect(&t.url, left)?;
    let host = match endpoint(&t.url)? {
        Endpoint::Unix(_) => "localhost",
        Endpoint::Tcp(h) => h,
    };
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n");
    for (name, value) in [("X-SLURM-USER-NAME", &t.user), ("X-SLURM-USER-TOKEN", &t.token)] {
        if let Some(v) = value {
            // A header value never carries a line break.
            if v.contains(['\r', '\n']) {
                return Err(format!("{name} holds a line break"));
            }
            req.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(|e| format!("cannot send the request: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            "no answer in time".to_string()
        } else {
            format!("cannot read the answer: {e}")
        }
    })?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the answer is not HTTP")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = &raw[split + 4..];
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("the answer has no status")?;
    let header = |name: &str| head.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    if let Some(len) = header("content-length:").and_then(|n| n.parse::<usize>().ok()) {
        body = &body[..len.min(body.len())];
    }
    // slurmrestd 22.05 ends its body with the C string's NUL.
    let text = String::from_utf8_lossy(body);
    let text = text.trim_end_matches(['\0', '\r', '\n', ' ']);
    let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
    Ok((status, if chunked { dechunk(text) } else { text.to_string() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Reads the nodes through slurmrestd within `timeout`.
pub fn read_nodes(t: &RestTarget, place: &str, timeout: Duration) -> Result<Listing, ClusterError> {
    let deadline = Instant::now() + timeout;
    let fail = |reason: String, hint: String| ClusterError { reason, hint: Some(hint) };
    let mut versions: Vec<&'static str> = VERSIONS.to_vec();
    if let Some(v) = SERVED.lock().ok().and_then(|s| s.iter().find(|(u, _)| *u == t.url).map(|(_, v)| *v)) {
        versions.retain(|x| *x != v);
        versions.insert(0, v);
    }
    for v in versions {
        if Instant::now() >= deadline {
            break;
        }
        let (status, body) = get(t, &format!("/slurm/{v}/nodes/"), deadline).map_err(|e| {
            fail(format!("slurmrestd at {}: {e}", t.url), format!("check that slurmrestd runs at {} ({place})", t.url))
        })?;
        match status {
            // This slurmrestd does not serve that version (or not that path).
            404 => continue,
            401 | 403 => {
                return Err(fail(
                    format!("slurmrestd at {} refused the request ({status})", t.url),
                    "give a valid token (`scontrol token` prints one) with `token`/`token_file` and the user with `rest_user`, or use its unix socket with rest_auth/local".into(),
                ));
            }
            _ => {}
        }
        return match nodes::parse_json(&body) {
            Ok(l) if status == 200 => {
                if let Ok(mut s) = SERVED.lock() {
                    s.retain(|(u, _)| *u != t.url);
                    s.push((t.url.clone(), v));
                }
                Ok(l)
            }
            Err(ParseError::Slurm(m)) => Err(fail(
                format!("slurmrestd at {}: {m}", t.url),
                "the controller behind slurmrestd does not answer: check `scontrol ping` there".into(),
            )),
            Err(ParseError::Malformed(m)) if status == 200 => Err(fail(
                format!("slurmrestd at {} answered /slurm/{v}/nodes/ with something unreadable: {m}", t.url),
                format!("check its log ({place})"),
            )),
            _ => Err(fail(
                format!("slurmrestd at {} answered {status} to /slurm/{v}/nodes/", t.url),
                format!("check its log ({place})"),
            )),
        };
    }
    Err(fail(
        format!("slurmrestd at {} serves none of {} (or did not answer in time)", t.url, VERSIONS.join(", ")),
        "check that it loads an openapi/v0.0.NN plugin for nodes (slurmrestd -s openapi/v0.0.38 on 22.05)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_chunks() {
        assert!(matches!(endpoint("unix:/run/x.sock"), Ok(Endpoint::Unix("/run/x.sock"))));
        assert!(matches!(endpoint("http://h:6820/"), Ok(Endpoint::Tcp("h:6820"))));
        assert!(endpoint("https://h").unwrap_err().contains("https is not supported"));
        assert_eq!(dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world");
    }
}
