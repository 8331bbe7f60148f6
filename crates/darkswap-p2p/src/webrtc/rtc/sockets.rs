//! The UDP side of a native connection: the sockets of its local candidates and its TURN
//! allocations. str0m names a candidate's address as the source of each datagram it wants sent;
//! this maps that to a socket, or through a TURN server for relayed candidates.
//!
//! A data channel at speed makes runs of equal-size datagrams to one peer (a 16 KiB message is
//! about fourteen SCTP packets). They are held while str0m is drained and leave together, as one
//! GSO send where the kernel offers it: the per-datagram system calls were a quarter of the CPU.

use super::turn::{Datagram, Received, Relay};
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use std::{
    io::IoSliceMut,
    net::SocketAddr,
    ops::Range,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};
use str0m::net::Transmit;
use tokio::{
    io::{Interest, ReadBuf},
    net::UdpSocket,
    sync::mpsc,
};

/// Largest run sent at once: the kernel's segment limit, and a UDP datagram's 64 KiB.
const MAX_SEGMENTS: usize = 64;
const MAX_BATCH_BYTES: usize = 65_000;
/// Failed reads of one socket in a row before the others get their turn.
const MAX_FAILED_READS: usize = 8;

/// Datagrams waiting to leave together: same socket, same peer, all `segment` bytes long but
/// perhaps the last.
struct Batch {
    socket: usize,
    to: SocketAddr,
    segment: usize,
    count: usize,
    /// A shorter datagram was added; it has to be the last.
    closed: bool,
    buf: Vec<u8>,
}

/// What a received datagram turned out to be.
pub(crate) enum Unwrapped {
    /// A datagram straight from a peer.
    Direct,
    /// A peer's datagram that a TURN server relayed to one of our relayed candidates.
    Relayed { peer: SocketAddr, relayed: SocketAddr, data: Vec<u8> },
    /// TURN's own traffic.
    Handled,
}

/// A datagram a listener read for one of its connections: contents, from, to.
pub(crate) struct Demuxed {
    pub data: Vec<u8>,
    pub from: SocketAddr,
    pub to: SocketAddr,
}

/// The sockets of one connection, with the TURN allocations made through some of them; or the
/// one socket it shares with the other connections of a WebRTC-direct listener, which reads it
/// and hands this connection its datagrams.
pub(crate) struct Sockets {
    sockets: Vec<Arc<UdpSocket>>,
    locals: Vec<Option<SocketAddr>>,
    /// quinn-udp's state per socket, for GSO; `None` where it could not be set up.
    gso: Vec<Option<Arc<UdpSocketState>>>,
    /// Set on a shared socket: where this connection's datagrams arrive.
    demuxed: Option<mpsc::Receiver<Demuxed>>,
    /// Set on a shared socket bound to an unspecified address: the source address to send from.
    src_ip: Option<std::net::IpAddr>,
    relays: Vec<Relay>,
    batch: Option<Batch>,
    /// A spare buffer for the next batch.
    spare: Vec<u8>,
    /// Datagrams of the last read not handed out yet.
    held: Option<Held>,
    /// Where the next receive starts looking.
    next: usize,
}

/// The rest of a read that brought several datagrams of `stride` bytes (the last may be shorter).
struct Held {
    next: usize,
    end: usize,
    stride: usize,
    from: SocketAddr,
    to: SocketAddr,
}

impl Sockets {
    pub(crate) fn new(sockets: Vec<UdpSocket>, relays: Vec<Relay>) -> Self {
        let locals = sockets.iter().map(|s| s.local_addr().ok()).collect();
        let gso = sockets.iter().map(|s| UdpSocketState::new(UdpSockRef::from(s)).ok().map(Arc::new)).collect();
        let sockets = sockets.into_iter().map(Arc::new).collect();
        Self::assemble(sockets, locals, gso, None, relays)
    }

    /// A connection on a listener's `socket`, reached at `local`; its datagrams come on `rx`.
    pub(crate) fn shared(
        socket: Arc<UdpSocket>,
        state: Option<Arc<UdpSocketState>>,
        local: SocketAddr,
        rx: mpsc::Receiver<Demuxed>,
    ) -> Self {
        let mut s = Self::assemble(vec![socket.clone()], vec![Some(local)], vec![state], Some(rx), Vec::new());
        s.src_ip = socket.local_addr().is_ok_and(|a| a.ip().is_unspecified()).then_some(local.ip());
        s
    }

    fn assemble(
        sockets: Vec<Arc<UdpSocket>>,
        locals: Vec<Option<SocketAddr>>,
        gso: Vec<Option<Arc<UdpSocketState>>>,
        demuxed: Option<mpsc::Receiver<Demuxed>>,
        relays: Vec<Relay>,
    ) -> Self {
        Self {
            sockets,
            locals,
            gso,
            demuxed,
            src_ip: None,
            relays,
            batch: None,
            spare: Vec::new(),
            held: None,
            next: 0,
        }
    }

    fn socket_for(&self, local: SocketAddr) -> Option<&UdpSocket> {
        self.locals.iter().position(|l| *l == Some(local)).map(|i| &*self.sockets[i])
    }

    /// Sends what str0m asked for, from the socket (or through the relay) of its source. Direct
    /// datagrams may wait in the batch: [`flush`](Self::flush) once str0m is drained.
    pub(crate) async fn send(&mut self, t: Transmit) {
        if let Some(relay) = self.relays.iter_mut().find(|r| r.relayed == t.source) {
            let (local, server) = (relay.local, relay.server);
            let wrapped = relay.send_to(t.destination, &t.contents);
            let (more, _) = relay.poll();
            self.flush().await;
            if let Some(data) = wrapped {
                self.send_from(local, &data, server).await;
            }
            for (data, to) in more {
                self.send_from(local, &data, to).await;
            }
            return;
        }
        // The candidate's socket; another of the same family if that one is gone.
        let index = self
            .locals
            .iter()
            .position(|l| *l == Some(t.source))
            .or_else(|| self.locals.iter().position(|l| l.is_some_and(|l| l.is_ipv4() == t.destination.is_ipv4())));
        let Some(index) = index else { return };
        let len = t.contents.len();
        let max_segments = self.max_segments(index);
        if let Some(b) = &mut self.batch {
            let fits = b.socket == index
                && b.to == t.destination
                && !b.closed
                && len <= b.segment
                && b.count < max_segments
                && b.buf.len() + len <= MAX_BATCH_BYTES;
            if fits {
                b.buf.extend_from_slice(&t.contents);
                b.count += 1;
                b.closed = len < b.segment;
                return;
            }
        }
        self.flush().await;
        let mut buf = std::mem::take(&mut self.spare);
        buf.extend_from_slice(&t.contents);
        self.batch = Some(Batch { socket: index, to: t.destination, segment: len, count: 1, closed: false, buf });
    }

    fn max_segments(&self, socket: usize) -> usize {
        self.gso[socket].as_ref().map_or(1, |s| s.max_gso_segments().min(MAX_SEGMENTS))
    }

    /// Sends the batch, if any.
    pub(crate) async fn flush(&mut self) {
        let Some(mut b) = self.batch.take() else { return };
        let socket = &self.sockets[b.socket];
        match &self.gso[b.socket] {
            Some(state) => {
                let transmit = quinn_udp::Transmit {
                    destination: b.to,
                    ecn: None,
                    contents: &b.buf,
                    segment_size: (b.count > 1).then_some(b.segment),
                    src_ip: self.src_ip,
                };
                loop {
                    match socket.try_io(Interest::WRITABLE, || state.send(UdpSockRef::from(socket), &transmit)) {
                        Ok(()) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            if socket.writable().await.is_err() {
                                break;
                            }
                        }
                        // An unreachable candidate: ICE finds out by itself.
                        Err(_) => break,
                    }
                }
            }
            None => {
                for datagram in b.buf.chunks(b.segment) {
                    send(socket, datagram, b.to).await;
                }
            }
        }
        b.buf.clear();
        self.spare = b.buf;
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

    /// Deletes every TURN allocation (sent once, not waited for: the connection is over, and a
    /// lost deletion only leaves the allocation to expire on its own).
    pub(crate) async fn release_relays(&mut self) {
        let mut due: Vec<(SocketAddr, Datagram)> = Vec::new();
        for relay in &mut self.relays {
            due.extend(relay.delete().into_iter().map(|d| (relay.local, d)));
        }
        for (local, (data, to)) in due {
            self.send_from(local, &data, to).await;
        }
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

    /// The next datagram on any socket: where it lies in `buf`, from, to; `None` once no more
    /// can come (the listener of a shared socket is gone). The caller passes the same buffer
    /// each time: one read may bring several datagrams (GRO, where quinn-udp turns it on), and
    /// the rest are handed out from it first.
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> Option<(Range<usize>, SocketAddr, SocketAddr)> {
        if let Some(rx) = &mut self.demuxed {
            let d = rx.recv().await?;
            let n = d.data.len().min(buf.len());
            buf[..n].copy_from_slice(&d.data[..n]);
            return Some((0..n, d.from, d.to));
        }
        if let Some(h) = &mut self.held {
            let start = h.next;
            let end = (start + h.stride).min(h.end);
            h.next = end;
            let (from, to) = (h.from, h.to);
            if end >= h.end {
                self.held = None;
            }
            return Some((start..end, from, to));
        }
        let count = self.sockets.len();
        if count == 0 {
            return std::future::pending().await;
        }
        let (len, stride, from, to) = std::future::poll_fn(|cx| {
            // Rotate the first socket asked so a busy one cannot starve the others.
            let mut unsettled = false;
            for k in 0..count {
                let i = (self.next + k) % count;
                let Some(to) = self.locals[i] else { continue };
                // A read that fails (an ICMP error for an earlier send) is retried, so the
                // socket ends up pending with the waker set, or yields a datagram.
                let mut pending = false;
                for _ in 0..MAX_FAILED_READS {
                    match self.poll_socket(i, cx, buf) {
                        Poll::Ready(Some((len, stride, from))) => {
                            self.next = (i + 1) % count;
                            return Poll::Ready((len, stride, from, to));
                        }
                        Poll::Ready(None) => continue,
                        Poll::Pending => {
                            pending = true;
                            break;
                        }
                    }
                }
                unsettled |= !pending;
            }
            // A socket still failing after that many reads gets another turn soon.
            if unsettled {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await;
        let stride = if stride == 0 { len } else { stride };
        if stride < len {
            self.held = Some(Held { next: stride, end: len, stride, from, to });
        }
        Some((0..stride.min(len), from, to))
    }

    /// One read from socket `i`: (length, segment size, from), or pending with the waker set.
    fn poll_socket(&self, i: usize, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Option<(usize, usize, SocketAddr)>> {
        poll_read(&self.sockets[i], self.gso[i].as_deref(), cx, buf).map(|r| r.map(|r| (r.len, r.stride, r.from)))
    }
}

/// One read: its length, its segment size (0: one datagram), the sender and the local address
/// it was sent to (where the kernel says).
pub(crate) struct Read {
    pub len: usize,
    pub stride: usize,
    pub from: SocketAddr,
    pub dst_ip: Option<std::net::IpAddr>,
}

/// One read from `socket` (through quinn-udp when `state` is set, for GRO), or pending with the
/// waker set; `None` for a read that failed (an ICMP error for an earlier send).
pub(crate) fn poll_read(
    socket: &UdpSocket,
    state: Option<&UdpSocketState>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<Option<Read>> {
    let Some(state) = state else {
        let mut rb = ReadBuf::new(buf);
        return match socket.poll_recv_from(cx, &mut rb) {
            Poll::Ready(Ok(from)) => Poll::Ready(Some(Read { len: rb.filled().len(), stride: 0, from, dst_ip: None })),
            Poll::Ready(Err(_)) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        };
    };
    loop {
        match socket.poll_recv_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        }
        let mut meta = [RecvMeta::default()];
        let read = socket.try_io(Interest::READABLE, || {
            state.recv(UdpSockRef::from(socket), &mut [IoSliceMut::new(&mut *buf)], &mut meta)
        });
        match read {
            Ok(n) if n > 0 => {
                let m = &meta[0];
                return Poll::Ready(Some(Read { len: m.len, stride: m.stride, from: m.addr, dst_ip: m.dst_ip }));
            }
            Ok(_) => return Poll::Ready(None),
            // Readiness was stale; asking again registers the waker.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return Poll::Ready(None),
        }
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
