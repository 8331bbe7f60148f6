//! The few things that differ between native (tokio) and the browser (wasm32): spawning the
//! network task, reading the clock, and timers.

use std::{future::Future, time::Duration};

/// Seconds since the Unix epoch (`web_time` reads `Date.now()` in browsers, where
/// `std::time::SystemTime` panics).
pub fn now_unix() -> u64 {
    web_time::SystemTime::now().duration_since(web_time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Milliseconds on a monotonic clock that is cheap to read, for checks made on every message.
/// On Linux this is the kernel's coarse clock (a few milliseconds of resolution): a memory read,
/// where `Instant::now()` reads the timer (about 10 vs 30 ns here, measured with `perf`).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn coarse_millis() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists since Linux 2.6.32
    // and this call cannot fail with a valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Milliseconds on a monotonic clock (since the first call).
#[cfg(not(target_os = "linux"))]
pub fn coarse_millis() -> u64 {
    static START: std::sync::OnceLock<web_time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(web_time::Instant::now).elapsed().as_millis() as u64
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
