//! Generic rust-libp2p wrappers that make a busy node cheaper (and one that makes TCP dials robust). Nothing here knows DarkSwap: each
//! wraps any behaviour, transport or stream and keeps its contract, so the rest of the network
//! layer composes them without caring what they do.
//!
//! | wrapper | the rust-libp2p cost it removes | the BENCHMARKS row that shows it |
//! |---|---|---|
//! | [`Gated`] | every handler and behaviour polled at each wake-up of its task; handlers held inline twice per connection | "Memory per idle connection"; "Order propagation goal" |
//! | [`GatedTransport`] | the whole transport chain walked at each wake-up of the swarm task | "Order propagation goal" (~1% of CPU at 50 nodes) |
//! | [`BoxedEvents`] | large, rare events (identify, Kademlia, relay server, auth) widening every event of the composed behaviour | "Order propagation goal" (event sizes 592 -> 240 bytes) |
//! | [`CachedProtocols`] | the nested inbound upgrade rebuilt and walked at every poll of a connection | "Order propagation goal" (~10% of CPU at 50 nodes x 100 orders/s) |
//! | [`PortReuseFallback`] | (robustness, not cost) a TCP dial from the listening port refused with `EADDRINUSE` where `SO_REUSEPORT` binds are not allowed | "Lab" in docs/LAB.md (nodes beyond the bootstrap peer are dialled) |
//! | [`WriteCoalescing`] | one `sendto` per gossip frame under Yamux and Noise | "Order propagation goal" (`sendto` calls 253,769 -> 110,371) |
//!
//! docs/PERFORMANCE.md keeps the measurements, and what was tried and dropped.

mod boxed_events;
mod cached_protocols;
mod gated;
#[cfg(not(target_arch = "wasm32"))]
mod gated_transport;
#[cfg(not(target_arch = "wasm32"))]
mod port_reuse_fallback;
#[cfg(not(target_arch = "wasm32"))]
mod write_coalescing;

pub(crate) use boxed_events::BoxedEvents;
pub(crate) use cached_protocols::{CachedProtocols, ProtocolsEpoch};
pub(crate) use gated::{delegate_connection_setup, Gated};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use gated_transport::GatedTransport;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use port_reuse_fallback::PortReuseFallback;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use write_coalescing::WriteCoalescing;
