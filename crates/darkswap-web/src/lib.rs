//! DarkSwap in the browser: a `darkswap-p2p` [`Network`](darkswap_p2p::network::Network) running in
//! the page (wasm32), driven from JavaScript.
//!
//! `./scripts/build-web.sh` builds this crate with wasm-bindgen into `web/pkg/` (JavaScript glue,
//! the `.wasm`, and TypeScript types); `darkswap-node` serves it with the demo page at
//! <http://127.0.0.1:8080/>.
//!
//! ```js
//! import init, { DarkSwapNode } from "./pkg/darkswap_web.js";
//! await init();
//! const node = await DarkSwapNode.start({ bootstrap: ["/ip4/127.0.0.1/udp/9003/webrtc-direct/certhash/…/p2p/12D3…"] });
//! node.onEvent((e) => { if (e.type === "order") console.log(e.order.side, e.order.amount); });
//! const order = await node.postOrder({ side: "sell", base: "rune:840000:1", quote: "btc",
//!                                      amount: "5000", price: "2500", ttl_secs: 3600 });
//! for await (const event of node.events()) { /* peerConnected, order, trade, … */ }
//! ```
//!
//! The browser dials native nodes over WebRTC-direct (the browser's own WebRTC stack) or
//! WebSocket, and is reachable through circuit relays it reserves a slot on (`relayPeers`).
//! Trade messages are end-to-end encrypted between the two traders, as on native.
//!
//! On native targets this crate is empty.
#![cfg(target_arch = "wasm32")]
#![warn(missing_docs)]

mod events;
mod node;
mod types;

pub use node::DarkSwapNode;
