//! A node that joins late receives every live order by sync, and no expired one; anti-entropy
//! repairs what gossip missed, both ways, and gossips young repairs on.

use crate::support::*;
use darkswap_p2p::network::NetworkBuilder;
use std::{collections::HashSet, time::Duration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_all_live_orders() {
    let ((a, _a_rx), (b, _b_rx), a_addr) = meshed_pair().await;

    let mut live = HashSet::new();
    for n in 0..20u128 {
        let maker = if n.is_multiple_of(2) { &a } else { &b };
        live.insert(maker.publish_order(draft(n, Duration::from_secs(3600))).await.unwrap().id);
    }
    let mut short = HashSet::new();
    for n in 100..103 {
        short.insert(a.publish_order(draft(n, Duration::from_secs(1))).await.unwrap().id);
    }
    // Both books converge on the 20 live orders once the short-lived ones expire.
    for h in [&a, &b] {
        until("books to hold exactly the live orders", || async {
            let ids: HashSet<_> = h.orders().iter().map(|o| o.id).collect();
            (ids == live).then_some(())
        })
        .await;
    }

    let (c, _) = node().await;
    let (c, mut c_rx) = drain(c);
    c.dial(&a_addr).await.unwrap();
    let mut got = HashSet::new();
    while got.len() < live.len() {
        let id = next_announced(&mut c_rx).await;
        assert!(!short.contains(&id), "expired order {id} was synced");
        assert!(got.insert(id), "order {id} delivered twice");
    }
    assert_eq!(got, live);
    let ids: HashSet<_> = c.orders().iter().map(|o| o.id).collect();
    assert_eq!(ids, live);
    assert!(c.stats().orders_synced >= 20);
    for h in [&a, &b, &c] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_pages_through_a_large_book() {
    let (a, a_addr) = node().await;
    let (a, _a_rx) = drain(a);
    // More than two sync pages (256 orders per page).
    for n in 0..600 {
        a.publish_order(draft(n, Duration::from_secs(3600))).await.unwrap();
    }
    let (c, _) = node().await;
    let (c, _c_rx) = drain(c);
    c.dial(&a_addr).await.unwrap();
    until("600 orders synced", || async { (c.orders().len() == 600).then_some(()) }).await;
    a.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_beyond_the_makers_quota_is_a_typed_error() {
    use darkswap_p2p::{
        error::PublishError,
        network::{Network, NetworkConfig},
        order_book::{BookError, OrderBookLimits},
        Error,
    };
    let net = Network::builder(NetworkConfig::default())
        .order_book_limits(OrderBookLimits { max_orders: 100, max_orders_per_maker: 2 })
        .build()
        .await
        .unwrap();
    for n in 0..2 {
        net.publish_order(draft(n, Duration::from_secs(60))).await.unwrap();
    }
    let err = net.publish_order(draft(2, Duration::from_secs(60))).await.unwrap_err();
    assert!(matches!(err, Error::Publish(PublishError::Book(BookError::MakerQuota))), "{err}");
    assert_eq!(net.orders().len(), 2);
    net.shutdown().await.unwrap();
}

/// Anti-entropy is a pull, so an order whose gossip was dropped could reach others only when
/// they happened to ask its holder. A node asked while its digest differs from the asker's asks
/// back, and gets what only the asker holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_asks_back_for_what_only_the_asker_holds() {
    use darkswap_p2p::network::GossipLimits;
    // A takes one order a second from a maker and runs no round of its own within the test, so
    // it gets B's second order only when B's round (every second) makes A ask back.
    let limits = GossipLimits { per_maker_rate: 1, per_maker_burst: 1, ..GossipLimits::default() };
    let (a, a_addr) = node_with(|b| b.gossip_limits(limits).anti_entropy_interval(Duration::from_secs(3600))).await;
    let (a, mut a_rx) = drain(a);
    let (b, _) = node_with(|b| b.anti_entropy_interval(Duration::from_secs(1))).await;
    let (b, _b_rx) = drain(b);
    b.dial(&a_addr).await.unwrap();
    until_meshed(&a, &[b.local_peer_id()]).await;

    let mut posted = HashSet::new();
    for n in 0..2 {
        posted.insert(b.publish_order(draft(n, Duration::from_secs(3600))).await.unwrap().id);
    }
    let mut got = HashSet::new();
    while got.len() < posted.len() {
        let id = next_announced(&mut a_rx).await;
        assert!(got.insert(id), "order {id} delivered twice");
    }
    assert_eq!(got, posted);
    assert!(a.stats().orders_synced >= 1, "one order came by asking back, not by gossip");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// An order that an anti-entropy round brings is gossiped on while it is young: gossip that
/// missed one node likely missed others too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_repaired_by_anti_entropy_are_gossiped_on() {
    // E - A, and C - B - D. A publishes an order, which reaches E; then B connects to A. B has
    // synced from its first two peers already, so only its anti-entropy rounds (every second)
    // bring the order. C and D run no anti-entropy at all (nor ask back), and no discovery, so
    // gossip from B is their only way to get it.
    let quiet = |b: NetworkBuilder| b.discovery(false).anti_entropy_interval(Duration::ZERO);
    let (a, a_addr) = node_with(|b| b.discovery(false).anti_entropy_interval(Duration::from_secs(3600))).await;
    let (a, _a_rx) = drain(a);
    let (e, _) = node_with(quiet).await;
    let (e, mut e_rx) = drain(e);
    let (b, b_addr) = node_with(|b| b.discovery(false).anti_entropy_interval(Duration::from_secs(1))).await;
    let (b, _b_rx) = drain(b);
    let (c, _) = node_with(quiet).await;
    let (c, mut c_rx) = drain(c);
    let (d, _) = node_with(quiet).await;
    let (d, mut d_rx) = drain(d);
    e.dial(&a_addr).await.unwrap();
    c.dial(&b_addr).await.unwrap();
    d.dial(&b_addr).await.unwrap();
    until_meshed(&a, &[e.local_peer_id()]).await;
    until_meshed(&b, &[c.local_peer_id(), d.local_peer_id()]).await;

    let order = a.publish_order(draft(1, Duration::from_secs(3600))).await.unwrap().id;
    assert_eq!(next_announced(&mut e_rx).await, order);
    // Gossipsub offers recent messages (IHAVE) to new peers for a few heartbeats (200 ms each
    // here); past that window, B can learn of the order only by anti-entropy.
    tokio::time::sleep(Duration::from_secs(2)).await;
    b.dial(&a_addr).await.unwrap();

    for rx in [&mut c_rx, &mut d_rx] {
        assert_eq!(next_announced(rx).await, order);
    }
    let stats = b.stats();
    assert!(stats.orders_synced >= 1, "B repaired the order by anti-entropy");
    assert!(stats.anti_entropy_rounds >= 1 && stats.orders_regossiped >= 1, "{stats:?}");
    for h in [&c, &d] {
        assert_eq!(h.stats().orders_synced, 0, "gossip brought it");
    }
    for h in [&a, &b, &c, &d, &e] {
        h.shutdown().await.unwrap();
    }
}

/// Two nodes whose books share 300 orders and differ by a dozen reconcile when they meet:
/// each ends with all 312, and the bytes that cross are those of the difference, not the book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_moves_only_the_difference() {
    let (x, _) = node().await;
    let (x, _x_rx) = drain(x);
    for n in 0..300 {
        x.publish_order(draft(n, Duration::from_secs(3600))).await.unwrap();
    }
    let snapshot = x.export_orders();
    assert_eq!(snapshot.len(), 300);
    let options = |b: NetworkBuilder| b.metrics_enabled(true).anti_entropy_interval(Duration::from_secs(3600));
    let (a, a_addr) = node_with(options).await;
    let a_metrics = a.metrics();
    let (a, _a_rx) = drain(a);
    let (b, _) = node_with(options).await;
    let b_metrics = b.metrics();
    let (b, _b_rx) = drain(b);
    for (h, own) in [(&a, 1000..1005), (&b, 2000..2007)] {
        assert_eq!(h.import_orders(snapshot.clone()).await.unwrap(), 300);
        assert_eq!(h.import_orders(snapshot[..10].to_vec()).await.unwrap(), 0, "known already");
        for n in own {
            h.publish_order(draft(n, Duration::from_secs(3600))).await.unwrap();
        }
    }
    let mut garbage = snapshot[0].clone();
    garbage[20] ^= 1;
    assert_eq!(a.import_orders(vec![garbage, vec![1, 2, 3]]).await.unwrap(), 0, "checked like a sync page");

    b.dial(&a_addr).await.unwrap();
    for h in [&a, &b] {
        until("both books to hold all 312 orders", || async { (h.orders().len() == 312).then_some(()) }).await;
    }
    let bytes = |m: &darkswap_p2p::metrics::P2PMetrics, protocol: &str| {
        let family = m.get_metric("darkswap_protocol_bytes").expect("protocol bytes");
        family
            .samples
            .iter()
            .filter(|s| s.label("protocol").is_some_and(|p| p.contains(protocol)))
            .map(|s| s.value)
            .sum::<f64>()
    };
    let order_size = snapshot.iter().map(Vec::len).sum::<usize>() as f64 / 300.0;
    for m in [&a_metrics, &b_metrics] {
        let reconcile = bytes(m, "/darkswap/reconcile/");
        eprintln!(
            "DBG reconcile {reconcile} sync {} gossip {} order {order_size}",
            bytes(m, "/darkswap/sync/"),
            bytes(m, "/meshsub")
        );
        assert!(reconcile > 12.0 * order_size, "the difference crossed by reconciliation: {reconcile}");
        // Negentropy splits the set 16 ways per round and lists ids in small ranges: with 12 of
        // 312 orders differing, most ranges of ~20 differ, so their ids cross (32 bytes each).
        // At 1% of 10,000 or more, the ids of orders created while a node was away share ranges
        // of recent creation times, and the lab measures ~40 bytes per differing order.
        assert!(reconcile < 0.25 * 300.0 * order_size, "{reconcile} bytes: a page of the book (order {order_size})");
        assert!(bytes(m, "/darkswap/sync/") < 4.0 * order_size, "no page of the whole book");
    }
    for h in [&a, &b, &x] {
        h.shutdown().await.unwrap();
    }
}
