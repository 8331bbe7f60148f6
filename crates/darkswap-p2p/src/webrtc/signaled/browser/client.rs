//! [`WebRtcSignalingClient`] in the browser: the signaling protocol over the browser's
//! `WebSocket`, registration with the identity key, reconnection with backoff, and negotiations
//! on `RTCPeerConnection`. Same API and behaviour as the native client.

use super::{
    negotiate::{negotiate, Negotiation},
    WebRtcConnection,
};
use crate::webrtc::{
    signaled::{
        routing::{
            declined, Inbox, LinkState, Outcome, Results, Role, Route, Sessions, MAX_BACKOFF, REGISTER_TIMEOUT,
            SESSION_QUEUE,
        },
        Offer, SignalingIdentity, WebRtcConfig, WebRtcError,
    },
    signaling::{
        wire::{self, ClientMessage, Payload, Routed, ServerMessage, MAX_SIGNALING_MESSAGE},
        SignalingError,
    },
};
use futures::{
    channel::{mpsc, oneshot},
    future::{select, Either, LocalBoxFuture, Shared},
    FutureExt, StreamExt,
};
use libp2p::{identity::Keypair, PeerId};
use send_wrapper::SendWrapper;
use std::{
    cell::{Cell, RefCell},
    future::Future,
    rc::Rc,
    sync::Arc,
    time::Duration,
};
use wasm_bindgen::{prelude::*, JsCast};
use web_sys::{MessageEvent, WebSocket};

/// Frames from the server queued before the client reads them.
const INBOUND_QUEUE: usize = 256;
type Pending = Shared<LocalBoxFuture<'static, Outcome>>;

/// Wakes everyone waiting for a change.
#[derive(Default)]
struct Waiters(RefCell<Vec<oneshot::Sender<()>>>);

impl Waiters {
    fn wait(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut w = self.0.borrow_mut();
        w.retain(|t| !t.is_canceled());
        w.push(tx);
        rx
    }

    fn notify(&self) {
        for tx in self.0.borrow_mut().drain(..) {
            let _ = tx.send(());
        }
    }
}

struct Inner {
    peer_id: PeerId,
    keypair: Option<Keypair>,
    config: WebRtcConfig,
    ws: RefCell<Option<WebSocket>>,
    link: RefCell<Option<(String, Rc<Cell<bool>>)>>,
    state: RefCell<LinkState>,
    state_changed: Waiters,
    sessions: RefCell<Sessions<mpsc::Sender<Inbox>>>,
    results: RefCell<Results<LocalBoxFuture<'static, Outcome>>>,
    results_changed: Waiters,
    incoming_tx: mpsc::Sender<Arc<WebRtcConnection>>,
    incoming_rx: futures::lock::Mutex<mpsc::Receiver<Arc<WebRtcConnection>>>,
}

/// Leaves the server when the last handle goes.
struct StopOnDrop(Rc<Inner>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A client of the signaling server that negotiates WebRTC connections, in the browser. Clones
/// share one registration.
#[derive(Clone)]
pub struct WebRtcSignalingClient {
    inner: SendWrapper<Rc<Inner>>,
    _stop: SendWrapper<Rc<StopOnDrop>>,
}

impl std::fmt::Debug for WebRtcSignalingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcSignalingClient").field("peer_id", &self.inner.peer_id).finish()
    }
}

async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    match select(Box::pin(f), futures_timer::Delay::new(d)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

impl WebRtcSignalingClient {
    /// A client for `identity`: a [`Keypair`] to register and connect, or a bare [`PeerId`],
    /// which cannot prove itself to the server.
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
        let sessions = RefCell::new(Sessions::new(config.max_pending));
        let inner = Rc::new(Inner {
            peer_id,
            keypair,
            config,
            ws: RefCell::new(None),
            link: RefCell::new(None),
            state: RefCell::new(LinkState::Idle),
            state_changed: Waiters::default(),
            sessions,
            results: RefCell::new(Results::default()),
            results_changed: Waiters::default(),
            incoming_tx,
            incoming_rx: futures::lock::Mutex::new(incoming_rx),
        });
        Self { _stop: SendWrapper::new(Rc::new(StopOnDrop(inner.clone()))), inner: SendWrapper::new(inner) }
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

    /// Connects to `url` (`ws://host:port/signaling`) and registers; resolves once registered.
    /// The client then stays registered: when the server goes away it reconnects with backoff.
    pub fn connect(&self, url: &str) -> impl Future<Output = Result<(), SignalingError>> + Send + 'static {
        let inner = Rc::clone(&self.inner);
        let url = url.to_owned();
        SendWrapper::new(async move {
            if inner.keypair.is_none() {
                return Err(SignalingError::NoIdentityKey);
            }
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(SignalingError::InvalidUrl(url));
            }
            let same = inner.link.borrow().as_ref().is_some_and(|(u, _)| *u == url);
            if !same {
                inner.leave();
                let stop = Rc::new(Cell::new(false));
                *inner.link.borrow_mut() = Some((url.clone(), stop.clone()));
                inner.set_state(LinkState::Connecting);
                wasm_bindgen_futures::spawn_local(run(inner.clone(), url, stop));
            }
            let settled = async {
                loop {
                    let changed = inner.state_changed.wait();
                    match &*inner.state.borrow() {
                        LinkState::Registered => return Ok(()),
                        LinkState::Failed(e) => return Err(e.clone()),
                        LinkState::Idle => return Err(SignalingError::NotConnected),
                        LinkState::Connecting => {}
                    }
                    let _ = changed.await;
                }
            };
            timeout(REGISTER_TIMEOUT, settled).await.unwrap_or(Err(SignalingError::Timeout))
        })
    }

    /// Whether the client is registered with a server right now.
    pub fn is_registered(&self) -> bool {
        *self.inner.state.borrow() == LinkState::Registered
    }

    /// Waits until the client is registered (again), up to `limit`.
    pub fn wait_registered(
        &self,
        limit: Duration,
    ) -> impl Future<Output = Result<(), SignalingError>> + Send + 'static {
        let inner = Rc::clone(&self.inner);
        SendWrapper::new(async move {
            let registered = async {
                loop {
                    let changed = inner.state_changed.wait();
                    if *inner.state.borrow() == LinkState::Registered {
                        return;
                    }
                    let _ = changed.await;
                }
            };
            timeout(limit, registered).await.ok_or(SignalingError::Timeout)
        })
    }

    /// Leaves the server; established WebRTC connections stay up.
    pub fn disconnect(&self) {
        self.inner.leave();
    }

    /// Starts a connection to `peer`: sends an SDP offer through the server and resolves to it.
    /// The negotiation goes on in the background; [`wait_for_connection`](Self::wait_for_connection)
    /// gives its outcome.
    pub fn create_offer(&self, peer: &PeerId) -> impl Future<Output = Result<Offer, WebRtcError>> + Send + 'static {
        let inner = Rc::clone(&self.inner);
        let peer = *peer;
        SendWrapper::new(async move { offer(&inner, peer).await.map(|(offer, _)| offer) })
    }

    /// The connection to `peer` started by [`create_offer`](Self::create_offer) or by `peer`'s
    /// offer, once the identity handshake has proven it; waits up to the connect timeout for one
    /// to start.
    pub fn wait_for_connection(
        &self,
        peer: &PeerId,
    ) -> impl Future<Output = Result<Arc<WebRtcConnection>, WebRtcError>> + Send + 'static {
        let inner = Rc::clone(&self.inner);
        let peer = *peer;
        SendWrapper::new(async move { inner.wait_for_connection(peer).await })
    }

    /// Offers and waits: a proven connection to `peer`.
    pub fn connect_to_peer(
        &self,
        peer: &PeerId,
    ) -> impl Future<Output = Result<Arc<WebRtcConnection>, WebRtcError>> + Send + 'static {
        let inner = Rc::clone(&self.inner);
        let peer = *peer;
        // This offer's own outcome: another negotiation with the same peer (a second dial, or
        // the peer's own offer) may have started meanwhile, and its connection is someone else's.
        SendWrapper::new(async move { offer(&inner, peer).await?.1.await })
    }

    /// The next connection another peer started (answered automatically when
    /// [`WebRtcConfig::accept_incoming`] is on); `None` once the client is gone.
    pub fn next_connection(&self) -> impl Future<Output = Option<Arc<WebRtcConnection>>> + Send + 'static {
        let inner = Rc::clone(&self.inner);
        SendWrapper::new(async move { inner.incoming_rx.lock().await.next().await })
    }
}

/// Sends an offer to `peer`; the offer, and the outcome of that negotiation alone.
async fn offer(inner: &Rc<Inner>, peer: PeerId) -> Result<(Offer, Pending), WebRtcError> {
    let connection_id = hex::encode(rand::random::<[u8; 8]>());
    let (tx, rx) = oneshot::channel();
    let pending = inner.start(Role::Offerer { offer_sdp: tx }, peer, connection_id.clone())?;
    match rx.await {
        Ok(sdp) => Ok((Offer { connection_id, sdp }, pending)),
        Err(_) => Err(pending.await.err().unwrap_or(WebRtcError::Closed)),
    }
}

impl Inner {
    fn set_state(&self, s: LinkState) {
        *self.state.borrow_mut() = s;
        self.state_changed.notify();
    }

    /// Stops the reconnect loop and closes the socket.
    fn leave(&self) {
        if let Some((_, stop)) = self.link.borrow_mut().take() {
            stop.set(true);
        }
        if let Some(ws) = self.ws.borrow_mut().take() {
            let _ = ws.close();
        }
        self.set_state(LinkState::Idle);
    }

    fn send(&self, routed: Routed) -> Result<(), WebRtcError> {
        let ws = self.ws.borrow().clone().ok_or(SignalingError::NotConnected)?;
        ws.send_with_str(&wire::encode_client(&ClientMessage::Routed(routed)))
            .map_err(|_| WebRtcError::Signaling(SignalingError::NotConnected))
    }

    async fn wait_for_connection(self: &Rc<Self>, peer: PeerId) -> Result<Arc<WebRtcConnection>, WebRtcError> {
        let deadline = web_time::Instant::now() + self.config.connect_timeout;
        loop {
            let changed = self.results_changed.wait();
            let usable = self.results.borrow().usable(&peer);
            if let Some(p) = usable {
                return p.await;
            }
            let left = deadline.saturating_duration_since(web_time::Instant::now());
            if timeout(left, changed).await.is_none() {
                return Err(WebRtcError::Timeout("waiting for a connection"));
            }
        }
    }

    /// Starts a negotiation and records it as the latest one with `remote`.
    fn start(self: &Rc<Self>, role: Role, remote: PeerId, connection_id: String) -> Result<Pending, WebRtcError> {
        let keypair = self.keypair.clone().ok_or(SignalingError::NoIdentityKey)?;
        let inbound = matches!(role, Role::Answerer { .. });
        let (tx, inbox) = mpsc::channel(SESSION_QUEUE);
        self.sessions.borrow_mut().insert(connection_id.clone(), remote, tx)?;
        let weak = Rc::downgrade(self);
        let cid = connection_id.clone();
        let signal = Rc::new(move |payload: Payload| {
            let inner = weak.upgrade().ok_or(WebRtcError::Closed)?;
            inner.send(Routed { from: None, to: remote, connection_id: cid.clone(), payload })
        });
        let n = Negotiation {
            keypair,
            config: self.config.clone(),
            remote,
            connection_id: connection_id.clone(),
            signal,
            inbox,
        };
        let (done_tx, done_rx) = oneshot::channel();
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = negotiate(role, n).await.map(Arc::new);
            this.sessions.borrow_mut().remove(&connection_id);
            match &result {
                Ok(c) if inbound => {
                    if this.incoming_tx.clone().try_send(c.clone()).is_err() {
                        tracing::debug!(peer = %remote, "incoming WebRTC connection queue full");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(peer = %remote, "WebRTC negotiation failed: {e}"),
            }
            let _ = done_tx.send(result);
        });
        let pending: Pending = done_rx.map(|r| r.unwrap_or(Err(WebRtcError::Closed))).boxed_local().shared();
        self.results.borrow_mut().insert(remote, pending.clone());
        self.results_changed.notify();
        Ok(pending)
    }

    fn on_message(self: &Rc<Self>, msg: ServerMessage) {
        let route = self.sessions.borrow().route(msg, self.config.accept_incoming);
        match route {
            Route::Deliver(mut tx, inbox) => {
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
async fn run(inner: Rc<Inner>, url: String, stop: Rc<Cell<bool>>) {
    let mut backoff = Duration::from_millis(100);
    while !stop.get() {
        match session(&inner, &url, &stop).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::debug!(%url, "signaling connection failed: {e}");
                if !stop.get() {
                    inner.set_state(LinkState::Failed(e));
                }
            }
        }
        *inner.ws.borrow_mut() = None;
        if stop.get() {
            break;
        }
        if *inner.state.borrow() == LinkState::Registered {
            inner.set_state(LinkState::Connecting);
        }
        futures_timer::Delay::new(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum WsEvent {
    Open,
    Text(String),
    Closed,
}

/// The socket with its handlers; both go when the session ends.
struct Socket {
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}

fn open_socket(url: &str) -> Result<(Socket, mpsc::Receiver<WsEvent>), SignalingError> {
    let ws = WebSocket::new(url).map_err(|e| SignalingError::Connect(format!("{e:?}")))?;
    let (tx, rx) = mpsc::channel::<WsEvent>(INBOUND_QUEUE);
    let on = |f: Box<dyn FnMut(JsValue)>| Closure::wrap(f);
    let mut t = tx.clone();
    let onopen = on(Box::new(move |_| {
        let _ = t.try_send(WsEvent::Open);
    }));
    let mut t = tx.clone();
    let flood = ws.clone();
    let onmessage = on(Box::new(move |ev: JsValue| {
        let Some(text) = ev.dyn_ref::<MessageEvent>().and_then(|m| m.data().as_string()) else { return };
        if text.len() > MAX_SIGNALING_MESSAGE {
            return;
        }
        // A server that floods faster than the client reads is dropped (the reconnect starts over).
        if t.try_send(WsEvent::Text(text)).is_err() {
            let _ = flood.close();
        }
    }));
    let mut t = tx;
    let onclose = on(Box::new(move |_| {
        let _ = t.try_send(WsEvent::Closed);
    }));
    ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
    ws.set_onerror(Some(onclose.as_ref().unchecked_ref()));
    Ok((Socket { ws, _handlers: vec![onopen, onmessage, onclose] }, rx))
}

async fn next_message(rx: &mut mpsc::Receiver<WsEvent>) -> Result<ServerMessage, SignalingError> {
    loop {
        match rx.next().await {
            Some(WsEvent::Text(t)) => {
                return wire::decode_server(&t).map_err(|e| SignalingError::Protocol(e.to_string()));
            }
            Some(WsEvent::Closed) | None => return Err(SignalingError::Connect("closed by the server".into())),
            Some(WsEvent::Open) => {}
        }
    }
}

/// One WebSocket session; `Ok` if it got registered before it ended.
async fn session(inner: &Rc<Inner>, url: &str, stop: &Cell<bool>) -> Result<(), SignalingError> {
    let key = inner.keypair.as_ref().ok_or(SignalingError::NoIdentityKey)?;
    let (socket, mut rx) = open_socket(url)?;
    let refused = |code, message| SignalingError::Refused { code, message };
    let register = async {
        let nonce = match next_message(&mut rx).await? {
            ServerMessage::Challenge { nonce, .. } => nonce,
            ServerMessage::Error { code, message, .. } => return Err(refused(code, message)),
            other => return Err(SignalingError::Protocol(format!("expected a challenge, got {other:?}"))),
        };
        let register = wire::sign_register(key, &nonce).map_err(|e| SignalingError::Protocol(e.to_string()))?;
        socket
            .ws
            .send_with_str(&wire::encode_client(&ClientMessage::Register(register)))
            .map_err(|e| SignalingError::Connect(format!("{e:?}")))?;
        match next_message(&mut rx).await? {
            ServerMessage::Registered { peer_id } if peer_id == inner.peer_id => Ok(()),
            ServerMessage::Error { code, message, .. } => Err(refused(code, message)),
            other => Err(SignalingError::Protocol(format!("expected registered, got {other:?}"))),
        }
    };
    timeout(REGISTER_TIMEOUT, register).await.ok_or(SignalingError::Timeout)??;
    if stop.get() {
        return Ok(()); // left while registering
    }
    *inner.ws.borrow_mut() = Some(socket.ws.clone());
    inner.set_state(LinkState::Registered);
    tracing::debug!(%url, peer = %inner.peer_id, "registered with the signaling server");
    while let Some(ev) = rx.next().await {
        match ev {
            WsEvent::Text(t) => match wire::decode_server(&t) {
                Ok(m) => inner.on_message(m),
                Err(e) => tracing::debug!("undecodable signaling frame: {e}"),
            },
            WsEvent::Closed => break,
            WsEvent::Open => {}
        }
    }
    Ok(())
}
