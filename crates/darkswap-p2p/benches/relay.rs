//! Circuit relay figures, measured side by side in one run:
//!
//! 1. connection setup: a fresh node dialing a peer directly vs through a relay (p50/p99, ratio);
//! 2. bulk transfer: a fresh node syncing a large order book directly vs through a relay (MB/s);
//! 3. capacity: one relay (a separate process) holding N reservations and M live circuits, and its
//!    resident memory.
//!
//! ```bash
//! cargo bench -p darkswap-p2p --bench relay
//! cargo bench -p darkswap-p2p --bench relay -- --iters 50 --orders 4000 --reservations 1000 --circuits 200
//! ```

use darkswap_p2p::{
    libp2p::{
        futures::StreamExt, multiaddr::Protocol, noise, relay, swarm::SwarmEvent, tcp, yamux, Multiaddr, PeerId,
        SwarmBuilder,
    },
    network::{Network, NetworkConfig, NetworkEvent, NetworkHandle, RelayServerConfig},
    order_book::OrderBookLimits,
};
use darkswap_support::types::{AssetId, OrderDraft, Side};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

mod support;
use support::{pct, report, rss_kib, serve_parent, spawn_child, stop_child};

struct Opts {
    iters: usize,
    orders: usize,
    reservations: usize,
    circuits: usize,
}

fn opts() -> Opts {
    let mut o = Opts { iters: 30, orders: 4000, reservations: 1000, circuits: 200 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().and_then(|v| v.parse().ok()).expect("a number");
        match a.as_str() {
            "--iters" => o.iters = val(),
            "--orders" => o.orders = val(),
            "--reservations" => o.reservations = val(),
            "--circuits" => o.circuits = val(),
            _ => {}
        }
    }
    o
}

fn limits() -> OrderBookLimits {
    OrderBookLimits { max_orders: 100_000, max_orders_per_maker: 100_000 }
}

async fn node(config: NetworkConfig) -> NetworkHandle {
    let mut net =
        Network::builder(config).discovery(false).order_book_limits(limits()).build().await.expect("network starts");
    let h = net.handle();
    tokio::spawn(async move { while net.next_event().await.is_some() {} });
    h
}

async fn relay_node() -> (NetworkHandle, String) {
    let h = Network::builder(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
        .relay_server(RelayServerConfig::default())
        .discovery(false)
        .build()
        .await
        .unwrap();
    let addr = format!("{}/p2p/{}", h.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap(), h.local_peer_id());
    let handle = h.handle();
    let mut h = h;
    tokio::spawn(async move { while h.next_event().await.is_some() {} });
    (handle, addr)
}

async fn setup_and_throughput(o: &Opts) {
    let (_relay, relay_addr) = relay_node().await;
    let mut server_net =
        Network::builder(NetworkConfig { relay_peers: vec![relay_addr.parse().unwrap()], ..NetworkConfig::default() })
            .discovery(false)
            .order_book_limits(limits())
            .build()
            .await
            .unwrap();
    let direct =
        format!("{}/p2p/{}", server_net.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap(), server_net.local_peer_id());
    loop {
        if let Some(NetworkEvent::RelayReserved { .. }) = server_net.next_event().await {
            break;
        }
    }
    let server = server_net.handle();
    tokio::spawn(async move { while server_net.next_event().await.is_some() {} });
    let relayed = format!("{relay_addr}/p2p-circuit/p2p/{}", server.local_peer_id());

    let (mut d, mut r) = (Vec::new(), Vec::new());
    for _ in 0..o.iters {
        for (addr, out) in [(&direct, &mut d), (&relayed, &mut r)] {
            let c = node(NetworkConfig::default()).await;
            let t = Instant::now();
            c.dial(addr).await.expect("dial");
            out.push(t.elapsed().as_secs_f64() * 1000.0);
            c.shutdown().await.unwrap();
        }
    }
    d.sort_by(f64::total_cmp);
    r.sort_by(f64::total_cmp);
    println!("connection setup ({} dials each, fresh node per dial, TCP + Noise + Yamux):", o.iters);
    println!("  direct    p50 {:>7.2} ms  p99 {:>7.2} ms", pct(&d, 0.5), pct(&d, 0.99));
    println!("  relayed   p50 {:>7.2} ms  p99 {:>7.2} ms   (goal: p50 <= 10 ms)", pct(&r, 0.5), pct(&r, 0.99));
    println!("  ratio relayed/direct: p50 {:.2}x", pct(&r, 0.5) / pct(&d, 0.5));
    report(
        "Relayed connection setup (p50)",
        &format!("{:.2} ms (direct {:.2} ms)", pct(&r, 0.5), pct(&d, 0.5)),
        "<= 10 ms",
        &format!("{:.2}x of the limit", pct(&r, 0.5) / 10.0),
        &format!("{} dials each", o.iters),
    );

    let terms = vec![0x5a; 2000];
    for k in 0..o.orders {
        let draft = OrderDraft {
            base: AssetId::Btc,
            quote: "rune:840000:1".parse().unwrap(),
            side: Side::Sell,
            amount: 1 + k as u128,
            price: 2_500,
            ttl: Duration::from_secs(3600),
            terms: terms.clone(),
        };
        server.publish_order(draft).await.unwrap();
    }
    let bytes = o.orders as f64 * 2230.0;
    println!(
        "bulk transfer: sync of {} orders (~{:.1} MB of signed envelopes) to a fresh node:",
        o.orders,
        bytes / 1e6
    );
    let mut rates = Vec::new();
    for (name, addr) in [("direct", &direct), ("relayed", &relayed)] {
        let c = node(NetworkConfig::default()).await;
        let t = Instant::now();
        c.dial(addr).await.unwrap();
        while c.orders().len() < o.orders {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        let rate = bytes / secs / 1e6;
        println!("  {name:<8}  {secs:>6.2} s  {rate:>7.1} MB/s");
        rates.push(rate);
        c.shutdown().await.unwrap();
    }
    println!("  ratio relayed/direct: {:.2}x   (goal >= 0.5x)", rates[1] / rates[0]);
    report(
        "Relayed bulk transfer (order-book sync)",
        &format!("{:.1} MB/s (direct {:.1})", rates[1], rates[0]),
        ">= 0.5x direct",
        &format!("{:.2}x", rates[1] / rates[0]),
        &format!("{} orders", o.orders),
    );
}

/// A minimal relay client: only what a reservation and circuits need, so a thousand fit in the
/// benchmark process.
async fn light_client(
    relay: Multiaddr,
) -> (PeerId, mpsc::UnboundedSender<Multiaddr>, mpsc::UnboundedReceiver<&'static str>) {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_, client| client)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let id = *swarm.local_peer_id();
    swarm.listen_on(relay.with(Protocol::P2pCircuit)).unwrap();
    let (dial_tx, mut dial_rx) = mpsc::unbounded_channel::<Multiaddr>();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                addr = dial_rx.recv() => match addr {
                    Some(a) => { let _ = swarm.dial(a); }
                    None => break,
                },
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::Behaviour(relay::client::Event::ReservationReqAccepted { renewal: false, .. }) => {
                        let _ = ev_tx.send("reserved");
                    }
                    SwarmEvent::ConnectionEstablished { endpoint, .. } if endpoint.is_relayed() && endpoint.is_dialer() => {
                        let _ = ev_tx.send("circuit");
                    }
                    _ => {}
                },
            }
        }
    });
    (id, dial_tx, ev_rx)
}

async fn capacity(o: &Opts) {
    // The relay runs in its own process (this binary, re-executed) so its memory is its own.
    let (child, line) = spawn_child("--relay-child");
    let relay: Multiaddr = line.parse().unwrap();
    let pid = child.id();
    let idle = rss_kib(pid, "VmRSS:");
    let t = Instant::now();
    let mut clients = Vec::new();
    for batch in 0..o.reservations.div_ceil(100) {
        let n = 100.min(o.reservations - batch * 100);
        let mut started = Vec::new();
        for _ in 0..n {
            started.push(light_client(relay.clone()).await);
        }
        for (_, _, rx) in started.iter_mut() {
            let ev = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("reservation");
            assert_eq!(ev, Some("reserved"));
        }
        clients.extend(started);
    }
    let reserve_secs = t.elapsed().as_secs_f64();
    let with_reservations = rss_kib(pid, "VmRSS:");
    let t = Instant::now();
    let circuits = o.circuits.min(clients.len() / 2);
    for k in 0..circuits {
        let target = clients[2 * k + 1].0;
        let addr = relay.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(target));
        clients[2 * k].1.send(addr).unwrap();
    }
    for k in 0..circuits {
        let rx = &mut clients[2 * k].2;
        let ev = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("circuit");
        assert_eq!(ev, Some("circuit"));
    }
    let circuit_secs = t.elapsed().as_secs_f64();
    let loaded = rss_kib(pid, "VmRSS:");
    let peak = rss_kib(pid, "VmHWM:");
    println!("relay capacity (relay in its own process):");
    println!(
        "  {} reservations in {reserve_secs:.1} s, then {circuits} live circuits in {circuit_secs:.1} s",
        clients.len()
    );
    println!(
        "  relay RSS: idle {:.1} MiB, with reservations {:.1} MiB, with circuits {:.1} MiB, peak {:.1} MiB   (goal <= 256 MiB)",
        idle as f64 / 1024.0,
        with_reservations as f64 / 1024.0,
        loaded as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    report(
        "Relay memory with reservations and circuits",
        &format!("{:.1} MiB (peak {:.1})", loaded as f64 / 1024.0, peak as f64 / 1024.0),
        "<= 256 MiB",
        &format!("{:.2}x of the limit", peak as f64 / 1024.0 / 256.0),
        &format!("{} reservations, {circuits} circuits", clients.len()),
    );
    stop_child(child);
}

fn relay_child() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (_h, addr) = relay_node().await;
        serve_parent(&addr).await;
    });
}

fn main() {
    if std::env::args().any(|a| a == "--relay-child") {
        return relay_child();
    }
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(setup_and_throughput(&o));
    rt.block_on(capacity(&o));
    rt.shutdown_timeout(Duration::from_secs(5));
}
