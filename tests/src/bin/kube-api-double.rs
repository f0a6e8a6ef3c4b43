//! Serves a generated cluster from the Kubernetes API double, for the
//! benchmark: `kube-api-double NODES PODS_PER_NODE CONTEXTS KUBECONFIG [DELAY_MS]`.
//! Writes a kubeconfig with CONTEXTS contexts (ctx-0 ...), each a port of its
//! own over the same data, prints `ready`, and serves until stdin closes.
//! DELAY_MS holds every response back that long, as a remote API server's
//! round trip and its read from etcd would.

use std::{io::Read, time::Duration};

use skyhost_e2e::kube_api::{KubeApi, generated, kubeconfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (nodes, pods, contexts, path, delay_ms) = match args.as_slice() {
        [n, p, c, path] => (n, p, c, path, 0),
        [n, p, c, path, d] => (n, p, c, path, d.parse().expect("DELAY_MS")),
        _ => {
            eprintln!("usage: kube-api-double NODES PODS_PER_NODE CONTEXTS KUBECONFIG [DELAY_MS]");
            std::process::exit(2);
        }
    };
    let (nodes, pods, contexts): (usize, usize, usize) =
        (nodes.parse().expect("NODES"), pods.parse().expect("PODS_PER_NODE"), contexts.parse().expect("CONTEXTS"));
    let api = KubeApi::start(generated(nodes, pods));
    if delay_ms > 0 {
        api.set_faults(|f| f.delay = Some(Duration::from_millis(delay_ms)));
    }
    let mut urls = vec![api.url()];
    for _ in 1..contexts {
        urls.push(format!("http://{}", api.also_listen()));
    }
    let names: Vec<String> = (0..contexts).map(|i| format!("ctx-{i}")).collect();
    let entries: Vec<(&str, &str, &str)> =
        names.iter().zip(&urls).map(|(n, u)| (n.as_str(), u.as_str(), "bench")).collect();
    std::fs::write(path, kubeconfig(&entries, Some("ctx-0"))).expect("write kubeconfig");
    println!("ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
