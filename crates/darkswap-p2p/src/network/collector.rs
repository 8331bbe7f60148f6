//! The network's figures for its metrics: the order book and message counters (a collector read
//! at each scrape), and the connection gauges and relay scores `P2PMetrics` reads.

use super::{RelayStatus, Shared};
use crate::{
    metrics::{ConnectionGauges, ConnectionSource},
    protocol::RejectReason,
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
};
use std::{
    sync::{atomic::Ordering::Relaxed, Weak},
    time::Duration,
};

/// A connection counts as active this long after its peer's last DarkSwap message.
const ACTIVE_WINDOW: Duration = Duration::from_secs(60);

impl ConnectionSource for Shared {
    fn connection_gauges(&self) -> ConnectionGauges {
        let activity = self.activity.lock().map(|a| a.clone()).unwrap_or_default();
        let (total, active) = match self.connections.lock() {
            Ok(connections) => (
                connections.len(),
                connections
                    .values()
                    .filter(|c| activity.get(&c.peer_id).is_some_and(|t| t.elapsed() < ACTIVE_WINDOW))
                    .count(),
            ),
            Err(_) => (0, 0),
        };
        let relays = self
            .relay_status
            .lock()
            .map(|s| s.values().filter(|s| matches!(s, RelayStatus::Reserved { .. })).count())
            .unwrap_or_default();
        ConnectionGauges { total, active, idle: total - active, relays }
    }

    fn relay_scores(&self, max: usize) -> Vec<(String, f64)> {
        self.relays.get_best_relays(max).into_iter().map(|r| (r.peer_id.to_string(), r.score())).collect()
    }
}

/// Encodes a network's order-book and message counters (nothing once the network is gone).
#[derive(Debug)]
pub(crate) struct NetworkCollector {
    pub(crate) shared: Weak<Shared>,
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

impl Collector for NetworkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(shared) = self.shared.upgrade() else { return Ok(()) };
        let live = shared.live_orders();
        let g = ConstGauge::new(live as i64);
        g.encode(encoder.encode_descriptor(
            "darkswap_orderbook_orders",
            "Live orders in the local order book",
            None,
            g.metric_type(),
        )?)?;
        let s = &shared.stats;
        counter(
            &mut encoder,
            "darkswap_messages_accepted",
            "Gossip messages that passed validation",
            s.messages_accepted.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "darkswap_orders_added",
            "Orders added to the local book (gossip or sync)",
            s.orders_added.load(Relaxed),
        )?;
        counter(&mut encoder, "darkswap_orders_synced", "Orders learned by sync", s.orders_synced.load(Relaxed))?;
        counter(
            &mut encoder,
            "darkswap_anti_entropy_rounds",
            "Anti-entropy rounds started (book digests compared with a peer)",
            s.anti_entropy_rounds.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "darkswap_orders_regossiped",
            "Orders repaired by anti-entropy and gossiped on",
            s.orders_regossiped.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "darkswap_trade_messages_received",
            "Trade messages accepted from peers",
            s.trade_messages_received.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "darkswap_peers_banned",
            "Peers banned for a while for flooding gossip or sending invalid gossip",
            s.peers_banned.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "darkswap_peers_shed",
            "Connections closed because the node held more than its peer limit",
            s.peers_shed.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "darkswap_peer_dials",
            "Dials the node started on its own to reach its outbound peer target",
            s.peer_dials.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "darkswap_lookup_connections_closed",
            "Connections opened by DHT lookups, closed once the lookups were done with them",
            s.lookups_closed.load(Relaxed),
        )?;
        let snapshot = s.snapshot();
        let mut family = encoder.encode_descriptor(
            "darkswap_messages_rejected",
            "Inbound DarkSwap messages refused, by reason",
            None,
            MetricType::Counter,
        )?;
        // Every reason, zeros included, so rate() and alerts see the series from the start.
        for reason in RejectReason::ALL {
            let c = ConstCounter::new(snapshot.rejected(reason));
            c.encode(family.encode_family(&[("reason", reason.to_string())])?)?;
        }
        Ok(())
    }
}
