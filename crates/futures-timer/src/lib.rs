//! `futures_timer::Delay` on the timer of the tokio runtime it is created on.
//!
//! The workspace puts this crate in place of the registry's `futures-timer` (`[patch.crates-io]`
//! in the root `Cargo.toml`), so every libp2p crate's timeouts use it. The registry crate keeps
//! all timers on one helper thread: creating a `Delay` and dropping it each push to that
//! thread's queue and wake it, two futex calls and two context switches. rust-libp2p's gossipsub
//! creates one `Delay` per message and peer it sends to (a send-queue timeout that is almost
//! always dropped unfired), so at 50 nodes x 200 orders/s the helper thread's wake-ups cost
//! ~20% of the CPU and the gossip p99 was 736 ms; on tokio's timer, where registering and
//! cancelling are local to the runtime, it was 233 ms (`docs/ARCHITECTURE.md`).
//!
//! The API is the registry crate's: [`Delay::new`], [`Delay::reset`], `Future<Output = ()>`.
//!
//! - Native: a `Delay` lives on the timer of the tokio runtime current where it is created, or,
//!   outside any runtime, on a helper runtime started on first use (as the registry crate's
//!   helper thread is). A runtime it is created on must have its timer enabled
//!   (`enable_time`/`enable_all`), and a `Delay` must not outlive that runtime (tokio panics when a
//!   timer of a shut-down runtime is polled).
//! - wasm32: a browser timeout, as the registry crate with its `wasm-bindgen` feature.

#![deny(missing_docs)]

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::Delay;

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub use wasm::Delay;
