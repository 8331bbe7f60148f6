//! The `signed` node of the propagation bench: `bare` plus the one cost no signed order book can
//! avoid. Each order is signed by its author and each node checks that signature once (ed25519,
//! the key decompressed once per author, as DarkSwap does) before it accepts the message to
//! gossipsub, which holds it until then (manual validation). Nothing else: no other behaviour,
//! no scoring, no order book, no events to an application.
//!
//! The gap between `bare` and this node is what signing costs by itself; the gap between this
//! node and darkswap is everything else DarkSwap does (its other protocols, scoring, the book).

use super::plain::{gossip_config, gossip_swarm, record, PlainCmd};
use super::Received;
use darkswap_p2p::libp2p::{
    futures::StreamExt,
    gossipsub::{self, IdentTopic, MessageAcceptance},
    identity::{ed25519, Keypair},
    swarm::SwarmEvent,
    Multiaddr,
};
use std::{
    collections::HashMap,
    sync::{atomic::AtomicUsize, Arc},
};
use tokio::sync::mpsc;

/// Bytes in front of the payload: the author's key, then its signature over the payload.
pub const SIGNED_HEADER: usize = 32 + 64;

/// Checks the author's signature; the key is decompressed once per author.
fn check(keys: &mut HashMap<[u8; 32], ed25519::PublicKey>, data: &[u8]) -> bool {
    let Some((raw, rest)) = data.split_first_chunk::<32>() else { return false };
    let Some((sig, payload)) = rest.split_first_chunk::<64>() else { return false };
    let key = match keys.get(raw) {
        Some(k) => k,
        None => match ed25519::PublicKey::try_from_bytes(raw) {
            Ok(k) => keys.entry(*raw).or_insert(k),
            Err(_) => return false,
        },
    };
    key.verify(payload, sig)
}

/// One signed node, started on the runtime the caller spawned this on: its address, its command
/// channel and its current mesh size.
pub async fn signed_node(
    mesh_cfg: (usize, usize, usize),
    t: IdentTopic,
    recv: Received,
) -> (Multiaddr, mpsc::UnboundedSender<PlainCmd>, Arc<AtomicUsize>) {
    let mut builder = gossip_config(mesh_cfg);
    builder.validation_mode(gossipsub::ValidationMode::Anonymous).validate_messages();
    let cfg = builder.build().unwrap();
    let key = Keypair::generate_ed25519();
    let signer = key.clone().try_into_ed25519().unwrap();
    let (mut swarm, addr) = gossip_swarm(key, gossipsub::MessageAuthenticity::Anonymous, cfg, &t).await;
    let (tx, mut rx) = mpsc::unbounded_channel::<PlainCmd>();
    let mesh = Arc::new(AtomicUsize::new(0));
    let mesh_out = mesh.clone();
    tokio::spawn(async move {
        let mut keys = HashMap::new();
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(PlainCmd::Dial(a)) => { let _ = swarm.dial(a); }
                    Some(PlainCmd::Publish(payload)) => {
                        let mut data = Vec::with_capacity(SIGNED_HEADER + payload.len());
                        data.extend_from_slice(&signer.public().to_bytes());
                        data.extend_from_slice(&signer.sign(&payload));
                        data.extend_from_slice(&payload);
                        let _ = swarm.behaviour_mut().publish(t.clone(), data);
                    }
                    None => break,
                },
                ev = swarm.select_next_some() => {
                    if let SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, message }) = ev {
                        let valid = check(&mut keys, &message.data);
                        let verdict = if valid { MessageAcceptance::Accept } else { MessageAcceptance::Reject };
                        swarm.behaviour_mut().report_message_validation_result(&message_id, &propagation_source, verdict);
                        if valid {
                            record(&recv, &message.data[SIGNED_HEADER..]);
                        }
                    }
                    let n = swarm.behaviour().mesh_peers(&t.hash()).count();
                    mesh.store(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    (addr, tx, mesh_out)
}
