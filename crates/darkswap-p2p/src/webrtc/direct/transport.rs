//! [`Transport`]: WebRTC-direct as a libp2p transport (listening for browsers and dialing other
//! nodes' `/webrtc-direct/certhash/…` addresses).

use super::{
    listener::{self, Incoming, Setup},
    upgrade::{self, Side},
    Certificate, Connection, Error,
};
use crate::webrtc::rtc::{gather, sockets::Sockets};
use futures::{future::BoxFuture, FutureExt};
use libp2p::{
    core::{
        multiaddr::Protocol,
        transport::{DialOpts, ListenerId, TransportError, TransportEvent},
    },
    identity::Keypair,
    Multiaddr, PeerId,
};
use libp2p_webrtc_utils::Fingerprint;
use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type Upgrade = BoxFuture<'static, Result<(PeerId, Connection), Error>>;

/// How long a connection may take from the first datagram to the proven peer id.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes in flight on a connection before writers wait (see `WebRtcConfig::send_buffer`).
const SEND_BUFFER: usize = 256 * 1024;

/// WebRTC-direct over str0m: listens on `/ip4/…/udp/<port>/webrtc-direct` (announcing the
/// address with this node's `/certhash/…`) and dials such addresses.
pub struct Transport {
    keypair: Keypair,
    certificate: Certificate,
    listeners: Vec<Listener>,
    events: VecDeque<TransportEvent<Upgrade, Error>>,
}

struct Listener {
    id: ListenerId,
    incoming: mpsc::Receiver<Incoming>,
    stop: CancellationToken,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("certificate", &self.certificate).finish()
    }
}

impl Transport {
    /// A transport proving `keypair`'s peer id, presenting `certificate` in DTLS.
    pub fn new(keypair: Keypair, certificate: Certificate) -> Self {
        Self { keypair, certificate, listeners: Vec::new(), events: VecDeque::new() }
    }

    /// The certificate whose fingerprint the listening addresses carry.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    fn address(&self, addr: SocketAddr) -> Multiaddr {
        with_certhash(to_multiaddr(addr), self.certificate.fingerprint())
    }
}

/// A fresh ICE ufrag with libp2p's prefix. Shorter than libp2p-webrtc-utils' (81 characters):
/// str0m writes STUN usernames (`<ufrag>:<ufrag>`) of at most 128 bytes.
fn random_ufrag() -> String {
    use rand::{distributions::Alphanumeric, Rng};
    let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    format!("libp2p+webrtc+v1/{random}")
}

/// `/ip4|ip6/…/udp/<port>/webrtc-direct`.
fn to_multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty().with(addr.ip().into()).with(Protocol::Udp(addr.port())).with(Protocol::WebRTCDirect)
}

fn with_certhash(addr: Multiaddr, fingerprint: Fingerprint) -> Multiaddr {
    addr.with(Protocol::Certhash(fingerprint.to_multihash()))
}

/// The socket address of a listening address (`/ip4|ip6/…/udp/<port>/webrtc-direct`).
fn listen_target(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let Protocol::Udp(port) = parts.next()? else { return None };
    let Protocol::WebRTCDirect = parts.next()? else { return None };
    parts.next().is_none().then_some(SocketAddr::new(ip, port))
}

/// The local addresses a socket bound to `addr` is reachable at: `addr` itself, or every
/// interface address of its family when it is unspecified.
fn reachable_at(addr: SocketAddr) -> Vec<SocketAddr> {
    if !addr.ip().is_unspecified() {
        return vec![addr];
    }
    if_addrs::get_if_addrs()
        .map(|ifs| {
            ifs.into_iter()
                .map(|i| i.ip())
                .filter(|ip| ip.is_ipv4() == addr.is_ipv4())
                .map(|ip| SocketAddr::new(ip, addr.port()))
                .collect()
        })
        .unwrap_or_default()
}

/// A UDP socket for dialing `remote`, on the local address the kernel routes it from (str0m
/// needs the concrete address of its candidate).
fn dial_socket(remote: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let unspecified: IpAddr =
        if remote.is_ipv4() { std::net::Ipv4Addr::UNSPECIFIED.into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
    let probe = std::net::UdpSocket::bind(SocketAddr::new(unspecified, 0))?;
    probe.connect(remote)?;
    gather::bind(SocketAddr::new(probe.local_addr()?.ip(), 0))
}

impl libp2p::core::Transport for Transport {
    type Output = (PeerId, Connection);
    type Error = Error;
    type ListenerUpgrade = Upgrade;
    type Dial = Upgrade;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        let target = listen_target(&addr).ok_or(TransportError::MultiaddrNotSupported(addr))?;
        let socket = gather::bind(target).map_err(|e| TransportError::Other(Error::Io(e)))?;
        let bound = socket.local_addr().map_err(|e| TransportError::Other(Error::Io(e)))?;
        let setup = Setup {
            keypair: self.keypair.clone(),
            certificate: self.certificate.dtls(),
            send_buffer: SEND_BUFFER,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        };
        let stop = CancellationToken::new();
        let incoming = listener::spawn(socket, setup, stop.clone());
        for local in reachable_at(bound) {
            self.events.push_back(TransportEvent::NewAddress { listener_id: id, listen_addr: self.address(local) });
        }
        self.listeners.push(Listener { id, incoming, stop });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|l| l.id != id);
        if self.listeners.len() == before {
            return false;
        }
        self.events.push_back(TransportEvent::ListenerClosed { listener_id: id, reason: Ok(()) });
        true
    }

    fn dial(&mut self, addr: Multiaddr, _opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        let (remote, fingerprint) =
            libp2p_webrtc_utils::parse_webrtc_dial_addr(&addr).ok_or(TransportError::MultiaddrNotSupported(addr))?;
        let digest: [u8; 32] = fingerprint
            .to_multihash()
            .digest()
            .try_into()
            .map_err(|_| TransportError::Other(Error::Rtc("certhash is not a SHA-256 digest".into())))?;
        let (keypair, certificate) = (self.keypair.clone(), self.certificate.dtls());
        Ok(async move {
            let socket = dial_socket(remote)?;
            let local = socket.local_addr()?;
            let ufrag = random_ufrag();
            let side = Side::Client(digest);
            let rtc = upgrade::rtc(&side, certificate, SEND_BUFFER, &ufrag, local, remote)?;
            let net = Sockets::new(vec![socket], Vec::new());
            tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade::connect(side, keypair, rtc, net))
                .await
                .map_err(|_| Error::Timeout(HANDSHAKE_TIMEOUT))?
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        let this = &mut *self;
        for i in 0..this.listeners.len() {
            match this.listeners[i].incoming.poll_recv(cx) {
                Poll::Ready(Some(incoming)) => {
                    let listener_id = this.listeners[i].id;
                    return Poll::Ready(TransportEvent::Incoming {
                        listener_id,
                        upgrade: incoming.upgrade,
                        local_addr: this.address(incoming.local),
                        send_back_addr: to_multiaddr(incoming.remote),
                    });
                }
                Poll::Ready(None) => {
                    let listener = this.listeners.remove(i);
                    return Poll::Ready(TransportEvent::ListenerClosed {
                        listener_id: listener.id,
                        reason: Err(Error::Closed),
                    });
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_addresses_take_no_certhash_and_name_udp() {
        assert!(listen_target(&"/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap()).is_some());
        assert!(listen_target(&"/ip4/127.0.0.1/tcp/0/webrtc-direct".parse().unwrap()).is_none());
        assert!(listen_target(&"/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()).is_none());
        let cert = Certificate::generate().unwrap();
        let dial = with_certhash(to_multiaddr("127.0.0.1:9003".parse().unwrap()), cert.fingerprint());
        assert!(listen_target(&dial).is_none());
        let (addr, fingerprint) = libp2p_webrtc_utils::parse_webrtc_dial_addr(&dial).unwrap();
        assert_eq!((addr.port(), fingerprint), (9003, cert.fingerprint()));
    }
}
