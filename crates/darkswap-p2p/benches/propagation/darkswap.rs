//! The darkswap side of the propagation bench: `Network` nodes on the shared topology, and the
//! flooding peers of `--only flood`.

use super::{cpu_time, drain, edges, latencies, publish_loop, raw_gossip, Opts, Received, Report, Sent};
use darkswap_p2p::{
    libp2p::{
        futures::StreamExt,
        gossipsub::{self, IdentTopic},
        identity::Keypair,
        swarm::SwarmEvent,
        Multiaddr,
    },
    network::{Network, NetworkConfig, NetworkEvent, NetworkHandle},
    protocol::{Message, RejectReason, ORDERBOOK_TOPIC},
};
use darkswap_support::types::{AssetId, OrderDraft, Side};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// A ten-minute order for `amount` base units of BTC against a rune, at one price.
fn draft(side: Side, amount: u128, terms: Vec<u8>) -> OrderDraft {
    OrderDraft {
        base: AssetId::Btc,
        quote: "rune:840000:1".parse().unwrap(),
        side,
        amount,
        price: 2_500,
        ttl: Duration::from_secs(600),
        terms,
    }
}

/// A flooding peer: bare gossipsub (no limits of its own) that connects to `target` and, once
/// subscribed, publishes signed orders of its own interleaved with junk as fast as it can.
fn flooder(target: String) -> tokio::task::JoinHandle<()> {
    let key = Keypair::generate_ed25519();
    let mut swarm = raw_gossip::raw_gossip_swarm(key.clone());
    let topic = IdentTopic::new(ORDERBOOK_TOPIC);
    swarm.behaviour_mut().subscribe(&topic).unwrap();
    swarm.dial(target.parse::<Multiaddr>().unwrap()).unwrap();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) = swarm.select_next_some().await {
                break;
            }
        }
        let me = key.public().to_peer_id();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for i in 0u64.. {
            let payload = if i % 10 == 9 {
                [vec![darkswap_p2p::protocol::WIRE_VERSION], i.to_le_bytes().to_vec()].concat()
            } else {
                let draft = draft(Side::Buy, 1 + i as u128, Vec::new());
                let order = darkswap_support::types::Order::from_draft(me, &draft, now, i);
                darkswap_p2p::protocol::envelope::seal(&key, ORDERBOOK_TOPIC, &Message::OrderAnnounce(order)).unwrap()
            };
            let _ = swarm.behaviour_mut().publish(topic.clone(), payload);
            // Write what was queued, then go on; stop when every connection is gone (banned).
            while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_micros(200), swarm.next()).await {
                if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = ev {
                    return;
                }
            }
        }
    })
}

pub async fn run_darkswap(o: &Opts, metrics: bool) -> Report {
    run_darkswap_with(o, metrics, 0).await
}

pub async fn run_darkswap_with(o: &Opts, metrics: bool, flooders: usize) -> Report {
    let mut handles: Vec<NetworkHandle> = Vec::new();
    let mut addrs = Vec::new();
    let received: Received = Arc::default();
    // Deliveries per receiving node: shows whether missing orders are spread thin or a few
    // nodes were cut off.
    let per_node: Arc<Vec<AtomicUsize>> = Arc::new((0..o.nodes).map(|_| AtomicUsize::new(0)).collect());
    for i in 0..o.nodes {
        let rx = received.clone();
        let count = per_node.clone();
        let mesh = o.mesh;
        let (addr, handle) = o
            .layout
            .spawn(i, async move {
                // Same fixed topology as the plain stack: no DHT random walks adding connections.
                let mut net = Network::builder(NetworkConfig::default())
                    .discovery(false)
                    .metrics_enabled(metrics)
                    .gossip_mesh(mesh.0, mesh.1, mesh.2)
                    .build()
                    .await
                    .unwrap();
                let a = net.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap();
                let addr = format!("{a}/p2p/{}", net.local_peer_id());
                let handle = net.handle();
                tokio::spawn(async move {
                    while let Some(ev) = net.next_event().await {
                        if let NetworkEvent::MessageReceived { message: Message::OrderAnnounce(order), .. } = ev {
                            let Some(tag) = order.terms.get(..8) else {
                                continue; // a flooder's order (empty terms)
                            };
                            let now = Instant::now();
                            // Only the tag is kept, as the other stacks keep theirs: holding every
                            // order's terms would grow the heap by ~1 KiB per delivery.
                            rx.lock().unwrap().push((tag.to_vec(), now));
                            count[i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                (addr, handle)
            })
            .await
            .unwrap();
        addrs.push(addr);
        handles.push(handle);
    }
    for (i, j) in edges(o.nodes) {
        handles[i].dial(&addrs[j]).await.unwrap();
    }
    for h in &handles {
        while h.mesh_peers(ORDERBOOK_TOPIC).await.unwrap().len() < o.mesh.1.min(3) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let floods: Vec<_> = (0..flooders).map(|k| flooder(addrs[k * o.nodes / flooders.max(1)].clone())).collect();
    let sent: Sent = Arc::default();
    let cpu_start = cpu_time();
    let (published, elapsed) = publish_loop(o, |node, k| {
        let h = handles[node].clone();
        let sent = sent.clone();
        let size = o.size;
        // Open loop, as plain's fire-and-forget publish: the publishing node's own runtime
        // runs the call, so a busy node delays neither the schedule nor the other publishers.
        o.layout.spawn(node, async move {
            // The order's terms carry a unique tag; padding brings the signed envelope to ~size.
            let mut terms = k.to_be_bytes().to_vec();
            sent.lock().unwrap().insert(terms.clone(), Instant::now());
            terms.resize(size.saturating_sub(230).max(8), 0xab);
            h.publish_order(draft(Side::Sell, 1 + k as u128, terms)).await.unwrap();
        });
        async {}
    })
    .await;
    drain(&received, published * (o.nodes - 1), o.settle).await;
    let cpu = cpu_time().saturating_sub(cpu_start);
    let mut conns = 0;
    for h in &handles {
        conns += h.connected_peers().await.unwrap().len();
    }
    println!("darkswap-p2p: {:.1} connected peers per node on average", conns as f64 / o.nodes as f64);
    let want = published - published / o.nodes; // orders from the other nodes
    let counts: Vec<usize> = per_node.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let short: Vec<String> =
        counts.iter().enumerate().filter(|(_, c)| **c + 1 < want).map(|(i, c)| format!("node {i}: {c}")).collect();
    println!(
        "darkswap-p2p deliveries per node: min {}, max {} of ~{want}; short: {}",
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0),
        if short.is_empty() { "none".to_string() } else { short.join(", ") }
    );
    if o.show_mesh {
        let ids: Vec<_> = handles.iter().map(|h| h.local_peer_id()).collect();
        for (i, h) in handles.iter().enumerate() {
            let m = h.mesh_peers(ORDERBOOK_TOPIC).await.unwrap();
            let idx: Vec<usize> = m.iter().filter_map(|p| ids.iter().position(|x| x == p)).collect();
            println!("node {i}: {} orders received, mesh peers {idx:?}", counts[i]);
        }
    }
    if o.timeline {
        println!("{}", super::harness::timeline(&sent, &received));
    }
    let lat = latencies(&sent, &received);
    // Why an order may be missing at a node: it refused the copy (rate limit, full book), or
    // it banned a peer; anything else was dropped inside gossipsub (queue full or too old).
    let sum = |r| handles.iter().map(|h| h.stats().rejected(r)).sum::<u64>();
    println!(
        "darkswap-p2p refusals: rate-limited {}, book full {}, expired {}; peers banned {}; orders by sync {}, sync failures {}",
        sum(RejectReason::RateLimited),
        sum(RejectReason::BookFull),
        sum(RejectReason::Expired),
        handles.iter().map(|h| h.stats().peers_banned).sum::<u64>(),
        handles.iter().map(|h| h.stats().orders_synced).sum::<u64>(),
        handles.iter().map(|h| h.stats().sync_failures).sum::<u64>()
    );
    if flooders > 0 {
        let banned: u64 = handles.iter().map(|h| h.stats().peers_banned).sum();
        let limited: u64 = handles.iter().map(|h| h.stats().rejected(RejectReason::RateLimited)).sum();
        let junk: u64 = handles.iter().map(|h| h.stats().rejected(RejectReason::Undecodable)).sum();
        let gone = floods.iter().filter(|f| f.is_finished()).count();
        println!("flood: {flooders} flooders, {gone} cut off from every node; bans {banned}, rate-limited {limited}, junk rejected {junk}");
    }
    for f in floods {
        f.abort();
    }
    for h in &handles {
        h.shutdown().await.unwrap();
    }
    let name = match (metrics, flooders) {
        (_, 1..) => "darkswap-p2p, under flood",
        (true, 0) => "darkswap-p2p",
        (false, 0) => "darkswap-p2p, metrics off",
    };
    Report { name, cpu, latencies_us: lat, expected: published * (o.nodes - 1), published, elapsed }
}
