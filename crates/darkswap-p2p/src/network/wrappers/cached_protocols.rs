//! A behaviour whose connection handler lists its inbound protocols once, not on every poll.
//!
//! Each time a connection runs out of work, rust-libp2p asks its handler for the inbound upgrade
//! (`listen_protocol`) and walks every protocol name in it, to learn whether the set changed.
//! With a dozen behaviours that upgrade is a deep nest of `SelectUpgrade`s: building it clones
//! each protocol's configuration, and walking it steps through one `Either` layer per behaviour
//! for each of ~16 names. On a link busy with gossip this happens for every frame each way, and
//! it was the largest cost DarkSwap added on top of gossipsub (about a tenth of a node's CPU at
//! 50 nodes and 100 orders/s).
//!
//! A [`CachedProtocolsHandler`] keeps the names in a list of its own and hands the connection an upgrade
//! that only names them ([`Listing`]); the real upgrade is built when a stream for one of them
//! has been negotiated, and run by the handler. A handler's protocols are a function of its
//! state, which only events change, so the list is rebuilt after each event that reaches the
//! handler. The one set kept outside any handler, the application's stream protocols
//! (`libp2p-stream`), is covered by a [`ProtocolsEpoch`] that `accept_streams` bumps when it
//! adds a protocol and that dropping its receiver bumps again.

use futures::{future::BoxFuture, stream::FuturesUnordered, FutureExt, StreamExt};
use libp2p::{
    core::upgrade::{InboundUpgrade, UpgradeInfo},
    swarm::{
        handler::{ConnectionEvent, FullyNegotiatedInbound, InboundUpgradeSend, ListenUpgradeError, UpgradeInfoSend},
        ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour, SubstreamProtocol,
        THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    PeerId, Stream, StreamProtocol,
};
use std::{
    collections::HashSet,
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    task::{Context, Poll},
    time::Duration,
};

/// Inbound streams whose protocol was negotiated and whose handler upgrade is still running, per
/// connection; more are refused. The upgrades of DarkSwap's protocols finish at once, and the
/// connection itself negotiates at most 128 streams at a time.
const MAX_UPGRADING: usize = 128;

/// Counts changes to protocol sets kept outside any connection handler; every [`CachedProtocolsHandler`]
/// lists its protocols again at its next poll after a change, and a stream arriving before that
/// poll is offered the set as it is at that moment.
#[derive(Clone, Debug, Default)]
pub struct ProtocolsEpoch(Arc<AtomicU64>);

impl ProtocolsEpoch {
    /// Marks the protocol sets changed.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// `B` with handlers that list their inbound protocols once (see the module docs).
pub struct CachedProtocols<B> {
    inner: B,
    epoch: ProtocolsEpoch,
}

impl<B> CachedProtocols<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self { inner, epoch: ProtocolsEpoch::default() }
    }

    /// The epoch to bump when a protocol set outside the handlers changes.
    pub fn epoch(&self) -> &ProtocolsEpoch {
        &self.epoch
    }
}

impl<B> std::ops::Deref for CachedProtocols<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> std::ops::DerefMut for CachedProtocols<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

/// The inbound upgrade a [`CachedProtocolsHandler`] hands its connection: the protocol names, and on
/// negotiation the stream with the name it was negotiated for.
#[derive(Clone, Debug)]
pub struct Listing(Arc<[StreamProtocol]>);

impl UpgradeInfo for Listing {
    type Info = StreamProtocol;
    type InfoIter = Names;

    fn protocol_info(&self) -> Names {
        Names { names: self.0.clone(), next: 0 }
    }
}

impl InboundUpgrade<Stream> for Listing {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = futures::future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, name: StreamProtocol) -> Self::Future {
        futures::future::ready(Ok((stream, name)))
    }
}

/// The names of a [`Listing`], in order.
pub struct Names {
    names: Arc<[StreamProtocol]>,
    next: usize,
}

impl Iterator for Names {
    type Item = StreamProtocol;

    fn next(&mut self) -> Option<StreamProtocol> {
        let name = self.names.get(self.next)?.clone();
        self.next += 1;
        Some(name)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.names.len() - self.next;
        (left, Some(left))
    }
}

/// Distinct protocol names [`intern`] keeps for the life of the process.
const MAX_INTERNED: usize = 256;

/// `name` as a [`StreamProtocol`] over a `'static` string, or `None` if it is no protocol name.
///
/// The connection copies every name at each of its polls, and a name over a counted string would
/// cost two atomic operations per copy (about 30 per poll); a `'static` one costs none. Each
/// distinct name is leaked once: names come from this crate's behaviours and the application's
/// stream protocols, never from peers, and past [`MAX_INTERNED`] of them the rest are counted.
fn intern(name: &str) -> Option<StreamProtocol> {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    if !name.starts_with('/') {
        return None;
    }
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name) {
        return Some(StreamProtocol::new(known));
    }
    if names.len() >= MAX_INTERNED {
        return StreamProtocol::try_from_owned(name.to_owned()).ok();
    }
    let leaked: &'static str = Box::leak(name.into());
    names.insert(leaked);
    Some(StreamProtocol::new(leaked))
}

/// `inner`'s inbound protocol names, interned, and its inbound timeout.
fn list<H: ConnectionHandler>(inner: &H) -> (Vec<StreamProtocol>, Duration) {
    let protocol = inner.listen_protocol();
    let names = protocol.upgrade().protocol_info().filter_map(|i| intern(i.as_ref())).collect();
    (names, *protocol.timeout())
}

type Upgrade<H> = <H as ConnectionHandler>::InboundProtocol;
/// A finished handler upgrade and its open info, or `None` when it timed out.
type Upgraded<H> = Option<(
    Result<<Upgrade<H> as InboundUpgradeSend>::Output, <Upgrade<H> as InboundUpgradeSend>::Error>,
    <H as ConnectionHandler>::InboundOpenInfo,
)>;

/// A connection handler that lists its inbound protocols once (see the module docs).
pub struct CachedProtocolsHandler<H: ConnectionHandler> {
    inner: H,
    names: Arc<[StreamProtocol]>,
    timeout: Duration,
    /// An event reached the handler since the names were listed.
    stale: bool,
    epoch: ProtocolsEpoch,
    /// The epoch the names were listed at.
    listed_at: u64,
    upgrading: FuturesUnordered<BoxFuture<'static, Upgraded<H>>>,
}

impl<H: ConnectionHandler> CachedProtocolsHandler<H> {
    fn new(inner: H, epoch: ProtocolsEpoch) -> Self {
        let mut h = Self {
            inner,
            names: Arc::from([]),
            timeout: Duration::ZERO,
            stale: true,
            listed_at: epoch.get(),
            epoch,
            upgrading: FuturesUnordered::new(),
        };
        h.relist();
        h
    }

    /// Whether the inner handler's protocols may have changed since they were listed.
    fn outdated(&self) -> bool {
        self.stale || self.epoch.get() != self.listed_at
    }

    /// Lists the inner handler's protocols again if they may have changed.
    fn relist(&mut self) {
        if !self.outdated() {
            return;
        }
        // Read before listing: a change racing with the listing moves the epoch past it.
        let epoch = self.epoch.get();
        let (names, timeout) = list(&self.inner);
        self.timeout = timeout;
        if *names != *self.names {
            self.names = names.into();
        }
        self.stale = false;
        self.listed_at = epoch;
    }

    /// Runs the inner handler's upgrade on a stream negotiated for `name`.
    fn upgrade(&mut self, stream: Stream, name: StreamProtocol) {
        if self.upgrading.len() >= MAX_UPGRADING {
            tracing::debug!(protocol = %name, "inbound stream refused: too many upgrades running");
            return;
        }
        let (upgrade, open_info) = self.inner.listen_protocol().into_upgrade();
        // The set may have shrunk since it was listed (an application dropped its receiver).
        let Some(info) = upgrade.protocol_info().find(|i| i.as_ref() == name.as_ref()) else {
            tracing::debug!(protocol = %name, "inbound stream refused: protocol no longer supported");
            return;
        };
        let run = upgrade.upgrade_inbound(stream, info);
        let deadline = futures_timer::Delay::new(self.timeout);
        self.upgrading.push(
            async move {
                match futures::future::select(std::pin::pin!(run), deadline).await {
                    futures::future::Either::Left((result, _)) => Some((result, open_info)),
                    futures::future::Either::Right(_) => None,
                }
            }
            .boxed(),
        );
    }
}

impl<H: ConnectionHandler> ConnectionHandler for CachedProtocolsHandler<H> {
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = Listing;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Listing, ()> {
        // The connection reads the names for a new inbound stream in the same pass as it polls
        // this handler, but an application may accept a protocol in between (another thread):
        // the stream must see the set as it is now, as it would without the list.
        if self.outdated() {
            let (names, timeout) = list(&self.inner);
            return SubstreamProtocol::new(Listing(names.into()), ()).with_timeout(timeout);
        }
        SubstreamProtocol::new(Listing(self.names.clone()), ()).with_timeout(self.timeout)
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>> {
        while !self.upgrading.is_empty() {
            let Poll::Ready(Some(done)) = self.upgrading.poll_next_unpin(cx) else { break };
            match done {
                Some((Ok(protocol), info)) => {
                    self.inner.on_connection_event(ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                        protocol,
                        info,
                    }))
                }
                Some((Err(error), info)) => self
                    .inner
                    .on_connection_event(ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error })),
                None => tracing::debug!("inbound stream upgrade timed out"),
            }
            self.stale = true;
        }
        // Before the connection reads the names again, in this same pass.
        self.relist();
        self.inner.poll(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.stale = true;
        self.inner.on_behaviour_event(event)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Listing, Self::OutboundProtocol, (), Self::OutboundOpenInfo>,
    ) {
        self.stale = true;
        let event = match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol: (stream, name), .. }) => {
                return self.upgrade(stream, name);
            }
            ConnectionEvent::ListenUpgradeError(ListenUpgradeError { error, .. }) => match error {},
            ConnectionEvent::FullyNegotiatedOutbound(e) => ConnectionEvent::FullyNegotiatedOutbound(e),
            ConnectionEvent::AddressChange(e) => ConnectionEvent::AddressChange(e),
            ConnectionEvent::DialUpgradeError(e) => ConnectionEvent::DialUpgradeError(e),
            ConnectionEvent::LocalProtocolsChange(e) => ConnectionEvent::LocalProtocolsChange(e),
            ConnectionEvent::RemoteProtocolsChange(e) => ConnectionEvent::RemoteProtocolsChange(e),
            // A kind newer than this wrapper: nothing it could translate.
            _ => return,
        };
        self.inner.on_connection_event(event)
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for CachedProtocols<B> {
    type ConnectionHandler = CachedProtocolsHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    super::gated::delegate_connection_setup!(inner, CachedProtocolsHandler::new, epoch);

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.inner.on_swarm_event(event)
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, id: ConnectionId, event: THandlerOutEvent<Self>) {
        self.inner.on_connection_handler_event(peer, id, event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::upgrade::ReadyUpgrade;
    use std::sync::atomic::AtomicUsize;

    /// A handler whose one protocol the behaviour, or anyone holding `name`, can rename, counting
    /// how often it is listed.
    struct Probe {
        listed: Arc<AtomicUsize>,
        name: Arc<Mutex<StreamProtocol>>,
    }

    impl ConnectionHandler for Probe {
        type FromBehaviour = StreamProtocol;
        type ToBehaviour = ();
        type InboundProtocol = ReadyUpgrade<StreamProtocol>;
        type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
            self.listed.fetch_add(1, Ordering::Relaxed);
            SubstreamProtocol::new(ReadyUpgrade::new(self.name.lock().unwrap().clone()), ())
        }

        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), ()>> {
            Poll::Pending
        }

        fn on_behaviour_event(&mut self, name: StreamProtocol) {
            *self.name.lock().unwrap() = name;
        }

        fn on_connection_event(&mut self, _: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>) {}
    }

    fn names(h: &CachedProtocolsHandler<Probe>) -> Vec<String> {
        UpgradeInfo::protocol_info(h.listen_protocol().upgrade()).map(|n| n.to_string()).collect()
    }

    #[test]
    fn names_are_interned_once_and_non_names_refused() {
        let (a, b) = (intern(&String::from("/intern-test/1")).unwrap(), intern("/intern-test/1").unwrap());
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_ref(), b.as_ref()), "one copy shared");
        assert_eq!(intern("no-slash"), None);
    }

    #[test]
    fn protocols_are_listed_again_only_after_an_event_or_an_epoch_change() {
        let listed = Arc::new(AtomicUsize::new(0));
        let epoch = ProtocolsEpoch::default();
        let probe = Probe { listed: listed.clone(), name: Arc::new(Mutex::new(StreamProtocol::new("/a/1"))) };
        let mut h = CachedProtocolsHandler::new(probe, epoch.clone());
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let count = || listed.load(Ordering::Relaxed);
        assert_eq!(count(), 1, "listed once when the connection starts");

        // What the connection does every time it runs out of work: poll, then read the names.
        for _ in 0..10 {
            assert!(h.poll(&mut cx).is_pending());
            assert_eq!(names(&h), ["/a/1"]);
        }
        assert_eq!(count(), 1);

        // An event may change the set: the next poll lists it again.
        h.on_behaviour_event(StreamProtocol::new("/b/1"));
        assert!(h.poll(&mut cx).is_pending());
        assert_eq!(names(&h), ["/b/1"]);
        assert_eq!(count(), 2);

        // So does a change outside the handler.
        epoch.bump();
        assert!(h.poll(&mut cx).is_pending());
        assert!(h.poll(&mut cx).is_pending());
        assert_eq!(count(), 3);
    }

    #[test]
    fn a_change_outside_the_handler_is_seen_by_a_stream_arriving_before_the_next_poll() {
        let name = Arc::new(Mutex::new(StreamProtocol::new("/a/1")));
        let epoch = ProtocolsEpoch::default();
        let probe = Probe { listed: Arc::new(AtomicUsize::new(0)), name: name.clone() };
        let mut h = CachedProtocolsHandler::new(probe, epoch.clone());
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert!(h.poll(&mut cx).is_pending());
        // The application accepts a protocol while the connection is between its poll of the
        // handler and its read of the names for a stream that just arrived.
        *name.lock().unwrap() = StreamProtocol::new("/late/1");
        epoch.bump();
        assert_eq!(names(&h), ["/late/1"]);
        // The next poll keeps the new list.
        assert!(h.poll(&mut cx).is_pending());
        assert!(!h.outdated());
        assert_eq!(names(&h), ["/late/1"]);
    }
}
