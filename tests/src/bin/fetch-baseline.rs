//! The benchmark's baseline: fetch every page of nodes and pods (the same
//! `limit`, `continue` and field selector as the plugin) with a plain HTTP
//! client and parse each page into a generic JSON value, sequentially.
//! `fetch-baseline URL`; prints the number of items read.

fn list(agent: &ureq::Agent, url: &str, path: &str, selector: Option<&str>) -> usize {
    let mut token = String::new();
    let mut items = 0;
    loop {
        let mut req = agent.get(format!("{url}{path}")).query("limit", "500");
        if let Some(s) = selector {
            req = req.query("fieldSelector", s);
        }
        if !token.is_empty() {
            req = req.query("continue", &token);
        }
        let body = req.call().expect("request").body_mut().with_config().limit(1 << 30).read_to_vec().expect("body");
        let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        items += page["items"].as_array().map_or(0, Vec::len);
        token = page["metadata"]["continue"].as_str().unwrap_or_default().to_string();
        if token.is_empty() {
            return items;
        }
    }
}

fn main() {
    let url = std::env::args().nth(1).expect("usage: fetch-baseline URL");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let nodes = list(&agent, &url, "/api/v1/nodes", None);
    let pods = list(&agent, &url, "/api/v1/pods", Some("status.phase!=Succeeded,status.phase!=Failed"));
    println!("{nodes} nodes, {pods} pods");
}
