//! Known attacks on the libp2p stack, replayed byte for byte against a real node: a yamux SYN
//! frame with a body far over the stream window, a gossipsub PRUNE whose backoff overflows any
//! clock, a peer subscribing to 10,000 topics, and length prefixes claiming huge sizes. After
//! each the node is still up: it serves an honest peer, which still receives its orders.

use crate::support::*;
use darkswap_p2p::{
    libp2p::{
        core::{
            muxing::{StreamMuxerBox, StreamMuxerExt},
            transport::{DialOpts, PortUse},
            upgrade::{OutboundConnectionUpgrade, Version},
            Endpoint, Transport,
        },
        futures::{future::poll_fn, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
        identity::Keypair,
        noise, tcp, yamux, Multiaddr,
    },
    network::{Network, NetworkEvent, KAD_PROTOCOL},
    protocol::{Message, ORDERBOOK_TOPIC, SYNC_PROTOCOL},
};
use std::{
    task::Poll,
    time::{Duration, Instant},
};
use tokio_util::compat::TokioAsyncReadCompatExt;

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A multistream-select message: varint length, the text, newline.
fn ms(proto: &str) -> Vec<u8> {
    let mut out = Vec::new();
    varint(proto.len() as u64 + 1, &mut out);
    out.extend_from_slice(proto.as_bytes());
    out.push(b'\n');
    out
}

/// Protobuf field `field` with a length-delimited value.
fn pb_bytes(field: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3 | 2, &mut out);
    varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    out
}

/// Protobuf field `field` with a varint value.
fn pb_varint(field: u64, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3, &mut out);
    varint(value, &mut out);
    out
}

/// A gossipsub RPC frame (varint length prefix, protobuf body).
fn gossip_frame(rpc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(rpc.len() as u64, &mut out);
    out.extend_from_slice(rpc);
    out
}

/// Subscriptions to `topics` in one RPC.
fn subscribe_rpc(topics: impl Iterator<Item = String>) -> Vec<u8> {
    topics.flat_map(|t| pb_bytes(1, &[pb_varint(1, 1), pb_bytes(2, t.as_bytes())].concat())).collect()
}

fn tcp_addr(addr: &str) -> std::net::SocketAddr {
    use darkswap_p2p::libp2p::multiaddr::Protocol;
    let a: Multiaddr = addr.parse().unwrap();
    let mut it = a.iter();
    match (it.next(), it.next()) {
        (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(port))) => (ip, port).into(),
        _ => panic!("tcp address expected: {a}"),
    }
}

/// Opens a connection with Noise and Yamux to `addr` and writes each payload on its own
/// substream after selecting its protocol (without waiting for the answer, as a dialer that
/// knows the protocol may). Keeps the connection driven until every byte is written and `hold`
/// has passed, or the node closed it.
async fn send_on_streams(addr: &str, payloads: Vec<(&'static str, Vec<u8>)>, hold: Duration) {
    let key = Keypair::generate_ed25519();
    let mut transport = tcp::tokio::Transport::new(tcp::Config::default())
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(&key).unwrap())
        .multiplex(yamux::Config::default())
        .map(|(p, m), _| (p, StreamMuxerBox::new(m)))
        .boxed();
    let target: Multiaddr = addr.parse().unwrap();
    let opts = DialOpts { role: Endpoint::Dialer, port_use: PortUse::New };
    let (_, mut muxer) = transport.dial(target, opts).unwrap().await.expect("connect");
    let mut pending: Vec<(Option<darkswap_p2p::libp2p::core::muxing::SubstreamBox>, Vec<u8>, usize)> = payloads
        .into_iter()
        .map(|(proto, data)| ([ms("/multistream/1.0.0"), ms(proto), data].concat(), proto))
        .map(|(bytes, _)| (None, bytes, 0))
        .collect();
    let start = Instant::now();
    poll_fn(|cx| {
        // Drive the connection; accept and drop what the node opens; write ours.
        loop {
            match muxer.poll_unpin(cx) {
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        while let Poll::Ready(r) = muxer.poll_inbound_unpin(cx) {
            if r.is_err() {
                return Poll::Ready(());
            }
        }
        for (stream, bytes, written) in pending.iter_mut() {
            if stream.is_none() {
                match muxer.poll_outbound_unpin(cx) {
                    Poll::Ready(Ok(s)) => *stream = Some(s),
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => continue,
                }
            }
            let s = stream.as_mut().unwrap();
            while *written < bytes.len() {
                match std::pin::Pin::new(&mut *s).poll_write(cx, &bytes[*written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => *written += n,
                    Poll::Ready(_) => {
                        *written = bytes.len(); // the node reset it: nothing more to write
                    }
                    Poll::Pending => break,
                }
            }
            let _ = std::pin::Pin::new(&mut *s).poll_flush(cx);
        }
        if pending.iter().all(|(_, b, w)| *w >= b.len()) && start.elapsed() >= hold {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// The node still works: a fresh peer connects, and an order the target posts reaches it.
async fn still_serves(target: &Network, addr: &str) {
    let (probe, _) = node().await;
    let (probe, mut rx) = drain(probe);
    probe.dial(addr).await.expect("the node still accepts connections");
    until_meshed(target, &[probe.local_peer_id()]).await;
    let order = target.publish_order(draft(1, Duration::from_secs(600))).await.expect("the node still publishes");
    let got = next_matching(&mut rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: Message::OrderAnnounce(o), .. } if o.id == order.id => Some(o.id),
        _ => None,
    })
    .await;
    assert_eq!(got, order.id);
    probe.shutdown().await.unwrap();
}

/// A Noise-secured connection to `addr` on which yamux was selected, as raw bytes.
async fn raw_yamux(addr: &str) -> impl AsyncRead + AsyncWrite + Unpin {
    let mut io = tokio::net::TcpStream::connect(tcp_addr(addr)).await.unwrap().compat();
    // multistream-select "/noise" by hand, then the Noise handshake, then "/yamux/1.0.0".
    io.write_all(&[ms("/multistream/1.0.0"), ms("/noise")].concat()).await.unwrap();
    let mut echo = vec![0u8; ms("/multistream/1.0.0").len() + ms("/noise").len()];
    io.read_exact(&mut echo).await.unwrap();
    let key = Keypair::generate_ed25519();
    let (_, mut secure) = noise::Config::new(&key).unwrap().upgrade_outbound(io, "/noise").await.expect("noise");
    secure.write_all(&[ms("/multistream/1.0.0"), ms("/yamux/1.0.0")].concat()).await.unwrap();
    secure.flush().await.unwrap(); // Noise buffers writes into frames until flushed
    let mut echo = vec![0u8; ms("/multistream/1.0.0").len() + ms("/yamux/1.0.0").len()];
    secure.read_exact(&mut echo).await.unwrap();
    assert!(echo.ends_with(b"/yamux/1.0.0\n"), "yamux selected");
    secure
}

/// A yamux Data frame header with the SYN flag opening stream 1, claiming `len` body bytes.
fn syn_header(len: u32) -> Vec<u8> {
    let mut frame = vec![0u8, 0u8];
    frame.extend_from_slice(&1u16.to_be_bytes());
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&len.to_be_bytes());
    frame
}

/// Reads yamux frames from the node until it resets stream 1, tells us to go away (a GoAway
/// frame: a protocol error, no new streams), or closes the connection.
async fn until_reset_or_closed(io: &mut (impl AsyncRead + Unpin)) -> &'static str {
    let outcome = tokio::time::timeout(WAIT, async {
        let mut header = [0u8; 12];
        loop {
            if io.read_exact(&mut header).await.is_err() {
                return "closed";
            }
            let flags = u16::from_be_bytes([header[2], header[3]]);
            let stream = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
            if stream == 1 && flags & 0x8 != 0 {
                return "reset";
            }
            if header[1] == 3 {
                return "go away";
            }
            if header[1] == 0 {
                let mut body = vec![0u8; len.min(1 << 20) as usize];
                if io.read_exact(&mut body).await.is_err() {
                    return "closed";
                }
            }
        }
    })
    .await;
    outcome.unwrap_or("neither")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_syn_with_an_oversized_body_is_refused() {
    let (target, addr) = node().await;
    // 1: a SYN carrying 1 MiB, four times the 256 KiB window a new stream has. The node refuses
    // it as a protocol error (GoAway) instead of buffering past the window.
    let mut io = raw_yamux(&addr).await;
    let _ = io.write_all(&syn_header(1 << 20)).await;
    let chunk = vec![0x41u8; 64 * 1024];
    for _ in 0..16 {
        if io.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = io.flush().await;
    let outcome = until_reset_or_closed(&mut io).await;
    assert!(["reset", "go away", "closed"].contains(&outcome), "over-window SYN: {outcome}");
    // 2: a SYN claiming a 4 GiB body: refused as a frame too large, the connection dropped
    // before anything is buffered.
    let mut io = raw_yamux(&addr).await;
    let _ = io.write_all(&syn_header(u32::MAX)).await;
    let _ = io.write_all(&[0x41u8; 1024]).await;
    let _ = io.flush().await;
    let outcome = until_reset_or_closed(&mut io).await;
    assert!(["go away", "closed"].contains(&outcome), "4 GiB SYN: {outcome}");
    still_serves(&target, &addr).await;
    target.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_attacks_leave_the_node_up() {
    let (target, addr) = node().await;
    let topic = ORDERBOOK_TOPIC;
    // PRUNE with a backoff of u64::MAX seconds (an Instant overflow in unpatched gossipsub),
    // after subscribing and grafting so that the PRUNE applies to a mesh the node holds.
    let prune = pb_bytes(4, &[pb_bytes(1, topic.as_bytes()), pb_varint(3, u64::MAX)].concat());
    let graft = pb_bytes(3, &pb_bytes(1, topic.as_bytes()));
    let mut meshsub = gossip_frame(&subscribe_rpc(std::iter::once(topic.to_owned())));
    meshsub.extend(gossip_frame(&pb_bytes(3, &graft)));
    meshsub.extend(gossip_frame(&pb_bytes(3, &prune)));
    // 10,000 topics: in RPCs of 100 (each under the per-RPC cap), then all in one frame.
    for batch in 0..100 {
        meshsub.extend(gossip_frame(&subscribe_rpc((0..100).map(|i| format!("flood/{batch}/{i}")))));
    }
    let huge = subscribe_rpc((0..10_000).map(|i| format!("huge/{i}")));
    meshsub.extend(gossip_frame(&huge));
    // A length prefix claiming 2^62 bytes, then a little data.
    let mut lying = Vec::new();
    varint(1 << 62, &mut lying);
    lying.extend_from_slice(&[0u8; 1024]);
    // The same on identify push and Kademlia, and a sync request far over its cap.
    let mut identify_lie = Vec::new();
    varint(u64::MAX >> 1, &mut identify_lie);
    identify_lie.extend_from_slice(&[0u8; 64]);
    let sync_over = vec![1u8; 1 << 20];
    send_on_streams(
        &addr,
        vec![
            ("/meshsub/1.1.0", meshsub),
            ("/meshsub/1.1.0", lying),
            ("/ipfs/id/push/1.0.0", identify_lie.clone()),
            (KAD_PROTOCOL, identify_lie),
            (SYNC_PROTOCOL, sync_over),
        ],
        Duration::from_secs(2),
    )
    .await;
    // The topics one peer could make the node track stay within the cap.
    let mut flood_topics = 0;
    for batch in 0..100 {
        if !target.topic_peers(&format!("flood/{batch}/0")).await.unwrap().is_empty() {
            flood_topics += 1;
        }
    }
    assert!(flood_topics <= 64, "{flood_topics} of the attacker's topics tracked");
    assert!(target.topic_peers("huge/0").await.unwrap().is_empty(), "the oversized RPC was refused");
    still_serves(&target, &addr).await;
    target.shutdown().await.unwrap();
}
