//! The UDP side of a native connection: the sockets of its local candidates and its TURN
//! allocations. str0m names a candidate's address as the source of each datagram it wants sent;
//! this maps that to a socket, or through a TURN server for relayed candidates.

use super::relay::{Datagram, Received, Relay};
use std::{net::SocketAddr, task::Poll, time::Instant};
use str0m::net::Transmit;
use tokio::{io::ReadBuf, net::UdpSocket};

/// What a received datagram turned out to be.
pub(crate) enum Unwrapped {
    /// A datagram straight from a peer.
    Direct,
    /// A peer's datagram that a TURN server relayed to one of our relayed candidates.
    Relayed { peer: SocketAddr, relayed: SocketAddr, data: Vec<u8> },
    /// TURN's own traffic.
    Handled,
}

/// The sockets of one connection, with the TURN allocations made through some of them.
pub(crate) struct Sockets {
    sockets: Vec<UdpSocket>,
    locals: Vec<Option<SocketAddr>>,
    relays: Vec<Relay>,
    /// Where the next receive starts looking.
    next: usize,
}

impl Sockets {
    pub(crate) fn new(sockets: Vec<UdpSocket>, relays: Vec<Relay>) -> Self {
        let locals = sockets.iter().map(|s| s.local_addr().ok()).collect();
        Self { sockets, locals, relays, next: 0 }
    }

    fn socket_for(&self, local: SocketAddr) -> Option<&UdpSocket> {
        self.locals.iter().position(|l| *l == Some(local)).map(|i| &self.sockets[i])
    }

    /// Sends what str0m asked for, from the socket (or through the relay) of its source.
    pub(crate) async fn send(&mut self, t: Transmit) {
        if let Some(relay) = self.relays.iter_mut().find(|r| r.relayed == t.source) {
            let (local, server) = (relay.local, relay.server);
            let wrapped = relay.send_to(t.destination, &t.contents);
            let (more, _) = relay.poll();
            if let Some(data) = wrapped {
                self.send_from(local, &data, server).await;
            }
            for (data, to) in more {
                self.send_from(local, &data, to).await;
            }
            return;
        }
        // The candidate's socket; another of the same family if that one is gone.
        let socket = self.socket_for(t.source).or_else(|| {
            let i = self.locals.iter().position(|l| l.is_some_and(|l| l.is_ipv4() == t.destination.is_ipv4()))?;
            Some(&self.sockets[i])
        });
        if let Some(socket) = socket {
            send(socket, &t.contents, t.destination).await;
        }
    }

    async fn send_from(&self, local: SocketAddr, data: &[u8], to: SocketAddr) {
        if let Some(socket) = self.socket_for(local) {
            send(socket, data, to).await;
        }
    }

    /// Unwraps a datagram that arrived on `to` from `from` if a TURN server sent it.
    pub(crate) fn unwrap_relayed(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) -> Unwrapped {
        for relay in self.relays.iter_mut().filter(|r| r.local == to) {
            match relay.recv(from, data) {
                Received::NotMine => {}
                Received::Handled => return Unwrapped::Handled,
                Received::Peer(peer, data) => return Unwrapped::Relayed { peer, relayed: relay.relayed, data },
            }
        }
        Unwrapped::Direct
    }

    /// Sends what the TURN clients have due (refreshes, permissions); returns when they next
    /// need attention.
    pub(crate) async fn service_relays(&mut self) -> Option<Instant> {
        if self.relays.is_empty() {
            return None;
        }
        let mut wake: Option<Instant> = None;
        let mut due: Vec<(SocketAddr, Datagram)> = Vec::new();
        for relay in &mut self.relays {
            let (out, next) = relay.poll();
            due.extend(out.into_iter().map(|d| (relay.local, d)));
            wake = match (wake, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        for (local, (data, to)) in due {
            self.send_from(local, &data, to).await;
        }
        wake
    }

    /// The next datagram on any socket: (length, from, to).
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, SocketAddr, SocketAddr)> {
        let count = self.sockets.len();
        if count == 0 {
            return std::future::pending().await;
        }
        std::future::poll_fn(|cx| {
            // Rotate the first socket asked so a busy one cannot starve the others.
            for k in 0..count {
                let i = (self.next + k) % count;
                let mut rb = ReadBuf::new(buf);
                match self.sockets[i].poll_recv_from(cx, &mut rb) {
                    Poll::Ready(Ok(from)) => {
                        self.next = (i + 1) % count;
                        let Some(to) = self.locals[i] else { continue };
                        return Poll::Ready(Some((rb.filled().len(), from, to)));
                    }
                    // An ICMP error for an earlier send (port unreachable): nothing to read.
                    Poll::Ready(Err(_)) => continue,
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        })
        .await
    }
}

async fn send(socket: &UdpSocket, data: &[u8], to: SocketAddr) {
    match socket.try_send_to(data, to) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            let _ = socket.send_to(data, to).await;
        }
        // An unreachable candidate: ICE finds out by itself.
        Err(_) => {}
    }
}
