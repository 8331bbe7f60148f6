//! `darkswap-gossipsub-interop --params params.json`: DarkSwap's gossip layer under the contract
//! of the libp2p gossipsub benchmark (libp2p/test-plans `gossipsub-interop`, its
//! `test-specs/implementation.md`), so that it can run in that benchmark beside the go, rust,
//! nim and jvm implementations.
//!
//! The contract: the node id comes from the host name (`node<id>`), the ed25519 key from the
//! little-endian id, the node listens on TCP port 9000 (Noise, Yamux), runs the script of
//! `params.json`, and writes one JSON line on stdout per event: `PeerID` at start, and
//! `Received Message` for every copy of a message received, duplicates included. A message's
//! id is its first 8 bytes read as a big-endian integer.
//!
//! What is DarkSwap's here: the gossipsub settings, exactly as a node runs them
//! (`darkswap_p2p::network::gossipsub_config_builder`: anonymous messages, the first heartbeat
//! at a random point of the interval, the control-message caps, the IDONTWANT threshold, a
//! 700 ms heartbeat and a mesh of 6/5/12). A scenario's `initGossipSub` parameters override
//! them where given; the message id is the benchmark's; the size cap grows to fit the
//! script's largest message. Partial messages (a gossipsub extension rust-libp2p's release
//! does not carry) are refused at start with an error.

use clap::Parser;
use darkswap_lab::{plan::node_key, transport::FreshPort};
use darkswap_p2p::network::gossipsub_config_builder;
use futures::{stream::FuturesUnordered, StreamExt};
use libp2p::{
    core::{muxing::StreamMuxerBox, upgrade::Version},
    gossipsub::{self, IdentTopic, MessageAcceptance, MessageId},
    identify, noise,
    swarm::{NetworkBehaviour, SwarmEvent},
    yamux, Multiaddr, PeerId, Swarm, SwarmBuilder, Transport,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::{
    collections::HashMap,
    path::PathBuf,
    pin::Pin,
    time::{Duration, Instant},
};
use tracing_subscriber::{filter::filter_fn, layer::SubscriberExt, Layer};

/// The port every node listens on (the benchmark dials it).
const PORT: u16 = 9000;
/// DarkSwap's defaults (see `NetworkConfig`).
const HEARTBEAT: Duration = Duration::from_millis(700);
const MESH: (usize, usize, usize) = (6, 5, 12);

#[derive(Parser)]
#[command(version, about = "DarkSwap's gossip layer under the libp2p gossipsub benchmark's contract")]
struct Args {
    /// The experiment's parameters (the benchmark's `ExperimentParams` as JSON).
    #[arg(long)]
    params: PathBuf,
}

#[derive(Deserialize)]
struct Params {
    script: Vec<Instruction>,
}

/// One step of a script (`script_instruction.py`).
#[derive(Deserialize, Clone)]
#[serde(tag = "type")]
enum Instruction {
    #[serde(rename = "connect")]
    Connect {
        #[serde(rename = "connectTo")]
        to: Vec<u32>,
    },
    #[serde(rename = "ifNodeIDEquals")]
    IfNodeIdEquals {
        #[serde(rename = "nodeID")]
        node: u32,
        instruction: Box<Instruction>,
    },
    #[serde(rename = "waitUntil")]
    WaitUntil {
        #[serde(rename = "elapsedSeconds")]
        seconds: u64,
    },
    #[serde(rename = "publish")]
    Publish {
        #[serde(rename = "messageID")]
        id: u64,
        #[serde(rename = "messageSizeBytes")]
        size: usize,
        #[serde(rename = "topicID")]
        topic: String,
    },
    #[serde(rename = "subscribeToTopic")]
    Subscribe {
        #[serde(rename = "topicID")]
        topic: String,
        #[serde(default)]
        partial: bool,
    },
    #[serde(rename = "setTopicValidationDelay")]
    ValidationDelay {
        #[serde(rename = "topicID")]
        topic: String,
        #[serde(rename = "delaySeconds")]
        seconds: f64,
    },
    #[serde(rename = "initGossipSub")]
    InitGossipSub {
        #[serde(rename = "gossipSubParams")]
        params: Box<GossipParams>,
    },
    #[serde(rename = "addPartialMessage")]
    AddPartialMessage {},
    #[serde(rename = "publishPartial")]
    PublishPartial {},
}

/// The parameters of go-libp2p-pubsub's `GossipSubParams` that rust-libp2p has a setting for;
/// durations in nanoseconds. Absent ones keep DarkSwap's setting.
#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase")]
struct GossipParams {
    #[serde(rename = "D")]
    d: Option<usize>,
    #[serde(rename = "Dlo")]
    d_lo: Option<usize>,
    #[serde(rename = "Dhi")]
    d_hi: Option<usize>,
    #[serde(rename = "Dscore")]
    d_score: Option<usize>,
    #[serde(rename = "Dout")]
    d_out: Option<usize>,
    #[serde(rename = "Dlazy")]
    d_lazy: Option<usize>,
    history_length: Option<usize>,
    history_gossip: Option<usize>,
    gossip_factor: Option<f64>,
    gossip_retransmission: Option<u32>,
    heartbeat_initial_delay: Option<f64>,
    heartbeat_interval: Option<f64>,
    #[serde(rename = "FanoutTTL")]
    fanout_ttl: Option<f64>,
    prune_peers: Option<usize>,
    prune_backoff: Option<f64>,
    unsubscribe_backoff: Option<f64>,
    opportunistic_graft_ticks: Option<u64>,
    opportunistic_graft_peers: Option<usize>,
    graft_flood_threshold: Option<f64>,
    #[serde(rename = "MaxIHaveLength")]
    max_ihave_length: Option<usize>,
    #[serde(rename = "MaxIHaveMessages")]
    max_ihave_messages: Option<usize>,
    #[serde(rename = "IWantFollowupTime")]
    iwant_followup_time: Option<f64>,
    #[serde(rename = "IDontWantMessageThreshold")]
    idontwant_threshold: Option<usize>,
}

fn nanos(n: f64) -> Duration {
    Duration::from_nanos(n.max(0.0) as u64)
}

impl GossipParams {
    /// DarkSwap's gossipsub settings with these parameters over them.
    fn config(&self, max_message: usize) -> Result<gossipsub::Config, gossipsub::ConfigBuilderError> {
        let heartbeat = self.heartbeat_interval.map_or(HEARTBEAT, nanos);
        let mut b = gossipsub_config_builder(heartbeat, MESH);
        macro_rules! set {
            ($field:ident => $method:ident $(, $conv:expr)?) => {
                if let Some(v) = self.$field.clone() {
                    b.$method($($conv)?(v));
                }
            };
        }
        set!(d => mesh_n);
        set!(d_lo => mesh_n_low);
        set!(d_hi => mesh_n_high);
        set!(d_score => retain_scores);
        set!(d_out => mesh_outbound_min);
        set!(d_lazy => gossip_lazy);
        set!(history_length => history_length);
        set!(history_gossip => history_gossip);
        set!(gossip_factor => gossip_factor);
        set!(gossip_retransmission => gossip_retransimission);
        set!(heartbeat_initial_delay => heartbeat_initial_delay, nanos);
        set!(fanout_ttl => fanout_ttl, nanos);
        set!(prune_peers => prune_peers);
        set!(prune_backoff => prune_backoff, nanos);
        set!(unsubscribe_backoff => unsubscribe_backoff, nanos);
        set!(opportunistic_graft_ticks => opportunistic_graft_ticks);
        set!(opportunistic_graft_peers => opportunistic_graft_peers);
        set!(graft_flood_threshold => graft_flood_threshold, nanos);
        set!(max_ihave_length => max_control_messages_sent);
        set!(max_ihave_messages => max_ihave_messages_heartbeat);
        set!(iwant_followup_time => iwant_followup_time, nanos);
        set!(idontwant_threshold => idontwant_message_size_threshold);
        b.message_id_fn(|m: &gossipsub::Message| MessageId::from(m.data.get(..8).unwrap_or(&m.data)));
        // The script's messages must fit (protobuf framing on top).
        let max = b.build()?.max_transmit_size().max(max_message + 1024);
        b.max_transmit_size(max);
        b.build()
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
}

/// Writes one event line on stdout.
fn emit(msg: &str, fields: Value) {
    let time =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let mut line = json!({ "time": time, "level": "INFO", "msg": msg });
    if let (Some(l), Value::Object(f)) = (line.as_object_mut(), fields) {
        l.extend(f);
    }
    println!("{line}");
}

/// A message id as the benchmark writes it: its 8 bytes as a big-endian integer.
fn format_id(bytes: &[u8]) -> String {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or_else(|| "invalid".into(), |b| u64::from_be_bytes(b).to_string())
}

/// Writes `Received Message` for each duplicate rust-libp2p's gossipsub drops: it reports them
/// only in a debug event, with the id in hex.
struct Duplicates;

impl<S: tracing::Subscriber> Layer<S> for Duplicates {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            message: String,
            id: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    "message_id" => self.id = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message.starts_with("Message already received") {
            let bytes: Vec<u8> =
                (0..f.id.len() / 2).filter_map(|i| u8::from_str_radix(&f.id[2 * i..2 * i + 2], 16).ok()).collect();
            emit("Received Message", json!({ "id": format_id(&bytes) }));
        }
    }
}

/// The script's instructions for node `me`, conditions resolved.
fn flatten(script: Vec<Instruction>, me: u32, out: &mut Vec<Instruction>) {
    for i in script {
        match i {
            Instruction::IfNodeIdEquals { node, instruction } if node == me => flatten(vec![*instruction], me, out),
            Instruction::IfNodeIdEquals { .. } => {}
            other => out.push(other),
        }
    }
}

type Pending = FuturesUnordered<Pin<Box<dyn std::future::Future<Output = (MessageId, PeerId)>>>>;

/// The node: its swarm, topics' validation delays, and validations under way.
struct Node {
    swarm: Swarm<Behaviour>,
    delays: HashMap<String, Duration>,
    pending: Pending,
}

impl Node {
    /// Handles events until `deadline`.
    async fn drive(&mut self, deadline: Instant) {
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                Some((id, peer)) = self.pending.next(), if !self.pending.is_empty() => {
                    let _ = self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &peer, MessageAcceptance::Accept);
                }
                ev = self.swarm.select_next_some() => self.on_event(ev),
            }
        }
    }

    fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let topic = message.topic.to_string();
                emit(
                    "Received Message",
                    json!({ "id": format_id(&message.data), "from": propagation_source.to_string(), "topic": topic }),
                );
                let delay = self.delays.get(&topic).copied().unwrap_or_default();
                self.pending.push(Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    (message_id, propagation_source)
                }));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => eprintln!("dial {peer_id:?} failed: {error}"),
            _ => {}
        }
    }
}

async fn connect(swarm: &mut Swarm<Behaviour>, to: u32) -> Result<(), Box<dyn std::error::Error>> {
    let ip = tokio::net::lookup_host((format!("node{to}"), PORT)).await?.next().ok_or("no address")?.ip();
    let peer = PeerId::from(node_key(to).public());
    let addr: Multiaddr = format!("/ip4/{ip}/tcp/{PORT}/p2p/{peer}").parse()?;
    swarm.dial(addr)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let params: Params = serde_json::from_slice(&std::fs::read(&args.params)?)?;
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let me: u32 = host
        .strip_prefix("node")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("host name {host} is not node<id>"))?;
    let mut script = Vec::new();
    flatten(params.script, me, &mut script);
    if script.iter().any(|i| {
        matches!(
            i,
            Instruction::AddPartialMessage {}
                | Instruction::PublishPartial {}
                | Instruction::Subscribe { partial: true, .. }
        )
    }) {
        return Err("partial messages are not supported by this implementation".into());
    }
    let gossip = script
        .iter()
        .find_map(|i| match i {
            Instruction::InitGossipSub { params } => Some((**params).clone()),
            _ => None,
        })
        .unwrap_or_default();
    let largest = script
        .iter()
        .filter_map(|i| match i {
            Instruction::Publish { size, .. } => Some(*size),
            _ => None,
        })
        .max()
        .unwrap_or(0);

    let subscriber = tracing_subscriber::registry()
        .with(Duplicates.with_filter(filter_fn(|m| {
            m.target().starts_with("libp2p_gossipsub") && *m.level() == tracing::Level::DEBUG
        })))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(tracing_subscriber::EnvFilter::from_default_env()),
        );
    tracing::subscriber::set_global_default(subscriber)?;

    // Shadow gives each process one CPU.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let key = node_key(me);
        emit("PeerID", json!({ "id": PeerId::from(key.public()).to_string(), "node_id": me }));
        let config = gossip.config(largest)?;
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_other_transport(|key| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    FreshPort::new()
                        .upgrade(Version::V1Lazy)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default())
                        .map(|(p, c), _| (p, StreamMuxerBox::new(c))),
                )
            })?
            .with_behaviour(|key| {
                Ok(Behaviour {
                    gossipsub: gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)?,
                    identify: identify::Behaviour::new(identify::Config::new("/interop/1.0.0".into(), key.public())),
                })
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        swarm.listen_on(format!("/ip4/0.0.0.0/tcp/{PORT}").parse()?)?;
        let mut node = Node { swarm, delays: HashMap::new(), pending: FuturesUnordered::new() };
        for step in script {
            match step {
                Instruction::Connect { to } => {
                    for peer in to {
                        connect(&mut node.swarm, peer).await?;
                    }
                }
                Instruction::WaitUntil { seconds } => node.drive(started + Duration::from_secs(seconds)).await,
                Instruction::Publish { id, size, topic } => {
                    let mut data = vec![0u8; size.max(8)];
                    data[..8].copy_from_slice(&id.to_be_bytes());
                    if let Err(e) = node.swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(topic), data) {
                        eprintln!("publish {id}: {e}");
                    }
                }
                Instruction::Subscribe { topic, .. } => {
                    node.swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(topic))?;
                }
                Instruction::ValidationDelay { topic, seconds } => {
                    node.delays.insert(topic, Duration::from_secs_f64(seconds.max(0.0)));
                }
                Instruction::InitGossipSub { .. } | Instruction::IfNodeIdEquals { .. } => {}
                Instruction::AddPartialMessage {} | Instruction::PublishPartial {} => unreachable!("refused above"),
            }
        }
        // The script ends with a wait for deliveries to settle; the benchmark expects every
        // process to exit cleanly then.
        Ok(())
    })
}
