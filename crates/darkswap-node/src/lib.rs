//! The `darkswap-node` binary's pieces: the local control API, its command-line client and the
//! in-process demo network.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod demo;
pub mod metrics;
pub mod web;

/// Default libp2p port (TCP, and UDP for QUIC).
pub const DEFAULT_P2P_PORT: u16 = 9000;
/// Default control-API address (loopback only: it can post orders as this node).
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:9091";
/// Default WebRTC-direct port (UDP), the one browsers dial without a signaling server.
pub const DEFAULT_WEBRTC_DIRECT_PORT: u16 = 9003;

/// Where Prometheus scrapes the node by default (`/metrics`).
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9090";
/// Where the demo page is served by default.
pub const DEFAULT_WEB_ADDR: &str = "127.0.0.1:8080";
