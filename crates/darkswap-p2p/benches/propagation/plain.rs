//! The plain rust-libp2p side of the propagation bench: bare gossipsub nodes on the same
//! topology, rate, mesh and runtime layout as darkswap's.
//!
//! Three flavours. `plain` is rust-libp2p as an application gets it by default: gossipsub with
//! strict signing and default message ids. `bare` is the floor of the stack DarkSwap runs on:
//! gossipsub over TCP + Noise + Yamux with no signatures, no validation and no application
//! around it (content ids, and DarkSwap's gossip limits so that IHAVE frames are not refused),
//! which shows what the transport and gossipsub alone cost at a given load on this machine.
//! `signed` adds the one cost a signed order book cannot avoid: each node checks each order's
//! signature once (see `signed.rs`).

use super::{cpu_time, drain, latencies, publish_loop, Opts, Received, Report, Sent};
use darkswap_p2p::{
    libp2p::{
        futures::StreamExt,
        gossipsub::{self, IdentTopic},
        identity::Keypair,
        noise,
        swarm::SwarmEvent,
        tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
    },
    protocol::{limits, ORDERBOOK_TOPIC},
};
use sha2::{Digest, Sha256};
use std::{
    sync::{atomic::AtomicUsize, Arc},
    time::{Duration, Instant},
};
use tokio::sync::mpsc;

/// Which rust-libp2p node the run uses (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flavour {
    /// Strict signing, default message ids.
    Plain,
    /// No signing or validation, content ids.
    Bare,
    /// `bare` plus signed orders, each signature checked once per node before gossipsub
    /// forwards the order (manual validation).
    Signed,
}

/// Plain rust-libp2p: gossipsub on TCP + Noise + Yamux, as `flavour` says.
pub async fn run_plain(o: &Opts, flavour: Flavour) -> Report {
    let topic = IdentTopic::new(ORDERBOOK_TOPIC);
    let received: Received = Arc::default();
    let mut cmd_txs = Vec::new();
    let mut addrs: Vec<Multiaddr> = Vec::new();
    let mut mesh_sizes = Vec::new();
    for i in 0..o.nodes {
        let (recv, t, mesh_cfg) = (received.clone(), topic.clone(), o.mesh);
        let (addr, tx, mesh) = match flavour {
            Flavour::Signed => o.layout.spawn(i, super::signed::signed_node(mesh_cfg, t, recv)).await.unwrap(),
            _ => o.layout.spawn(i, plain_node(mesh_cfg, flavour, t, recv)).await.unwrap(),
        };
        addrs.push(addr);
        cmd_txs.push(tx);
        mesh_sizes.push(mesh);
    }
    for (i, j) in super::edges(o.nodes) {
        cmd_txs[i].send(PlainCmd::Dial(addrs[j].clone())).unwrap();
    }
    while mesh_sizes.iter().any(|m| m.load(std::sync::atomic::Ordering::Relaxed) < o.mesh.1.min(3)) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent: Sent = Arc::default();
    let cpu_start = cpu_time();
    let (published, elapsed) = publish_loop(o, |node, k| {
        let tag = k.to_be_bytes().to_vec();
        let mut data = tag.clone();
        data.resize(o.size, 0xab);
        sent.lock().unwrap().insert(tag, Instant::now());
        let _ = cmd_txs[node].send(PlainCmd::Publish(data));
        async {}
    })
    .await;
    drain(&received, published * (o.nodes - 1), o.settle).await;
    let cpu = cpu_time().saturating_sub(cpu_start);
    if o.timeline {
        println!("{}", super::harness::timeline(&sent, &received));
    }
    let lat = latencies(&sent, &received);
    drop(cmd_txs);
    Report {
        name: match flavour {
            Flavour::Plain => "plain rust-libp2p",
            Flavour::Bare => "bare gossipsub",
            Flavour::Signed => "signed floor",
        },
        cpu,
        latencies_us: lat,
        expected: published * (o.nodes - 1),
        published,
        elapsed,
    }
}

/// What the bench asks of a node.
pub enum PlainCmd {
    /// Dial this address.
    Dial(Multiaddr),
    /// Publish these bytes (`signed` signs them first).
    Publish(Vec<u8>),
}

/// Gossipsub's settings for `bare` and `signed`: the run's mesh, content ids, and DarkSwap's
/// gossip limits (IDONTWANT only for large messages, IHAVE frames a receiver accepts) and first
/// heartbeat (at a random point of the first interval, not after rust-libp2p's 5 s).
pub fn gossip_config(mesh_cfg: (usize, usize, usize)) -> gossipsub::ConfigBuilder {
    let mut builder = base_config(mesh_cfg);
    builder
        .heartbeat_initial_delay(HEARTBEAT.mul_f64(rand::random::<f64>()))
        .validation_mode(gossipsub::ValidationMode::None)
        .message_id_fn(|m| gossipsub::MessageId::from(&Sha256::digest(&m.data)[..20]))
        .idontwant_message_size_threshold(limits::GOSSIP_TRANSMIT_MAX)
        .max_control_messages_sent(limits::GOSSIP_IHAVE_MAX)
        .max_control_message_size(limits::GOSSIP_CONTROL_MAX);
    builder
}

/// DarkSwap's gossip heartbeat, for every stack.
const HEARTBEAT: Duration = Duration::from_millis(700);

fn base_config(mesh_cfg: (usize, usize, usize)) -> gossipsub::ConfigBuilder {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .heartbeat_interval(HEARTBEAT)
        .max_transmit_size(64 * 1024)
        .mesh_n(mesh_cfg.0)
        .mesh_n_low(mesh_cfg.1)
        .mesh_n_high(mesh_cfg.2)
        .mesh_outbound_min(2.min(mesh_cfg.1).min(mesh_cfg.0 / 2));
    builder
}

/// A gossipsub node on TCP + Noise + Yamux, subscribed to `t` and listening on loopback, with
/// the address it listens on.
pub async fn gossip_swarm(
    key: Keypair,
    authenticity: gossipsub::MessageAuthenticity,
    cfg: gossipsub::Config,
    t: &IdentTopic,
) -> (Swarm<gossipsub::Behaviour>, Multiaddr) {
    let me = PeerId::from(key.public());
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(authenticity, cfg).unwrap())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    swarm.behaviour_mut().subscribe(t).unwrap();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return (swarm, address.with(darkswap_p2p::libp2p::multiaddr::Protocol::P2p(me)));
        }
    }
}

/// Notes the arrival of the payload whose first 8 bytes are its publish tag.
pub fn record(recv: &Received, payload: &[u8]) {
    let now = Instant::now();
    recv.lock().unwrap().push((payload[..8].to_vec(), now));
}

/// One plain node, started on the runtime the caller spawned this on: its address, its command
/// channel and its current mesh size.
async fn plain_node(
    mesh_cfg: (usize, usize, usize),
    flavour: Flavour,
    t: IdentTopic,
    recv: Received,
) -> (Multiaddr, mpsc::UnboundedSender<PlainCmd>, Arc<AtomicUsize>) {
    let key = Keypair::generate_ed25519();
    let (cfg, authenticity) = match flavour {
        Flavour::Plain => (base_config(mesh_cfg), gossipsub::MessageAuthenticity::Signed(key.clone())),
        _ => (gossip_config(mesh_cfg), gossipsub::MessageAuthenticity::Anonymous),
    };
    let (mut swarm, addr) = gossip_swarm(key, authenticity, cfg.build().unwrap(), &t).await;
    let (tx, mut rx) = mpsc::unbounded_channel::<PlainCmd>();
    let mesh = Arc::new(AtomicUsize::new(0));
    let mesh_out = mesh.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(PlainCmd::Dial(a)) => { let _ = swarm.dial(a); }
                    Some(PlainCmd::Publish(data)) => { let _ = swarm.behaviour_mut().publish(t.clone(), data); }
                    None => break,
                },
                ev = swarm.select_next_some() => {
                    if let SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) = ev {
                        record(&recv, &message.data);
                    }
                    let n = swarm.behaviour().mesh_peers(&t.hash()).count();
                    mesh.store(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    (addr, tx, mesh_out)
}
