// A direct js-libp2p connection (TCP, Noise, Yamux) on loopback: the js-libp2p side of
// `cargo bench -p darkswap-p2p --bench network -- --js`, which runs this script with its own
// options and prints it next to darkswap and plain rust-libp2p.
//
//   node network.mjs --megabytes 256 --rounds 7 --dials 50 --idle 500
//
// Throughput: a fresh pair of nodes per round; one opens a stream to the other and writes
// `--megabytes` in 64 KiB writes, waiting for the stream to drain when its buffer is full; the
// time runs until the reader has counted every byte. Median over `--rounds`.
// Setup: a fresh dialer node per dial; the time from `dial` to the upgraded connection
// (Noise and Yamux negotiated). p50/p99 over `--dials`.
// Memory: a node in its own process (this script with `--listener`) with the services the plain
// rust-libp2p node of the Rust bench runs (gossipsub subscribed to the order-book topic, Kademlia,
// identify, ping) accepts 8 warm-up connections, then `--idle` more from bare dialers that stay
// idle; its resident memory growth over those, divided by `--idle`. V8 collects garbage when it
// likes, so the listener runs a full collection before each reading. The last line is a JSON
// report.

import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

const PROTOCOL = '/darkswap-bench/bulk/1'

function opts(argv) {
  const o = { megabytes: 256, rounds: 7, dials: 50, idle: 500, listener: false }
  for (let i = 0; i < argv.length; i++) {
    const v = () => Number(argv[++i])
    switch (argv[i]) {
      case '--megabytes': o.megabytes = v(); break
      case '--rounds': o.rounds = v(); break
      case '--dials': o.dials = v(); break
      case '--idle': o.idle = v(); break
      case '--listener': o.listener = true; break
      default: throw new Error(`unknown option ${argv[i]}`)
    }
  }
  return o
}

// js-libp2p closes inbound connections beyond 5 a second from one host by default; every dial
// here comes from 127.0.0.1, so the bench lifts that limit (the Rust nodes have none this low).
const node = () =>
  createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1_000_000 }
  })

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
const pct = (sorted, p) => sorted[Math.round((sorted.length - 1) * p)]

async function throughput(bytes) {
  const [reader, writer] = await Promise.all([node(), node()])
  let done
  const finished = new Promise((resolve) => (done = resolve))
  await reader.handle(PROTOCOL, (stream) => {
    let got = 0
    stream.addEventListener('message', (evt) => {
      got += evt.data.byteLength
      if (got >= bytes) done()
    })
  })
  const stream = await writer.dialProtocol(reader.getMultiaddrs()[0], PROTOCOL)
  const chunk = new Uint8Array(64 * 1024).fill(7)
  const start = process.hrtime.bigint()
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await finished
  const secs = Number(process.hrtime.bigint() - start) / 1e9
  await Promise.all([reader.stop(), writer.stop()])
  return bytes / secs / 1e6
}

async function setup(dials) {
  const target = await node()
  const addr = target.getMultiaddrs()[0]
  const times = []
  for (let i = 0; i < dials; i++) {
    const dialer = await node()
    const start = process.hrtime.bigint()
    await dialer.dial(addr)
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
    await dialer.stop()
  }
  await target.stop()
  return times.sort((a, b) => a - b)
}

/** The memory listener: prints its address, then its resident KiB after a GC for each stdin line. */
async function listener() {
  const { identify } = await import('@libp2p/identify')
  const { ping } = await import('@libp2p/ping')
  const { gossipsub } = await import('@libp2p/gossipsub')
  const { kadDHT } = await import('@libp2p/kad-dht')
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      inboundConnectionThreshold: 1_000_000,
      maxConnections: 100_000,
      maxIncomingPendingConnections: 1_000
    },
    services: { identify: identify(), ping: ping(), pubsub: gossipsub(), dht: kadDHT({ clientMode: false }) }
  })
  n.services.pubsub.subscribe('darkswap/orderbook/v1')
  console.log(n.getMultiaddrs()[0].toString())
  for await (const _ of createInterface({ input: process.stdin })) {
    globalThis.gc()
    const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1])
    console.log(kib)
  }
  process.exit(0)
}

async function memory(idle) {
  const child = spawn(process.execPath, ['--expose-gc', new URL(import.meta.url).pathname, '--listener'], {
    stdio: ['pipe', 'pipe', 'inherit']
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async () => (await lines.next()).value
  const target = multiaddr(await next())
  const rss = async () => {
    child.stdin.write('rss\n')
    return Number(await next())
  }
  const dialers = []
  const connect = async () => {
    const d = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    await d.dial(target)
    dialers.push(d)
  }
  for (let i = 0; i < 8; i++) await connect()
  await sleep(2000)
  const before = await rss()
  for (let i = 0; i < idle; i++) await connect()
  // Let the listener finish what each connection starts (identify, gossip subscriptions).
  await sleep(5000)
  const after = await rss()
  child.kill()
  await Promise.all(dialers.map((d) => d.stop()))
  return (after - before) / idle
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const o = opts(process.argv.slice(2))
if (o.listener) await listener()
const rates = []
for (let r = 0; r < o.rounds; r++) rates.push(await throughput(o.megabytes * 1024 * 1024))
const setupMs = await setup(o.dials)
const memoryKib = await memory(o.idle)
const report = {
  throughput_mb_s: median(rates),
  throughput_min: Math.min(...rates),
  throughput_max: Math.max(...rates),
  setup_p50_ms: pct(setupMs, 0.5),
  setup_p99_ms: pct(setupMs, 0.99),
  memory_kib: memoryKib
}
console.log(
  `js-libp2p: bulk ${report.throughput_mb_s.toFixed(0)} MB/s (median of ${o.rounds}, ${report.throughput_min.toFixed(0)}-${report.throughput_max.toFixed(0)}); ` +
    `setup p50 ${report.setup_p50_ms.toFixed(2)} ms, p99 ${report.setup_p99_ms.toFixed(2)} ms over ${o.dials} dials; ` +
    `${memoryKib.toFixed(1)} KiB per idle connection over ${o.idle}`
)
console.log(`JSREPORT ${JSON.stringify(report)}`)
process.exit(0)
