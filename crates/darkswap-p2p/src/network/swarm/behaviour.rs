//! The composed libp2p behaviour and each protocol's configuration (crate-private: its fields
//! are the wrappers, which are machinery).

use crate::network::wrappers::{BoxedEvents, Gated};
use crate::{
    auth::{AuthRequest, AuthResponse},
    protocol::{
        codec::FrameCodec,
        limits,
        reconcile::{ReconcileRequest, ReconcileResponse, RECONCILE_PROTOCOL},
        sealed::{TradeReply, TradeRequest},
        SyncRequest, SyncResponse, SYNC_PROTOCOL, TRADE_PROTOCOL,
    },
};
use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify,
    identity::Keypair,
    kad, ping, relay, request_response,
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    StreamProtocol,
};
use std::time::Duration;

use crate::network::{gossip_settings::gossipsub_config, IDENTIFY_PROTOCOL, KAD_PROTOCOL};

/// Request-response behaviour for order-book sync.
pub(crate) type SyncBehaviour = request_response::Behaviour<FrameCodec<SyncRequest, SyncResponse>>;
/// Request-response behaviour for order-book reconciliation.
pub(crate) type ReconcileBehaviour = request_response::Behaviour<FrameCodec<ReconcileRequest, ReconcileResponse>>;
/// Request-response behaviour for trade negotiation.
pub(crate) type TradeBehaviour = request_response::Behaviour<FrameCodec<TradeRequest, TradeReply>>;
/// mDNS discovery: multicast DNS on native targets; browsers cannot multicast.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type Mdns = libp2p::mdns::tokio::Behaviour;
/// mDNS discovery: multicast DNS on native targets; browsers cannot multicast.
#[cfg(target_arch = "wasm32")]
pub(crate) type Mdns = libp2p::swarm::dummy::Behaviour;

/// AutoNAT v2 server: dials back the addresses other nodes ask it to test.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type AutonatServer = Gated<autonat::v2::server::Behaviour>;
/// AutoNAT v2 server: none in the browser, which can dial only WebSocket and WebRTC addresses
/// back, so it could prove nothing about a TCP or QUIC address (leaving it out saves 38 KB of wasm).
#[cfg(target_arch = "wasm32")]
pub(crate) type AutonatServer = libp2p::swarm::dummy::Behaviour;

/// Request-response behaviour for authentication.
pub(crate) type AuthBehaviour = request_response::Behaviour<FrameCodec<AuthRequest, AuthResponse>>;

/// Gossipsub with a cap on the topics each peer may subscribe to.
pub(crate) type Gossipsub = gossipsub::Behaviour<
    gossipsub::IdentityTransform,
    gossipsub::MaxCountSubscriptionFilter<gossipsub::AllowAllSubscriptionFilter>,
>;

/// Everything a DarkSwap node speaks.
///
/// Field order matters. The admission checks come first, so a refused connection reaches no
/// other behaviour. Gossipsub comes last: the derive nests the connection handlers to the left
/// (`Select<Select<Select<first, second>, third>, …>`), so the last field's events and streams
/// cross one `Either` layer and the first field's cross one per field. The idle handlers it is
/// polled after, and the idle behaviours, cost one atomic load each per poll (`Gated`), and the
/// protocol names of all of them are listed once per connection rather than at every poll
/// (`CachedProtocols`).
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Bounds on inbound connections per IP address.
    pub ip_limits: super::ip_limits::IpLimits,
    /// Bounds on connections.
    pub limits: connection_limits::Behaviour,
    /// Banned peers: their connections are refused and closed.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// mDNS on the local network (native, opt-in: see `NetworkBuilder::relay_discovery`).
    pub mdns: Toggle<Mdns>,
    /// The application's own stream protocols (`NetworkHandle::open_stream`).
    pub streams: Gated<libp2p_stream::Behaviour>,
    /// Circuit relay v2 server, in relay mode only.
    pub relay_server: Toggle<Gated<BoxedEvents<relay::Behaviour>>>,
    /// Peer and relay discovery (absent when discovery is turned off).
    pub kad: Toggle<Gated<BoxedEvents<kad::Behaviour<kad::store::MemoryStore>>>>,
    /// Dials other nodes' addresses back for their probes (AutoNAT v2 server; native only).
    pub autonat_server: AutonatServer,
    /// Reachability probes of this node's addresses (AutoNAT v2 client; confirms external
    /// addresses).
    pub autonat_client: Gated<super::autonat::Client>,
    /// Reachability probes, AutoNAT v1 (client and server): works over inbound connections too.
    pub autonat: Gated<autonat::Behaviour>,
    /// Hole punching: upgrades relayed connections to direct ones where the NATs allow.
    pub dcutr: Gated<dcutr::Behaviour>,
    /// Circuit relay v2 client (reservations and relayed dials).
    pub relay_client: Gated<relay::client::Behaviour>,
    /// Authentication challenges and tokens.
    pub auth: Gated<BoxedEvents<AuthBehaviour>>,
    /// Trade negotiation (end-to-end encrypted).
    pub trade: Gated<TradeBehaviour>,
    /// Order-book sync for newcomers.
    pub sync: Gated<SyncBehaviour>,
    /// Order-book reconciliation (anti-entropy).
    pub reconcile: Gated<ReconcileBehaviour>,
    /// Liveness and round-trip times.
    pub ping: Gated<ping::Behaviour>,
    /// Learns peers' addresses and protocols.
    pub identify: Gated<BoxedEvents<identify::Behaviour>>,
    /// Order-book and trade-notice gossip.
    pub gossipsub: Gated<Gossipsub>,
}

impl Behaviour {
    /// Builds the behaviour for `key`.
    pub(crate) fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        b: &crate::network::config::SwarmConfig,
        #[cfg_attr(target_arch = "wasm32", allow(unused_variables))] metrics: &crate::metrics::P2PMetrics,
        auth: &std::sync::Arc<crate::auth::AuthManager>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (heartbeat, discovery) = (b.heartbeat, b.discovery);
        let (relay_server, autonat_global_only) = (b.relay_server.as_ref(), b.autonat_global_only);
        let peer_id = key.public().to_peer_id();
        let config = gossipsub_config(heartbeat, b.mesh)?;
        let anonymous = gossipsub::MessageAuthenticity::Anonymous;
        let res = &b.resources;
        let filter = gossipsub::MaxCountSubscriptionFilter {
            filter: gossipsub::AllowAllSubscriptionFilter {},
            max_subscribed_topics: res.max_topics_per_peer,
            max_subscriptions_per_request: res.max_subscriptions_per_rpc,
        };
        // No gossipsub peer scoring: the one thing it would score here, invalid messages, the
        // task counts itself and bans for (network/swarm/flood.rs), and scoring computed a score for
        // every RPC and kept a delivery record per duplicate, ~4% of a node's CPU at 50 nodes.
        #[allow(unused_mut)] // gossipsub's metrics exist on native only
        let mut gossipsub = Gossipsub::new_with_subscription_filter(anonymous, config, filter)?;
        #[cfg(not(target_arch = "wasm32"))]
        if b.metrics_enabled && b.gossipsub_metrics {
            // gossipsub's own metrics (mesh, scores, queues, messages per topic): opt-in, since
            // they cost several percent of CPU under load (see the propagation bench).
            gossipsub = metrics.registry().with_registry(|r| {
                let r = r.sub_registry_with_prefix("libp2p").sub_registry_with_prefix("gossipsub");
                gossipsub.with_metrics(r, gossipsub::MetricsConfig::default())
            });
        }

        let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
        kad_config.set_query_timeout(Duration::from_secs(30));
        let kad = discovery
            .then(|| {
                let store = kad::store::MemoryStore::new(peer_id);
                Gated::timed(BoxedEvents::new(kad::Behaviour::with_config(peer_id, store, kad_config)))
            })
            .into();

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                .with_agent_version(format!("darkswap-p2p/{}", env!("CARGO_PKG_VERSION"))),
        );

        let rr =
            |timeout| request_response::Config::default().with_request_timeout(timeout).with_max_concurrent_streams(64);
        let sync = request_response::Behaviour::with_codec(
            FrameCodec::new(limits::MAX_SYNC_REQUEST, limits::MAX_SYNC_RESPONSE),
            [(StreamProtocol::new(SYNC_PROTOCOL), request_response::ProtocolSupport::Full)],
            rr(Duration::from_secs(30)),
        );
        let reconcile = request_response::Behaviour::with_codec(
            FrameCodec::new(limits::MAX_RECONCILE_MESSAGE, limits::MAX_RECONCILE_MESSAGE),
            [(StreamProtocol::new(RECONCILE_PROTOCOL), request_response::ProtocolSupport::Full)],
            rr(Duration::from_secs(30)),
        );
        let trade = request_response::Behaviour::with_codec(
            FrameCodec::new(limits::MAX_TRADE_REQUEST, limits::MAX_TRADE_REPLY),
            [(StreamProtocol::new(TRADE_PROTOCOL), request_response::ProtocolSupport::Full)],
            rr(Duration::from_secs(30)),
        );

        let auth_rr = request_response::Behaviour::with_codec(
            FrameCodec::new(crate::auth::MAX_AUTH_MESSAGE_BYTES, crate::auth::MAX_AUTH_MESSAGE_BYTES),
            [(crate::auth::AUTH_PROTOCOL, request_response::ProtocolSupport::Full)],
            rr(Duration::from_secs(15)),
        );
        let mut blocked = allow_block_list::Behaviour::default();
        for peer in &auth.config().banned_peers {
            blocked.block_peer(*peer);
        }

        // A relay holds a connection per reservation, so it gets room for all of them.
        let (established, pending) = match relay_server {
            Some(c) => (
                res.max_connections.saturating_add((c.max_reservations + c.max_circuits) as u32),
                res.max_pending_incoming.max(512),
            ),
            None => (res.max_connections, res.max_pending_incoming),
        };
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established_per_peer(Some(res.max_connections_per_peer))
                .with_max_established(Some(established))
                .with_max_pending_incoming(Some(pending))
                .with_max_pending_outgoing(Some(res.max_pending_outgoing)),
        );
        let ip_limits = super::ip_limits::IpLimits::new(res.max_inbound_per_ip, res.limit_loopback);

        let relay_server = relay_server
            .map(|c| Gated::timed(BoxedEvents::new(relay::Behaviour::new(peer_id, c.to_libp2p_with_auth(auth)))))
            .into();
        // mDNS multicasts on every local interface, so a node only runs it when its relay discovery
        // was configured explicitly with `enable_mdns_discovery`.
        let mdns_wanted = b.mdns;
        #[cfg(not(target_arch = "wasm32"))]
        let mdns = match mdns_wanted {
            true => Some(libp2p::mdns::tokio::Behaviour::new(libp2p::mdns::Config::default(), peer_id)?),
            false => None,
        };
        #[cfg(target_arch = "wasm32")]
        let mdns: Option<Mdns> = {
            let _ = mdns_wanted;
            None
        };
        Ok(Self {
            ip_limits,
            limits,
            relay_client: Gated::new(relay_client),
            relay_server,
            dcutr: Gated::new(dcutr::Behaviour::new(peer_id)),
            autonat: Gated::new(autonat::Behaviour::new(
                peer_id,
                autonat::Config {
                    only_global_ips: autonat_global_only,
                    // First probe soon after start, and a failed one retried within a minute
                    // (v1 waits 15 s and 90 s by default).
                    boot_delay: Duration::from_secs(5),
                    retry_interval: Duration::from_secs(30),
                    ..Default::default()
                },
            )),
            autonat_client: Gated::new(super::autonat::Client::new(autonat_global_only)),
            #[cfg(not(target_arch = "wasm32"))]
            autonat_server: Gated::new(autonat::v2::server::Behaviour::default()),
            #[cfg(target_arch = "wasm32")]
            autonat_server: libp2p::swarm::dummy::Behaviour,
            gossipsub: Gated::hot(gossipsub),
            kad,
            identify: Gated::new(BoxedEvents::new(identify)),
            ping: Gated::new(ping::Behaviour::new(ping::Config::new())),
            sync: Gated::new(sync),
            reconcile: Gated::new(reconcile),
            trade: Gated::new(trade),
            auth: Gated::new(BoxedEvents::new(auth_rr)),
            blocked,
            mdns: mdns.into(),
            streams: Gated::new(libp2p_stream::Behaviour::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The composed behaviour's events are no larger than gossipsub's own: a behaviour added
    /// later with large events belongs behind `BoxedEvents` too (measured: 592, 576 and 680 bytes
    /// before, 240, 176 and 256 after).
    #[test]
    fn no_event_is_larger_than_gossipsubs() {
        use libp2p::swarm::{THandlerInEvent, THandlerOutEvent};
        use std::mem::size_of;
        assert!(size_of::<THandlerOutEvent<Behaviour>>() <= size_of::<THandlerOutEvent<Gossipsub>>());
        assert!(size_of::<THandlerInEvent<Behaviour>>() <= size_of::<THandlerOutEvent<Gossipsub>>());
        assert!(
            size_of::<<Behaviour as NetworkBehaviour>::ToSwarm>()
                <= size_of::<<Gossipsub as NetworkBehaviour>::ToSwarm>()
        );
    }
}
