//! Serves the handles' commands, each by the part that owns what it asks about.

use super::Task;
use crate::{
    auth::AuthRequest,
    error::PublishError,
    network::command::Command,
    protocol::{Message, ORDERBOOK_TOPIC},
    runtime::now_unix,
};
use darkswap_support::types::{Order, OrderCancel};
use libp2p::gossipsub::IdentTopic;
use std::sync::Arc;

impl Task {
    pub(super) fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Listen { addr, reply } => self.listen(addr, reply),
            Command::Dial { addr, reply } => self.dial_checked(addr, reply),
            Command::Subscribe { topic } => self.subscribe(&topic),
            Command::Unsubscribe { topic } => self.unsubscribe(&topic),
            Command::Publish { topic, message, reply } => {
                let _ = reply.send(self.publish(&topic, message));
            }
            Command::PublishOrder { draft, reply } => {
                let order = Order::from_draft(*self.swarm.local_peer_id(), &draft, now_unix(), rand::random());
                let result = self.publish(ORDERBOOK_TOPIC, Message::OrderAnnounce(order.clone()));
                let _ = reply.send(result.map(|()| order));
            }
            Command::CancelOrder { id, reply } => {
                let local = *self.swarm.local_peer_id();
                let order = self.shared.book.lock().ok().and_then(|b| b.get(&id).cloned());
                let result = match order {
                    Some(o) if o.maker == local => {
                        let cancel = OrderCancel { order_id: id, maker: local, expiry: o.expiry };
                        self.publish(ORDERBOOK_TOPIC, Message::OrderCancel(cancel))
                    }
                    _ => Err(PublishError::UnknownOrder.into()),
                };
                let _ = reply.send(result);
            }
            Command::ImportOrders { envelopes, reply } => {
                let local = *self.swarm.local_peer_id();
                let added = envelopes
                    .into_iter()
                    .filter(|bytes| {
                        let via = &super::ingest::Via::Import;
                        let ingested = self.ingest(local, via, ORDERBOOK_TOPIC, Arc::from(bytes.as_slice()));
                        matches!(ingested, super::ingest::Ingested::New(_))
                    })
                    .count();
                let _ = reply.send(added);
            }
            Command::SendTrade { peer, message, reply } => self.send_trade(peer, message, reply),
            Command::Authenticate { peer, reply } => self.authenticate(peer, Some(reply)),
            Command::AskProof { peer, challenge, reply } => {
                let id = self.swarm.behaviour_mut().auth.send_request(&peer, AuthRequest::Prove(challenge));
                self.auth.track(id, peer, super::auth::AuthPurpose::Ask(reply));
            }
            Command::RelayTargets { min, policy } => self.set_relay_targets(min, policy),
            Command::ReserveBest { reply } => self.reserve_best(reply),
            Command::ReleaseRelay { relay } => self.release_relay(relay),
            Command::VerifyPeer { peer, reply } => self.verify_peer(peer, reply),
            Command::Ban { peer } => self.ban(peer),
            Command::Unban { peer } => self.unban(peer),
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::TopicPeers { topic, reply } => {
                let hash = IdentTopic::new(topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::MeshPeers { topic, reply } => {
                let hash = IdentTopic::new(topic).hash();
                let _ = reply.send(self.swarm.behaviour().gossipsub.mesh_peers(&hash).copied().collect());
            }
            Command::Shutdown { reply } => {
                self.close_all();
                self.shutdown = Some(reply);
            }
        }
    }
}
