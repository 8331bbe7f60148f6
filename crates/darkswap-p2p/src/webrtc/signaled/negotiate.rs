//! One WebRTC negotiation on str0m: local candidates, offer/answer and trickled remote ICE
//! candidates through the signaling client, the data channels (opened in-band by the offerer),
//! then the identity handshake bound to the DTLS fingerprints. The signaling I/O is injected
//! (`signal`, `inbox`) so the same steps serve the dialing and the answering side.

use super::{
    routing::{Inbox, Role, MAX_CANDIDATES},
    DataChannel, LibP2pStream, WebRtcConfig, WebRtcConnection, WebRtcError,
};
use crate::webrtc::{
    rtc::{
        channel_opening::OpenPolicy,
        driver::{self, Control, Inbound, Progress},
        gather,
        sockets::Sockets,
    },
    signaling::Payload,
};
use libp2p::{identity::Keypair, PeerId};
use libp2p_webrtc_utils::{noise, Fingerprint};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use str0m::{
    change::{SdpAnswer, SdpOffer},
    channel::ChannelId,
    config::DtlsCert,
    Candidate, Rtc,
};
use tokio::sync::mpsc;
use web_time::Instant;

/// Smallest send buffer taken: one largest message must fit, or it could never be written.
const MIN_SEND_BUFFER: usize = super::MAX_DATA_MESSAGE;

/// Sends a payload to the remote peer about this connection.
pub(crate) type Signal = Arc<dyn Fn(Payload) -> Result<(), WebRtcError> + Send + Sync>;

/// Everything one negotiation needs.
pub(crate) struct Negotiation {
    pub keypair: Keypair,
    pub certificate: DtlsCert,
    pub config: WebRtcConfig,
    pub remote: PeerId,
    pub connection_id: String,
    pub signal: Signal,
    pub inbox: mpsc::Receiver<Inbox>,
}

/// Runs a negotiation to a proven connection, or fails within `config.connect_timeout`.
pub(crate) async fn negotiate(role: Role, mut n: Negotiation) -> Result<WebRtcConnection, WebRtcError> {
    let started = Instant::now();
    let outbound = matches!(role, Role::Offerer { .. });
    let mut handle = None;
    let result = tokio::time::timeout(n.config.connect_timeout, establish(role, &mut n, &mut handle)).await;
    let failure = match result {
        Ok(Ok((channels, proven, driver))) => {
            if proven == n.remote {
                return Ok(connection(n, driver, channels, outbound, started));
            }
            WebRtcError::PeerMismatch { expected: Box::new(n.remote), actual: Box::new(proven) }
        }
        Ok(Err(e)) => e,
        Err(_) => WebRtcError::Timeout("negotiating the WebRTC connection"),
    };
    let _ = (n.signal)(Payload::Bye { reason: Some(failure.to_string()) });
    if let Some(h) = handle {
        h.shutdown.cancel();
    }
    Err(failure)
}

/// The opened channels by label: id and inbound queue.
type Opened = HashMap<String, (ChannelId, Inbound)>;

fn connection(
    n: Negotiation,
    driver: driver::Handle,
    mut channels: Opened,
    outbound: bool,
    started: Instant,
) -> WebRtcConnection {
    let stream = channels.remove("libp2p").map(|(id, rx)| LibP2pStream::new(id, &driver, rx));
    let data_channels = n
        .config
        .data_channels
        .iter()
        .filter_map(|label| {
            let (id, rx) = channels.remove(label)?;
            Some((label.clone(), DataChannel::new(label.clone(), id, driver.clone(), rx)))
        })
        .collect();
    WebRtcConnection {
        data_channels,
        remote_peer_id: n.remote,
        connection_id: n.connection_id,
        outbound,
        driver,
        stream: Mutex::new(stream),
        established_in: started.elapsed(),
    }
}

/// Candidates, offer/answer, ICE and the data channels; returns the opened channels, the peer id
/// the identity handshake proved and the connection's task.
async fn establish(
    role: Role,
    n: &mut Negotiation,
    handle: &mut Option<driver::Handle>,
) -> Result<(Opened, PeerId, driver::Handle), WebRtcError> {
    let offerer = matches!(role, Role::Offerer { .. });
    let labels: Vec<String> =
        ["noise".to_owned(), "libp2p".to_owned()].into_iter().chain(n.config.data_channels.iter().cloned()).collect();
    let relay_only = n.config.relay_only;
    let mut sockets = if relay_only { Vec::new() } else { gather::bind_host_sockets(n.config.include_loopback)? };
    let servers = &n.config.ice_servers;
    let (reflexive, (relay_sockets, relays)) =
        futures::join!(gather::server_reflexive(&sockets, servers), gather::relays(servers));
    if relay_only && relays.is_empty() {
        return Err(WebRtcError::Rtc("relay only, and no TURN server gave an allocation".into()));
    }
    let mut rtc = Rtc::builder()
        .set_dtls_cert(n.certificate.clone())
        .set_sctp_max_buffered_amount(n.config.send_buffer.max(MIN_SEND_BUFFER))
        .build(std::time::Instant::now());
    let bad = |e: str0m::error::IceError| WebRtcError::Rtc(e.to_string());
    for socket in &sockets {
        let addr = socket.local_addr().map_err(|e| WebRtcError::Rtc(e.to_string()))?;
        rtc.add_local_candidate(Candidate::host(addr, "udp").map_err(bad)?);
    }
    for c in reflexive {
        rtc.add_local_candidate(c);
    }
    for r in &relays {
        rtc.add_local_candidate(Candidate::relayed(r.relayed, r.local, "udp").map_err(bad)?);
    }
    sockets.extend(relay_sockets);

    // Every local candidate is known now and goes out in the description; nothing trickles.
    // The offerer opens the channels in-band (DCEP), so each exists on the answerer before any
    // data on it.
    let mut pending_offer = None;
    match role {
        Role::Offerer { offer_sdp } => {
            let mut api = rtc.sdp_api();
            for label in &labels {
                api.add_channel(label.clone());
            }
            let (offer, pending) = api.apply().ok_or_else(|| WebRtcError::Rtc("nothing to offer".into()))?;
            let sdp = offer.to_sdp_string();
            (n.signal)(Payload::Offer { sdp: sdp.clone() })?;
            let _ = offer_sdp.send(sdp);
            pending_offer = Some(pending);
        }
        Role::Answerer { offer } => {
            let offer = SdpOffer::from_sdp_string(&offer).map_err(|e| WebRtcError::Rtc(format!("offer: {e}")))?;
            let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| WebRtcError::Rtc(format!("offer: {e}")))?;
            (n.signal)(Payload::Answer { sdp: answer.to_sdp_string() })?;
        }
    }
    // Both ends are this crate's (native or browser), which take every channel opened.
    let net = Sockets::new(sockets, relays);
    let (driver, mut progress) = driver::spawn(rtc, net, labels.len(), OpenPolicy::EAGER);
    *handle = Some(driver.clone());

    let mut opened: Opened = HashMap::new();
    let mut remote_candidates = 0;
    while !labels.iter().all(|l| opened.contains_key(l)) {
        tokio::select! {
            p = progress.recv() => match p {
                Some(Progress::Open(id, label, rx)) => {
                    if labels.contains(&label) {
                        opened.insert(label, (id, rx));
                    }
                }
                Some(Progress::Failed(reason)) => return Err(WebRtcError::Rtc(reason)),
                None => return Err(WebRtcError::Closed),
            },
            msg = n.inbox.recv() => match msg {
                None => return Err(WebRtcError::Closed),
                Some(Inbox::Refused(code, message)) => return Err(WebRtcError::Refused { code, message }),
                Some(Inbox::Payload(Payload::Bye { reason })) => return Err(WebRtcError::Bye(reason.unwrap_or_default())),
                Some(Inbox::Payload(Payload::Answer { sdp })) => {
                    if let Some(pending) = pending_offer.take() {
                        let answer = SdpAnswer::from_sdp_string(&sdp).map_err(|e| WebRtcError::Rtc(format!("answer: {e}")))?;
                        driver.control.send(Control::Answer(Box::new((pending, answer)))).await.map_err(|_| WebRtcError::Closed)?;
                    }
                }
                Some(Inbox::Payload(Payload::IceCandidate { candidate })) => {
                    // Browsers trickle theirs; an mDNS name or an end-of-candidates marker does
                    // not parse and is left out (the pair is then found peer-reflexively).
                    let line = candidate.candidate.trim_start_matches("a=");
                    remote_candidates += 1;
                    match Candidate::from_sdp_string(line) {
                        Ok(_) if remote_candidates > MAX_CANDIDATES => {}
                        Ok(c) => driver.control.send(Control::RemoteCandidate(c)).await.map_err(|_| WebRtcError::Closed)?,
                        Err(e) => tracing::debug!("remote ICE candidate skipped: {e}"),
                    }
                }
                Some(Inbox::Payload(_)) => {} // a repeated offer changes nothing
            }
        }
    }

    let (local, remote) = driver.fingerprints().await?;
    let (noise_id, noise_rx) = opened.remove("noise").ok_or(WebRtcError::Closed)?;
    let handshake = LibP2pStream::new(noise_id, &driver, noise_rx);
    let (local, remote) = (Fingerprint::raw(local), Fingerprint::raw(remote));
    // libp2p's construction: the offerer is the "client", the answerer the "server".
    let proven = if offerer {
        noise::outbound(n.keypair.clone(), handshake, remote, local).await
    } else {
        noise::inbound(n.keypair.clone(), handshake, remote, local).await
    }
    .map_err(|e| WebRtcError::Handshake(e.to_string()))?;
    Ok((opened, proven, driver))
}
