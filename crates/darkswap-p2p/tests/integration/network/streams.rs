//! Application streams: a node opens a stream of its own protocol to a peer that accepts it,
//! and bytes flow both ways; a protocol nobody accepts is refused with a typed error.

use crate::support::*;
use darkswap_p2p::{
    libp2p::{
        futures::{AsyncReadExt, AsyncWriteExt, StreamExt},
        StreamProtocol,
    },
    Error,
};

const ECHO: StreamProtocol = StreamProtocol::new("/darkswap-test/echo/1.0.0");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_streams_carry_bytes_both_ways() {
    let (a, _) = node().await;
    let (a, _a_rx) = drain(a);
    let (b, b_addr) = node().await;
    let (b, _b_rx) = drain(b);
    let mut incoming = b.accept_streams(ECHO).unwrap();
    assert!(matches!(b.accept_streams(ECHO), Err(Error::Stream(_))), "one receiver per protocol");
    let a_id = a.local_peer_id();
    tokio::spawn(async move {
        while let Some((peer, mut s)) = incoming.next().await {
            assert_eq!(peer, a_id);
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            buf.reverse();
            s.write_all(&buf).await.unwrap();
            s.close().await.unwrap();
        }
    });
    a.dial(&b_addr).await.unwrap();
    // A 1 MiB payload, larger than a yamux window, comes back reversed.
    let payload: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut s = a.open_stream(b.local_peer_id(), ECHO).await.unwrap();
    s.write_all(&payload).await.unwrap();
    s.close().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut back)).await.unwrap().unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back.iter().rev().eq(payload.iter()), "echoed reversed");
    // Nobody accepts this one.
    let other = StreamProtocol::new("/darkswap-test/nobody/1.0.0");
    assert!(matches!(a.open_stream(b.local_peer_id(), other).await, Err(Error::Stream(_))));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Connections list their protocols once and again only when they may have changed
/// (`network::listed`): a protocol accepted after the connection is up is reachable on it, and
/// once its receiver is dropped it is refused again, on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_accepted_or_dropped_on_a_live_connection_is_listed_accordingly() {
    const LATE: StreamProtocol = StreamProtocol::new("/darkswap-test/late/1.0.0");
    let (a, _) = node().await;
    let (a, _a_rx) = drain(a);
    let (b, b_addr) = node().await;
    let (b, _b_rx) = drain(b);
    a.dial(&b_addr).await.unwrap();
    assert!(matches!(a.open_stream(b.local_peer_id(), LATE).await, Err(Error::Stream(_))), "not accepted yet");

    let mut incoming = b.accept_streams(LATE).unwrap();
    let served = tokio::spawn(async move {
        let (_, mut s) = incoming.next().await.unwrap();
        s.write_all(b"late").await.unwrap();
        s.close().await.unwrap();
        // `incoming` is dropped here: b stops accepting LATE.
    });
    let mut s = a.open_stream(b.local_peer_id(), LATE).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, b"late");
    tokio::time::timeout(WAIT, served).await.unwrap().unwrap();

    assert!(matches!(a.open_stream(b.local_peer_id(), LATE).await, Err(Error::Stream(_))), "dropped receiver");
    assert_eq!(a.connections().len(), 1, "one connection throughout: {:?}", a.connections());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
