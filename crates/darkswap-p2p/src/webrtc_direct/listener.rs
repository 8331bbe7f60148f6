//! A WebRTC-direct listener: one UDP socket shared by all its connections. One task reads it
//! and routes each datagram by its sender to that connection's task; a STUN binding request
//! from a new sender, made with the client's ufrag (its own password, libp2p's rule), starts a
//! new connection.

use super::{
    upgrade::{self, Side},
    Connection, Error,
};
use crate::webrtc_connection::{
    gather::hmac_sha1,
    sockets::{poll_read, Demuxed, Sockets},
};
use futures::{future::BoxFuture, FutureExt};
use libp2p::{identity::Keypair, PeerId};
use quinn_udp::{UdpSockRef, UdpSocketState};
use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};
use str0m::{config::DtlsCert, ice::StunMessage};
use tokio::{
    net::UdpSocket,
    sync::{mpsc, Semaphore},
};
use tokio_util::sync::CancellationToken;

/// Connections one listener serves at once; binding requests from further senders are ignored.
const MAX_CONNECTIONS: usize = 1024;
/// Connections coming up at once (DTLS and Noise cost CPU); further newcomers are ignored until
/// one is done, and their clients retry.
const MAX_HANDSHAKES: usize = 64;
/// Datagrams waiting for a connection's task; beyond that they are dropped, as a full socket
/// buffer would, and SCTP sends them again.
const ROUTE_QUEUE: usize = 256;
/// Accepted connections the transport has not taken yet.
const INCOMING_QUEUE: usize = 16;
/// Longest ufrag taken (RFC 8445 allows 256 characters).
const MAX_UFRAG: usize = 256;
/// How often routes of ended connections are dropped.
const SWEEP: Duration = Duration::from_secs(10);

/// What every connection of a listener is made with.
pub(crate) struct Setup {
    pub keypair: Keypair,
    pub certificate: DtlsCert,
    pub send_buffer: usize,
    pub handshake_timeout: Duration,
}

/// A connection a client started: its handshake, and the addresses it runs between.
pub(crate) struct Incoming {
    pub upgrade: BoxFuture<'static, Result<(PeerId, Connection), Error>>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Serves `socket` until `stop` is cancelled; accepted connections arrive on the receiver,
/// which closes when the socket fails.
pub(crate) fn spawn(socket: UdpSocket, setup: Setup, stop: CancellationToken) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
    let state = UdpSocketState::new(UdpSockRef::from(&socket)).ok().map(Arc::new);
    let bound = socket.local_addr().ok();
    let demux = Demux {
        socket: Arc::new(socket),
        state,
        setup: Arc::new(setup),
        routes: HashMap::new(),
        handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
        incoming: tx,
    };
    tokio::spawn(async move {
        let Some(bound) = bound else { return };
        tokio::select! {
            _ = stop.cancelled() => {}
            reason = demux.run(bound) => tracing::warn!(%bound, "WebRTC-direct listener stopped: {reason}"),
        }
    });
    rx
}

struct Demux {
    socket: Arc<UdpSocket>,
    state: Option<Arc<UdpSocketState>>,
    setup: Arc<Setup>,
    routes: HashMap<SocketAddr, mpsc::Sender<Demuxed>>,
    handshakes: Arc<Semaphore>,
    incoming: mpsc::Sender<Incoming>,
}

impl Demux {
    async fn run(mut self, bound: SocketAddr) -> String {
        // One read may bring a GRO batch of up to 64 KiB.
        let mut buf = vec![0u8; 64 * 1024];
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            let read = tokio::select! {
                _ = sweep.tick() => {
                    self.routes.retain(|_, tx| !tx.is_closed());
                    continue;
                }
                read = std::future::poll_fn(|cx| poll_read(&self.socket, self.state.as_deref(), cx, &mut buf)) => read,
            };
            if self.incoming.is_closed() {
                return "the transport is gone".into();
            }
            // A failed read is an ICMP error for an earlier send: nothing to route.
            let Some(read) = read else { continue };
            let to = SocketAddr::new(read.dst_ip.unwrap_or(bound.ip()), bound.port());
            let stride = if read.stride == 0 { read.len } else { read.stride };
            for datagram in buf[..read.len].chunks(stride) {
                self.route(datagram, read.from, to);
            }
        }
    }

    fn route(&mut self, data: &[u8], from: SocketAddr, to: SocketAddr) {
        if let Some(tx) = self.routes.get(&from) {
            match tx.try_send(Demuxed { data: data.to_vec(), from, to }) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => return,
                // That connection ended: the sender may be starting a new one.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.routes.remove(&from);
                }
            }
        }
        let Some(ufrag) = client_ufrag(data) else { return };
        if self.routes.len() >= MAX_CONNECTIONS {
            self.routes.retain(|_, tx| !tx.is_closed());
            if self.routes.len() >= MAX_CONNECTIONS {
                tracing::debug!(%from, "WebRTC-direct listener full; binding request ignored");
                return;
            }
        }
        let Ok(permit) = self.handshakes.clone().try_acquire_owned() else {
            tracing::debug!(%from, "too many WebRTC-direct handshakes at once; binding request ignored");
            return;
        };
        let setup = &self.setup;
        let rtc = match upgrade::rtc(&Side::Server, setup.certificate.clone(), setup.send_buffer, &ufrag, to, from) {
            Ok(rtc) => rtc,
            Err(e) => {
                tracing::debug!(%from, "WebRTC-direct connection refused: {e}");
                return;
            }
        };
        let (tx, rx) = mpsc::channel(ROUTE_QUEUE);
        let _ = tx.try_send(Demuxed { data: data.to_vec(), from, to });
        let net = Sockets::shared(self.socket.clone(), self.state.clone(), to, rx);
        let (keypair, timeout) = (setup.keypair.clone(), setup.handshake_timeout);
        let upgrade = async move {
            let _permit = permit;
            tokio::time::timeout(timeout, upgrade::connect(Side::Server, keypair, rtc, net))
                .await
                .map_err(|_| Error::Timeout(timeout))?
        }
        .boxed();
        if self.incoming.try_send(Incoming { upgrade, local: to, remote: from }).is_ok() {
            self.routes.insert(from, tx);
        } else {
            tracing::debug!(%from, "WebRTC-direct connections are not being taken; binding request ignored");
        }
    }
}

/// The ufrag of a STUN binding request that a libp2p WebRTC-direct client sent us: the
/// `<ours>:<theirs>` username's first half, which also keys the message's integrity.
fn client_ufrag(data: &[u8]) -> Option<String> {
    let message = StunMessage::parse(data).ok()?;
    if !message.is_binding_request() {
        return None;
    }
    let (ours, _) = message.split_username()?;
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    if ours.len() < 4 || ours.len() > MAX_UFRAG || !ours.chars().all(legal) {
        return None;
    }
    message.verify(ours.as_bytes(), hmac_sha1).then(|| ours.to_owned())
}
