//! A browser `RTCDataChannel` as messages ([`DataChannel`]) or as a byte stream
//! ([`LibP2pStream`]), the same framing as the native side: each write is one SCTP message, and
//! reads see the messages' bytes in order.
//!
//! Bounds: a write waits while more than [`MAX_BUFFERED`] bytes sit in the browser's send buffer;
//! what arrives is queued up to [`MAX_INBOX`] bytes, past which the peer is ignoring flow control
//! (Yamux windows keep an honest peer far below it) and the channel is closed with an error.

use super::super::{WebRtcError, MAX_DATA_MESSAGE};
use futures::{AsyncRead, AsyncWrite};
use send_wrapper::SendWrapper;
use std::{
    cell::RefCell,
    collections::VecDeque,
    future::poll_fn,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
};
use wasm_bindgen::{prelude::*, JsCast};
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

/// Bytes queued in the browser's send buffer before writes wait.
pub const MAX_BUFFERED: u32 = 1024 * 1024;
/// Bytes received and not yet read before the channel is closed as flooded.
pub const MAX_INBOX: usize = 16 * 1024 * 1024;
/// Largest message a stream write sends (what every WebRTC stack takes).
const MAX_WRITE: usize = 16 * 1024;

#[derive(Default)]
struct State {
    inbox: VecDeque<Vec<u8>>,
    inbox_bytes: usize,
    /// Bytes of the front message already read by the stream.
    offset: usize,
    open: bool,
    closed: bool,
    flooded: bool,
    readers: Option<Waker>,
    writers: Option<Waker>,
}

impl State {
    fn wake(&mut self) {
        if let Some(w) = self.readers.take() {
            w.wake();
        }
        if let Some(w) = self.writers.take() {
            w.wake();
        }
    }
}

/// One data channel with its event handlers; the handlers are removed when it is dropped, so
/// the browser never calls into freed closures.
pub(crate) struct Channel {
    dc: RtcDataChannel,
    state: Rc<RefCell<State>>,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Channel {
    /// Takes over `dc` (right when it is created or announced, before any message can be missed).
    pub(crate) fn new(dc: RtcDataChannel) -> Rc<Self> {
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(MAX_BUFFERED / 2);
        let state =
            Rc::new(RefCell::new(State { open: dc.ready_state() == RtcDataChannelState::Open, ..State::default() }));
        let on = |f: Box<dyn FnMut(JsValue)>| Closure::wrap(f);
        let s = state.clone();
        let onopen = on(Box::new(move |_| {
            let mut s = s.borrow_mut();
            s.open = true;
            s.wake();
        }));
        let s = state.clone();
        let flood_dc = dc.clone();
        let onmessage = on(Box::new(move |ev: JsValue| {
            let Some(data) = ev.dyn_ref::<MessageEvent>().map(|m| m.data()) else { return };
            let bytes = match data.dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
                Err(other) => match other.as_string() {
                    Some(text) => text.into_bytes(),
                    None => return,
                },
            };
            let mut s = s.borrow_mut();
            if s.closed {
                return;
            }
            if s.inbox_bytes + bytes.len() > MAX_INBOX {
                s.flooded = true;
                s.closed = true;
                flood_dc.close();
            } else {
                s.inbox_bytes += bytes.len();
                s.inbox.push_back(bytes);
            }
            s.wake();
        }));
        let s = state.clone();
        let onclose = on(Box::new(move |_| {
            let mut s = s.borrow_mut();
            s.closed = true;
            s.wake();
        }));
        let s = state.clone();
        let onlow = on(Box::new(move |_| {
            if let Some(w) = s.borrow_mut().writers.take() {
                w.wake();
            }
        }));
        dc.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        dc.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        dc.set_onerror(Some(onclose.as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(onlow.as_ref().unchecked_ref()));
        Rc::new(Channel { dc, state, _handlers: vec![onopen, onmessage, onclose, onlow] })
    }

    /// The channel's name.
    pub(crate) fn label(&self) -> String {
        self.dc.label()
    }

    /// Waits until the channel is open.
    pub(crate) async fn opened(&self) -> Result<(), WebRtcError> {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if s.closed {
                Poll::Ready(Err(WebRtcError::Closed))
            } else if s.open {
                Poll::Ready(Ok(()))
            } else {
                s.readers = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.state.borrow_mut();
        if s.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if !s.open || self.dc.buffered_amount() > MAX_BUFFERED {
            s.writers = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn send(&self, data: &[u8]) -> io::Result<()> {
        self.dc.send_with_u8_array(data).map_err(|e| io::Error::other(format!("{e:?}")))
    }

    /// Sends one message once the send buffer has room.
    pub(crate) async fn send_message(&self, data: &[u8]) -> Result<(), WebRtcError> {
        poll_fn(|cx| self.poll_writable(cx)).await.map_err(|_| WebRtcError::Closed)?;
        self.send(data).map_err(|e| WebRtcError::Rtc(e.to_string()))
    }

    /// The next whole message; `None` once closed and drained.
    pub(crate) async fn next_message(&self) -> Result<Vec<u8>, WebRtcError> {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if let Some(mut m) = s.inbox.pop_front() {
                let offset = std::mem::take(&mut s.offset);
                s.inbox_bytes -= m.len();
                m.drain(..offset);
                return Poll::Ready(Ok(m));
            }
            if s.flooded {
                return Poll::Ready(Err(WebRtcError::Rtc("peer overran the receive queue".into())));
            }
            if s.closed {
                return Poll::Ready(Err(WebRtcError::Closed));
            }
            s.readers = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn poll_read_bytes(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut s = self.state.borrow_mut();
        let s = &mut *s;
        if let Some(front) = s.inbox.front() {
            let n = (front.len() - s.offset).min(buf.len());
            buf[..n].copy_from_slice(&front[s.offset..s.offset + n]);
            s.offset += n;
            if s.offset == front.len() {
                s.inbox_bytes -= front.len();
                s.inbox.pop_front();
                s.offset = 0;
            }
            return Poll::Ready(Ok(n));
        }
        if s.flooded {
            return Poll::Ready(Err(io::Error::other("peer overran the receive queue")));
        }
        if s.closed {
            return Poll::Ready(Ok(0));
        }
        s.readers = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Closes the channel (the browser sends what is buffered first).
    pub(crate) fn close(&self) {
        self.dc.close();
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.dc.set_onopen(None);
        self.dc.set_onmessage(None);
        self.dc.set_onclose(None);
        self.dc.set_onerror(None);
        self.dc.set_onbufferedamountlow(None);
        self.dc.close();
    }
}

/// One named, reliable, ordered message channel of a
/// [`WebRtcConnection`](super::WebRtcConnection). Clones share it.
#[derive(Clone)]
pub struct DataChannel {
    label: String,
    inner: SendWrapper<Rc<Channel>>,
}

impl std::fmt::Debug for DataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannel").field("label", &self.label).finish()
    }
}

impl DataChannel {
    pub(crate) fn new(inner: Rc<Channel>) -> Self {
        Self { label: inner.label(), inner: SendWrapper::new(inner) }
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
        self.inner.send_message(&data).await
    }

    /// The next message, in order; [`WebRtcError::Closed`] once the channel is closed.
    pub async fn receive(&self) -> Result<Vec<u8>, WebRtcError> {
        self.inner.next_message().await
    }

    /// Closes the channel.
    pub async fn close(&self) -> Result<(), WebRtcError> {
        self.inner.close();
        Ok(())
    }
}

/// The byte stream the libp2p side of a connection runs on (the `"libp2p"` data channel), or
/// the identity handshake's (`"noise"`).
pub struct LibP2pStream {
    inner: SendWrapper<Rc<Channel>>,
}

impl LibP2pStream {
    pub(crate) fn new(inner: Rc<Channel>) -> Self {
        Self { inner: SendWrapper::new(inner) }
    }
}

impl AsyncRead for LibP2pStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_read_bytes(cx, buf)
    }
}

impl AsyncWrite for LibP2pStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.inner.poll_writable(cx) {
            Poll::Ready(Ok(())) => {
                let n = buf.len().min(MAX_WRITE);
                Poll::Ready(self.inner.send(&buf[..n]).map(|()| n))
            }
            other => other.map(|r| r.map(|()| 0)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sent messages are the browser's to deliver; there is nothing buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.close();
        Poll::Ready(Ok(()))
    }
}
