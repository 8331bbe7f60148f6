//! NAT traversal with relays, standalone: starts two relays and two peers that accept no direct
//! connections (as if behind NATs), on loopback.
//!
//! ```bash
//! cargo run --example relay_connection_example
//! ```
//!
//! It shows: reservations on a relay, a connection through a relay circuit, an order gossiped over
//! it, relay discovery scores, and failover: the first relay dies, the NATed peer reserves on the
//! second within a second or two, its partner reconnects through it and the order book catches up
//! by sync. Exits 0 when every step worked.

use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkEvent, NetworkHandle, RelayServerConfig},
    relay_discovery::RelayDiscoveryConfig,
};
use darkswap_support::types::{AssetId, OrderDraft, PeerId, Side};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(30);

/// Runs a network's event loop in the background, forwarding events to a channel.
fn spawn_events(mut net: Network) -> (NetworkHandle, mpsc::UnboundedReceiver<NetworkEvent>) {
    let handle = net.handle();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = net.next_event().await {
            let _ = tx.send(ev);
        }
    });
    (handle, rx)
}

async fn relay() -> Result<(NetworkHandle, String), Box<dyn std::error::Error>> {
    // A dedicated relay: no gossip topics, DarkSwap's relay limits.
    let config = NetworkConfig { topics: vec![], ..NetworkConfig::default() };
    let net = Network::builder(config).relay_server(RelayServerConfig::default()).build().await?;
    let addr = format!("{}/p2p/{}", net.listen_on("/ip4/127.0.0.1/tcp/0").await?, net.local_peer_id());
    let (handle, _) = spawn_events(net);
    println!("relay {addr}");
    Ok((handle, addr))
}

async fn reserved(rx: &mut mpsc::UnboundedReceiver<NetworkEvent>) -> Result<PeerId, Box<dyn std::error::Error>> {
    let wait = async {
        while let Some(ev) = rx.recv().await {
            if let NetworkEvent::RelayReserved { relay_peer_id, reservation_id } = ev {
                return Some((relay_peer_id, reservation_id));
            }
        }
        None
    };
    let (relay, id) = tokio::time::timeout(STEP, wait).await?.ok_or("network stopped")?;
    println!("  reserved on {relay} (reservation {id})");
    Ok(relay)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + STEP;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out: {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn order(n: u128) -> OrderDraft {
    OrderDraft {
        base: "rune:840000:1".parse().unwrap(),
        quote: AssetId::Btc,
        side: Side::Sell,
        amount: 1_000 * n,
        price: 2_500,
        ttl: Duration::from_secs(600),
        terms: Vec::new(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (r1, r1_addr) = relay().await?;
    let (_r2, r2_addr) = relay().await?;
    let bootstrap = |a: &str| -> Result<(PeerId, _), Box<dyn std::error::Error>> {
        Ok((a.rsplit('/').next().unwrap_or_default().parse()?, a.parse()?))
    };

    // Alice listens nowhere: she is reachable only through relays. She reserves on relay 1 and
    // knows relay 2 as a fallback.
    let alice = Network::builder(NetworkConfig { relay_peers: vec![r1_addr.parse()?], ..NetworkConfig::default() })
        .relay_discovery(RelayDiscoveryConfig {
            bootstrap_relays: vec![bootstrap(&r1_addr)?, bootstrap(&r2_addr)?],
            ..Default::default()
        })
        .build()
        .await?;
    let (alice, mut alice_rx) = spawn_events(alice);
    println!("alice {} (behind a NAT)", alice.local_peer_id());
    reserved(&mut alice_rx).await?;

    // Bob, also NATed, reserves on relay 2 and reaches Alice through relay 1.
    let bob = Network::new(NetworkConfig { relay_peers: vec![r2_addr.parse()?], ..NetworkConfig::default() }).await?;
    let (bob, mut bob_rx) = spawn_events(bob);
    println!("bob {} (behind a NAT)", bob.local_peer_id());
    reserved(&mut bob_rx).await?;
    let circuit = format!("{r1_addr}/p2p-circuit/p2p/{}", alice.local_peer_id());
    bob.dial(&circuit).await?;
    println!("bob reached alice through relay 1: {circuit}");
    for c in bob.connections() {
        println!(
            "  bob's connection to {}: {} {}",
            c.peer_id,
            if c.relayed { "relayed" } else { "direct" },
            c.remote_addr
        );
    }

    let first = bob.publish_order(order(1)).await?;
    until("alice receives bob's order over the circuit", || alice.order(&first.id).is_some()).await?;
    println!("alice received order {} over the circuit", first.id);
    for r in alice.relay_discovery().get_best_relays(5) {
        println!("  alice's relay {}: score {:.1} ({} ok, {} failed)", r.peer_id, r.score(), r.successes, r.failures);
    }

    // Relay 1 dies. Alice reserves on relay 2; Bob, who published meanwhile, reconnects through it.
    let died = Instant::now();
    r1.shutdown().await?;
    println!("relay 1 stopped");
    let during = bob.publish_order(order(2)).await?;
    reserved(&mut alice_rx).await?;
    println!("alice failed over to relay 2 in {:?}", died.elapsed());
    bob.dial(&format!("{r2_addr}/p2p-circuit/p2p/{}", alice.local_peer_id())).await?;
    until("alice catches up on the order published during the switch", || alice.order(&during.id).is_some()).await?;
    println!("alice caught up by sync: order {} is in her book ({} orders)", during.id, alice.orders().len());

    alice.shutdown().await?;
    bob.shutdown().await?;
    println!("done");
    Ok(())
}
