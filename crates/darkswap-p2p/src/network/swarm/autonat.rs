//! Reachability with AutoNAT v2: peers dial each candidate address back from a fresh port.
//!
//! AutoNAT v1 dials back from the port the server listens on. Behind a NAT that already holds a
//! mapping towards that very port (every QUIC connection to the server does), the dial-back walks
//! through the open mapping, so a NATed node never learns that it is private. v2's server dials
//! from a new port, which a NAT without an open mapping for it drops: a failed test means the
//! address is not reachable from the outside.
//!
//! v2's client only asks peers it dialed, though, so a node with inbound connections only (a
//! relay, typically) would never learn anything; AutoNAT v1 keeps running beside it, and its
//! verdict counts too. [`Client`] wraps v2's client to keep non-global candidates (loopback,
//! private ranges) out of its tests unless configured otherwise; [`Verdict`] turns v1's status and
//! v2's per-address results into one [`Reachability`].

use crate::network::Reachability;
use libp2p::{
    autonat::{v2::client, NatStatus},
    swarm::{ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm},
    Multiaddr, PeerId,
};
use std::{
    collections::HashSet,
    net::IpAddr,
    task::{Context, Poll},
};

/// Most addresses remembered as unreachable.
const MAX_FAILED: usize = 64;

/// AutoNAT v2 client that tests only global addresses when `global_only` is set, and reports
/// each change of this node's [`Reachability`].
pub struct Client {
    inner: client::Behaviour,
    global_only: bool,
    verdict: Verdict,
}

impl Client {
    /// A client probing candidates every few seconds.
    pub fn new(global_only: bool) -> Self {
        Self { inner: client::Behaviour::default(), global_only, verdict: Verdict::default() }
    }

    /// Takes AutoNAT v1's new status; returns the new reachability if it changed.
    pub fn v1_status(&mut self, status: NatStatus) -> Option<Reachability> {
        self.verdict.v1(status)
    }
}

impl NetworkBehaviour for Client {
    type ConnectionHandler = THandler<client::Behaviour>;
    type ToSwarm = Reachability;

    crate::network::wrappers::delegate_connection_setup!(inner, std::convert::identity);

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::NewExternalAddrCandidate(c) = &event {
            // A relayed address is reachable by definition, through the relay: testing it says
            // nothing about this node's own reachability.
            if is_relayed(c.addr) || (self.global_only && !is_global(c.addr)) {
                return;
            }
        }
        self.inner.on_swarm_event(event)
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, id: ConnectionId, event: THandlerOutEvent<Self>) {
        self.inner.on_connection_handler_event(peer, id, event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        loop {
            let Poll::Ready(action) = self.inner.poll(cx) else { return Poll::Pending };
            let mut changed = None;
            let action = action.map_out(|test| {
                let reached = test.result.is_ok();
                tracing::debug!(addr = %test.tested_addr, server = %test.server, reached, "AutoNAT v2 test");
                changed = self.verdict.record(test.tested_addr, reached);
            });
            match (action, changed) {
                (ToSwarm::GenerateEvent(()), Some(r)) => return Poll::Ready(ToSwarm::GenerateEvent(r)),
                (ToSwarm::GenerateEvent(()), None) => continue,
                // Not an event, so the mapping below never runs.
                (other, _) => return Poll::Ready(other.map_out(|()| self.verdict.current())),
            }
        }
    }
}

/// Whether `addr` goes through a relay circuit.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2pCircuit))
}

/// Whether `addr` starts with an IP address routable on the public internet.
pub fn is_global(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => is_global_ip(IpAddr::V4(ip)),
        Some(Protocol::Ip6(ip)) => is_global_ip(IpAddr::V6(ip)),
        // A DNS name is resolved by whoever dials it; treat it as meant to be public.
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => true,
        _ => false,
    }
}

fn is_global_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)) // documentation
        }
    }
}

/// This node's reachability: public once v1 or any v2 test reached it from outside, private
/// when v1 says so or v2's tests all failed.
#[derive(Debug, Default)]
pub struct Verdict {
    v1: Option<NatStatus>,
    reachable: Option<Multiaddr>,
    failed: HashSet<Multiaddr>,
}

impl Verdict {
    /// Takes AutoNAT v1's status; returns the new reachability if it changed.
    pub fn v1(&mut self, status: NatStatus) -> Option<Reachability> {
        let before = self.current();
        // v1 also probes relayed listen addresses, which any relay client "passes".
        self.v1 = match status {
            NatStatus::Public(addr) if is_relayed(&addr) => None,
            other => Some(other),
        };
        let after = self.current();
        (after != before).then_some(after)
    }

    /// Takes one v2 test result; returns the new reachability if it changed.
    pub fn record(&mut self, tested: Multiaddr, reached: bool) -> Option<Reachability> {
        if is_relayed(&tested) {
            return None;
        }
        let before = self.current();
        if reached {
            self.failed.remove(&tested);
            self.reachable.get_or_insert(tested);
        } else if self.reachable.as_ref() == Some(&tested) {
            self.reachable = None;
            self.remember_failed(tested);
        } else {
            self.remember_failed(tested);
        }
        let after = self.current();
        (after != before).then_some(after)
    }

    fn remember_failed(&mut self, addr: Multiaddr) {
        if self.failed.len() < MAX_FAILED {
            self.failed.insert(addr);
        }
    }

    /// The reachability the results so far add up to.
    pub fn current(&self) -> Reachability {
        match (&self.v1, &self.reachable) {
            (Some(NatStatus::Public(addr)), _) | (_, Some(addr)) => Reachability::Public(addr.clone()),
            (Some(NatStatus::Private), None) => Reachability::Private,
            _ if !self.failed.is_empty() => Reachability::Private,
            _ => Reachability::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_addresses() {
        for (addr, global) in [
            ("/ip4/8.8.8.8/tcp/1", true),
            ("/ip4/10.0.0.1/tcp/1", false),
            ("/ip4/127.0.0.1/udp/1/quic-v1", false),
            ("/ip4/198.18.1.2/tcp/1", false),
            ("/ip4/100.64.0.1/tcp/1", false),
            ("/ip6/2a00::1/tcp/1", true),
            ("/ip6/fd00::1/tcp/1", false),
            ("/ip6/::1/tcp/1", false),
            ("/dns4/relay.example/tcp/1", true),
        ] {
            assert_eq!(is_global(&addr.parse().unwrap()), global, "{addr}");
        }
    }

    #[test]
    fn verdict_is_public_once_reached_and_private_while_all_failed() {
        let (a, b): (Multiaddr, Multiaddr) =
            ("/ip4/1.2.3.4/tcp/1".parse().unwrap(), "/ip4/1.2.3.4/udp/1".parse().unwrap());
        let mut v = Verdict::default();
        assert_eq!(v.current(), Reachability::Unknown);
        assert_eq!(v.record(a.clone(), false), Some(Reachability::Private));
        assert_eq!(v.record(a.clone(), false), None);
        assert_eq!(v.record(b.clone(), true), Some(Reachability::Public(b.clone())));
        assert_eq!(v.record(a.clone(), false), None);
        assert_eq!(v.record(b.clone(), false), Some(Reachability::Private));
        // v1 reaching the node counts as public, and v2's failures cannot overrule it.
        assert_eq!(v.v1(NatStatus::Public(a.clone())), Some(Reachability::Public(a.clone())));
        assert_eq!(v.record(b, false), None);
        assert_eq!(v.v1(NatStatus::Unknown), Some(Reachability::Private));
        // Through a relay every node is reachable; that is not public.
        let circuit: Multiaddr =
            "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWLbRDEyF8UQAiQUCY51V7BdUu1ZT6vgMcaWcJL6kHLhEx/p2p-circuit".parse().unwrap();
        assert_eq!(v.v1(NatStatus::Public(circuit.clone())), None);
        assert_eq!(v.record(circuit, true), None);
        assert_eq!(v.current(), Reachability::Private);
    }
}
