//! Helpers: start nodes, connect them, wait for events with timeouts.

pub mod raw_gossip;
mod relay;
mod webrtc;

pub use relay::{relay_node, reserved_on};
pub use webrtc::{client, server};

use darkswap_p2p::{
    network::{Network, NetworkBuilder, NetworkConfig, NetworkEvent, NetworkHandle},
    protocol::ORDERBOOK_TOPIC,
};
use darkswap_support::types::{AssetId, OrderDraft, PeerId, Side};
use std::{future::Future, time::Duration};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A node listening on a loopback TCP port.
pub async fn node() -> (Network, String) {
    node_with(|b| b).await
}

/// [`node`] with more builder options.
pub async fn node_with(options: impl FnOnce(NetworkBuilder) -> NetworkBuilder) -> (Network, String) {
    init_tracing();
    let builder = Network::builder(NetworkConfig::default()).gossip_heartbeat(Duration::from_millis(200));
    let net = options(builder).build().await.expect("network starts");
    let addr = net.listen_on("/ip4/127.0.0.1/tcp/0").await.expect("listen");
    let full = format!("{addr}/p2p/{}", net.local_peer_id());
    (net, full)
}

/// Polls `check` until it returns `Some`, failing the test after `WAIT`.
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `node` has every peer in `peers` in its order-book gossip mesh.
pub async fn until_meshed(node: &NetworkHandle, peers: &[PeerId]) {
    until("gossip mesh", || async {
        let mesh = node.mesh_peers(ORDERBOOK_TOPIC).await.ok()?;
        peers.iter().all(|p| mesh.contains(p)).then_some(())
    })
    .await
}

/// Moves the event stream of `net` into a task that forwards every event to a channel, so the
/// test can keep commanding the node through the returned handle.
pub fn drain(mut net: Network) -> (NetworkHandle, mpsc::UnboundedReceiver<NetworkEvent>) {
    let handle = net.handle();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = net.next_event().await {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    (handle, rx)
}

/// A node's handle and its forwarded events (see [`drain`]).
pub type Drained = (NetworkHandle, mpsc::UnboundedReceiver<NetworkEvent>);

/// Two [`node`]s, the second dialed to the first and in its order-book gossip mesh, and the
/// first one's address.
pub async fn meshed_pair() -> (Drained, Drained, String) {
    let (a, a_addr) = node().await;
    let a = drain(a);
    let (b, _) = node().await;
    let b = drain(b);
    b.0.dial(&a_addr).await.expect("dial");
    until_meshed(&a.0, &[b.0.local_peer_id()]).await;
    (a, b, a_addr)
}

/// The next event matching `pick`, within `WAIT`.
pub async fn next_matching<T>(
    rx: &mut mpsc::UnboundedReceiver<NetworkEvent>,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("network stopped");
            if let Some(v) = pick(ev) {
                return v;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// The id of the next order announcement reported by the node behind `rx`, within `WAIT`.
pub async fn next_announced(rx: &mut mpsc::UnboundedReceiver<NetworkEvent>) -> darkswap_support::types::OrderId {
    next_matching(rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: darkswap_p2p::protocol::Message::OrderAnnounce(o), .. } => Some(o.id),
        _ => None,
    })
    .await
}

pub fn draft(n: u128, ttl: Duration) -> OrderDraft {
    OrderDraft {
        base: "rune:840000:1".parse().unwrap(),
        quote: AssetId::Btc,
        side: if n.is_multiple_of(2) { Side::Buy } else { Side::Sell },
        amount: 1_000 + n,
        price: 2_500,
        ttl,
        terms: Vec::new(),
    }
}

pub use raw_gossip::raw_gossip_swarm;

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
