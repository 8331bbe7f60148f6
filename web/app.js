// The demo page: a DarkSwap node in the browser, bootstrapped to the node that serves this page.
import init, { DarkSwapNode } from "/pkg/darkswap_web.js";

const started = performance.now();
const $ = (sel) => document.querySelector(sel);
const short = (id) => (id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id);
const state = { node: null, trades: new Map(), firstOrderMs: null, signaling: null, marks: {} };
const mark = (name) => { state.marks[name] = performance.now() - started; };
// Read by tests and the benchmark; harmless for users.
window.darkswap = state;

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function showError(e) {
  const p = $("#error");
  p.hidden = false;
  p.textContent = String(e && e.message ? e.message : e);
}

function renderPeers() {
  const body = $("#peers tbody");
  body.replaceChildren();
  for (const c of state.node.connections()) {
    const tr = document.createElement("tr");
    tr.dataset.peer = c.peerId;
    tr.dataset.transport = c.transport;
    tr.append(cell(short(c.peerId)), cell(c.transport), cell(c.outbound ? "out" : "in"), cell(c.address, "address"));
    body.append(tr);
  }
  const online = body.children.length > 0;
  $("#status").textContent = online ? `online, ${body.children.length} connection(s)` : "offline";
  $("#status").className = `status ${online ? "online" : "offline"}`;
}

function renderOrders() {
  const orders = state.node.orders();
  const body = $("#orders tbody");
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const o of orders) {
    const tr = document.createElement("tr");
    tr.dataset.orderId = o.id;
    tr.dataset.maker = o.maker;
    if (o.maker === state.node.peerId) tr.className = "own";
    tr.append(cell(short(o.maker)), cell(o.side, `side-${o.side}`), cell(o.amount), cell(o.base), cell(o.price),
      cell(o.quote), cell(`${Math.max(0, Math.round(o.expiry - now))} s`));
    const td = document.createElement("td");
    const button = document.createElement("button");
    if (o.maker === state.node.peerId) {
      button.textContent = "Cancel";
      button.onclick = () => state.node.cancelOrder(o.id).then(renderOrders, showError);
    } else {
      button.textContent = "Take";
      button.onclick = () => take(o);
    }
    td.append(button);
    tr.append(td);
    body.append(tr);
  }
  $("#order-count").textContent = `${orders.length} live order(s)`;
  if (orders.length > 0 && state.firstOrderMs === null) state.firstOrderMs = performance.now() - started;
}

function renderTrades() {
  const body = $("#trades tbody");
  body.replaceChildren();
  for (const [id, t] of state.trades) {
    const tr = document.createElement("tr");
    tr.dataset.tradeId = id;
    tr.dataset.state = t.state;
    tr.append(cell(short(id)), cell(short(t.orderId)), cell(short(t.peerId)), cell(t.role), cell(t.amount), cell(t.state));
    const td = document.createElement("td");
    for (const [label, step, needs] of nextSteps(t)) {
      const input = needs ? document.createElement("input") : null;
      if (input) { input.placeholder = needs; input.name = needs; td.append(input); }
      const b = document.createElement("button");
      b.textContent = label;
      b.onclick = () => send(t, step, input && input.value.trim());
      td.append(b);
    }
    tr.append(td);
    body.append(tr);
  }
}

// What this side may send next, by role and state (the same rules the node enforces).
function nextSteps(t) {
  const terminal = ["completed", "rejected", "cancelled"].includes(t.state);
  if (terminal) return [];
  const steps = [];
  if (t.role === "maker" && t.state === "proposed") steps.push(["Accept", "accept"], ["Reject", "reject"]);
  if (t.role === "taker" && t.state === "accepted") steps.push(["Send PSBT", "psbt-offer", "psbtHex"]);
  if (t.role === "maker" && t.state === "psbt-offered") steps.push(["Send signed PSBT", "psbt-signed", "psbtHex"]);
  if (t.role === "taker" && t.state === "psbt-signed") steps.push(["Complete", "complete", "txid"]);
  steps.push(["Cancel", "cancel"]);
  return steps;
}

function refreshTrade(id) {
  const t = state.node.trade(id);
  if (t) state.trades.set(id, t);
  renderTrades();
}

// Trades go straight to the maker: over WebRTC through the signaling server when the maker is
// not connected yet (another browser, say). The serving node never carries them.
async function connectTo(peerId) {
  if (state.node.connections().some((c) => c.peerId === peerId)) return;
  if (!state.signaling) throw new Error(`not connected to ${peerId} and no signaling server to reach it`);
  await state.node.dial(`/webrtc/p2p/${peerId}`);
  renderPeers();
}

async function take(order) {
  try {
    await connectTo(order.maker);
    const id = await state.node.startTrade(order.id, order.amount);
    refreshTrade(id);
  } catch (e) { showError(e); }
}

async function send(t, step, value) {
  const msg = { tradeId: t.tradeId, orderId: t.orderId, step };
  if (step === "psbt-offer" || step === "psbt-signed") msg.psbtHex = value;
  if (step === "complete") msg.txid = value;
  if (step === "reject" || step === "cancel") msg.reason = "declined in the demo page";
  try {
    await state.node.sendTrade(t.peerId, msg);
    refreshTrade(t.tradeId);
  } catch (e) { showError(e); }
}

function onEvent(e) {
  console.debug("event", JSON.stringify(e));
  if (e.type === "peerConnected" || e.type === "peerDisconnected" || e.type === "connectedThroughRelay") renderPeers();
  if (e.type === "order" || e.type === "orderCancelled" || e.type === "tradeSettled") renderOrders();
  if (e.type === "trade") refreshTrade(e.tradeId);
}

// Loopback last: browsers only use it for WebRTC when told to, and the page's own host first.
function dialOrder(addrs) {
  const host = (a) => a.split("/")[2];
  const rank = (a) => (host(a) === location.hostname && !host(a).startsWith("127.") ? 0
    : a.includes("/webrtc-direct/") && !host(a).startsWith("127.") ? 1
    : a.includes("/webrtc-direct/") ? 2 : 3);
  return [...addrs].sort((a, b) => rank(a) - rank(b));
}

async function main() {
  await init();
  mark("wasm");
  const boot = await (await fetch("/bootstrap.json")).json();
  const params = new URLSearchParams(location.search);
  const addrs = dialOrder(boot.addrs);
  // ?relay=1: reserve a slot on the serving node (a relay), to be reachable through it.
  const relayPeers = params.get("relay") === "1" && boot.relay ? addrs.slice(0, 1) : [];
  // With a signaling server, other browsers reach this one directly at /webrtc/p2p/<peer id>.
  state.signaling = boot.signaling || null;
  const options = { relayPeers, connectionTimeoutMs: 10000 };
  if (state.signaling) options.signaling = state.signaling;
  state.node = await DarkSwapNode.start(options);
  mark("started");
  $("#peer-id").textContent = state.node.peerId;
  state.node.onEvent(onEvent);
  let connected = relayPeers.length > 0;
  for (const addr of relayPeers.length ? [] : addrs) {
    try {
      await state.node.dial(addr);
      mark("connected");
      connected = true;
      break;
    } catch (e) {
      console.warn(`dial ${addr} failed:`, e);
    }
  }
  if (!connected) showError(`could not reach the serving node at any of: ${addrs.join(", ")}`);
  renderPeers();
  renderOrders();
  setInterval(renderOrders, 1000);
}

$("#post-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = Object.fromEntries(new FormData(ev.target));
  form.ttl_secs = Number(form.ttl_secs);
  try {
    const o = await state.node.postOrder(form);
    $("#post-result").textContent = `posted ${short(o.id)}`;
    $("#post-result").dataset.orderId = o.id;
    renderOrders();
  } catch (e) { showError(e); }
});

main().catch(showError);
