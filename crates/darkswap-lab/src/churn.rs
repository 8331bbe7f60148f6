//! The figures of the churn and partition scenarios: what restarts and a cut-off region cost
//! the order book. A restarted process has nothing but its key: whatever it holds afterwards
//! came from its peers.

use darkswap_lab::plan::{Plan, Record};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What one stack did under churn. Times in milliseconds of simulated time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChurnFigures {
    pub stack: String,
    pub nodes: usize,
    /// Processes started after a host's first.
    pub restarts: usize,
    /// Orders published (a maker that was down at its turn published nothing).
    pub orders: usize,
    /// Orders that some node lacked at the end, and the (node, order) pairs missing then.
    pub lost_orders: usize,
    pub missing: usize,
    /// Per restart, the time from the new process's start until it held every order published
    /// before it started: median, p99 and slowest over restarts, and restarts that never did.
    pub resync_p50: Option<u64>,
    pub resync_p99: Option<u64>,
    pub resync_max: Option<u64>,
    pub resync_never: usize,
    /// The time after the last restart (churn) or the heal (partition) until every node held
    /// every order (None: not within the run).
    pub consistent_after: Option<u64>,
}

fn pick(sorted: &[u64], q: f64) -> Option<u64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

/// The figures of a run whose disruption (the last restart, the heal) ended at
/// `last_restart_ms`.
pub fn analyse(plan: &Plan, logs: &[Vec<Record>], last_restart_ms: u64) -> ChurnFigures {
    let mut f = ChurnFigures { stack: plan.stack.name().into(), nodes: plan.hosts.len(), ..Default::default() };
    // Each host's lives: when each process started, and when it first held each order.
    let mut lives: Vec<Vec<(u64, HashMap<u64, u64>)>> = Vec::new();
    let mut published: HashMap<u64, u64> = HashMap::new();
    for log in logs {
        let mut host: Vec<(u64, HashMap<u64, u64>)> = Vec::new();
        for r in log {
            match r {
                Record::Start { t, .. } => host.push((*t, HashMap::new())),
                Record::Publish { t, tag } | Record::Receive { t, tag } => {
                    if let Record::Publish { .. } = r {
                        published.insert(*tag, *t);
                    }
                    if let Some((_, held)) = host.last_mut() {
                        held.entry(*tag).or_insert(*t);
                    }
                }
                _ => {}
            }
        }
        f.restarts += host.len().saturating_sub(1);
        lives.push(host);
    }
    f.orders = published.len();
    let complete = |held: &HashMap<u64, u64>, tags: &mut dyn Iterator<Item = &u64>| -> Option<u64> {
        tags.map(|tag| held.get(tag).copied()).try_fold(0, |latest, t| t.map(|t| latest.max(t)))
    };
    let mut resyncs = Vec::new();
    let mut lost: HashMap<u64, usize> = HashMap::new();
    let mut everyone_at: Option<u64> = Some(0);
    for host in &lives {
        for (start, held) in host.iter().skip(1) {
            let before = published.iter().filter(|(_, at)| **at < *start).map(|(tag, _)| tag);
            match complete(held, &mut before.into_iter()) {
                Some(t) => resyncs.push(t.saturating_sub(*start)),
                None => f.resync_never += 1,
            }
        }
        let Some((_, held)) = host.last() else { continue };
        for tag in published.keys().filter(|tag| !held.contains_key(tag)) {
            *lost.entry(*tag).or_default() += 1;
        }
        let done = complete(held, &mut published.keys());
        everyone_at = everyone_at.zip(done).map(|(a, b)| a.max(b));
    }
    f.lost_orders = lost.len();
    f.missing = lost.values().sum();
    resyncs.sort_unstable();
    f.resync_p50 = pick(&resyncs, 0.5);
    f.resync_p99 = pick(&resyncs, 0.99);
    f.resync_max = resyncs.last().copied();
    f.consistent_after = everyone_at.map(|t| t.saturating_sub(last_restart_ms));
    f
}

/// The report's rows for churn runs: a figure's name and its value per stack.
pub fn rows(stacks: &[ChurnFigures]) -> Vec<(String, Vec<String>)> {
    let ms = |v: Option<u64>| v.map_or("never".to_string(), |v| format!("{v} ms"));
    let row = |name: &str, f: &dyn Fn(&ChurnFigures) -> String| (name.to_string(), stacks.iter().map(f).collect());
    vec![
        row("nodes / restarts", &|f| format!("{} / {}", f.nodes, f.restarts)),
        row("orders published", &|f| f.orders.to_string()),
        row("orders some node lacked at the end", &|f| f.lost_orders.to_string()),
        row("(node, order) pairs missing at the end", &|f| f.missing.to_string()),
        row("restart to complete book: p50 / p99 / max", &|f| match f.restarts {
            0 => "-".into(),
            _ => format!("{} / {} / {}", ms(f.resync_p50), ms(f.resync_p99), ms(f.resync_max)),
        }),
        row("restarts that never completed their book", &|f| f.resync_never.to_string()),
        row("every node complete, after the last restart or the heal", &|f| ms(f.consistent_after)),
    ]
}
