//! A WebRTC-direct listener: one UDP socket shared by all its connections. One task reads it
//! and routes each datagram by its sender to that connection's task. A STUN binding request
//! from a new sender, made with the client's ufrag (its own password, libp2p's rule), joins the
//! connection of that ufrag if one is running, else starts a new connection: a browser checks
//! the listener from each of its own addresses (127.0.0.1 and the LAN address, say) and may pick
//! any of those pairs, so each must reach the one ICE agent of that connection.

use super::{
    upgrade::{self, Side},
    Connection, Error,
};
use crate::webrtc::rtc::{
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
/// Client addresses one connection is reached from (one per candidate of the client's that
/// checked us); binding requests from more are ignored.
const MAX_ADDRS_PER_CONNECTION: usize = 8;
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
        ufrags: HashMap::new(),
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
    /// Each running connection by its client's ufrag, with how many client addresses route to it.
    ufrags: HashMap<String, (mpsc::Sender<Demuxed>, usize)>,
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
                    self.sweep();
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

    /// Forgets the routes of connections that ended.
    fn sweep(&mut self) {
        self.routes.retain(|_, tx| !tx.is_closed());
        self.ufrags.retain(|_, (tx, _)| !tx.is_closed());
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
        if let Some((tx, addrs)) = self.ufrags.get_mut(&ufrag).filter(|(tx, _)| !tx.is_closed()) {
            // Another address of a client whose connection runs: its ICE agent answers the check.
            if *addrs < MAX_ADDRS_PER_CONNECTION && tx.try_send(Demuxed { data: data.to_vec(), from, to }).is_ok() {
                *addrs += 1;
                self.routes.insert(from, tx.clone());
            }
            return;
        }
        if self.ufrags.len() >= MAX_CONNECTIONS {
            self.sweep();
            if self.ufrags.len() >= MAX_CONNECTIONS {
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
            self.routes.insert(from, tx.clone());
            self.ufrags.insert(ufrag, (tx, 1));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webrtc::direct::Certificate;
    use str0m::ice::TransId;

    /// A libp2p client's binding request with `ufrag` (both halves of the username, and the
    /// password), as a browser sends from each of its candidates.
    fn binding_request(ufrag: &str) -> Vec<u8> {
        let username = format!("{ufrag}:{ufrag}");
        let request = StunMessage::binding_request(&username, TransId::new(), true, 7, 1_000, false);
        let mut buf = vec![0u8; 1500];
        let n = request.to_bytes(Some(ufrag.as_bytes()), &mut buf, hmac_sha1).expect("encodes");
        buf.truncate(n);
        buf
    }

    async fn answered(socket: &UdpSocket, to: SocketAddr, request: &[u8]) {
        let mut buf = vec![0u8; 1500];
        let wait = async {
            // Lost datagrams are resent, as an ICE agent would.
            loop {
                socket.send_to(request, to).await.expect("sends");
                if let Ok(Ok((n, _))) =
                    tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await
                {
                    let reply = StunMessage::parse(&buf[..n]).expect("a STUN reply");
                    assert!(reply.is_successful_binding_response());
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait).await.expect("the listener answers the check");
    }

    /// A client checking the listener from two of its addresses with one ufrag makes one
    /// connection, whose ICE agent answers both checks (a second connection would take the pair
    /// the browser might nominate and leave the first one to die of lost consent).
    #[tokio::test]
    async fn checks_from_a_second_client_address_join_the_connection_of_their_ufrag() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let listening = socket.local_addr().unwrap();
        let setup = Setup {
            keypair: Keypair::generate_ed25519(),
            certificate: Certificate::generate().unwrap().dtls(),
            send_buffer: 256 * 1024,
            handshake_timeout: Duration::from_secs(10),
        };
        let stop = CancellationToken::new();
        let mut incoming = spawn(socket, setup, stop.clone());
        let (a, b) = (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.2:0").await.unwrap());
        let ufrag = "libp2p+webrtc+v1/4Cq7bDxo9sXyT2ZfUaPq1KvW0n3Lm8Jr";
        let request = binding_request(ufrag);
        a.send_to(&request, listening).await.unwrap();
        let started = tokio::time::timeout(Duration::from_secs(5), incoming.recv());
        let first = started.await.expect("the check started a connection").expect("the listener runs");
        assert_eq!(first.remote, a.local_addr().unwrap());
        // The connection's task starts when its upgrade is polled, as the transport's user does.
        let handshake = tokio::spawn(first.upgrade);
        answered(&a, listening, &request).await;
        answered(&b, listening, &binding_request(ufrag)).await;
        assert!(incoming.try_recv().is_err(), "the second address made a connection of its own");
        handshake.abort();

        // Another ufrag is another client: a connection of its own.
        b.send_to(&binding_request("libp2p+webrtc+v1/other"), listening).await.unwrap();
        let started = tokio::time::timeout(Duration::from_secs(5), incoming.recv());
        let other = started.await.expect("a second connection").expect("the listener runs");
        assert_eq!(other.remote, b.local_addr().unwrap());
        stop.cancel();
    }
}
