//! A network records its own metrics: dials (attempts, successes with latency, failures),
//! connections open and active, the order book and accepted messages, libp2p's own families.

use crate::support::*;
use darkswap_p2p::metrics::MetricKind;
use std::time::Duration;

fn value(net: &darkswap_p2p::network::NetworkHandle, name: &str) -> f64 {
    net.metrics().update_metrics();
    net.metrics().get_metric(name).map(|m| m.value()).unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_records_dials_connections_and_orders() {
    let (a, _) = node().await;
    let (b, b_addr) = node().await;
    let (a, _a_rx) = drain(a);
    let (b, _b_rx) = drain(b);

    // A dial to a port nobody listens on fails; a dial to b succeeds.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nobody = format!("/ip4/127.0.0.1/tcp/{closed}/p2p/{}", b.local_peer_id());
    assert!(a.dial(&nobody).await.is_err());
    a.dial(&b_addr).await.expect("dial b");
    until_meshed(&a, &[b.local_peer_id()]).await;

    until("one success, one failure", || async {
        (value(&a, "p2p_connection_successes") == 1.0 && value(&a, "p2p_connection_failures") == 1.0).then_some(())
    })
    .await;
    assert_eq!(value(&a, "p2p_connection_attempts"), 2.0);
    let latency = a.metrics().get_metric("p2p_connection_latency_ms").unwrap();
    assert_eq!(latency.kind, MetricKind::Histogram);
    assert_eq!(latency.value(), 1.0, "one observation");
    assert_eq!(value(&a, "p2p_connections_total"), 1.0);
    // b did not dial: its counters stay at zero while it counts the connection.
    assert_eq!(value(&b, "p2p_connection_attempts"), 0.0);
    assert_eq!(value(&b, "p2p_connections_total"), 1.0);

    // An order from b makes the connection active on a and lands in a's book gauge.
    b.publish_order(draft(1, Duration::from_secs(600))).await.unwrap();
    until("a's book gauge", || async { (value(&a, "darkswap_orderbook_orders") == 1.0).then_some(()) }).await;
    let gauges =
        || ["p2p_connections_total", "p2p_connections_active", "p2p_connections_idle"].map(|name| value(&a, name));
    assert_eq!(gauges(), [1.0, 1.0, 0.0], "total, active, idle on a: {:?}", a.connections());
    assert_eq!(value(&a, "darkswap_messages_accepted"), 1.0);
    // Bytes per application protocol: the order came over gossipsub; identify ran both ways.
    let bytes = a.metrics().get_metric("darkswap_protocol_bytes").expect("protocol bytes");
    let on = |protocol: &str, direction: &str| {
        bytes
            .samples
            .iter()
            .filter(|s| {
                s.label("protocol").is_some_and(|p| p.contains(protocol)) && s.label("direction") == Some(direction)
            })
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert!(on("/meshsub/", "in") > 0.0, "{bytes:?}");
    assert!(on("/ipfs/id/", "in") > 0.0 && on("/ipfs/id/", "out") > 0.0, "{bytes:?}");
    assert_eq!(on("unknown", "in") + on("unknown", "out"), 0.0, "every stream's protocol was found: {bytes:?}");
    let text = a.metrics().get_prometheus_metrics();
    assert!(text.contains("libp2p_swarm_connections_established_total{"), "libp2p's own metrics");
    assert!(text.contains("libp2p_gossipsub_messages_total"), "libp2p's gossipsub message count");
    assert!(!text.contains("libp2p_gossipsub_mesh_peer_counts"), "gossipsub's detailed metrics are opt-in");
    assert!(text.contains("darkswap_messages_rejected_total{reason=\"bad_signature\"} 0"));
    for h in [&a, &b] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_detail_and_recording_can_be_switched() {
    use darkswap_p2p::network::{Network, NetworkConfig};
    let detailed = Network::builder(NetworkConfig::default()).gossipsub_metrics(true).build().await.unwrap();
    let text = detailed.metrics().get_prometheus_metrics();
    assert!(text.contains("libp2p_gossipsub_topic_subscription_status{"), "{text}");
    let quiet = Network::builder(NetworkConfig::default()).metrics_enabled(false).build().await.unwrap();
    let text = quiet.metrics().get_prometheus_metrics();
    assert!(text.contains("p2p_connections_total 0"), "the gauges stay");
    assert!(!text.contains("darkswap_protocol_bytes"), "no per-protocol counting");
    assert!(!text.contains("libp2p_gossipsub_topic_subscription_status"), "no gossipsub detail");
    detailed.shutdown().await.unwrap();
    quiet.shutdown().await.unwrap();
}
