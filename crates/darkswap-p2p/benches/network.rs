//! A direct connection through our `Network` next to plain rust-libp2p with the same transports
//! (TCP, Noise, Yamux), in one run: bulk throughput on one stream, connection setup, and memory
//! per idle connection.
//!
//! ```bash
//! cargo bench -p darkswap-p2p --bench network
//! cargo bench -p darkswap-p2p --bench network -- --megabytes 256 --rounds 5 --dials 50 --idle 500
//! scripts/setup-js-bench.sh && cargo bench -p darkswap-p2p --bench network -- --js
//!                           # js-libp2p's throughput, setup and memory too (benches/js/network.mjs)
//! ```
//!
//! - Throughput: one node opens an application stream ([`NetworkHandle::open_stream`]) to
//!   another and writes `--megabytes` in 64 KiB writes; the time runs until the reader has
//!   read it all. Plain: two rust-libp2p swarms with libp2p-stream and nothing else. Runs
//!   alternate, medians over `--rounds`.
//! - Setup: a fresh node dials a listening one, until the connection is established (TCP,
//!   Noise, Yamux); p50/p99 over `--dials`.
//! - Memory: a node in its own process accepts `--idle` connections that then stay idle; its
//!   resident memory grows by the figure times the count. Plain: a rust-libp2p node with the
//!   same behaviours a DarkSwap node runs (gossipsub, Kademlia, identify, ping).

use darkswap_p2p::{
    libp2p::{
        futures::{AsyncReadExt, AsyncWriteExt, StreamExt},
        gossipsub, identify, kad, noise, ping,
        swarm::{NetworkBehaviour, SwarmEvent},
        tcp, yamux, Multiaddr, StreamProtocol, Swarm, SwarmBuilder,
    },
    network::{Network, NetworkConfig, NetworkHandle},
};
use std::time::{Duration, Instant};

#[path = "js/run.rs"]
mod js;
mod support;
use support::{median, pct, report, rss_kib, serve_parent, spawn_child, stop_child};

const BULK: StreamProtocol = StreamProtocol::new("/darkswap-bench/bulk/1.0.0");
const CHUNK: usize = 64 * 1024;

struct Opts {
    megabytes: usize,
    rounds: usize,
    dials: usize,
    idle: usize,
    /// Whether js-libp2p's throughput, setup and memory run too.
    js: bool,
}

fn opts() -> Opts {
    let mut o = Opts { megabytes: 256, rounds: 7, dials: 50, idle: 500, js: false };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--js" {
            o.js = true;
            continue;
        }
        let mut val = || args.next().and_then(|v| v.parse().ok()).expect("a number");
        match a.as_str() {
            "--megabytes" => o.megabytes = val(),
            "--rounds" => o.rounds = val(),
            "--dials" => o.dials = val(),
            "--idle" => o.idle = val(),
            _ => {}
        }
    }
    o
}

async fn darkswap_node() -> (NetworkHandle, Multiaddr) {
    let mut net = Network::builder(NetworkConfig { topics: Vec::new(), ..NetworkConfig::default() })
        .discovery(false)
        .build()
        .await
        .unwrap();
    let addr = net.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap();
    let addr = format!("{addr}/p2p/{}", net.local_peer_id()).parse().unwrap();
    let handle = net.handle();
    tokio::spawn(async move { while net.next_event().await.is_some() {} });
    (handle, addr)
}

fn plain_stream_swarm() -> Swarm<libp2p_stream::Behaviour> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build()
}

/// Reads every stream of `BULK` to the end and reports each one's byte count.
/// Takes darkswap's receiver and libp2p-stream's alike.
fn sink<S>(mut incoming: S) -> tokio::sync::mpsc::UnboundedReceiver<usize>
where
    S: darkswap_p2p::libp2p::futures::Stream<Item = (darkswap_p2p::libp2p::PeerId, darkswap_p2p::libp2p::Stream)>
        + Unpin
        + Send
        + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((_, mut s)) = incoming.next().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (mut buf, mut n) = (vec![0u8; CHUNK], 0);
                while let Ok(k @ 1..) = s.read(&mut buf).await {
                    n += k;
                }
                let _ = tx.send(n);
            });
        }
    });
    rx
}

/// Writes `bytes` on `stream` and waits for the reader's count: MB/s.
async fn transfer(
    mut stream: darkswap_p2p::libp2p::Stream,
    bytes: usize,
    done: &mut tokio::sync::mpsc::UnboundedReceiver<usize>,
    start: Instant,
) -> f64 {
    let chunk = vec![0xa5u8; CHUNK];
    for _ in 0..bytes / CHUNK {
        stream.write_all(&chunk).await.unwrap();
    }
    stream.close().await.unwrap();
    let got = done.recv().await.unwrap();
    assert_eq!(got, bytes / CHUNK * CHUNK, "every byte read");
    got as f64 / start.elapsed().as_secs_f64() / 1e6
}

async fn throughput_darkswap(bytes: usize) -> f64 {
    let (a, _) = darkswap_node().await;
    let (b, b_addr) = darkswap_node().await;
    let mut done = sink(b.accept_streams(BULK).unwrap());
    a.dial(&b_addr.to_string()).await.unwrap();
    let start = Instant::now();
    let stream = a.open_stream(b.local_peer_id(), BULK).await.unwrap();
    let rate = transfer(stream, bytes, &mut done, start).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    rate
}

/// Drives `swarm` in a task after listening (if `listen`) and connecting to `dial` (if any);
/// returns its stream control, listen address and peer id.
async fn run_plain<B: NetworkBehaviour + Send + 'static>(
    mut swarm: Swarm<B>,
    listen: bool,
    dial: Option<Multiaddr>,
) -> (Swarm<B>, Option<Multiaddr>) {
    let mut addr = None;
    if listen {
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                addr = Some(address);
                break;
            }
        }
    }
    if let Some(target) = dial {
        swarm.dial(target).unwrap();
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => break,
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("plain dial: {error}"),
                _ => {}
            }
        }
    }
    (swarm, addr)
}

fn spawn_swarm<B: NetworkBehaviour + Send + 'static>(mut swarm: Swarm<B>)
where
    B::ToSwarm: Send,
{
    tokio::spawn(async move { while swarm.next().await.is_some() {} });
}

async fn throughput_plain(bytes: usize) -> f64 {
    let (b, b_addr) = run_plain(plain_stream_swarm(), true, None).await;
    let (b_id, mut b_control) = (*b.local_peer_id(), b.behaviour().new_control());
    spawn_swarm(b);
    let mut done = sink(b_control.accept(BULK).unwrap());
    let (a, _) = run_plain(plain_stream_swarm(), false, b_addr).await;
    let mut a_control = a.behaviour().new_control();
    spawn_swarm(a);
    let start = Instant::now();
    let stream = a_control.open_stream(b_id, BULK).await.unwrap();
    transfer(stream, bytes, &mut done, start).await
}

/// Returns the darkswap median (MB/s).
async fn throughput(o: &Opts) -> f64 {
    let bytes = o.megabytes * 1024 * 1024;
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds {
        ours.push(throughput_darkswap(bytes).await);
        plain.push(throughput_plain(bytes).await);
    }
    let spread = |v: &[f64]| {
        format!("{:.0}-{:.0}", v.iter().cloned().fold(f64::MAX, f64::min), v.iter().cloned().fold(0.0, f64::max))
    };
    let (so, sp) = (spread(&ours), spread(&plain));
    let (mo, mp) = (median(&mut ours), median(&mut plain));
    println!("bulk throughput, one stream, {} MiB, median of {} runs (range):", o.megabytes, o.rounds);
    println!("  darkswap Network   {mo:>8.0} MB/s  ({so})");
    println!("  plain rust-libp2p  {mp:>8.0} MB/s  ({sp})");
    println!("  ratio darkswap/plain {:.3}x   (goal >= 0.95x)", mo / mp);
    report(
        "Bulk throughput, direct TCP, one stream",
        &format!("{mo:.0} MB/s (plain {mp:.0})"),
        ">= 0.95x plain",
        &format!("{:.3}x", mo / mp),
        &format!("{} MiB, median of {}; ranges {so} / {sp}", o.megabytes, o.rounds),
    );
    mo
}

/// Returns darkswap's p50 and p99 (ms).
async fn setup(o: &Opts) -> (f64, f64) {
    let (target, addr) = darkswap_node().await;
    let (plain_target, plain_addr) = run_plain(plain_stream_swarm(), true, None).await;
    let plain_addr =
        plain_addr.unwrap().with(darkswap_p2p::libp2p::multiaddr::Protocol::P2p(*plain_target.local_peer_id()));
    spawn_swarm(plain_target);
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..o.dials {
        let (c, _) = darkswap_node().await;
        let t = Instant::now();
        c.dial(&addr.to_string()).await.unwrap();
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        c.shutdown().await.unwrap();
        let swarm = plain_stream_swarm();
        let t = Instant::now();
        let (swarm, _) = run_plain(swarm, false, Some(plain_addr.clone())).await;
        plain.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(swarm);
    }
    ours.sort_by(f64::total_cmp);
    plain.sort_by(f64::total_cmp);
    let (p50, p99, q50, q99) = (pct(&ours, 0.5), pct(&ours, 0.99), pct(&plain, 0.5), pct(&plain, 0.99));
    println!("connection setup, direct TCP + Noise + Yamux, {} dials, fresh dialer each:", o.dials);
    println!("  darkswap Network   p50 {p50:>6.2} ms  p99 {p99:>6.2} ms   (goal: p50 <= 3 ms)");
    println!("  plain rust-libp2p  p50 {q50:>6.2} ms  p99 {q99:>6.2} ms");
    report(
        "Connection setup, direct (p50)",
        &format!("{p50:.2} ms (plain {q50:.2} ms; p99 {p99:.2} / {q99:.2})"),
        "<= 3 ms",
        &format!("{:.2}x of the limit, {:.2}x plain", p50 / 3.0, p50 / q50),
        &format!("{} dials", o.dials),
    );
    target.shutdown().await.unwrap();
    (p50, p99)
}

/// js-libp2p's throughput, setup and memory on the same settings, next to darkswap's.
fn compare_js(o: &Opts, bulk: f64, (p50, p99): (f64, f64), memory: f64) {
    let args: Vec<String> =
        [("--megabytes", o.megabytes), ("--rounds", o.rounds), ("--dials", o.dials), ("--idle", o.idle)]
            .into_iter()
            .flat_map(|(k, v)| [k.to_string(), v.to_string()])
            .collect();
    let js: js::Direct = js::run("network.mjs", &args).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "  ratio darkswap/js-libp2p: bulk {:.2}x  setup p50 {:.2}x  memory per idle connection {:.2}x",
        bulk / js.throughput_mb_s,
        p50 / js.setup_p50_ms,
        memory / js.memory_kib
    );
    report(
        "Bulk throughput vs js-libp2p, direct TCP, one stream",
        &format!("{bulk:.0} MB/s (js-libp2p {:.0})", js.throughput_mb_s),
        ">= js-libp2p",
        &format!("{:.2}x js-libp2p", bulk / js.throughput_mb_s),
        &format!(
            "{} MiB, median of {}; js-libp2p range {:.0}-{:.0}",
            o.megabytes, o.rounds, js.throughput_min, js.throughput_max
        ),
    );
    report(
        "Connection setup vs js-libp2p, direct (p50)",
        &format!("{p50:.2} ms (js-libp2p {:.2} ms; p99 {p99:.2} / {:.2})", js.setup_p50_ms, js.setup_p99_ms),
        "<= js-libp2p",
        &format!("{:.2}x js-libp2p", p50 / js.setup_p50_ms),
        &format!("{} dials, fresh dialer each", o.dials),
    );
    report(
        "Memory per idle connection vs js-libp2p",
        &format!("{memory:.1} KiB (js-libp2p {:.1} KiB)", js.memory_kib),
        "<= js-libp2p",
        &format!("{:.2}x js-libp2p", memory / js.memory_kib),
        &format!(
            "{} connections; js-libp2p node with gossipsub, Kademlia, identify, ping; RSS after a full GC",
            o.idle
        ),
    );
}

/// The behaviours of a DarkSwap node, in plain rust-libp2p, for the memory comparison.
#[derive(NetworkBehaviour)]
struct PlainNode {
    gossipsub: gossipsub::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

fn plain_node_child() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|key| {
                let id = key.public().to_peer_id();
                let mut gossipsub = gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    gossipsub::Config::default(),
                )
                .unwrap();
                gossipsub.subscribe(&gossipsub::IdentTopic::new("darkswap/orderbook/v1")).unwrap();
                PlainNode {
                    gossipsub,
                    kad: kad::Behaviour::new(id, kad::store::MemoryStore::new(id)),
                    identify: identify::Behaviour::new(identify::Config::new("/bench/1".into(), key.public())),
                    ping: ping::Behaviour::default(),
                }
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        let (swarm, addr) = run_plain(swarm, true, None).await;
        let addr = addr.unwrap().with(darkswap_p2p::libp2p::multiaddr::Protocol::P2p(*swarm.local_peer_id()));
        spawn_swarm(swarm);
        serve_parent(&addr.to_string()).await;
    });
}

fn darkswap_node_child() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut net = Network::builder(NetworkConfig::default()).discovery(false).build().await.unwrap();
        let addr = net.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap();
        let line = format!("{addr}/p2p/{}", net.local_peer_id());
        tokio::spawn(async move { while net.next_event().await.is_some() {} });
        serve_parent(&line).await;
    });
}

/// Resident memory per idle connection of a node in its own process, in KiB.
async fn memory_of(flag: &str, idle: usize) -> f64 {
    let (child, line) = spawn_child(flag);
    let target: Multiaddr = line.parse().unwrap();
    let pid = child.id();
    // Warm up with a few connections, so the figure is per connection, not first-use costs.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(run_plain(plain_stream_swarm(), false, Some(target.clone())).await.0);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid, "VmRSS:");
    for _ in 0..idle {
        clients.push(run_plain(plain_stream_swarm(), false, Some(target.clone())).await.0);
    }
    let mut swarms = Vec::new();
    for c in clients {
        swarms.push(tokio::spawn(async move {
            let mut c = c;
            while c.next().await.is_some() {}
        }));
    }
    // Let the node finish what each connection starts (identify, gossip subscriptions).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kib(pid, "VmRSS:");
    stop_child(child);
    for s in swarms {
        s.abort();
    }
    (after.saturating_sub(before)) as f64 / idle as f64
}

/// Returns darkswap's figure (KiB per idle connection).
async fn memory(o: &Opts) -> f64 {
    let ours = memory_of("--darkswap-child", o.idle).await;
    let plain = memory_of("--plain-child", o.idle).await;
    println!("memory per idle connection ({} connections, node in its own process, RSS growth):", o.idle);
    println!("  darkswap Network   {ours:>6.1} KiB   (goal <= 64 KiB)");
    println!("  plain rust-libp2p  {plain:>6.1} KiB   (gossipsub, Kademlia, identify, ping)");
    report(
        "Memory per idle connection",
        &format!("{ours:.1} KiB (plain {plain:.1} KiB)"),
        "<= 64 KiB",
        &format!("{:.2}x of the limit, {:.2}x plain", ours / 64.0, ours / plain),
        &format!("{} connections, VmRSS growth of the node process", o.idle),
    );
    ours
}

fn main() {
    if std::env::args().any(|a| a == "--darkswap-child") {
        return darkswap_node_child();
    }
    if std::env::args().any(|a| a == "--plain-child") {
        return plain_node_child();
    }
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "direct connections on loopback, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let bulk = rt.block_on(throughput(&o));
    let dial = rt.block_on(setup(&o));
    let memory = rt.block_on(memory(&o));
    if o.js {
        compare_js(&o, bulk, dial, memory);
    }
    rt.shutdown_timeout(Duration::from_secs(5));
}
