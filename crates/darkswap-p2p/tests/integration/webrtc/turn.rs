//! WebRTC through a TURN server: coturn (Debian's `turnserver`, installed by
//! `scripts/setup-turn.sh`, which `scripts/test.sh` runs) on loopback, and two peers that offer
//! nothing but relayed candidates. Without coturn this test fails; it never skips.

use crate::support::*;
use darkswap_p2p::{
    webrtc_connection::{IceServer, WebRtcConfig},
    WebRtcSignalingClient,
};
use libp2p::identity::Keypair;
use std::{
    net::UdpSocket,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const USER: &str = "darkswap";
const PASSWORD: &str = "relay-secret";

/// A coturn process on loopback, stopped on drop.
struct Coturn {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Coturn {
    fn start() -> Coturn {
        let port = free_udp_port();
        let dir = std::env::temp_dir().join(format!("darkswap-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Relay ports from a range no other test binds in (they use port 0, the kernel's
        // ephemeral range, which starts above 32768 and where this range is unlikely to collide).
        let min = 20000 + (std::process::id() % 400) as u16 * 20;
        let child = Command::new("turnserver")
            .args(["-n", "-v", "--no-cli", "--no-tls", "--no-dtls", "--no-software-attribute", "--simple-log"])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--allow-loopback-peers"])
            .args(["--listening-port", &port.to_string()])
            .args(["--min-port", &min.to_string(), "--max-port", &(min + 19).to_string()])
            .args(["--lt-cred-mech", "--realm", "darkswap.test", "--user", &format!("{USER}:{PASSWORD}")])
            .arg("--userdb")
            .arg(dir.join("turn.db"))
            .arg("--pidfile")
            .arg(dir.join("turn.pid"))
            .args(["--log-file", "stdout"])
            .stdout(std::fs::File::create(dir.join("turn.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver runs (install it with scripts/setup-turn.sh)");
        let turn = Coturn { child, port, dir };
        turn.wait_until_answering();
        turn
    }

    /// Waits until the server answers a STUN binding request.
    fn wait_until_answering(&self) {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        // A bare binding request: type 0x0001, no attributes, the magic cookie, a transaction id.
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(b"darkswap-stn");
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            let _ = probe.send_to(&request, ("127.0.0.1", self.port));
            if let Ok((n, _)) = probe.recv_from(&mut buf) {
                if n >= 20 && buf[8..20] == request[8..20] {
                    return;
                }
            }
        }
        panic!("turnserver did not answer on port {}", self.port);
    }

    /// What the server logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turn.log")).unwrap_or_default()
    }

    fn ice_server(&self) -> IceServer {
        IceServer {
            urls: vec![format!("turn:127.0.0.1:{}?transport=udp", self.port)],
            username: USER.into(),
            credential: PASSWORD.into(),
        }
    }
}

async fn relay_only_client(url: &str, turn: &Coturn) -> WebRtcSignalingClient {
    let config = WebRtcConfig { ice_servers: vec![turn.ice_server()], relay_only: true, ..Default::default() };
    let client = WebRtcSignalingClient::with_config(Keypair::generate_ed25519(), config);
    client.connect(url).await.expect("registers");
    client
}

/// Both peers offer only their TURN allocations, so every datagram between them passes through
/// coturn: the offer carries relayed candidates and no host one, the connection works, and its
/// close frees both allocations on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_peers_connect_through_a_turn_server() {
    let turn = Coturn::start();
    let signaling = server().await;
    let a = relay_only_client(&signaling.url(), &turn).await;
    let b = relay_only_client(&signaling.url(), &turn).await;

    let offer = a.create_offer(&b.peer_id()).await.expect("offer sent");
    assert!(offer.sdp.contains("typ relay"), "{}", offer.sdp);
    assert!(!offer.sdp.contains("typ host"), "{}", offer.sdp);
    let at_a = tokio::time::timeout(WAIT, a.wait_for_connection(&b.peer_id())).await.unwrap().expect("a connects");
    let at_b = tokio::time::timeout(WAIT, b.next_connection()).await.unwrap().expect("b accepts");
    assert_eq!(at_a.remote_peer_id(), b.peer_id());
    println!("setup through TURN {:?}", at_a.setup_time());

    let (da, db) = (&at_a.data_channels["data"], &at_b.data_channels["data"]);
    for i in 0..50u32 {
        da.send(i.to_be_bytes().repeat(2000)).await.unwrap();
        db.send(i.to_le_bytes().repeat(100)).await.unwrap();
    }
    for i in 0..50u32 {
        assert_eq!(db.receive().await.unwrap(), i.to_be_bytes().repeat(2000), "a to b, in order, intact");
        assert_eq!(da.receive().await.unwrap(), i.to_le_bytes().repeat(100), "b to a, in order, intact");
    }

    // Closing the connection deletes both allocations at once (a refresh with lifetime 0)
    // instead of leaving them to expire after ten minutes.
    assert!(!turn.log().contains("lifetime=0"), "no deletion before the close");
    at_a.close().await.unwrap();
    until("both TURN allocations deleted", || async { (turn.log().matches("lifetime=0").count() >= 2).then_some(()) })
        .await;
}

/// A TURN server that refuses the credentials leaves a relay-only peer without candidates: the
/// offer fails with a clear error instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_with_wrong_credentials_fails_clearly() {
    let turn = Coturn::start();
    let signaling = server().await;
    let mut bad = turn.ice_server();
    bad.credential = "wrong".into();
    let config = WebRtcConfig { ice_servers: vec![bad], relay_only: true, ..Default::default() };
    let a = WebRtcSignalingClient::with_config(Keypair::generate_ed25519(), config);
    a.connect(&signaling.url()).await.expect("registers");
    let b = WebRtcSignalingClient::new(Keypair::generate_ed25519());
    b.connect(&signaling.url()).await.expect("registers");
    let err = tokio::time::timeout(WAIT, a.connect_to_peer(&b.peer_id())).await.unwrap().expect_err("no relay");
    assert!(err.to_string().contains("TURN"), "{err}");
}
