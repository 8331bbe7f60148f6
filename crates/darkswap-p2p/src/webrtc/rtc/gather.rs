//! Local ICE candidates for a native connection: one UDP socket per local address (host
//! candidates) and, through the configured STUN servers, the addresses a NAT maps them to
//! (server-reflexive candidates). str0m leaves both to its user.

use super::turn::{turn_servers, with_port, Relay, ALLOCATE_WAIT};
use crate::webrtc::{IceServer, WebRtcError};
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};
use str0m::{
    ice::{StunMessage, StunMessageBuilder, TransId},
    Candidate,
};
use tokio::net::UdpSocket;

/// Most local addresses used (hosts with many interfaces or addresses).
const MAX_SOCKETS: usize = 16;
/// Socket buffers asked for: a data channel at full speed overruns the default ones, and a
/// datagram the kernel drops costs SCTP a retransmission. The kernel caps it at its maximum.
const SOCKET_BUFFER: usize = 4 << 20;
/// Longest wait for STUN answers before the description goes out without them.
pub(crate) const STUN_WAIT: Duration = Duration::from_millis(500);
/// Pause before a STUN request is sent again.
const STUN_RESEND: Duration = Duration::from_millis(100);
/// Port of a `stun:` URL without one (RFC 8489).
const STUN_PORT: u16 = 3478;

/// Binds a UDP socket on every usable local address: loopback only when `include_loopback`,
/// never IPv6 link-local (they need a scope id the SDP cannot carry).
pub(crate) fn bind_host_sockets(include_loopback: bool) -> Result<Vec<UdpSocket>, WebRtcError> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map_err(|e| WebRtcError::Rtc(format!("listing local addresses: {e}")))?
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| include_loopback || !ip.is_loopback())
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .collect();
    ips.sort();
    ips.dedup();
    let sockets: Vec<UdpSocket> =
        ips.into_iter().take(MAX_SOCKETS).filter_map(|ip| bind(SocketAddr::new(ip, 0)).ok()).collect();
    if sockets.is_empty() {
        return Err(WebRtcError::Rtc("no local address to offer".into()));
    }
    Ok(sockets)
}

/// A non-blocking UDP socket on `addr` with large kernel buffers (a data channel at speed
/// overflows the defaults).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Allocates on every `turn:` server (UDP), each through a socket of its own so that nothing
/// else reads the allocation's replies; the sockets carry no host candidate.
pub(crate) async fn relays(servers: &[IceServer]) -> (Vec<UdpSocket>, Vec<Relay>) {
    let allocations = turn_servers(servers).into_iter().map(|(hostport, user, password)| async move {
        let resolved = tokio::time::timeout(ALLOCATE_WAIT, tokio::net::lookup_host(hostport.as_str())).await;
        let Some(server) = resolved.ok().and_then(|r| r.ok()).and_then(|mut a| a.next()) else {
            tracing::debug!(%hostport, "TURN server not resolved");
            return None;
        };
        // A loopback server is reached from loopback; any other from the address the route picks.
        let ip: IpAddr = match (server.is_ipv4(), server.ip().is_loopback()) {
            (true, true) => std::net::Ipv4Addr::LOCALHOST.into(),
            (true, false) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            (false, true) => std::net::Ipv6Addr::LOCALHOST.into(),
            (false, false) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = bind(SocketAddr::new(ip, 0)).ok()?;
        let relay = Relay::allocate(&socket, server, &user, &password).await?;
        tracing::debug!(relayed = %relay.relayed, %server, "TURN allocation");
        Some((socket, relay))
    });
    futures::future::join_all(allocations).await.into_iter().flatten().unzip()
}

/// The `host:port` of every `stun:` URL.
fn stun_servers(servers: &[IceServer]) -> Vec<String> {
    servers
        .iter()
        .flat_map(|s| s.urls.iter())
        .filter_map(|u| u.strip_prefix("stun:"))
        .map(|rest| with_port(rest.split('?').next().unwrap_or(rest), STUN_PORT))
        .collect()
}

/// Asks every STUN server, from every socket of its address family, which address it sees;
/// answers within [`STUN_WAIT`] become server-reflexive candidates (one per distinct address).
pub(crate) async fn server_reflexive(sockets: &[UdpSocket], servers: &[IceServer]) -> Vec<Candidate> {
    let urls = stun_servers(servers);
    if urls.is_empty() {
        return Vec::new();
    }
    let mut targets: Vec<SocketAddr> = Vec::new();
    for url in urls {
        match tokio::time::timeout(STUN_WAIT, tokio::net::lookup_host(url.as_str())).await {
            Ok(Ok(addrs)) => targets.extend(addrs),
            _ => tracing::debug!(%url, "STUN server not resolved"),
        }
    }
    let mut found = Vec::new();
    let asks = sockets.iter().filter(|s| s.local_addr().is_ok_and(|l| !l.ip().is_loopback()));
    let asks = asks.map(|s| ask(s, &targets));
    for mapped in futures::future::join_all(asks).await.into_iter().flatten() {
        let (addr, base) = mapped;
        if addr != base && !found.iter().any(|c: &Candidate| c.addr() == addr) {
            match Candidate::server_reflexive(addr, base, "udp") {
                Ok(c) => found.push(c),
                Err(e) => tracing::debug!("server-reflexive candidate refused: {e}"),
            }
        }
    }
    found
}

/// The first mapped address any of `targets` reports for `socket`: (mapped, base).
async fn ask(socket: &UdpSocket, targets: &[SocketAddr]) -> Option<(SocketAddr, SocketAddr)> {
    let base = socket.local_addr().ok()?;
    let targets: Vec<SocketAddr> = targets.iter().copied().filter(|t| t.is_ipv4() == base.is_ipv4()).collect();
    if targets.is_empty() {
        return None;
    }
    let trans_id = TransId::new();
    let mut request = [0u8; 64];
    let len =
        StunMessageBuilder::new().binding().request().build(trans_id).to_bytes(None, &mut request, hmac_sha1).ok()?;
    let request = &request[..len];
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + STUN_WAIT;
    loop {
        for t in &targets {
            let _ = socket.send_to(request, t).await;
        }
        let resend = (tokio::time::Instant::now() + STUN_RESEND).min(deadline);
        while let Ok(r) = tokio::time::timeout_at(resend, socket.recv_from(&mut buf)).await {
            let Ok((n, from)) = r else { continue };
            if !targets.contains(&from) {
                continue;
            }
            if let Ok(m) = StunMessage::parse(&buf[..n]) {
                if m.trans_id() == trans_id && m.is_successful_binding_response() {
                    return m.mapped_address().map(|a| (a, base));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// HMAC-SHA1 over the concatenated `parts` (STUN's MESSAGE-INTEGRITY; unused without a password).
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_urls_get_a_default_port() {
        let servers = [IceServer {
            urls: vec![
                "stun:stun.example.org".into(),
                "stun:198.51.100.7:19302".into(),
                "stun:[2001:db8::1]".into(),
                "turn:turn.example.org:3478?transport=udp".into(),
            ],
            ..Default::default()
        }];
        assert_eq!(stun_servers(&servers), ["stun.example.org:3478", "198.51.100.7:19302", "[2001:db8::1]:3478"]);
    }
}
