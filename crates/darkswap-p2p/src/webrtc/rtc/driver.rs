//! The I/O of one native WebRTC connection: a task that owns the str0m `Rtc` and the UDP
//! sockets of its local candidates, and follows str0m's contract (every input or write is
//! followed by draining `poll_output` down to the next timeout).
//!
//! Handles talk to it over bounded queues: writes on one queue (taken only while SCTP has room,
//! so a full send buffer holds writers back), control messages on another, and every open data
//! channel delivers into its own bounded queue. When a reader falls behind, the task stops
//! reading the sockets until that reader catches up, so nothing is dropped and memory stays
//! bounded; the peer's SCTP then holds its data back like TCP would.

use super::{
    channel_opening::{OpenPolicy, Opens},
    sockets::{Sockets, Unwrapped},
};
use crate::webrtc::WebRtcError;
use std::time::Instant;
use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};
use str0m::{
    change::{SdpAnswer, SdpPendingOffer},
    channel::{ChannelConfig, ChannelId},
    net::{Protocol, Receive},
    Candidate, Event, IceConnectionState, Input, Output, Rtc,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Messages a data channel holds for a reader that has not taken them yet.
pub(crate) const INBOUND_QUEUE: usize = 64;
/// Messages queued towards the connection's task, across its channels.
pub(crate) const WRITE_QUEUE: usize = 16;
/// Room for one read: a datagram, or a GRO batch of them (at most 64 KiB).
const RECV_BUF: usize = 64 * 1024;

/// How long the channel of a dropped stream stays open: the peer may not have read what was
/// sent last, and browsers' libp2p (libp2p-webrtc-websys) drops whatever it had not read when its
/// channel closes.
const LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Something for one channel, in order with what was queued for it before.
pub(crate) struct Outgoing {
    pub channel: ChannelId,
    pub op: Op,
}

/// What an [`Outgoing`] asks for.
pub(crate) enum Op {
    /// A message.
    Send(Vec<u8>),
    /// Close the channel now.
    Close,
    /// Close the channel after [`LINGER`].
    CloseLater,
}

/// What the negotiation (and later the channels) ask of the task.
pub(crate) enum Control {
    /// The remote answer to our pending offer.
    Answer(Box<(SdpPendingOffer, SdpAnswer)>),
    /// A trickled remote candidate.
    RemoteCandidate(Candidate),
    /// Both DTLS certificate fingerprints (local, remote), once DTLS is up.
    Fingerprints(oneshot::Sender<Option<([u8; 32], [u8; 32])>>),
    /// Opens a channel from this side; it is handed over on the sender once open (not as
    /// [`Progress::Open`]).
    OpenChannel(ChannelConfig, oneshot::Sender<(ChannelId, Inbound)>),
}

/// What the task reports while the connection comes up.
pub(crate) enum Progress {
    /// A data channel opened (by either side), with the queue its messages arrive on.
    Open(ChannelId, String, Inbound),
    /// The connection failed or closed.
    Failed(String),
}

/// A channel's receiving end, and whether the channel is still open for sending.
pub(crate) struct Inbound {
    pub rx: mpsc::Receiver<Vec<u8>>,
    /// Cleared when either side closes the channel.
    pub open: Arc<AtomicBool>,
}

/// The handles' side of a running task.
#[derive(Clone)]
pub(crate) struct Handle {
    pub writes: mpsc::Sender<Outgoing>,
    pub control: mpsc::Sender<Control>,
    pub alive: Arc<AtomicBool>,
    pub shutdown: CancellationToken,
}

impl Handle {
    /// Asks for something and waits for the answer.
    pub(crate) async fn fingerprints(&self) -> Result<([u8; 32], [u8; 32]), WebRtcError> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::Fingerprints(tx)).await.map_err(|_| WebRtcError::Closed)?;
        rx.await.map_err(|_| WebRtcError::Closed)?.ok_or_else(|| WebRtcError::Rtc("no DTLS fingerprints".into()))
    }
}

/// Starts the task for `rtc`, which already has its local candidates, on their sockets. Channels
/// the remote peer opens are reported as [`Progress::Open`] while fewer than `channels` wait to
/// be taken; beyond that, or once nobody takes them, they are refused. The channels this side
/// opens go out as `opens` allows.
pub(crate) fn spawn(rtc: Rtc, net: Sockets, channels: usize, opens: OpenPolicy) -> (Handle, mpsc::Receiver<Progress>) {
    let (writes_tx, writes) = mpsc::channel(WRITE_QUEUE);
    let (control_tx, control) = mpsc::channel(16);
    // One report per expected channel, and room for the failure.
    let (progress_tx, progress) = mpsc::channel(channels + 1);
    let handle = Handle {
        writes: writes_tx,
        control: control_tx,
        alive: Arc::new(AtomicBool::new(true)),
        shutdown: CancellationToken::new(),
    };
    let mut driver = Driver {
        rtc,
        net,
        writes,
        control,
        progress: progress_tx,
        inbound: HashMap::new(),
        awaiting: HashMap::new(),
        opens: Opens::new(opens),
        stalled: VecDeque::new(),
        lingering: VecDeque::new(),
        pending: None,
        closed: None,
    };
    let (alive, shutdown) = (handle.alive.clone(), handle.shutdown.clone());
    tokio::spawn(async move {
        let reason = driver.run(shutdown).await;
        tracing::debug!(%reason, "WebRTC connection ended");
        alive.store(false, Ordering::Release);
        driver.net.release_relays().await;
    });
    (handle, progress)
}

struct Driver {
    rtc: Rtc,
    net: Sockets,
    writes: mpsc::Receiver<Outgoing>,
    control: mpsc::Receiver<Control>,
    progress: mpsc::Sender<Progress>,
    inbound: HashMap<ChannelId, (mpsc::Sender<Vec<u8>>, Arc<AtomicBool>)>,
    /// Channels this side opened, waiting for the remote peer's acknowledgement.
    awaiting: HashMap<ChannelId, oneshot::Sender<(ChannelId, Inbound)>>,
    /// Channels asked for and not opened yet, and those the peer has not answered on.
    opens: Opens<oneshot::Sender<(ChannelId, Inbound)>, ChannelId>,
    /// Messages waiting for room in their channel's queue, in arrival order.
    stalled: VecDeque<(ChannelId, Vec<u8>)>,
    /// Channels to close once their time comes, earliest first.
    lingering: VecDeque<(Instant, ChannelId)>,
    /// A write SCTP had no room for yet.
    pending: Option<Outgoing>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
}

impl Driver {
    async fn run(&mut self, shutdown: CancellationToken) -> String {
        let mut buf = vec![0u8; RECV_BUF];
        let (mut writes_open, mut control_open, mut closing) = (true, true, false);
        // Made once and re-armed: the loop turns once per datagram, and a fresh timer or
        // cancellation waiter each turn would cost a registration and a removal every time.
        let cancelled = shutdown.cancelled();
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(cancelled, sleep);
        loop {
            let deadline = match self.drain().await {
                Ok(t) => t,
                Err(e) => return self.fail(format!("webrtc: {e}")),
            };
            let deadline = match self.net.service_relays().await {
                Some(wake) => deadline.min(wake),
                None => deadline,
            };
            if self.close_lingering() || (!self.opens.is_empty() && self.open_queued()) {
                continue;
            }
            let deadline = self.lingering.front().map_or(deadline, |(at, _)| deadline.min(*at));
            let deadline = self.opens.wake_at().map_or(deadline, |at| deadline.min(at));
            if let Some(reason) = self.closed.take() {
                return self.fail(reason);
            }
            if !self.rtc.is_alive() {
                return self.fail("closed".into());
            }
            if !writes_open && !control_open && !closing {
                // Nobody holds a channel or the connection any more.
                closing = true;
                let _ = self.rtc.close();
                continue;
            }
            if self.try_write() {
                continue;
            }
            let stalled_on = self.stalled.front().and_then(|(id, _)| self.inbound.get(id).map(|(tx, _)| tx.clone()));
            let deadline = tokio::time::Instant::from_std(deadline);
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            tokio::select! {
                biased;
                _ = &mut cancelled, if !closing => {
                    closing = true;
                    let _ = self.rtc.close();
                }
                permit = async { stalled_on.as_ref().expect("guarded").reserve().await }, if stalled_on.is_some() => {
                    let (id, data) = self.stalled.pop_front().expect("stalled is not empty");
                    match permit {
                        Ok(permit) => permit.send(data),
                        Err(_) => {
                            // The reader is gone; its channel's backlog goes with it.
                            self.inbound.remove(&id);
                            self.stalled.retain(|(c, _)| *c != id);
                        }
                    }
                }
                received = self.net.recv(&mut buf), if self.stalled.is_empty() => {
                    let Some((range, from, to)) = received else {
                        return self.fail("the listener's socket is closed".into());
                    };
                    let datagram = &buf[range];
                    match self.net.unwrap_relayed(from, to, datagram) {
                        Unwrapped::Direct => self.input(datagram, from, to),
                        Unwrapped::Relayed { peer, relayed, data } => self.input(&data, peer, relayed),
                        Unwrapped::Handled => {}
                    }
                }
                c = self.control.recv(), if control_open => match c {
                    Some(c) => self.on_control(c),
                    None => control_open = false,
                },
                w = self.writes.recv(), if writes_open && self.pending.is_none() => match w {
                    Some(w) => self.pending = Some(w),
                    None => writes_open = false,
                },
                _ = &mut sleep => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        return self.fail(format!("webrtc: {e}"));
                    }
                }
            }
        }
    }

    /// Feeds one datagram to str0m.
    fn input(&mut self, data: &[u8], source: SocketAddr, destination: SocketAddr) {
        if let Ok(contents) = data.try_into() {
            let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination, contents });
            if let Err(e) = self.rtc.handle_input(input) {
                tracing::debug!("WebRTC input refused: {e}");
            }
        }
    }

    fn fail(&mut self, reason: String) -> String {
        let _ = self.progress.try_send(Progress::Failed(reason.clone()));
        reason
    }

    /// Closes the lingering channels whose time has come; true if it closed any (drain again).
    fn close_lingering(&mut self) -> bool {
        // The loop turns once per datagram; most turns have nothing lingering to look at.
        if self.lingering.is_empty() {
            return false;
        }
        let now = Instant::now();
        let mut closed = false;
        while let Some(&(at, id)) = self.lingering.front() {
            if at > now {
                break;
            }
            self.lingering.pop_front();
            self.close_channel(id);
            closed = true;
        }
        closed
    }

    fn close_channel(&mut self, id: ChannelId) {
        if let Some((_, open)) = self.inbound.get(&id) {
            open.store(false, Ordering::Release);
        }
        self.rtc.direct_api().close_data_channel(id);
    }

    /// Hands the pending write to SCTP if it has room; true if it did (drain again).
    fn try_write(&mut self) -> bool {
        let Some(w) = self.pending.take() else { return false };
        let data = match &w.op {
            Op::Send(data) => data.as_slice(),
            Op::Close => {
                self.close_channel(w.channel);
                return true;
            }
            Op::CloseLater => {
                self.lingering.push_back((Instant::now() + LINGER, w.channel));
                return true;
            }
        };
        let Some(mut channel) = self.rtc.channel(w.channel) else {
            // The channel is closed (or closing): the write has nowhere to go.
            return false;
        };
        match channel.write(true, data) {
            Ok(true) => true,
            Ok(false) => {
                self.pending = Some(w);
                false
            }
            Err(e) => {
                tracing::debug!("data channel write failed: {e}");
                false
            }
        }
    }

    /// Runs `poll_output` down to the next timeout, sending and dispatching on the way.
    async fn drain(&mut self) -> Result<Instant, str0m::RtcError> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.net.flush().await;
                    return Ok(t);
                }
                Ok(Output::Transmit(t)) => self.net.send(t).await,
                Ok(Output::Event(e)) => self.on_event(e),
                Err(e) => {
                    self.net.flush().await;
                    return Err(e);
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::ChannelOpen(id, label) => {
                let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
                let open = Arc::new(AtomicBool::new(true));
                let inbound = Inbound { rx, open: open.clone() };
                if let Some(opener) = self.awaiting.remove(&id) {
                    match opener.send((id, inbound)) {
                        Ok(()) => {
                            self.inbound.insert(id, (tx, open));
                        }
                        Err(_) => self.rtc.direct_api().close_data_channel(id),
                    }
                    return;
                }
                // The peer's side is up; opens held for it go out from the loop.
                self.opens.peer_opened();
                if self.progress.capacity() > 1 && self.progress.try_send(Progress::Open(id, label, inbound)).is_ok() {
                    self.inbound.insert(id, (tx, open));
                } else {
                    // Nobody will read it (an extra channel after set-up): refuse it.
                    self.rtc.direct_api().close_data_channel(id);
                }
            }
            Event::ChannelData(d) => {
                self.answered(d.id);
                if !self.stalled.is_empty() {
                    if self.inbound.contains_key(&d.id) {
                        self.stalled.push_back((d.id, d.data));
                    }
                    return;
                }
                let Some((tx, _)) = self.inbound.get(&d.id) else { return };
                match tx.try_send(d.data) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(data)) => {
                        tracing::debug!(channel = ?d.id, "a reader fell behind; the connection waits for it");
                        self.stalled.push_back((d.id, data));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        self.inbound.remove(&d.id);
                    }
                }
            }
            Event::ChannelClose(id) => {
                // An opener waiting on it learns of the refusal; readers see the end after the
                // messages already queued.
                self.awaiting.remove(&id);
                self.answered(id);
                if let Some((_, open)) = self.inbound.remove(&id) {
                    open.store(false, Ordering::Release);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.closed = Some("ICE disconnected".into());
            }
            Event::Closed => self.closed = Some("closed by the remote peer".into()),
            _ => {}
        }
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::Answer(b) => {
                let (pending, answer) = *b;
                if let Err(e) = self.rtc.sdp_api().accept_answer(pending, answer) {
                    self.closed = Some(format!("answer refused: {e}"));
                }
            }
            Control::RemoteCandidate(c) => self.rtc.add_remote_candidate(c),
            Control::Fingerprints(tx) => {
                let api = self.rtc.direct_api();
                let local = digest(api.local_dtls_fingerprint());
                let remote = api.remote_dtls_fingerprint().and_then(digest);
                let _ = tx.send(local.zip(remote));
            }
            Control::OpenChannel(config, opener) => {
                self.opens.push(config, opener, Instant::now());
                let _ = self.open_queued();
            }
        }
    }

    /// Opens the queued channels that may go now; true if it opened any (drain again).
    fn open_queued(&mut self) -> bool {
        let now = Instant::now();
        let mut opened = false;
        while let Some((config, opener)) = self.opens.pop_ready(now) {
            let in_band = config.negotiated.is_none();
            let id = self.rtc.direct_api().create_data_channel(config);
            self.awaiting.insert(id, opener);
            self.opens.opened(id, in_band, now);
            opened = true;
        }
        opened
    }

    /// The peer sent something on `id` (or closed it): it took the channel.
    fn answered(&mut self, id: ChannelId) {
        if self.opens.answered(id) {
            let _ = self.open_queued();
        }
    }
}

/// The SHA-256 digest in a DTLS fingerprint (the only hash WebRTC stacks use for it).
fn digest(f: &str0m::config::Fingerprint) -> Option<[u8; 32]> {
    if !f.hash_func.eq_ignore_ascii_case("sha-256") {
        return None;
    }
    f.bytes.as_slice().try_into().ok()
}
