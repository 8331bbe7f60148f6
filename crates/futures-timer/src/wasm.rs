use gloo_timers::future::TimeoutFuture;
use send_wrapper::SendWrapper;
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

/// A future that completes once its duration has passed (a browser timeout).
#[derive(Debug)]
pub struct Delay(SendWrapper<TimeoutFuture>);

impl Delay {
    /// A delay that completes `dur` from now (whole milliseconds, at most `u32::MAX`).
    pub fn new(dur: Duration) -> Delay {
        let millis = u32::try_from(dur.as_millis()).unwrap_or(u32::MAX);
        Delay(SendWrapper::new(TimeoutFuture::new(millis)))
    }

    /// Makes this delay complete `dur` from now instead.
    pub fn reset(&mut self, dur: Duration) {
        *self = Delay::new(dur);
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut *self.0).poll(cx)
    }
}
