//! Listeners and connections: listens and dials awaiting their outcome, the listen addresses and
//! connection table handles read, and what a new or closed connection means for the other parts.

use super::Task;
use crate::{error::Error, network::ConnectionInfo, network::NetworkEvent};
use darkswap_support::types::PeerId;
use futures::channel::oneshot;
use libp2p::{
    core::{transport::ListenerId, ConnectedPoint},
    multiaddr::Protocol,
    swarm::{dial_opts::DialOpts, ConnectionId},
    Multiaddr,
};
use std::collections::HashMap;

/// Where a dial's outcome goes.
pub(super) type DialReply = oneshot::Sender<Result<PeerId, Error>>;

/// Listens and dials started by handles, until the swarm reports how they went.
#[derive(Default)]
pub(super) struct Connections {
    listens: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr, Error>>>,
    dials: HashMap<ConnectionId, DialReply>,
}

/// Whether `addr` is a direct address on a specific IP (not 0.0.0.0 / ::, not a circuit).
pub(super) fn is_specific(addr: &Multiaddr) -> bool {
    addr.iter().all(|p| match p {
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        Protocol::P2pCircuit => false,
        _ => true,
    })
}

/// How far an address is reachable: only on this host, on a private network, or from anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Loopback,
    Private,
    Global,
}

fn scope(addr: &Multiaddr) -> Scope {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) if ip.is_loopback() => Scope::Loopback,
        // 100.64.0.0/10: carrier-grade NAT, as private as RFC 1918 for this purpose.
        Some(Protocol::Ip4(ip))
            if ip.is_private() || ip.is_link_local() || ip.octets()[0] == 100 && ip.octets()[1] & 0xc0 == 64 =>
        {
            Scope::Private
        }
        Some(Protocol::Ip6(ip)) if ip.is_loopback() => Scope::Loopback,
        // fc00::/7 unique local, fe80::/10 link-local.
        Some(Protocol::Ip6(ip)) if ip.segments()[0] & 0xfe00 == 0xfc00 || ip.segments()[0] & 0xffc0 == 0xfe80 => {
            Scope::Private
        }
        _ => Scope::Global,
    }
}

/// Whether a peer's listen address `addr` is worth telling others (Kademlia) about, given the
/// address we reach that peer at: a peer we reach over the internet may list its loopback and
/// LAN addresses, which for anyone else name some other host (dialling them reaches the wrong
/// peer, or the dialler itself, and a dial's first failure ends it); a peer on our LAN or host
/// may be reached on them.
pub(super) fn worth_sharing(addr: &Multiaddr, reached_at: &Multiaddr) -> bool {
    is_specific(addr) && scope(addr) >= scope(reached_at)
}

/// The relay in a `/…/p2p/<relay>/p2p-circuit/…` address.
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last_peer = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => last_peer = Some(peer),
            Protocol::P2pCircuit => return last_peer,
            _ => {}
        }
    }
    None
}

impl Task {
    pub(super) fn listen(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<Multiaddr, Error>>) {
        match self.swarm.listen_on(addr.clone()) {
            Ok(id) => {
                self.connections.listens.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(Error::Listen(format!("{addr}: {e}"))));
            }
        }
    }

    pub(super) fn dial(&mut self, addr: Multiaddr, reply: DialReply) {
        self.add_known_peer(&addr);
        let opts = DialOpts::from(addr.clone());
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.peers_on_asked_dial(id);
                self.connections.dials.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(Error::Dial(format!("{addr}: {e}"))));
            }
        }
    }

    /// Closes every listener and connection (the task stops after).
    pub(super) fn close_all(&mut self) {
        let listeners: Vec<_> = self.connections.listens.drain().map(|(id, _)| id).collect();
        for id in listeners {
            self.swarm.remove_listener(id);
        }
        let peers: Vec<_> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    pub(super) fn on_new_listen_addr(&mut self, listener_id: ListenerId, address: Multiaddr) {
        tracing::info!(%address, "listening");
        if self.discovery.relay_mode() && is_specific(&address) {
            // A relay bound to a specific IP is reachable there (it was configured so);
            // a wildcard bind needs an explicit external address.
            self.swarm.add_external_address(address.clone());
        }
        if let Ok(mut a) = self.shared.listen_addrs.lock() {
            if !a.contains(&address) {
                a.push(address.clone());
            }
        }
        if let Some(reply) = self.connections.listens.remove(&listener_id) {
            let _ = reply.send(Ok(address));
        }
    }

    pub(super) fn on_expired_listen_addr(&mut self, address: &Multiaddr) {
        if let Ok(mut a) = self.shared.listen_addrs.lock() {
            a.retain(|x| x != address);
        }
    }

    /// A listener closed (a circuit listener is the relay part's, handled before this).
    pub(super) fn on_listener_closed(
        &mut self,
        listener_id: ListenerId,
        reason: Result<(), std::io::Error>,
        addresses: &[Multiaddr],
    ) {
        if let Ok(mut a) = self.shared.listen_addrs.lock() {
            a.retain(|x| !addresses.contains(x));
        }
        if let Some(reply) = self.connections.listens.remove(&listener_id) {
            let why = match reason {
                Ok(()) => "listener closed".to_string(),
                Err(e) => e.to_string(),
            };
            let _ = reply.send(Err(Error::Listen(why)));
        }
    }

    pub(super) fn on_listener_error(&mut self, listener_id: ListenerId, error: std::io::Error) {
        tracing::warn!(error = %error, "listener error");
        if let Some(reply) = self.connections.listens.remove(&listener_id) {
            let _ = reply.send(Err(Error::Listen(error.to_string())));
        }
    }

    pub(super) fn on_connection_established(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        endpoint: ConnectedPoint,
        first: bool,
    ) {
        let (addr, local) = match &endpoint {
            ConnectedPoint::Dialer { address, .. } => (address.clone(), None),
            ConnectedPoint::Listener { send_back_addr, local_addr } => {
                (send_back_addr.clone(), Some(local_addr.clone()))
            }
        };
        let info = ConnectionInfo {
            peer_id,
            remote_addr: addr.clone(),
            relayed: endpoint.is_relayed(),
            outbound: endpoint.is_dialer(),
        };
        if let Ok(mut c) = self.shared.connections.lock() {
            c.insert(connection_id, info);
        }
        // Answer the dialer only now: whoever awaited the dial may read `connections()` next.
        if let Some(reply) = self.connections.dials.remove(&connection_id) {
            let _ = reply.send(Ok(peer_id));
        }
        if first {
            tracing::info!(peer = %peer_id, %addr, "peer connected");
            self.emit(NetworkEvent::PeerConnected(peer_id));
            self.sync_on_connect(peer_id, endpoint.is_dialer());
        }
        if let Some(relay) = relay_of(&addr).or_else(|| local.as_ref().and_then(relay_of)) {
            self.emit(NetworkEvent::ConnectedThroughRelay { relay_peer_id: relay, dst_peer_id: peer_id });
        }
    }

    /// A connection closed; `lost` when it was the last and neither this node nor idleness
    /// closed it (see `sync_on_connect`).
    pub(super) fn on_connection_closed(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        last: bool,
        lost: bool,
    ) {
        if let Ok(mut c) = self.shared.connections.lock() {
            c.remove(&connection_id);
        }
        if !last {
            return;
        }
        if let Ok(mut a) = self.shared.activity.lock() {
            a.remove(&peer_id);
        }
        self.sync.on_disconnected(peer_id, lost);
        self.reconcile.on_disconnected(&peer_id);
        self.after_pages();
        self.ingest.forget(&peer_id);
        self.emit(NetworkEvent::PeerDisconnected(peer_id));
    }

    pub(super) fn on_dial_failed(&mut self, connection_id: ConnectionId, error: String) {
        if let Some(reply) = self.connections.dials.remove(&connection_id) {
            let _ = reply.send(Err(Error::Dial(error)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::worth_sharing;
    use libp2p::Multiaddr;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    /// A peer reached over the internet shares only its public addresses; one on the LAN also
    /// its LAN ones; one on this host everything specific. Circuits and wildcards never.
    #[test]
    fn only_addresses_others_can_reach_are_shared() {
        let public = a("/ip4/11.0.0.2/tcp/9000");
        let lan = a("/ip4/192.168.1.20/tcp/9000");
        let cgnat = a("/ip4/100.64.3.4/tcp/9000");
        let ula = a("/ip6/fd00::1/tcp/9000");
        let local = a("/ip4/127.0.0.1/tcp/9000");
        let wildcard = a("/ip4/0.0.0.0/tcp/9000");
        let circuit = a("/ip4/11.0.0.9/tcp/9000/p2p/12D3KooWR7cN9WdZqKrLocWs6rWEMR1Xqxd45nYGWqT9ysC43qxP/p2p-circuit");
        let dns = a("/dns4/relay.example/tcp/443/wss");
        for (reached_at, shared) in [
            (&public, vec![&public, &dns]),
            (&lan, vec![&public, &lan, &cgnat, &ula, &dns]),
            (&local, vec![&public, &lan, &cgnat, &ula, &local, &dns]),
        ] {
            for addr in [&public, &lan, &cgnat, &ula, &local, &wildcard, &circuit, &dns] {
                assert_eq!(worth_sharing(addr, reached_at), shared.contains(&addr), "{addr} reached at {reached_at}");
            }
        }
    }
}
