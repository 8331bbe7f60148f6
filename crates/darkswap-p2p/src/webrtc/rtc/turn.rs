//! TURN (RFC 8656) over UDP for native connections: an allocation on a TURN server becomes a
//! relayed local candidate, and the connection's task wraps what str0m sends from it and
//! unwraps what the server relays back. The protocol itself is turn-client-proto's (sans-IO);
//! this file only carries its datagrams.

use crate::webrtc::IceServer;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::net::UdpSocket;
use turn_client_proto::{
    api::{TurnClientApi, TurnConfig, TurnEvent, TurnPollRet, TurnRecvRet},
    prelude::DelayedTransmitBuild,
    stun::{types::TransportType, Instant as TurnInstant},
    types::TurnCredentials,
    udp::TurnClientUdp,
};

/// Longest wait for an allocation before the description goes out without it.
pub(crate) const ALLOCATE_WAIT: Duration = Duration::from_millis(1500);
/// Port of a `turn:` URL without one (RFC 8656).
const TURN_PORT: u16 = 3478;
/// Most TURN servers asked per connection.
const MAX_RELAYS: usize = 4;

/// A datagram to send: bytes and destination.
pub(crate) type Datagram = (Vec<u8>, SocketAddr);

/// What became of a datagram offered to [`Relay::recv`].
pub(crate) enum Received {
    /// Not from this relay's server.
    NotMine,
    /// TURN's own traffic, handled.
    Handled,
    /// A peer's datagram, relayed: (from peer, bytes).
    Peer(SocketAddr, Vec<u8>),
}

/// One allocation on one TURN server, reached from one local socket.
pub(crate) struct Relay {
    client: TurnClientUdp,
    /// The local socket's address (where the server is reached from).
    pub local: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// The relayed address: the candidate peers send to.
    pub relayed: SocketAddr,
    /// The zero of turn-client-proto's clock.
    epoch: Instant,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("server", &self.server).field("relayed", &self.relayed).finish()
    }
}

fn turn_now(epoch: Instant) -> TurnInstant {
    TurnInstant::from_nanos(i64::try_from(epoch.elapsed().as_nanos()).unwrap_or(i64::MAX))
}

/// `host:port` from a URL's `host[:port]` part (an IPv6 host in brackets), `port` if it has none:
/// STUN and TURN URLs alike.
pub(crate) fn with_port(hostport: &str, port: u16) -> String {
    let bracketed = hostport.starts_with('[') && hostport.ends_with(']');
    if !bracketed && hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        hostport.to_string()
    } else {
        format!("{hostport}:{port}")
    }
}

/// `(host:port, username, password)` of every `turn:` URL over UDP.
pub(crate) fn turn_servers(servers: &[IceServer]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for s in servers {
        for url in &s.urls {
            let Some(rest) = url.strip_prefix("turn:") else { continue };
            let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
            if query.split('&').any(|kv| kv.starts_with("transport=") && kv != "transport=udp") {
                continue; // TURN over TCP is not offered by the native stack
            }
            out.push((with_port(hostport, TURN_PORT), s.username.clone(), s.credential.clone()));
        }
    }
    out.truncate(MAX_RELAYS);
    out
}

impl Relay {
    fn now(&self) -> TurnInstant {
        turn_now(self.epoch)
    }

    /// Allocates on `server` from `socket` (which nothing else reads meanwhile), within
    /// [`ALLOCATE_WAIT`].
    pub(crate) async fn allocate(socket: &UdpSocket, server: SocketAddr, user: &str, password: &str) -> Option<Relay> {
        let local = socket.local_addr().ok()?;
        let epoch = Instant::now();
        let mut client = TurnClientUdp::allocate(local, server, TurnConfig::new(TurnCredentials::new(user, password)));
        let deadline = tokio::time::Instant::now() + ALLOCATE_WAIT;
        let mut buf = vec![0u8; 2048];
        loop {
            let now = turn_now(epoch);
            while let Some(t) = client.poll_transmit(now) {
                let _ = socket.send_to(t.data.as_ref(), t.to).await;
            }
            while let Some(event) = client.poll_event() {
                match event {
                    TurnEvent::AllocationCreated(_, relayed) => {
                        return Some(Relay { client, local, server, relayed, epoch });
                    }
                    TurnEvent::AllocationCreateFailed(family) => {
                        tracing::debug!(%server, ?family, "TURN allocation refused");
                        return None;
                    }
                    _ => {}
                }
            }
            let wake = match client.poll(now) {
                TurnPollRet::WaitUntil(t) => tokio::time::Instant::from_std(t.to_std(epoch)).min(deadline),
                TurnPollRet::Closed => return None,
                _ => deadline,
            };
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!(%server, "TURN allocation timed out");
                return None;
            }
            if let Ok(Ok((n, from))) = tokio::time::timeout_at(wake, socket.recv_from(&mut buf)).await {
                if from == server {
                    let transmit = turn_client_proto::stun::agent::Transmit {
                        data: &buf[..n],
                        transport: TransportType::Udp,
                        from,
                        to: local,
                    };
                    let _ = client.recv(transmit, turn_now(epoch));
                }
            }
        }
    }

    /// Wraps `data` for `peer`; `None` while the permission for the peer is being made (str0m
    /// sends its checks again, and those then pass).
    pub(crate) fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
        let now = self.now();
        match self.client.send_to(TransportType::Udp, peer, data, now) {
            Ok(Some(t)) => Some(t.data.build()),
            Ok(None) => None,
            Err(turn_client_proto::api::SendError::NoPermission) => {
                if let Err(e) = self.client.create_permission(TransportType::Udp, peer.ip(), now) {
                    tracing::debug!(%peer, "TURN permission not requested: {e}");
                }
                None
            }
            Err(e) => {
                tracing::debug!(%peer, "TURN send failed: {e}");
                None
            }
        }
    }

    /// Offers a datagram that arrived on the relay's socket.
    pub(crate) fn recv(&mut self, from: SocketAddr, data: &[u8]) -> Received {
        if from != self.server {
            return Received::NotMine;
        }
        let transmit =
            turn_client_proto::stun::agent::Transmit { data, transport: TransportType::Udp, from, to: self.local };
        match self.client.recv(transmit, self.now()) {
            TurnRecvRet::PeerData(p) => Received::Peer(p.peer, p.data().to_vec()),
            TurnRecvRet::Ignored(_) => Received::NotMine,
            _ => Received::Handled,
        }
    }

    /// The request that deletes the allocation (a refresh with lifetime 0), so the server frees
    /// it now rather than when its lifetime runs out; nothing if there is no allocation.
    pub(crate) fn delete(&mut self) -> Vec<Datagram> {
        let now = self.now();
        if let Err(e) = self.client.delete(now) {
            tracing::debug!(server = %self.server, "TURN allocation not deleted: {e}");
            return Vec::new();
        }
        let mut out = Vec::new();
        while let Some(t) = self.client.poll_transmit(now) {
            out.push((t.data.as_ref().to_vec(), t.to));
        }
        out
    }

    /// TURN's own datagrams due now (refreshes, permissions), and when to ask again.
    pub(crate) fn poll(&mut self) -> (Vec<Datagram>, Option<Instant>) {
        let now = self.now();
        let wake = match self.client.poll(now) {
            TurnPollRet::WaitUntil(t) => Some(t.to_std(self.epoch)),
            _ => None,
        };
        let mut out = Vec::new();
        while let Some(t) = self.client.poll_transmit(now) {
            out.push((t.data.as_ref().to_vec(), t.to));
        }
        while let Some(event) = self.client.poll_event() {
            tracing::debug!(server = %self.server, ?event, "TURN");
        }
        (out, wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_over_udp_only() {
        let servers = [IceServer {
            urls: vec![
                "turn:turn.example.org".into(),
                "turn:198.51.100.7:3479?transport=udp".into(),
                "turn:198.51.100.7:3479?transport=tcp".into(),
                "stun:stun.example.org".into(),
            ],
            username: "u".into(),
            credential: "p".into(),
        }];
        let got: Vec<String> = turn_servers(&servers).into_iter().map(|(h, _, _)| h).collect();
        assert_eq!(got, ["turn.example.org:3478", "198.51.100.7:3479"]);
    }
}
