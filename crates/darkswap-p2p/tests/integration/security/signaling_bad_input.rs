//! The signaling server under bad input: each bad frame gets an error or a close, the server
//! stays up, and well-behaved clients are not affected.

use crate::support::{client, server};
use darkswap_p2p::signaling::{
    wire::{self, ClientMessage, ServerMessage},
    ErrorCode, SignalingServer, SignalingServerConfig,
};
use futures::{SinkExt, StreamExt};
use libp2p::{identity::Keypair, PeerId};
use std::{net::SocketAddr, time::Duration};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw(url: &str) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket opens");
    let nonce = match next(&mut ws).await {
        Some(ServerMessage::Challenge { nonce, version }) => {
            assert_eq!(version, wire::SIGNALING_VERSION);
            nonce
        }
        other => panic!("expected a challenge, got {other:?}"),
    };
    (ws, nonce)
}

/// The next server frame; `None` when the server closed the connection.
async fn next(ws: &mut Ws) -> Option<ServerMessage> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("server answers in time") {
            Some(Ok(Message::Text(t))) => return Some(wire::decode_server(t.as_str()).expect("server frames decode")),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(Message::Text(text.into().into())).await.expect("send");
}

async fn expect_error(ws: &mut Ws, code: ErrorCode) -> Option<String> {
    match next(ws).await {
        Some(ServerMessage::Error { code: c, connection_id, .. }) if c == code => connection_id,
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

async fn registered(url: &str) -> (Ws, PeerId) {
    let (mut ws, nonce) = raw(url).await;
    let key = Keypair::generate_ed25519();
    let reg = wire::sign_register(&key, &nonce).unwrap();
    send(&mut ws, wire::encode_client(&ClientMessage::Register(reg))).await;
    assert!(matches!(next(&mut ws).await, Some(ServerMessage::Registered { .. })));
    (ws, key.public().to_peer_id())
}

fn offer_to(peer: PeerId) -> String {
    format!(r#"{{"type":"offer","to":"{peer}","connection_id":"c1","sdp":"v=0"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_frame_is_answered_and_the_server_stays_up() {
    let server = server().await;
    let url = server.url();

    // Malformed frames on one connection: each gets its own error, the connection stays usable.
    let (mut ws, _) = raw(&url).await;
    send(&mut ws, "{").await;
    expect_error(&mut ws, ErrorCode::InvalidJson).await;
    send(&mut ws, r#"{"type":"dance"}"#).await;
    expect_error(&mut ws, ErrorCode::UnknownType).await;
    send(&mut ws, r#"{"type":"offer","to":"not a peer id"}"#).await;
    expect_error(&mut ws, ErrorCode::InvalidMessage).await;
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    expect_error(&mut ws, ErrorCode::InvalidJson).await;
    send(&mut ws, offer_to(PeerId::random())).await;
    assert_eq!(expect_error(&mut ws, ErrorCode::NotRegistered).await.as_deref(), Some("c1"));
    let stale = r#"{"type":"register","version":99,"peer_id":"x","public_key":"","signature":""}"#;
    send(&mut ws, stale).await;
    expect_error(&mut ws, ErrorCode::InvalidMessage).await;

    // Registering someone else's peer id: error, then close.
    let (mut ws, nonce) = raw(&url).await;
    let victim = Keypair::generate_ed25519().public().to_peer_id();
    let mut reg = wire::sign_register(&Keypair::generate_ed25519(), &nonce).unwrap();
    reg.peer_id = victim;
    send(&mut ws, wire::encode_client(&ClientMessage::Register(reg))).await;
    expect_error(&mut ws, ErrorCode::BadProof).await;
    assert!(next(&mut ws).await.is_none(), "closed after a bad proof");

    // A signature over another server's nonce does not register either.
    let (mut ws, _) = raw(&url).await;
    let reg = wire::sign_register(&Keypair::generate_ed25519(), &hex::encode([9u8; 32])).unwrap();
    send(&mut ws, wire::encode_client(&ClientMessage::Register(reg))).await;
    expect_error(&mut ws, ErrorCode::BadProof).await;

    // Offer to an unknown peer: error naming the connection.
    let (mut alice, _) = registered(&url).await;
    send(&mut alice, offer_to(PeerId::random())).await;
    assert_eq!(expect_error(&mut alice, ErrorCode::UnknownPeer).await.as_deref(), Some("c1"));

    // The server writes `from` itself: a forged sender is replaced by the real one.
    let (mut bob, bob_id) = registered(&url).await;
    let forged = format!(r#"{{"type":"bye","from":"{}","to":"{bob_id}","connection_id":"c2"}}"#, PeerId::random());
    send(&mut alice, forged).await;
    match next(&mut bob).await {
        Some(ServerMessage::Routed(r)) => assert_ne!(r.from, None, "from filled"),
        other => panic!("expected the bye, got {other:?}"),
    }

    // An oversized frame closes that connection.
    let (mut big, _) = raw(&url).await;
    let _ = big.send(Message::Text("x".repeat(wire::MAX_SIGNALING_MESSAGE + 1).into())).await;
    loop {
        match next(&mut big).await {
            None => break,
            Some(ServerMessage::Error { .. }) => {}
            Some(other) => panic!("expected a close, got {other:?}"),
        }
    }

    // A flood is cut down to the rate limit and told so; the server and others carry on.
    let (mut flood, _) = registered(&url).await;
    for _ in 0..1000 {
        let _ = flood.feed(Message::Text(offer_to(bob_id).into())).await;
    }
    flood.flush().await.unwrap();
    let mut limited = false;
    let mut delivered = 0;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), next(&mut flood)).await {
        if matches!(msg, ServerMessage::Error { code: ErrorCode::RateLimited, .. }) {
            limited = true;
        }
    }
    while let Ok(Some(ServerMessage::Routed(_))) =
        tokio::time::timeout(Duration::from_millis(300), next(&mut bob)).await
    {
        delivered += 1;
    }
    assert!(limited, "the flooder was told it is rate limited");
    assert!(delivered <= 250, "at most the burst got through, {delivered} did");

    // Well-behaved clients still connect to each other through the same server.
    let (a, b) = (client(&url).await, client(&url).await);
    let conn = a.connect_to_peer(&b.peer_id()).await.expect("WebRTC still works");
    assert_eq!(conn.remote_peer_id(), b.peer_id());
    assert!(server.registered_clients() >= 4);
}

#[tokio::test]
async fn a_full_server_and_wrong_paths_are_refused() {
    let config =
        SignalingServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), max_clients: 2, ..Default::default() };
    let server = SignalingServer::bind(config).await.unwrap();
    let url = server.url();
    let (_one, _) = raw(&url).await;
    let (_two, _) = raw(&url).await;
    let (mut three, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert!(matches!(next(&mut three).await, Some(ServerMessage::Error { code: ErrorCode::ServerFull, .. })));
    assert!(next(&mut three).await.is_none(), "closed when full");

    let wrong = url.replace("/signaling", "/elsewhere");
    let err = tokio_tungstenite::connect_async(&wrong).await.expect_err("only /signaling upgrades");
    assert!(err.to_string().contains("404"), "{err}");
}

/// The client comes back by itself when the server restarts on the same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnect_after_the_server_restarts() {
    let first = server().await;
    let addr = first.local_addr();
    let url = first.url();
    let (a, b) = (client(&url).await, client(&url).await);
    first.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while a.is_registered() || b.is_registered() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("clients notice the server is gone");
    let config = SignalingServerConfig { listen: addr, ..Default::default() };
    let _second = SignalingServer::bind(config).await.expect("rebinds the same port");
    a.wait_registered(Duration::from_secs(15)).await.expect("a re-registered");
    b.wait_registered(Duration::from_secs(15)).await.expect("b re-registered");
    let conn = a.connect_to_peer(&b.peer_id()).await.expect("connects through the new server");
    assert_eq!(conn.remote_peer_id(), b.peer_id());
}
