//! The swarm's transport, polled only when woken.
//!
//! rust-libp2p's swarm polls its transport each time anything wakes the swarm task, which on a
//! gossip node is every gossip frame. A native node's transport is a chain of seven (relay
//! client, WebSocket, DNS over TCP, QUIC, WebRTC direct and signalled WebRTC, plus the timeout
//! and the byte meters around them), so each of those polls walked the whole chain to find
//! nothing: about 1% of a busy node's CPU at 50 nodes. [`GatedTransport`] polls the chain only
//! after a waker it handed down fired, after a listen, dial or listener removal went through it,
//! or after the chain returned an event. Every transport in the chain registers a waker for
//! whatever will make progress (sockets, channels, timers), as the `Transport` contract asks.

use super::gated::Wake;
use libp2p::{
    core::transport::{DialOpts, ListenerId, Transport, TransportError, TransportEvent},
    Multiaddr,
};
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

/// `T`, polled only when woken (see the module docs).
pub struct GatedTransport<T> {
    inner: T,
    gate: Arc<Wake>,
}

impl<T> GatedTransport<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self { inner, gate: Wake::due() }
    }
}

impl<T: Transport + Unpin> Transport for GatedTransport<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        self.gate.mark();
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.gate.mark();
        self.inner.remove_listener(id)
    }

    fn dial(&mut self, addr: Multiaddr, opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        self.gate.mark();
        self.inner.dial(addr, opts)
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        this.gate.poll(cx, |cx| Pin::new(&mut this.inner).poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::poll_fn;
    use libp2p::core::{transport::PortUse, Endpoint};
    use std::time::Duration;

    /// Polls `t` on the calling task until it has an event.
    async fn next<T: Transport + Unpin>(t: &mut GatedTransport<T>) -> TransportEvent<T::ListenerUpgrade, T::Error> {
        let wait = poll_fn(|cx| Pin::new(&mut *t).poll(cx));
        tokio::time::timeout(Duration::from_secs(5), wait).await.expect("an event within 5 s")
    }

    /// A real TCP listener behind the gate: once idle, polls stop at the gate, and an inbound
    /// connection still wakes the task and comes out as `Incoming`.
    #[tokio::test]
    async fn an_idle_listener_is_woken_by_its_socket() {
        let mut t = GatedTransport::new(libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default()));
        t.listen_on(ListenerId::next(), "/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
        let addr = match next(&mut t).await {
            TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
            other => panic!("expected the listen address, got {other:?}"),
        };
        // Nothing more to say: within a few polls (the first registration of a socket may wake
        // at once) the gate closes, and further polls do not reach the listener.
        for _ in 0..5 {
            if !t.gate.is_due() {
                break;
            }
            assert!(poll_fn(|cx| Poll::Ready(Pin::new(&mut t).poll(cx).is_pending())).await);
        }
        assert!(!t.gate.is_due(), "an idle listener closes the gate");
        assert!(poll_fn(|cx| Poll::Ready(Pin::new(&mut t).poll(cx).is_pending())).await);
        assert!(!t.gate.is_due());

        let dial = t.dial(addr, DialOpts { role: Endpoint::Dialer, port_use: PortUse::New }).unwrap();
        assert!(t.gate.is_due(), "a dial opens the gate");
        let _conn = tokio::spawn(dial);
        assert!(matches!(next(&mut t).await, TransportEvent::Incoming { .. }));
    }
}
