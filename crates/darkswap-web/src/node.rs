//! `DarkSwapNode`: the JavaScript class over a `Network` running in the page.

use crate::{
    events::{EventHub, JsEvent},
    types::{from_js, order_views, state_name, to_js, ConnectionView, StartOptions, TradeStep, TradeView},
};
use darkswap_p2p::{
    libp2p::{Multiaddr, PeerId},
    network::{Network, NetworkConfig, NetworkHandle},
};
use darkswap_support::{
    types::{OrderId, TradeBody, TradeId, TradeMessage},
    view::{OrderView, PostOrder},
};
use std::{rc::Rc, time::Duration};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// A DarkSwap node running in this page. Start one with `DarkSwapNode.start(options)`.
#[wasm_bindgen]
pub struct DarkSwapNode {
    handle: NetworkHandle,
    hub: Rc<EventHub>,
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn parse_addr(s: &str) -> Result<Multiaddr, JsError> {
    s.parse().map_err(|e| js_err(format!("bad multiaddr {s:?}: {e}")))
}

fn promise<F>(f: F) -> js_sys::Promise
where
    F: std::future::Future<Output = Result<JsValue, JsError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(JsValue::from) })
}

#[wasm_bindgen]
impl DarkSwapNode {
    /// Starts a node: makes a fresh identity, dials `options.bootstrap`, reserves slots on
    /// `options.relayPeers`, registers with `options.signaling`, and begins delivering events.
    #[wasm_bindgen(unchecked_return_type = "Promise<DarkSwapNode>")]
    pub fn start(#[wasm_bindgen(unchecked_param_type = "StartOptions")] options: JsValue) -> js_sys::Promise {
        promise(async move {
            let options: StartOptions = if options.is_undefined() || options.is_null() {
                StartOptions::default()
            } else {
                from_js(&options, "options")?
            };
            let mut config = NetworkConfig {
                bootstrap_peers: options.bootstrap.iter().map(|a| parse_addr(a)).collect::<Result<_, _>>()?,
                relay_peers: options.relay_peers.iter().map(|a| parse_addr(a)).collect::<Result<_, _>>()?,
                ..NetworkConfig::default()
            };
            if !options.topics.is_empty() {
                config.topics = options.topics;
            }
            if let Some(ms) = options.connection_timeout_ms {
                config.connection_timeout = Duration::from_millis(ms);
            }
            let mut builder = Network::builder(config);
            if let Some(url) = &options.signaling {
                builder = builder.webrtc_signaling(url.clone());
            }
            let mut network = builder.build().await.map_err(js_err)?;
            if options.signaling.is_some() {
                // Registers with the server; peers then dial /webrtc/p2p/<this peer id>.
                network.listen_on_addr("/webrtc".parse().map_err(js_err)?).await.map_err(js_err)?;
            }
            let handle = network.handle();
            let hub = Rc::new(EventHub::default());
            let pump_hub = hub.clone();
            let pump_net = handle.clone();
            wasm_bindgen_futures::spawn_local(async move {
                while let Some(event) = network.next_event().await {
                    pump_hub.deliver(&JsEvent::from_network(event, &pump_net));
                }
            });
            Ok(DarkSwapNode { handle, hub }.into())
        })
    }

    /// This node's peer id.
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.handle.local_peer_id().to_string()
    }

    /// Addresses this node can be reached at (relay circuits once reserved).
    #[wasm_bindgen(js_name = listenAddrs)]
    pub fn listen_addrs(&self) -> Vec<String> {
        self.handle.listen_addrs().iter().map(|a| a.to_string()).collect()
    }

    /// Dials `addr` (ending in `/p2p/<peer id>`; through a relay `…/p2p/<relay>/p2p-circuit/p2p/<peer>`)
    /// and resolves to the peer id once connected.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn dial(&self, addr: String) -> js_sys::Promise {
        let net = self.handle.clone();
        promise(async move { Ok(net.dial(&addr).await.map_err(js_err)?.to_string().into()) })
    }

    /// Listens on `addr`: `/p2p/<relay>/p2p-circuit` (with the relay's address in front) makes
    /// this browser reachable through that relay. Resolves to the address.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn listen(&self, addr: String) -> js_sys::Promise {
        let net = self.handle.clone();
        promise(async move {
            let addr = parse_addr(&addr)?;
            Ok(net.listen_on_addr(addr).await.map_err(js_err)?.to_string().into())
        })
    }

    /// Joins a gossip topic.
    pub fn subscribe(&self, topic: &str) -> Result<(), JsError> {
        self.handle.subscribe(topic).map_err(js_err)
    }

    /// Posts an order signed by this node; resolves to the order as published.
    #[wasm_bindgen(js_name = postOrder, unchecked_return_type = "Promise<Order>")]
    pub fn post_order(&self, #[wasm_bindgen(unchecked_param_type = "PostOrder")] order: JsValue) -> js_sys::Promise {
        let net = self.handle.clone();
        promise(async move {
            let mut value: serde_json::Value = from_js(&order, "order")?;
            // JavaScript callers may leave out the quote (bitcoin) and the lifetime (an hour).
            if let Some(o) = value.as_object_mut() {
                o.entry("quote").or_insert_with(|| "btc".into());
                o.entry("ttl_secs").or_insert_with(|| 3600.into());
            }
            let form: PostOrder = serde_json::from_value(value).map_err(|e| js_err(format!("order: {e}")))?;
            let draft = form.to_draft().map_err(|e| js_err(format!("order: {e}")))?;
            let posted = net.publish_order(draft).await.map_err(js_err)?;
            to_js(&OrderView::from(&posted))
        })
    }

    /// Cancels one of this node's own live orders.
    #[wasm_bindgen(js_name = cancelOrder, unchecked_return_type = "Promise<void>")]
    pub fn cancel_order(&self, id: String) -> js_sys::Promise {
        let net = self.handle.clone();
        promise(async move {
            let id: OrderId = id.parse().map_err(|_| js_err(format!("bad order id {id:?}")))?;
            net.cancel_order(id).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The live order book, in id order.
    #[wasm_bindgen(unchecked_return_type = "Order[]")]
    pub fn orders(&self) -> Result<JsValue, JsError> {
        to_js(&order_views(&self.handle.orders()))
    }

    /// Starts a trade: sends an intent for `amount` base units (a decimal string) of order
    /// `orderId` to its maker, end-to-end encrypted. Resolves to the trade id.
    #[wasm_bindgen(js_name = startTrade, unchecked_return_type = "Promise<string>")]
    pub fn start_trade(&self, order_id: String, amount: String) -> js_sys::Promise {
        let net = self.handle.clone();
        promise(async move {
            let id: OrderId = order_id.parse().map_err(|_| js_err(format!("bad order id {order_id:?}")))?;
            let order = net.order(&id).ok_or_else(|| js_err(format!("order {order_id} is not in the book")))?;
            let amount: u128 = amount.parse().map_err(|_| js_err(format!("amount {amount:?} is not an integer")))?;
            Ok(net.start_trade(&order, amount).await.map_err(js_err)?.to_string().into())
        })
    }

    /// Sends the next step of a negotiation to `peerId` (end-to-end encrypted) and resolves to
    /// the trade's new state once the peer acknowledged it.
    #[wasm_bindgen(js_name = sendTrade, unchecked_return_type = "Promise<TradeStateName>")]
    pub fn send_trade(
        &self,
        peer_id: String,
        #[wasm_bindgen(unchecked_param_type = "TradeStep")] step: JsValue,
    ) -> js_sys::Promise {
        let net = self.handle.clone();
        promise(async move {
            let peer: PeerId = peer_id.parse().map_err(|_| js_err(format!("bad peer id {peer_id:?}")))?;
            let step: TradeStep = from_js(&step, "step")?;
            let message = trade_message(step)?;
            Ok(state_name(net.send_trade(peer, message).await.map_err(js_err)?).into())
        })
    }

    /// The trade `tradeId`, if this node takes part in it.
    #[wasm_bindgen(unchecked_return_type = "Trade | undefined")]
    pub fn trade(&self, trade_id: &str) -> Result<JsValue, JsError> {
        let id: TradeId = trade_id.parse().map_err(|_| js_err(format!("bad trade id {trade_id:?}")))?;
        match self.handle.trade(&id) {
            Some(t) => to_js(&TradeView::from(&t)),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Current connections with their transports.
    #[wasm_bindgen(unchecked_return_type = "Connection[]")]
    pub fn connections(&self) -> Result<JsValue, JsError> {
        let mut list: Vec<ConnectionView> = self.handle.connections().iter().map(ConnectionView::from).collect();
        list.sort_by(|a, b| (&a.peer_id, &a.address).cmp(&(&b.peer_id, &b.address)));
        to_js(&list)
    }

    /// Calls `callback(event)` for every event from now on.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: DarkSwapEvent) => void")] callback: js_sys::Function,
    ) -> Result<(), JsError> {
        self.hub.add_callback(callback)
    }

    /// An async iterator over the events from now on: `for await (const e of node.events())`.
    #[wasm_bindgen(unchecked_return_type = "AsyncIterableIterator<DarkSwapEvent>")]
    pub fn events(&self) -> Result<JsValue, JsError> {
        self.hub.iterator()
    }

    /// Closes every connection and stops the node.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn shutdown(&self) -> js_sys::Promise {
        let net = self.handle.clone();
        promise(async move {
            net.shutdown().await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }
}

fn trade_message(step: TradeStep) -> Result<TradeMessage, JsError> {
    let trade_id: TradeId = step.trade_id.parse().map_err(|_| js_err(format!("bad trade id {:?}", step.trade_id)))?;
    let order_id: OrderId = step.order_id.parse().map_err(|_| js_err(format!("bad order id {:?}", step.order_id)))?;
    let psbt = || -> Result<Vec<u8>, JsError> {
        let h = step.psbt_hex.as_deref().ok_or_else(|| js_err("psbtHex is required for this step"))?;
        hex::decode(h).map_err(|_| js_err("psbtHex is not hex"))
    };
    let reason = || step.reason.clone().unwrap_or_default();
    let body = match step.step.as_str() {
        "accept" => TradeBody::Accept,
        "reject" => TradeBody::Reject { reason: reason() },
        "psbt-offer" => TradeBody::PsbtOffer { psbt: psbt()? },
        "psbt-signed" => TradeBody::PsbtSigned { psbt: psbt()? },
        "complete" => {
            let txid = step.txid.as_deref().ok_or_else(|| js_err("txid is required for complete"))?;
            TradeBody::Complete { txid: txid.parse().map_err(|_| js_err("txid is not 32 bytes of hex"))? }
        }
        "cancel" => TradeBody::Cancel { reason: reason() },
        other => return Err(js_err(format!("unknown step {other:?} (intent is sent by startTrade)"))),
    };
    Ok(TradeMessage { trade_id, order_id, body })
}
