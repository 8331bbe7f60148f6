//! What the network reports to the application.

use crate::protocol::Message;
use darkswap_support::types::PeerId;

/// An event from [`Network::next_event`](super::Network::next_event).
///
/// Exactly the seed's five variants, so an exhaustive `match` written against the README keeps
/// compiling. Other outcomes are read from the handle: [`orders`](super::NetworkHandle::orders),
/// [`stats`](super::NetworkHandle::stats), and the results of the async methods.
// Messages stay inline (not boxed) so the seed's `match` on `message` works as written.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum NetworkEvent {
    /// The first connection to a peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// A validated DarkSwap message arrived.
    ///
    /// `peer_id` is the peer that delivered it (for gossip, the neighbour that forwarded it; the
    /// author is inside the message, e.g. `Order::maker`). `topic` is the gossip topic; order-book
    /// sync deliveries use `darkswap/orderbook/v1` and trade negotiation uses `darkswap/trade/v1`.
    /// Each order is reported once, however many copies or syncs carry it.
    MessageReceived {
        /// The delivering peer.
        peer_id: PeerId,
        /// The topic.
        topic: String,
        /// The message.
        message: Message,
    },
    /// A relay accepted our reservation: we are now reachable at `/…/p2p/<relay>/p2p-circuit`.
    ///
    /// `reservation_id` is this node's own counter, unique per accepted reservation (renewals of
    /// the same reservation do not produce a new event).
    RelayReserved {
        /// The relay.
        relay_peer_id: PeerId,
        /// Local id of the reservation.
        reservation_id: u64,
    },
    /// A connection to or from `dst_peer_id` was established through a relay circuit.
    ConnectedThroughRelay {
        /// The relay carrying the circuit.
        relay_peer_id: PeerId,
        /// The peer at the other end of the circuit.
        dst_peer_id: PeerId,
    },
}
