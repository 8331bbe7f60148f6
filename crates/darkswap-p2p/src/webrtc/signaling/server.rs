//! The signaling server: a WebSocket endpoint (axum) that checks each client's proof of its peer
//! id and routes offers, answers, ICE candidates and byes between registered peers.

use super::wire::{self, ClientMessage, ErrorCode, ServerMessage, SIGNALING_VERSION};
use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        State,
    },
    routing::get,
    serve::ListenerExt,
    Router,
};
use futures::{SinkExt, StreamExt};
use libp2p::PeerId;
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use web_time::Instant;

/// Limits and address of a [`SignalingServer`].
#[derive(Debug, Clone)]
pub struct SignalingServerConfig {
    /// Where to listen (default `127.0.0.1:9001`; port 0 picks one).
    pub listen: SocketAddr,
    /// The WebSocket path; every other path gets 404 (default `/signaling`).
    pub path: String,
    /// Most clients connected at once; the next one gets a `server_full` error and a close.
    pub max_clients: usize,
    /// Largest frame accepted; a bigger one closes the connection (code 1009).
    pub max_message_size: usize,
    /// Frames per second a client may send, sustained.
    pub rate_limit: u32,
    /// Frames a client may send in a burst above the sustained rate.
    pub rate_burst: u32,
    /// Frames queued towards one client before further ones are refused with `peer_busy`.
    pub outbound_queue: usize,
    /// Time a client has to register after connecting.
    pub register_timeout: Duration,
}

impl Default for SignalingServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            path: "/signaling".into(),
            max_clients: 10_000,
            max_message_size: wire::MAX_SIGNALING_MESSAGE,
            rate_limit: 50,
            rate_burst: 200,
            outbound_queue: 256,
            register_timeout: Duration::from_secs(10),
        }
    }
}

enum Outbound {
    Text(String),
    Close(u16, &'static str),
}

struct Client {
    tx: mpsc::Sender<Outbound>,
    session: u64,
}

struct Shared {
    config: SignalingServerConfig,
    clients: RwLock<HashMap<PeerId, Client>>,
    connected: AtomicUsize,
    sessions: AtomicU64,
    routed: AtomicU64,
    stop: CancellationToken,
}

/// The server's figures, read at each scrape (nothing once the server is gone).
#[derive(Debug)]
struct SignalingCollector {
    shared: std::sync::Weak<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl prometheus_client::collector::Collector for SignalingCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::{
            encoding::EncodeMetric,
            metrics::{counter::ConstCounter, gauge::ConstGauge},
        };
        let Some(s) = self.shared.upgrade() else { return Ok(()) };
        let registered = s.clients.read().unwrap_or_else(|p| p.into_inner()).len();
        for (name, help, value) in [
            (
                "darkswap_signaling_clients_connected",
                "Signaling clients with an open WebSocket",
                s.connected.load(Ordering::Relaxed),
            ),
            ("darkswap_signaling_clients_registered", "Signaling clients that proved a peer id", registered),
        ] {
            let g = ConstGauge::new(value as i64);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        for (name, help, value) in [
            ("darkswap_signaling_sessions", "WebSocket sessions accepted", s.sessions.load(Ordering::Relaxed)),
            ("darkswap_signaling_messages_routed", "Messages routed between peers", s.routed.load(Ordering::Relaxed)),
        ] {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

/// A running signaling server; dropping it (or [`shutdown`](Self::shutdown)) stops it and closes
/// every client connection.
pub struct SignalingServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SignalingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingServer").field("url", &self.url()).finish()
    }
}

impl SignalingServer {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn bind(config: SignalingServerConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let path = config.path.clone();
        let shared = Arc::new(Shared {
            config,
            clients: RwLock::new(HashMap::new()),
            connected: AtomicUsize::new(0),
            sessions: AtomicU64::new(0),
            routed: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        let app = Router::new().route(&path, get(upgrade)).with_state(shared.clone());
        let stop = shared.stop.clone();
        let task = tokio::spawn(async move {
            // Signaling frames are small and latency-bound: Nagle's algorithm would hold an answer
            // back until the previous frame is acknowledged (~40 ms with delayed ACKs).
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {e}");
                }
            });
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::warn!("signaling server stopped: {e}");
            }
        });
        tracing::info!(%local_addr, %path, "signaling server listening");
        Ok(Self { local_addr, shared, task: Some(task) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://ADDR/PATH` for clients.
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.local_addr, self.shared.config.path)
    }

    /// Clients with an open WebSocket (registered or not).
    pub fn connected_clients(&self) -> usize {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Clients that proved a peer id.
    pub fn registered_clients(&self) -> usize {
        self.shared.clients.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Messages routed between peers so far.
    pub fn routed_messages(&self) -> u64 {
        self.shared.routed.load(Ordering::Relaxed)
    }

    /// Reports this server in `registry` at each scrape: `darkswap_signaling_clients_connected`,
    /// `darkswap_signaling_clients_registered` (gauges), `darkswap_signaling_sessions` and
    /// `darkswap_signaling_messages_routed` (counters).
    pub fn register_metrics(&self, registry: &crate::metrics::MetricsRegistry) {
        registry.register_collector(Box::new(SignalingCollector { shared: Arc::downgrade(&self.shared) }));
    }

    /// Stops accepting, closes every client and waits for the server task.
    pub async fn shutdown(mut self) {
        self.shared.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SignalingServer {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

async fn upgrade(ws: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> axum::response::Response {
    let max = shared.config.max_message_size;
    ws.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| serve_client(socket, shared))
}

/// A client's rate limit, and when it was last told it hit it.
struct Bucket {
    bucket: crate::rate::TokenBucket,
    warned_at: Option<Instant>,
}

impl Bucket {
    fn new(rate: u32, burst: u32) -> Self {
        Self { bucket: crate::rate::TokenBucket::new(rate, burst, Instant::now()), warned_at: None }
    }

    fn take(&mut self) -> bool {
        self.bucket.take(Instant::now())
    }

    /// One `rate_limited` error per second is enough to tell a flooding client.
    fn should_warn(&mut self) -> bool {
        let now = Instant::now();
        match self.warned_at {
            Some(t) if now.duration_since(t) < Duration::from_secs(1) => false,
            _ => {
                self.warned_at = Some(now);
                true
            }
        }
    }
}

fn error(code: ErrorCode, message: impl Into<String>, connection_id: Option<String>) -> Outbound {
    Outbound::Text(wire::encode_server(&ServerMessage::Error { code, message: message.into(), connection_id }))
}

struct Session {
    shared: Arc<Shared>,
    id: u64,
    tx: mpsc::Sender<Outbound>,
    nonce: [u8; 32],
    peer: Option<PeerId>,
    bucket: Bucket,
}

async fn serve_client(socket: WebSocket, shared: Arc<Shared>) {
    let (mut sink, mut stream) = socket.split();
    let connected = shared.connected.fetch_add(1, Ordering::Relaxed) + 1;
    let guard = ConnectedGuard(shared.clone());
    if connected > shared.config.max_clients {
        let full = ServerMessage::Error {
            code: ErrorCode::ServerFull,
            message: format!("{} clients connected", shared.config.max_clients),
            connection_id: None,
        };
        let _ = sink.send(Message::Text(wire::encode_server(&full).into())).await;
        let _ = sink.send(close_frame(1013, "server full")).await;
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Outbound>(shared.config.outbound_queue);
    let stop = shared.stop.clone();
    let writer = tokio::spawn(async move {
        loop {
            let out = tokio::select! {
                out = rx.recv() => out,
                _ = stop.cancelled() => Some(Outbound::Close(1001, "server shutting down")),
            };
            match out {
                Some(Outbound::Text(t)) => {
                    if sink.send(Message::Text(Utf8Bytes::from(t))).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let _ = sink.send(close_frame(code, reason)).await;
                    break;
                }
                None => break,
            }
        }
    });
    let mut session = Session {
        id: shared.sessions.fetch_add(1, Ordering::Relaxed),
        tx,
        nonce: rand::random(),
        peer: None,
        bucket: Bucket::new(shared.config.rate_limit, shared.config.rate_burst),
        shared: shared.clone(),
    };
    let challenge = ServerMessage::Challenge { version: SIGNALING_VERSION, nonce: hex::encode(session.nonce) };
    let _ = session.tx.send(Outbound::Text(wire::encode_server(&challenge))).await;
    let deadline = tokio::time::Instant::now() + shared.config.register_timeout;
    loop {
        let next = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until(deadline), if session.peer.is_none() => {
                let _ = session.tx.send(Outbound::Close(1008, "no registration in time")).await;
                break;
            }
            _ = shared.stop.cancelled() => break,
        };
        let msg = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // Oversized frames end here: tungstenite refuses them before we see them.
                tracing::debug!(session = session.id, "signaling client error: {e}");
                let _ = session.tx.try_send(error(ErrorCode::TooLarge, e.to_string(), None));
                let _ = session.tx.try_send(Outbound::Close(1009, "bad frame"));
                break;
            }
            None => break,
        };
        let keep = match msg {
            Message::Text(text) => session.on_text(text.as_str()).await,
            Message::Binary(_) => session.reply(error(ErrorCode::InvalidJson, "binary frames are not JSON", None)),
            Message::Close(_) => false,
            Message::Ping(_) | Message::Pong(_) => true,
        };
        if !keep {
            break;
        }
    }
    if let Some(peer) = session.peer {
        let mut clients = shared.clients.write().unwrap_or_else(|p| p.into_inner());
        if clients.get(&peer).is_some_and(|c| c.session == session.id) {
            clients.remove(&peer);
        }
    }
    drop(session);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    drop(guard);
}

struct ConnectedGuard(Arc<Shared>);

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
}

impl Session {
    /// Queues a frame for this client; `false` if its writer is gone.
    fn reply(&self, out: Outbound) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Handles one text frame; `false` closes the connection.
    async fn on_text(&mut self, text: &str) -> bool {
        if !self.bucket.take() {
            if self.bucket.should_warn() {
                return self.reply(error(ErrorCode::RateLimited, "slow down", None));
            }
            return true;
        }
        let msg = match wire::decode_client(text) {
            Ok(m) => m,
            Err(e) => return self.reply(error(e.code, e.detail, None)),
        };
        match msg {
            ClientMessage::Register(reg) => {
                if self.peer.is_some() {
                    return self.reply(error(ErrorCode::InvalidMessage, "already registered", None));
                }
                if let Err(e) = wire::verify_register(&reg, &self.nonce) {
                    self.reply(error(e.code, e.detail, None));
                    let _ = self.tx.send(Outbound::Close(1008, "bad proof")).await;
                    return false;
                }
                let old = self
                    .shared
                    .clients
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(reg.peer_id, Client { tx: self.tx.clone(), session: self.id });
                if let Some(old) = old {
                    let _ = old.tx.try_send(error(ErrorCode::Replaced, "peer id registered again", None));
                    let _ = old.tx.try_send(Outbound::Close(1000, "replaced"));
                }
                self.peer = Some(reg.peer_id);
                tracing::debug!(session = self.id, peer = %reg.peer_id, "signaling client registered");
                self.reply(Outbound::Text(wire::encode_server(&ServerMessage::Registered { peer_id: reg.peer_id })))
            }
            ClientMessage::Routed(mut routed) => {
                let Some(me) = self.peer else {
                    return self.reply(error(ErrorCode::NotRegistered, "register first", Some(routed.connection_id)));
                };
                routed.from = Some(me);
                let target =
                    self.shared.clients.read().unwrap_or_else(|p| p.into_inner()).get(&routed.to).map(|c| c.tx.clone());
                let Some(target) = target else {
                    let to = routed.to;
                    return self.reply(error(
                        ErrorCode::UnknownPeer,
                        format!("{to} is not connected"),
                        Some(routed.connection_id),
                    ));
                };
                let cid = routed.connection_id.clone();
                let text = wire::encode_server(&ServerMessage::Routed(routed));
                match target.try_send(Outbound::Text(text)) {
                    Ok(()) => {
                        self.shared.routed.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(_) => self.reply(error(ErrorCode::PeerBusy, "recipient queue full", Some(cid))),
                }
            }
        }
    }
}
