//! Configuration: the seed's [`NetworkConfig`] plus the builder for everything else.

use crate::order_book::OrderBookLimits;
use libp2p::{identity::Keypair, Multiaddr};
use std::{path::PathBuf, time::Duration};

/// The seed's network configuration.
///
/// It has exactly the seed's four fields, so the README's struct literal compiles; further options
/// live on [`NetworkBuilder`].
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Peers dialed at start and added to Kademlia: multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap_peers: Vec<Multiaddr>,
    /// Gossip topics joined at start (more with [`subscribe`](super::NetworkHandle::subscribe)).
    pub topics: Vec<String>,
    /// Relays to reserve a slot on at start: multiaddrs ending in `/p2p/<relay peer id>`.
    pub relay_peers: Vec<Multiaddr>,
    /// Time allowed for a connection to be established and upgraded.
    pub connection_timeout: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            bootstrap_peers: Vec::new(),
            topics: vec![crate::protocol::ORDERBOOK_TOPIC.into(), crate::protocol::TRADE_TOPIC.into()],
            relay_peers: Vec::new(),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// Builds a [`Network`](super::Network) with options beyond [`NetworkConfig`].
///
/// ```no_run
/// # async fn run() -> Result<(), darkswap_p2p::Error> {
/// use darkswap_p2p::network::{Network, NetworkConfig};
/// let network = Network::builder(NetworkConfig::default())
///     .identity_file("/var/lib/darkswap/identity.key")
///     .listen_on("/ip4/0.0.0.0/tcp/9000".parse().unwrap())
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NetworkBuilder {
    pub(crate) config: NetworkConfig,
    pub(crate) keypair: Option<Keypair>,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) listen: Vec<Multiaddr>,
    pub(crate) book_limits: OrderBookLimits,
    pub(crate) idle_timeout: Duration,
    pub(crate) event_buffer: usize,
    pub(crate) max_trades: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) mesh: (usize, usize, usize),
    pub(crate) discovery: bool,
    pub(crate) relay_server: Option<super::RelayServerConfig>,
    pub(crate) resources: super::ResourceLimits,
    pub(crate) peering: super::PeeringConfig,
    pub(crate) gossip_limits: super::GossipLimits,
    pub(crate) anti_entropy: Duration,
    pub(crate) external_addrs: Vec<Multiaddr>,
    pub(crate) relay_discovery: Option<crate::relay_discovery::RelayDiscoveryConfig>,
    pub(crate) autonat_global_only: bool,
    pub(crate) min_relay_reservations: Option<usize>,
    pub(crate) auth: crate::auth::AuthManagerConfig,
    pub(crate) relay_tokens: Vec<(libp2p::PeerId, Vec<u8>)>,
    pub(crate) auth_set: bool,
    #[cfg(feature = "insecure-test-plaintext")]
    pub(crate) insecure_plaintext: bool,
    pub(crate) encryption: crate::encryption::EncryptionConfig,
    pub(crate) webrtc: WebRtcOptions,
    pub(crate) metrics: Option<crate::metrics::P2PMetrics>,
    pub(crate) metrics_enabled: bool,
    pub(crate) gossipsub_metrics: bool,
}

/// WebRTC settings of a node.
#[derive(Debug, Clone, Default)]
pub(crate) struct WebRtcOptions {
    pub signaling_url: Option<String>,
    pub config: crate::webrtc::WebRtcConfig,
    #[cfg(not(target_arch = "wasm32"))]
    pub certificate_file: Option<PathBuf>,
}

/// What the swarm's composition needs: transports, protocol settings and limits.
#[derive(Debug)]
pub(crate) struct SwarmConfig {
    pub connection_timeout: Duration,
    pub idle_timeout: Duration,
    pub heartbeat: Duration,
    pub mesh: (usize, usize, usize),
    pub discovery: bool,
    pub mdns: bool,
    pub relay_server: Option<super::RelayServerConfig>,
    pub autonat_global_only: bool,
    pub resources: super::ResourceLimits,
    /// Metrics recorded in the swarm (bytes per protocol, gossipsub's own): native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub metrics_enabled: bool,
    #[cfg(not(target_arch = "wasm32"))]
    pub gossipsub_metrics: bool,
    pub signaling_url: Option<String>,
    /// Where the WebRTC-direct certificate is kept (none: a fresh one per run).
    #[cfg(not(target_arch = "wasm32"))]
    pub webrtc_certificate: Option<PathBuf>,
    #[cfg(feature = "insecure-test-plaintext")]
    pub insecure_plaintext: bool,
}

/// What the network task needs: what to do at start, and each part's settings.
#[derive(Debug)]
pub(crate) struct TaskConfig {
    pub topics: Vec<String>,
    pub listen: Vec<Multiaddr>,
    pub external_addrs: Vec<Multiaddr>,
    pub bootstrap_peers: Vec<Multiaddr>,
    pub relay_peers: Vec<Multiaddr>,
    pub event_buffer: usize,
    pub max_trades: usize,
    pub anti_entropy: Duration,
    pub gossip_limits: super::GossipLimits,
    /// `None` when discovery is off: then the node keeps what it is given.
    pub peering: Option<super::PeeringConfig>,
    pub min_relay_reservations: usize,
    pub relay_mode: bool,
    pub metrics_enabled: bool,
    pub relay_tokens: Vec<(libp2p::PeerId, Vec<u8>)>,
    /// Whether to authenticate to relays before reserving on or dialing through them.
    pub auth_to_relays: bool,
}

/// A builder resolved into the settings of each part of the network.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub keypair: Option<Keypair>,
    pub identity_file: Option<PathBuf>,
    pub book_limits: OrderBookLimits,
    pub auth: crate::auth::AuthManagerConfig,
    pub encryption: crate::encryption::EncryptionConfig,
    pub relay_discovery: crate::relay_discovery::RelayDiscoveryConfig,
    pub metrics: Option<crate::metrics::P2PMetrics>,
    pub webrtc: crate::webrtc::WebRtcConfig,
    pub swarm: SwarmConfig,
    pub task: TaskConfig,
}

impl NetworkBuilder {
    /// A builder starting from `config`.
    pub fn new(config: NetworkConfig) -> Self {
        Self {
            config,
            keypair: None,
            identity_file: None,
            listen: Vec::new(),
            book_limits: OrderBookLimits::default(),
            idle_timeout: Duration::from_secs(600),
            event_buffer: 1024,
            max_trades: 1024,
            heartbeat: Duration::from_millis(700),
            mesh: (6, 5, 12),
            discovery: true,
            relay_server: None,
            resources: super::ResourceLimits::default(),
            peering: super::PeeringConfig::default(),
            gossip_limits: super::GossipLimits::default(),
            anti_entropy: Duration::from_secs(20),
            external_addrs: Vec::new(),
            relay_discovery: None,
            autonat_global_only: true,
            min_relay_reservations: None,
            auth: crate::auth::AuthManagerConfig::default(),
            relay_tokens: Vec::new(),
            auth_set: false,
            #[cfg(feature = "insecure-test-plaintext")]
            insecure_plaintext: false,
            encryption: crate::encryption::EncryptionConfig::default(),
            webrtc: WebRtcOptions::default(),
            metrics: None,
            metrics_enabled: true,
            gossipsub_metrics: false,
        }
    }

    /// Use this identity (ed25519). Without it (and without an identity file) a random one is made.
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Load the identity from `path`, creating it there on first run. Ignored if
    /// [`keypair`](Self::keypair) is set.
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_file = Some(path.into());
        self
    }

    /// Listen on `addr` as soon as the network starts.
    pub fn listen_on(mut self, addr: Multiaddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Caps on the local order book.
    pub fn order_book_limits(mut self, limits: OrderBookLimits) -> Self {
        self.book_limits = limits;
        self
    }

    /// How long a connection with no protocol in use stays open (default 10 minutes).
    pub fn idle_connection_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Capacity of the event queue; when full the task stops reading the network (backpressure)
    /// rather than dropping events. Default 1024.
    pub fn event_buffer(mut self, capacity: usize) -> Self {
        self.event_buffer = capacity.max(1);
        self
    }

    /// Most unfinished trade negotiations at once (default 1024).
    pub fn max_open_trades(mut self, max: usize) -> Self {
        self.max_trades = max.max(1);
        self
    }

    /// Gossipsub heartbeat (default 700 ms).
    pub fn gossip_heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Gossipsub mesh degree: the number of peers a node forwards each order to (`n`, default 6)
    /// and the bounds it keeps that number within (`low..=high`, default 5 and 12; gossipsub's
    /// defaults). Every peer beyond the first that forwards an order sends a copy the receiver
    /// drops, so a smaller mesh costs less CPU and bandwidth per order, and a larger one survives
    /// more peers that fail to forward. Measured with the propagation bench (50 nodes of six
    /// connections on a 2-core machine, 200 orders/s, 5 s runs): 6/5/12 used 14.3 s of CPU and
    /// saturated both cores (p99 about 3 s); 3/2/4 used 10.4-11.3 s (p99 0.38-1.7 s across
    /// runs). `build` fails unless `1 <= low <= n <= high`.
    pub fn gossip_mesh(mut self, n: usize, low: usize, high: usize) -> Self {
        self.mesh = (n, low, high);
        self
    }

    /// Whether the node runs Kademlia to discover peers (default on; it walks the DHT when it
    /// learns new peers and every 5 minutes). Off, the node only connects to peers it is told
    /// about or that dial it, which keeps a fixed topology (benchmarks, private deployments).
    pub fn discovery(mut self, enabled: bool) -> Self {
        self.discovery = enabled;
        self
    }

    /// Runs a circuit relay v2 server with these limits (relay mode), and announces the node as a
    /// relay in the DHT. A relay only grants reservations once it has a confirmed external
    /// address: give one with [`external_address`](Self::external_address), or listen on a
    /// specific (not unspecified) IP, which relay mode takes as reachable.
    pub fn relay_server(mut self, config: super::RelayServerConfig) -> Self {
        self.relay_server = Some(config);
        self
    }

    /// How relays are discovered and ranked. Default: [`RelayDiscoveryConfig::default()`] with
    /// the config's `relay_peers` as bootstrap relays.
    ///
    /// [`RelayDiscoveryConfig::default()`]: crate::relay_discovery::RelayDiscoveryConfig
    pub fn relay_discovery(mut self, config: crate::relay_discovery::RelayDiscoveryConfig) -> Self {
        self.relay_discovery = Some(config);
        self
    }

    /// Whether AutoNAT only probes and serves global IP addresses (default on). Turn it off on
    /// private networks and in tests, where every address is private.
    pub fn autonat_global_only(mut self, global_only: bool) -> Self {
        self.autonat_global_only = global_only;
        self
    }

    /// Keep at least `n` relay reservations: when one is lost (the relay died or refused to
    /// renew), reserve on the best-scoring other relay known to
    /// [`relay_discovery`](super::NetworkHandle::relay_discovery) within a second or two.
    /// Default: 1 when `relay_peers` is not empty, else 0.
    pub fn min_relay_reservations(mut self, n: usize) -> Self {
        self.min_relay_reservations = Some(n);
        self
    }

    /// An address peers can reach this node at (public IP and port, or a port mapping).
    pub fn external_address(mut self, addr: Multiaddr) -> Self {
        self.external_addrs.push(addr);
        self
    }

    /// How this node authenticates peers and proves itself (default: identity signatures, nobody
    /// required to authenticate). With `require_auth`, a relay-mode node gives reservations and
    /// circuits only to peers at [`RelayServerConfig::min_auth_level`](super::RelayServerConfig);
    /// with a `shared_key`, this node authenticates to its relays before reserving. Banned peers
    /// are refused at connection time.
    pub fn auth(mut self, config: crate::auth::AuthManagerConfig) -> Self {
        self.auth = config;
        self.auth_set = true;
        self
    }

    /// A token to present to `relay` before reserving on it (e.g. one an operator issued with
    /// [`AuthManager::issue_token`](crate::auth::AuthManager::issue_token)).
    pub fn relay_token(mut self, relay: libp2p::PeerId, token: Vec<u8>) -> Self {
        self.relay_tokens.push((relay, token));
        self
    }

    /// The end-to-end encryption of trade messages (default: [`EncryptionConfig::default`],
    /// AES-256-GCM with hourly rotation). Trade messages are always encrypted.
    ///
    /// [`EncryptionConfig::default`]: crate::encryption::EncryptionConfig
    pub fn encryption(mut self, config: crate::encryption::EncryptionConfig) -> Self {
        self.encryption = config;
        self
    }

    /// **Tests only — never in production.** TCP without transport encryption (plaintext
    /// instead of Noise), so a test can observe the bytes a relay forwards. Needs the
    /// `insecure-test-plaintext` feature.
    #[cfg(feature = "insecure-test-plaintext")]
    pub fn insecure_plaintext_transport(mut self) -> Self {
        self.insecure_plaintext = true;
        self
    }

    /// Adds WebRTC through the signaling server at `url` (`ws://host:9001/signaling`) as a
    /// transport: `listen_on("/webrtc")` registers the node there, and
    /// `dial("/webrtc/p2p/<peer>")` reaches any peer registered on the same server, with Noise
    /// proving the peer id end to end and Yamux on top. See [`WebRtcTransport`](crate::WebRtcTransport).
    /// In the browser this is how two browsers (or a browser and a native node) connect directly.
    pub fn webrtc_signaling(mut self, url: impl Into<String>) -> Self {
        self.webrtc.signaling_url = Some(url.into());
        self
    }

    /// Records this network's metrics into `metrics` (by default it makes its own; read them
    /// with [`NetworkHandle::metrics`](super::NetworkHandle::metrics)). Give each network its own
    /// registry: two networks in one would report the same names twice.
    pub fn metrics(mut self, metrics: crate::metrics::P2PMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Whether the network records metrics as it runs (default on). Off, it skips the per-event
    /// recording, libp2p's and gossipsub's metrics and the per-protocol byte counting; the
    /// registry then only has the gauges read at scrape time. For measuring what metrics cost.
    pub fn metrics_enabled(mut self, enabled: bool) -> Self {
        self.metrics_enabled = enabled;
        self
    }

    /// Also records gossipsub's own detailed metrics (`libp2p_gossipsub_*`: mesh sizes, peer
    /// scores, send queues, messages and bytes per topic). Off by default: at 200 orders/s on 10
    /// nodes they cost ~7% CPU, where everything else the network records costs none measurable.
    pub fn gossipsub_metrics(mut self, enabled: bool) -> Self {
        self.gossipsub_metrics = enabled;
        self
    }

    /// How many peers the node keeps when discovery is on, and how it chooses them.
    /// Default: [`PeeringConfig::default()`](super::PeeringConfig) (8 outbound, 40 in all).
    pub fn peering(mut self, config: super::PeeringConfig) -> Self {
        self.peering = config;
        self
    }

    /// Caps on connections (total, per peer, per IP, pending) and on the gossip topics a peer
    /// may subscribe to. Default: [`ResourceLimits::default()`](super::ResourceLimits).
    pub fn resource_limits(mut self, limits: super::ResourceLimits) -> Self {
        self.resources = limits;
        self
    }

    /// How often the node compares its order book with a random peer's and pulls what differs
    /// (default 20 s; zero turns it off, asking back included). A digest of 64 buckets goes
    /// each way; books that agree exchange nothing more. A round that found missing orders is
    /// followed by another one second later, until a round finds nothing. A node asked with a
    /// digest unlike its own asks back (at most once per interval per peer), and orders a round
    /// brings that are under a minute old are gossiped on (at most 100 a second).
    pub fn anti_entropy_interval(mut self, every: Duration) -> Self {
        self.anti_entropy = every;
        self
    }

    /// Rate limits on inbound order gossip, and when a flooding peer is banned. Default:
    /// [`GossipLimits::default()`](super::GossipLimits).
    pub fn gossip_limits(mut self, limits: super::GossipLimits) -> Self {
        self.gossip_limits = limits;
        self
    }

    /// STUN/TURN servers, timeouts and channel names for signaling-server WebRTC.
    pub fn webrtc_config(mut self, config: crate::webrtc::WebRtcConfig) -> Self {
        self.webrtc.config = config;
        self
    }

    /// Where the WebRTC-direct certificate lives (PEM, created if missing), so its fingerprint —
    /// part of the `/webrtc-direct/certhash/…` address browsers dial — survives restarts.
    /// Default: next to the identity file (`<identity>.webrtc.pem`), or a fresh certificate per
    /// run without one.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn webrtc_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.webrtc.certificate_file = Some(path.into());
        self
    }

    /// Starts the network.
    pub async fn build(self) -> Result<super::Network, crate::Error> {
        super::Network::start(self).await
    }

    /// Splits the builder into each part's settings, filling in what depends on other options.
    pub(crate) fn resolve(self) -> Resolved {
        let relay_discovery =
            self.relay_discovery.clone().unwrap_or_else(|| crate::relay_discovery::RelayDiscoveryConfig {
                bootstrap_relays: self
                    .config
                    .relay_peers
                    .iter()
                    .filter_map(|a| match a.iter().last() {
                        Some(libp2p::multiaddr::Protocol::P2p(p)) => Some((p, a.clone())),
                        _ => None,
                    })
                    .collect(),
                ..Default::default()
            });
        #[cfg(not(target_arch = "wasm32"))]
        let webrtc_certificate = self.webrtc.certificate_file.clone().or_else(|| {
            self.identity_file.as_ref().map(|p| {
                let mut name = p.as_os_str().to_owned();
                name.push(".webrtc.pem");
                PathBuf::from(name)
            })
        });
        let swarm = SwarmConfig {
            connection_timeout: self.config.connection_timeout,
            idle_timeout: self.idle_timeout,
            heartbeat: self.heartbeat,
            mesh: self.mesh,
            discovery: self.discovery,
            mdns: self.relay_discovery.as_ref().is_some_and(|c| c.enable_mdns_discovery),
            relay_server: self.relay_server.clone(),
            autonat_global_only: self.autonat_global_only,
            resources: self.resources,
            #[cfg(not(target_arch = "wasm32"))]
            metrics_enabled: self.metrics_enabled,
            #[cfg(not(target_arch = "wasm32"))]
            gossipsub_metrics: self.gossipsub_metrics,
            signaling_url: self.webrtc.signaling_url.clone(),
            #[cfg(not(target_arch = "wasm32"))]
            webrtc_certificate,
            #[cfg(feature = "insecure-test-plaintext")]
            insecure_plaintext: self.insecure_plaintext,
        };
        let task = TaskConfig {
            min_relay_reservations: self
                .min_relay_reservations
                .unwrap_or(usize::from(!self.config.relay_peers.is_empty())),
            auth_to_relays: self.auth_set || !self.relay_tokens.is_empty(),
            topics: self.config.topics,
            listen: self.listen,
            external_addrs: self.external_addrs,
            bootstrap_peers: self.config.bootstrap_peers,
            relay_peers: self.config.relay_peers,
            event_buffer: self.event_buffer,
            max_trades: self.max_trades,
            anti_entropy: self.anti_entropy,
            gossip_limits: self.gossip_limits,
            peering: self.discovery.then_some(self.peering),
            relay_mode: self.relay_server.is_some(),
            metrics_enabled: self.metrics_enabled,
            relay_tokens: self.relay_tokens,
        };
        Resolved {
            keypair: self.keypair,
            identity_file: self.identity_file,
            book_limits: self.book_limits,
            auth: self.auth,
            encryption: self.encryption,
            relay_discovery,
            metrics: self.metrics,
            webrtc: self.webrtc.config,
            swarm,
            task,
        }
    }
}
