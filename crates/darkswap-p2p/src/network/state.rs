//! The state the task writes and handles read: the order book, counters, connections,
//! reachability, relay status, trade sessions. Each field is written by one part of the task
//! (named on the field) and read by [`NetworkHandle`](super::NetworkHandle) methods and the
//! metrics collector.

use super::{stats, swarm::streams, ConnectionInfo, Reachability, RelayStatus};
use crate::{
    auth::AuthManager,
    encryption::EncryptionManager,
    order_book::{BookError, Insert, OrderBook},
    protocol::{envelope::Envelope, Message},
    runtime,
    trade::TradeSession,
};
use darkswap_support::types::PeerId;
use libp2p::{identity::Keypair, swarm::ConnectionId, Multiaddr};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// State the task writes and handles read.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Written by ingest (gossip and sync), the own publishes, and the tick (expiry).
    pub(crate) book: Mutex<OrderBook>,
    pub(crate) stats: stats::Counters,
    /// Written by the task's connection part.
    pub(crate) listen_addrs: Mutex<Vec<Multiaddr>>,
    /// A copy of the trade part's sessions, republished after each change.
    pub(crate) trades: Mutex<Vec<TradeSession>>,
    /// Fed by the discovery and relay parts; the relay pool reads it too.
    pub(crate) relays: crate::relay_discovery::RelayDiscoveryManager,
    /// Written by the task's connection part.
    pub(crate) connections: Mutex<HashMap<ConnectionId, ConnectionInfo>>,
    pub(crate) reachability: Mutex<Reachability>,
    pub(crate) auth: Arc<AuthManager>,
    pub(crate) e2e: Arc<EncryptionManager>,
    pub(crate) keypair: Keypair,
    /// Written by the relay part.
    pub(crate) relay_status: Mutex<HashMap<PeerId, RelayStatus>>,
    pub(crate) webrtc_client: Option<Arc<crate::webrtc::signaled::WebRtcSignalingClient>>,
    pub(crate) streams: streams::StreamControl,
    /// When each connected peer last exchanged DarkSwap messages with us (connected peers only).
    pub(crate) activity: Mutex<HashMap<PeerId, web_time::Instant>>,
    pub(crate) metrics: crate::metrics::P2PMetrics,
}

/// What a message did to the local book.
pub(crate) enum Applied {
    /// News: reported to the application and forwarded.
    New,
    /// An order already in the book (learned by sync or an earlier copy).
    Known,
    /// Nothing to pass on (a withdrawn order, a trade message).
    Dropped,
}

impl Shared {
    /// Live orders in the local book.
    pub(crate) fn live_orders(&self) -> usize {
        let now = runtime::now_unix();
        self.book.lock().map(|b| b.live(now).len()).unwrap_or_default()
    }

    /// Notes traffic with `peer` (for the active/idle connection gauges).
    pub(crate) fn touch(&self, peer: PeerId) {
        if let Ok(mut a) = self.activity.lock() {
            a.insert(peer, web_time::Instant::now());
        }
    }

    /// Applies a validated message to the local book (`bytes` is its signed envelope, kept to
    /// serve sync).
    pub(crate) fn apply(&self, env: &Envelope, bytes: &Arc<[u8]>) -> Result<Applied, BookError> {
        let Ok(mut book) = self.book.lock() else {
            return Ok(Applied::Dropped);
        };
        match &env.message {
            Message::OrderAnnounce(order) => match book.insert(order.clone(), bytes.clone()) {
                Ok(Insert::Added) => {
                    stats::Counters::bump(&self.stats.orders_added);
                    Ok(Applied::New)
                }
                Ok(Insert::Duplicate) => Ok(Applied::Known),
                Ok(Insert::Withdrawn) => Ok(Applied::Dropped),
                Err(e) => Err(e),
            },
            Message::OrderCancel(c) => {
                book.withdraw(c.order_id, c.maker, c.expiry);
                Ok(Applied::New)
            }
            Message::TradeSettled(s) => {
                book.withdraw(s.order_id, s.maker, s.expiry);
                Ok(Applied::New)
            }
            Message::Trade(_) => Ok(Applied::Dropped),
        }
    }
}
