//! One WebRTC negotiation on the browser's `RTCPeerConnection`, step for step the native one:
//! offer/answer and trickled ICE through the signaling client, the data channels (opened in-band
//! by the offerer: `"noise"`, `"libp2p"`, then the configured names), then the Noise identity
//! handshake whose prologue binds both DTLS fingerprints (read from the two SDPs).

use super::{
    channel::{Channel, DataChannel, LibP2pStream},
    WebRtcConnection,
};
use crate::webrtc::{
    signaled::routing::{Inbox, Role, MAX_CANDIDATES},
    signaling::{IceCandidate, Payload},
    WebRtcConfig, WebRtcError,
};
use futures::{
    channel::{mpsc, oneshot},
    future::{select, Either},
    FutureExt, StreamExt,
};
use libp2p::{identity::Keypair, PeerId};
use libp2p_webrtc_utils::{noise, Fingerprint};
use send_wrapper::SendWrapper;
use std::{cell::RefCell, collections::HashMap, rc::Rc, sync::Mutex};
use wasm_bindgen::{prelude::*, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcDataChannelEvent, RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};
use web_time::Instant;

/// Longest wait for local candidates before the description goes out anyway.
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Sends a payload to the remote peer about this connection.
pub(crate) type Signal = Rc<dyn Fn(Payload) -> Result<(), WebRtcError>>;

/// Everything one negotiation needs.
pub(crate) struct Negotiation {
    pub keypair: Keypair,
    pub config: WebRtcConfig,
    pub remote: PeerId,
    pub connection_id: String,
    pub signal: Signal,
    pub inbox: mpsc::Receiver<Inbox>,
}

fn rtc(e: JsValue) -> WebRtcError {
    WebRtcError::Rtc(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// The peer connection with the handlers it needs for the whole negotiation.
struct Peer {
    pc: RtcPeerConnection,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Peer {
    fn clear(&self) {
        self.pc.set_onicecandidate(None);
        self.pc.set_ondatachannel(None);
        self.pc.set_onconnectionstatechange(None);
    }
}

/// Runs a negotiation to a proven connection, or fails within `config.connect_timeout`.
pub(crate) async fn negotiate(role: Role, mut n: Negotiation) -> Result<WebRtcConnection, WebRtcError> {
    let started = Instant::now();
    let config = RtcConfiguration::new();
    let servers = js_sys::Array::new();
    for s in &n.config.ice_servers {
        let server = web_sys::RtcIceServer::new();
        let urls: js_sys::Array = s.urls.iter().map(|u| JsValue::from_str(u)).collect();
        server.set_urls(&urls);
        if !s.username.is_empty() {
            server.set_username(&s.username);
            server.set_credential(&s.credential);
        }
        servers.push(&server);
    }
    config.set_ice_servers(&servers);
    if n.config.relay_only {
        config.set_ice_transport_policy(web_sys::RtcIceTransportPolicy::Relay);
    }
    let pc = RtcPeerConnection::new_with_configuration(&config).map_err(rtc)?;
    let mut peer = Peer { pc, handlers: Vec::new() };
    let outbound = matches!(role, Role::Offerer { .. });
    let timeout = futures_timer::Delay::new(n.config.connect_timeout);
    let outcome = match select(Box::pin(establish(role, &mut n, &mut peer)), timeout).await {
        Either::Left((r, _)) => Some(r),
        Either::Right(_) => None,
    };
    let failure = match outcome {
        Some(Ok((channels, proven))) => {
            peer.clear();
            if proven == n.remote {
                return Ok(connection(n, peer.pc, channels, outbound, started));
            }
            WebRtcError::PeerMismatch { expected: Box::new(n.remote), actual: Box::new(proven) }
        }
        Some(Err(e)) => e,
        None => WebRtcError::Timeout("negotiating the WebRTC connection"),
    };
    peer.clear();
    let _ = (n.signal)(Payload::Bye { reason: Some(failure.to_string()) });
    peer.pc.close();
    Err(failure)
}

fn connection(
    n: Negotiation,
    pc: RtcPeerConnection,
    mut channels: Vec<Rc<Channel>>,
    outbound: bool,
    started: Instant,
) -> WebRtcConnection {
    let named = channels.split_off(2);
    let stream = LibP2pStream::new(channels[1].clone());
    let data_channels: HashMap<String, DataChannel> =
        named.into_iter().map(|c| (c.label(), DataChannel::new(c))).collect();
    WebRtcConnection {
        data_channels,
        remote_peer_id: n.remote,
        connection_id: n.connection_id,
        outbound,
        pc: SendWrapper::new(pc),
        stream: Mutex::new(Some(stream)),
        established_in: started.elapsed(),
    }
}

/// The `a=fingerprint:sha-256 AB:CD:…` of an SDP.
fn sdp_fingerprint(sdp: &str) -> Option<Fingerprint> {
    let line = sdp.lines().find_map(|l| l.trim().strip_prefix("a=fingerprint:"))?;
    let (algorithm, value) = line.split_once(' ')?;
    if !algorithm.eq_ignore_ascii_case("sha-256") {
        return None;
    }
    let bytes = hex::decode(value.trim().replace(':', "")).ok()?;
    Some(Fingerprint::raw(bytes.try_into().ok()?))
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let d = RtcSessionDescriptionInit::new(kind);
    d.set_sdp(sdp);
    d
}

async fn add_candidate(pc: &RtcPeerConnection, c: IceCandidate) {
    let init = RtcIceCandidateInit::new(&c.candidate);
    init.set_sdp_mid(c.sdp_mid.as_deref());
    init.set_sdp_m_line_index(c.sdp_mline_index);
    if let Some(u) = c.username_fragment.as_deref() {
        // Not in web-sys' binding; a plain property of RTCIceCandidateInit.
        let _ = js_sys::Reflect::set(&init, &"usernameFragment".into(), &u.into());
    }
    if let Err(e) = JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await {
        tracing::debug!("ICE candidate refused: {e:?}");
    }
}

/// Offer/answer, ICE and the data channels; returns the opened channels (in label order) and the
/// peer id the identity handshake proved.
async fn establish(
    role: Role,
    n: &mut Negotiation,
    peer: &mut Peer,
) -> Result<(Vec<Rc<Channel>>, PeerId), WebRtcError> {
    let pc = peer.pc.clone();
    let offerer = matches!(role, Role::Offerer { .. });
    let labels: Vec<String> =
        ["noise".to_owned(), "libp2p".to_owned()].into_iter().chain(n.config.data_channels.iter().cloned()).collect();
    let (chan_tx, mut chan_rx) = mpsc::channel::<Rc<Channel>>(labels.len());
    let mut offered = Vec::new();
    if offerer {
        for label in &labels {
            offered.push(Channel::new(pc.create_data_channel(label)));
        }
    } else {
        let mut tx = chan_tx.clone();
        peer.handlers.push(Closure::wrap(Box::new(move |ev: JsValue| {
            if let Some(ev) = ev.dyn_ref::<RtcDataChannelEvent>() {
                // Wrapped at once: its handlers must be in place before the first message.
                let _ = tx.try_send(Channel::new(ev.channel()));
            }
        })));
        pc.set_ondatachannel(Some(peer.handlers.last().unwrap_or_else(|| unreachable!()).as_ref().unchecked_ref()));
    }
    drop(chan_tx);

    // Candidates found before the description goes out wait here (they are in it anyway); after
    // that they trickle. `None` = the description is out.
    let held: Rc<RefCell<Option<Vec<IceCandidate>>>> = Rc::new(RefCell::new(Some(Vec::new())));
    let (gathered_tx, gathered) = oneshot::channel::<()>();
    let gathered_tx = RefCell::new(Some(gathered_tx));
    let (signal, hold) = (n.signal.clone(), held.clone());
    peer.handlers.push(Closure::wrap(Box::new(move |ev: JsValue| {
        let Some(ev) = ev.dyn_ref::<RtcPeerConnectionIceEvent>() else { return };
        let Some(c) = ev.candidate() else {
            if let Some(tx) = gathered_tx.borrow_mut().take() {
                let _ = tx.send(());
            }
            return;
        };
        if c.candidate().is_empty() {
            return;
        }
        let candidate = IceCandidate {
            candidate: c.candidate(),
            sdp_mid: c.sdp_mid(),
            sdp_mline_index: c.sdp_m_line_index(),
            username_fragment: js_sys::Reflect::get(&c, &"usernameFragment".into()).ok().and_then(|u| u.as_string()),
        };
        let mut held = hold.borrow_mut();
        match held.as_mut() {
            Some(buf) if buf.len() < MAX_CANDIDATES => buf.push(candidate),
            Some(_) => {}
            None => {
                let _ = signal(Payload::IceCandidate { candidate });
            }
        }
    })));
    pc.set_onicecandidate(Some(peer.handlers.last().unwrap_or_else(|| unreachable!()).as_ref().unchecked_ref()));
    let (mut failed_tx, mut failed) = mpsc::channel::<()>(1);
    let state_pc = pc.clone();
    peer.handlers.push(Closure::wrap(Box::new(move |_| {
        if matches!(state_pc.connection_state(), RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed) {
            let _ = failed_tx.try_send(());
        }
    })));
    pc.set_onconnectionstatechange(Some(
        peer.handlers.last().unwrap_or_else(|| unreachable!()).as_ref().unchecked_ref(),
    ));

    // Half trickle, as natively: the description goes out once host candidates are gathered or
    // after GATHER_WAIT, whichever is first; later candidates trickle.
    let mut remote_set = false;
    let local_sdp = |d: JsValue| js_sys::Reflect::get(&d, &"sdp".into()).ok().and_then(|s| s.as_string());
    match role {
        Role::Offerer { offer_sdp } => {
            let offer = JsFuture::from(pc.create_offer()).await.map_err(rtc)?;
            let sdp = local_sdp(offer).ok_or_else(|| WebRtcError::Rtc("offer without SDP".into()))?;
            JsFuture::from(pc.set_local_description(&description(RtcSdpType::Offer, &sdp))).await.map_err(rtc)?;
            let _ = select(gathered, futures_timer::Delay::new(GATHER_WAIT)).await;
            let sdp = send_description(&pc, n, &held, true)?;
            let _ = offer_sdp.send(sdp);
        }
        Role::Answerer { offer } => {
            JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Offer, &offer))).await.map_err(rtc)?;
            remote_set = true;
            let answer = JsFuture::from(pc.create_answer()).await.map_err(rtc)?;
            let sdp = local_sdp(answer).ok_or_else(|| WebRtcError::Rtc("answer without SDP".into()))?;
            JsFuture::from(pc.set_local_description(&description(RtcSdpType::Answer, &sdp))).await.map_err(rtc)?;
            let _ = select(gathered, futures_timer::Delay::new(GATHER_WAIT)).await;
            send_description(&pc, n, &held, false)?;
        }
    }

    let mut early: Vec<IceCandidate> = Vec::new();
    let open_all = async {
        let channels = if offerer {
            offered
        } else {
            let mut by_label: HashMap<String, Rc<Channel>> = HashMap::new();
            while by_label.len() < labels.len() {
                let c = chan_rx.next().await.ok_or(WebRtcError::Closed)?;
                if labels.contains(&c.label()) {
                    by_label.insert(c.label(), c);
                }
            }
            labels.iter().filter_map(|l| by_label.remove(l)).collect()
        };
        for c in &channels {
            c.opened().await?;
        }
        Ok::<_, WebRtcError>(channels)
    }
    .fuse();
    futures::pin_mut!(open_all);
    let channels = loop {
        futures::select! {
            opened = open_all => break opened?,
            _ = failed.next() => return Err(WebRtcError::Rtc("peer connection failed".into())),
            msg = n.inbox.next() => match msg {
                None => return Err(WebRtcError::Closed),
                Some(Inbox::Refused(code, message)) => return Err(WebRtcError::Refused { code, message }),
                Some(Inbox::Payload(Payload::Bye { reason })) => return Err(WebRtcError::Bye(reason.unwrap_or_default())),
                Some(Inbox::Payload(Payload::Answer { sdp })) if !remote_set => {
                    JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Answer, &sdp))).await.map_err(rtc)?;
                    remote_set = true;
                    for c in early.drain(..) {
                        add_candidate(&pc, c).await;
                    }
                }
                Some(Inbox::Payload(Payload::IceCandidate { candidate })) => {
                    if remote_set {
                        add_candidate(&pc, candidate).await;
                    } else if early.len() < MAX_CANDIDATES {
                        early.push(candidate);
                    }
                }
                Some(Inbox::Payload(_)) => {} // a repeated offer or answer changes nothing
            }
        }
    };

    let sdp_of = |d: Option<web_sys::RtcSessionDescription>| d.map(|d| d.sdp()).unwrap_or_default();
    let local = sdp_fingerprint(&sdp_of(pc.local_description()))
        .ok_or_else(|| WebRtcError::Handshake("no sha-256 fingerprint in the local SDP".into()))?;
    let remote = sdp_fingerprint(&sdp_of(pc.remote_description()))
        .ok_or_else(|| WebRtcError::Handshake("no sha-256 fingerprint in the remote SDP".into()))?;
    let handshake = LibP2pStream::new(channels[0].clone());
    // libp2p's construction: the offerer is the "client", the answerer the "server".
    let proven = if offerer {
        noise::outbound(n.keypair.clone(), handshake, remote, local).await
    } else {
        noise::inbound(n.keypair.clone(), handshake, remote, local).await
    }
    .map_err(|e| WebRtcError::Handshake(e.to_string()))?;
    Ok((channels, proven))
}

/// Sends the local description with the candidates gathered so far, then whatever was held back.
fn send_description(
    pc: &RtcPeerConnection,
    n: &Negotiation,
    held: &RefCell<Option<Vec<IceCandidate>>>,
    offer: bool,
) -> Result<String, WebRtcError> {
    let sdp = pc.local_description().map(|d| d.sdp()).ok_or_else(|| WebRtcError::Rtc("no local description".into()))?;
    (n.signal)(if offer { Payload::Offer { sdp: sdp.clone() } } else { Payload::Answer { sdp: sdp.clone() } })?;
    for candidate in held.borrow_mut().take().unwrap_or_default() {
        (n.signal)(Payload::IceCandidate { candidate })?;
    }
    Ok(sdp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_from_sdp() {
        let sdp = "v=0\r\na=fingerprint:sha-256 A8:17:77:1E:02:7E:D1:2B:53:92:70:A6:8E:F9:02:CC:21:72:3A:92:5D:F4:97:5F:27:C4:5E:75:D4:F4:31:89\r\n";
        assert!(sdp_fingerprint(sdp).is_some());
        assert!(sdp_fingerprint("a=fingerprint:sha-1 AB:CD").is_none());
    }
}
