//! Caps on what peers can make a node hold: connections (in total, per peer, per IP, pending)
//! and gossip topics per peer. [`ResourceLimits`] configures them; [`IpLimits`] is the per-IP
//! part, which rust-libp2p's `connection_limits` does not have.

use libp2p::{
    core::{transport::PortUse, Endpoint},
    multiaddr::Protocol,
    swarm::{
        dummy, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};
use std::{
    collections::HashMap,
    convert::Infallible,
    net::IpAddr,
    task::{Context, Poll},
};

/// Resource caps of a node (set with
/// [`NetworkBuilder::resource_limits`](super::NetworkBuilder::resource_limits)). A relay-mode
/// node raises `max_connections` by its reservation and circuit limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Established connections in total.
    pub max_connections: u32,
    /// Established connections with one peer.
    pub max_connections_per_peer: u32,
    /// Inbound connections (pending or established) from one IP address. Relayed connections
    /// are not counted against the relay's IP.
    pub max_inbound_per_ip: u32,
    /// Whether `max_inbound_per_ip` also applies to loopback (off by default: local tools and
    /// tests run many nodes on one machine).
    pub limit_loopback: bool,
    /// Inbound connections still in their handshake.
    pub max_pending_incoming: u32,
    /// Outbound dials in progress.
    pub max_pending_outgoing: u32,
    /// Gossip topics one peer may be subscribed to, as this node tracks them; subscriptions
    /// beyond it are refused (the whole request).
    pub max_topics_per_peer: usize,
    /// Subscription changes in one gossip RPC.
    pub max_subscriptions_per_rpc: usize,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_peer: 4,
            max_inbound_per_ip: 16,
            limit_loopback: false,
            max_pending_incoming: 128,
            max_pending_outgoing: 128,
            max_topics_per_peer: 64,
            max_subscriptions_per_rpc: 128,
        }
    }
}

/// Why [`IpLimits`] refused a connection.
#[derive(Debug, thiserror::Error)]
#[error("{count} inbound connections from {ip} already (limit {limit})")]
pub struct IpLimitExceeded {
    /// The address.
    pub ip: IpAddr,
    /// Its connections when this one came.
    pub count: u32,
    /// The limit.
    pub limit: u32,
}

/// Caps inbound connections per remote IP address.
#[derive(Debug)]
pub struct IpLimits {
    limit: u32,
    limit_loopback: bool,
    per_ip: HashMap<IpAddr, u32>,
    connections: HashMap<ConnectionId, IpAddr>,
}

impl IpLimits {
    /// Allows `limit` inbound connections per IP (loopback too if `limit_loopback`).
    pub fn new(limit: u32, limit_loopback: bool) -> Self {
        Self { limit, limit_loopback, per_ip: HashMap::new(), connections: HashMap::new() }
    }

    /// The IP a connection is counted under, if any.
    fn ip_of(&self, addr: &Multiaddr) -> Option<IpAddr> {
        if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            return None;
        }
        let ip = addr.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })?;
        (self.limit_loopback || !ip.is_loopback()).then_some(ip)
    }

    fn release(&mut self, id: ConnectionId) {
        if let Some(ip) = self.connections.remove(&id) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

impl NetworkBehaviour for IpLimits {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = self.ip_of(remote) else { return Ok(()) };
        let count = self.per_ip.get(&ip).copied().unwrap_or(0);
        if count >= self.limit {
            tracing::debug!(%ip, count, "inbound connection refused: per-IP limit");
            return Err(ConnectionDenied::new(IpLimitExceeded { ip, count, limit: self.limit }));
        }
        self.per_ip.insert(ip, count + 1);
        self.connections.insert(id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => self.release(connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_ip_and_releases() {
        let mut l = IpLimits::new(2, false);
        let local: Multiaddr = "/ip4/10.0.0.1/tcp/9000".parse().unwrap();
        let remote: Multiaddr = "/ip4/203.0.113.7/tcp/5555".parse().unwrap();
        let ids: Vec<_> = (0..3).map(|_| ConnectionId::new_unchecked(rand::random())).collect();
        assert!(l.handle_pending_inbound_connection(ids[0], &local, &remote).is_ok());
        assert!(l.handle_pending_inbound_connection(ids[1], &local, &remote).is_ok());
        assert!(l.handle_pending_inbound_connection(ids[2], &local, &remote).is_err());
        l.release(ids[0]);
        assert!(l.handle_pending_inbound_connection(ids[2], &local, &remote).is_ok());
        let loopback: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let relayed: Multiaddr =
            "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
                .parse()
                .unwrap();
        for addr in [loopback, relayed] {
            assert!(l.handle_pending_inbound_connection(ConnectionId::new_unchecked(9), &local, &addr).is_ok());
        }
    }
}
