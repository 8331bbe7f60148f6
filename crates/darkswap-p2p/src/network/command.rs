//! Commands from handles to the network task.

use super::Error;
use crate::{auth::AuthorizationLevel, protocol::Message, trade::TradeState};
use darkswap_support::types::{Order, OrderDraft, OrderId, PeerId, TradeMessage};
use futures::channel::oneshot;
use libp2p::Multiaddr;

type Reply<T> = oneshot::Sender<T>;
/// A peer's answer to a challenge, and the credential it showed.
pub(crate) type ProofAnswer = (crate::auth::ChallengeResponse, Option<crate::auth::AuthToken>);

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
    AskProof { peer: PeerId, challenge: crate::auth::Challenge, reply: Reply<Result<ProofAnswer, Error>> },
    RelayTargets { min: usize, max: usize, policy: Option<super::relay_policy::RelayPolicy> },
    ReserveBest { reply: Reply<Result<PeerId, Error>> },
    ReleaseRelay { relay: PeerId },
    Unban { peer: PeerId },
    ConnectedPeers { reply: Reply<Vec<PeerId>> },
    TopicPeers { topic: String, reply: Reply<Vec<PeerId>> },
    MeshPeers { topic: String, reply: Reply<Vec<PeerId>> },
    Shutdown { reply: Reply<()> },
}
