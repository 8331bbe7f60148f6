//! [`WebRtcSignalingClient`]: registers with a signaling server under a proven peer id, keeps the
//! registration alive across server restarts, and negotiates WebRTC connections through it.

use super::{
    negotiate,
    routing::{
        declined, Inbox, LinkState, Outcome, Results, Role, Route, Sessions, MAX_BACKOFF, REGISTER_TIMEOUT,
        SESSION_QUEUE,
    },
    Negotiation, Offer, SignalingIdentity, WebRtcConfig, WebRtcConnection, WebRtcError,
};
use crate::webrtc::signaling::{
    wire::{self, ClientMessage, Payload, Routed, ServerMessage, MAX_SIGNALING_MESSAGE},
    SignalingError,
};
use futures::{
    future::{BoxFuture, FutureExt, Shared},
    SinkExt, StreamExt,
};
use libp2p::{identity::Keypair, PeerId};
use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};
use str0m::config::DtlsCert;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
use tokio_util::sync::CancellationToken;

/// Frames queued towards the server.
const OUTBOUND_QUEUE: usize = 1024;

type Pending = Shared<BoxFuture<'static, Outcome>>;

struct Inner {
    peer_id: PeerId,
    keypair: Option<Keypair>,
    config: WebRtcConfig,
    certificate: Mutex<Option<DtlsCert>>,
    out: Mutex<Option<mpsc::Sender<String>>>,
    link: Mutex<Option<(String, CancellationToken)>>,
    state: watch::Sender<LinkState>,
    sessions: Mutex<Sessions<mpsc::Sender<Inbox>>>,
    results: Mutex<Results<BoxFuture<'static, Outcome>>>,
    results_changed: tokio::sync::Notify,
    incoming_tx: mpsc::Sender<Arc<WebRtcConnection>>,
    incoming_rx: tokio::sync::Mutex<mpsc::Receiver<Arc<WebRtcConnection>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the background tasks when the last handle goes.
struct StopOnDrop(Arc<Inner>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some((_, stop)) = lock(&self.0.link).take() {
            stop.cancel();
        }
    }
}

/// A client of the signaling server that negotiates WebRTC connections. Clones share one
/// registration.
///
/// ```no_run
/// use darkswap_p2p::WebRtcSignalingClient;
/// use libp2p::identity::Keypair;
///
/// # async fn run(remote: libp2p::PeerId) -> Result<(), Box<dyn std::error::Error>> {
/// let client = WebRtcSignalingClient::new(Keypair::generate_ed25519());
/// client.connect("ws://localhost:9001/signaling").await?;
/// client.create_offer(&remote).await?;
/// let connection = client.wait_for_connection(&remote).await?;
/// connection.data_channels["data"].send(b"hello".to_vec()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebRtcSignalingClient {
    inner: Arc<Inner>,
    _stop: Arc<StopOnDrop>,
}

impl std::fmt::Debug for WebRtcSignalingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcSignalingClient").field("peer_id", &self.inner.peer_id).finish()
    }
}

impl WebRtcSignalingClient {
    /// A client for `identity`: a [`Keypair`] to register and connect, or a bare [`PeerId`]
    /// (as in the seed), which cannot prove itself to the server.
    pub fn new(identity: impl Into<SignalingIdentity>) -> Self {
        Self::with_config(identity, WebRtcConfig::default())
    }

    /// A client with explicit WebRTC settings (STUN/TURN servers, channel names, timeouts).
    pub fn with_config(identity: impl Into<SignalingIdentity>, config: WebRtcConfig) -> Self {
        let (peer_id, keypair) = match identity.into() {
            SignalingIdentity::PeerId(p) => (p, None),
            SignalingIdentity::Keypair(k) => (k.public().to_peer_id(), Some(k)),
        };
        let (incoming_tx, incoming_rx) = mpsc::channel(config.incoming_queue.max(1));
        let sessions = Mutex::new(Sessions::new(config.max_pending));
        let inner = Arc::new(Inner {
            peer_id,
            keypair,
            config,
            certificate: Mutex::new(None),
            out: Mutex::new(None),
            link: Mutex::new(None),
            state: watch::channel(LinkState::Idle).0,
            sessions,
            results: Mutex::new(Results::default()),
            results_changed: tokio::sync::Notify::new(),
            incoming_tx,
            incoming_rx: tokio::sync::Mutex::new(incoming_rx),
        });
        Self { _stop: Arc::new(StopOnDrop(inner.clone())), inner }
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The identity key, if the client has one.
    pub fn keypair(&self) -> Option<&Keypair> {
        self.inner.keypair.as_ref()
    }

    /// The WebRTC settings.
    pub fn config(&self) -> &WebRtcConfig {
        &self.inner.config
    }

    /// Connects to `url` (`ws://host:port/signaling`) and registers; returns once registered.
    /// The client then stays registered: when the server goes away it reconnects with backoff.
    pub async fn connect(&self, url: &str) -> Result<(), SignalingError> {
        if self.inner.keypair.is_none() {
            return Err(SignalingError::NoIdentityKey);
        }
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(SignalingError::InvalidUrl(url.to_owned()));
        }
        // Made now rather than on the first offer, which would otherwise pay for it.
        if let Err(e) = self.inner.certificate() {
            tracing::warn!("cannot make a WebRTC certificate: {e}");
        }
        let same = lock(&self.inner.link).as_ref().is_some_and(|(u, _)| u == url);
        if !same {
            let stop = CancellationToken::new();
            if let Some((_, old)) = lock(&self.inner.link).replace((url.to_owned(), stop.clone())) {
                old.cancel();
            }
            self.inner.state.send_replace(LinkState::Connecting);
            tokio::spawn(run(self.inner.clone(), url.to_owned(), stop));
        }
        let mut state = self.inner.state.subscribe();
        let wait = state.wait_for(|s| matches!(s, LinkState::Registered | LinkState::Failed(_)));
        let outcome = match tokio::time::timeout(REGISTER_TIMEOUT, wait).await {
            Ok(Ok(s)) => match &*s {
                LinkState::Failed(e) => Err(e.clone()),
                _ => Ok(()),
            },
            Ok(Err(_)) => Err(SignalingError::NotConnected),
            Err(_) => Err(SignalingError::Timeout),
        };
        outcome
    }

    /// Whether the client is registered with a server right now.
    pub fn is_registered(&self) -> bool {
        *self.inner.state.borrow() == LinkState::Registered
    }

    /// Waits until the client is registered (again), up to `timeout`.
    pub async fn wait_registered(&self, timeout: Duration) -> Result<(), SignalingError> {
        let mut state = self.inner.state.subscribe();
        let outcome = match tokio::time::timeout(timeout, state.wait_for(|s| *s == LinkState::Registered)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(SignalingError::NotConnected),
            Err(_) => Err(SignalingError::Timeout),
        };
        outcome
    }

    /// Leaves the server; established WebRTC connections stay up.
    pub fn disconnect(&self) {
        if let Some((_, stop)) = lock(&self.inner.link).take() {
            stop.cancel();
        }
        self.inner.state.send_replace(LinkState::Idle);
    }

    /// Starts a connection to `peer`: sends an SDP offer through the server and returns it. The
    /// negotiation goes on in the background; [`wait_for_connection`](Self::wait_for_connection)
    /// gives its outcome.
    pub async fn create_offer(&self, peer: &PeerId) -> Result<Offer, WebRtcError> {
        self.offer(peer).await.map(|(offer, _)| offer)
    }

    /// Sends an offer to `peer`; the offer, and the outcome of that negotiation alone.
    async fn offer(&self, peer: &PeerId) -> Result<(Offer, Pending), WebRtcError> {
        let connection_id = hex::encode(rand::random::<[u8; 8]>());
        let (tx, rx) = futures::channel::oneshot::channel();
        let pending = self.inner.start(Role::Offerer { offer_sdp: tx }, *peer, connection_id.clone())?;
        match rx.await {
            Ok(sdp) => Ok((Offer { connection_id, sdp }, pending)),
            Err(_) => Err(pending.await.err().unwrap_or(WebRtcError::Closed)),
        }
    }

    /// The connection to `peer` started by [`create_offer`](Self::create_offer) or by `peer`'s
    /// offer, once the identity handshake has proven it; waits up to the connect timeout for
    /// one to start.
    pub async fn wait_for_connection(&self, peer: &PeerId) -> Result<Arc<WebRtcConnection>, WebRtcError> {
        let deadline = tokio::time::Instant::now() + self.inner.config.connect_timeout;
        loop {
            let notified = self.inner.results_changed.notified();
            let usable = lock(&self.inner.results).usable(peer);
            if let Some(p) = usable {
                return p.await;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(WebRtcError::Timeout("waiting for a connection"));
            }
        }
    }

    /// Offers and waits: a proven connection to `peer`.
    pub async fn connect_to_peer(&self, peer: &PeerId) -> Result<Arc<WebRtcConnection>, WebRtcError> {
        // This offer's own outcome: another negotiation with the same peer (a second dial, or
        // the peer's own offer) may have started meanwhile, and its connection is someone else's.
        let (_, pending) = self.offer(peer).await?;
        pending.await
    }

    /// The next connection another peer started (answered automatically when
    /// [`WebRtcConfig::accept_incoming`] is on); `None` once the client is gone.
    pub async fn next_connection(&self) -> Option<Arc<WebRtcConnection>> {
        self.inner.incoming_rx.lock().await.recv().await
    }
}

impl Inner {
    /// The client's DTLS certificate, made once: connections differ in their DTLS sessions, and
    /// the identity handshake binds each one to the libp2p key.
    fn certificate(&self) -> Result<DtlsCert, WebRtcError> {
        let mut cert = lock(&self.certificate);
        if let Some(c) = cert.as_ref() {
            return Ok(c.clone());
        }
        let c = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| WebRtcError::Rtc("cannot make a DTLS certificate".into()))?;
        *cert = Some(c.clone());
        Ok(c)
    }

    fn send(&self, routed: Routed) -> Result<(), WebRtcError> {
        let out = lock(&self.out).clone().ok_or(SignalingError::NotConnected)?;
        out.try_send(wire::encode_client(&ClientMessage::Routed(routed))).map_err(|_| SignalingError::NotConnected)?;
        Ok(())
    }

    /// Starts a negotiation and records it as the latest one with `remote`.
    fn start(self: &Arc<Self>, role: Role, remote: PeerId, connection_id: String) -> Result<Pending, WebRtcError> {
        let keypair = self.keypair.clone().ok_or(SignalingError::NoIdentityKey)?;
        let certificate = self.certificate()?;
        let inbound = matches!(role, Role::Answerer { .. });
        let (tx, inbox) = mpsc::channel(SESSION_QUEUE);
        lock(&self.sessions).insert(connection_id.clone(), remote, tx)?;
        let weak = Arc::downgrade(self);
        let cid = connection_id.clone();
        let signal = Arc::new(move |payload: Payload| {
            let inner = weak.upgrade().ok_or(WebRtcError::Closed)?;
            inner.send(Routed { from: None, to: remote, connection_id: cid.clone(), payload })
        });
        let n = Negotiation {
            keypair,
            certificate,
            config: self.config.clone(),
            remote,
            connection_id: connection_id.clone(),
            signal,
            inbox,
        };
        let this = self.clone();
        let task = tokio::spawn(async move {
            let result = negotiate(role, n).await.map(Arc::new);
            lock(&this.sessions).remove(&connection_id);
            match &result {
                Ok(c) if inbound => {
                    if this.incoming_tx.try_send(c.clone()).is_err() {
                        tracing::debug!(peer = %remote, "incoming WebRTC connection queue full");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(peer = %remote, "WebRTC negotiation failed: {e}"),
            }
            result
        });
        let pending: Pending = async move { task.await.unwrap_or(Err(WebRtcError::Closed)) }.boxed().shared();
        lock(&self.results).insert(remote, pending.clone());
        self.results_changed.notify_waiters();
        Ok(pending)
    }

    fn on_message(self: &Arc<Self>, msg: ServerMessage) {
        let route = lock(&self.sessions).route(msg, self.config.accept_incoming);
        match route {
            Route::Deliver(tx, inbox) => {
                let _ = tx.try_send(inbox);
            }
            Route::Answer { from, connection_id, offer } => {
                if let Err(e) = self.start(Role::Answerer { offer }, from, connection_id.clone()) {
                    let _ = self.send(declined(from, connection_id, &e));
                }
            }
            Route::Ignore => {}
        }
    }
}

/// Keeps the registration alive: connect, register, pump; after a disconnect, retry with backoff.
async fn run(inner: Arc<Inner>, url: String, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        match session(&inner, &url, &stop).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::debug!(%url, "signaling connection failed: {e}");
                inner.state.send_replace(LinkState::Failed(e));
            }
        }
        *lock(&inner.out) = None;
        if stop.is_cancelled() {
            break;
        }
        if *inner.state.borrow() == LinkState::Registered {
            inner.state.send_replace(LinkState::Connecting);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(ws: &mut Ws) -> Result<ServerMessage, SignalingError> {
    loop {
        match ws.next().await {
            Some(Ok(tungstenite::Message::Text(t))) => {
                return wire::decode_server(t.as_str()).map_err(|e| SignalingError::Protocol(e.to_string()));
            }
            Some(Ok(tungstenite::Message::Close(_))) | None => {
                return Err(SignalingError::Connect("closed by the server".into()));
            }
            Some(Err(e)) => return Err(SignalingError::Connect(e.to_string())),
            Some(Ok(_)) => {}
        }
    }
}

/// One WebSocket session; `Ok` if it got registered before it ended.
async fn session(inner: &Arc<Inner>, url: &str, stop: &CancellationToken) -> Result<(), SignalingError> {
    let key = inner.keypair.as_ref().ok_or(SignalingError::NoIdentityKey)?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_SIGNALING_MESSAGE))
        .max_frame_size(Some(MAX_SIGNALING_MESSAGE));
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    let (mut ws, _) = tokio::time::timeout(REGISTER_TIMEOUT, connect)
        .await
        .map_err(|_| SignalingError::Timeout)?
        .map_err(|e| SignalingError::Connect(e.to_string()))?;
    let refused = |code, message| SignalingError::Refused { code, message };
    let nonce = match next_message(&mut ws).await? {
        ServerMessage::Challenge { nonce, .. } => nonce,
        ServerMessage::Error { code, message, .. } => return Err(refused(code, message)),
        other => return Err(SignalingError::Protocol(format!("expected a challenge, got {other:?}"))),
    };
    let register = wire::sign_register(key, &nonce).map_err(|e| SignalingError::Protocol(e.to_string()))?;
    let frame = wire::encode_client(&ClientMessage::Register(register));
    ws.send(tungstenite::Message::Text(frame.into())).await.map_err(|e| SignalingError::Connect(e.to_string()))?;
    match next_message(&mut ws).await? {
        ServerMessage::Registered { peer_id } if peer_id == inner.peer_id => {}
        ServerMessage::Error { code, message, .. } => return Err(refused(code, message)),
        other => return Err(SignalingError::Protocol(format!("expected registered, got {other:?}"))),
    }
    let (out_tx, mut out_rx) = mpsc::channel::<String>(OUTBOUND_QUEUE);
    *lock(&inner.out) = Some(out_tx);
    inner.state.send_replace(LinkState::Registered);
    tracing::debug!(%url, peer = %inner.peer_id, "registered with the signaling server");
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = ws.close(None).await;
                break;
            }
            out = out_rx.recv() => match out {
                Some(text) => {
                    if ws.send(tungstenite::Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            msg = ws.next() => match msg {
                Some(Ok(tungstenite::Message::Text(t))) => match wire::decode_server(t.as_str()) {
                    Ok(m) => inner.on_message(m),
                    Err(e) => tracing::debug!("undecodable signaling frame: {e}"),
                },
                Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    Ok(())
}
