//! Bringing one WebRTC-direct connection up, on either side: the str0m `Rtc` set up without
//! SDP (libp2p's WebRTC-direct has none on the wire: ICE credentials come from the client's
//! ufrag, the server's fingerprint from the address), then the Noise handshake on the
//! pre-negotiated channel 0, bound to both DTLS fingerprints.

use super::{Connection, Error};
use crate::webrtc::rtc::{
    channel_opening::OpenPolicy,
    driver::{self, Control, Progress},
    sockets::Sockets,
    stream::LibP2pStream,
};
use libp2p::{identity::Keypair, PeerId};
use libp2p_webrtc_utils::{noise, Fingerprint};
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};
use str0m::{channel::ChannelConfig, config::DtlsCert, Candidate, IceCreds, Rtc};
use tokio::sync::oneshot;

/// libp2p streams the remote peer may have opened and we have not accepted yet; more are refused.
const PENDING_STREAMS: usize = 32;

/// Which end of the connection this is.
pub(crate) enum Side {
    /// The listener: ICE-lite, DTLS server; learns the client's fingerprint from DTLS.
    Server,
    /// The dialer: full ICE, controlling, DTLS client; the server must show the certificate
    /// with this SHA-256 digest.
    Client([u8; 32]),
}

/// An `Rtc` for one connection between `local` and `remote`, with both ICE credentials made of
/// the client's `ufrag` (libp2p's rule), DTLS and SCTP started.
pub(crate) fn rtc(
    side: &Side,
    certificate: DtlsCert,
    send_buffer: usize,
    ufrag: &str,
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<Rtc, Error> {
    let server = matches!(side, Side::Server);
    let mut rtc = Rtc::builder()
        .set_ice_lite(server)
        .set_dtls_cert(certificate)
        // The server cannot know the client's certificate in advance; Noise checks it instead.
        .set_fingerprint_verification(!server)
        .set_sctp_max_buffered_amount(send_buffer)
        .build(Instant::now());
    let bad = |e: str0m::error::IceError| Error::Rtc(e.to_string());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(bad)?);
    rtc.add_remote_candidate(Candidate::host(remote, "udp").map_err(bad)?);
    let creds = IceCreds { ufrag: ufrag.to_owned(), pass: ufrag.to_owned() };
    let remote_fingerprint = match side {
        Side::Server => [0xFF; 32],
        Side::Client(f) => *f,
    };
    let mut api = rtc.direct_api();
    api.set_ice_controlling(!server);
    api.set_local_ice_credentials(creds.clone());
    api.set_remote_ice_credentials(creds);
    // str0m wants a remote fingerprint before DTLS even when it does not check it.
    api.set_remote_fingerprint(str0m::config::Fingerprint {
        hash_func: "sha-256".into(),
        bytes: remote_fingerprint.to_vec(),
    });
    api.start_dtls(!server).map_err(|e| Error::Rtc(e.to_string()))?;
    api.start_sctp(!server);
    Ok(rtc)
}

/// Starts the connection's task on `net` and runs the identity handshake; the proven peer and
/// the stream muxer, or why not. The task is stopped on failure.
pub(crate) async fn connect(
    side: Side,
    keypair: Keypair,
    rtc: Rtc,
    net: Sockets,
) -> Result<(PeerId, Connection), Error> {
    // Only a listener has browsers (libp2p-webrtc-websys) for peers.
    let opens = match side {
        Side::Server => OpenPolicy::BROWSER_FACING,
        Side::Client(_) => OpenPolicy::EAGER,
    };
    let (handle, mut progress) = driver::spawn(rtc, net, PENDING_STREAMS, opens);
    let result = async {
        // Channel 0, negotiated out of band on both sides, carries the handshake.
        let config = ChannelConfig { negotiated: Some(0), ..Default::default() };
        let (tx, opened) = oneshot::channel();
        handle.control.send(Control::OpenChannel(config, tx)).await.map_err(|_| Error::Closed)?;
        let failed = |p: Option<Progress>| match p {
            Some(Progress::Failed(reason)) => Error::Rtc(reason),
            _ => Error::Closed,
        };
        let (id, inbound) = tokio::select! {
            o = opened => match o {
                Ok(o) => o,
                // The task ended; it said why on the progress queue.
                Err(_) => return Err(failed(progress.recv().await)),
            },
            p = progress.recv() => return Err(failed(p)),
        };
        let (local, remote) = handle.fingerprints().await.map_err(|_| Error::Closed)?;
        let (local, remote) = (Fingerprint::raw(local), Fingerprint::raw(remote));
        // Nothing of the handshake needs a reset when dropped; the channel closes a while after
        // (the peer may still be closing its side).
        let (stream, _) = libp2p_webrtc_utils::Stream::new(LibP2pStream::new(id, &handle, inbound));
        let stream = Handshake(stream);
        let peer = match side {
            Side::Server => noise::inbound(keypair, stream, remote, local).await,
            Side::Client(_) => noise::outbound(keypair, stream, remote, local).await,
        }
        .map_err(|e| Error::Handshake(e.to_string()))?;
        Ok(peer)
    }
    .await;
    match result {
        Ok(peer) => Ok((peer, Connection::new(handle, progress))),
        Err(e) => {
            handle.shutdown.cancel();
            Err(e)
        }
    }
}

/// The handshake's stream. Noise closes it once the handshake is done; a peer that resets
/// channel 0 as soon as its own side is done makes that close fail, which changes nothing about
/// the proven identity, so that failure is not one.
struct Handshake<T>(T);

impl<T: futures::AsyncRead + Unpin> futures::AsyncRead for Handshake<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: futures::AsyncWrite + Unpin> futures::AsyncWrite for Handshake<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match futures::ready!(Pin::new(&mut self.0).poll_close(cx)) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}
