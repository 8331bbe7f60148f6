//! The native connection: handles on the task that drives the str0m `Rtc`
//! ([`driver`](crate::webrtc::rtc::driver)), its named channels and the libp2p byte stream.

use super::{LibP2pStream, WebRtcError, MAX_DATA_MESSAGE};
use crate::webrtc::rtc::driver::{self, Inbound, Op, Outgoing};
use libp2p::PeerId;
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use str0m::channel::ChannelId;
use tokio::sync::mpsc;

/// One named, reliable, ordered message channel of a [`WebRtcConnection`]. Clones share it.
#[derive(Clone)]
pub struct DataChannel {
    label: String,
    id: ChannelId,
    driver: driver::Handle,
    inbound: Arc<tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>>,
    open: Arc<AtomicBool>,
}

impl std::fmt::Debug for DataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannel").field("label", &self.label).finish()
    }
}

impl DataChannel {
    pub(crate) fn new(label: String, id: ChannelId, driver: driver::Handle, inbound: Inbound) -> Self {
        Self { label, id, driver, inbound: Arc::new(tokio::sync::Mutex::new(inbound.rx)), open: inbound.open }
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
        if !self.driver.alive.load(Ordering::Acquire) || !self.open.load(Ordering::Acquire) {
            return Err(WebRtcError::Closed);
        }
        let out = Outgoing { channel: self.id, op: Op::Send(data) };
        self.driver.writes.send(out).await.map_err(|_| WebRtcError::Closed)
    }

    /// The next message, in order; [`WebRtcError::Closed`] once the channel is closed.
    pub async fn receive(&self) -> Result<Vec<u8>, WebRtcError> {
        self.inbound.lock().await.recv().await.ok_or(WebRtcError::Closed)
    }

    /// Closes the channel, after the messages already sent; later sends fail with
    /// [`WebRtcError::Closed`], here and (once the close arrives) at the remote peer.
    pub async fn close(&self) -> Result<(), WebRtcError> {
        let out = Outgoing { channel: self.id, op: Op::Close };
        let queued = self.driver.writes.send(out).await.map_err(|_| WebRtcError::Closed);
        self.open.store(false, Ordering::Release);
        queued
    }
}

/// A WebRTC connection to a peer whose id the identity handshake proved.
pub struct WebRtcConnection {
    /// The message channels by name, as configured in [`WebRtcConfig::data_channels`](super::WebRtcConfig::data_channels).
    pub data_channels: HashMap<String, DataChannel>,
    pub(crate) remote_peer_id: PeerId,
    pub(crate) connection_id: String,
    pub(crate) outbound: bool,
    pub(crate) driver: driver::Handle,
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

    /// Whether the connection is still up.
    pub fn is_connected(&self) -> bool {
        self.driver.alive.load(Ordering::Acquire)
    }

    /// Takes the libp2p byte stream (once) for a stream muxer.
    pub fn take_stream(&self) -> Option<LibP2pStream> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Closes every channel and the connection (the remote peer is told).
    pub async fn close(&self) -> Result<(), WebRtcError> {
        // Closed for this side at once; the task still sends the close to the remote peer.
        self.driver.alive.store(false, Ordering::Release);
        self.driver.shutdown.cancel();
        Ok(())
    }
}

impl Drop for WebRtcConnection {
    fn drop(&mut self) {
        self.driver.shutdown.cancel();
    }
}
