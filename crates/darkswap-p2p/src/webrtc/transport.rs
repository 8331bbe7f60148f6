//! [`WebRtcTransport`]: WebRTC through a signaling server as a libp2p [`Transport`], so a
//! [`Network`](crate::network::Network) dials and accepts peers over it like over TCP.
//!
//! Addresses: the transport takes any address ending in `/webrtc/p2p/<peer id>` (without
//! `/p2p-circuit`); what comes before `/webrtc` is not used, because the signaling server is
//! configured on the transport. Listening on an address ending in `/webrtc` registers with that
//! server and announces `<server address>/webrtc` (for `ws://127.0.0.1:9001/signaling`:
//! `/ip4/127.0.0.1/tcp/9001/ws/webrtc`).
//!
//! A dial negotiates a [`WebRtcConnection`] (whose identity handshake proves the remote peer id,
//! whatever the signaling server says) and runs Yamux on its libp2p data channel. The seam the
//! browser build implements with web-sys is the same: a signaling client that yields proven
//! connections with a byte stream.

use crate::webrtc::{
    signaled::{WebRtcConnection, WebRtcSignalingClient},
    signaling::SignalingError,
    WebRtcError,
};
use futures::{future::BoxFuture, FutureExt};
use libp2p::{
    core::{
        multiaddr::Protocol,
        muxing::StreamMuxerBox,
        transport::{DialOpts, ListenerId, TransportError, TransportEvent},
        upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo},
        Transport,
    },
    Multiaddr, PeerId,
};
use std::{
    collections::VecDeque,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

type Upgrade = BoxFuture<'static, Result<(PeerId, StreamMuxerBox), WebRtcError>>;

/// The libp2p transport over signaling-server WebRTC.
pub struct WebRtcTransport {
    local_peer_id: PeerId,
    signaling: Option<Arc<WebRtcSignalingClient>>,
    server_url: Option<String>,
    listener: Option<(ListenerId, Multiaddr)>,
    accept: Option<BoxFuture<'static, Option<Arc<WebRtcConnection>>>>,
    events: VecDeque<TransportEvent<Upgrade, WebRtcError>>,
}

impl std::fmt::Debug for WebRtcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcTransport")
            .field("local_peer_id", &self.local_peer_id)
            .field("server_url", &self.server_url)
            .finish()
    }
}

impl WebRtcTransport {
    /// A transport for `local_peer_id` negotiating through `signaling_client` (which must hold
    /// the identity key of `local_peer_id` to register and connect).
    pub fn with_signaling_client(local_peer_id: PeerId, signaling_client: Option<Arc<WebRtcSignalingClient>>) -> Self {
        Self {
            local_peer_id,
            signaling: signaling_client,
            server_url: None,
            listener: None,
            accept: None,
            events: VecDeque::new(),
        }
    }

    /// Sets the server URL used by [`connect_to_signaling_server`](Self::connect_to_signaling_server)
    /// and by listening.
    pub fn set_signaling_server(&mut self, url: String) {
        self.server_url = Some(url);
    }

    /// The signaling client.
    pub fn signaling_client(&self) -> Option<&Arc<WebRtcSignalingClient>> {
        self.signaling.as_ref()
    }

    /// Registers with the configured server (a no-op if the client already is).
    pub async fn connect_to_signaling_server(&self) -> Result<(), SignalingError> {
        let client = self.signaling.as_ref().ok_or(SignalingError::NoIdentityKey)?;
        let url = self.server_url.as_deref().ok_or(SignalingError::NotConnected)?;
        client.connect(url).await
    }

    /// Dials `addr` (`…/webrtc/p2p/<peer>`) and returns the raw connection with its named data
    /// channels, outside of any swarm. (A [`Network`](crate::network::Network) uses the
    /// [`Transport`] implementation instead, which adds Yamux.)
    #[allow(clippy::type_complexity)]
    pub fn dial(
        &mut self,
        addr: Multiaddr,
    ) -> Result<BoxFuture<'static, Result<Arc<WebRtcConnection>, WebRtcError>>, TransportError<WebRtcError>> {
        let peer = dial_target(&addr).ok_or(TransportError::MultiaddrNotSupported(addr))?;
        let client = self.client()?;
        let url = self.server_url.clone();
        Ok(async move {
            register_if_needed(&client, url.as_deref()).await?;
            client.connect_to_peer(&peer).await
        }
        .boxed())
    }

    fn client(&self) -> Result<Arc<WebRtcSignalingClient>, TransportError<WebRtcError>> {
        self.signaling.clone().ok_or(TransportError::Other(WebRtcError::Signaling(SignalingError::NoIdentityKey)))
    }
}

/// Dialing needs a registration: made on first use when the server URL is known.
async fn register_if_needed(client: &WebRtcSignalingClient, url: Option<&str>) -> Result<(), WebRtcError> {
    match url {
        Some(url) if !client.is_registered() => Ok(client.connect(url).await?),
        _ => Ok(()),
    }
}

/// The peer of a `…/webrtc/p2p/<peer>` address.
fn dial_target(addr: &Multiaddr) -> Option<PeerId> {
    let mut it = addr.iter().collect::<Vec<_>>().into_iter().rev();
    let peer = match it.next()? {
        Protocol::P2p(p) => p,
        _ => return None,
    };
    if !matches!(it.next()?, Protocol::WebRTC) || addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return None;
    }
    Some(peer)
}

/// `ws://host:port/…` as `/ip4|ip6|dns/host/tcp/port/ws|wss`.
fn url_to_multiaddr(url: &str) -> Option<Multiaddr> {
    let (secure, rest) = match url.split_once("://")? {
        ("ws", r) => (false, r),
        ("wss", r) => (true, r),
        _ => return None,
    };
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut addr = Multiaddr::empty();
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => addr.push(Protocol::Ip4(ip)),
        Ok(std::net::IpAddr::V6(ip)) => addr.push(Protocol::Ip6(ip)),
        Err(_) => addr.push(Protocol::Dns(host.to_owned().into())),
    }
    addr.push(Protocol::Tcp(port));
    addr.push(if secure { Protocol::Wss("/".into()) } else { Protocol::Ws("/".into()) });
    Some(addr)
}

/// Yamux on the connection's libp2p channel; the dialer is the Yamux client.
async fn with_yamux(conn: Arc<WebRtcConnection>, dialer: bool) -> Result<(PeerId, StreamMuxerBox), WebRtcError> {
    let stream = conn.take_stream().ok_or(WebRtcError::Closed)?;
    let cfg = libp2p::yamux::Config::default();
    let info = cfg.protocol_info().next().ok_or(WebRtcError::Closed)?;
    let muxer = if dialer { cfg.upgrade_outbound(stream, info).await } else { cfg.upgrade_inbound(stream, info).await }
        .map_err(|e| WebRtcError::Rtc(e.to_string()))?;
    Ok((conn.remote_peer_id(), StreamMuxerBox::new(KeepAlive { muxer, _conn: conn })))
}

/// The muxer, holding the WebRTC connection open for as long as libp2p uses it.
struct KeepAlive<M> {
    muxer: M,
    _conn: Arc<WebRtcConnection>,
}

impl<M: libp2p::core::muxing::StreamMuxer + Unpin> libp2p::core::muxing::StreamMuxer for KeepAlive<M> {
    type Substream = M::Substream;
    type Error = M::Error;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        Pin::new(&mut self.get_mut().muxer).poll_inbound(cx)
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        Pin::new(&mut self.get_mut().muxer).poll_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().muxer).poll_close(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<libp2p::core::muxing::StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.get_mut().muxer).poll(cx)
    }
}

impl Transport for WebRtcTransport {
    type Output = (PeerId, StreamMuxerBox);
    type Error = WebRtcError;
    type ListenerUpgrade = Upgrade;
    type Dial = Upgrade;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        if !matches!(addr.iter().last(), Some(Protocol::WebRTC)) {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        let client = self.client()?;
        if self.listener.is_some() {
            return Err(TransportError::Other(WebRtcError::Rtc("already listening on the signaling server".into())));
        }
        if let Some(url) = self.server_url.clone() {
            if !client.is_registered() {
                let c = client.clone();
                crate::runtime::spawn(async move {
                    if let Err(e) = c.connect(&url).await {
                        tracing::warn!(%url, "WebRTC listener cannot register: {e}");
                    }
                });
            }
        }
        let mut listen_addr = self.server_url.as_deref().and_then(url_to_multiaddr).unwrap_or_else(Multiaddr::empty);
        listen_addr.push(Protocol::WebRTC);
        self.listener = Some((id, listen_addr.clone()));
        self.events.push_back(TransportEvent::NewAddress { listener_id: id, listen_addr });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        if self.listener.as_ref().is_some_and(|(l, _)| *l == id) {
            self.listener = None;
            self.accept = None;
            self.events.push_back(TransportEvent::ListenerClosed { listener_id: id, reason: Ok(()) });
            return true;
        }
        false
    }

    fn dial(&mut self, addr: Multiaddr, _opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        let peer = dial_target(&addr).ok_or(TransportError::MultiaddrNotSupported(addr))?;
        if peer == self.local_peer_id {
            return Err(TransportError::Other(WebRtcError::Rtc("refusing to dial ourselves".into())));
        }
        let client = self.client()?;
        let url = self.server_url.clone();
        Ok(async move {
            register_if_needed(&client, url.as_deref()).await?;
            with_yamux(client.connect_to_peer(&peer).await?, true).await
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(ev) = self.events.pop_front() {
            return Poll::Ready(ev);
        }
        let Some((listener_id, local_addr)) = self.listener.clone() else {
            return Poll::Pending;
        };
        let Some(client) = self.signaling.clone() else {
            return Poll::Pending;
        };
        let accept = self.accept.get_or_insert_with(|| async move { client.next_connection().await }.boxed());
        match accept.poll_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.listener = None;
                self.accept = None;
                Poll::Ready(TransportEvent::ListenerClosed { listener_id, reason: Ok(()) })
            }
            Poll::Ready(Some(conn)) => {
                self.accept = None;
                let send_back_addr =
                    Multiaddr::empty().with(Protocol::WebRTC).with(Protocol::P2p(conn.remote_peer_id()));
                cx.waker().wake_by_ref();
                Poll::Ready(TransportEvent::Incoming {
                    listener_id,
                    upgrade: with_yamux(conn, false).boxed(),
                    local_addr,
                    send_back_addr,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let p = PeerId::random();
        assert_eq!(dial_target(&format!("/ip4/127.0.0.1/tcp/0/webrtc/p2p/{p}").parse().unwrap()), Some(p));
        assert_eq!(dial_target(&format!("/webrtc/p2p/{p}").parse().unwrap()), Some(p));
        assert_eq!(dial_target(&format!("/ip4/127.0.0.1/tcp/1/p2p/{p}").parse().unwrap()), None);
        assert_eq!(dial_target(&format!("/ip4/1.2.3.4/udp/1/webrtc-direct/p2p/{p}").parse().unwrap()), None);
        assert_eq!(dial_target(&format!("/p2p/{p}/p2p-circuit/webrtc/p2p/{p}").parse().unwrap()), None);
        assert_eq!(
            url_to_multiaddr("ws://127.0.0.1:9001/signaling").unwrap().to_string(),
            "/ip4/127.0.0.1/tcp/9001/ws"
        );
        assert_eq!(url_to_multiaddr("wss://example.org:443/x").unwrap().to_string(), "/dns/example.org/tcp/443/wss");
    }
}
