//! Commands from handles to the network task.

use super::Error;
use crate::{auth::AuthorizationLevel, protocol::Message, trade::TradeState};
use darkswap_support::types::{Order, OrderDraft, OrderId, PeerId, TradeMessage};
use futures::channel::oneshot;
use libp2p::Multiaddr;

type Reply<T> = oneshot::Sender<T>;

#[derive(Debug)]
pub(crate) enum Command {
    Listen { addr: Multiaddr, reply: Reply<Result<Multiaddr, Error>> },
    Dial { addr: Multiaddr, reply: Reply<Result<PeerId, Error>> },
    Subscribe { topic: String },
    Unsubscribe { topic: String },
    Publish { topic: String, message: Message, reply: Reply<Result<(), Error>> },
    PublishOrder { draft: OrderDraft, reply: Reply<Result<Order, Error>> },
    CancelOrder { id: OrderId, reply: Reply<Result<(), Error>> },
    SendTrade { peer: PeerId, message: TradeMessage, reply: Reply<Result<TradeState, Error>> },
    Authenticate { peer: PeerId, reply: Reply<Result<AuthorizationLevel, Error>> },
    VerifyPeer { peer: PeerId, reply: Reply<Result<AuthorizationLevel, Error>> },
    Ban { peer: PeerId },
    Unban { peer: PeerId },
    ConnectedPeers { reply: Reply<Vec<PeerId>> },
    TopicPeers { topic: String, reply: Reply<Vec<PeerId>> },
    MeshPeers { topic: String, reply: Reply<Vec<PeerId>> },
    Shutdown { reply: Reply<()> },
}
