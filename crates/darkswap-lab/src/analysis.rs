//! From the node logs of one run to its figures.

use darkswap_lab::{
    plan::{Plan, Record},
    topology::shortest_paths,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// What one stack did in one run. Times in milliseconds of simulated time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub stack: String,
    pub nodes: usize,
    /// Nodes alive when the orders went out (bootstrap nodes may have been stopped).
    pub live_nodes: usize,
    pub orders: usize,
    /// Deliveries made of those expected (each order to every live node but its maker).
    pub delivered: usize,
    pub expected: usize,
    /// Orders that reached every live node.
    pub complete_orders: usize,
    /// Per order, the time to reach 50%, 99% and 100% of live nodes (None if it never did),
    /// in ms: p50 and max over orders.
    pub t50_p50: Option<u64>,
    pub t99_p50: Option<u64>,
    pub t100_p50: Option<u64>,
    pub t100_max: Option<u64>,
    /// Delivery time over the topology's latency lower bound: p50 and p99 over deliveries.
    pub ratio_p50: f64,
    pub ratio_p99: f64,
    /// Duplicate gossip copies per first copy, over the order window.
    pub duplicates_per_delivery: f64,
    /// Bytes sent per order per node over the order window.
    pub bytes_per_order_node: f64,
    /// The same, per protocol (where the stack counts per protocol).
    pub bytes_by_protocol: BTreeMap<String, f64>,
    /// When every live node first held at least `target` peers (ms from the start).
    pub time_to_target: Option<u64>,
    /// When every live node's gossip mesh first held at least 4 peers.
    pub time_to_mesh: Option<u64>,
    /// Peers per node when the links were written down: min, median, max.
    pub degree_min: usize,
    pub degree_p50: usize,
    pub degree_max: usize,
    /// Diameter of the connection graph then (hops), None if it was not connected.
    pub diameter: Option<usize>,
    /// Every delivery's latency (ms), sorted: for the CDF.
    pub latencies: Vec<u64>,
}

fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

/// Computes the figures of a run from each host's log records (`logs[i]` is host `i`'s).
/// `alive_at_orders[i]` says whether host `i` was running when the orders went out.
pub fn analyse(plan: &Plan, logs: &[Vec<Record>], alive_at_orders: &[bool], target: usize) -> Figures {
    let n = plan.hosts.len();
    let live: Vec<usize> = (0..n).filter(|i| alive_at_orders[*i]).collect();
    let mut f = Figures {
        stack: plan.stack.name().into(),
        nodes: n,
        live_nodes: live.len(),
        orders: plan.publish.len(),
        ..Figures::default()
    };
    let paths = shortest_paths();
    let first_order = plan.publish.first().map(|p| p.0).unwrap_or(0);
    let last_order = plan.publish.last().map(|p| p.0).unwrap_or(0);

    // Deliveries.
    let mut published: HashMap<u64, (u64, u32)> = HashMap::new();
    let mut received: HashMap<u64, HashMap<usize, u64>> = HashMap::new();
    for (i, log) in logs.iter().enumerate() {
        for r in log {
            match r {
                Record::Publish { t, tag } => {
                    published.insert(*tag, (*t, i as u32));
                }
                Record::Receive { t, tag } => {
                    received.entry(*tag).or_default().entry(i).or_insert(*t);
                }
                _ => {}
            }
        }
    }
    let (mut t50, mut t99, mut t100) = (Vec::new(), Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for (_, maker, tag) in &plan.publish {
        let Some((at, _)) = published.get(tag) else { continue };
        let want: Vec<usize> = live.iter().copied().filter(|i| *i != *maker as usize).collect();
        f.expected += want.len();
        let got = received.get(tag);
        let mut times: Vec<u64> = want
            .iter()
            .filter_map(|i| {
                let t = got?.get(i)?.saturating_sub(*at);
                let bound = paths[plan.hosts[*maker as usize].region][plan.hosts[*i].region].max(1);
                ratios.push(t as f64 / f64::from(bound));
                Some(t)
            })
            .collect();
        times.sort_unstable();
        f.delivered += times.len();
        f.latencies.extend(&times);
        let reach = |share: f64| {
            let k = ((want.len() as f64) * share).ceil() as usize;
            (k >= 1 && times.len() >= k).then(|| times[k - 1])
        };
        t50.extend(reach(0.5));
        t99.extend(reach(0.99));
        if times.len() == want.len() {
            f.complete_orders += 1;
            t100.extend(times.last().copied());
        }
    }
    t50.sort_unstable();
    t99.sort_unstable();
    t100.sort_unstable();
    f.t50_p50 = percentile(&t50, 0.5);
    f.t99_p50 = percentile(&t99, 0.5);
    f.t100_p50 = percentile(&t100, 0.5);
    f.t100_max = (t100.len() == plan.publish.len()).then(|| t100.last().copied()).flatten();
    ratios.sort_by(|a, b| a.total_cmp(b));
    f.ratio_p50 = percentile(&ratios, 0.5).unwrap_or(0.0);
    f.ratio_p99 = percentile(&ratios, 0.99).unwrap_or(0.0);
    f.latencies.sort_unstable();

    // Counters over the order window: the last sample before it against the first after.
    let (mut dup, mut first, mut sent) = (0u64, 0u64, 0u64);
    let mut by_protocol: BTreeMap<String, u64> = BTreeMap::new();
    for i in &live {
        let samples: Vec<&Record> = logs[*i].iter().filter(|r| matches!(r, Record::Counters { .. })).collect();
        let t_of = |r: &Record| match r {
            Record::Counters { t, .. } => *t,
            _ => 0,
        };
        let before = samples.iter().rev().find(|s| t_of(s) <= first_order);
        let after = samples.iter().find(|s| t_of(s) >= last_order + 5_000).or(samples.last());
        if let (
            Some(Record::Counters { sent: s0, received_all: a0, received_first: f0, sent_by_protocol: p0, .. }),
            Some(Record::Counters { sent: s1, received_all: a1, received_first: f1, sent_by_protocol: p1, .. }),
        ) = (before.copied(), after.copied())
        {
            sent += s1.saturating_sub(*s0);
            let all = a1.saturating_sub(*a0);
            let firsts = f1.saturating_sub(*f0);
            dup += all.saturating_sub(firsts);
            first += firsts;
            for (proto, v) in p1 {
                *by_protocol.entry(proto.clone()).or_default() += v.saturating_sub(p0.get(proto).copied().unwrap_or(0));
            }
        }
    }
    let per = (f.orders.max(1) * live.len().max(1)) as f64;
    f.bytes_by_protocol = by_protocol.into_iter().map(|(k, v)| (k, v as f64 / per)).collect();
    f.duplicates_per_delivery = if first == 0 { 0.0 } else { dup as f64 / first as f64 };
    f.bytes_per_order_node = sent as f64 / (f.orders.max(1) * live.len().max(1)) as f64;

    // Peers over time: the first second at which every live node met the bar.
    let mut by_time: BTreeMap<u64, Vec<(usize, usize)>> = BTreeMap::new();
    for i in &live {
        for r in &logs[*i] {
            if let Record::Peers { t, n, mesh, .. } = r {
                by_time.entry(t / 1000).or_default().push((*n, *mesh));
            }
        }
    }
    let all_meet = |bar: &dyn Fn(&(usize, usize)) -> bool| {
        by_time.iter().find(|(_, v)| v.len() == live.len() && v.iter().all(bar)).map(|(s, _)| s * 1000)
    };
    f.time_to_target = all_meet(&|p| p.0 >= target);
    f.time_to_mesh = all_meet(&|p| p.1 >= 4);

    // The connection graph when the links were written down.
    let ids: HashMap<String, usize> = logs
        .iter()
        .enumerate()
        .flat_map(|(i, log)| {
            log.iter().filter_map(move |r| match r {
                Record::Start { peer, .. } => Some((peer.clone(), i)),
                _ => None,
            })
        })
        .collect();
    let mut adj: Vec<HashSet<usize>> = vec![HashSet::new(); n];
    for i in &live {
        if let Some(Record::Links { peers, .. }) = logs[*i].iter().find(|r| matches!(r, Record::Links { .. })) {
            for p in peers {
                if let Some(j) = ids.get(p).filter(|j| alive_at_orders[**j]) {
                    adj[*i].insert(*j);
                    adj[*j].insert(*i);
                }
            }
        }
    }
    let mut degrees: Vec<usize> = live.iter().map(|i| adj[*i].len()).collect();
    degrees.sort_unstable();
    f.degree_min = degrees.first().copied().unwrap_or(0);
    f.degree_p50 = percentile(&degrees, 0.5).unwrap_or(0);
    f.degree_max = degrees.last().copied().unwrap_or(0);
    f.diameter = diameter(&adj, &live);
    f
}

/// The longest shortest path between live nodes, or None if some are unreachable.
fn diameter(adj: &[HashSet<usize>], live: &[usize]) -> Option<usize> {
    let mut worst = 0;
    for s in live {
        let mut dist = vec![usize::MAX; adj.len()];
        dist[*s] = 0;
        let mut q = VecDeque::from([*s]);
        while let Some(u) = q.pop_front() {
            for v in &adj[u] {
                if dist[*v] == usize::MAX {
                    dist[*v] = dist[u] + 1;
                    q.push_back(*v);
                }
            }
        }
        for t in live {
            if dist[*t] == usize::MAX {
                return None;
            }
            worst = worst.max(dist[*t]);
        }
    }
    Some(worst)
}
