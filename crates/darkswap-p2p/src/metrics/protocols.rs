//! Bytes per application protocol (`darkswap_protocol_bytes{protocol,direction}`), which
//! rust-libp2p does not count (its issue #3262: its bandwidth metrics stop at the transport).
//!
//! Every substream of every connection starts with multistream-select: the dialer proposes a
//! protocol and the listener echoes the one it accepts. [`MeteredMuxer`] wraps a connection's
//! muxer; each substream reads the listener's side of that negotiation (what we read on streams
//! we opened, what we write on streams the peer opened) to learn the protocol, then counts every
//! byte, the negotiation included, under it. The protocol is always one this node proposed or
//! accepted, and at most [`MAX_PROTOCOLS`] names become labels (then `other`).

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context, Poll},
};

/// Distinct protocol labels at most.
pub const MAX_PROTOCOLS: usize = 64;
/// Bytes of negotiation read before giving up on finding the protocol (`unknown`).
const MAX_SNIFF: usize = 512;
const MULTISTREAM: &[u8] = b"/multistream/1.0.0";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    protocol: String,
    direction: &'static str,
}

/// The counters, shared by every connection of a node.
#[derive(Clone, Debug, Default)]
pub struct ProtocolBytes {
    family: Family<Labels, Counter>,
    names: Arc<Mutex<Vec<String>>>,
}

impl ProtocolBytes {
    /// Registers `darkswap_protocol_bytes` in `registry`.
    pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
        let this = Self::default();
        registry.register(
            "darkswap_protocol_bytes",
            "Bytes on each application protocol's streams (negotiation included), by direction",
            this.family.clone(),
        );
        this
    }

    /// The (in, out) counters of `protocol`.
    fn counters(&self, protocol: &str) -> (Counter, Counter) {
        let protocol = {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            if names.iter().any(|n| n == protocol) {
                protocol.to_owned()
            } else if names.len() < MAX_PROTOCOLS {
                names.push(protocol.to_owned());
                protocol.to_owned()
            } else {
                "other".to_owned()
            }
        };
        let get = |direction| self.family.get_or_create(&Labels { protocol: protocol.clone(), direction }).clone();
        (get("in"), get("out"))
    }

    /// Wraps a connection's muxer.
    pub fn wrap<M>(&self, inner: M) -> MeteredMuxer<M> {
        MeteredMuxer { inner, bytes: self.clone() }
    }
}

/// Finds the accepted protocol in the listener's side of a multistream-select negotiation.
#[derive(Debug, Default)]
struct Sniffer {
    buf: Vec<u8>,
}

enum Sniffed {
    More,
    Protocol(String),
    Unknown,
}

impl Sniffer {
    fn feed(&mut self, data: &[u8]) -> Sniffed {
        let room = MAX_SNIFF.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        let mut pos = 0;
        loop {
            // An unsigned-varint length, then the message, which ends in '\n'.
            let (mut len, mut shift, mut header) = (0usize, 0u32, 0usize);
            loop {
                let Some(&b) = self.buf.get(pos + header) else {
                    return if self.buf.len() >= MAX_SNIFF { Sniffed::Unknown } else { Sniffed::More };
                };
                len |= usize::from(b & 0x7f) << shift;
                header += 1;
                if b & 0x80 == 0 {
                    break;
                }
                shift += 7;
                if shift > 14 {
                    return Sniffed::Unknown;
                }
            }
            let start = pos + header;
            let Some(msg) = self.buf.get(start..start + len) else {
                return if self.buf.len() >= MAX_SNIFF { Sniffed::Unknown } else { Sniffed::More };
            };
            let Some(name) = msg.strip_suffix(b"\n") else { return Sniffed::Unknown };
            if name == MULTISTREAM || name == b"na" || name == b"ls" {
                pos = start + len;
                continue;
            }
            return match std::str::from_utf8(name) {
                Ok(n) if n.starts_with('/') && n.len() <= 140 => Sniffed::Protocol(n.to_owned()),
                _ => Sniffed::Unknown,
            };
        }
    }
}

/// The protocol a listener accepts in `negotiation` (its side of multistream-select), as the
/// byte counters read it; `None` while incomplete or when it names none. Exposed for fuzzing.
#[doc(hidden)]
pub fn sniff_protocol(negotiation: &[u8]) -> Option<String> {
    match Sniffer::default().feed(negotiation) {
        Sniffed::Protocol(p) => Some(p),
        Sniffed::More | Sniffed::Unknown => None,
    }
}

/// A connection's muxer whose substreams count their bytes per protocol.
pub struct MeteredMuxer<M> {
    inner: M,
    bytes: ProtocolBytes,
}

impl<M> StreamMuxer for MeteredMuxer<M>
where
    M: StreamMuxer + Unpin,
    M::Substream: Unpin,
{
    type Substream = MeteredStream<M::Substream>;
    type Error = M::Error;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let inner = ready!(Pin::new(&mut this.inner).poll_inbound(cx))?;
        // The peer opened it: we are the listener, and what we write names the protocol.
        Poll::Ready(Ok(MeteredStream::new(inner, this.bytes.clone(), false)))
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let inner = ready!(Pin::new(&mut this.inner).poll_outbound(cx))?;
        // We opened it: the peer's echo, which we read, names the protocol.
        Poll::Ready(Ok(MeteredStream::new(inner, this.bytes.clone(), true)))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}

/// A substream counting its bytes under its protocol once negotiation names it.
pub struct MeteredStream<S> {
    inner: S,
    bytes: ProtocolBytes,
    sniff_reads: bool,
    sniffer: Option<Sniffer>,
    counters: Option<(Counter, Counter)>,
    pending: (u64, u64),
}

impl<S> MeteredStream<S> {
    fn new(inner: S, bytes: ProtocolBytes, sniff_reads: bool) -> Self {
        Self { inner, bytes, sniff_reads, sniffer: Some(Sniffer::default()), counters: None, pending: (0, 0) }
    }

    fn settle(&mut self, protocol: &str) {
        let (i, o) = self.bytes.counters(protocol);
        i.inc_by(self.pending.0);
        o.inc_by(self.pending.1);
        self.counters = Some((i, o));
        self.sniffer = None;
    }

    fn count(&mut self, data: &[u8], read: bool) {
        let n = data.len() as u64;
        if let Some((i, o)) = &self.counters {
            if read { i } else { o }.inc_by(n);
            return;
        }
        if read {
            self.pending.0 += n;
        } else {
            self.pending.1 += n;
        }
        if read != self.sniff_reads {
            return;
        }
        let found = match self.sniffer.as_mut().map(|s| s.feed(data)) {
            Some(Sniffed::Protocol(p)) => p,
            Some(Sniffed::Unknown) => "unknown".to_owned(),
            Some(Sniffed::More) | None => return,
        };
        self.settle(&found);
    }
}

impl<S> Drop for MeteredStream<S> {
    fn drop(&mut self) {
        if self.counters.is_none() && self.pending != (0, 0) {
            self.settle("unknown");
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MeteredStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.count(&buf[..n], true);
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MeteredStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.count(&buf[..n], false);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(msg: &[u8]) -> Vec<u8> {
        let mut out = vec![(msg.len() + 1) as u8];
        out.extend_from_slice(msg);
        out.push(b'\n');
        out
    }

    #[test]
    fn finds_the_accepted_protocol_across_reads() {
        let mut bytes = frame(MULTISTREAM);
        bytes.extend(frame(b"/darkswap/sync/1.0.0"));
        bytes.extend_from_slice(b"payload");
        let mut s = Sniffer::default();
        assert!(matches!(s.feed(&bytes[..5]), Sniffed::More));
        match s.feed(&bytes[5..]) {
            Sniffed::Protocol(p) => assert_eq!(p, "/darkswap/sync/1.0.0"),
            _ => panic!("protocol not found"),
        }
    }

    #[test]
    fn refusals_and_garbage() {
        let mut bytes = frame(MULTISTREAM);
        bytes.extend(frame(b"na"));
        bytes.extend(frame(b"/ipfs/id/1.0.0"));
        assert!(matches!(Sniffer::default().feed(&bytes), Sniffed::Protocol(p) if p == "/ipfs/id/1.0.0"));
        assert!(matches!(Sniffer::default().feed(&[0xff, 0xff, 0xff, 0x01]), Sniffed::Unknown));
        assert!(matches!(Sniffer::default().feed(&frame(b"not-a-protocol")), Sniffed::Unknown));
        assert!(matches!(Sniffer::default().feed(&[100; MAX_SNIFF]), Sniffed::Unknown));
    }

    #[test]
    fn labels_are_bounded() {
        let bytes = ProtocolBytes::default();
        for i in 0..MAX_PROTOCOLS + 10 {
            bytes.counters(&format!("/p/{i}")).0.inc();
        }
        let other = bytes.counters("/p/new").0;
        assert_eq!(other.get(), 10, "names past the cap count as other");
    }
}
