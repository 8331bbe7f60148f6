//! Commands from handles to the network task, what they carry, and the replies the task owes
//! for requests it sent on a handle's behalf.

use super::Error;
use crate::{
    auth::{AuthManager, AuthToken, AuthorizationLevel, ChallengeResponse},
    protocol::Message,
    trade::TradeState,
};
use darkswap_support::types::{Order, OrderDraft, OrderId, PeerId, TradeMessage};
use futures::channel::oneshot;
use libp2p::Multiaddr;
use std::sync::Arc;

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
    ImportOrders { envelopes: Vec<Vec<u8>>, reply: Reply<usize> },
    SendTrade { peer: PeerId, message: TradeMessage, reply: Reply<Result<TradeState, Error>> },
    Authenticate { peer: PeerId, reply: Reply<Result<AuthorizationLevel, Error>> },
    VerifyPeer { peer: PeerId, reply: Reply<Result<AuthorizationLevel, Error>> },
    Ban { peer: PeerId },
    AskProof { peer: PeerId, challenge: crate::auth::Challenge, reply: Reply<Result<ProofAnswer, Error>> },
    RelayTargets { min: usize, policy: Option<RelayPolicy> },
    ReserveBest { reply: Reply<Result<PeerId, Error>> },
    ReleaseRelay { relay: PeerId },
    Unban { peer: PeerId },
    ConnectedPeers { reply: Reply<Vec<PeerId>> },
    TopicPeers { topic: String, reply: Reply<Vec<PeerId>> },
    MeshPeers { topic: String, reply: Reply<Vec<PeerId>> },
    Shutdown { reply: Reply<()> },
}

/// Relays must prove themselves to `auth` and hold at least `min_level` before this node
/// reserves on them.
#[derive(Clone, Debug)]
pub(crate) struct RelayPolicy {
    pub(crate) auth: Arc<AuthManager>,
    pub(crate) min_level: AuthorizationLevel,
}

impl RelayPolicy {
    /// The level a relay's proof (and the credential it showed) earns, if it is enough.
    pub(crate) fn judge(
        &self,
        relay: &PeerId,
        response: &ChallengeResponse,
        token: Option<&AuthToken>,
    ) -> Result<AuthorizationLevel, String> {
        let proved = self.auth.verify_response(relay, response).map_err(|e| format!("relay's proof refused: {e}"))?;
        let vouched = token
            .and_then(|t| self.auth.authenticate_with_token(relay, &t.to_bytes()).ok())
            .unwrap_or(AuthorizationLevel::None);
        let level = proved.level.max(vouched).max(self.auth.authorization_level(relay));
        if level >= self.min_level {
            Ok(level)
        } else {
            Err(format!("relay holds {level:?}, {:?} required", self.min_level))
        }
    }
}
