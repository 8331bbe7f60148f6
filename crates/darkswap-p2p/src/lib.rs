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
//! Modules:
//! - [`network`]: the [`Network`](network::Network) handle, its configuration and events.
//! - [`protocol`]: wire formats (signed gossip envelope, sync, trade), limits and validation.
//! - [`order_book`]: the local order book every node keeps.
//! - [`trade`]: the trade-negotiation state machine.
//! - [`identity`]: persistent ed25519 identities.
// One audited `unsafe` block wipes `ring`'s AEAD keys (encryption/aead.rs); nothing else may.
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

/// The repository README's Rust examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
