//! The values crossing into JavaScript, as JSON-shaped objects, and their TypeScript types.

use darkswap_p2p::{
    libp2p::multiaddr::Protocol,
    network::ConnectionInfo,
    trade::{TradeSession, TradeState},
};
use darkswap_support::view::OrderView;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of `DarkSwapNode.start`. */
export interface StartOptions {
  /** Peers to join: multiaddrs ending in /p2p/<peer id> (WebRTC-direct with /certhash, or /ws). */
  bootstrap?: string[];
  /** Relays to reserve a slot on, so that peers can reach this browser through them. */
  relayPeers?: string[];
  /** Gossip topics (default: darkswap/orderbook/v1 and darkswap/trade/v1). */
  topics?: string[];
  /** Milliseconds allowed for a connection to be established (default 30000). */
  connectionTimeoutMs?: number;
  /**
   * A signaling server (ws://host:9001/signaling): the node registers there and is reachable at
   * /webrtc/p2p/<its peer id> by other browsers and native nodes, directly over WebRTC.
   */
  signaling?: string;
}

/** An order. Amounts and prices are decimal strings (they may exceed 2^53). */
export interface Order {
  id: string; maker: string; base: string; quote: string; side: "buy" | "sell";
  amount: string; price: string; created_at: number; expiry: number;
}

/** What `postOrder` takes. */
export interface PostOrder {
  side: "buy" | "sell"; base: string; quote?: string; amount: string; price: string;
  ttl_secs?: number; terms_hex?: string;
}

/** One connection of this node. */
export interface Connection {
  peerId: string; address: string;
  transport: "webrtc-direct" | "webrtc" | "websocket" | "relay" | "tcp" | "quic" | "other";
  relayed: boolean; outbound: boolean;
}

export type TradeStateName =
  "proposed" | "accepted" | "psbt-offered" | "psbt-signed" | "completed" | "rejected" | "cancelled";

/** A trade negotiation this node takes part in. */
export interface Trade {
  tradeId: string; orderId: string; peerId: string; role: "maker" | "taker";
  state: TradeStateName; amount: string;
}

/** One step of a negotiation, for `sendTrade`. */
export interface TradeStep {
  tradeId: string; orderId: string;
  step: "accept" | "reject" | "psbt-offer" | "psbt-signed" | "complete" | "cancel";
  reason?: string; psbtHex?: string; txid?: string;
}

/** What the node reports. */
export type DarkSwapEvent =
  | { type: "peerConnected"; peerId: string; transport: Connection["transport"] | null; address: string | null }
  | { type: "peerDisconnected"; peerId: string }
  | { type: "order"; from: string; order: Order }
  | { type: "orderCancelled"; orderId: string; maker: string }
  | { type: "tradeSettled"; orderId: string; maker: string; txid: string }
  | { type: "trade"; from: string; tradeId: string; orderId: string; step: string; state: TradeStateName | null;
      amount: string | null; reason: string | null; psbtHex: string | null; txid: string | null }
  | { type: "relayReserved"; relayPeerId: string; reservationId: number }
  | { type: "connectedThroughRelay"; relayPeerId: string; peerId: string }
  | { type: "lagged"; missed: number };
"#;

/// Options of `DarkSwapNode.start`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartOptions {
    #[serde(default)]
    pub bootstrap: Vec<String>,
    #[serde(default)]
    pub relay_peers: Vec<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    pub connection_timeout_ms: Option<u64>,
    pub signaling: Option<String>,
}

/// One connection, as JavaScript sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    pub peer_id: String,
    pub address: String,
    pub transport: &'static str,
    pub relayed: bool,
    pub outbound: bool,
}

impl From<&ConnectionInfo> for ConnectionView {
    fn from(c: &ConnectionInfo) -> Self {
        ConnectionView {
            peer_id: c.peer_id.to_string(),
            address: c.remote_addr.to_string(),
            transport: transport_of(c),
            relayed: c.relayed,
            outbound: c.outbound,
        }
    }
}

/// The transport a connection runs over. (An inbound circuit's address is only `/p2p/<peer>`,
/// so the relay flag decides first.) WebRTC through a signaling server has the server's
/// WebSocket address in front (`/ip4/…/tcp/…/ws/webrtc/p2p/…`), so WebRTC outranks WebSocket.
pub fn transport_of(c: &ConnectionInfo) -> &'static str {
    if c.relayed {
        return "relay";
    }
    let has = |want: fn(&Protocol) -> bool| c.remote_addr.iter().any(|p| want(&p));
    if has(|p| matches!(p, Protocol::P2pCircuit)) {
        "relay"
    } else if has(|p| matches!(p, Protocol::WebRTCDirect)) {
        "webrtc-direct"
    } else if has(|p| matches!(p, Protocol::WebRTC)) {
        "webrtc"
    } else if has(|p| matches!(p, Protocol::Ws(_) | Protocol::Wss(_))) {
        "websocket"
    } else if has(|p| matches!(p, Protocol::QuicV1)) {
        "quic"
    } else if has(|p| matches!(p, Protocol::Tcp(_))) {
        "tcp"
    } else {
        "other"
    }
}

/// A trade negotiation, as JavaScript sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeView {
    pub trade_id: String,
    pub order_id: String,
    pub peer_id: String,
    pub role: &'static str,
    pub state: &'static str,
    pub amount: String,
}

impl From<&TradeSession> for TradeView {
    fn from(t: &TradeSession) -> Self {
        TradeView {
            trade_id: t.trade_id.to_string(),
            order_id: t.order_id.to_string(),
            peer_id: t.peer.to_string(),
            role: match t.role {
                darkswap_p2p::trade::TradeRole::Maker => "maker",
                darkswap_p2p::trade::TradeRole::Taker => "taker",
            },
            state: state_name(t.state),
            amount: t.amount.to_string(),
        }
    }
}

/// The name JavaScript uses for a trade state.
pub fn state_name(s: TradeState) -> &'static str {
    match s {
        TradeState::Proposed => "proposed",
        TradeState::Accepted => "accepted",
        TradeState::PsbtOffered => "psbt-offered",
        TradeState::PsbtSigned => "psbt-signed",
        TradeState::Completed => "completed",
        TradeState::Rejected => "rejected",
        TradeState::Cancelled => "cancelled",
    }
}

/// One step of a negotiation, from `sendTrade`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TradeStep {
    pub trade_id: String,
    pub order_id: String,
    pub step: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub psbt_hex: Option<String>,
    #[serde(default)]
    pub txid: Option<String>,
}

/// Orders as JavaScript sees them.
pub fn order_views(orders: &[darkswap_support::types::Order]) -> Vec<OrderView> {
    orders.iter().map(OrderView::from).collect()
}

/// A Rust value as a plain JavaScript object (through JSON: every value here is JSON-shaped).
pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|_| JsError::new("JSON.parse failed"))
}

/// A JavaScript object as a Rust value, with a message naming what is wrong.
pub fn from_js<T: serde::de::DeserializeOwned>(value: &JsValue, what: &str) -> Result<T, JsError> {
    let text: String =
        js_sys::JSON::stringify(value).map_err(|_| JsError::new(&format!("{what}: not JSON-serializable")))?.into();
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("{what}: {e}")))
}
