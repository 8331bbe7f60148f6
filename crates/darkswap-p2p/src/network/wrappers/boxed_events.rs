//! A behaviour whose events travel boxed.
//!
//! rust-libp2p moves a connection's handler events, the swarm's commands to handlers and the
//! behaviour's events by value, through channels and several layers of enums, and every such
//! enum is as large as its largest variant. Identify's (its peer's whole `Info`) and the relay
//! server's run to ~590 bytes, against 240 for gossipsub's, so each gossip frame a node received
//! was copied at their size several times on its way to the swarm task, and each gossip message
//! event at ~680 bytes on its way to the application; Kademlia's and the auth protocol's came
//! next (448 and 352 bytes). Behind [`BoxedEvents`] (all four of them) those rare events are a pointer:
//! one allocation per identify exchange, DHT, auth or relay event, none per gossip frame.

use libp2p::{
    swarm::{
        handler::ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
        SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    PeerId,
};
use std::task::{Context, Poll};

/// `B` with its events, its handlers' events and its commands to them boxed.
pub struct BoxedEvents<B>(B);

impl<B> BoxedEvents<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self(inner)
    }
}

impl<B> std::ops::Deref for BoxedEvents<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.0
    }
}

impl<B> std::ops::DerefMut for BoxedEvents<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.0
    }
}

/// A connection handler whose events in and out travel boxed.
pub struct BoxedEventsHandler<H>(H);

impl<H: ConnectionHandler> ConnectionHandler for BoxedEventsHandler<H> {
    type FromBehaviour = Box<H::FromBehaviour>;
    type ToBehaviour = Box<H::ToBehaviour>;
    type InboundProtocol = H::InboundProtocol;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.0.listen_protocol()
    }

    fn connection_keep_alive(&self) -> bool {
        self.0.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>> {
        self.0.poll(cx).map(|e| e.map_custom(Box::new))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.0.poll_close(cx).map(|e| e.map(Box::new))
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.0.on_behaviour_event(*event)
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
        self.0.on_connection_event(event)
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for BoxedEvents<B> {
    type ConnectionHandler = BoxedEventsHandler<THandler<B>>;
    type ToSwarm = Box<B::ToSwarm>;

    super::gated::delegate_connection_setup!(0, BoxedEventsHandler);

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.0.on_swarm_event(event)
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, id: ConnectionId, event: THandlerOutEvent<Self>) {
        self.0.on_connection_handler_event(peer, id, *event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx).map(|action| action.map_out(Box::new).map_in(Box::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::swarm::THandlerOutEvent;
    use std::mem::size_of;

    /// What the module is for: a slim identify is no larger than gossipsub, in every direction.
    #[test]
    fn slim_events_are_a_pointer() {
        type Identify = libp2p::identify::Behaviour;
        assert!(size_of::<THandlerOutEvent<Identify>>() > 500, "identify's events are large");
        assert_eq!(size_of::<THandlerOutEvent<BoxedEvents<Identify>>>(), size_of::<usize>());
        assert_eq!(size_of::<THandlerInEvent<BoxedEvents<Identify>>>(), size_of::<usize>());
        assert_eq!(size_of::<<BoxedEvents<Identify> as NetworkBehaviour>::ToSwarm>(), size_of::<usize>());
    }
}
