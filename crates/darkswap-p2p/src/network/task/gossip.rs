//! Gossip topics and publishing: this node's own orders, cancels and messages go out here, signed
//! with its identity and checked against the rules peers apply. What arrives goes to `ingest.rs`.

use super::Task;
use crate::{
    error::{Error, PublishError},
    network::state::Applied,
    protocol::{envelope, validate, Message},
    runtime::now_unix,
};
use libp2p::gossipsub::{self, IdentTopic, TopicHash};
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

/// Joined topics, and own messages waiting for a first subscriber.
#[derive(Default)]
pub(super) struct Gossip {
    /// Names shared, not copied, with each message received on them.
    topics: HashMap<TopicHash, Arc<str>>,
    /// Own messages published with no subscribed peer yet (oldest first, bounded): gossiped when
    /// a peer subscribes, so peers that already synced from our neighbours still hear of them.
    unsent: VecDeque<(TopicHash, Vec<u8>)>,
}

impl Gossip {
    /// Own messages published while no peer was subscribed, kept to gossip once one is.
    const UNSENT_MAX: usize = 256;

    /// The name of a joined topic.
    pub(super) fn topic(&self, hash: &TopicHash) -> Option<Arc<str>> {
        self.topics.get(hash).cloned()
    }
}

impl Task {
    pub(super) fn subscribe(&mut self, topic: &str) {
        let t = IdentTopic::new(topic);
        match self.swarm.behaviour_mut().gossipsub.subscribe(&t) {
            Ok(_) => {
                self.gossip.topics.insert(t.hash(), Arc::from(topic));
            }
            Err(e) => tracing::warn!(topic, error = %e, "subscribe failed"),
        }
    }

    pub(super) fn unsubscribe(&mut self, topic: &str) {
        let t = IdentTopic::new(topic);
        self.swarm.behaviour_mut().gossipsub.unsubscribe(&t);
        self.gossip.topics.remove(&t.hash());
    }

    /// Signs, checks and publishes `message`, applying it to the local book first.
    pub(super) fn publish(&mut self, topic: &str, message: Message) -> Result<(), Error> {
        let hash = IdentTopic::new(topic).hash();
        if !self.gossip.topics.contains_key(&hash) {
            return Err(PublishError::NotSubscribed(topic.to_string()).into());
        }
        let bytes = envelope::seal(&self.keypair, topic, &message).map_err(PublishError::from)?;
        let env = envelope::Envelope { author: *self.swarm.local_peer_id(), message };
        validate::check_envelope(topic, &env, now_unix()).map_err(PublishError::Invalid)?;
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let _: Applied = self.shared.apply(&env, &bytes).map_err(PublishError::Book)?;
        match self.swarm.behaviour_mut().gossipsub.publish(hash.clone(), bytes.to_vec()) {
            Ok(_) => Ok(()),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::debug!(topic, "published with no peers yet; gossiped once one subscribes");
                if self.gossip.unsent.len() >= Gossip::UNSENT_MAX {
                    self.gossip.unsent.pop_front();
                }
                self.gossip.unsent.push_back((hash, bytes.to_vec()));
                Ok(())
            }
            Err(gossipsub::PublishError::Duplicate) => Ok(()),
            Err(e) => Err(PublishError::Gossip(e.to_string()).into()),
        }
    }

    /// Gossips what was published on `topic` while nobody listened (a peer just subscribed).
    pub(super) fn publish_unsent(&mut self, topic: &TopicHash) {
        let (now, later): (VecDeque<_>, VecDeque<_>) = self.gossip.unsent.drain(..).partition(|(t, _)| t == topic);
        self.gossip.unsent = later;
        for (hash, bytes) in now {
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(hash, bytes) {
                tracing::debug!("late publish: {e}");
            }
        }
    }
}
