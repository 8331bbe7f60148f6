// Order propagation on N js-libp2p nodes in one process on loopback: the js-libp2p side of
// `cargo bench -p darkswap-p2p --bench propagation -- --js`, which runs this script with its own
// options and prints the three stacks side by side.
//
//   node propagation.mjs --nodes 20 --rate 200 --secs 10 --size 1024 --settle 3 --mesh 6,5,12
//
// The setting mirrors the Rust bench's plain rust-libp2p run: TCP + Noise + Yamux, gossipsub
// with strict signing and default message ids, heartbeat 700 ms, the same mesh degree, the same
// topology (a ring plus chords of 3 and 7) and the same publisher order (message k from node
// 7k mod N). Node.js runs JavaScript on one thread per worker, so the nodes are spread over one
// worker thread per core (`--workers`, default: the core count), as the Rust runtime spreads its
// tasks over one thread per core. Latency is from the publish call to the message event on each
// other node, on the process-wide monotonic clock. The last line is a JSON report.

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import os from 'node:os'

const TOPIC = 'darkswap/orderbook/v1'

function opts(argv) {
  const o = { nodes: 20, rate: 200, secs: 10, size: 1024, settle: 3, mesh: [6, 5, 12], workers: os.availableParallelism() }
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i]
    switch (argv[i]) {
      case '--nodes': o.nodes = Number(v()); break
      case '--rate': o.rate = Number(v()); break
      case '--secs': o.secs = Number(v()); break
      case '--size': o.size = Number(v()); break
      case '--settle': o.settle = Number(v()); break
      case '--mesh': o.mesh = v().split(',').map(Number); break
      case '--workers': o.workers = Number(v()); break
      default: throw new Error(`unknown option ${argv[i]}`)
    }
  }
  return o
}

/** Neighbours: a ring plus chords of 3 and 7, each pair once (as `edges` in propagation.rs). */
function edges(n) {
  const e = []
  const has = (a, b) => e.some(([x, y]) => (x === a && y === b) || (x === b && y === a))
  for (let i = 0; i < n; i++) {
    for (const step of [1, 3, 7]) {
      if (step < n) {
        const j = (i + step) % n
        if (!has(i, j)) e.push([i, j])
      }
    }
  }
  return e
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------- worker: hosts some nodes

async function worker() {
  const { createLibp2p } = await import('libp2p')
  const { tcp } = await import('@libp2p/tcp')
  const { noise } = await import('@chainsafe/libp2p-noise')
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const { identify } = await import('@libp2p/identify')
  const { gossipsub } = await import('@libp2p/gossipsub')
  const { multiaddr } = await import('@multiformats/multiaddr')

  const { indexes, o, counter } = workerData
  const delivered = new Int32Array(counter)
  const nodes = new Map()
  const sent = [] // [k, t]
  const received = [] // [k, t]
  for (const i of indexes) {
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        pubsub: gossipsub({
          D: o.mesh[0],
          Dlo: o.mesh[1],
          Dhi: o.mesh[2],
          heartbeatInterval: 700,
          maxInboundDataLength: 64 * 1024,
          emitSelf: false
        })
      }
    })
    node.services.pubsub.subscribe(TOPIC)
    node.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== TOPIC) return
      const t = process.hrtime.bigint()
      const d = evt.detail.data
      received.push([Buffer.from(d.buffer, d.byteOffset, 8).readBigUInt64BE(0), t])
      Atomics.add(delivered, 0, 1)
    })
    nodes.set(i, node)
  }
  parentPort.on('message', async (m) => {
    switch (m.type) {
      case 'dial':
        nodes.get(m.from).dial(multiaddr(m.addr)).catch((e) => console.error(`dial ${m.from}: ${e.message}`))
        break
      case 'mesh': {
        let min = Infinity
        for (const node of nodes.values()) min = Math.min(min, node.services.pubsub.getMeshPeers(TOPIC).length)
        parentPort.postMessage({ type: 'mesh', min })
        break
      }
      case 'publish': {
        const data = new Uint8Array(o.size).fill(0xab)
        new DataView(data.buffer).setBigUint64(0, BigInt(m.k))
        sent.push([BigInt(m.k), process.hrtime.bigint()])
        nodes.get(m.node).services.pubsub.publish(TOPIC, data).catch(() => {})
        break
      }
      case 'report':
        parentPort.postMessage({ type: 'report', sent, received })
        break
      case 'stop':
        await Promise.all([...nodes.values()].map((n) => n.stop()))
        parentPort.postMessage({ type: 'stopped' })
        break
    }
  })
  parentPort.postMessage({
    type: 'addrs',
    addrs: [...nodes].map(([i, n]) => [i, n.getMultiaddrs()[0].toString()])
  })
}

// ---------------------------------------------------------------- main: drives the run

function ask(w, msg, type) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m.type === type) {
        w.off('message', on)
        resolve(m)
      }
    }
    w.on('message', on)
    w.postMessage(msg)
  })
}

async function main() {
  const o = opts(process.argv.slice(2))
  const nWorkers = Math.max(1, Math.min(o.workers, o.nodes))
  const counter = new SharedArrayBuffer(4)
  const delivered = new Int32Array(counter)
  const owner = (i) => i % nWorkers
  const workers = []
  const addrs = new Array(o.nodes)
  await Promise.all(
    Array.from({ length: nWorkers }, (_, w) => {
      const indexes = [...Array(o.nodes).keys()].filter((i) => owner(i) === w)
      const worker = new Worker(new URL(import.meta.url), { workerData: { indexes, o, counter } })
      worker.on('error', (e) => {
        console.error(`worker ${w}: ${e.stack ?? e}`)
        process.exit(1)
      })
      workers.push(worker)
      return new Promise((resolve) =>
        worker.once('message', (m) => {
          for (const [i, a] of m.addrs) addrs[i] = a
          resolve()
        })
      )
    })
  )
  for (const [i, j] of edges(o.nodes)) workers[owner(i)].postMessage({ type: 'dial', from: i, addr: addrs[j] })
  const want = Math.min(o.mesh[1], 3)
  const meshDeadline = Date.now() + 60_000
  for (;;) {
    const mins = await Promise.all(workers.map((w) => ask(w, { type: 'mesh' }, 'mesh')))
    if (mins.every((m) => m.min >= want)) break
    if (Date.now() > meshDeadline) throw new Error('meshes did not form within 60 s')
    await sleep(50)
  }

  // Publish at the rate, catching up in bursts when a tick is late (as tokio's Burst does).
  const total = o.rate * o.secs
  const cpu0 = process.cpuUsage()
  const start = process.hrtime.bigint()
  const interval = 1e9 / o.rate
  let k = 0
  while (k < total) {
    const due = Math.min(total, Math.floor(Number(process.hrtime.bigint() - start) / interval) + 1)
    for (; k < due; k++) {
      const node = (k * 7) % o.nodes
      workers[owner(node)].postMessage({ type: 'publish', node, k })
    }
    await sleep(1)
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9

  // Drain: until all arrived, or nothing new for `settle` seconds, or 60 s (settle + 30) passed.
  const expected = total * (o.nodes - 1)
  const drainStart = Date.now()
  let last = -1
  let lastChange = Date.now()
  for (;;) {
    await sleep(250)
    const now = Atomics.load(delivered, 0)
    if (now >= expected || Date.now() - drainStart > Math.max(60, o.settle + 30) * 1000) break
    if (now !== last) {
      last = now
      lastChange = Date.now()
    } else if (Date.now() - lastChange > o.settle * 1000) break
  }
  const cpu = process.cpuUsage(cpu0)

  const sentAt = new Map()
  const receipts = []
  for (const w of workers) {
    const r = await ask(w, { type: 'report' }, 'report')
    for (const [key, t] of r.sent) sentAt.set(key, t)
    receipts.push(...r.received)
  }
  const lat = receipts
    .filter(([key]) => sentAt.has(key))
    .map(([key, t]) => Number(t - sentAt.get(key)) / 1e3)
    .sort((a, b) => a - b)
  const pct = (p) => (lat.length ? lat[Math.round((lat.length - 1) * p)] / 1e3 : NaN)
  const report = {
    name: 'js-libp2p',
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
    max_ms: pct(1),
    delivered: lat.length,
    expected,
    published: total,
    elapsed_s: elapsed,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    workers: nWorkers
  }
  console.log(
    `js-libp2p (${nWorkers} workers)     p50 ${report.p50_ms.toFixed(2)} ms  p99 ${report.p99_ms.toFixed(2)} ms  ` +
      `max ${report.max_ms.toFixed(2)} ms  delivered ${lat.length}/${expected} (${((100 * lat.length) / expected).toFixed(2)}%)  ` +
      `published ${(total / elapsed).toFixed(1)} msg/s  CPU ${report.cpu_s.toFixed(2)} s`
  )
  await Promise.all(workers.map((w) => ask(w, { type: 'stop' }, 'stopped')))
  await Promise.all(workers.map((w) => w.terminate()))
  console.log(`JSREPORT ${JSON.stringify(report)}`)
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e.stack ?? e)
    process.exit(1)
  })
} else {
  worker().catch((e) => {
    console.error(e.stack ?? e)
    process.exit(1)
  })
}
