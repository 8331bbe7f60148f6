//! Network events as JavaScript objects, handed to callbacks and to async iterators.
//!
//! Every consumer is bounded: an iterator nobody reads keeps at most [`ITERATOR_QUEUE`] events,
//! and then counts what it missed and reports the count (a `lagged` event) once it has room again.

use crate::types::{state_name, to_js, transport_of};
use darkswap_p2p::{
    network::{NetworkEvent, NetworkHandle},
    protocol::Message,
};
use darkswap_support::{types::TradeBody, view::OrderView};
use futures::{channel::mpsc, lock::Mutex, StreamExt};
use serde::Serialize;
use std::{cell::RefCell, rc::Rc};
use wasm_bindgen::{prelude::*, JsCast};

/// Events an unread iterator keeps before it starts counting misses.
pub const ITERATOR_QUEUE: usize = 1024;
/// Callbacks one node takes (each `onEvent` adds one).
pub const MAX_CALLBACKS: usize = 64;
/// Iterators one node keeps open at once.
pub const MAX_ITERATORS: usize = 64;

/// An event as JavaScript receives it (see `DarkSwapEvent` in the TypeScript types).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum JsEvent {
    PeerConnected {
        peer_id: String,
        transport: Option<&'static str>,
        address: Option<String>,
    },
    PeerDisconnected {
        peer_id: String,
    },
    Order {
        from: String,
        order: OrderView,
    },
    OrderCancelled {
        order_id: String,
        maker: String,
    },
    TradeSettled {
        order_id: String,
        maker: String,
        txid: String,
    },
    Trade {
        from: String,
        trade_id: String,
        order_id: String,
        step: &'static str,
        state: Option<&'static str>,
        amount: Option<String>,
        reason: Option<String>,
        psbt_hex: Option<String>,
        txid: Option<String>,
    },
    RelayReserved {
        relay_peer_id: String,
        reservation_id: u64,
    },
    ConnectedThroughRelay {
        relay_peer_id: String,
        peer_id: String,
    },
    Lagged {
        missed: u64,
    },
}

impl JsEvent {
    /// The JavaScript view of `event`; `net` supplies what the event alone does not say (the
    /// transport of a new peer's connection, a trade's new state).
    pub fn from_network(event: NetworkEvent, net: &NetworkHandle) -> Self {
        match event {
            NetworkEvent::PeerConnected(peer) => {
                let conn = net.connections().into_iter().find(|c| c.peer_id == peer);
                JsEvent::PeerConnected {
                    peer_id: peer.to_string(),
                    transport: conn.as_ref().map(transport_of),
                    address: conn.map(|c| c.remote_addr.to_string()),
                }
            }
            NetworkEvent::PeerDisconnected(peer) => JsEvent::PeerDisconnected { peer_id: peer.to_string() },
            NetworkEvent::RelayReserved { relay_peer_id, reservation_id } => {
                JsEvent::RelayReserved { relay_peer_id: relay_peer_id.to_string(), reservation_id }
            }
            NetworkEvent::ConnectedThroughRelay { relay_peer_id, dst_peer_id } => JsEvent::ConnectedThroughRelay {
                relay_peer_id: relay_peer_id.to_string(),
                peer_id: dst_peer_id.to_string(),
            },
            NetworkEvent::MessageReceived { peer_id, message, .. } => match message {
                Message::OrderAnnounce(o) => JsEvent::Order { from: peer_id.to_string(), order: OrderView::from(&o) },
                Message::OrderCancel(c) => {
                    JsEvent::OrderCancelled { order_id: c.order_id.to_string(), maker: c.maker.to_string() }
                }
                Message::TradeSettled(s) => JsEvent::TradeSettled {
                    order_id: s.order_id.to_string(),
                    maker: s.maker.to_string(),
                    txid: s.txid.to_string(),
                },
                Message::Trade(t) => {
                    let (mut amount, mut reason, mut psbt_hex, mut txid) = (None, None, None, None);
                    match &t.body {
                        TradeBody::Intent { amount: a } => amount = Some(a.to_string()),
                        TradeBody::Reject { reason: r } | TradeBody::Cancel { reason: r } => reason = Some(r.clone()),
                        TradeBody::PsbtOffer { psbt } | TradeBody::PsbtSigned { psbt } => {
                            psbt_hex = Some(hex::encode(psbt))
                        }
                        TradeBody::Complete { txid: t } => txid = Some(t.to_string()),
                        TradeBody::Accept => {}
                    }
                    JsEvent::Trade {
                        from: peer_id.to_string(),
                        trade_id: t.trade_id.to_string(),
                        order_id: t.order_id.to_string(),
                        step: t.body.kind(),
                        state: net.trade(&t.trade_id).map(|s| state_name(s.state)),
                        amount,
                        reason,
                        psbt_hex,
                        txid,
                    }
                }
            },
        }
    }
}

/// One `events()` iterator's end of the pump.
struct Subscriber {
    tx: mpsc::Sender<JsValue>,
    missed: u64,
}

/// Where the pump delivers events: callbacks first, then each open iterator.
#[derive(Default)]
pub struct EventHub {
    callbacks: RefCell<Vec<js_sys::Function>>,
    subscribers: RefCell<Vec<Subscriber>>,
}

impl EventHub {
    /// Adds a callback; refused past [`MAX_CALLBACKS`].
    pub fn add_callback(&self, f: js_sys::Function) -> Result<(), JsError> {
        let mut callbacks = self.callbacks.borrow_mut();
        if callbacks.len() >= MAX_CALLBACKS {
            return Err(JsError::new(&format!("at most {MAX_CALLBACKS} event callbacks")));
        }
        callbacks.push(f);
        Ok(())
    }

    /// Hands `event` to every consumer. A callback that throws is reported on the console and
    /// keeps its place.
    pub fn deliver(&self, event: &JsEvent) {
        let Ok(value) = to_js(event) else { return };
        for f in self.callbacks.borrow().iter() {
            if let Err(e) = f.call1(&JsValue::NULL, &value) {
                web_sys_console_error(&e);
            }
        }
        self.subscribers.borrow_mut().retain_mut(|s| {
            if s.missed > 0 {
                let lagged = to_js(&JsEvent::Lagged { missed: s.missed }).unwrap_or(JsValue::NULL);
                match s.tx.try_send(lagged) {
                    Ok(()) => s.missed = 0,
                    Err(e) if e.is_disconnected() => return false,
                    Err(_) => {
                        s.missed += 1;
                        return true;
                    }
                }
            }
            match s.tx.try_send(value.clone()) {
                Ok(()) => true,
                Err(e) if e.is_disconnected() => false,
                Err(_) => {
                    s.missed += 1;
                    true
                }
            }
        });
    }

    /// A new async iterator over the events from now on (`for await (const e of node.events())`).
    pub fn iterator(&self) -> Result<JsValue, JsError> {
        let mut subscribers = self.subscribers.borrow_mut();
        subscribers.retain(|s| !s.tx.is_closed());
        if subscribers.len() >= MAX_ITERATORS {
            return Err(JsError::new(&format!("at most {MAX_ITERATORS} open event iterators")));
        }
        let (tx, rx) = mpsc::channel(ITERATOR_QUEUE);
        subscribers.push(Subscriber { tx, missed: 0 });
        async_iterator(Rc::new(Mutex::new(rx)))
    }
}

/// `{ next(), return(), [Symbol.asyncIterator]() }` over `rx`; `return()` (a `break` out of
/// `for await`) closes it, and the pump drops it.
fn async_iterator(rx: Rc<Mutex<mpsc::Receiver<JsValue>>>) -> Result<JsValue, JsError> {
    let step = |value: JsValue, done: bool| -> JsValue {
        let o = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&o, &"value".into(), &value);
        let _ = js_sys::Reflect::set(&o, &"done".into(), &done.into());
        o.into()
    };
    let iter = js_sys::Object::new();
    let next_rx = rx.clone();
    let next = Closure::<dyn FnMut() -> js_sys::Promise>::new(move || {
        let rx = next_rx.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let event = rx.lock().await.next().await;
            Ok(match event {
                Some(v) => step(v, false),
                None => step(JsValue::UNDEFINED, true),
            })
        })
    });
    let ret = Closure::<dyn FnMut() -> js_sys::Promise>::new(move || {
        let rx = rx.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            rx.lock().await.close();
            Ok(step(JsValue::UNDEFINED, true))
        })
    });
    let this = js_sys::Function::new_no_args("return this");
    let set = |k: &JsValue, v: &JsValue| {
        js_sys::Reflect::set(&iter, k, v).map_err(|_| JsError::new("cannot build the event iterator"))
    };
    set(&"next".into(), next.into_js_value().unchecked_ref())?;
    set(&"return".into(), ret.into_js_value().unchecked_ref())?;
    set(&js_sys::Symbol::async_iterator().into(), this.unchecked_ref())?;
    Ok(iter.into())
}

fn web_sys_console_error(e: &JsValue) {
    let console = js_sys::Reflect::get(&js_sys::global(), &"console".into()).ok();
    if let Some(error) = console.and_then(|c| js_sys::Reflect::get(&c, &"error".into()).ok()) {
        if let Some(f) = error.dyn_ref::<js_sys::Function>() {
            let _ = f.call2(&JsValue::NULL, &"DarkSwap event callback threw:".into(), e);
        }
    }
}
