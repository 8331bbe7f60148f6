//! A WebRTC-direct connection as a libp2p stream muxer: each libp2p stream is a data channel
//! carrying libp2p's WebRTC framing (half-close and reset flags), which browsers speak too.

use super::Error;
use crate::webrtc::rtc::{
    driver::{self, Control, Inbound, Progress},
    stream::LibP2pStream,
};
use futures::{stream::FuturesUnordered, FutureExt, StreamExt};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p_webrtc_utils::{DropListener, Stream};
use std::{
    pin::Pin,
    task::{Context, Poll, Waker},
};
use str0m::channel::{ChannelConfig, ChannelId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

/// One libp2p stream of a WebRTC-direct connection.
pub type Substream = Stream<LibP2pStream>;

/// A proven WebRTC-direct connection to one peer.
pub struct Connection {
    driver: driver::Handle,
    control: PollSender<Control>,
    progress: mpsc::Receiver<Progress>,
    /// The channel being opened for the next outbound stream.
    opening: Option<oneshot::Receiver<(ChannelId, Inbound)>>,
    /// Each stream's reset, sent if it is dropped without being closed.
    drop_listeners: FuturesUnordered<DropListener<LibP2pStream>>,
    idle: Option<Waker>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("streams", &self.drop_listeners.len()).finish()
    }
}

impl Connection {
    pub(crate) fn new(driver: driver::Handle, progress: mpsc::Receiver<Progress>) -> Self {
        Self {
            control: PollSender::new(driver.control.clone()),
            driver,
            progress,
            opening: None,
            drop_listeners: FuturesUnordered::new(),
            idle: None,
        }
    }

    fn substream(&mut self, id: ChannelId, inbound: Inbound) -> Substream {
        let (stream, listener) = Stream::new(LibP2pStream::new(id, &self.driver, inbound));
        self.drop_listeners.push(listener);
        if let Some(waker) = self.idle.take() {
            waker.wake();
        }
        stream
    }
}

impl StreamMuxer for Connection {
    type Substream = Substream;
    type Error = Error;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Substream, Error>> {
        let this = self.get_mut();
        match futures::ready!(this.progress.poll_recv(cx)) {
            Some(Progress::Open(id, _label, inbound)) => Poll::Ready(Ok(this.substream(id, inbound))),
            Some(Progress::Failed(reason)) => Poll::Ready(Err(Error::Rtc(reason))),
            None => Poll::Ready(Err(Error::Closed)),
        }
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Substream, Error>> {
        let this = self.get_mut();
        loop {
            if let Some(opening) = &mut this.opening {
                let opened = futures::ready!(opening.poll_unpin(cx));
                this.opening = None;
                let (id, inbound) = opened.map_err(|_| Error::Closed)?;
                return Poll::Ready(Ok(this.substream(id, inbound)));
            }
            futures::ready!(this.control.poll_reserve(cx)).map_err(|_| Error::Closed)?;
            let (tx, rx) = oneshot::channel();
            // In-band (DCEP), ordered and reliable, with the empty label libp2p uses.
            let open = Control::OpenChannel(ChannelConfig::default(), tx);
            this.control.send_item(open).map_err(|_| Error::Closed)?;
            this.opening = Some(rx);
        }
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.driver.shutdown.cancel();
        Poll::Ready(Ok(()))
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Error>> {
        let this = self.get_mut();
        loop {
            match this.drop_listeners.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(()))) => {}
                // The channel is gone already, so there is nothing left to reset.
                Poll::Ready(Some(Err(e))) => tracing::trace!("resetting a dropped stream failed: {e}"),
                Poll::Ready(None) => {
                    this.idle = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.shutdown.cancel();
    }
}
