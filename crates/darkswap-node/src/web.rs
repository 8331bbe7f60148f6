//! The demo page: a browser node (the `darkswap-web` wasm package) that bootstraps to this node.
//!
//! | path                  | what                                                          |
//! |-----------------------|---------------------------------------------------------------|
//! | `/`, `/app.js`, `/style.css` | the page (built into the binary)                       |
//! | `/pkg/<file>`         | the wasm package from `scripts/build-web.sh` (read from disk)  |
//! | `/bootstrap.json`     | [`Bootstrap`]: this node's id and the addresses a browser dials |
//!
//! The package is read from disk so that `./scripts/build-web.sh` takes effect without
//! rebuilding the node; without it the page says how to build it.

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use darkswap_p2p::{
    libp2p::{multiaddr::Protocol, Multiaddr},
    network::NetworkHandle,
};
use serde::{Deserialize, Serialize};
use std::{path::PathBuf, sync::Arc};

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const STYLE_CSS: &str = include_str!("../../../web/style.css");

/// Where `scripts/build-web.sh` puts the package in this checkout.
pub fn default_pkg_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/pkg"))
}

/// Answer of `GET /bootstrap.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    /// The serving node's peer id.
    pub peer_id: String,
    /// Addresses a browser can dial (WebRTC-direct with certhash, WebSocket), ending in `/p2p/<id>`.
    pub addrs: Vec<String>,
    /// Whether the node is a relay a browser can reserve a slot on.
    pub relay: bool,
    /// The signaling server browsers meet each other through, if the node runs or uses one.
    pub signaling: Option<String>,
}

struct Web {
    network: NetworkHandle,
    pkg_dir: PathBuf,
    relay: bool,
    signaling: Option<String>,
}

/// Whether a browser can dial `addr`: WebRTC-direct (with its certificate hash) or WebSocket.
fn browser_dialable(addr: &Multiaddr) -> bool {
    let mut webrtc_direct = false;
    let mut certhash = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) if ip.is_unspecified() => return false,
            Protocol::Ip6(ip) if ip.is_unspecified() => return false,
            Protocol::Ws(_) | Protocol::Wss(_) => return true,
            Protocol::WebRTCDirect => webrtc_direct = true,
            Protocol::Certhash(_) => certhash = true,
            Protocol::P2pCircuit => return false,
            _ => {}
        }
    }
    webrtc_direct && certhash
}

/// The page's routes over `network`; `pkg_dir` holds the built wasm package.
pub fn router(network: NetworkHandle, pkg_dir: PathBuf, relay: bool, signaling: Option<String>) -> Router {
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML) }))
        .route("/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], APP_JS) }))
        .route("/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE_CSS) }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/bootstrap.json", get(bootstrap))
        .route("/pkg/{file}", get(package_file))
        .with_state(Arc::new(Web { network, pkg_dir, relay, signaling }))
}

async fn bootstrap(State(web): State<Arc<Web>>) -> Json<Bootstrap> {
    let peer = web.network.local_peer_id();
    let addrs = web
        .network
        .listen_addrs()
        .into_iter()
        .filter(browser_dialable)
        .map(|a| a.with(Protocol::P2p(peer)).to_string())
        .collect();
    Json(Bootstrap { peer_id: peer.to_string(), addrs, relay: web.relay, signaling: web.signaling.clone() })
}

async fn package_file(State(web): State<Arc<Web>>, Path(file): Path<String>) -> Response {
    // Only the package's own flat file names: no paths, no hidden files.
    let content_type = match file.rsplit_once('.') {
        _ if file.starts_with('.') || !file.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) => None,
        Some((_, "wasm")) => Some("application/wasm"),
        Some((_, "js")) => Some("text/javascript"),
        Some((_, "ts")) => Some("text/plain; charset=utf-8"),
        _ => None,
    };
    let Some(content_type) = content_type else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    match tokio::fs::read(web.pkg_dir.join(&file)).await {
        Ok(bytes) => {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], bytes).into_response()
        }
        Err(_) => (
            StatusCode::NOT_FOUND,
            format!("{file} is not built: run ./scripts/build-web.sh (looked in {})", web.pkg_dir.display()),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_browser_dialable_addresses_are_offered() {
        let ok = "/ip4/127.0.0.1/udp/9003/webrtc-direct/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g";
        assert!(browser_dialable(&ok.parse().unwrap()));
        assert!(browser_dialable(&"/ip4/127.0.0.1/tcp/9002/ws".parse().unwrap()));
        assert!(!browser_dialable(&"/ip4/127.0.0.1/tcp/9000".parse().unwrap()));
        assert!(!browser_dialable(&"/ip4/127.0.0.1/udp/9003/webrtc-direct".parse().unwrap()));
        assert!(!browser_dialable(&"/ip4/0.0.0.0/tcp/9002/ws".parse().unwrap()));
    }
}
