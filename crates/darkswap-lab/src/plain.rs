//! The reference node: released rust-libp2p as a careful user would assemble it for the same
//! job. TCP, Noise, Yamux; gossipsub with its default settings (signed messages, 1 s heartbeat,
//! mesh 6/5/12); Kademlia (server mode, bootstrapped from the same nodes) with identify feeding
//! it routable addresses. Same idle timeout as DarkSwap (600 s), no peer manager: rust-libp2p
//! has none.

use darkswap_lab::{
    plan::{address, metric_sum, node_key, now_ms, Plan, Record, PORT},
    transport::FreshPort,
};
use futures::StreamExt;
use libp2p::{
    allow_block_list,
    core::{muxing::StreamMuxerBox, upgrade::Version},
    gossipsub, identify, kad, noise,
    swarm::{NetworkBehaviour, SwarmEvent},
    yamux, StreamProtocol, SwarmBuilder, Transport,
};
use std::time::Duration;

/// The lab's topic for the reference.
const TOPIC: &str = "lab";

#[derive(NetworkBehaviour)]
struct Behaviour {
    /// Emulates a partition (see `Partition`).
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

/// Runs host `id` of `plan` until the simulation stops it.
pub async fn run(plan: Plan, id: u32) -> Result<(), Box<dyn std::error::Error>> {
    let me = plan.hosts.iter().find(|h| h.id == id).ok_or("host not in the plan")?.clone();
    let key = node_key(id);
    let mut registry = prometheus_client::registry::Registry::default();
    let mut swarm = SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                FreshPort::new()
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .map(|(p, c), _| (p, StreamMuxerBox::new(c))),
            )
        })?
        .with_bandwidth_metrics(&mut registry)
        .with_behaviour(|key| {
            let gossip_config = gossipsub::Config::default();
            let mut gossipsub =
                gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)?;
            gossipsub = gossipsub.with_metrics(&mut registry, gossipsub::MetricsConfig::default());
            let identify = identify::Behaviour::new(identify::Config::new("/lab/1".into(), key.public()));
            let peer = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                peer,
                kad::store::MemoryStore::new(peer),
                kad::Config::new(StreamProtocol::new("/lab/kad/1")),
            );
            kad.set_mode(Some(kad::Mode::Server));
            Ok(Behaviour { blocked: Default::default(), gossipsub, identify, kad })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let topic = gossipsub::IdentTopic::new(TOPIC);
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    // The host's own address, not 0.0.0.0: identify then reports only what others can dial.
    swarm.listen_on(format!("/ip4/{}/tcp/{PORT}", me.ip).parse()?)?;
    for addr in plan.bootstrap_addrs().into_iter().filter(|a| *a != address(&me)) {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        swarm.dial(addr)?;
    }
    Record::Start { t: now_ms(), id, peer: swarm.local_peer_id().to_string() }.emit();
    // A process that restarted publishes only what is still ahead of it.
    let started = now_ms();
    let mut mine: Vec<(u64, u64)> =
        plan.publish.iter().filter(|p| p.1 == id && p.0 >= started).map(|p| (p.0, p.2)).collect();
    mine.reverse();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut links_done = false;
    let mut bootstrapped = false;
    // The partition's two moments, if any: block the other side, then unblock it.
    let mut cuts: Vec<(u64, bool)> = plan.partition.map_or(Vec::new(), |c| vec![(c.to_ms, false), (c.from_ms, true)]);
    let cut_off = plan.partition.map(|c| c.cut_off(&plan.hosts, &me)).unwrap_or_default();
    loop {
        let next_publish = mine.last().map(|p| p.0.saturating_sub(now_ms())).unwrap_or(u64::MAX / 4);
        let next_cut = cuts.last().map(|c| c.0.saturating_sub(now_ms())).unwrap_or(u64::MAX / 4);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(next_cut)) => {
                if let Some((_, block)) = cuts.pop() {
                    for p in &cut_off {
                        if block {
                            swarm.behaviour_mut().blocked.block_peer(*p);
                        } else {
                            swarm.behaviour_mut().blocked.unblock_peer(*p);
                        }
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(next_publish)) => {
                if let Some((_, tag)) = mine.pop() {
                    let mut data = tag.to_be_bytes().to_vec();
                    data.resize(plan.payload.max(8), 0xab);
                    Record::Publish { t: now_ms(), tag }.emit();
                    if let Err(e) = swarm.behaviour_mut().gossipsub.publish(topic.clone(), data) {
                        eprintln!("publish {tag}: {e}");
                    }
                }
            }
            _ = tick.tick() => {
                let t = now_ms();
                let peers: Vec<_> = swarm.connected_peers().copied().collect();
                let mesh = swarm.behaviour().gossipsub.mesh_peers(&topic.hash()).count();
                Record::Peers { t, n: peers.len(), out: 0, mesh }.emit();
                if !links_done && t >= plan.links_at_ms {
                    links_done = true;
                    Record::Links { t, peers: peers.iter().map(|p| p.to_string()).collect() }.emit();
                }
                if (t / 1000).is_multiple_of(5) {
                    let mut text = String::new();
                    prometheus_client::encoding::text::encode(&mut text, &registry)?;
                    Record::Counters {
                        t,
                        sent: metric_sum(&text, "libp2p_bandwidth_bytes_total", &["direction=\"Outbound\""]),
                        received_all: metric_sum(&text, "topic_msg_recv_counts_unfiltered_total", &[]),
                        received_first: metric_sum(&text, "topic_msg_recv_counts_total", &[]),
                        sent_by_protocol: Default::default(),
                        received_by_protocol: Default::default(),
                    }
                    .emit();
                }
            }
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                    if let Some(tag) = message.data.get(..8) {
                        let tag = u64::from_be_bytes(tag.try_into().expect("8 bytes"));
                        Record::Receive { t: now_ms(), tag }.emit();
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                    for addr in info.listen_addrs {
                        swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
                SwarmEvent::ConnectionEstablished { .. } if !bootstrapped => {
                    bootstrapped = swarm.behaviour_mut().kad.bootstrap().is_ok();
                }
                _ => {}
            },
        }
    }
}
