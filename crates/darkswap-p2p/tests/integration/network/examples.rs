//! The README's Basic Example (examples/simple_node.rs) runs to completion against a real node.

use crate::support::*;
use darkswap_p2p::network::NetworkEvent;
use std::{process::Stdio, time::Duration};
use tokio::io::{AsyncBufReadExt, BufReader};

fn example_binary() -> std::path::PathBuf {
    // tests live in target/<profile>/deps; cargo builds examples into target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    dir.join("examples").join(format!("simple_node{}", std::env::consts::EXE_SUFFIX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_basic_example_runs_to_completion() {
    let bin = example_binary();
    assert!(bin.exists(), "{} is built by `cargo test`", bin.display());
    let (net, addr) = node().await;
    let (net, mut rx) = drain(net);
    let mut child = tokio::process::Command::new(&bin)
        .args(["--dial", &addr, "--exit-after-messages", "1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let peer = next_matching(&mut rx, |ev| match ev {
        NetworkEvent::PeerConnected(p) => Some(p),
        _ => None,
    })
    .await;
    until_meshed(&net, &[peer]).await;
    let order = net.publish_order(draft(3, Duration::from_secs(600))).await.unwrap();

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    let status = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            out.push(line);
        }
        child.wait().await.unwrap()
    })
    .await
    .expect("example exits");
    assert!(status.success(), "example failed: {out:?}");
    let text = out.join("\n");
    assert!(text.contains(&format!("Local peer ID: {peer}")), "{text}");
    assert!(text.contains(&format!("Peer connected: {}", net.local_peer_id())), "{text}");
    assert!(text.contains("Message received from") && text.contains(&format!("{:?}", order.id)), "{text}");
    net.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_connection_example_runs_standalone() {
    let bin = example_binary().with_file_name(format!("relay_connection_example{}", std::env::consts::EXE_SUFFIX));
    let out = tokio::time::timeout(WAIT * 3, tokio::process::Command::new(&bin).kill_on_drop(true).output())
        .await
        .expect("the example finishes")
        .expect("the example runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in
        ["reached alice through relay 1", "received order", "failed over to relay 2", "caught up by sync", "done"]
    {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
}

async fn run_example(name: &str) -> String {
    let bin = example_binary().with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let out = tokio::time::timeout(WAIT * 3, tokio::process::Command::new(&bin).kill_on_drop(true).output())
        .await
        .expect("example exits")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_examples_run_standalone() {
    let out = run_example("encryption_example").await;
    assert!(out.contains("replaying alice's message: replayed message"), "{out}");
    assert!(out.contains("no longer held"), "{out}");
    let out = run_example("auth_relay_example").await;
    assert!(out.contains("member reserved on"), "{out}");
    assert!(out.contains("relay sees the member at level Basic"), "{out}");
    assert!(out.contains("outsider refused"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_examples_run_standalone() {
    let out = run_example("webrtc_example").await;
    assert!(out.contains("Received: Hello, world!"), "{out}");
    let out = run_example("connection_pool_example").await;
    assert!(out.contains("reused the pooled connection: true"), "{out}");
    assert!(out.contains("Total connections: 3"), "{out}");
    assert!(out.contains("pruned 2 idle connections; 0 left"), "{out}");
}

/// The README's two-terminal flow: the signaling server example, a listening webrtc_example, and
/// a second webrtc_example that dials it by peer id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_server_and_webrtc_example_across_processes() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let bin = |name: &str| example_binary().with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let spawn = |name: &str, args: &[&str]| {
        tokio::process::Command::new(bin(name))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("example starts")
    };
    async fn line_with(child: &mut tokio::process::Child, needle: &str) -> String {
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let found = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("{needle:?} never printed");
        })
        .await
        .expect("in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        found
    }
    let mut server = spawn("signaling_server", &["127.0.0.1:0"]);
    let line = line_with(&mut server, "listening on").await;
    let url = line.rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("ws://127.0.0.1:") && url.ends_with("/signaling"), "{line}");
    let mut listener = spawn("webrtc_example", &[&url]);
    let line = line_with(&mut listener, "registered on").await;
    let peer = line.split(' ').nth(2).unwrap().to_owned();
    let out =
        tokio::time::timeout(WAIT, tokio::process::Command::new(bin("webrtc_example")).args([&url, &peer]).output())
            .await
            .expect("dialer finishes")
            .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("connected to {peer}")) && text.contains("Received: Hello, world!"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_examples_run_and_serve_prometheus_text() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let out = run_example("metrics_example").await;
    assert!(out.contains("p2p_connection_attempts = 1"), "{out}");
    assert!(out.contains("p2p_relay_score{relay="), "{out}");
    assert!(out.lines().last() == Some("ok"), "{out}");

    // metrics_server answers a scrape with Prometheus text, then exits as asked.
    let bin = example_binary().with_file_name(format!("metrics_server{}", std::env::consts::EXE_SUFFIX));
    let mut server = tokio::process::Command::new(bin)
        .args(["--addr", "127.0.0.1:0", "--exit-after-scrapes", "1"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("metrics_server starts");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("metrics: ") {
                return url.to_owned();
            }
        }
        panic!("no metrics address printed");
    })
    .await
    .expect("in time");
    let host = url.trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    tcp.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{response}");
    for family in ["p2p_connections_total", "p2p_connection_attempts_total", "darkswap_orderbook_orders"] {
        assert!(response.contains(family), "{family} missing:\n{response}");
    }
    let status = tokio::time::timeout(WAIT, server.wait()).await.expect("exits after the scrape").unwrap();
    assert!(status.success());
}
