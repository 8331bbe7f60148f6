//! What every node process of a run is told (one JSON file per stack), and what it writes back
//! (NDJSON lines on stdout, one per event).

use crate::topology::Host;
use libp2p::{identity::Keypair, Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

/// The port every node listens on.
pub const PORT: u16 = 9000;
/// Shadow's clock starts at 2000-01-01T00:00:00Z; log times count from there.
const SIM_EPOCH_MS: u64 = 946_684_800_000;

/// The network stack a node process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Stack {
    /// A DarkSwap `Network`.
    Darkswap,
    /// Plain rust-libp2p: gossipsub with its default settings, Kademlia and identify.
    Plain,
}

impl Stack {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Darkswap => "darkswap",
            Stack::Plain => "rust-libp2p",
        }
    }
}

/// One run, as each node process reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub stack: Stack,
    pub hosts: Vec<Host>,
    /// (time in ms, publishing host, tag) of every order.
    pub publish: Vec<(u64, u32, u64)>,
    /// When each node writes down whom it is connected to.
    pub links_at_ms: u64,
    /// Bytes of each message's payload (the order's terms; the plain message's data).
    pub payload: usize,
    /// The DarkSwap peer manager's outbound target and peer limit.
    pub target_outbound: usize,
    pub max_peers: usize,
    /// A partition during the run, if any.
    #[serde(default)]
    pub partition: Option<Partition>,
    /// The resync scenario's book, newcomer and absence, if any.
    #[serde(default)]
    pub resync: Option<Resync>,
}

/// The resync scenario: every node but the newcomer starts holding the same book (imported
/// from a file of signed orders); the newcomer joins later with nothing; the returner leaves
/// for a while (blocking every peer, as a partition does) while others publish new orders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resync {
    /// The book: signed order envelopes, each as a little-endian u32 length and the bytes.
    pub book: std::path::PathBuf,
    pub newcomer: u32,
    pub returner: u32,
    pub away_from_ms: u64,
    pub away_to_ms: u64,
    /// Each node's book limit: room for the book and what is published during the run (the
    /// default, 100,000, would refuse the new orders of a full 100,000-order book).
    pub max_orders: usize,
}

/// Tags of the book's orders start here (the published orders' tags count from 1).
pub const BOOK_TAG: u64 = 1 << 40;

/// Reads a book file written for [`Resync::book`].
pub fn read_book(path: &std::path::Path) -> std::io::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path)?;
    let mut out = Vec::new();
    let mut rest = bytes.as_slice();
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let Some(envelope) = rest.get(4..4 + len) else { break };
        out.push(envelope.to_vec());
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// A network partition: from `from_ms` to `to_ms` of simulated time the hosts of `region` and
/// the others cannot reach each other.
///
/// Shadow cannot change its network graph during a run, so each node process emulates it: at
/// `from_ms` it blocks every peer on the other side (the block list closes their connections
/// and refuses new ones, in both directions since both sides block), and at `to_ms` it lifts the
/// blocks. What crosses a real partition is the same, nothing; the difference is timing: here
/// connections close at once, where across a real one they die when pings time out (20 s), and
/// a dial fails at once instead of timing out. Either way a node's connections across are gone
/// when the partition heals, and it must dial across again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Partition {
    pub region: usize,
    pub from_ms: u64,
    pub to_ms: u64,
}

impl Partition {
    /// The peers host `me` cannot reach during the partition.
    pub fn cut_off(&self, hosts: &[Host], me: &Host) -> Vec<PeerId> {
        let inside = |h: &Host| h.region == self.region;
        hosts.iter().filter(|h| inside(h) != inside(me)).map(|h| PeerId::from(node_key(h.id).public())).collect()
    }
}

impl Plan {
    /// A plan for DarkSwap nodes (the stack is set per run) with 8-byte payloads.
    pub fn new(
        hosts: Vec<Host>,
        publish: Vec<(u64, u32, u64)>,
        links_at_ms: u64,
        target_outbound: usize,
        max_peers: usize,
    ) -> Self {
        Self {
            stack: Stack::Darkswap,
            hosts,
            publish,
            links_at_ms,
            payload: 8,
            target_outbound,
            max_peers,
            partition: None,
            resync: None,
        }
    }

    /// The same plan with a partition.
    pub fn with_partition(self, partition: Partition) -> Self {
        Self { partition: Some(partition), ..self }
    }

    /// The bootstrap nodes' addresses.
    pub fn bootstrap_addrs(&self) -> Vec<Multiaddr> {
        self.hosts.iter().filter(|h| h.bootstrap).map(address).collect()
    }
}

/// The identity of host `id`: its little-endian id as the ed25519 secret (the libp2p gossipsub
/// benchmark's convention, so peers are known before the run).
pub fn node_key(id: u32) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&id.to_le_bytes());
    Keypair::ed25519_from_bytes(seed).expect("32 bytes are an ed25519 secret")
}

/// Where host `h` listens, with its peer id.
pub fn address(h: &Host) -> Multiaddr {
    let peer = PeerId::from(node_key(h.id).public());
    format!("/ip4/{}/tcp/{PORT}/p2p/{peer}", h.ip).parse().expect("a valid multiaddr")
}

/// Milliseconds since the simulation began (the simulated clock inside Shadow).
pub fn now_ms() -> u64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
    ms.saturating_sub(SIM_EPOCH_MS)
}

/// One line of a node's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Record {
    /// The node started.
    Start { t: u64, id: u32, peer: String },
    /// It published the order tagged `tag`.
    Publish { t: u64, tag: u64 },
    /// It received the order tagged `tag` (first copy).
    Receive { t: u64, tag: u64 },
    /// Its connections: peers in all, outbound, and in the gossip mesh.
    Peers { t: u64, n: usize, out: usize, mesh: usize },
    /// Whom it is connected to.
    Links { t: u64, peers: Vec<String> },
    /// Its counters: bytes sent on all protocols' streams; gossip messages received with and
    /// without duplicates.
    Counters {
        t: u64,
        sent: u64,
        received_all: u64,
        received_first: u64,
        /// Bytes sent and received per protocol, where the stack counts them so (DarkSwap).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        sent_by_protocol: BTreeMap<String, u64>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        received_by_protocol: BTreeMap<String, u64>,
    },
}

impl Record {
    /// When it was written (ms of simulated time).
    pub fn t(&self) -> u64 {
        match self {
            Record::Start { t, .. }
            | Record::Publish { t, .. }
            | Record::Receive { t, .. }
            | Record::Peers { t, .. }
            | Record::Links { t, .. }
            | Record::Counters { t, .. } => *t,
        }
    }

    /// Writes the record as one line on stdout.
    pub fn emit(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            println!("{line}");
        }
    }
}

/// Sums the samples of the OpenMetrics series named `name` in `text` whose labels contain
/// every one of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|x| rest.contains(x))).then(|| value.parse::<f64>().ok())?
        })
        .map(|v| v as u64)
        .sum()
}

/// The samples of the OpenMetrics series `name` whose labels contain `filter`, summed per value
/// of the label `by`.
pub fn metric_by_label(text: &str, name: &str, filter: &str, by: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = l.rsplit_once(' ') else { continue };
        let Some((n, labels)) = series.split_once('{') else { continue };
        if n != name || !labels.contains(filter) {
            continue;
        }
        let key = format!("{by}=\"");
        let Some(start) = labels.find(&key).map(|i| i + key.len()) else { continue };
        let Some(len) = labels[start..].find('"') else { continue };
        let v = value.parse::<f64>().unwrap_or(0.0) as u64;
        *out.entry(labels[start..start + len].to_string()).or_insert(0) += v;
    }
    out
}
