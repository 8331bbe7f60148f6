//! Real NATs: a relay on a public network, two peers behind endpoint-independent NATs and one
//! behind a symmetric NAT, each in its own Linux network namespace, all running `darkswap-node`.
//!
//! Shows: every peer reserves on the relay; a peer reaches another through the relay; DCUtR
//! upgrades that to a direct connection across the two cone NATs; across the symmetric NAT the
//! connection stays relayed and keeps carrying orders; a node on the relay's LAN finds it by mDNS;
//! AutoNAT finds the relay public and every NATed host private.

mod lab;

use lab::{until, Lab, Nat};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn hole_punching_through_cone_nats_and_relay_fallback_through_a_symmetric_nat() {
    let mut lab = Lab::new();
    let hosts = [lab.add_nat(1, Nat::Cone), lab.add_nat(2, Nat::Cone), lab.add_nat(3, Nat::Symmetric)];
    let public = lab.public();
    // The relay joins no order-book topic, so orders between the peers travel only over their own
    // connections (direct or circuit).
    let relay = lab.start(
        &public,
        &[
            "--relay",
            "--topic",
            "darkswap/relay-only/v1",
            "--listen",
            "/ip4/0.0.0.0/udp/9000/quic-v1",
            "--listen",
            "/ip4/0.0.0.0/tcp/9000",
            "--api",
            "127.0.0.1:9091",
            "--autonat-any-ip",
            "--mdns",
        ],
    );
    let relay_at = |i: usize| format!("/ip4/198.18.{i}.1/udp/9000/quic-v1/p2p/{}", relay.peer_id);
    let peers: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(k, ns)| {
            let r = relay_at(k + 1);
            lab.start(
                ns,
                &[
                    "--listen",
                    "/ip4/0.0.0.0/udp/9000/quic-v1",
                    "--listen",
                    "/ip4/0.0.0.0/tcp/9000",
                    "--relay-peer",
                    &r,
                    "--api",
                    "127.0.0.1:9091",
                    "--autonat-any-ip",
                ],
            )
        })
        .collect();
    for p in &peers {
        p.wait_log("relay reservation accepted", WAIT);
    }
    let (a, b, c) = (&peers[0], &peers[1], &peers[2]);

    // B (cone) reaches A (cone) through the relay, then DCUtR makes it direct.
    let via_relay = |i: usize| format!("{}/p2p-circuit/p2p/{}", relay_at(i), a.peer_id);
    let (ok, out) = b.cli(&["dial", &via_relay(2)]);
    assert!(ok, "b dials a through the relay: {out}");
    until("a direct connection between the cone-NATed peers", WAIT, || {
        b.connections_to(&a.peer_id).iter().any(|(relayed, _)| !relayed)
    });
    let direct: Vec<_> = b.connections_to(&a.peer_id).into_iter().filter(|(r, _)| !r).collect();
    assert!(direct.iter().all(|(_, addr)| addr.contains("198.18.1.2")), "direct to a's NAT: {direct:?}");
    assert!(a.logged("hole punched") || b.logged("hole punched"));

    // C (symmetric) reaches A through the relay; hole punching cannot work, the circuit stays.
    let (ok, out) = c.cli(&["dial", &via_relay(3)]);
    assert!(ok, "c dials a through the relay: {out}");
    until("c's hole punching gives up", Duration::from_secs(60), || {
        c.logged("hole punching failed") || a.logged("hole punching failed")
    });
    let conns = c.connections_to(&a.peer_id);
    assert!(!conns.is_empty() && conns.iter().all(|(relayed, _)| *relayed), "c-a stays relayed: {conns:?}");

    // The relayed link keeps working: an order from C reaches A over the circuit.
    let (ok, out) = c.cli(&["post", "--side", "sell", "--base", "rune:840000:1", "--amount", "5", "--price", "7"]);
    assert!(ok, "{out}");
    let id = out.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    until("c's order reaches a over the circuit", WAIT, || a.cli(&["orders"]).1.contains(&id));
    let conns = c.connections_to(&a.peer_id);
    assert!(conns.iter().all(|(relayed, _)| *relayed), "still only relayed: {conns:?}");

    // mDNS: a node on the relay's own LAN segment, told of no peer at all, finds the relay.
    let neighbour_ns = lab.add_neighbour(10);
    let neighbour =
        lab.start(&neighbour_ns, &["--mdns", "--listen", "/ip4/0.0.0.0/tcp/9000", "--api", "127.0.0.1:9091"]);
    neighbour.wait_log("relay found by mDNS", WAIT);
    let (ok, out) = neighbour.cli(&["status"]);
    assert!(ok && out.contains(&relay.peer_id), "the neighbour is connected to the relay: {out}");

    // AutoNAT (v2, dial-backs from a fresh port): peers dialing back tell the relay it is public;
    // every NATed host learns that it is private, the cone NATs too, whose mapping towards the
    // relay's own port is open.
    let reach = |n: &lab::LabNode| {
        let (ok, out) = n.cli(&["status"]);
        assert!(ok, "{out}");
        out.lines().find(|l| l.contains("\"reachability\"")).unwrap_or_default().to_string()
    };
    until("the relay learns it is public", Duration::from_secs(60), || reach(&relay).contains("public /ip4/198.18."));
    for n in [a, b, c] {
        until("a NATed host learns it is private", Duration::from_secs(60), || reach(n).contains("private"));
    }
}
