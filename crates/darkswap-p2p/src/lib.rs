//! # darkswap-p2p
//!
//! The peer-to-peer network of DarkSwap: traders' nodes find each other, gossip a signed order
//! book, sync it to newcomers, and negotiate trades directly, on native platforms and in the
//! browser (wasm32).
//!
//! The front door is [`network::Network`]:
//!
//! ```no_run
//! use darkswap_p2p::network::{Network, NetworkConfig, NetworkEvent};
//! use darkswap_support::types::{AssetId, OrderDraft, Side};
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), darkswap_p2p::Error> {
//! let mut network = Network::new(NetworkConfig::default()).await?;
//! network.listen_on("/ip4/0.0.0.0/tcp/9000").await?;
//! let order = network
//!     .publish_order(OrderDraft {
//!         base: "rune:840000:1".parse().unwrap(),
//!         quote: AssetId::Btc,
//!         side: Side::Sell,
//!         amount: 10_000,
//!         price: 1_500,
//!         ttl: Duration::from_secs(3600),
//!         terms: Vec::new(),
//!     })
//!     .await?;
//! println!("posted {}", order.id);
//! while let Some(event) = network.next_event().await {
//!     if let NetworkEvent::MessageReceived { peer_id, message, .. } = event {
//!         println!("{peer_id}: {message:?}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Concepts
//!
//! - **A node is one task.** [`Network::new`](network::Network::new) starts a task that owns the
//!   libp2p swarm; the [`Network`](network::Network) and its cloneable
//!   [`NetworkHandle`](network::NetworkHandle)s send it commands and read the state it keeps
//!   (order book, connections, counters). Events come back on a bounded queue: when the
//!   application stops reading, the node stops reading the network instead of dropping events.
//! - **Orders are signed by their makers.** Every order, cancel and settlement travels in a
//!   [signed envelope](protocol::envelope) over anonymous gossipsub, so any node can check it
//!   and forward it unchanged; newcomers pull the book by [sync](protocol::SyncRequest), and
//!   anti-entropy rounds repair what gossip missed. Invalid input is rejected with a typed
//!   [reason](protocol::RejectReason), counted, and never reaches the application.
//! - **Trades are end to end.** Trade steps go straight to the counterparty over
//!   request-response, sealed with a session key from a signed X25519 exchange
//!   ([`encryption`]), and follow one [state machine](trade) on both sides.
//! - **Nodes behind NATs** reserve on circuit relays, hole-punch with DCUtR where they can, and
//!   find relays in the DHT, by identify and by mDNS ([`relay_discovery`],
//!   [`relay_connection_pool`]). Relays can serve members only ([`auth`]).
//! - **Browsers are nodes too**: the same [`Network`](network::Network) compiles to wasm32 and
//!   dials native nodes by [WebRTC-direct](webrtc::direct), WebSocket, or [WebRTC](webrtc)
//!   through a signaling server.
//! - **Everything is measured**: each network records Prometheus [`metrics`].
//!
//! The [`guide`] walks through each feature with examples; the repository's
//! `docs/ARCHITECTURE.md` explains the design.
// `unsafe` in two audited places only: encryption/aead.rs (ring's AEAD key kept in place and
// wiped on drop) and runtime.rs (the coarse monotonic clock); nothing else may.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod connection_pool;
pub mod encryption;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod network;
pub mod order_book;
pub mod protocol;
pub(crate) mod rate;
pub mod relay_connection_pool;
pub mod relay_discovery;
pub(crate) mod runtime;
pub mod trade;
pub mod webrtc;

pub use error::Error;
pub use libp2p;
/// WebRTC-direct (lives in [`webrtc::direct`]).
#[cfg(not(target_arch = "wasm32"))]
pub use webrtc::direct as webrtc_direct;
/// WebRTC connections negotiated through a signaling server: the seed's path to
/// [`webrtc::signaled`].
pub use webrtc::signaled as webrtc_connection;
/// The signaling server and its wire format (lives in [`webrtc::signaling`]).
pub use webrtc::signaling;
/// The signaled WebRTC transport (lives in [`webrtc::transport`]).
pub use webrtc::transport as webrtc_transport;
pub use webrtc::{signaled::WebRtcSignalingClient, transport::WebRtcTransport};

/// Guides to each feature, with examples. They are the repository's `docs/guide/*.md`; every
/// example in them is compiled (and, unless marked otherwise, run) as a doc test.
pub mod guide {
    #[doc = include_str!("../../../docs/guide/network.md")]
    pub mod network {}
    #[doc = include_str!("../../../docs/guide/relay.md")]
    pub mod relay {}
    #[doc = include_str!("../../../docs/guide/webrtc.md")]
    pub mod webrtc {}
    #[doc = include_str!("../../../docs/guide/browser.md")]
    pub mod browser {}
    #[doc = include_str!("../../../docs/guide/connection-pool.md")]
    pub mod connection_pool {}
    #[doc = include_str!("../../../docs/guide/security.md")]
    pub mod security {}
    #[doc = include_str!("../../../docs/guide/metrics.md")]
    pub mod metrics {}
}

/// The repository README's Rust examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
