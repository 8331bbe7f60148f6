//! The few things that differ between native (tokio) and the browser (wasm32): spawning the
//! network task, reading the clock, and timers.

use std::{future::Future, time::Duration};

/// Seconds since the Unix epoch (`web_time` reads `Date.now()` in browsers, where
/// `std::time::SystemTime` panics).
pub fn now_unix() -> u64 {
    web_time::SystemTime::now().duration_since(web_time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Runs the network task in the background.
#[cfg(not(target_arch = "wasm32"))]
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

/// Runs the network task in the background.
#[cfg(target_arch = "wasm32")]
pub fn spawn(task: impl Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(task);
}

/// A timer that fires every `period`.
pub fn interval(period: Duration) -> futures_timer::Delay {
    futures_timer::Delay::new(period)
}
