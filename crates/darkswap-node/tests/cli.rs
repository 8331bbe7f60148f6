//! The binary as a person uses it: run nodes, post an order and read the book from the command
//! line, and the demo.

mod common;

use common::*;

#[test]
fn post_an_order_and_read_the_book_from_the_command_line() {
    let a = start(&[]);
    let b = start(&["--bootstrap", &a.p2p]);
    // b joins a; an order posted on b reaches a's book.
    until("b connects to a", || cli(&["status", "--api", &b.api]).1.contains(a.p2p.rsplit('/').next().unwrap()));
    let (ok, out) = cli(&[
        "post",
        "--api",
        &b.api,
        "--side",
        "sell",
        "--base",
        "rune:840000:1",
        "--quote",
        "btc",
        "--amount",
        "5000",
        "--price",
        "2500",
        "--ttl",
        "600",
    ]);
    assert!(ok, "{out}");
    let id = out.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("order id").to_string();
    assert_eq!(id.len(), 32, "{out}");
    until("a's book shows the order", || {
        let (ok, out) = cli(&["orders", "--api", &a.api]);
        ok && out.contains(&id) && out.contains("rune:840000:1") && out.contains("1 live order(s)")
    });
    // Bad input is a clear error, not a crash.
    let (ok, out) =
        cli(&["post", "--api", &b.api, "--side", "sideways", "--base", "btc", "--amount", "1", "--price", "1"]);
    assert!(!ok && out.contains("unknown side"), "{out}");
    let (ok, out) = cli(&["cancel", "--api", &a.api, &id]);
    assert!(!ok && out.contains("no live order of ours"), "only the maker cancels: {out}");
    // The maker cancels; both books empty.
    let (ok, out) = cli(&["cancel", "--api", &b.api, &id]);
    assert!(ok, "{out}");
    until("the cancel reaches a", || cli(&["orders", "--api", &a.api]).1.contains("0 live order(s)"));
    let (ok, out) = cli(&["orders", "--api", "http://127.0.0.1:1"]);
    assert!(!ok && out.contains("cannot reach the node"), "{out}");
}

#[test]
fn demo_runs_and_exits_zero() {
    let (ok, out) = cli(&["demo"]);
    assert!(ok, "{out}");
    assert!(out.contains("demo summary") && out.contains("books after settlement: [5, 5, 5, 5, 5]"), "{out}");
}

#[test]
fn relay_mode_and_dialing_through_it_from_the_command_line() {
    let relay = start(&["--relay"]);
    let behind = start(&["--relay-peer", &relay.p2p]);
    let other = start(&[]);
    let behind_id = behind.p2p.rsplit('/').next().unwrap().to_string();
    let circuit = format!("{}/p2p-circuit/p2p/{behind_id}", relay.p2p);
    // The reservation may take a moment; dialing through the relay works once it holds.
    until("a dial through the relay", || cli(&["dial", "--api", &other.api, &circuit]).0);
    let (ok, out) = cli(&["connections", "--api", &other.api]);
    assert!(ok && out.contains(&behind_id) && out.contains("relayed"), "{out}");
    let (ok, out) = cli(&["dial", "--api", &other.api, "/ip4/127.0.0.1/tcp/notaport"]);
    assert!(!ok && out.contains("invalid multiaddr"), "{out}");
}

#[test]
fn a_relay_that_requires_the_shared_key() {
    let dir = std::env::temp_dir().join(format!("darkswap-cli-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("network.key");
    std::fs::write(&key, "correct horse battery staple\n").unwrap();
    let key = key.to_str().unwrap();
    let relay = start(&["--relay", "--require-auth", "--shared-key-file", key]);
    let member = start(&["--relay-peer", &relay.p2p, "--shared-key-file", key]);
    let outsider = start(&["--relay-peer", &relay.p2p]);
    let other = start(&["--shared-key-file", key]);
    let stranger = start(&[]);
    let id = |n: &Node| n.p2p.rsplit('/').next().unwrap().to_string();
    let circuit = |n: &Node| format!("{}/p2p-circuit/p2p/{}", relay.p2p, id(n));
    // The member authenticates and reserves: another member reaches it through the relay (after
    // authenticating to the relay itself).
    until("a dial through the relay to the member", || cli(&["dial", "--api", &other.api, &circuit(&member)]).0);
    // The outsider was refused a reservation: no circuit reaches it. A stranger gets no circuit.
    let (ok, out) = cli(&["dial", "--api", &other.api, &circuit(&outsider)]);
    assert!(!ok, "{out}");
    let (ok, out) = cli(&["dial", "--api", &stranger.api, &circuit(&member)]);
    assert!(!ok, "{out}");
    let (ok, out) = cli(&["run", "--shared-key-file", "/nonexistent/key"]);
    assert!(!ok && out.contains("shared key file"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_runs_the_signaling_server_and_another_dials_it_over_webrtc() {
    let host = start(&["--signaling-server", "127.0.0.1:0"]);
    let url =
        host.printed.iter().find_map(|l| l.strip_prefix("signaling: ")).expect("signaling URL printed").to_owned();
    assert!(url.starts_with("ws://127.0.0.1:") && url.ends_with("/signaling"), "{url}");
    let host_id = host.p2p.rsplit('/').next().unwrap().to_string();
    let other = start(&["--webrtc-signaling", &url]);
    let target = format!("/webrtc/p2p/{host_id}");
    until("a dial over WebRTC", || cli(&["dial", "--api", &other.api, &target]).0);
    let (ok, out) = cli(&["connections", "--api", &other.api]);
    assert!(ok && out.contains(&host_id) && out.contains("/webrtc/"), "{out}");
}
