// Real-browser tests of the darkswap-web package: headless Chromium (Debian's) drives the demo
// page served by real darkswap-node processes. Run by scripts/test-browser.sh inside a private
// network namespace, so nothing leaves the machine. Every test either passes or fails; none skips.
//
//   node web/tests/browser.test.mjs [test name ...]
//   node web/tests/browser.test.mjs --bench N      (page load to first order, N loads)
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import assert from "node:assert/strict";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const BIN = process.env.DARKSWAP_NODE_BIN || path.join(root, "target/debug/darkswap-node");
const ARTIFACTS = process.env.DARKSWAP_ARTIFACTS || path.join(here, "artifacts");
const TIMEOUT = 30_000;
const nodes = [];

/** Starts darkswap-node with `args`; resolves once it printed its api and web addresses. */
function startNode(name, args) {
  const child = spawn(BIN, ["--api", "127.0.0.1:0", "--web", "127.0.0.1:0", "--metrics", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" },
  });
  nodes.push(child);
  const node = { name, child, listen: [], stderr: [] };
  createInterface({ input: child.stderr }).on("line", (l) => {
    node.stderr.push(l);
    if (node.stderr.length > 200) node.stderr.shift();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${node.stderr.join("\n")}`)), TIMEOUT);
    child.on("exit", (code) => reject(new Error(`${name} exited with ${code}:\n${node.stderr.join("\n")}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const [key, ...rest] = line.split(": ");
      const value = rest.join(": ");
      if (key === "peer id") node.peerId = value;
      if (key === "listening") node.listen.push(value);
      if (key === "api") node.api = value;
      if (key === "signaling") node.signaling = value;
      if (key === "web") {
        node.web = value;
        clearTimeout(timer);
        resolve(node);
      }
    });
  });
}

async function api(node, method, route, body) {
  const res = await fetch(`${node.api}${route}`, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} on ${node.name}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function until(what, check, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync",
      // WebRTC between processes of one machine: loopback and plain host candidates.
      "--use-fake-ui-for-media-stream", "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
    ],
  });
}

/** Opens the demo page of `node` and waits until its browser node has a peer id. */
async function openPage(browser, node, query = "") {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const log = [];
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  page.log = log;
  await page.goto(`${node.web}${query}`);
  await page.waitForFunction(() => window.darkswap && window.darkswap.node, null, { timeout: TIMEOUT });
  page.peerId = await page.evaluate(() => window.darkswap.node.peerId);
  return page;
}

const tests = {
  // The page dials the serving node by WebRTC-direct, shows the order the native side published,
  // and an order posted through the page's form reaches the native node. Screenshot kept.
  async "webrtc-direct: orders both ways between the page and a native node"(browser) {
    const native = await startNode("native", [
      "--listen", "/ip4/0.0.0.0/udp/0/webrtc-direct", "--listen", "/ip4/127.0.0.1/tcp/0/ws",
    ]);
    const posted = await api(native, "POST", "/orders", {
      side: "sell", base: "rune:840000:1", quote: "btc", amount: "5000", price: "2500", ttl_secs: 3600,
    });
    const page = await openPage(browser, native);
    try {
      await page.waitForSelector(`#orders tr[data-order-id="${posted.id}"]`, { timeout: TIMEOUT });
      const transport = await page.getAttribute(`#peers tr[data-peer="${native.peerId}"]`, "data-transport");
      assert.equal(transport, "webrtc-direct");
      const firstOrderMs = await page.evaluate(() => window.darkswap.firstOrderMs);
      console.log(`bench: page load to first order visible: ${firstOrderMs.toFixed(0)} ms`);

      await page.selectOption("#post-form select[name=side]", "buy");
      await page.fill("#post-form input[name=amount]", "7000");
      await page.fill("#post-form input[name=price]", "2400");
      await page.click("#post-form button[type=submit]");
      const id = await (await page.waitForSelector("#post-result[data-order-id]", { timeout: TIMEOUT }))
        .getAttribute("data-order-id");
      const seen = await until("the page's order at the native node", async () =>
        (await api(native, "GET", "/orders")).find((o) => o.id === id));
      assert.equal(seen.maker, page.peerId);
      assert.equal(seen.side, "buy");
      assert.equal(seen.amount, "7000");

      await page.waitForSelector(`#orders tr[data-order-id="${id}"]`, { timeout: TIMEOUT });

      // The browser's WebSocket transport reaches the same node too.
      const ws = native.listen.find((a) => a.includes("/ws/"));
      assert.equal(await page.evaluate((addr) => window.darkswap.node.dial(addr), ws), native.peerId);
      const transports = await page.evaluate(() => window.darkswap.node.connections().map((c) => c.transport));
      assert.ok(transports.includes("websocket") && transports.includes("webrtc-direct"), transports.join(","));
      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = path.join(ARTIFACTS, "order-book.png");
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`artifact: ${shot}`);
    } catch (e) {
      console.error(page.log.join("\n"));
      throw e;
    }
  },

  // Two pages meet through the node's signaling server and connect browser<->browser over
  // WebRTC: an order goes from one to the other, and the trade negotiation runs directly between
  // them (end-to-end encrypted; the native node is not on the path and holds no trade state).
  async "signaling: two pages connect browser-to-browser and negotiate a trade"(browser) {
    const native = await startNode("native", [
      "--listen", "/ip4/0.0.0.0/udp/0/webrtc-direct", "--signaling-server", "127.0.0.1:0",
    ]);
    const a = await openPage(browser, native);
    const b = await openPage(browser, native);
    try {
      // Both pages online first: an order gossiped while the other page is still joining can miss
      // it (it syncs before the node has the order, and joins the mesh after it was forwarded).
      for (const page of [a, b]) {
        await page.waitForSelector(`#peers tr[data-peer="${native.peerId}"]`, { timeout: TIMEOUT });
      }
      await a.selectOption("#post-form select[name=side]", "sell");
      await a.fill("#post-form input[name=amount]", "4200");
      await a.click("#post-form button[type=submit]");
      const id = await (await a.waitForSelector("#post-result[data-order-id]", { timeout: TIMEOUT }))
        .getAttribute("data-order-id");
      await b.waitForSelector(`#orders tr[data-order-id="${id}"]`, { timeout: TIMEOUT });

      // Taking the order dials the maker over WebRTC through the signaling server, then sends
      // the intent straight to it.
      await b.click(`#orders tr[data-order-id="${id}"] button`);
      await b.waitForSelector(`#peers tr[data-peer="${a.peerId}"][data-transport="webrtc"]`, { timeout: TIMEOUT });
      await a.waitForSelector(`#peers tr[data-peer="${b.peerId}"][data-transport="webrtc"]`, { timeout: TIMEOUT });
      const proposed = await a.waitForSelector('#trades tr[data-state="proposed"]', { timeout: TIMEOUT });
      const tradeId = await proposed.getAttribute("data-trade-id");
      await a.click(`#trades tr[data-trade-id="${tradeId}"] button:text("Accept")`);
      await b.waitForSelector(`#trades tr[data-trade-id="${tradeId}"][data-state="accepted"]`, { timeout: TIMEOUT });

      // The native node relayed nothing: it only has its own connections to the two pages.
      const conns = await api(native, "GET", "/connections");
      assert.ok(conns.every((c) => !c.relayed), JSON.stringify(conns));
      assert.deepEqual(new Set(conns.map((c) => c.peer_id)), new Set([a.peerId, b.peerId]));
      const status = await api(native, "GET", "/status");
      assert.equal(status.peers.length, 2);
    } catch (e) {
      console.error("page a:\n" + a.log.join("\n"));
      console.error("page b:\n" + b.log.join("\n"));
      throw e;
    }
  },

  // A native node and pages meet through the signaling server and connect over WebRTC both
  // ways: a page dials the native node (the page offers, the native stack answers), and the
  // native node dials another page (the native stack offers, the browser answers). Each dial
  // returns once Noise over the data channel proved the peer id and Yamux runs on it.
  async "signaling: a native node and pages connect over WebRTC both ways"(browser) {
    const hub = await startNode("hub", [
      "--listen", "/ip4/0.0.0.0/udp/0/webrtc-direct", "--listen", "/ip4/127.0.0.1/tcp/0",
      "--signaling-server", "127.0.0.1:0",
    ]);
    const tcp = hub.listen.find((a) => a.includes("/tcp/"));
    const native = await startNode("native", [
      "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", tcp, "--webrtc-signaling", hub.signaling,
    ]);
    const a = await openPage(browser, hub);
    const b = await openPage(browser, hub);
    try {
      const dialed = await a.evaluate((id) => window.darkswap.node.dial(`/webrtc/p2p/${id}`), native.peerId);
      assert.equal(dialed, native.peerId);
      await a.waitForSelector(`#peers tr[data-peer="${native.peerId}"][data-transport="webrtc"]`, { timeout: TIMEOUT });
      await until("the page's WebRTC connection at the native node", async () =>
        (await api(native, "GET", "/connections")).find((c) => c.peer_id === a.peerId && c.addr.includes("/webrtc")));

      const back = await api(native, "POST", "/dial", { addr: `/webrtc/p2p/${b.peerId}` });
      assert.equal(back.peer_id, b.peerId);
      await b.waitForSelector(`#peers tr[data-peer="${native.peerId}"][data-transport="webrtc"]`, { timeout: TIMEOUT });

      // An order the native node posts reaches both pages.
      const order = await api(native, "POST", "/orders", {
        side: "sell", base: "rune:840000:1", quote: "btc", amount: "3100", price: "2500", ttl_secs: 600,
      });
      for (const page of [a, b]) {
        await page.waitForSelector(`#orders tr[data-order-id="${order.id}"]`, { timeout: TIMEOUT });
      }
    } catch (e) {
      console.error("page a:\n" + a.log.join("\n"));
      console.error("page b:\n" + b.log.join("\n"));
      console.error("native:\n" + native.stderr.join("\n"));
      throw e;
    }
  },

  // A browser reachable only through a relay (it cannot listen itself) is reached by a native
  // peer that dials the relay circuit; an order then travels over the circuit.
  async "relay: a native peer reaches a browser through a relay"(browser) {
    const relay = await startNode("relay", [
      "--relay", "--listen", "/ip4/0.0.0.0/udp/0/webrtc-direct", "--listen", "/ip4/127.0.0.1/tcp/0",
    ]);
    const other = await startNode("other", ["--listen", "/ip4/127.0.0.1/tcp/0"]);
    const page = await openPage(browser, relay, "?relay=1");
    try {
      const circuit = await page.waitForFunction(
        () => window.darkswap.node.listenAddrs().find((a) => a.includes("/p2p-circuit")), null, { timeout: TIMEOUT });
      assert.ok(await circuit.jsonValue());
      const relayTcp = relay.listen.find((a) => a.includes("/tcp/"));
      const target = `${relayTcp}/p2p-circuit/p2p/${page.peerId}`;
      const dialed = await api(other, "POST", "/dial", { addr: target });
      assert.equal(dialed.peer_id, page.peerId);
      await page.waitForSelector(`#peers tr[data-peer="${other.peerId}"][data-transport="relay"]`, { timeout: TIMEOUT });

      // The JS API's async iterator sees the order too (`for await`, then `return` closes it).
      // The iterator is running in the page before the order is posted (else the order could
      // arrive first and never be seen by it), and waiting for it is bounded.
      await page.evaluate((maker) => {
        window.iterated = (async () => {
          for await (const e of window.darkswap.node.events()) {
            if (e.type === "order" && e.order.maker === maker) return e.order.id;
          }
          return null;
        })();
      }, other.peerId);
      const iterated = page.evaluate(
        (ms) => Promise.race([window.iterated, new Promise((_, no) => setTimeout(() => no(new Error("iterator saw no order")), ms))]),
        TIMEOUT,
      );
      const order = await api(other, "POST", "/orders", {
        side: "buy", base: "btc", quote: "rune:840000:1", amount: "100000", price: "1", ttl_secs: 600,
      });
      await page.waitForSelector(`#orders tr[data-order-id="${order.id}"]`, { timeout: TIMEOUT });
      assert.equal(await iterated, order.id);
      const conns = await api(other, "GET", "/connections");
      assert.ok(conns.some((c) => c.peer_id === page.peerId && c.relayed), JSON.stringify(conns));
    } catch (e) {
      console.error(page.log.join("\n"));
      console.error("page connections:", JSON.stringify(await page.evaluate(() => window.darkswap.node.connections())));
      console.error("relay:\n" + relay.stderr.join("\n"));
      throw e;
    }
  },
};

// `--bench N`: loads the page N times against one native node holding one order and prints the
// time from navigation to the order on screen (p50, p90, min, max), and the wasm size.
async function bench(runs) {
  const native = await startNode("native", ["--listen", "/ip4/0.0.0.0/udp/0/webrtc-direct"]);
  await api(native, "POST", "/orders", {
    side: "sell", base: "rune:840000:1", quote: "btc", amount: "5000", price: "2500", ttl_secs: 3600,
  });
  const browser = await launch();
  const times = [];
  const marks = [];
  try {
    for (let i = 0; i < runs; i++) {
      const page = await browser.newPage();
      await page.goto(native.web);
      await page.waitForSelector("#orders tr[data-order-id]", { timeout: TIMEOUT });
      times.push(await page.evaluate(() => window.darkswap.firstOrderMs));
      marks.push(await page.evaluate(() => window.darkswap.marks));
      await page.close();
    }
  } finally {
    await browser.close();
  }
  times.sort((x, y) => x - y);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  console.log(`page load to first order visible over ${runs} loads: p50 ${at(0.5).toFixed(0)} ms, ` +
    `p90 ${at(0.9).toFixed(0)} ms, min ${times[0].toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms`);
  const median = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)].toFixed(0);
  console.log(`  medians: wasm loaded ${median(marks.map((m) => m.wasm))} ms, node started ` +
    `${median(marks.map((m) => m.started))} ms, connected by WebRTC-direct ${median(marks.map((m) => m.connected))} ms`);
  const { statSync, readFileSync } = await import("node:fs");
  const { gzipSync } = await import("node:zlib");
  const wasm = path.join(root, "web/pkg/darkswap_web_bg.wasm");
  const raw = statSync(wasm).size;
  const gz = gzipSync(readFileSync(wasm), { level: 9 }).length;
  console.log(`wasm: ${raw} bytes raw, ${gz} bytes gzipped`);
  console.log(`BENCH | Browser: page load to first order (p50) | ${at(0.5).toFixed(0)} ms (p90 ${at(0.9).toFixed(0)}) | ` +
    `no goal set | - | ${runs} loads, headless Chromium; wasm ${raw} B raw, ${gz} B gzipped |`);
}

async function main() {
  if (process.argv[2] === "--bench") {
    await bench(Number(process.argv[3] || 20));
    process.exit(0);
  }
  const only = process.argv.slice(2);
  const selected = Object.entries(tests).filter(([name]) => only.length === 0 || only.some((o) => name.includes(o)));
  assert.ok(selected.length > 0, `no test matches ${only.join(" ")}`);
  let failed = 0;
  for (const [name, run] of selected) {
    const browser = await launch();
    const t0 = Date.now();
    try {
      await run(browser);
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack || e}`);
      for (const n of nodes) console.log(`--- ${n.spawnargs?.slice(1).join(" ")}`);
    } finally {
      await browser.close();
      for (const n of nodes.splice(0)) n.kill("SIGKILL");
    }
  }
  console.log(`${selected.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

process.on("exit", () => nodes.forEach((n) => n.kill("SIGKILL")));
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
