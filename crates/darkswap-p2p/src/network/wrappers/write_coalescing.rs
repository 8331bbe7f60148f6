//! Write coalescing under Noise on stream transports (TCP, and TCP under WebSocket).
//!
//! Yamux flushes after every frame and Noise encrypts one frame per flush, so each gossip message
//! for a peer became one `sendto` of its own, and one wake-up of the receiving connection task.
//! Here, on a busy connection (its last write less than [`BURST_GAP`] ago), a flush that has new
//! bytes behind it is answered `Pending` once, after waking the task: the connection task goes on
//! with whatever else is ready for that peer (more frames, more flushes), and its next flush
//! writes them all with one system call. A quiet connection writes at once, so batching costs
//! latency only where a burst is under way. At most [`MAX_BUFFER`] bytes wait.
//!
//! Measured at 50 nodes x 100 orders/s of 1 KiB (propagation bench): `sendto` calls 253,769 ->
//! 110,371 (253,811 -> 118,096 in a second run), latency within run-to-run noise; at 20 nodes
//! x 100 orders/s, where links are quiet, latency and CPU are unchanged.

use futures::{AsyncRead, AsyncWrite};
use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};
use web_time::Instant;

/// Bytes held before a write goes to the socket even without a flush.
pub const MAX_BUFFER: usize = 256 * 1024;

/// Bytes handed to the socket in one write. A TCP stack that takes at most 64 KiB per `send()`
/// answers a larger write short, and one that then signals writability only on an edge that
/// never comes (Shadow's, in the lab: docs/LAB.md) leaves the connection stalled for good; on a
/// kernel socket it costs one more system call per 64 KiB of a burst.
pub const MAX_WRITE: usize = 64 * 1024 - 1;

/// A connection that wrote less than this long ago is busy, and its flushes wait for company;
/// since a deferred flush does not write, no byte waits much longer than this (plus the turn of
/// the scheduler that brings the task back).
pub const BURST_GAP: Duration = Duration::from_micros(200);

/// A byte stream whose flushes are batched (see the module docs).
#[derive(Debug)]
pub struct WriteCoalescing<S> {
    inner: S,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed to `inner`.
    written: usize,
    /// Bytes arrived since the last flush call.
    fresh: bool,
    /// When bytes last went to the socket.
    last_write: Option<Instant>,
}

impl<S> WriteCoalescing<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner, buf: Vec::new(), written: 0, fresh: false, last_write: None }
    }
}

impl<S: AsyncWrite + Unpin> WriteCoalescing<S> {
    /// Hands everything buffered to the inner stream; `now` is when the caller read the clock
    /// (once per flush: a clock read was 1% of a busy node's CPU).
    fn poll_drain(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let end = self.buf.len().min(self.written + MAX_WRITE);
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..end]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => self.written += n,
            }
        }
        self.buf.clear();
        self.written = 0;
        self.last_write = Some(now);
        if self.buf.capacity() > MAX_BUFFER {
            // A burst grew the buffer past its cap; give the memory back.
            self.buf.shrink_to(MAX_BUFFER);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteCoalescing<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.len() >= MAX_BUFFER {
            ready!(this.poll_drain(cx, Instant::now()))?;
        }
        let n = data.len().min(MAX_BUFFER - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        this.fresh |= n > 0;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_empty() {
            // Nothing to write (Yamux flushes at every turn of its connection): no clock read,
            // and the connection does not count as busy for it.
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        let now = Instant::now();
        let busy = this.last_write.is_some_and(|t| now.saturating_duration_since(t) < BURST_GAP);
        if std::mem::take(&mut this.fresh) && busy {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(this.poll_drain(cx, now))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.fresh = false;
        ready!(this.poll_drain(cx, Instant::now()))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteCoalescing<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker_ref;

    /// Records every write it is handed.
    #[derive(Default)]
    struct Recorder(Vec<Vec<u8>>);

    impl AsyncWrite for Recorder {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            self.0.push(data.to_vec());
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn write_and_flush(s: &mut WriteCoalescing<Recorder>, data: &[u8]) -> Poll<io::Result<()>> {
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(matches!(Pin::new(&mut *s).poll_write(&mut cx, data), Poll::Ready(Ok(n)) if n == data.len()));
        Pin::new(s).poll_flush(&mut cx)
    }

    #[test]
    fn a_quiet_connection_writes_at_once_a_busy_one_batches() {
        let mut s = WriteCoalescing::new(Recorder::default());
        assert!(matches!(write_and_flush(&mut s, b"zero"), Poll::Ready(Ok(()))));
        // Right after a write, flushes wait for the task's next turn.
        assert!(write_and_flush(&mut s, b"one").is_pending());
        assert!(write_and_flush(&mut s, b"two").is_pending());
        assert_eq!(s.inner.0.len(), 1);
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(matches!(Pin::new(&mut s).poll_flush(&mut cx), Poll::Ready(Ok(()))));
        assert_eq!(s.inner.0, vec![b"zero".to_vec(), b"onetwo".to_vec()]);
    }

    #[test]
    fn nothing_waits_once_the_burst_is_over() {
        let mut s = WriteCoalescing::new(Recorder::default());
        assert!(matches!(write_and_flush(&mut s, b"a"), Poll::Ready(Ok(()))));
        assert!(write_and_flush(&mut s, b"b").is_pending());
        std::thread::sleep(BURST_GAP * 2);
        // New bytes keep arriving, but the last write is long past.
        assert!(matches!(write_and_flush(&mut s, b"c"), Poll::Ready(Ok(()))));
        assert_eq!(s.inner.0, vec![b"a".to_vec(), b"bc".to_vec()]);
    }

    #[test]
    fn a_full_buffer_is_written_without_a_flush() {
        let mut s = WriteCoalescing::new(Recorder::default());
        let mut cx = Context::from_waker(noop_waker_ref());
        let big = vec![7u8; MAX_BUFFER + 10];
        let Poll::Ready(Ok(n)) = Pin::new(&mut s).poll_write(&mut cx, &big) else { panic!("write refused") };
        assert_eq!(n, MAX_BUFFER);
        assert!(matches!(Pin::new(&mut s).poll_write(&mut cx, &big[n..]), Poll::Ready(Ok(10))));
        // The full buffer went out in writes of at most MAX_WRITE bytes.
        assert_eq!(s.inner.0.iter().map(Vec::len).sum::<usize>(), MAX_BUFFER);
        assert!(
            s.inner.0.iter().all(|w| w.len() <= MAX_WRITE),
            "{:?}",
            s.inner.0.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(s.inner.0.len(), MAX_BUFFER.div_ceil(MAX_WRITE));
    }
}
