//! One WebRTC negotiation on webrtc-rs: offer/answer and trickled ICE through the signaling
//! client, the data channels (opened in-band by the offerer), then the identity handshake bound to the DTLS
//! fingerprints. The signaling I/O is injected (`signal`, `inbox`) so the same steps serve the
//! dialing and the answering side.

use super::{
    session::{Inbox, Role, GATHER_WAIT, MAX_EARLY_CANDIDATES},
    DataChannel, WebRtcConfig, WebRtcConnection, WebRtcError, MAX_DATA_MESSAGE,
};
use crate::signaling::{IceCandidate, Payload};
use libp2p::{identity::Keypair, PeerId};
use libp2p_webrtc_utils::{noise, Fingerprint};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::TokioAsyncReadCompatExt;
use web_time::Instant;
use webrtc::{
    api::{setting_engine::SettingEngine, APIBuilder},
    data::data_channel::{DataChannel as Detached, PollDataChannel},
    data_channel::{data_channel_init::RTCDataChannelInit, RTCDataChannel},
    ice_transport::{ice_candidate::RTCIceCandidateInit, ice_server::RTCIceServer},
    peer_connection::{
        certificate::RTCCertificate, configuration::RTCConfiguration, peer_connection_state::RTCPeerConnectionState,
        sdp::session_description::RTCSessionDescription, RTCPeerConnection,
    },
};

/// Sends a payload to the remote peer about this connection.
pub(crate) type Signal = Arc<dyn Fn(Payload) -> Result<(), WebRtcError> + Send + Sync>;

/// Everything one negotiation needs.
pub(crate) struct Negotiation {
    pub keypair: Keypair,
    pub certificate: RTCCertificate,
    pub config: WebRtcConfig,
    pub remote: PeerId,
    pub connection_id: String,
    pub signal: Signal,
    pub inbox: mpsc::Receiver<Inbox>,
}

/// Runs a negotiation to a proven connection, or fails within `config.connect_timeout`.
pub(crate) async fn negotiate(role: Role, mut n: Negotiation) -> Result<WebRtcConnection, WebRtcError> {
    let started = Instant::now();
    let pc = Arc::new(new_peer_connection(&n).await?);
    let outbound = matches!(role, Role::Offerer { .. });
    let result = tokio::time::timeout(n.config.connect_timeout, establish(role, &mut n, &pc)).await;
    let failure = match result {
        Ok(Ok((channels, proven))) => {
            if proven == n.remote {
                return Ok(connection(n, pc, channels, outbound, started));
            }
            WebRtcError::PeerMismatch { expected: Box::new(n.remote), actual: Box::new(proven) }
        }
        Ok(Err(e)) => e,
        Err(_) => WebRtcError::Timeout("negotiating the WebRTC connection"),
    };
    let _ = (n.signal)(Payload::Bye { reason: Some(failure.to_string()) });
    let _ = pc.close().await;
    Err(failure)
}

fn connection(
    n: Negotiation,
    pc: Arc<RTCPeerConnection>,
    mut channels: Vec<Arc<Detached>>,
    outbound: bool,
    started: Instant,
) -> WebRtcConnection {
    let named = channels.split_off(2);
    let mut stream = PollDataChannel::new(channels[1].clone());
    stream.set_read_buf_capacity(MAX_DATA_MESSAGE);
    let data_channels: HashMap<String, DataChannel> = n
        .config
        .data_channels
        .iter()
        .zip(named)
        .map(|(label, dc)| (label.clone(), DataChannel::new(label.clone(), dc)))
        .collect();
    WebRtcConnection {
        data_channels,
        remote_peer_id: n.remote,
        connection_id: n.connection_id,
        outbound,
        peer_connection: pc,
        stream: Mutex::new(Some(stream.compat())),
        established_in: started.elapsed(),
    }
}

async fn new_peer_connection(n: &Negotiation) -> Result<RTCPeerConnection, WebRtcError> {
    super::install_crypto_provider();
    let mut se = SettingEngine::default();
    se.detach_data_channels();
    // Host candidates are known before checks start; a pair found by a check first is
    // peer-reflexive, which webrtc-rs would otherwise hold back for a second.
    se.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
    se.set_host_acceptance_min_wait(Some(Duration::ZERO));
    // mDNS candidates would need multicast on every host; plain host candidates do on a LAN.
    se.set_ice_multicast_dns_mode(webrtc::ice::mdns::MulticastDnsMode::Disabled);
    se.set_include_loopback_candidate(n.config.include_loopback);
    let api = APIBuilder::new().with_setting_engine(se).build();
    let ice_servers = n
        .config
        .ice_servers
        .iter()
        .map(|s| RTCIceServer { urls: s.urls.clone(), username: s.username.clone(), credential: s.credential.clone() })
        .collect();
    let config = RTCConfiguration { ice_servers, certificates: vec![n.certificate.clone()], ..Default::default() };
    Ok(api.new_peer_connection(config).await?)
}

/// Offer/answer, ICE and the data channels; returns the opened channels (by id) and the peer id
/// the identity handshake proved.
async fn establish(
    role: Role,
    n: &mut Negotiation,
    pc: &Arc<RTCPeerConnection>,
) -> Result<(Vec<Arc<Detached>>, PeerId), WebRtcError> {
    let offerer = matches!(role, Role::Offerer { .. });
    let labels: Vec<String> =
        ["noise".to_owned(), "libp2p".to_owned()].into_iter().chain(n.config.data_channels.iter().cloned()).collect();
    // The offerer opens the channels in-band (DCEP): the OPEN message creates each stream on the
    // answerer before any data on it. Pre-negotiated ids race here: data from the side whose SCTP
    // came up first reaches a stream the other side has not opened yet, which webrtc-rs then
    // takes as a new remote stream and refuses the local open.
    let mut opened = Vec::with_capacity(labels.len());
    let mut waiting: HashMap<String, oneshot::Sender<DetachResult>> = HashMap::new();
    for label in &labels {
        let (tx, rx) = oneshot::channel();
        opened.push(rx);
        if offerer {
            let dc = pc.create_data_channel(label, Some(RTCDataChannelInit::default())).await?;
            detach_on_open(dc, tx);
        } else {
            waiting.insert(label.clone(), tx);
        }
    }
    if !offerer {
        let waiting = Mutex::new(waiting);
        pc.on_data_channel(Box::new(move |dc| {
            match waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(dc.label()) {
                Some(tx) => detach_on_open(dc, tx),
                None => tracing::debug!(label = dc.label(), "unexpected data channel ignored"),
            }
            Box::pin(async {})
        }));
    }

    // Candidates found before the description goes out wait here (they are in it anyway);
    // after that they trickle. `None` = the description is out.
    let held: Arc<Mutex<Option<Vec<IceCandidate>>>> = Arc::new(Mutex::new(Some(Vec::new())));
    let (signal, hold) = (n.signal.clone(), held.clone());
    pc.on_ice_candidate(Box::new(move |candidate| {
        let (signal, hold) = (signal.clone(), hold.clone());
        Box::pin(async move {
            if let Some(Ok(c)) = candidate.map(|c| c.to_json()) {
                let candidate = IceCandidate {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_mline_index,
                    username_fragment: c.username_fragment,
                };
                let mut held = hold.lock().unwrap_or_else(|p| p.into_inner());
                match held.as_mut() {
                    Some(buf) if buf.len() < MAX_EARLY_CANDIDATES => buf.push(candidate),
                    Some(_) => {}
                    None => {
                        let _ = signal(Payload::IceCandidate { candidate });
                    }
                }
            }
        })
    }));
    let (failed_tx, mut failed) = mpsc::channel(1);
    pc.on_peer_connection_state_change(Box::new(move |state| {
        if matches!(state, RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed) {
            let _ = failed_tx.try_send(state);
        }
        Box::pin(async {})
    }));

    // Half trickle: the description goes out once local candidates are gathered (host ones take
    // milliseconds) or after GATHER_WAIT, whichever is first, so the remote agent's first
    // connectivity checks already have pairs; webrtc-rs would otherwise wait for its next check
    // tick (200 ms). Candidates found later trickle.
    let mut remote_set = false;
    match role {
        Role::Offerer { offer_sdp } => {
            let offer = pc.create_offer(None).await?;
            let mut gathered = pc.gathering_complete_promise().await;
            pc.set_local_description(offer).await?;
            let _ = tokio::time::timeout(GATHER_WAIT, gathered.recv()).await;
            let sdp = send_description(pc, n, &held, true).await?;
            let _ = offer_sdp.send(sdp);
        }
        Role::Answerer { offer } => {
            pc.set_remote_description(RTCSessionDescription::offer(offer)?).await?;
            remote_set = true;
            let answer = pc.create_answer(None).await?;
            let mut gathered = pc.gathering_complete_promise().await;
            pc.set_local_description(answer).await?;
            let _ = tokio::time::timeout(GATHER_WAIT, gathered.recv()).await;
            send_description(pc, n, &held, false).await?;
        }
    }

    let mut early: Vec<RTCIceCandidateInit> = Vec::new();
    let all_open = futures::future::try_join_all(opened);
    tokio::pin!(all_open);
    let channels = loop {
        tokio::select! {
            opened = &mut all_open => {
                let detached = opened.map_err(|_| WebRtcError::Closed)?;
                break detached.into_iter().collect::<Result<Vec<_>, _>>()?;
            }
            state = failed.recv() => {
                return Err(WebRtcError::Rtc(format!("peer connection {}", state.map(|s| s.to_string()).unwrap_or_default())));
            }
            msg = n.inbox.recv() => match msg {
                None => return Err(WebRtcError::Closed),
                Some(Inbox::Refused(code, message)) => return Err(WebRtcError::Refused { code, message }),
                Some(Inbox::Payload(Payload::Bye { reason })) => return Err(WebRtcError::Bye(reason.unwrap_or_default())),
                Some(Inbox::Payload(Payload::Answer { sdp })) if !remote_set => {
                    pc.set_remote_description(RTCSessionDescription::answer(sdp)?).await?;
                    remote_set = true;
                    for c in early.drain(..) {
                        if let Err(e) = pc.add_ice_candidate(c).await {
                            tracing::debug!("early ICE candidate refused: {e}");
                        }
                    }
                }
                Some(Inbox::Payload(Payload::IceCandidate { candidate })) => {
                    let init = RTCIceCandidateInit {
                        candidate: candidate.candidate,
                        sdp_mid: candidate.sdp_mid,
                        sdp_mline_index: candidate.sdp_mline_index,
                        username_fragment: candidate.username_fragment,
                    };
                    if remote_set {
                        if let Err(e) = pc.add_ice_candidate(init).await {
                            tracing::debug!("ICE candidate refused: {e}");
                        }
                    } else if early.len() < MAX_EARLY_CANDIDATES {
                        early.push(init);
                    }
                }
                Some(Inbox::Payload(_)) => {} // a repeated offer or answer changes nothing
            }
        }
    };

    let local = local_fingerprint(&n.certificate)?;
    let remote = Fingerprint::from_certificate(&pc.sctp().transport().get_remote_certificate().await);
    let mut handshake = PollDataChannel::new(channels[0].clone());
    handshake.set_read_buf_capacity(MAX_DATA_MESSAGE);
    let handshake = handshake.compat();
    // libp2p's construction: the offerer is the "client", the answerer the "server".
    let proven = if offerer {
        noise::outbound(n.keypair.clone(), handshake, remote, local).await
    } else {
        noise::inbound(n.keypair.clone(), handshake, remote, local).await
    }
    .map_err(|e| WebRtcError::Handshake(e.to_string()))?;
    Ok((channels, proven))
}

/// Sends the local description with the candidates gathered so far, then whatever was held back;
/// the lock keeps a candidate found meanwhile from overtaking the description.
async fn send_description(
    pc: &RTCPeerConnection,
    n: &Negotiation,
    held: &Mutex<Option<Vec<IceCandidate>>>,
    offer: bool,
) -> Result<String, WebRtcError> {
    let desc = pc.local_description().await.ok_or_else(|| WebRtcError::Rtc("no local description".into()))?;
    let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
    let sdp = desc.sdp;
    (n.signal)(if offer { Payload::Offer { sdp: sdp.clone() } } else { Payload::Answer { sdp: sdp.clone() } })?;
    for candidate in held.take().unwrap_or_default() {
        if !sdp.contains(&candidate.candidate) {
            let _ = (n.signal)(Payload::IceCandidate { candidate });
        }
    }
    Ok(sdp)
}

type DetachResult = Result<Arc<Detached>, webrtc::Error>;

/// Hands the channel's byte-level handle over once it is open.
fn detach_on_open(dc: Arc<RTCDataChannel>, tx: oneshot::Sender<DetachResult>) {
    let tx = Arc::new(Mutex::new(Some(tx)));
    let handle = dc.clone();
    dc.on_open(Box::new(move || {
        let (tx, handle) = (tx.clone(), handle.clone());
        Box::pin(async move {
            let detached = handle.detach().await;
            if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = tx.send(detached);
            }
        })
    }));
}

fn local_fingerprint(cert: &RTCCertificate) -> Result<Fingerprint, WebRtcError> {
    let fp = cert
        .get_fingerprints()
        .into_iter()
        .find(|f| f.algorithm == "sha-256")
        .ok_or_else(|| WebRtcError::Rtc("certificate has no sha-256 fingerprint".into()))?;
    let bytes = hex::decode(fp.value.replace(':', "")).map_err(|e| WebRtcError::Rtc(e.to_string()))?;
    let digest: [u8; 32] = bytes.try_into().map_err(|_| WebRtcError::Rtc("fingerprint is not 32 bytes".into()))?;
    Ok(Fingerprint::raw(digest))
}
