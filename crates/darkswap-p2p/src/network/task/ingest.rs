//! The one way a signed message from a peer enters this node, whether gossip or a sync page
//! brought it: admit the sender (flood guard), open the envelope, validate it, admit its author,
//! add it to the book, count, report to gossipsub, and tell the application.

use super::Task;
use crate::{
    network::{
        state::Applied,
        stats::Counters,
        swarm::flood::{FloodGuard, Verdict},
        GossipLimits, NetworkEvent,
    },
    protocol::{envelope, validate, Message, RejectReason},
    runtime::now_unix,
};
use darkswap_support::types::{OrderId, PeerId};
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use std::sync::Arc;
use web_time::Instant;

/// The flood guard: per-peer, per-maker and global rates of what peers hand this node.
pub(super) struct Ingest {
    flood: FloodGuard,
}

impl Ingest {
    pub(super) fn new(limits: GossipLimits) -> Self {
        Self { flood: FloodGuard::new(limits, Instant::now()) }
    }

    /// Drops what is counted against `peer` (it disconnected or was banned).
    pub(super) fn forget(&mut self, peer: &PeerId) {
        self.flood.forget(peer);
    }
}

/// How a message reached this node.
pub(super) enum Via {
    /// Gossip: gossipsub waits for the verdict on this message before forwarding it.
    Gossip(MessageId),
    /// A page of an order-book sync (only order announcements belong there).
    Sync,
    /// The application imported it (`NetworkHandle::import_orders`; order announcements only).
    Import,
}

/// What became of an ingested message.
pub(super) enum Ingested {
    /// News, reported to the application; for an order, its id and creation time.
    New(Option<(OrderId, u64)>),
    /// Already known, withdrawn, not for the book, or refused.
    Nothing,
}

impl Task {
    /// A gossip message (gossipsub has already dropped duplicates): checked once, and gossipsub
    /// told whether to forward it.
    pub(super) fn ingest_gossip(&mut self, source: PeerId, id: MessageId, msg: gossipsub::Message) {
        let Some(topic) = self.gossip.topic(&msg.topic) else {
            self.report(&Via::Gossip(id), &source, MessageAcceptance::Ignore);
            return;
        };
        let verdict = self.ingest.flood.on_message(source, Instant::now());
        let via = Via::Gossip(id);
        if self.act_on(verdict, source, &via) {
            self.ingest(source, &via, &topic, Arc::from(msg.data));
        }
    }

    /// Opens, validates, admits, adds to the book, counts and reports one signed message.
    pub(super) fn ingest(&mut self, source: PeerId, via: &Via, topic: &str, bytes: Arc<[u8]>) -> Ingested {
        let now = now_unix();
        let checked = envelope::open(topic, &bytes).and_then(|env| match (&env.message, via) {
            (Message::OrderAnnounce(_), _) | (_, Via::Gossip(_)) => {
                validate::check_envelope(topic, &env, now).map(|()| env)
            }
            (_, Via::Sync | Via::Import) => Err(RejectReason::WrongTopic),
        });
        let env = match checked {
            Ok(env) => env,
            Err(reason) => {
                match via {
                    Via::Gossip(_) => tracing::warn!(peer = %source, %topic, %reason, "rejected gossip message"),
                    Via::Sync => tracing::warn!(peer = %source, %reason, "rejected order from sync"),
                    Via::Import => tracing::debug!(%reason, "imported order rejected"),
                }
                self.shared.stats.reject(reason);
                self.report(via, &source, MessageAcceptance::Reject);
                if matches!(via, Via::Gossip(_)) && self.ingest.flood.on_invalid(source, Instant::now()) == Verdict::Ban
                {
                    self.ban_temporarily(source, "invalid gossip");
                }
                return Ingested::Nothing;
            }
        };
        // The author's order-book rate, after the signature check; sync pages are bounded by
        // their own page limits instead.
        if let (Via::Gossip(_), Message::OrderAnnounce(_) | Message::OrderCancel(_) | Message::TradeSettled(_)) =
            (via, &env.message)
        {
            let verdict = self.ingest.flood.on_author(env.author, source, Instant::now());
            if !self.act_on(verdict, source, via) {
                return Ingested::Nothing;
            }
        }
        match self.shared.apply(&env, &bytes) {
            Ok(Applied::New) => {
                self.report(via, &source, MessageAcceptance::Accept);
                match via {
                    Via::Gossip(_) => {
                        Counters::bump(&self.shared.stats.messages_accepted);
                        tracing::debug!(peer = %source, %topic, kind = env.message.kind(), "message accepted");
                    }
                    Via::Sync => Counters::bump(&self.shared.stats.orders_synced),
                    Via::Import => {}
                }
                let order = match &env.message {
                    Message::OrderAnnounce(o) => Some((o.id, o.created_at)),
                    _ => None,
                };
                let topic = topic.to_string();
                self.emit(NetworkEvent::MessageReceived { peer_id: source, topic, message: env.message });
                Ingested::New(order)
            }
            // Known by sync but new to gossip here (gossipsub drops its own duplicates): relay it,
            // since peers that synced elsewhere may not have it; the application saw it already.
            Ok(Applied::Known) => {
                self.report(via, &source, MessageAcceptance::Accept);
                Ingested::Nothing
            }
            Ok(Applied::Dropped) => {
                self.report(via, &source, MessageAcceptance::Ignore);
                Ingested::Nothing
            }
            Err(e) => {
                tracing::debug!(peer = %source, error = %e, "order not added");
                self.shared.stats.reject(RejectReason::BookFull);
                self.report(via, &source, MessageAcceptance::Ignore);
                Ingested::Nothing
            }
        }
    }

    /// Tells gossipsub what to do with a gossip message (nothing to tell for sync).
    fn report(&mut self, via: &Via, source: &PeerId, acceptance: MessageAcceptance) {
        if let Via::Gossip(id) = via {
            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(id, source, acceptance);
        }
    }

    /// Whether a flood-guard verdict lets the message on. When not, it is ignored (dropped and
    /// not forwarded, without blaming a forwarder) and counted; a peer that keeps flooding is
    /// banned.
    fn act_on(&mut self, verdict: Verdict, source: PeerId, via: &Via) -> bool {
        if verdict == Verdict::Pass {
            return true;
        }
        self.shared.stats.reject(RejectReason::RateLimited);
        self.report(via, &source, MessageAcceptance::Ignore);
        if verdict == Verdict::Ban {
            self.ban_temporarily(source, "gossip flood");
        }
        false
    }
}
