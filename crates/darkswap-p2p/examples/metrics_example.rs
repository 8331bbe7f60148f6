//! The seed's metrics example, on real nodes: a relay and a node whose relay pool reserves on it,
//! then `P2PMetrics` over that pool — recorded events, the registry, one metric, all metrics, and
//! the Prometheus text a scraper reads.
//!
//! ```bash
//! cargo run --example metrics_example
//! ```
//!
//! Exits 0 when the figures add up.

use darkswap_p2p::{
    metrics::{MetricsRegistry, P2PMetrics},
    network::{Network, NetworkConfig, RelayServerConfig},
    relay_connection_pool::{RelayConnectionPool, RelayConnectionPoolConfig},
    relay_discovery::RelayDiscoveryConfig,
};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A relay, and a node whose relay pool keeps a reservation on it.
    let relay_net = Network::builder(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
        .relay_server(RelayServerConfig::default())
        .build()
        .await?;
    let relay_addr = relay_net
        .listen_on("/ip4/127.0.0.1/tcp/0")
        .await?
        .with_p2p(relay_net.local_peer_id())
        .map_err(|a| format!("{a} already names a peer"))?;
    let node = Network::new(NetworkConfig::default()).await?;
    let config = RelayConnectionPoolConfig {
        relay_discovery_config: RelayDiscoveryConfig {
            bootstrap_relays: vec![(relay_net.local_peer_id(), relay_addr.clone())],
            ..RelayDiscoveryConfig::default()
        },
        ..RelayConnectionPoolConfig::default()
    };
    let relay_pool = RelayConnectionPool::new(config, node.local_peer_id(), node.handle());
    relay_pool.start().await?;
    println!("relay pool reserved on {relay_addr}");

    // Create P2P metrics with a 1-second update interval
    let mut metrics = P2PMetrics::new(Duration::from_secs(1));

    // Set the relay pool to collect metrics from
    metrics.set_relay_pool(relay_pool);

    // Record connection events
    metrics.record_connection_attempt();
    metrics.record_connection_success(50); // 50ms latency
    metrics.record_connection_failure();

    // Update metrics
    metrics.update_metrics();

    // Get metrics registry
    let registry: &MetricsRegistry = metrics.registry();

    // Get a specific metric
    let connection_attempts = registry.get_metric("p2p_connection_attempts").ok_or("no p2p_connection_attempts")?;
    println!("p2p_connection_attempts = {}", connection_attempts.value());

    // Get all metrics
    let all_metrics = registry.get_metrics();
    println!("{} metric families:", all_metrics.len());
    for m in &all_metrics {
        println!("  {:<28} {:?} = {}", m.name, m.kind, m.value());
    }

    // Get metrics in Prometheus format
    let prometheus_metrics = metrics.get_prometheus_metrics();
    println!("Prometheus text: {} lines, e.g.", prometheus_metrics.lines().count());
    for line in prometheus_metrics.lines().filter(|l| l.starts_with("p2p_relay")) {
        println!("  {line}");
    }

    // The figures add up: one of each recorded, one relay reserved (with its score).
    let value = |name: &str| registry.get_metric(name).map(|m| m.value()).unwrap_or(-1.0);
    assert_eq!(value("p2p_connection_attempts"), 1.0);
    assert_eq!(value("p2p_connection_successes"), 1.0);
    assert_eq!(value("p2p_connection_failures"), 1.0);
    assert_eq!(value("p2p_connection_latency_ms"), 1.0);
    let started = Instant::now();
    while value("p2p_relay_connections") != 1.0 {
        assert!(started.elapsed() < Duration::from_secs(30), "the reservation shows up");
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics.update_metrics();
    }
    let scores = registry.get_metric("p2p_relay_score").ok_or("no relay scores")?;
    let relay_id = relay_net.local_peer_id().to_string();
    let score = scores.sample_with(&[("relay", relay_id.as_str())]).ok_or("the relay has no score")?;
    println!("relay {relay_id} scores {}", score.value);

    // A network records its own metrics too (what darkswap-node serves at /metrics).
    let own = node.metrics().get_prometheus_metrics();
    assert!(own.contains("p2p_connection_successes_total 1"), "the node's dial to the relay is counted");
    println!("ok");
    Ok(())
}
