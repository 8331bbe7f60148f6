//! The native connection: webrtc-rs peer connection, its named channels and the libp2p stream.

use super::{WebRtcError, MAX_DATA_MESSAGE};
use bytes::Bytes;
use libp2p::PeerId;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio_util::compat::Compat;
use webrtc::{data::data_channel::PollDataChannel, peer_connection::RTCPeerConnection};

/// Picks the process-wide rustls crypto provider that webrtc-rs' DTLS needs. Two providers are
/// compiled in (QUIC brings aws-lc-rs, WebSocket brings ring), so rustls cannot choose by itself;
/// an application that installed one first keeps its choice.
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl From<webrtc::Error> for WebRtcError {
    fn from(e: webrtc::Error) -> Self {
        WebRtcError::Rtc(e.to_string())
    }
}

/// One named, reliable, ordered message channel of a [`WebRtcConnection`]. Clones share it.
#[derive(Clone)]
pub struct DataChannel {
    label: String,
    inner: Arc<webrtc::data::data_channel::DataChannel>,
    read_buf: Arc<tokio::sync::Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for DataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannel").field("label", &self.label).finish()
    }
}

impl DataChannel {
    pub(crate) fn new(label: String, inner: Arc<webrtc::data::data_channel::DataChannel>) -> Self {
        Self { label, inner, read_buf: Arc::new(tokio::sync::Mutex::new(vec![0; MAX_DATA_MESSAGE])) }
    }

    /// The channel's name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends one message (at most [`MAX_DATA_MESSAGE`] bytes); waits while the send buffer is full.
    pub async fn send(&self, data: Vec<u8>) -> Result<(), WebRtcError> {
        if data.len() > MAX_DATA_MESSAGE {
            return Err(WebRtcError::MessageTooLarge(data.len()));
        }
        self.inner.write(&Bytes::from(data)).await.map_err(|e| WebRtcError::Rtc(e.to_string()))?;
        Ok(())
    }

    /// The next message, in order; [`WebRtcError::Closed`] once the channel is closed.
    pub async fn receive(&self) -> Result<Vec<u8>, WebRtcError> {
        let mut buf = self.read_buf.lock().await;
        match self.inner.read(&mut buf).await {
            Ok(0) => Err(WebRtcError::Closed),
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(webrtc::data::Error::ErrStreamClosed) => Err(WebRtcError::Closed),
            Err(e) => Err(WebRtcError::Rtc(e.to_string())),
        }
    }

    /// Closes the channel.
    pub async fn close(&self) -> Result<(), WebRtcError> {
        self.inner.close().await.map_err(|e| WebRtcError::Rtc(e.to_string()))
    }
}

/// The byte stream the libp2p side of a connection runs on (the `"libp2p"` data channel).
pub type LibP2pStream = Compat<PollDataChannel>;

/// A WebRTC connection to a peer whose id the identity handshake proved.
pub struct WebRtcConnection {
    /// The message channels by name, as configured in [`WebRtcConfig::data_channels`](super::WebRtcConfig::data_channels).
    pub data_channels: HashMap<String, DataChannel>,
    pub(crate) remote_peer_id: PeerId,
    pub(crate) connection_id: String,
    pub(crate) outbound: bool,
    pub(crate) peer_connection: Arc<RTCPeerConnection>,
    pub(crate) stream: Mutex<Option<LibP2pStream>>,
    pub(crate) established_in: Duration,
}

impl std::fmt::Debug for WebRtcConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcConnection")
            .field("remote_peer_id", &self.remote_peer_id)
            .field("connection_id", &self.connection_id)
            .field("outbound", &self.outbound)
            .field("data_channels", &self.data_channels.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebRtcConnection {
    /// The proven remote peer.
    pub fn remote_peer_id(&self) -> PeerId {
        self.remote_peer_id
    }

    /// The id the offerer chose for this connection.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// Whether we made the offer.
    pub fn is_outbound(&self) -> bool {
        self.outbound
    }

    /// Time from the offer (or its arrival) to the proven connection.
    pub fn setup_time(&self) -> Duration {
        self.established_in
    }

    /// Whether the underlying peer connection is still up.
    pub fn is_connected(&self) -> bool {
        use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState as S;
        matches!(self.peer_connection.connection_state(), S::Connected | S::Connecting | S::New)
    }

    /// Takes the libp2p byte stream (once) for a stream muxer.
    pub fn take_stream(&self) -> Option<LibP2pStream> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Closes every channel and the peer connection.
    pub async fn close(&self) -> Result<(), WebRtcError> {
        self.peer_connection.close().await.map_err(WebRtcError::from)
    }
}

impl Drop for WebRtcConnection {
    fn drop(&mut self) {
        // webrtc-rs keeps its tasks (ICE, DTLS, SCTP) running until the peer connection is closed.
        let pc = self.peer_connection.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}
