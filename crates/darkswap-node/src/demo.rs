//! `darkswap-node demo`: a small DarkSwap network in one process, on loopback.
//!
//! It starts nodes in a line, has two of them post orders and waits until every book holds them,
//! lets a late joiner catch up by sync, runs a full trade negotiation between the late joiner and a
//! maker, has the maker announce the settlement, and returns a summary.

use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkEvent, NetworkHandle},
    protocol::{Message, ORDERBOOK_TOPIC, TRADE_TOPIC},
    trade::TradeState,
    Error,
};
use darkswap_support::types::{AssetId, OrderDraft, PeerId, RuneId, Side, TradeBody, TradeMessage, TradeSettled, Txid};
use std::{
    fmt,
    future::Future,
    time::{Duration, Instant},
};

/// How long any one demo step may take before the demo fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A network call failed.
    #[error(transparent)]
    Network(#[from] Error),
    /// A step did not complete in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// Bad arguments.
    #[error("{0}")]
    Usage(&'static str),
}

/// What the demo did and measured.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Nodes in the line, plus the late joiner.
    pub nodes: usize,
    /// Orders posted.
    pub orders: usize,
    /// From the first post until every book held every order.
    pub propagation: Duration,
    /// From the late joiner's dial until its book was complete.
    pub sync: Duration,
    /// The five-step negotiation.
    pub trade: Duration,
    /// Orders per book at the end (after the settled one left every book).
    pub final_books: Vec<usize>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "demo summary")?;
        writeln!(f, "  nodes:                 {} (+1 late joiner)", self.nodes)?;
        writeln!(f, "  orders gossiped:       {} in {:?} to every node", self.orders, self.propagation)?;
        writeln!(f, "  late joiner synced:    {} orders in {:?}", self.orders, self.sync)?;
        writeln!(f, "  trade negotiated:      intent, accept, psbt offer, psbt signed, complete in {:?}", self.trade)?;
        write!(f, "  books after settlement: {:?}", self.final_books)
    }
}

async fn within<T>(what: &'static str, fut: impl Future<Output = T>) -> Result<T, DemoError> {
    tokio::time::timeout(STEP_TIMEOUT, fut).await.map_err(|_| DemoError::Timeout(what))
}

async fn until(what: &'static str, mut check: impl FnMut() -> bool) -> Result<(), DemoError> {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

async fn start_node(name: String) -> Result<(NetworkHandle, String), DemoError> {
    let mut net =
        Network::builder(NetworkConfig::default()).gossip_heartbeat(Duration::from_millis(200)).build().await?;
    let addr = net.listen_on("/ip4/127.0.0.1/tcp/0").await?;
    let full = format!("{addr}/p2p/{}", net.local_peer_id());
    println!("{name}: {full}");
    let handle = net.handle();
    tokio::spawn(async move {
        while let Some(ev) = net.next_event().await {
            match ev {
                NetworkEvent::MessageReceived { peer_id, message: Message::Trade(t), .. } => {
                    println!("{name}: trade step {} from {peer_id}", t.body.kind())
                }
                NetworkEvent::MessageReceived { message: Message::TradeSettled(s), .. } => {
                    println!("{name}: order {} settled in {}", s.order_id, s.txid)
                }
                other => tracing::debug!(node = %name, event = ?other, "event"),
            }
        }
    });
    Ok((handle, full))
}

async fn meshed(node: &NetworkHandle, peers: &[PeerId]) -> Result<(), DemoError> {
    within("gossip mesh", async {
        loop {
            let mesh = node.mesh_peers(ORDERBOOK_TOPIC).await.unwrap_or_default();
            if peers.iter().all(|p| mesh.contains(p)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Runs the demo with `nodes` nodes in a line and `orders` orders from each of two makers.
pub async fn run(nodes: usize, orders: usize) -> Result<Summary, DemoError> {
    if nodes < 3 {
        return Err(DemoError::Usage("the demo needs at least 3 nodes"));
    }
    let mut handles = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..nodes {
        let (h, a) = start_node(format!("node{i}")).await?;
        handles.push(h);
        addrs.push(a);
    }
    for i in 0..nodes - 1 {
        handles[i].dial(&addrs[i + 1]).await?;
    }
    for i in 0..nodes {
        let mut n = Vec::new();
        if i > 0 {
            n.push(handles[i - 1].local_peer_id());
        }
        if i + 1 < nodes {
            n.push(handles[i + 1].local_peer_id());
        }
        meshed(&handles[i], &n).await?;
    }

    let rune = AssetId::Rune(RuneId { block: 840_000, tx: 1 });
    let started = Instant::now();
    let mut posted = Vec::new();
    for (maker, side) in [(0, Side::Sell), (1, Side::Buy)] {
        for k in 0..orders {
            let draft = OrderDraft {
                base: rune,
                quote: AssetId::Btc,
                side,
                amount: 10_000 * (k as u128 + 1),
                price: 2_500 + k as u128,
                ttl: Duration::from_secs(3600),
                terms: Vec::new(),
            };
            let o = handles[maker].publish_order(draft).await?;
            println!("node{maker}: posted {} {} {} {} @ {}", o.id, o.side, o.amount, o.base, o.price);
            posted.push(o);
        }
    }
    let total = posted.len();
    until("orders reach every node", || handles.iter().all(|h| h.orders().len() == total)).await?;
    let propagation = started.elapsed();
    println!("every node holds {total} orders after {propagation:?}");

    let (late, _) = start_node("late".into()).await?;
    let started = Instant::now();
    late.dial(&addrs[nodes - 1]).await?;
    until("late joiner syncs", || late.orders().len() == total).await?;
    let sync = started.elapsed();
    println!("late joiner synced {total} orders in {sync:?}");

    // The late joiner takes the first order of node0.
    let order = posted[0].clone();
    let maker = &handles[0];
    late.dial(&addrs[0]).await?;
    let started = Instant::now();
    let trade_id = late.start_trade(&order, order.amount / 2).await?;
    let msg = |body| TradeMessage { trade_id, order_id: order.id, body };
    let taker_id = late.local_peer_id();
    maker.send_trade(taker_id, msg(TradeBody::Accept)).await?;
    late.send_trade(order.maker, msg(TradeBody::PsbtOffer { psbt: b"psbt\xff unsigned".to_vec() })).await?;
    maker.send_trade(taker_id, msg(TradeBody::PsbtSigned { psbt: b"psbt\xff signed".to_vec() })).await?;
    let txid = Txid([0x5a; 32]);
    let state = late.send_trade(order.maker, msg(TradeBody::Complete { txid })).await?;
    let trade = started.elapsed();
    assert_eq!(state, TradeState::Completed);
    println!("trade {trade_id} completed in {trade:?}");

    let settled = TradeSettled { order_id: order.id, maker: order.maker, txid, expiry: order.expiry };
    maker.publish(TRADE_TOPIC, Message::TradeSettled(settled)).await?;
    let all: Vec<&NetworkHandle> = handles.iter().chain(std::iter::once(&late)).collect();
    until("settled order leaves every book", || all.iter().all(|h| h.order(&order.id).is_none())).await?;
    let final_books = all.iter().map(|h| h.orders().len()).collect();

    for h in all {
        h.shutdown().await?;
    }
    Ok(Summary { nodes, orders: total, propagation, sync, trade, final_books })
}
