//! Security wired into the network: a relay that requires authentication, trades end-to-end
//! encrypted through it, and bans enforced at once.

use crate::support::*;
use darkswap_p2p::{
    auth::{AuthManagerConfig, AuthMethod, AuthRefusal, AuthorizationLevel},
    error::AuthRequestError,
    network::{Network, NetworkConfig, NetworkEvent, NetworkNotice, RelayServerConfig},
    protocol::Message,
    trade::TradeState,
    Error,
};
use darkswap_support::types::{PeerId, TradeBody, TradeMessage};
use std::time::Duration;

fn members() -> AuthManagerConfig {
    AuthManagerConfig {
        auth_method: AuthMethod::SharedKey,
        shared_key: Some(b"darkswap-test-network-key".to_vec()),
        require_auth: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_serves_members_only_and_trades_through_it_are_sealed() {
    init_tracing();
    let relay = Network::builder(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
        .relay_server(RelayServerConfig::default())
        .auth(members())
        .build()
        .await
        .unwrap();
    let relay_id = relay.local_peer_id();
    let relay_addr = format!("{}/p2p/{relay_id}", relay.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap());
    let (relay, _relay_rx) = drain(relay);
    let config = || NetworkConfig { relay_peers: vec![relay_addr.parse().unwrap()], ..NetworkConfig::default() };
    let member = || async {
        let net = Network::builder(config()).auth(members()).gossip_heartbeat(Duration::from_millis(200));
        drain(net.build().await.unwrap())
    };

    // Members authenticate with the shared key, then reserve.
    let (a, mut a_rx) = member().await;
    let (b, mut b_rx) = member().await;
    for rx in [&mut a_rx, &mut b_rx] {
        let on = next_matching(rx, |ev| match ev {
            NetworkEvent::RelayReserved { relay_peer_id, .. } => Some(relay_peer_id),
            _ => None,
        })
        .await;
        assert_eq!(on, relay_id);
    }
    let auth = relay.auth();
    assert_eq!(auth.authorization_level(&a.local_peer_id()), AuthorizationLevel::Basic);

    // An outsider (no shared key) gets no reservation, and cannot authenticate either.
    let mut outsider = Network::new(config()).await.unwrap();
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            if let NetworkNotice::RelayReservationFailed { relay_peer_id, .. } = outsider.next_notice().await.unwrap() {
                return relay_peer_id;
            }
        }
    })
    .await
    .expect("the relay refuses the outsider's reservation");
    assert_eq!(refused, relay_id);
    let err = outsider.authenticate(relay_id).await.unwrap_err();
    assert!(matches!(err, Error::Auth(AuthRequestError::Answer(_))), "{err}");
    assert_eq!(auth.authorization_level(&outsider.local_peer_id()), AuthorizationLevel::None);
    // Nor a circuit to a member.
    let err = outsider.dial(&format!("{relay_addr}/p2p-circuit/p2p/{}", b.local_peer_id())).await.unwrap_err();
    assert!(matches!(err, Error::Dial(_)), "{err}");

    // A trade between the members, through the relay only: every step arrives, sealed end to end.
    a.dial(&format!("{relay_addr}/p2p-circuit/p2p/{}", b.local_peer_id())).await.unwrap();
    until_meshed(&a, &[b.local_peer_id()]).await;
    let order = b.publish_order(draft(3, Duration::from_secs(600))).await.unwrap();
    until("a sees b's order", || async { a.order(&order.id) }).await;
    // Both require authentication: each side proves itself to the other on its first trade message.
    assert_eq!(b.auth().authorization_level(&a.local_peer_id()), AuthorizationLevel::None);
    let id = a.start_trade(&order, 10).await.unwrap();
    assert_eq!(b.auth().authorization_level(&a.local_peer_id()), AuthorizationLevel::Basic);
    let step = next_matching(&mut b_rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: Message::Trade(t), .. } if t.trade_id == id => Some(t.body),
        _ => None,
    })
    .await;
    assert_eq!(step, TradeBody::Intent { amount: 10 });
    let msg = TradeMessage { trade_id: id, order_id: order.id, body: TradeBody::Accept };
    assert_eq!(b.send_trade(a.local_peer_id(), msg).await.unwrap(), TradeState::Accepted);
    assert!(a.encryption().has_session(&b.local_peer_id()) && b.encryption().has_session(&a.local_peer_id()));
    assert!(!relay.encryption().has_session(&a.local_peer_id()), "the relay holds no trade keys");
    assert!(
        a.connections().iter().all(|c| c.peer_id != b.local_peer_id() || c.relayed),
        "a and b only meet via the relay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_peer_and_tokens_over_the_network() {
    init_tracing();
    let (x, x_addr) = node().await;
    let y = Network::builder(NetworkConfig::default()).auth(members()).build().await.unwrap();
    let z = Network::builder(NetworkConfig::default()).auth(members()).build().await.unwrap();
    let (x, _x_rx) = drain(x);
    let (y, _y_rx) = drain(y);
    let (z, _z_rx) = drain(z);
    let y_addr = format!("{}/p2p/{}", y.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap(), y.local_peer_id());
    // z makes y prove it holds the shared key.
    z.dial(&y_addr).await.unwrap();
    assert_eq!(z.verify_peer(y.local_peer_id()).await.unwrap(), AuthorizationLevel::Basic);
    // x (identity signatures) cannot answer a shared-key challenge: y refuses x's proof attempt.
    x.dial(&y_addr).await.unwrap();
    let err = x.authenticate(y.local_peer_id()).await.unwrap_err();
    assert!(matches!(err, Error::Auth(AuthRequestError::Answer(_))), "{err}");
    // y asks x to prove itself: x answers with its identity method, which y refuses.
    let err = y.verify_peer(x.local_peer_id()).await.unwrap_err();
    assert!(matches!(err, Error::Auth(AuthRequestError::Refused(AuthRefusal::CannotProve))), "{err}");
    let _ = x_addr;
    // z authenticates to y and gets a level.
    assert_eq!(z.authenticate(y.local_peer_id()).await.unwrap(), AuthorizationLevel::Basic);
    assert!(y.auth().is_authorized(&z.local_peer_id(), AuthorizationLevel::Basic));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banned_peer_is_cut_off_at_once() {
    init_tracing();
    let (x, x_addr) = node().await;
    let (x, mut x_rx) = drain(x);
    let (y, _) = node().await;
    let (y, _y_rx) = drain(y);
    y.dial(&x_addr).await.unwrap();
    let y_id: PeerId = y.local_peer_id();
    next_matching(&mut x_rx, |ev| matches!(ev, NetworkEvent::PeerConnected(p) if p == y_id).then_some(())).await;
    x.ban_peer(y_id).await.unwrap();
    next_matching(&mut x_rx, |ev| matches!(ev, NetworkEvent::PeerDisconnected(p) if p == y_id).then_some(())).await;
    // A banned peer's new connection is refused as soon as it is established.
    let x_id = x.local_peer_id();
    let _ = y.dial(&x_addr).await;
    until("y cut off", || async { (!y.connected_peers().await.ok()?.contains(&x_id)).then_some(()) }).await;
    assert!(!x.connected_peers().await.unwrap().contains(&y_id));
    assert_eq!(x.auth().authorization_level(&y_id), AuthorizationLevel::None);
    x.unban_peer(y_id).await.unwrap();
    assert_eq!(y.dial(&x_addr).await.unwrap(), x.local_peer_id());
}
