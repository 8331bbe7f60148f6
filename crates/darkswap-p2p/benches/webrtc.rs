//! WebRTC figures, measured side by side in one run:
//!
//! 1. connection setup through the signaling server (offer to proven connection), p50/p99,
//!    against a WebRTC-direct dial and a TCP+Noise+Yamux dial between two `Network`s
//!    in the same run, and against the 50 ms goal;
//! 2. data-channel throughput native<->native on loopback (Mbit/s, against the 500 Mbit/s goal and
//!    a TCP loopback stream in the same run), and a libp2p stream over WebRTC-direct;
//! 3. the signaling server with 1,000 and 5,000 registered clients relaying offers at 2,000 msg/s:
//!    p50/p99 relay latency (goal p99 <= 10 ms).
//!
//! ```bash
//! cargo bench -p darkswap-p2p --bench webrtc
//! cargo bench -p darkswap-p2p --bench webrtc -- --iters 50 --megabytes 256 --message-kib 64 --clients 1000,5000 --rate 2000
//! ```

use darkswap_p2p::{
    network::{Network, NetworkConfig, NetworkHandle},
    signaling::{
        wire::{self, ClientMessage, ServerMessage},
        SignalingServer, SignalingServerConfig,
    },
    WebRtcSignalingClient,
};
use futures::{SinkExt, StreamExt};
use libp2p::{identity::Keypair, PeerId};
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

struct Opts {
    iters: usize,
    megabytes: usize,
    clients: Vec<usize>,
    rate: u64,
    message_kib: usize,
}

fn opts() -> Opts {
    let mut o = Opts { iters: 30, megabytes: 128, clients: vec![1000, 5000], rate: 2000, message_kib: 16 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("a value");
        match a.as_str() {
            "--iters" => o.iters = val().parse().expect("a number"),
            "--megabytes" => o.megabytes = val().parse().expect("a number"),
            "--clients" => o.clients = val().split(',').map(|n| n.parse().expect("numbers")).collect(),
            "--rate" => o.rate = val().parse().expect("a number"),
            "--message-kib" => o.message_kib = val().parse().expect("a number"),
            _ => {}
        }
    }
    o
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn signaling_server() -> SignalingServer {
    let config = SignalingServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        // The load test sends from many clients at once; keep the per-client limit out of the way.
        rate_limit: 10_000,
        rate_burst: 10_000,
        ..Default::default()
    };
    SignalingServer::bind(config).await.expect("server binds")
}

async fn signaling_client(url: &str) -> WebRtcSignalingClient {
    let c = WebRtcSignalingClient::new(Keypair::generate_ed25519());
    c.connect(url).await.expect("registers");
    c
}

async fn network() -> NetworkHandle {
    let mut net = Network::builder(NetworkConfig::default()).discovery(false).build().await.expect("starts");
    let h = net.handle();
    tokio::spawn(async move { while net.next_event().await.is_some() {} });
    h
}

async fn setup(iters: usize) {
    let server = signaling_server().await;
    let url = server.url();
    let (a, b) = (signaling_client(&url).await, signaling_client(&url).await);
    let mut ours = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        let c = a.connect_to_peer(&b.peer_id()).await.expect("connects");
        ours.push(t.elapsed());
        c.close().await.ok();
    }
    // WebRTC-direct and TCP, each a full Network dial (transport + security + muxer).
    let target = network().await;
    let direct_addr = target.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct").await.unwrap();
    let tcp_addr = target.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap();
    let id = target.local_peer_id();
    let (mut direct, mut tcp, mut direct_failed) = (Vec::new(), Vec::new(), 0);
    for _ in 0..iters {
        let dialer = network().await;
        let t = Instant::now();
        // A failed dial is counted rather than stopping the run.
        match dialer.dial(&format!("{direct_addr}/p2p/{id}")).await {
            Ok(_) => direct.push(t.elapsed()),
            Err(e) => {
                direct_failed += 1;
                eprintln!("WebRTC-direct dial failed: {e}");
            }
        }
        dialer.shutdown().await.ok();
        let dialer = network().await;
        let t = Instant::now();
        dialer.dial(&format!("{tcp_addr}/p2p/{id}")).await.expect("tcp dial");
        tcp.push(t.elapsed());
        dialer.shutdown().await.ok();
    }
    for v in [&mut ours, &mut direct, &mut tcp] {
        v.sort();
    }
    println!("## connection setup, {iters} connections each");
    println!("{:<44} {:>9} {:>9}", "", "p50 ms", "p99 ms");
    for (name, v) in [
        ("darkswap signaling WebRTC (offer -> proven)", &ours),
        ("WebRTC-direct (Network dial)", &direct),
        ("libp2p TCP+Noise+Yamux (Network dial)", &tcp),
    ] {
        println!("{name:<44} {:>9.2} {:>9.2}", ms(pct(v, 0.5)), ms(pct(v, 0.99)));
    }
    println!("WebRTC-direct dials that failed: {direct_failed} of {iters}");
    println!(
        "ratio p50 signaling WebRTC / WebRTC-direct: {:.2}x; p50 vs the 50 ms goal: {:.2}x of the limit",
        ms(pct(&ours, 0.5)) / ms(pct(&direct, 0.5)),
        ms(pct(&ours, 0.5)) / 50.0
    );
    println!(
        "BENCH | WebRTC setup via signaling (p50) | {:.2} ms (WebRTC-direct {:.2} ms, TCP {:.2} ms) | <= 50 ms | {:.2}x of the limit | {iters} connections; {direct_failed} WebRTC-direct dials failed |",
        ms(pct(&ours, 0.5)),
        ms(pct(&direct, 0.5)),
        ms(pct(&tcp, 0.5)),
        ms(pct(&ours, 0.5)) / 50.0
    );
    target.shutdown().await.ok();
}

async fn throughput(megabytes: usize, message_kib: usize) {
    let msg = (message_kib * 1024).clamp(1, darkswap_p2p::webrtc_connection::MAX_DATA_MESSAGE);
    let total = megabytes * 1024 * 1024;
    let server = signaling_server().await;
    let url = server.url();
    let (a, b) = (signaling_client(&url).await, signaling_client(&url).await);
    let conn = a.connect_to_peer(&b.peer_id()).await.expect("connects");
    let remote = b.wait_for_connection(&a.peer_id()).await.expect("accepted");
    let (tx, rx) = (conn.data_channels["data"].clone(), remote.data_channels["data"].clone());
    let t = Instant::now();
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < total {
            got += rx.receive().await.expect("receives").len();
        }
        got
    });
    let chunk = vec![7u8; msg];
    for _ in 0..total / msg {
        tx.send(chunk.clone()).await.expect("sends");
    }
    let got = reader.await.unwrap();
    let webrtc = got as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e6;

    // The same bytes over a plain TCP loopback stream, for scale.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < total {
            got += s.read(&mut buf).await.unwrap();
        }
    });
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let t = Instant::now();
    for _ in 0..total / msg {
        s.write_all(&chunk).await.unwrap();
    }
    sink.await.unwrap();
    let tcp = total as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e6;
    let direct = direct_stream(total, &chunk).await;
    println!("## data-channel throughput, {megabytes} MiB in {} KiB messages, loopback", msg / 1024);
    println!("darkswap WebRTC data channel: {webrtc:>9.1} Mbit/s ({:.2}x of the 500 Mbit/s goal)", webrtc / 500.0);
    println!(
        "WebRTC-direct libp2p stream:  {direct:>9.1} Mbit/s ({:.2}x of the goal; libp2p framing on one data channel)",
        direct / 500.0
    );
    println!("plain TCP loopback stream:    {tcp:>9.1} Mbit/s (WebRTC/TCP {:.3}x)", webrtc / tcp);
    println!(
        "BENCH | WebRTC data-channel throughput | {webrtc:.0} Mbit/s (WebRTC-direct stream {direct:.0}, plain TCP {tcp:.0}) | >= 500 Mbit/s | {:.2}x of the goal | {megabytes} MiB in {} KiB messages |",
        webrtc / 500.0,
        msg / 1024
    );
}

/// Mbit/s of one libp2p stream over WebRTC-direct (a data channel carrying libp2p's framing),
/// transport to transport: what a browser's or a native peer's protocols run on.
async fn direct_stream(total: usize, chunk: &[u8]) -> f64 {
    use darkswap_p2p::webrtc_direct::{Certificate, Transport};
    use futures::{future::poll_fn, AsyncReadExt, AsyncWriteExt};
    use libp2p::core::{
        muxing::StreamMuxerExt,
        transport::{DialOpts, ListenerId, PortUse, TransportEvent},
        Endpoint, Transport as _,
    };
    use std::pin::Pin;
    let transport = || Transport::new(Keypair::generate_ed25519(), Certificate::generate().expect("a certificate"));
    let mut listener = transport();
    listener.listen_on(ListenerId::next(), "/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap()).expect("listens");
    let addr = match poll_fn(|cx| Pin::new(&mut listener).poll(cx)).await {
        TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
        _ => panic!("the listening address comes first"),
    };
    let dial = transport().dial(addr, DialOpts { role: Endpoint::Dialer, port_use: PortUse::New }).expect("dials");
    let accept = async {
        loop {
            if let TransportEvent::Incoming { upgrade, .. } = poll_fn(|cx| Pin::new(&mut listener).poll(cx)).await {
                break upgrade.await.expect("accepted");
            }
        }
    };
    let (dialed, (_, mut inbound)) = futures::join!(dial, accept);
    let (_, mut outbound) = dialed.expect("connected");
    let mut out = poll_fn(|cx| outbound.poll_outbound_unpin(cx)).await.expect("a stream");
    let reader = tokio::spawn(async move {
        let mut s = poll_fn(|cx| inbound.poll_inbound_unpin(cx)).await.expect("the stream");
        let (mut buf, mut got) = (vec![0u8; 64 * 1024], 0);
        while got < total {
            let n = s.read(&mut buf).await.expect("reads");
            assert!(n > 0, "the stream ended early");
            got += n;
        }
        got
    });
    let t = Instant::now();
    for _ in 0..total / chunk.len() {
        out.write_all(chunk).await.expect("writes");
    }
    // libp2p's framing holds the last frame until a flush.
    out.flush().await.expect("flushes");
    let got = reader.await.unwrap();
    got as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e6
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_client(url: &str) -> (Ws, PeerId) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
    let nonce = loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            if let Ok(ServerMessage::Challenge { nonce, .. }) = wire::decode_server(t.as_str()) {
                break nonce;
            }
        }
    };
    let key = Keypair::generate_ed25519();
    let reg = wire::sign_register(&key, &nonce).unwrap();
    ws.send(Message::Text(wire::encode_client(&ClientMessage::Register(reg)).into())).await.unwrap();
    loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            if let Ok(ServerMessage::Registered { .. }) = wire::decode_server(t.as_str()) {
                break;
            }
        }
    }
    (ws, key.public().to_peer_id())
}

/// `clients` registered clients; offers sent round-robin at `rate` per second for a few seconds,
/// each carrying its send time, to the next client; latency measured at the receiver.
async fn signaling_load(clients: usize, rate: u64) {
    let server = signaling_server().await;
    let url = server.url();
    let epoch = Instant::now();
    let mut sinks = Vec::with_capacity(clients);
    let mut ids = Vec::with_capacity(clients);
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let t = Instant::now();
    for _ in 0..clients {
        let (ws, id) = raw_client(&url).await;
        let (sink, mut stream) = ws.split();
        let lat_tx = lat_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(Message::Text(t))) = stream.next().await {
                if let Ok(ServerMessage::Routed(r)) = wire::decode_server(t.as_str()) {
                    if let Ok(sent_ns) = r.connection_id.parse::<u64>() {
                        let _ = lat_tx.send(epoch.elapsed().saturating_sub(Duration::from_nanos(sent_ns)));
                    }
                }
            }
        });
        sinks.push(sink);
        ids.push(id);
    }
    let register_time = t.elapsed();
    let secs = 3;
    let total = rate * secs;
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".repeat(8); // an SDP-sized payload
    let sinks: Vec<_> = sinks.into_iter().map(|s| Arc::new(tokio::sync::Mutex::new(s))).collect();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total as usize {
        tick.tick().await;
        let from = i % clients;
        let to = ids[(from + 1) % clients];
        let frame = format!(
            r#"{{"type":"offer","to":"{to}","connection_id":"{}","sdp":{}}}"#,
            epoch.elapsed().as_nanos() as u64,
            serde_json::to_string(&sdp).unwrap()
        );
        let sink = sinks[from].clone();
        tokio::spawn(async move {
            let _ = sink.lock().await.send(Message::Text(frame.into())).await;
        });
    }
    let mut lat = Vec::with_capacity(total as usize);
    while lat.len() < total as usize {
        match tokio::time::timeout(Duration::from_secs(10), lat_rx.recv()).await {
            Ok(Some(d)) => lat.push(d),
            _ => break,
        }
    }
    lat.sort();
    println!(
        "{clients:>6} clients (registered in {:.1} s): {} of {total} offers relayed at {rate}/s, p50 {:.2} ms, p99 {:.2} ms (goal p99 <= 10 ms: {:.2}x of the limit)",
        register_time.as_secs_f64(),
        lat.len(),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 0.99)) / 10.0
    );
    println!(
        "BENCH | Signaling relay latency, {clients} clients (p99) | {:.2} ms (p50 {:.2}) | <= 10 ms | {:.2}x of the limit | {} of {total} offers at {rate}/s |",
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)) / 10.0,
        lat.len()
    );
    server.shutdown().await;
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        setup(o.iters).await;
        throughput(o.megabytes, o.message_kib).await;
        println!("## signaling server relaying offers (clients and server share this machine's cores)");
        for &n in &o.clients {
            signaling_load(n, o.rate).await;
        }
    });
}
