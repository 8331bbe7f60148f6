//! The relay connection pool: keeps between `min_relay_connections` and `max_relay_connections`
//! reservations on the best relays [`relay_discovery`](crate::relay_discovery) knows, replaces a
//! relay that dies with the next best within a couple of seconds, reaches NATed peers through
//! those relays (reusing connections), and — with `require_relay_auth` — uses only relays that
//! prove themselves and hold `min_relay_auth_level`.
//!
//! The seed passes a `signaling_client` as the third argument of [`RelayConnectionPool::new`]; in
//! this crate relays are reached over libp2p circuit relay v2, so that argument is the
//! [`NetworkHandle`] of the network whose reservations the pool manages.
//!
//! ```no_run
//! use darkswap_p2p::{
//!     connection_pool::ConnectionPoolConfig,
//!     network::{Network, NetworkConfig},
//!     relay_connection_pool::{RelayConnectionPool, RelayConnectionPoolConfig},
//!     relay_discovery::RelayDiscoveryConfig,
//! };
//! use std::time::Duration;
//!
//! # async fn run(peer_id: libp2p::PeerId) -> Result<(), darkswap_p2p::Error> {
//! let network = Network::new(NetworkConfig::default()).await?;
//! let relay_pool = RelayConnectionPool::new(
//!     RelayConnectionPoolConfig {
//!         connection_pool_config: ConnectionPoolConfig::default(),
//!         relay_discovery_config: RelayDiscoveryConfig::default(),
//!         max_relay_connections: 3,
//!         min_relay_connections: 1,
//!         connection_check_interval: Duration::from_secs(60),
//!         auto_connect: true,
//!         ..Default::default()
//!     },
//!     network.local_peer_id(),
//!     network.handle(),
//! );
//! relay_pool.start().await?;
//! let connection = relay_pool.connect_via_relay(&peer_id).await?;
//! println!("reached {} through {}", connection.peer_id, connection.relay_peer_id);
//! # Ok(()) }
//! ```

pub use crate::network::RelayStatus;
use crate::{
    auth::{AuthManager, AuthManagerConfig, AuthorizationLevel, Challenge, ChallengeResponse},
    connection_pool::{ConnectionPool, ConnectionPoolConfig},
    error::{AuthRequestError, Error},
    network::NetworkHandle,
    relay_discovery::{RelayDiscoveryConfig, RelaySource},
};
use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};
use std::{
    sync::{Arc, Weak},
    time::Duration,
};

/// Configuration of a [`RelayConnectionPool`], as in the seed (both of its forms).
#[derive(Debug, Clone)]
pub struct RelayConnectionPoolConfig {
    /// Limits of the pool of relayed connections to peers.
    pub connection_pool_config: ConnectionPoolConfig,
    /// Bootstrap relays (added to the network's relay discovery) and discovery settings.
    pub relay_discovery_config: RelayDiscoveryConfig,
    /// Most reservations held.
    pub max_relay_connections: usize,
    /// Fewest reservations held; below it the network reserves on the next best relay at once.
    pub min_relay_connections: usize,
    /// How often [`RelayConnectionPool::check_connections`] runs by itself (with `auto_connect`).
    pub connection_check_interval: Duration,
    /// Whether [`RelayConnectionPool::start`] keeps the reservations up by itself.
    pub auto_connect: bool,
    /// How relays are verified (needed by `require_relay_auth` and the relay auth methods).
    pub auth_config: Option<AuthManagerConfig>,
    /// Only use relays that prove themselves and hold `min_relay_auth_level`.
    pub require_relay_auth: bool,
    /// The level a relay must hold (from its proof, a token it shows, or trust).
    pub min_relay_auth_level: AuthorizationLevel,
}

impl Default for RelayConnectionPoolConfig {
    fn default() -> Self {
        Self {
            connection_pool_config: ConnectionPoolConfig::default(),
            relay_discovery_config: RelayDiscoveryConfig::default(),
            max_relay_connections: 3,
            min_relay_connections: 1,
            connection_check_interval: Duration::from_secs(60),
            auto_connect: true,
            auth_config: None,
            require_relay_auth: false,
            min_relay_auth_level: AuthorizationLevel::Relay,
        }
    }
}

/// A connection to a peer through a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedConnection {
    /// The peer reached.
    pub peer_id: PeerId,
    /// The relay the circuit runs through.
    pub relay_peer_id: PeerId,
    /// The circuit address dialed.
    pub address: Multiaddr,
}

/// A reservation held on a relay.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConnection {
    /// The relay.
    pub relay_peer_id: PeerId,
    /// Its score when chosen.
    pub score: f64,
}

/// Counts of the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayPoolStats {
    /// Relayed connections held.
    pub total_connections: usize,
    /// Relayed connections in use.
    pub in_use_connections: usize,
    /// Relayed connections idle.
    pub idle_connections: usize,
    /// Reservations held.
    pub connected_relays: usize,
    /// Relays known to discovery.
    pub known_relays: usize,
}

struct Inner {
    config: RelayConnectionPoolConfig,
    local_peer_id: PeerId,
    network: NetworkHandle,
    connections: ConnectionPool<RelayedConnection>,
    auth: Result<Option<Arc<AuthManager>>, crate::auth::AuthConfigError>,
}

/// Keeps reservations on the best relays and reaches peers through them. Cheap to clone.
#[derive(Clone)]
pub struct RelayConnectionPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RelayConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConnectionPool").field("local", &self.inner.local_peer_id).finish()
    }
}

impl RelayConnectionPool {
    /// A pool managing `network`'s relay reservations (see the module docs for the third argument).
    /// Nothing happens until [`start`](Self::start).
    pub fn new(config: RelayConnectionPoolConfig, local_peer_id: PeerId, network: NetworkHandle) -> Self {
        let auth = config
            .auth_config
            .clone()
            .map(|c| AuthManager::with_identity(c, network.shared().keypair.clone()).map(Arc::new))
            .transpose();
        let connections = ConnectionPool::new(config.connection_pool_config.clone());
        Self { inner: Arc::new(Inner { config, local_peer_id, network, connections, auth }) }
    }

    fn auth(&self) -> Result<&Arc<AuthManager>, Error> {
        match &self.inner.auth {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(AuthRequestError::NotConfigured.into()),
            Err(e) => Err(e.clone().into()),
        }
    }

    /// Registers the bootstrap relays, tells the network how many reservations to hold (and which
    /// relays to trust), and with `auto_connect` runs [`check_connections`](Self::check_connections)
    /// every `connection_check_interval` until the pool is dropped.
    pub async fn start(&self) -> Result<(), Error> {
        let c = &self.inner.config;
        if let Err(e) = &self.inner.auth {
            return Err(e.clone().into());
        }
        let discovery = self.inner.network.relay_discovery();
        for (peer, addr) in &c.relay_discovery_config.bootstrap_relays {
            discovery.add_relay_from(*peer, vec![addr.clone()], RelaySource::Bootstrap);
        }
        let policy = match (c.require_relay_auth, self.auth()) {
            (true, Ok(auth)) => {
                Some(crate::network::RelayPolicy { auth: auth.clone(), min_level: c.min_relay_auth_level })
            }
            (true, Err(e)) => return Err(e),
            (false, _) => None,
        };
        let min = if c.auto_connect { c.min_relay_connections } else { 0 };
        self.inner.network.set_relay_targets(min, policy).await?;
        if c.auto_connect {
            let weak = Arc::downgrade(&self.inner);
            crate::runtime::spawn(maintain(weak, c.connection_check_interval));
        }
        Ok(())
    }

    /// Reaches `peer_id` through a relay: an existing connection when reuse is on, else a circuit
    /// through each reserved (then each known) relay in score order until one works.
    pub async fn connect_via_relay(&self, peer_id: &PeerId) -> Result<RelayedConnection, Error> {
        let network = &self.inner.network;
        if let Some(c) = self.inner.connections.acquire(peer_id) {
            if network.connections().iter().any(|i| i.peer_id == *peer_id) {
                return Ok(c);
            }
            self.inner.connections.remove(peer_id);
        }
        let discovery = network.relay_discovery();
        let mut relays = discovery.get_best_relays(16);
        // Relays we hold reservations on first: they are known to be up.
        relays.sort_by_key(|r| !matches!(self.get_relay_status(&r.peer_id), RelayStatus::Reserved { .. }));
        let mut last = "no relay known".to_string();
        for relay in relays.into_iter().filter(|r| r.peer_id != *peer_id && r.peer_id != self.inner.local_peer_id) {
            let Some(addr) = relay.addrs.first() else { continue };
            let base = match addr.iter().last() {
                Some(Protocol::P2p(_)) => addr.clone(),
                _ => addr.clone().with(Protocol::P2p(relay.peer_id)),
            };
            let address = base.with(Protocol::P2pCircuit).with(Protocol::P2p(*peer_id));
            match network.dial_addr(address.clone()).await {
                Ok(_) => {
                    let conn = RelayedConnection { peer_id: *peer_id, relay_peer_id: relay.peer_id, address };
                    // A full pool of busy connections only means this one is not pooled.
                    let _ = self.inner.connections.insert(*peer_id, conn.clone());
                    return Ok(conn);
                }
                Err(e) => last = format!("through {}: {e}", relay.peer_id),
            }
        }
        Err(Error::Relay(format!("could not reach {peer_id} through a relay ({last})")))
    }

    /// Gives back a connection from [`connect_via_relay`](Self::connect_via_relay) for reuse.
    pub fn release_connection(&self, peer_id: &PeerId) {
        self.inner.connections.release(peer_id);
    }

    /// Reserves on the best relay not yet in use and returns it once the relay accepted.
    pub async fn connect_to_best_relay(&self) -> Result<RelayConnection, Error> {
        let relay = self.inner.network.reserve_on_best_relay().await?;
        let score = self.inner.network.relay_discovery().relay(&relay).map_or(0.0, |r| r.score());
        Ok(RelayConnection { relay_peer_id: relay, score })
    }

    /// One maintenance pass: prunes expired relays and stale connections, reserves until
    /// `min_relay_connections` are held, and releases the worst beyond `max_relay_connections`.
    pub async fn check_connections(&self) -> Result<(), Error> {
        let c = &self.inner.config;
        let network = &self.inner.network;
        let discovery = network.relay_discovery();
        discovery.prune_relays();
        self.inner.connections.prune();
        let live: std::collections::HashSet<PeerId> = network.connections().iter().map(|i| i.peer_id).collect();
        self.inner.connections.retain(|p, _| live.contains(p));
        let mut held = self.connected_relay_count();
        let mut last_error = None;
        while held < c.min_relay_connections {
            match self.connect_to_best_relay().await {
                Ok(_) => held += 1,
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        if held > c.max_relay_connections {
            let mut reserved: Vec<(PeerId, f64)> = self
                .reserved_relays()
                .into_iter()
                .map(|p| (p, discovery.relay(&p).map_or(0.0, |r| r.score())))
                .collect();
            reserved.sort_by(|a, b| a.1.total_cmp(&b.1));
            for (relay, _) in reserved.into_iter().take(held - c.max_relay_connections) {
                network.release_relay(relay).await?;
            }
        }
        match (held, last_error) {
            (0, Some(e)) if c.min_relay_connections > 0 => Err(e),
            _ => Ok(()),
        }
    }

    fn reserved_relays(&self) -> Vec<PeerId> {
        let shared = self.inner.network.shared();
        let map = shared.relay_status.lock().map(|m| m.clone()).unwrap_or_default();
        map.into_iter().filter(|(_, s)| matches!(s, RelayStatus::Reserved { .. })).map(|(p, _)| p).collect()
    }

    /// Where the pool stands with `peer_id`.
    pub fn get_relay_status(&self, peer_id: &PeerId) -> RelayStatus {
        let shared = self.inner.network.shared();
        if let Some(s) = shared.relay_status.lock().ok().and_then(|m| m.get(peer_id).cloned()) {
            return s;
        }
        match self.inner.network.relay_discovery().relay(peer_id) {
            Some(r) => RelayStatus::Known { score: r.score() },
            None => RelayStatus::Unknown,
        }
    }

    /// The relays known to the pool's network, with their scores.
    pub fn relay_discovery(&self) -> crate::relay_discovery::RelayDiscoveryManager {
        self.inner.network.relay_discovery()
    }

    /// Counts of relayed connections and relays.
    pub fn get_connection_stats(&self) -> RelayPoolStats {
        let s = self.inner.connections.stats();
        RelayPoolStats {
            total_connections: s.total_connections,
            in_use_connections: s.in_use_connections,
            idle_connections: s.idle_connections,
            connected_relays: self.connected_relay_count(),
            known_relays: self.inner.network.relay_discovery().len(),
        }
    }

    /// Reservations held now.
    pub fn connected_relay_count(&self) -> usize {
        self.reserved_relays().len()
    }

    /// A single-use challenge for `relay_id` to answer (needs `auth_config`).
    pub async fn generate_relay_challenge(&self, relay_id: &PeerId) -> Result<Challenge, Error> {
        Ok(self.auth()?.generate_challenge(relay_id).map_err(AuthRequestError::Proof)?)
    }

    /// Sends `challenge` to `relay_id` and returns its answer (check it with
    /// [`verify_relay_challenge_response`](Self::verify_relay_challenge_response)).
    pub async fn request_relay_proof(
        &self,
        relay_id: &PeerId,
        challenge: Challenge,
    ) -> Result<ChallengeResponse, Error> {
        let (response, token) = self.inner.network.ask_proof(*relay_id, challenge).await?;
        if let (Some(token), Ok(auth)) = (token, self.auth()) {
            // The relay's credential, if any, counts towards its level.
            let _ = auth.authenticate_with_token(relay_id, &token.to_bytes());
        }
        Ok(response)
    }

    /// Checks a relay's answer; its level must reach `min_relay_auth_level` when
    /// `require_relay_auth` is set.
    pub async fn verify_relay_challenge_response(
        &self,
        relay_id: &PeerId,
        response: &ChallengeResponse,
    ) -> Result<AuthorizationLevel, Error> {
        let auth = self.auth()?;
        let proved = auth.verify_response(relay_id, response).map_err(AuthRequestError::Proof)?.level;
        self.enough(relay_id, proved.max(auth.authorization_level(relay_id)))
    }

    /// Accepts a token `relay_id` presented; its level must reach `min_relay_auth_level` when
    /// `require_relay_auth` is set.
    pub async fn authenticate_relay(&self, relay_id: &PeerId, token: &[u8]) -> Result<AuthorizationLevel, Error> {
        let level = self.auth()?.authenticate_with_token(relay_id, token).map_err(AuthRequestError::Token)?;
        self.enough(relay_id, level)
    }

    /// Challenges `relay_id` over the network and checks its answer: the whole flow in one call.
    pub async fn verify_relay(&self, relay_id: &PeerId) -> Result<AuthorizationLevel, Error> {
        let challenge = self.generate_relay_challenge(relay_id).await?;
        let response = self.request_relay_proof(relay_id, challenge).await?;
        self.verify_relay_challenge_response(relay_id, &response).await
    }

    fn enough(&self, relay: &PeerId, level: AuthorizationLevel) -> Result<AuthorizationLevel, Error> {
        let c = &self.inner.config;
        if c.require_relay_auth && level < c.min_relay_auth_level {
            return Err(Error::Relay(format!("relay {relay} holds {level:?}, {:?} required", c.min_relay_auth_level)));
        }
        Ok(level)
    }
}

async fn maintain(pool: Weak<Inner>, every: Duration) {
    loop {
        futures_timer::Delay::new(every).await;
        let Some(inner) = pool.upgrade() else { return };
        if let Err(e) = (RelayConnectionPool { inner }).check_connections().await {
            tracing::warn!(error = %e, "relay pool check");
        }
    }
}

impl crate::metrics::ConnectionSource for RelayConnectionPool {
    fn connection_gauges(&self) -> crate::metrics::ConnectionGauges {
        let s = self.get_connection_stats();
        crate::metrics::ConnectionGauges {
            total: s.total_connections,
            active: s.in_use_connections,
            idle: s.idle_connections,
            relays: s.connected_relays,
        }
    }

    fn relay_scores(&self, max: usize) -> Vec<(String, f64)> {
        self.relay_discovery().get_best_relays(max).into_iter().map(|r| (r.peer_id.to_string(), r.score())).collect()
    }
}
