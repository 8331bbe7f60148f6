//! WebRTC through the signaling server: two native peers, data channels both ways, and the
//! identity handshake.

use crate::common::{init_tracing, WAIT};
use darkswap_p2p::{
    signaling::{SignalingServer, SignalingServerConfig},
    webrtc_connection::WebRtcError,
    WebRtcSignalingClient,
};
use libp2p::identity::Keypair;
use std::net::SocketAddr;

pub async fn server() -> SignalingServer {
    init_tracing();
    let config = SignalingServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    SignalingServer::bind(config).await.expect("signaling server binds")
}

pub async fn client(url: &str) -> WebRtcSignalingClient {
    let client = WebRtcSignalingClient::new(Keypair::generate_ed25519());
    client.connect(url).await.expect("registers");
    client
}

#[tokio::test]
async fn two_peers_exchange_data_channel_messages_both_ways() {
    let server = server().await;
    let (a, b) = (client(&server.url()).await, client(&server.url()).await);
    let offer = a.create_offer(&b.peer_id()).await.expect("offer sent");
    assert!(offer.sdp.starts_with("v=0"), "{}", offer.sdp);
    let at_a = tokio::time::timeout(WAIT, a.wait_for_connection(&b.peer_id())).await.unwrap().expect("a connects");
    let at_b = tokio::time::timeout(WAIT, b.next_connection()).await.unwrap().expect("b accepts");
    assert_eq!(at_a.remote_peer_id(), b.peer_id(), "the handshake proved b");
    assert_eq!(at_b.remote_peer_id(), a.peer_id(), "the handshake proved a");
    assert!(at_a.is_outbound() && !at_b.is_outbound());
    println!("setup {:?}", at_a.setup_time());

    let (da, db) = (&at_a.data_channels["data"], &at_b.data_channels["data"]);
    da.send(b"hello from a".to_vec()).await.unwrap();
    assert_eq!(db.receive().await.unwrap(), b"hello from a");
    db.send(b"hello from b".to_vec()).await.unwrap();
    assert_eq!(da.receive().await.unwrap(), b"hello from b");
    for i in 0..100u32 {
        da.send(i.to_be_bytes().repeat(1000)).await.unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(db.receive().await.unwrap(), i.to_be_bytes().repeat(1000), "in order, intact");
    }
    let too_big = vec![0; darkswap_p2p::webrtc_connection::MAX_DATA_MESSAGE + 1];
    assert!(matches!(da.send(too_big).await, Err(WebRtcError::MessageTooLarge(_))));
}
