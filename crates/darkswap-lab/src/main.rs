//! `darkswap-lab`: DarkSwap's network on a simulated internet.
//!
//! `darkswap-lab run propagation --nodes 100` places real node processes (this binary's `node`
//! subcommand) over eight regions with measured latencies and two link classes, runs them in
//! Shadow once per stack (DarkSwap, and plain rust-libp2p on the same topology and schedule),
//! and prints every figure beside the reference's; `report.md`, `cdf.svg` and `figures.json` go
//! to the output directory. docs/LAB.md explains each figure.

mod analysis;
mod churn;
mod node;
mod plain;
mod report;
mod resync;
mod shadow;

use clap::{Parser, Subcommand, ValueEnum};
use darkswap_lab::{
    plan::{Partition, Plan, Record, Resync, Stack},
    topology,
};
use darkswap_p2p::order_book::OrderBookLimits;
use std::path::PathBuf;

#[derive(Parser)]
#[command(version, about = "DarkSwap's network lab: real node processes on a simulated internet (Shadow)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Nodes start from the bootstrap nodes, which then stop; orders go out from random nodes.
    Propagation,
    /// Orders go out while a share of the nodes restarts every minute with nothing but its key
    /// (the bootstrap nodes stay).
    Churn,
    /// Orders go out while one region is cut off from the rest for a while (the bootstrap
    /// nodes stay).
    Partition,
    /// Every node holds a large book: a newcomer joins with nothing, and a node away for a
    /// while comes back to a book that changed (DarkSwap only: the reference has no book).
    Resync,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a scenario in Shadow and reports.
    Run {
        scenario: Scenario,
        /// Simulated nodes (bootstrap nodes included).
        #[arg(long, default_value_t = 100)]
        nodes: u32,
        /// Bootstrap nodes every other node starts from.
        #[arg(long, default_value_t = 3)]
        bootstraps: u32,
        /// Orders published, one every `--order-every-ms`.
        #[arg(long, default_value_t = 20)]
        orders: u32,
        #[arg(long, default_value_t = 500)]
        order_every_ms: u64,
        /// Seed of the placement, the schedule and the simulation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stacks to run.
        #[arg(long, value_delimiter = ',', default_values_t = [Stack::Darkswap, Stack::Plain], value_enum)]
        stacks: Vec<Stack>,
        /// Keep the bootstrap nodes running (by default they stop once the network formed).
        #[arg(long)]
        keep_bootstraps: bool,
        /// DarkSwap's outbound peer target and peer limit.
        #[arg(long, default_value_t = 8)]
        target_outbound: usize,
        #[arg(long, default_value_t = 40)]
        max_peers: usize,
        /// Churn: minutes of restarts, and the share of nodes restarted in each.
        #[arg(long, default_value_t = 10)]
        minutes: u32,
        #[arg(long, default_value_t = 10)]
        churn_percent: u32,
        /// Partition: the region cut off (an index into the regions of docs/LAB.md) and for
        /// how long.
        #[arg(long, default_value_t = 2)]
        region: usize,
        #[arg(long, default_value_t = 60)]
        cut_seconds: u64,
        /// Resync: orders in the book, the share of it published while the returner is away,
        /// and for how long it is away.
        #[arg(long, default_value_t = 10_000)]
        book: u32,
        #[arg(long, default_value_t = 1.0)]
        changed_percent: f64,
        #[arg(long, default_value_t = 10)]
        away_minutes: u64,
        /// Where to write the configuration, logs and report.
        #[arg(long, default_value = "target/lab")]
        out: PathBuf,
        /// The Shadow binary.
        #[arg(long, env = "DARKSWAP_SHADOW", default_value = "shadow")]
        shadow: PathBuf,
    },
    /// One node process of a run (started by Shadow).
    Node {
        #[arg(long)]
        plan: PathBuf,
        #[arg(long)]
        id: u32,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Cmd::Node { plan, id } => {
            let plan: Plan = serde_json::from_slice(&std::fs::read(&plan)?)?;
            // Logs on stderr, filtered by RUST_LOG (the lab sets it from DARKSWAP_LAB_LOG).
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .init();
            // Shadow gives each process one CPU.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            match plan.stack {
                Stack::Darkswap => rt.block_on(node::run(plan, id)),
                Stack::Plain => rt.block_on(plain::run(plan, id)),
            }
        }
        Cmd::Run {
            scenario: Scenario::Partition,
            nodes,
            bootstraps,
            orders,
            seed,
            stacks,
            target_outbound,
            max_peers,
            region,
            cut_seconds,
            out,
            shadow,
            ..
        } => {
            let lab = Lab::new(&out, "partition", nodes, seed, shadow)?;
            let hosts = topology::place(nodes, bootstraps, seed);
            // The cut starts at 70 s; orders go out evenly from 40 s until 30 s after it heals;
            // the run ends 90 s after the heal.
            let cut = Partition { region, from_ms: 70_000, to_ms: 70_000 + cut_seconds * 1000 };
            let window = cut.to_ms + 30_000 - 40_000;
            let publish = topology::schedule(&hosts, orders, 40_000, window / u64::from(orders.max(1)), seed);
            let lives = topology::join_times(&hosts)
                .into_iter()
                .map(|start_ms| vec![topology::Life { start_ms, stop_ms: None }])
                .collect();
            let timing = shadow::Timing { lives, end_ms: cut.to_ms + 90_000 };
            let inside = hosts.iter().filter(|h| h.region == region).count();
            let base = Plan::new(hosts, publish, cut.from_ms, target_outbound, max_peers).with_partition(cut);
            let figures =
                lab.run(&stacks, &base, &timing, "partition", |p, logs| churn::analyse(p, logs, cut.to_ms))?;
            let title = format!(
                "Partition, {nodes} nodes, region {region} ({inside} nodes) cut off for {cut_seconds} s, seed {seed}"
            );
            report_recovery(&lab.dir, &title, &figures)
        }
        Cmd::Run {
            scenario: Scenario::Resync,
            nodes,
            bootstraps,
            seed,
            target_outbound,
            max_peers,
            book,
            changed_percent,
            away_minutes,
            out,
            shadow,
            ..
        } => {
            let lab = Lab::new(&out, "resync", nodes, seed, shadow)?;
            let hosts = topology::place(nodes, bootstraps, seed);
            let (newcomer, returner) = (nodes - 1, nodes - 2);
            let book_file = lab.dir.join("book.bin");
            let payload = 8;
            eprintln!("lab: signing {book} orders...");
            let order_bytes = resync::write_book(&book_file, book, payload, seed)?;
            // Nodes join over the first 10 s holding the book; the newcomer joins at 60 s; the
            // returner is away from 120 s for `away_minutes`, while the others publish the
            // changed orders; the run ends 90 s after its return.
            let away_from_ms = 120_000;
            let away_to_ms = away_from_ms + away_minutes * 60_000;
            let changed = (f64::from(book) * changed_percent / 100.0).round().max(1.0) as u32;
            let max_orders = (book as usize + changed as usize).max(OrderBookLimits::default().max_orders);
            let resync = Resync { book: book_file, newcomer, returner, away_from_ms, away_to_ms, max_orders };
            let makers: Vec<_> = hosts.iter().filter(|h| h.id != returner).cloned().collect();
            let window = away_to_ms - away_from_ms - 20_000;
            let publish =
                topology::schedule(&makers, changed, away_from_ms + 10_000, window / u64::from(changed), seed);
            let lives = topology::join_times(&hosts)
                .into_iter()
                .zip(&hosts)
                .map(|(start_ms, h)| {
                    let start_ms = if h.id == newcomer { 60_000 } else { start_ms };
                    vec![topology::Life { start_ms, stop_ms: None }]
                })
                .collect();
            let timing = shadow::Timing { lives, end_ms: away_to_ms + 90_000 };
            let base =
                Plan { resync: Some(resync.clone()), ..Plan::new(hosts, publish, 38_000, target_outbound, max_peers) };
            let figures = lab.run(&[Stack::Darkswap], &base, &timing, "resync", |p, logs| {
                resync::analyse(p, logs, &resync, book as usize, order_bytes)
            })?;
            let figures = figures.into_iter().next().ok_or("no run")?;
            let title = format!(
                "Resync, {nodes} nodes, a book of {book} orders, {changed} published while one node was away {away_minutes} min, seed {seed}"
            );
            let rows = resync::rows(&figures);
            println!("{}", report::table_text(&["darkswap"], &rows));
            std::fs::write(lab.dir.join("report.md"), report::table_markdown(&title, &["darkswap"], &rows))?;
            std::fs::write(lab.dir.join("figures.json"), serde_json::to_vec_pretty(&figures)?)?;
            let _ = std::fs::remove_file(lab.dir.join("book.bin"));
            eprintln!("lab: report and figures in {}", lab.dir.display());
            Ok(())
        }
        Cmd::Run {
            scenario: Scenario::Churn,
            nodes,
            bootstraps,
            orders,
            seed,
            stacks,
            target_outbound,
            max_peers,
            minutes,
            churn_percent,
            out,
            shadow,
            ..
        } => {
            let lab = Lab::new(&out, "churn", nodes, seed, shadow)?;
            let hosts = topology::place(nodes, bootstraps, seed);
            // Nodes join over the first 10 s; from 40 s, orders go out evenly over the churn
            // minutes while nodes restart; a minute after the last restart the run ends.
            let (from, window) = (40_000, u64::from(minutes) * 60_000);
            let publish = topology::schedule(&hosts, orders, from, window / u64::from(orders.max(1)), seed);
            let lives =
                topology::churn(&hosts, &topology::join_times(&hosts), churn_percent, from, minutes, 5_000, seed);
            let last_restart = lives.iter().flat_map(|l| l.iter().skip(1).map(|l| l.start_ms)).max().unwrap_or(from);
            let timing = shadow::Timing { lives, end_ms: from + window + 60_000 };
            let base = Plan::new(hosts, publish, from, target_outbound, max_peers);
            let figures = lab.run(&stacks, &base, &timing, "churn", |p, logs| churn::analyse(p, logs, last_restart))?;
            let title = format!(
                "Churn, {nodes} nodes, {churn_percent}% restarting per minute for {minutes} minutes, seed {seed}"
            );
            report_recovery(&lab.dir, &title, &figures)
        }
        Cmd::Run {
            scenario: Scenario::Propagation,
            nodes,
            bootstraps,
            orders,
            order_every_ms,
            seed,
            stacks,
            keep_bootstraps,
            target_outbound,
            max_peers,
            out,
            shadow,
            ..
        } => {
            let lab = Lab::new(&out, "propagation", nodes, seed, shadow)?;
            let hosts = topology::place(nodes, bootstraps, seed);
            // Nodes join over the first 10 s; bootstrap nodes stop at 35 s; orders from 40 s.
            let (links_at, orders_at) = (38_000, 40_000);
            let publish = topology::schedule(&hosts, orders, orders_at, order_every_ms, seed);
            let end_ms = orders_at + u64::from(orders) * order_every_ms + 20_000;
            let lives = topology::join_times(&hosts)
                .into_iter()
                .zip(&hosts)
                .map(|(start_ms, h)| {
                    vec![topology::Life { start_ms, stop_ms: (h.bootstrap && !keep_bootstraps).then_some(35_000) }]
                })
                .collect();
            let timing = shadow::Timing { lives, end_ms };
            let alive: Vec<bool> = timing.lives.iter().map(|l| l.iter().all(|l| l.stop_ms.is_none())).collect();
            let base = Plan::new(hosts, publish, links_at, target_outbound, max_peers);
            let figures = lab.run(&stacks, &base, &timing, "propagation", |p, logs| {
                analysis::analyse(p, logs, &alive, target_outbound)
            })?;
            let title = format!("Propagation, {nodes} nodes, seed {seed}");
            println!("{}", report::text(&figures));
            for row in report::bench_rows(nodes, seed, &figures) {
                println!("{row}");
            }
            std::fs::write(lab.dir.join("report.md"), report::markdown(&title, &figures))?;
            std::fs::write(lab.dir.join("figures.json"), serde_json::to_vec_pretty(&figures)?)?;
            report::cdf_svg(&lab.dir.join("cdf.svg"), &title, &figures)?;
            eprintln!("lab: report, plot and figures in {}", lab.dir.display());
            Ok(())
        }
    }
}

/// Prints and writes the report of a churn or partition run.
fn report_recovery(
    dir: &std::path::Path,
    title: &str,
    figures: &[churn::ChurnFigures],
) -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<&str> = figures.iter().map(|f| f.stack.as_str()).collect();
    let rows = churn::rows(figures);
    println!("{}", report::table_text(&names, &rows));
    std::fs::write(dir.join("report.md"), report::table_markdown(title, &names, &rows))?;
    std::fs::write(dir.join("figures.json"), serde_json::to_vec_pretty(figures)?)?;
    eprintln!("lab: report and figures in {}", dir.display());
    Ok(())
}

/// One invocation's run directory, this binary (the node processes), Shadow, and the seed.
struct Lab {
    dir: PathBuf,
    exe: PathBuf,
    shadow: PathBuf,
    seed: u64,
}

impl Lab {
    /// Creates `<out>/<scenario>-<nodes>-seed<seed>/` with the network graph in it.
    fn new(
        out: &std::path::Path,
        scenario: &str,
        nodes: u32,
        seed: u64,
        shadow: PathBuf,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = out.join(format!("{scenario}-{nodes}-seed{seed}"));
        std::fs::create_dir_all(&dir)?;
        let dir = dir.canonicalize()?;
        std::fs::write(dir.join("graph.gml"), topology::gml())?;
        Ok(Self { dir, exe: std::env::current_exe()?, shadow, seed })
    }

    /// Runs `base` once per stack in Shadow and analyses each run's logs.
    fn run<T>(
        &self,
        stacks: &[Stack],
        base: &Plan,
        timing: &shadow::Timing,
        scenario: &str,
        analyse: impl Fn(&Plan, &[Vec<Record>]) -> T,
    ) -> Result<Vec<T>, Box<dyn std::error::Error>> {
        let mut figures = Vec::new();
        for stack in stacks {
            let plan = Plan { stack: *stack, ..base.clone() };
            let started = std::time::Instant::now();
            let (n, secs) = (plan.hosts.len(), timing.end_ms / 1000);
            eprintln!("lab: {n} nodes of {} in Shadow, {scenario} ({secs} simulated s)...", stack.name());
            let logs = shadow::run(&self.shadow, &self.exe, &self.dir, &plan, timing, self.seed)?;
            eprintln!("lab: {} done in {:.1} s of wall time", stack.name(), started.elapsed().as_secs_f64());
            figures.push(analyse(&plan, &logs));
        }
        Ok(figures)
    }
}
