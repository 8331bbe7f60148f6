//! The application's own stream protocols (`NetworkHandle::open_stream`, `accept_streams`), on
//! libp2p-stream.

use crate::network::wrappers::ProtocolsEpoch;
use crate::Error;
use futures::{Stream, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use std::{
    pin::Pin,
    task::{Context, Poll},
};

/// The handle to libp2p-stream's behaviour, with the epoch its protocol changes bump (see
/// [`super::listed`]).
pub(crate) struct StreamControl {
    control: libp2p_stream::Control,
    epoch: ProtocolsEpoch,
}

impl std::fmt::Debug for StreamControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamControl")
    }
}

impl StreamControl {
    pub(crate) fn new(control: libp2p_stream::Control, epoch: ProtocolsEpoch) -> Self {
        Self { control, epoch }
    }

    pub(crate) async fn open(&self, peer: PeerId, protocol: StreamProtocol) -> Result<libp2p::Stream, Error> {
        self.control.clone().open_stream(peer, protocol).await.map_err(|e| Error::Stream(e.to_string()))
    }

    pub(crate) fn accept(&self, protocol: StreamProtocol) -> Result<IncomingStreams, Error> {
        let inner = self.control.clone().accept(protocol).map_err(|e| Error::Stream(e.to_string()))?;
        self.epoch.bump();
        Ok(IncomingStreams { inner: Some(inner), epoch: self.epoch.clone() })
    }
}

/// Inbound streams of one protocol as `(peer, stream)` pairs, from
/// [`NetworkHandle::accept_streams`](crate::network::NetworkHandle::accept_streams). Dropping it stops
/// accepting the protocol: streams that arrive afterwards are refused.
pub struct IncomingStreams {
    /// Taken on drop: the receiver must be gone before the epoch moves, or a connection could
    /// list the protocol again at the new epoch.
    inner: Option<libp2p_stream::IncomingStreams>,
    epoch: ProtocolsEpoch,
}

impl std::fmt::Debug for IncomingStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IncomingStreams")
    }
}

impl Stream for IncomingStreams {
    type Item = (PeerId, libp2p::Stream);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut() {
            Some(inner) => inner.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for IncomingStreams {
    fn drop(&mut self) {
        drop(self.inner.take());
        self.epoch.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepting_a_protocol_and_dropping_its_receiver_each_move_the_epoch() {
        let epoch = ProtocolsEpoch::default();
        let streams = StreamControl::new(libp2p_stream::Behaviour::new().new_control(), epoch.clone());
        let at = |e: &ProtocolsEpoch| e.get();
        let start = at(&epoch);
        let incoming = streams.accept(StreamProtocol::new("/x/1")).unwrap();
        assert_eq!(at(&epoch), start + 1);
        assert!(streams.accept(StreamProtocol::new("/x/1")).is_err(), "one receiver per protocol");
        assert_eq!(at(&epoch), start + 1, "a refused accept changes nothing");
        drop(incoming);
        assert_eq!(at(&epoch), start + 2);
        // Gone from libp2p-stream too: the protocol can be accepted again.
        assert!(streams.accept(StreamProtocol::new("/x/1")).is_ok());
    }
}
