//! Capacity (`--capacity`): for each stack, the highest order rate at which every order reaches
//! every node with p99 <= 50 ms, found by doubling the rate from 25 orders/s until a run fails,
//! then halving the gap until it is within an eighth of the rate. The stacks' probes are
//! interleaved (one probe of each stack per round), so a drift in the machine's speed during the
//! sitting reaches all of them alike. Absolute rates follow the machine; the ratios are the figure.

use super::{
    darkswap::run_darkswap,
    harness::Report,
    plain::{run_plain, Flavour},
    Opts,
};

/// The first rate probed.
const START: u64 = 25;
/// No stack is pushed past this rate.
const CEILING: u64 = 3200;
/// The latency bound a run must meet, in ms.
const P99_MS: f64 = 50.0;

#[derive(Clone, Copy)]
enum Stack {
    Darkswap,
    Signed,
    Plain,
}

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Stack::Darkswap => "darkswap",
            Stack::Signed => "signed floor",
            Stack::Plain => "plain rust-libp2p",
        }
    }

    async fn run(self, o: &Opts) -> Report {
        match self {
            Stack::Darkswap => run_darkswap(o, true).await,
            Stack::Signed => run_plain(o, Flavour::Signed).await,
            Stack::Plain => run_plain(o, Flavour::Plain).await,
        }
    }
}

/// One stack's search: the highest rate met, the lowest failed, and every probe.
struct Search {
    stack: Stack,
    met: u64,
    failed: Option<u64>,
    probes: Vec<(u64, bool, f64, f64)>,
}

impl Search {
    /// The next rate to probe, or `None` once the capacity is pinned down.
    fn next(&self) -> Option<u64> {
        match self.failed {
            None if self.met == 0 => Some(START),
            None if self.met >= CEILING => None,
            None => Some((self.met * 2).min(CEILING)),
            Some(failed) if self.met == 0 => (failed > 1).then_some(failed / 2),
            Some(failed) => {
                let gap = failed - self.met;
                (gap > (self.met / 8).max(1)).then_some(self.met + gap / 2)
            }
        }
    }

    fn record(&mut self, rate: u64, r: &Report) {
        let ok = r.ratio() >= 1.0 && r.pct(0.99) <= P99_MS;
        self.probes.push((rate, ok, r.pct(0.99), r.ratio() * 100.0));
        if ok {
            self.met = self.met.max(rate);
        } else {
            self.failed = Some(self.failed.map_or(rate, |f| f.min(rate)));
        }
    }

    fn probes(&self) -> String {
        let probe = |(rate, ok, p99, pct): &(u64, bool, f64, f64)| {
            format!("{rate}{} ({p99:.0} ms, {pct:.1}%)", if *ok { "" } else { " x" })
        };
        self.probes.iter().map(probe).collect::<Vec<_>>().join(", ")
    }
}

/// Runs the three searches interleaved and prints each capacity, the ratios and a BENCH row.
pub fn capacity(rt: &tokio::runtime::Runtime, o: &Opts) {
    let mut searches: Vec<Search> = [Stack::Darkswap, Stack::Signed, Stack::Plain]
        .into_iter()
        .map(|stack| Search { stack, met: 0, failed: None, probes: Vec::new() })
        .collect();
    while searches.iter().any(|s| s.next().is_some()) {
        for s in searches.iter_mut() {
            let Some(rate) = s.next() else { continue };
            let probe = Opts { rate, ..o.clone() };
            let report = rt.block_on(s.stack.run(&probe));
            println!(
                "{:<18} at {rate:>5} orders/s: p99 {:>9.2} ms, {:.2}% delivered",
                s.stack.name(),
                report.pct(0.99),
                report.ratio() * 100.0
            );
            s.record(rate, &report);
        }
    }
    for s in &searches {
        println!("capacity {:<18} {:>5} orders/s  probes: {}", s.stack.name(), s.met, s.probes());
    }
    let (ours, signed, plain) = (searches[0].met as f64, searches[1].met as f64, searches[2].met as f64);
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}x", a / b) } else { "unbounded".into() };
    println!(
        "BENCH | Capacity, {} nodes (orders/s with 100% delivered and p99 <= {P99_MS} ms) | {ours:.0} (signed floor {signed:.0}, plain rust-libp2p {plain:.0}) | >= 4x plain, >= 0.9x signed | {} plain, {} signed | {} s per probe, one probe a rate; {} |",
        o.nodes,
        ratio(ours, plain),
        ratio(ours, signed),
        o.secs,
        o.layout.describe()
    );
}
