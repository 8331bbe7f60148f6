//! Per-IP caps on inbound connections, which rust-libp2p's `connection_limits` does not have
//! (the per-IP part of [`ResourceLimits`](crate::network::ResourceLimits)).

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

/// Why [`IpLimits`] refused a connection.
#[derive(Debug, thiserror::Error)]
#[error("{count} inbound connections from {ip} already (limit {limit})")]
pub(crate) struct IpLimitExceeded {
    /// The address.
    pub ip: IpAddr,
    /// Its connections when this one came.
    pub count: u32,
    /// The limit.
    pub limit: u32,
}

/// Caps inbound connections per remote IP address.
#[derive(Debug)]
pub(crate) struct IpLimits {
    per_ip: HashMap<IpAddr, u32>,
    connections: HashMap<ConnectionId, IpAddr>,
    limit: u32,
    limit_loopback: bool,
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
