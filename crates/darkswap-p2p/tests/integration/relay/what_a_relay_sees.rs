//! What a relay sees of a trade. With transport encryption switched off (a test-only transport),
//! a tap on the relay's link to the maker records everything the relay forwards: the protocol
//! names of the streams inside the circuit are visible, the PSBT is not — it is sealed end to end.

use crate::support::*;
use darkswap_p2p::{
    network::{Network, NetworkBuilder, NetworkConfig, NetworkEvent, RelayServerConfig},
    protocol::Message,
    trade::TradeState,
};
use darkswap_support::types::{TradeBody, TradeMessage};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A TCP proxy to `target` that records every byte in both directions.
async fn tap(target: std::net::SocketAddr) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else { continue };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(pipe(ri, wo, log.clone()));
            tokio::spawn(pipe(ro, wi, log.clone()));
        }
    });
    (port, seen)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        log.lock().unwrap().extend_from_slice(&buf[..n]);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn insecure(config: NetworkConfig) -> NetworkBuilder {
    Network::builder(config).insecure_plaintext_transport().gossip_heartbeat(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_sees_only_ciphertext_of_a_trade() {
    init_tracing();
    let relay = insecure(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
        .relay_server(RelayServerConfig::default())
        .build()
        .await
        .unwrap();
    let relay_id = relay.local_peer_id();
    let bound = relay.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap();
    let relay_addr = format!("{bound}/p2p/{relay_id}");
    let port = bound.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
        _ => None,
    });
    let (tap_port, seen) = tap(format!("127.0.0.1:{}", port.unwrap()).parse().unwrap()).await;
    let (_relay, _relay_rx) = drain(relay);

    // The maker reaches the relay through the tap; the taker reaches the maker only via the relay.
    let through_tap = format!("/ip4/127.0.0.1/tcp/{tap_port}/p2p/{relay_id}");
    let maker = insecure(NetworkConfig { relay_peers: vec![through_tap.parse().unwrap()], ..NetworkConfig::default() });
    let (maker, mut maker_rx) = drain(maker.build().await.unwrap());
    next_matching(&mut maker_rx, |ev| matches!(ev, NetworkEvent::RelayReserved { .. }).then_some(())).await;
    let (taker, mut taker_rx) = drain(insecure(NetworkConfig::default()).build().await.unwrap());
    taker.dial(&format!("{relay_addr}/p2p-circuit/p2p/{}", maker.local_peer_id())).await.unwrap();
    until_meshed(&taker, &[maker.local_peer_id()]).await;

    let order = maker.publish_order(draft(7, Duration::from_secs(600))).await.unwrap();
    until("the taker sees the order", || async { taker.order(&order.id) }).await;
    let id = taker.start_trade(&order, 5).await.unwrap();
    let msg = |body| TradeMessage { trade_id: id, order_id: order.id, body };
    assert_eq!(maker.send_trade(taker.local_peer_id(), msg(TradeBody::Accept)).await.unwrap(), TradeState::Accepted);
    next_matching(&mut taker_rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: Message::Trade(t), .. } if t.body == TradeBody::Accept => Some(()),
        _ => None,
    })
    .await;
    let psbt: Vec<u8> = b"psbt\xff".iter().copied().chain((0..60u8).map(|i| i.wrapping_mul(37) ^ 0x5a)).collect();
    let st = taker.send_trade(maker.local_peer_id(), msg(TradeBody::PsbtOffer { psbt: psbt.clone() })).await.unwrap();
    assert_eq!(st, TradeState::PsbtOffered);
    let got = next_matching(&mut maker_rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: Message::Trade(t), .. } => match t.body {
            TradeBody::PsbtOffer { psbt } => Some(psbt),
            _ => None,
        },
        _ => None,
    })
    .await;
    assert_eq!(got, psbt, "the maker decrypted the PSBT");

    let seen = seen.lock().unwrap().clone();
    // The tap sees inside the circuit: the trade protocol's stream is negotiated in the clear ...
    assert!(contains(&seen, b"/darkswap/trade/1.0.0"), "the tap sees the circuit's streams ({} bytes)", seen.len());
    // ... and the order itself (gossip is public) ...
    assert!(contains(&seen, &order.id.0), "gossip crosses the relay in the clear here");
    // ... but never the PSBT, nor even a 16-byte piece of it.
    for piece in psbt.windows(16) {
        assert!(!contains(&seen, piece), "PSBT bytes crossed the relay in the clear");
    }
}
