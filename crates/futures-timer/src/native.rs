use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};
use tokio::runtime::Handle;

/// A future that completes once its duration has passed.
pub struct Delay {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

/// The runtime that times `Delay`s created outside any tokio runtime: one thread, timer only.
fn helper() -> &'static Handle {
    static HELPER: OnceLock<Handle> = OnceLock::new();
    HELPER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("futures-timer: cannot start the timer runtime");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("delay-helper".into())
            // The runtime's timer advances while its thread sits in `block_on`.
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("futures-timer: cannot start the timer thread");
        handle
    })
}

impl Delay {
    /// A delay that completes `dur` from now.
    pub fn new(dur: Duration) -> Delay {
        let sleep = match Handle::try_current() {
            Ok(_) => tokio::time::sleep(dur),
            Err(_) => {
                let _runtime = helper().enter();
                tokio::time::sleep(dur)
            }
        };
        Delay { sleep: Box::pin(sleep) }
    }

    /// Makes this delay complete `dur` from now instead, whether or not it had completed.
    pub fn reset(&mut self, dur: Duration) {
        // `Instant + Duration` overflows for durations tokio's own `sleep` clamps.
        let now = tokio::time::Instant::now();
        let deadline = now.checked_add(dur).unwrap_or_else(|| now + Duration::from_secs(86400 * 365 * 30));
        self.sleep.as_mut().reset(deadline);
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }
}

impl fmt::Debug for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delay").field("deadline", &self.sleep.deadline()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::time::Instant;

    #[tokio::test(flavor = "current_thread")]
    async fn completes_after_its_duration_not_before() {
        let start = Instant::now();
        let mut delay = Delay::new(Duration::from_millis(30));
        assert!((&mut delay).now_or_never().is_none());
        delay.await;
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reset_moves_the_deadline_even_after_completion() {
        let mut delay = Delay::new(Duration::from_millis(1));
        (&mut delay).await;
        let start = Instant::now();
        delay.reset(Duration::from_millis(30));
        assert!((&mut delay).now_or_never().is_none());
        delay.await;
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn outside_a_runtime_the_helper_runtime_times_it() {
        let start = Instant::now();
        futures::executor::block_on(Delay::new(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delay_made_on_one_runtime_completes_when_polled_from_another_thread() {
        let delay = Delay::new(Duration::from_millis(20));
        std::thread::spawn(move || futures::executor::block_on(delay)).join().unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_longest_durations_do_not_overflow() {
        let mut delay = Delay::new(Duration::MAX);
        assert!((&mut delay).now_or_never().is_none());
        delay.reset(Duration::MAX);
        assert!(delay.now_or_never().is_none());
    }
}
