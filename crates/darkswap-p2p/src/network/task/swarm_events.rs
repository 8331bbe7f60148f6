//! Routes each swarm event to the part that owns what it is about. Nothing is decided here.

use super::Task;
use crate::network::{swarm::BehaviourEvent, NetworkNotice, Reachability};
use libp2p::{dcutr, gossipsub, identify, kad, ping, relay, request_response, swarm::SwarmEvent};

impl Task {
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { listener_id, address } => self.on_new_listen_addr(listener_id, address),
            SwarmEvent::ExpiredListenAddr { address, .. } => self.on_expired_listen_addr(&address),
            SwarmEvent::ListenerClosed { listener_id, reason, addresses } => {
                self.on_circuit_closed(listener_id, &reason);
                self.on_listener_closed(listener_id, reason, &addresses);
            }
            SwarmEvent::ListenerError { listener_id, error } => self.on_listener_error(listener_id, error),
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                self.peers_on_connected(peer_id, connection_id, endpoint.is_dialer());
                self.on_connection_established(peer_id, connection_id, endpoint, num_established.get() == 1)
            }
            SwarmEvent::ConnectionClosed { connection_id, peer_id, num_established, cause, .. } => {
                self.peers_on_connection_closed(connection_id);
                let mut lost = false;
                if num_established == 0 {
                    tracing::info!(peer = %peer_id, cause = ?cause, "peer disconnected");
                    // A connection closed on purpose or for idleness says nothing of the
                    // network; one that failed may mean this node missed gossip meanwhile.
                    let on_purpose = self.peers_on_disconnected(peer_id);
                    lost = !on_purpose && !matches!(cause, Some(libp2p::swarm::ConnectionError::KeepAliveTimeout));
                }
                self.on_connection_closed(peer_id, connection_id, num_established == 0, lost)
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                tracing::debug!(peer = ?peer_id, error = %error, "outgoing connection failed");
                self.peers_on_dial_failed(connection_id, peer_id);
                self.on_dial_failed(connection_id, error.to_string());
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        let traffic = match &ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source: peer, .. })
            | BehaviourEvent::Sync(request_response::Event::Message { peer, .. })
            | BehaviourEvent::Reconcile(request_response::Event::Message { peer, .. })
            | BehaviourEvent::Trade(request_response::Event::Message { peer, .. }) => Some(*peer),
            _ => None,
        };
        if let Some(peer) = traffic {
            self.shared.touch(peer);
        }
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                self.ingest_gossip(propagation_source, message_id, message)
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { topic, .. }) => self.publish_unsent(&topic),
            BehaviourEvent::Sync(ev) => self.on_sync(ev),
            BehaviourEvent::Reconcile(ev) => self.on_reconcile(ev),
            BehaviourEvent::Trade(ev) => self.on_trade(ev),
            BehaviourEvent::Auth(ev) => self.on_auth(*ev),
            BehaviourEvent::Blocked(ev) => match ev {},
            #[cfg(not(target_arch = "wasm32"))]
            BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found)) => self.on_mdns(found),
            #[cfg(not(target_arch = "wasm32"))]
            BehaviourEvent::Mdns(libp2p::mdns::Event::Expired(_)) => {}
            #[cfg(target_arch = "wasm32")]
            BehaviourEvent::Mdns(ev) => match ev {},
            BehaviourEvent::Identify(ev) => {
                if let identify::Event::Received { peer_id, connection_id, info } = *ev {
                    self.on_identified(peer_id, connection_id, info);
                }
            }
            BehaviourEvent::Kad(ev) => {
                if let kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders { providers, .. })),
                    ..
                } = *ev
                {
                    self.on_relay_providers(providers)
                }
            }
            BehaviourEvent::Ping(ping::Event { peer, result, .. }) if self.shared.relays.is_relay(&peer) => {
                match result {
                    Ok(rtt) => self.shared.relays.record_success(&peer, rtt.as_millis() as u64),
                    Err(_) => self.shared.relays.record_failure(&peer),
                }
            }
            BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result }) => match result {
                Ok(_) => {
                    tracing::info!(peer = %remote_peer_id, "hole punched: direct connection");
                    self.notice(NetworkNotice::DirectConnectionUpgraded { peer_id: remote_peer_id });
                }
                Err(e) => {
                    tracing::info!(peer = %remote_peer_id, error = %e, "hole punching failed; staying relayed");
                    self.notice(NetworkNotice::DirectConnectionUpgradeFailed {
                        peer_id: remote_peer_id,
                        error: e.to_string(),
                    });
                }
            },
            BehaviourEvent::Autonat(libp2p::autonat::Event::StatusChanged { new, .. }) => {
                if let Some(r) = self.swarm.behaviour_mut().autonat_client.v1_status(new) {
                    self.reachability_changed(r);
                }
            }
            BehaviourEvent::AutonatClient(r) => self.reachability_changed(r),
            BehaviourEvent::RelayServer(ev) => {
                self.peers_on_relay_server(&ev);
                log_relay_server(*ev)
            }
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            }) => self.on_reservation_accepted(relay_peer_id, renewal),
            _ => {}
        }
    }

    fn reachability_changed(&mut self, r: Reachability) {
        tracing::info!(reachability = ?r, "reachability changed");
        if let Ok(mut cur) = self.shared.reachability.lock() {
            *cur = r.clone();
        }
        self.notice(NetworkNotice::ReachabilityChanged(r));
    }
}

/// What this node's relay server did (relay mode).
fn log_relay_server(ev: relay::Event) {
    match ev {
        relay::Event::ReservationReqAccepted { src_peer_id, renewed } => {
            tracing::info!(peer = %src_peer_id, renewed, "relay: reservation accepted")
        }
        relay::Event::ReservationReqDenied { src_peer_id, status } => {
            tracing::info!(peer = %src_peer_id, ?status, "relay: reservation denied")
        }
        relay::Event::CircuitReqAccepted { src_peer_id, dst_peer_id } => {
            tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "relay: circuit opened")
        }
        relay::Event::CircuitReqDenied { src_peer_id, dst_peer_id, status } => {
            tracing::info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "relay: circuit denied")
        }
        relay::Event::CircuitClosed { src_peer_id, dst_peer_id, error } => {
            tracing::debug!(src = %src_peer_id, dst = %dst_peer_id, ?error, "relay: circuit closed")
        }
        other => tracing::debug!(event = ?other, "relay"),
    }
}
