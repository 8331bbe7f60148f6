//! The DarkSwap node process of a run: a `Network` on the host's address, started from the
//! bootstrap nodes, publishing the orders the plan gives it and logging what it sees.

use darkswap_lab::plan::{address, metric_by_label, metric_sum, node_key, now_ms, read_book, Plan, Record, PORT};
use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkEvent, PeeringConfig},
    order_book::OrderBookLimits,
    protocol::{Message, ORDERBOOK_TOPIC},
};
use darkswap_support::types::{AssetId, OrderDraft, Side};
use std::time::Duration;

/// Runs host `id` of `plan` until the simulation stops it.
pub async fn run(plan: Plan, id: u32) -> Result<(), Box<dyn std::error::Error>> {
    let me = plan.hosts.iter().find(|h| h.id == id).ok_or("host not in the plan")?.clone();
    let config = NetworkConfig {
        bootstrap_peers: plan.bootstrap_addrs().into_iter().filter(|a| *a != address(&me)).collect(),
        ..NetworkConfig::default()
    };
    let mut net = Network::builder(config)
        .keypair(node_key(id))
        .listen_on(format!("/ip4/0.0.0.0/tcp/{PORT}").parse()?)
        .metrics_enabled(true)
        .gossipsub_metrics(true)
        .order_book_limits(OrderBookLimits {
            max_orders: plan.resync.as_ref().map_or(OrderBookLimits::default().max_orders, |r| r.max_orders),
            ..OrderBookLimits::default()
        })
        .peering(PeeringConfig {
            target_outbound: plan.target_outbound,
            max_peers: plan.max_peers,
            ..PeeringConfig::default()
        })
        .build()
        .await?;
    Record::Start { t: now_ms(), id, peer: net.local_peer_id().to_string() }.emit();
    let handle = net.handle();
    let local = net.local_peer_id();
    if let Some(resync) = plan.resync.as_ref().filter(|r| r.newcomer != id) {
        let added = handle.import_orders(read_book(&resync.book)?).await?;
        eprintln!("node {id}: imported {added} orders");
        if resync.returner == id {
            let peers: Vec<_> =
                plan.hosts.iter().filter(|h| h.id != id).map(|h| node_key(h.id).public().to_peer_id()).collect();
            let (h, from, to) = (handle.clone(), resync.away_from_ms, resync.away_to_ms);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(from.saturating_sub(now_ms()))).await;
                for p in &peers {
                    let _ = h.ban_peer(*p).await;
                }
                tokio::time::sleep(Duration::from_millis(to.saturating_sub(now_ms()))).await;
                for p in &peers {
                    let _ = h.unban_peer(*p).await;
                }
            });
        }
    }
    let metrics = net.metrics();
    // A process that restarted publishes only what is still ahead of it.
    let started = now_ms();
    let mine: Vec<(u64, u64)> =
        plan.publish.iter().filter(|p| p.1 == id && p.0 >= started).map(|p| (p.0, p.2)).collect();
    let payload = plan.payload;
    let publisher = handle.clone();
    tokio::spawn(async move {
        for (at, tag) in mine {
            tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
            let mut terms = tag.to_be_bytes().to_vec();
            terms.resize(payload.max(8), 0xab);
            let draft = OrderDraft {
                base: AssetId::Btc,
                quote: "rune:840000:1".parse().expect("a rune id"),
                side: Side::Sell,
                amount: 1 + u128::from(tag),
                price: 2_500,
                ttl: Duration::from_secs(3600),
                terms,
            };
            Record::Publish { t: now_ms(), tag }.emit();
            if let Err(e) = publisher.publish_order(draft).await {
                eprintln!("publish {tag}: {e}");
            }
        }
    });
    if let Some(cut) = plan.partition {
        let peers = cut.cut_off(&plan.hosts, &me);
        let h = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(cut.from_ms.saturating_sub(now_ms()))).await;
            for p in &peers {
                let _ = h.ban_peer(*p).await;
            }
            tokio::time::sleep(Duration::from_millis(cut.to_ms.saturating_sub(now_ms()))).await;
            for p in &peers {
                let _ = h.unban_peer(*p).await;
            }
        });
    }
    let observer = handle.clone();
    let links_at = plan.links_at_ms;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut links_done = false;
        loop {
            tick.tick().await;
            let t = now_ms();
            let conns = observer.connections();
            let mut peers: Vec<_> = conns.iter().map(|c| c.peer_id).collect();
            peers.sort();
            peers.dedup();
            let mut out: Vec<_> = conns.iter().filter(|c| c.outbound).map(|c| c.peer_id).collect();
            out.sort();
            out.dedup();
            let mesh = observer.mesh_peers(ORDERBOOK_TOPIC).await.map(|m| m.len()).unwrap_or(0);
            Record::Peers { t, n: peers.len(), out: out.len(), mesh }.emit();
            if !links_done && t >= links_at {
                links_done = true;
                Record::Links { t, peers: peers.iter().map(|p| p.to_string()).collect() }.emit();
            }
            if (t / 1000).is_multiple_of(5) {
                let text = metrics.registry().encode_openmetrics();
                Record::Counters {
                    t,
                    sent: metric_sum(&text, "darkswap_protocol_bytes_total", &["direction=\"out\""]),
                    received_all: metric_sum(&text, "libp2p_gossipsub_topic_msg_recv_counts_unfiltered_total", &[]),
                    received_first: metric_sum(&text, "libp2p_gossipsub_topic_msg_recv_counts_total", &[]),
                    sent_by_protocol: metric_by_label(
                        &text,
                        "darkswap_protocol_bytes_total",
                        "direction=\"out\"",
                        "protocol",
                    ),
                    received_by_protocol: metric_by_label(
                        &text,
                        "darkswap_protocol_bytes_total",
                        "direction=\"in\"",
                        "protocol",
                    ),
                }
                .emit();
            }
        }
    });
    while let Some(ev) = net.next_event().await {
        if let NetworkEvent::MessageReceived { peer_id, message: Message::OrderAnnounce(order), .. } = ev {
            if peer_id == local {
                continue; // imported at start
            }
            if let Some(tag) = order.terms.get(..8) {
                let tag = u64::from_be_bytes(tag.try_into().expect("8 bytes"));
                Record::Receive { t: now_ms(), tag }.emit();
            }
        }
    }
    Ok(())
}
