//! DarkSwap's gossipsub settings: what a node's gossip layer runs with, and why each differs
//! from rust-libp2p's defaults.

use crate::protocol::limits;
use libp2p::gossipsub;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Content-addressed gossip message id: the first 20 bytes of SHA-256 over the data.
fn message_id(msg: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::from(&Sha256::digest(&msg.data)[..20])
}

/// Gossip messages above this size announce IDONTWANT to mesh peers (gossipsub's default is 1000).
const IDONTWANT_THRESHOLD: usize = 4 * 1024;

/// When a node's first gossip heartbeat comes: at a random point of its first interval.
///
/// rust-libp2p waits 5 s by default. Gossip that arrives before the first heartbeat all lands in
/// the first window of the message cache, so that heartbeat advertises every id of those seconds
/// and, five heartbeats later, one heartbeat frees them all at once; and nodes started together
/// (a process running several, a test, the demo) would beat in step for their whole life. At 50
/// nodes x 200 orders/s that burst stopped every delivery for 10-18 ms at a time and set the p99
/// (docs/ARCHITECTURE.md, "First heartbeat"). go-libp2p starts after 100 ms; a random point of
/// the interval also spreads the nodes' heartbeats apart.
fn first_heartbeat(interval: Duration) -> Duration {
    interval.mul_f64(rand::random::<f64>())
}

/// The gossipsub configuration of a DarkSwap node with this heartbeat and mesh bounds
/// `(n, low, high)`, checked.
pub(crate) fn gossipsub_config(
    heartbeat: Duration,
    mesh: (usize, usize, usize),
) -> Result<gossipsub::Config, Box<dyn std::error::Error + Send + Sync>> {
    let (n, low, high) = mesh;
    if low == 0 || low > n || n > high {
        return Err(format!("gossip mesh needs 1 <= low <= n <= high, got n {n}, low {low}, high {high}").into());
    }
    gossipsub_config_builder(heartbeat, mesh).build().map_err(|e| e.to_string().into())
}

/// DarkSwap's gossipsub settings as a rust-libp2p [`gossipsub::ConfigBuilder`], for a heartbeat
/// interval (the default is 700 ms) and mesh bounds `(n, low, high)` (the default is
/// `(6, 5, 12)`).
///
/// A [`Network`](super::Network) applies it itself. It is public so that a program on plain
/// rust-libp2p can gossip exactly as a DarkSwap node does: a benchmark harness that carries
/// its own messages (and sets its own message id), or a client joining the order-book topic.
/// Order-book gossip needs, as set here: anonymous messages (authorship lives in the signed
/// DarkSwap envelope) and the message id of the first 20 bytes of SHA-256 over the data.
pub fn gossipsub_config_builder(
    heartbeat: Duration,
    (n, low, high): (usize, usize, usize),
) -> gossipsub::ConfigBuilder {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .heartbeat_interval(heartbeat)
        .heartbeat_initial_delay(first_heartbeat(heartbeat))
        // Authorship lives in the DarkSwap envelope, verified once per unique message after
        // deduplication (see protocol::envelope); gossipsub's own fields stay empty.
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(message_id)
        .validate_messages()
        .max_transmit_size(limits::GOSSIP_TRANSMIT_MAX)
        // Advertise no more ids than a receiver's control cap takes (see the constants).
        .max_control_messages_sent(limits::GOSSIP_IHAVE_MAX)
        .max_control_message_size(limits::GOSSIP_CONTROL_MAX)
        .duplicate_cache_time(Duration::from_secs(120))
        .flood_publish(false)
        // IDONTWANT costs a control message per mesh peer for every new message; below a few
        // KiB that costs more CPU than the duplicate it saves (at 50 nodes x 200 orders/s of
        // 1 KiB: 14.1 s CPU without it, 16.1 s with), so only large orders announce it. Nor
        // does it save much on a WAN: a small order's copies cross the mesh about as fast as
        // the IDONTWANTs (lab, 100 nodes: 5.17 duplicates per delivery without, 5.09 with it
        // at every size, for 7% more bytes).
        .idontwant_message_size_threshold(IDONTWANT_THRESHOLD)
        .mesh_n(n)
        .mesh_n_low(low)
        .mesh_n_high(high)
        // Gossipsub requires at most half the mesh to be outbound-only peers it keeps.
        .mesh_outbound_min(2.min(low).min(n / 2));
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_mesh_bounds_are_checked() {
        let hb = Duration::from_millis(700);
        for ok in [(6, 5, 12), (3, 2, 4), (1, 1, 1), (4, 4, 4)] {
            assert!(gossipsub_config(hb, ok).is_ok(), "{ok:?}");
        }
        for bad in [(0, 0, 0), (3, 4, 6), (6, 5, 5), (2, 0, 3)] {
            assert!(gossipsub_config(hb, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_full_ihave_fits_the_control_cap_receivers_apply() {
        let config = gossipsub_config(Duration::from_millis(700), (6, 5, 12)).unwrap();
        // Protobuf: each id is a tag, a length and the 20-byte id; the IHAVE and control
        // wrappers and the topic name come on top.
        let id = message_id(&gossipsub::Message {
            source: None,
            data: vec![0; 1024],
            sequence_number: None,
            topic: gossipsub::TopicHash::from_raw(crate::protocol::ORDERBOOK_TOPIC),
        });
        let ihave = config.max_control_messages_sent() * (2 + id.0.len()) + 16 + crate::protocol::ORDERBOOK_TOPIC.len();
        assert!(ihave <= config.max_control_message_size(), "{ihave} > {}", config.max_control_message_size());
        assert!(config.max_control_message_size() <= config.max_transmit_size());
    }

    #[test]
    fn the_first_heartbeat_falls_inside_the_first_interval_and_differs_between_nodes() {
        let hb = Duration::from_millis(700);
        let firsts: Vec<Duration> =
            (0..32).map(|_| gossipsub_config(hb, (6, 5, 12)).unwrap().heartbeat_initial_delay()).collect();
        assert!(firsts.iter().all(|d| *d < hb), "{firsts:?}");
        // Nodes started together must not beat in step.
        assert!(firsts.iter().any(|d| *d != firsts[0]), "{firsts:?}");
    }
}
