//! Which proxy, if any, carries the connection to a cluster, decided as
//! kubectl (Go's `http.ProxyFromEnvironment`) decides it: the cluster's
//! `proxy-url` in the kubeconfig; else `HTTPS_PROXY` (`HTTP_PROXY` for an
//! `http://` server) unless the server is loopback or matches `NO_PROXY`.
//!
//! kube reads the same variables, but matches `NO_PROXY` against the proxy's
//! address rather than the server's, so the choice is made here.

use std::net::IpAddr;

fn env(names: [&str; 2]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
}

/// The proxy for `server`, with `cluster_proxy` from the kubeconfig; an
/// error names the setting that is not a URL.
pub fn choose(cluster_proxy: Option<&str>, server: &http::Uri) -> Result<Option<http::Uri>, String> {
    let parse = |value: &str, from: &str| {
        value.parse::<http::Uri>().map(Some).map_err(|e| format!("{from} is not a proxy URL ({value}): {e}"))
    };
    if let Some(p) = cluster_proxy.map(str::trim).filter(|p| !p.is_empty()) {
        return parse(p, "the cluster's proxy-url");
    }
    let (proxy, name) = if server.scheme_str() == Some("http") {
        (env(["HTTP_PROXY", "http_proxy"]), "HTTP_PROXY")
    } else {
        (env(["HTTPS_PROXY", "https_proxy"]), "HTTPS_PROXY")
    };
    let Some(proxy) = proxy else { return Ok(None) };
    let host = server.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = server.port_u16().unwrap_or(if server.scheme_str() == Some("http") { 80 } else { 443 });
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let excluded = env(["NO_PROXY", "no_proxy"]).is_some_and(|list| no_proxy_matches(&list, &host, port));
    if loopback || excluded { Ok(None) } else { parse(&proxy, name) }
}

/// Whether `NO_PROXY` list `list` covers `host:port`: `*`; an IP address or
/// CIDR range; a domain, which covers its subdomains too (`example.com`,
/// `.example.com` and `*.example.com` alike); each optionally with `:port`.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let ip = host.parse::<IpAddr>().ok();
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            return match (net.parse::<IpAddr>(), bits.parse::<u32>(), ip) {
                (Ok(net), Ok(bits), Some(ip)) => in_range(ip, net, bits),
                _ => false,
            };
        }
        let (name, entry_port) = split_port(entry);
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if let (Ok(entry_ip), Some(ip)) = (name.parse::<IpAddr>(), ip) {
            return entry_ip == ip;
        }
        let domain = name.trim_start_matches('*').trim_start_matches('.').to_ascii_lowercase();
        !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
    })
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    // `host:port`, `[v6]:port`; a bare IPv6 address has several colons.
    match entry.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::no_proxy_matches;

    #[test]
    fn no_proxy_entries_match_as_go_matches_them() {
        let list = "localhost, .svc,*.corp.example, example.org, 10.0.0.0/8, 192.168.1.7, fd00::/8, api.internal:6443";
        for (host, port, want) in [
            ("kubernetes.default.svc", 443, true),
            ("svc", 443, true),
            ("a.b.corp.example", 443, true),
            ("example.org", 443, true),
            ("eks.example.org", 443, true),
            ("notexample.org", 443, false),
            ("10.200.3.4", 443, true),
            ("11.0.0.1", 443, false),
            ("192.168.1.7", 6443, true),
            ("192.168.1.8", 6443, false),
            ("fd12::1", 443, true),
            ("api.internal", 6443, true),
            ("api.internal", 443, false),
            ("gke.googleapis.com", 443, false),
        ] {
            assert_eq!(no_proxy_matches(list, host, port), want, "{host}:{port}");
        }
        assert!(no_proxy_matches("*", "anything.example", 443));
        assert!(!no_proxy_matches("", "anything.example", 443));
        assert!(!no_proxy_matches("10.0.0.0/99,nonsense/8", "10.0.0.1", 443));
    }
}
