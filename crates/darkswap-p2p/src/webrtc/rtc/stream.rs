//! The libp2p byte stream over one data channel: the `"libp2p"` channel of a signaled
//! connection, the `"noise"` channel of the identity handshake, and each libp2p stream of a
//! WebRTC-direct connection.

use super::driver::{self, Inbound, Op, Outgoing};
use futures::{AsyncRead, AsyncWrite};
use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
};
use str0m::channel::ChannelId;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;
/// Largest write a [`LibP2pStream`] puts in one message: small enough to interleave with other
/// channels, large enough that per-message costs stay small.
const STREAM_CHUNK: usize = 16 * 1024;

/// The byte stream the libp2p side of a connection runs on (the `"libp2p"` data channel), also
/// used for the identity handshake on the `"noise"` channel and, framed, for each libp2p stream
/// of a WebRTC-direct connection. Message boundaries carry no meaning: reads continue where the
/// last one stopped, writes are cut into messages.
///
/// Clones share the channel (libp2p's WebRTC framing keeps one to send a reset when its stream
/// is dropped); the channel closes on `close`, or some seconds after the last clone is dropped,
/// so that the peer can still read what was sent last.
pub struct LibP2pStream {
    writes: PollSender<Outgoing>,
    shared: Arc<StreamShared>,
}

struct StreamShared {
    id: ChannelId,
    read: Mutex<ReadState>,
    open: Arc<AtomicBool>,
    /// The close was queued; the last clone's drop need not queue it.
    closed: AtomicBool,
    writes: mpsc::Sender<Outgoing>,
}

struct ReadState {
    inbound: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Clone for LibP2pStream {
    fn clone(&self) -> Self {
        Self { writes: PollSender::new(self.shared.writes.clone()), shared: self.shared.clone() }
    }
}

impl Drop for StreamShared {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let close = Outgoing { channel: self.id, op: Op::CloseLater };
        if let Err(mpsc::error::TrySendError::Full(close)) = self.writes.try_send(close) {
            // The queue is bounded and busy; the close still has to go out behind the data.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let writes = self.writes.clone();
                rt.spawn(async move {
                    let _ = writes.send(close).await;
                });
            }
        }
    }
}

impl std::fmt::Debug for LibP2pStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibP2pStream").field("closed", &self.shared.closed.load(Ordering::Relaxed)).finish()
    }
}

impl LibP2pStream {
    pub(crate) fn new(id: ChannelId, driver: &driver::Handle, inbound: Inbound) -> Self {
        let shared = StreamShared {
            id,
            read: Mutex::new(ReadState { inbound: inbound.rx, buf: Vec::new(), pos: 0 }),
            open: inbound.open,
            closed: AtomicBool::new(false),
            writes: driver.writes.clone(),
        };
        Self { writes: PollSender::new(driver.writes.clone()), shared: Arc::new(shared) }
    }
}

impl AsyncRead for LibP2pStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = self.shared.read.lock().unwrap_or_else(|p| p.into_inner());
        let read = &mut *read;
        while read.pos >= read.buf.len() {
            match read.inbound.poll_recv(cx) {
                Poll::Ready(Some(m)) => {
                    read.buf = m;
                    read.pos = 0;
                }
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.len().min(read.buf.len() - read.pos);
        buf[..n].copy_from_slice(&read.buf[read.pos..read.pos + n]);
        read.pos += n;
        Poll::Ready(Ok(n))
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "WebRTC connection closed")
}

impl AsyncWrite for LibP2pStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.shared.closed.load(Ordering::Acquire) || !this.shared.open.load(Ordering::Acquire) {
            return Poll::Ready(Err(broken()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.writes.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(Err(broken())),
            Poll::Pending => return Poll::Pending,
        }
        let n = buf.len().min(STREAM_CHUNK);
        let out = Outgoing { channel: this.shared.id, op: Op::Send(buf[..n].to_vec()) };
        this.writes.send_item(out).map_err(|_| broken())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are with the connection's task already; SCTP delivers them reliably.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        match this.writes.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {
                // Queued behind the data, so the reset cannot overtake it.
                if !this.shared.closed.swap(true, Ordering::AcqRel) {
                    let _ = this.writes.send_item(Outgoing { channel: this.shared.id, op: Op::Close });
                }
            }
            Poll::Ready(Err(_)) => this.shared.closed.store(true, Ordering::Release),
            Poll::Pending => return Poll::Pending,
        }
        Poll::Ready(Ok(()))
    }
}
