//! A behaviour whose connection handler lives in its own allocation and is polled only when woken.
//!
//! Every connection task holds the composed handler of all behaviours inline, and holds room for
//! it twice: rust-libp2p's connection task is an async fn taking the connection as a parameter,
//! and rustc keeps an async fn's parameters apart from the locals that later take the handler
//! over on close. A behaviour that is switched off
//! ([`Toggle`](libp2p::swarm::behaviour::toggle::Toggle)) still costs its whole handler size
//! there. Behind a [`Gated`], a handler costs one pointer inline and its size once on the heap
//! (none when switched off). Boxing the largest ones (identify 3.4 KB, gossipsub, the relay
//! client, Kademlia, the relay server, the AutoNAT v2 server) took an idle connection from
//! 64 to 51 KiB (`cargo bench --bench network`); boxing every behaviour but the admission checks
//! and mDNS, to 48 KiB.
//!
//! rust-libp2p polls every handler of a connection each time anything on that connection wakes
//! it, so on a link busy with gossip the dozen idle handlers (ping, identify, the request-response
//! protocols, AutoNAT, DCUtR, the relay client) were polled for every gossip frame: each poll
//! touches the handler's channels and timers, cache misses on 300 connections. A [`GatedHandler`]
//! hands its handler a waker of its own and polls it again only after that waker fired, after an
//! event was delivered to it, or after it returned an event; otherwise its poll is one atomic
//! load. That is the contract every future already keeps: return `Pending` only with a waker
//! registered for whatever will make progress.
//!
//! The same holds one level up: the swarm polls every behaviour each time anything wakes its
//! task, which on a gossip node is every gossip frame. [`Gated::new`] also polls the behaviour
//! only after its waker fired, after the swarm or a handler told it something, after the
//! application reached it mutably, or after it returned an event. [`Gated::hot`] gates nothing
//! (gossipsub, which has work at nearly every wake-up, where the gate would only add a wake-up
//! through one more waker), and [`Gated::timed`] gates only the handlers, for a behaviour that
//! reads the clock when polled instead of setting a timer (Kademlia's query timeouts).

use futures::task::{waker_ref, ArcWake, AtomicWaker};
use libp2p::{
    swarm::{
        handler::ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
        SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    PeerId,
};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

/// The four connection-setup calls of a `NetworkBehaviour` that wraps another: each goes to
/// `self.$inner`, and the handlers it makes pass through `$wrap` (with a clone of `self.$extra`
/// as its second argument when one is named). Shared by [`Gated`], `CachedProtocols`, `BoxedEvents` and the
/// AutoNAT client wrapper, which differ only in what they do around these calls.
macro_rules! delegate_connection_setup {
    ($inner:tt, $wrap:path $(, $extra:ident)?) => {
        fn handle_pending_inbound_connection(
            &mut self,
            id: libp2p::swarm::ConnectionId,
            local: &libp2p::Multiaddr,
            remote: &libp2p::Multiaddr,
        ) -> Result<(), libp2p::swarm::ConnectionDenied> {
            self.$inner.handle_pending_inbound_connection(id, local, remote)
        }

        fn handle_established_inbound_connection(
            &mut self,
            id: libp2p::swarm::ConnectionId,
            peer: libp2p::PeerId,
            local: &libp2p::Multiaddr,
            remote: &libp2p::Multiaddr,
        ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
            self.$inner.handle_established_inbound_connection(id, peer, local, remote).map(|h| $wrap(h $(, self.$extra.clone())?))
        }

        fn handle_pending_outbound_connection(
            &mut self,
            id: libp2p::swarm::ConnectionId,
            peer: Option<libp2p::PeerId>,
            addresses: &[libp2p::Multiaddr],
            role: libp2p::core::Endpoint,
        ) -> Result<Vec<libp2p::Multiaddr>, libp2p::swarm::ConnectionDenied> {
            self.$inner.handle_pending_outbound_connection(id, peer, addresses, role)
        }

        fn handle_established_outbound_connection(
            &mut self,
            id: libp2p::swarm::ConnectionId,
            peer: libp2p::PeerId,
            addr: &libp2p::Multiaddr,
            role: libp2p::core::Endpoint,
            port_use: libp2p::core::transport::PortUse,
        ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
            self.$inner.handle_established_outbound_connection(id, peer, addr, role, port_use).map(|h| $wrap(h $(, self.$extra.clone())?))
        }
    };
}
pub(crate) use delegate_connection_setup;

/// `B` with its connection handlers boxed, it and they polled only when woken unless built
/// otherwise (see the module docs).
pub struct Gated<B> {
    inner: B,
    /// Whether the handlers are polled only when woken.
    gate_handlers: bool,
    /// The behaviour's own gate; `None` polls it at every swarm poll.
    gate: Option<Arc<Wake>>,
}

impl<B> Gated<B> {
    /// Boxes `inner`'s handlers; it and they are polled only when woken.
    pub fn new(inner: B) -> Self {
        Self { inner, gate_handlers: true, gate: Some(Wake::due()) }
    }

    /// Boxes `inner`'s handlers and gates nothing: for a behaviour busy at nearly every wake-up.
    pub fn hot(inner: B) -> Self {
        Self { inner, gate_handlers: false, gate: None }
    }

    /// Boxes `inner`'s handlers, polled only when woken; the behaviour is polled every time, for
    /// one that reads the clock when polled instead of setting a timer.
    pub fn timed(inner: B) -> Self {
        Self { inner, gate_handlers: true, gate: None }
    }
}

/// A connection handler in a box, polled only when woken unless its behaviour is
/// [`Gated::hot`] (see the module docs).
pub struct GatedHandler<H> {
    inner: Box<H>,
    /// `None` polls the handler at every connection poll.
    wake: Option<Arc<Wake>>,
}

impl<H> GatedHandler<H> {
    fn new(inner: H, gated: bool) -> Self {
        Self { inner: Box::new(inner), wake: gated.then(Wake::due) }
    }

    fn mark(&self) {
        if let Some(wake) = &self.wake {
            wake.mark();
        }
    }
}

/// The waker a gated poller hands on: it marks the poller due and wakes the task that polls it.
/// Shared by the handlers and behaviours here and by the swarm's transport (`GatedTransport`).
pub(crate) struct Wake {
    /// Whether the poller must be polled at the task's next poll.
    due: AtomicBool,
    /// The task's waker, as of the last poll.
    task: AtomicWaker,
}

impl Wake {
    /// A new gate, due: the first poll goes through.
    pub(crate) fn due() -> Arc<Self> {
        Arc::new(Self { due: AtomicBool::new(true), task: AtomicWaker::new() })
    }

    /// Makes the next poll go through.
    pub(crate) fn mark(&self) {
        self.due.store(true, Ordering::Release);
    }

    /// Whether the next poll goes through.
    #[cfg(test)]
    pub(crate) fn is_due(&self) -> bool {
        self.due.load(Ordering::Acquire)
    }

    /// Polls `poll` if the gate is due, with a waker that reopens it; `Pending` otherwise. A
    /// `Ready` answer keeps the gate open, since a poller may have more to say. The waker kept
    /// is the one of the last poll that went through, so the polling task must keep one waker
    /// (a task's own, as the swarm task and the connection tasks have).
    pub(crate) fn poll<T>(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // A plain load first: most polls find the poller idle, and a swap would take the
        // cache line exclusively every time. Cleared before the poll, so that a wake-up during
        // it counts for the next one.
        if !self.due.load(Ordering::Acquire) || !self.due.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        self.task.register(cx.waker());
        let waker = waker_ref(self);
        let answer = poll(&mut Context::from_waker(&waker));
        if answer.is_ready() {
            self.mark();
        }
        answer
    }
}

impl ArcWake for Wake {
    fn wake_by_ref(this: &Arc<Self>) {
        this.mark();
        this.task.wake();
    }
}

impl<H: ConnectionHandler> ConnectionHandler for GatedHandler<H> {
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = H::InboundProtocol;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.inner.listen_protocol()
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>> {
        match &self.wake {
            Some(wake) => wake.poll(cx, |cx| self.inner.poll(cx)),
            None => self.inner.poll(cx),
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.mark();
        self.inner.on_behaviour_event(event)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        self.mark();
        self.inner.on_connection_event(event)
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Gated<B> {
    type ConnectionHandler = GatedHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    delegate_connection_setup!(inner, GatedHandler::new, gate_handlers);

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.mark();
        self.inner.on_swarm_event(event)
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, id: ConnectionId, event: THandlerOutEvent<Self>) {
        self.mark();
        self.inner.on_connection_handler_event(peer, id, event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match &self.gate {
            Some(gate) => gate.poll(cx, |cx| self.inner.poll(cx)),
            None => self.inner.poll(cx),
        }
    }
}

impl<B> Gated<B> {
    fn mark(&self) {
        if let Some(gate) = &self.gate {
            gate.mark();
        }
    }
}

impl<B> std::ops::Deref for Gated<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.inner
    }
}

/// Reaching the behaviour mutably (publishing, sending a request) may queue an event for its
/// next poll, so it opens the gate.
impl<B> std::ops::DerefMut for Gated<B> {
    fn deref_mut(&mut self) -> &mut B {
        self.mark();
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::upgrade::DeniedUpgrade;
    use std::{sync::atomic::AtomicUsize, task::Waker};

    /// A handler that counts its polls, keeps the waker it was given, and has one event to
    /// return each time it is told to.
    #[derive(Default)]
    struct Probe {
        polls: Arc<AtomicUsize>,
        waker: Option<Waker>,
        pending_events: usize,
    }

    impl ConnectionHandler for Probe {
        type FromBehaviour = ();
        type ToBehaviour = ();
        type InboundProtocol = DeniedUpgrade;
        type OutboundProtocol = DeniedUpgrade;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<DeniedUpgrade, ()> {
            SubstreamProtocol::new(DeniedUpgrade, ())
        }

        fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), ()>> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.waker = Some(cx.waker().clone());
            if self.pending_events > 0 {
                self.pending_events -= 1;
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(()));
            }
            Poll::Pending
        }

        fn on_behaviour_event(&mut self, (): ()) {
            self.pending_events += 1;
        }

        fn on_connection_event(&mut self, _: ConnectionEvent<DeniedUpgrade, DeniedUpgrade>) {}
    }

    #[test]
    fn an_idle_handler_is_polled_only_after_a_wake_or_an_event() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut h = GatedHandler::new(Probe { polls: polls.clone(), ..Default::default() }, true);
        let task_wakes = Arc::new(Counter::default());
        let task_waker = futures::task::waker(task_wakes.clone());
        let mut cx = Context::from_waker(&task_waker);
        let count = || polls.load(Ordering::Relaxed);

        // The first poll reaches the handler; further polls with nothing new do not.
        assert!(h.poll(&mut cx).is_pending());
        for _ in 0..10 {
            assert!(h.poll(&mut cx).is_pending());
        }
        assert_eq!(count(), 1);

        // Its own waker makes it due and wakes the connection task.
        h.inner.waker.take().unwrap().wake();
        assert_eq!(task_wakes.0.load(Ordering::Relaxed), 1);
        assert!(h.poll(&mut cx).is_pending());
        assert!(h.poll(&mut cx).is_pending());
        assert_eq!(count(), 2);

        // An event from the behaviour makes it due; after an answer it is asked again.
        h.on_behaviour_event(());
        h.on_behaviour_event(());
        assert!(h.poll(&mut cx).is_ready());
        assert!(h.poll(&mut cx).is_ready());
        assert!(h.poll(&mut cx).is_pending());
        assert!(h.poll(&mut cx).is_pending());
        assert_eq!(count(), 5);
    }

    /// A behaviour that counts its polls and has one event to return each time it is told to.
    #[derive(Default)]
    struct Quiet {
        polls: usize,
        queued: usize,
    }

    impl NetworkBehaviour for Quiet {
        type ConnectionHandler = libp2p::swarm::dummy::ConnectionHandler;
        type ToSwarm = ();

        fn handle_established_inbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &libp2p::Multiaddr,
            _: &libp2p::Multiaddr,
        ) -> Result<THandler<Self>, libp2p::swarm::ConnectionDenied> {
            Ok(libp2p::swarm::dummy::ConnectionHandler)
        }

        fn handle_established_outbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &libp2p::Multiaddr,
            _: libp2p::core::Endpoint,
            _: libp2p::core::transport::PortUse,
        ) -> Result<THandler<Self>, libp2p::swarm::ConnectionDenied> {
            Ok(libp2p::swarm::dummy::ConnectionHandler)
        }

        fn on_swarm_event(&mut self, _: FromSwarm) {}

        fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, e: THandlerOutEvent<Self>) {
            libp2p::core::util::unreachable(e)
        }

        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<(), THandlerInEvent<Self>>> {
            self.polls += 1;
            if self.queued > 0 {
                self.queued -= 1;
                return Poll::Ready(ToSwarm::GenerateEvent(()));
            }
            Poll::Pending
        }
    }

    #[test]
    fn an_idle_behaviour_is_polled_only_after_a_wake_or_a_mutable_access() {
        let task_waker = futures::task::waker(Arc::new(Counter::default()));
        let mut cx = Context::from_waker(&task_waker);

        let mut b = Gated::new(Quiet::default());
        for _ in 0..10 {
            assert!(b.poll(&mut cx).is_pending());
        }
        assert_eq!(b.polls, 1, "only the first poll reaches an idle behaviour");

        // Queuing through a mutable access (as `publish` or `send_request` do) opens the gate,
        // and the behaviour is asked again after each answer.
        b.queued = 2;
        assert!(b.poll(&mut cx).is_ready());
        assert!(b.poll(&mut cx).is_ready());
        assert!(b.poll(&mut cx).is_pending());
        assert!(b.poll(&mut cx).is_pending());
        assert_eq!(b.polls, 4);

        // A swarm event opens it too.
        b.on_swarm_event(FromSwarm::NewListenAddr(libp2p::swarm::NewListenAddr {
            listener_id: libp2p::core::transport::ListenerId::next(),
            addr: &"/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        }));
        assert!(b.poll(&mut cx).is_pending());
        assert_eq!(b.polls, 5);

        // A hot behaviour is polled every time.
        let mut hot = Gated::hot(Quiet::default());
        for _ in 0..10 {
            assert!(hot.poll(&mut cx).is_pending());
        }
        assert_eq!(hot.polls, 10);
    }

    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl ArcWake for Counter {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
