//! Metrics as operators use them: the alert rules pass `promtool`, the dashboard and the rules
//! name metrics a node really exports, and a real Prometheus server scraping a node while peers
//! connect and trade finds the expected values. Needs Debian's `prometheus` package
//! (`scripts/setup-prometheus.sh`, run by `scripts/test.sh`); without it these tests fail.

mod common;

use common::*;
use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

fn examples() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../darkswap-p2p/examples"))
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(examples())
        .output()
        .expect("promtool runs (install it with scripts/setup-prometheus.sh)");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_pass_promtool_checks_and_unit_tests() {
    let checked = promtool(&["check", "rules", "prometheus-alerts.yml"]);
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    // Each of the eight alerts fires on an unhealthy series and stays silent on a healthy one.
    let tested = promtool(&["test", "rules", "prometheus-alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Metric names (`p2p_…`, `darkswap_…`, `libp2p_…`) mentioned in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(['p', 'd', 'l']) {
        let rest = &text[i..];
        if !(rest.starts_with("p2p_") || rest.starts_with("darkswap_") || rest.starts_with("libp2p_")) {
            continue;
        }
        if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        out.insert(rest[..end].to_string());
    }
    out
}

fn scrape(url: &str) -> String {
    ureq::get(url).call().expect("scrape").into_body().read_to_string().expect("body")
}

#[test]
fn dashboard_and_alerts_use_metrics_a_node_exports() {
    // A node with a relay, so that the relay families have series too.
    let relay = start(&["--relay"]);
    // It also runs a signaling server, whose figures join the node's.
    let node = start(&["--relay-peer", &relay.p2p, "--signaling-server", "127.0.0.1:0"]);
    let mut exposition = String::new();
    until("the node reserves on its relay", || {
        exposition = scrape(&node.metrics);
        exposition.contains("p2p_relay_connections 1") && exposition.contains("p2p_relay_score{")
    });
    until("the node registers on its own signaling server", || {
        scrape(&node.metrics).contains("darkswap_signaling_clients_registered 1")
    });
    // Sample names, and family names (a family with no series yet, such as relay scores before
    // any relay is known, still has its TYPE line).
    let exported: BTreeSet<String> = exposition
        .lines()
        .filter(|l| !l.is_empty() && (!l.starts_with('#') || l.starts_with("# TYPE ")))
        .filter_map(|l| l.trim_start_matches("# TYPE ").split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let dashboard = std::fs::read_to_string(examples().join("grafana-dashboard.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let titles: Vec<&str> = json["panels"].as_array().unwrap().iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Connection Pool Stats",
        "Connection Performance",
        "Connection Success Rate",
        "Connection Latency",
        "Relay Connections",
        "Relay Scores",
    ] {
        assert!(titles.contains(&wanted), "panel {wanted:?} missing: {titles:?}");
    }
    let datasource = &json["templating"]["list"][0];
    assert_eq!((datasource["type"].as_str(), datasource["query"].as_str()), (Some("datasource"), Some("prometheus")));
    let alerts = std::fs::read_to_string(examples().join("prometheus-alerts.yml")).unwrap();
    for (file, text) in [("grafana-dashboard.json", &dashboard), ("prometheus-alerts.yml", &alerts)] {
        let used = names_in(text);
        assert!(!used.is_empty(), "{file} names no metric");
        for name in used {
            assert!(exported.contains(&name), "{file} uses {name}, which the node does not export");
        }
    }
}

/// A Prometheus server on a free port scraping `target` every second; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory under target/tmp, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn prometheus(target: &str) -> Prometheus {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: darkswap-p2p\n    \
         static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus runs (install it with scripts/setup-prometheus.sh)");
    Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: TempDir(dir) }
}

/// The value of the single series `query` returns, if it returns one.
fn query(prom: &Prometheus, query: &str) -> Option<f64> {
    let body = ureq::get(format!("{}/api/v1/query", prom.url))
        .query("query", query)
        .call()
        .ok()?
        .into_body()
        .read_to_string()
        .ok()?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = json["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

fn connections(node: &Node) -> Vec<serde_json::Value> {
    let body = ureq::get(format!("{}/connections", node.api)).call().unwrap().into_body().read_to_string().unwrap();
    serde_json::from_str(&body).unwrap()
}

#[test]
fn prometheus_scrapes_a_node_while_peers_connect_and_trade() {
    let hub = start(&[]);
    let b = start(&[]);
    let c = start(&[]);
    let target = hub.metrics.trim_start_matches("http://").trim_end_matches("/metrics").to_string();
    let prom = prometheus(&target);
    until("prometheus scrapes the node", || query(&prom, "up{job=\"darkswap-p2p\"}") == Some(1.0));

    // The hub dials both peers; b posts two orders, which reach the hub.
    for peer in [&b, &c] {
        let (ok, out) = cli(&["dial", "--api", &hub.api, &peer.p2p]);
        assert!(ok, "{out}");
    }
    for amount in ["5000", "6000"] {
        let (ok, out) = cli(&[
            "post",
            "--api",
            &b.api,
            "--side",
            "sell",
            "--base",
            "rune:840000:1",
            "--amount",
            amount,
            "--price",
            "2500",
        ]);
        assert!(ok, "{out}");
    }

    let dialed = || connections(&hub).iter().filter(|c| c["outbound"] == true).count() as f64;
    until("successes equal the connections the hub made", || {
        query(&prom, "p2p_connection_successes_total") == Some(dialed()) && dialed() >= 2.0
    });
    until("every attempt is accounted for", || {
        let attempts = query(&prom, "p2p_connection_attempts_total");
        let done = query(&prom, "p2p_connection_successes_total + p2p_connection_failures_total");
        attempts.is_some() && attempts == done
    });
    until("one latency observation per connection", || {
        query(&prom, "p2p_connection_latency_ms_count") == query(&prom, "p2p_connection_successes_total")
    });
    until("the hub's book holds both orders", || query(&prom, "darkswap_orderbook_orders") == Some(2.0));
    until("open connections", || query(&prom, "p2p_connections_total") == Some(connections(&hub).len() as f64));
    until("active ones carried the orders", || query(&prom, "p2p_connections_active").is_some_and(|v| v >= 1.0));
    until("accepted messages", || query(&prom, "darkswap_messages_accepted_total").is_some_and(|v| v >= 2.0));
    until("libp2p's own metrics", || {
        query(&prom, "sum(libp2p_swarm_connections_established_total)").is_some_and(|v| v >= 2.0)
    });
    let healthy = query(&prom, "sum(darkswap_messages_rejected_total)");
    assert_eq!(healthy, Some(0.0), "nothing was rejected");
}
