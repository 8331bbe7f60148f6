//! Order propagation on N nodes in one process on loopback: darkswap-p2p against plain
//! rust-libp2p gossipsub (strict signing, default message ids) on the same topology, rate and
//! message size, in the same run.
//!
//! ```bash
//! cargo bench -p darkswap-p2p --bench propagation                  # 20 nodes, 200 orders/s, 10 s
//! cargo bench -p darkswap-p2p --bench propagation -- --nodes 50    # the propagation goal's setting
//! cargo bench -p darkswap-p2p --bench propagation -- --only darkswap --secs 5
//! cargo bench -p darkswap-p2p --bench propagation -- --nodes 50 --mesh 3,2,4
//!                                   # gossipsub mesh degree n,low,high for both stacks (6,5,12)
//! cargo bench -p darkswap-p2p --bench propagation -- --nodes 50 --settle 45
//!                                   # count deliveries until 45 s pass without one (default 3 s),
//!                                   # so anti-entropy repairs (every 20 s) are counted too
//! cargo bench -p darkswap-p2p --bench propagation -- --nodes 50 --per-core
//!                                   # each node on one of N one-worker runtimes (one per
//!                                   # core) instead of all on one runtime with N workers
//! cargo bench -p darkswap-p2p --bench propagation -- --nodes 50 --mesh 3,2,4 --show-mesh
//!                                   # after the run, each darkswap node's deliveries and the
//!                                   # nodes in its gossipsub mesh
//! cargo bench -p darkswap-p2p --bench propagation -- --only bare --nodes 50 --rate 200 --per-core
//!                                   # the floor of the stack: bare gossipsub on TCP + Noise +
//!                                   # Yamux, no signatures, no validation, no application
//! cargo bench -p darkswap-p2p --bench propagation -- --only signed --nodes 50 --rate 200 --per-core
//!                                   # bare plus signed orders, each checked once per node
//!                                   # before gossipsub forwards it
//! cargo bench -p darkswap-p2p --bench propagation -- --only flood --nodes 10 --rate 100
//!                                   # honest orders quiet, then with two flooding peers
//! cargo bench -p darkswap-p2p --bench propagation -- --only metrics --nodes 10 --rounds 3
//! cargo bench -p darkswap-p2p --bench propagation -- --nodes 50 --rate 200 --per-core --repeat 5
//!                                   # the goal row over five darkswap runs: median p99, range,
//!                                   # and in how many runs the goal held (bare, signed alike)
//!                                   # darkswap with metrics on and off, alternating; medians, CPU
//! cargo bench -p darkswap-p2p --bench propagation -- --nodes 50 --rate 200 --per-core --timeline
//!                                   # also the p99 per 250 ms of publishing and the longest
//!                                   # stretches without a delivery: backlog or bursts?
//! cargo bench -p darkswap-p2p --bench propagation -- --capacity --nodes 50 --per-core
//!                                   # each stack's highest rate with 100% delivered and p99 <=
//!                                   # 50 ms (darkswap, the signed floor, plain), and the ratios
//! scripts/setup-js-bench.sh && cargo bench -p darkswap-p2p --bench propagation -- --js
//!                                   # js-libp2p too (benches/js/propagation.mjs, pinned Node.js)
//! ```
//!
//! Prints p50/p99/max delivery latency (publish call to `MessageReceived` on each other node),
//! delivery ratio, achieved publish rate, and the ratio between the two stacks.

use darkswap::{run_darkswap, run_darkswap_with};
use harness::{cpu_time, drain, latencies, publish_loop, Received, Report, Sent};
use std::{sync::Arc, time::Duration};

#[path = "propagation/capacity.rs"]
mod capacity;
#[path = "propagation/darkswap.rs"]
mod darkswap;
#[path = "propagation/harness.rs"]
mod harness;
#[path = "js/run.rs"]
mod js;
#[path = "propagation/plain.rs"]
mod plain;
#[path = "../tests/integration/support/raw_gossip.rs"]
mod raw_gossip;
#[path = "propagation/signed.rs"]
mod signed;

#[derive(Clone, Debug)]
struct Opts {
    nodes: usize,
    rate: u64,
    secs: u64,
    size: usize,
    only: Option<String>,
    rounds: usize,
    /// Runs behind each goal row (`--repeat N`; the median and the range are reported).
    repeat: usize,
    /// How long the drain waits without a new delivery before it stops counting.
    settle: Duration,
    /// Gossipsub mesh degree (n, low, high), the same for every stack.
    mesh: (usize, usize, usize),
    /// Whether js-libp2p runs too (after the Rust stacks, with the same settings).
    js: bool,
    /// Where the nodes' tasks run (`--per-core`: one one-worker runtime per core).
    layout: Layout,
    /// Whether to print each darkswap node's mesh peers and deliveries after the run.
    show_mesh: bool,
    /// Whether to print the p99 per 250 ms of publishing and the longest delivery gaps.
    timeline: bool,
    /// Whether to search each stack's capacity instead of one run at `rate`.
    capacity: bool,
}

/// Where the nodes' tasks run. `Shared` is one multi-threaded tokio runtime for every node, so
/// a node's tasks move between cores; `PerCore` pins each node to one of N runtimes of one
/// worker thread each (one per core), as N processes or js-libp2p's worker threads would.
#[derive(Clone, Debug)]
enum Layout {
    Shared,
    PerCore(Arc<Vec<tokio::runtime::Handle>>),
}

impl Layout {
    fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let handles = (0..cores)
            .map(|k| {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::Builder::new()
                    .name(format!("node-core-{k}"))
                    .spawn(move || {
                        // tokio's default (multi-threaded) scheduler with one worker: what an
                        // application's `#[tokio::main]` gets, including its habit of running a
                        // task woken by the running one next (a node's events reach the
                        // application a scheduling turn sooner than on the current-thread one).
                        let rt =
                            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
                        tx.send(rt.handle().clone()).unwrap();
                        // Runs the nodes' tasks until the process exits.
                        rt.block_on(std::future::pending::<()>());
                    })
                    .unwrap();
                rx.recv().unwrap()
            })
            .collect();
        Layout::PerCore(Arc::new(handles))
    }

    /// Spawns node `i`'s setup on its runtime; tasks it spawns stay there.
    fn spawn<F>(&self, i: usize, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Layout::Shared => tokio::spawn(f),
            Layout::PerCore(rts) => rts[i % rts.len()].spawn(f),
        }
    }

    fn describe(&self) -> String {
        match self {
            Layout::Shared => "one multi-threaded runtime".into(),
            Layout::PerCore(rts) => format!("{} one-worker runtimes, one per core", rts.len()),
        }
    }
}

fn opts() -> Opts {
    let mut o = Opts {
        nodes: 20,
        rate: 200,
        secs: 10,
        size: 1024,
        only: None,
        rounds: 3,
        repeat: 1,
        settle: Duration::from_secs(3),
        mesh: (6, 5, 12),
        js: false,
        layout: Layout::Shared,
        show_mesh: false,
        timeline: false,
        capacity: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--nodes" => o.nodes = val().parse().expect("--nodes N"),
            "--rate" => o.rate = val().parse().expect("--rate ORDERS_PER_SEC"),
            "--secs" => o.secs = val().parse().expect("--secs SECONDS"),
            "--size" => o.size = val().parse().expect("--size BYTES"),
            "--only" => o.only = Some(val()),
            "--js" => o.js = true,
            "--per-core" => o.layout = Layout::per_core(),
            "--show-mesh" => o.show_mesh = true,
            "--timeline" => o.timeline = true,
            "--capacity" => o.capacity = true,
            "--rounds" => o.rounds = val().parse().expect("--rounds N"),
            "--repeat" => o.repeat = val().parse().expect("--repeat N"),
            "--settle" => o.settle = Duration::from_secs(val().parse().expect("--settle SECONDS")),
            "--mesh" => {
                let v: Vec<usize> = val().split(',').map(|x| x.parse().expect("--mesh N,LOW,HIGH")).collect();
                o.mesh = (v[0], v[1], v[2]);
            }
            _ => {} // cargo bench passes --bench
        }
    }
    o
}

/// Neighbours of node i: a ring plus two chords, so every node has degree ~6 and the graph
/// has a small diameter, as a gossip overlay would.
fn edges(n: usize) -> Vec<(usize, usize)> {
    let mut e = Vec::new();
    for i in 0..n {
        for step in [1, 3, 7] {
            if step < n {
                let j = (i + step) % n;
                if !e.contains(&(j, i)) && !e.contains(&(i, j)) {
                    e.push((i, j));
                }
            }
        }
    }
    e
}

/// The propagation goal's row: p99 <= 50 ms with every order delivered. Over several runs
/// (`--repeat N`) it gives the median run's p99, the range, and in how many runs the goal held,
/// since at this load one run's p99 follows the machine's speed of the moment.
fn goal_row(o: &Opts, figure: &str, runs: &[Report], notes: &str) {
    let met = |r: &Report| r.pct(0.99) <= 50.0 && r.ratio() >= 1.0;
    let mut p99: Vec<f64> = runs.iter().map(|r| r.pct(0.99)).collect();
    p99.sort_by(f64::total_cmp);
    let median = p99[p99.len() / 2];
    let delivered = runs.iter().map(Report::ratio).fold(f64::MAX, f64::min);
    let cpu: Vec<f64> = runs.iter().map(|r| r.cpu.as_secs_f64()).collect();
    let (cpu_lo, cpu_hi) = cpu.iter().fold((f64::MAX, f64::MIN), |(l, h), c| (l.min(*c), h.max(*c)));
    let held = runs.iter().filter(|r| met(r)).count();
    let (value, verdict, runs_note) = if runs.len() == 1 {
        let v = format!("{median:.2} ms, {:.2}% delivered, {cpu_lo:.1} s CPU", delivered * 100.0);
        (v, if held == 1 { "met" } else { "not met" }.to_string(), String::new())
    } else {
        let v = format!(
            "{median:.2} ms (median of {} runs; {:.1}-{:.1}), {:.2}% delivered at least, {cpu_lo:.1}-{cpu_hi:.1} s CPU",
            runs.len(),
            p99[0],
            p99[p99.len() - 1],
            delivered * 100.0
        );
        let verdict = format!("met in {held} of {} runs", runs.len());
        (
            v,
            verdict,
            format!("p99 of each run: {}; ", p99.iter().map(|p| format!("{p:.1}")).collect::<Vec<_>>().join(", ")),
        )
    };
    println!(
        "BENCH | {figure}, {} nodes at {} orders/s (p99) | {value} | <= 50 ms, 100% | {:.2}x the goal ({verdict}) | {runs_note}{notes}mesh {:?}, {} |",
        o.nodes,
        o.rate,
        median / 50.0,
        o.mesh,
        o.layout.describe()
    );
}

/// `first` and `--repeat` - 1 more runs of the same setting.
fn repeated(o: &Opts, first: Report, mut again: impl FnMut() -> Report) -> Vec<Report> {
    let mut runs = vec![first];
    for _ in 1..o.repeat.max(1) {
        let r = again();
        r.print();
        runs.push(r);
    }
    runs
}

fn main() {
    // RUST_LOG (e.g. libp2p_gossipsub=warn) shows what the nodes log; nothing by default.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "order propagation: {} nodes, {} orders/s for {} s, ~{} B messages, mesh {:?}, {} cores, nodes on {}",
        o.nodes,
        o.rate,
        o.secs,
        o.size,
        o.mesh,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        o.layout.describe()
    );
    if o.capacity {
        capacity::capacity(&rt, &o);
        return;
    }
    let only = |s: &str| o.only.as_deref().is_none_or(|x| x == s);
    let on = (only("darkswap") || only("metrics")).then(|| rt.block_on(run_darkswap(&o, true)));
    if let Some(r) = &on {
        r.print();
    }
    // The same network with its metrics recording switched off: what metrics cost. Runs
    // alternate (on, off, on, off, ...) so drift hits both alike; medians over the rounds.
    if let (Some(first), true) = (&on, o.only.as_deref() == Some("metrics")) {
        let (mut ons, mut offs) = (vec![(first.pct(0.5), first.pct(0.99), first.cpu.as_secs_f64())], Vec::new());
        for round in 0..o.rounds.max(1) {
            let off = rt.block_on(run_darkswap(&o, false));
            off.print();
            offs.push((off.pct(0.5), off.pct(0.99), off.cpu.as_secs_f64()));
            if round + 1 < o.rounds.max(1) {
                let again = rt.block_on(run_darkswap(&o, true));
                again.print();
                ons.push((again.pct(0.5), again.pct(0.99), again.cpu.as_secs_f64()));
            }
        }
        let median = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
            let mut x: Vec<f64> = v.iter().map(f).collect();
            x.sort_by(|a, b| a.total_cmp(b));
            x[x.len() / 2]
        };
        let spread = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
            let x: Vec<f64> = v.iter().map(f).collect();
            let (lo, hi) = x.iter().fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
            format!("{lo:.1}-{hi:.1}")
        };
        type Pick = fn(&(f64, f64, f64)) -> f64;
        let (p50, p99, cpu): (Pick, Pick, Pick) = (|r| r.0, |r| r.1, |r| r.2);
        println!(
            "metrics on  ({} runs): p50 {:.2} ms (range {}), p99 {:.2} ms (range {}), CPU {:.2} s (range {})",
            ons.len(),
            median(&ons, p50),
            spread(&ons, p50),
            median(&ons, p99),
            spread(&ons, p99),
            median(&ons, cpu),
            spread(&ons, cpu)
        );
        println!(
            "metrics off ({} runs): p50 {:.2} ms (range {}), p99 {:.2} ms (range {}), CPU {:.2} s (range {})",
            offs.len(),
            median(&offs, p50),
            spread(&offs, p50),
            median(&offs, p99),
            spread(&offs, p99),
            median(&offs, cpu),
            spread(&offs, cpu)
        );
        println!(
            "metrics cost, off/on medians (goal >= 0.97): CPU {:.3}x  p50 latency {:.3}x  p99 latency {:.3}x",
            median(&offs, cpu) / median(&ons, cpu),
            median(&offs, p50) / median(&ons, p50),
            median(&offs, p99) / median(&ons, p99)
        );
        println!(
            "BENCH | Metrics cost (off/on, medians) | CPU {:.3}x, p50 {:.3}x, p99 {:.3}x | >= 0.97 | {:.3}x CPU | {} nodes, {} rounds each; p50 ranges on {} / off {} ms |",
            median(&offs, cpu) / median(&ons, cpu),
            median(&offs, p50) / median(&ons, p50),
            median(&offs, p99) / median(&ons, p99),
            median(&offs, cpu) / median(&ons, cpu),
            o.nodes,
            ons.len(),
            spread(&ons, p50),
            spread(&offs, p50)
        );
    }
    if o.only.as_deref() == Some("flood") {
        let quiet = rt.block_on(run_darkswap_with(&o, true, 0));
        quiet.print();
        let flood = rt.block_on(run_darkswap_with(&o, true, 2));
        flood.print();
        let ratio = flood.pct(0.99) / quiet.pct(0.99);
        println!(
            "under flood: delivery {:.2}% of honest orders, p99 {:.2} ms vs {:.2} ms quiet: {ratio:.2}x   (goals: 100%, <= 2x)",
            flood.ratio() * 100.0,
            flood.pct(0.99),
            quiet.pct(0.99)
        );
        println!(
            "BENCH | Honest order delivery under a flood (p99) | {:.2}% delivered, p99 {:.2} ms (quiet {:.2} ms) | 100%, p99 <= 2x quiet | {ratio:.2}x | {} nodes, {} orders/s, 2 flooders |",
            flood.ratio() * 100.0,
            flood.pct(0.99),
            quiet.pct(0.99),
            o.nodes,
            o.rate
        );
    }
    let plain = only("plain").then(|| rt.block_on(plain::run_plain(&o, plain::Flavour::Plain)));
    if let Some(p) = &plain {
        p.print();
    }
    // The floor of the stack: only on request, as it answers a question the other runs raise.
    if o.only.as_deref() == Some("bare") {
        let bare = rt.block_on(plain::run_plain(&o, plain::Flavour::Bare));
        bare.print();
        let runs = repeated(&o, bare, || rt.block_on(plain::run_plain(&o, plain::Flavour::Bare)));
        goal_row(&o, "Bare gossipsub floor", &runs, "the stack alone, no signatures or validation; ");
    }
    // The floor plus the signature check no signed order book can skip (see signed.rs).
    if o.only.as_deref() == Some("signed") {
        let signed = rt.block_on(plain::run_plain(&o, plain::Flavour::Signed));
        signed.print();
        let runs = repeated(&o, signed, || rt.block_on(plain::run_plain(&o, plain::Flavour::Signed)));
        goal_row(&o, "Signed gossipsub floor", &runs, "bare plus one signature check per order and node; ");
    }
    if let (Some(d), Some(p)) = (&on, &plain) {
        println!(
            "ratio darkswap/plain:  p50 {:.2}x  p99 {:.2}x  delivery {:.3}x  (lower latency is better)",
            d.pct(0.5) / p.pct(0.5),
            d.pct(0.99) / p.pct(0.99),
            d.ratio() / p.ratio()
        );
        println!(
            "BENCH | Order propagation, {} nodes at {} orders/s (p50) | {:.2} ms (plain rust-libp2p {:.2}; p99 {:.2} / {:.2}) | <= plain | {:.2}x plain | delivery {:.2}% / {:.2}%; mesh {:?}, {} |",
            o.nodes,
            o.rate,
            d.pct(0.5),
            p.pct(0.5),
            d.pct(0.99),
            p.pct(0.99),
            d.pct(0.5) / p.pct(0.5),
            d.ratio() * 100.0,
            p.ratio() * 100.0,
            o.mesh,
            o.layout.describe()
        );
    }
    // The propagation goal, judged on the darkswap run: p99 <= 50 ms with every order
    // delivered, at 50 nodes and 200 orders/s.
    if let (Some(d), true) = (&on, o.nodes >= 50 && o.rate >= 200) {
        let runs = repeated(&o, d.clone(), || rt.block_on(run_darkswap(&o, true)));
        goal_row(&o, "Order propagation goal", &runs, "");
    }
    if o.js {
        compare_js(&o, on.as_ref(), plain.as_ref());
    }
    rt.shutdown_timeout(Duration::from_secs(5));
}

/// js-libp2p on the same setting, after the Rust stacks, with the ratios against them.
fn compare_js(o: &Opts, darkswap: Option<&Report>, plain: Option<&Report>) {
    let args: Vec<String> = [
        ("--nodes", o.nodes.to_string()),
        ("--rate", o.rate.to_string()),
        ("--secs", o.secs.to_string()),
        ("--size", o.size.to_string()),
        ("--settle", o.settle.as_secs().to_string()),
        ("--mesh", format!("{},{},{}", o.mesh.0, o.mesh.1, o.mesh.2)),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    let js: js::Propagation = js::run("propagation.mjs", &args).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "js-libp2p ran its {} nodes on {} worker threads (Node.js runs JavaScript on one thread per worker); CPU {:.2} s",
        o.nodes, js.workers, js.cpu_s
    );
    if let Some(p) = plain {
        println!(
            "ratio plain rust-libp2p/js-libp2p:  p50 {:.3}x  p99 {:.3}x  delivery {:.3}x",
            p.pct(0.5) / js.p50_ms,
            p.pct(0.99) / js.p99_ms,
            p.ratio() / js.ratio()
        );
    }
    let Some(d) = darkswap else { return };
    println!(
        "ratio darkswap/js-libp2p:  p50 {}x  p99 {}x  delivery {:.3}x  CPU {:.3}x  (lower latency and CPU are better)",
        ratio(d.pct(0.5) / js.p50_ms),
        ratio(d.pct(0.99) / js.p99_ms),
        d.ratio() / js.ratio(),
        d.cpu.as_secs_f64() / js.cpu_s
    );
    println!(
        "BENCH | Order propagation vs js-libp2p, {} nodes at {} orders/s (p50) | {:.2} ms (js-libp2p {:.2}; p99 {:.2} / {:.2}) | <= js-libp2p | {}x js-libp2p | delivery {:.2}% / {:.2}%; CPU {:.1} s / {:.1} s |",
        o.nodes,
        o.rate,
        d.pct(0.5),
        js.p50_ms,
        d.pct(0.99),
        js.p99_ms,
        ratio(d.pct(0.5) / js.p50_ms),
        d.ratio() * 100.0,
        js.ratio() * 100.0,
        d.cpu.as_secs_f64(),
        js.cpu_s
    );
}

/// A ratio with two significant digits however small it is (0.00049 prints as 0.00049, not 0.000).
fn ratio(x: f64) -> String {
    let decimals = if x > 0.0 && x < 1.0 { (-x.log10()).ceil() as usize + 1 } else { 3 };
    format!("{x:.decimals$}")
}
