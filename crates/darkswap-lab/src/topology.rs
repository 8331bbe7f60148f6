//! The simulated internet: regions with measured one-way latencies between them, two link
//! classes, and the hosts placed on them from a seed. The same seed gives the same network.

use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Regions, weighted by how many nodes they hold (a public blockchain's node census, as the
/// libp2p gossipsub benchmark uses).
pub const REGIONS: [(&str, u32); 8] = [
    ("australia", 290),
    ("europe", 5599),
    ("east_asia", 1059),
    ("west_asia", 161),
    ("na_east", 2894),
    ("na_west", 1240),
    ("south_africa", 47),
    ("south_america", 36),
];

/// One-way latency in milliseconds between regions (same order as [`REGIONS`]); the diagonal is
/// the latency within a region.
pub const LATENCY_MS: [[u32; 8]; 8] = [
    [2, 165, 110, 180, 150, 110, 220, 190],
    [165, 2, 125, 60, 70, 110, 95, 140],
    [110, 125, 4, 110, 140, 100, 175, 175],
    [180, 60, 110, 5, 110, 150, 110, 145],
    [150, 70, 140, 110, 2, 60, 130, 100],
    [110, 110, 100, 150, 60, 2, 160, 100],
    [220, 95, 175, 110, 130, 160, 7, 190],
    [190, 140, 175, 145, 100, 100, 190, 7],
];

/// A link class: a share of the nodes and their symmetric bandwidth.
pub const CLASSES: [(&str, u32, u32); 2] = [("fast", 20, 1024), ("home", 80, 50)];

/// One host of the simulation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    /// Index, also the seed of its identity key.
    pub id: u32,
    /// Host name in the simulation (`node<id>`).
    pub name: String,
    /// Its IPv4 address.
    pub ip: String,
    /// Index into [`REGIONS`].
    pub region: usize,
    /// Index into [`CLASSES`].
    pub class: usize,
    /// Whether it is one of the bootstrap nodes the others start from.
    pub bootstrap: bool,
}

/// Places `n` hosts, the first `bootstraps` of them bootstrap nodes on fast links in distinct
/// regions. Addresses are spread over many /16 ranges, as real peers are.
pub fn place(n: u32, bootstraps: u32, seed: u64) -> Vec<Host> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total: u32 = REGIONS.iter().map(|r| r.1).sum();
    let mut used = std::collections::HashSet::new();
    let by_weight = |rng: &mut ChaCha8Rng| {
        let mut x = rng.gen_range(0..total);
        REGIONS.iter().position(|r| {
            if x < r.1 {
                true
            } else {
                x -= r.1;
                false
            }
        })
    };
    let mut bootstrap_regions = vec![1usize, 4, 2, 5, 0, 3, 6, 7];
    bootstrap_regions.truncate(bootstraps as usize);
    (0..n)
        .map(|id| {
            let bootstrap = id < bootstraps;
            let region = if bootstrap {
                bootstrap_regions[id as usize % bootstrap_regions.len().max(1)]
            } else {
                by_weight(&mut rng).unwrap_or(1)
            };
            let class = if bootstrap || rng.gen_range(0..100) < CLASSES[0].1 { 0 } else { 1 };
            let ip = loop {
                let ip = [rng.gen_range(11..=99u8), rng.gen(), rng.gen(), rng.gen_range(1..=254u8)];
                if ip[0] != 127 && used.insert(ip) {
                    break format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
                }
            };
            Host { id, name: format!("node{id}"), ip, region, class, bootstrap }
        })
        .collect()
}

/// Shortest one-way delay between regions (paths through a third region count: the matrix
/// does not obey the triangle inequality everywhere).
pub fn shortest_paths() -> [[u32; 8]; 8] {
    let mut d = LATENCY_MS;
    for k in 0..8 {
        for i in 0..8 {
            for j in 0..8 {
                d[i][j] = d[i][j].min(d[i][k] + d[k][j]);
            }
        }
    }
    d
}

/// The Shadow network graph: one vertex per region and link class (the class sets the
/// bandwidth of the hosts on it), and an edge between every two vertices with the regions'
/// latency.
pub fn gml() -> String {
    let mut g = String::from("graph [\n  directed 1\n");
    let vertex = |r: usize, c: usize| r * CLASSES.len() + c;
    for (r, (name, _)) in REGIONS.iter().enumerate() {
        for (c, (class, _, mbit)) in CLASSES.iter().enumerate() {
            let _ = write!(
                g,
                "  node [\n    id {}\n    label \"{name}-{class}\"\n    host_bandwidth_up \"{mbit} Mbit\"\n    host_bandwidth_down \"{mbit} Mbit\"\n  ]\n",
                vertex(r, c)
            );
        }
    }
    for (r1, row) in LATENCY_MS.iter().enumerate() {
        for c1 in 0..CLASSES.len() {
            for (r2, latency) in row.iter().enumerate() {
                for c2 in 0..CLASSES.len() {
                    let _ = write!(
                        g,
                        "  edge [\n    source {}\n    target {}\n    latency \"{latency} ms\"\n    packet_loss 0.0\n  ]\n",
                        vertex(r1, c1),
                        vertex(r2, c2),
                    );
                }
            }
        }
    }
    g.push_str("]\n");
    g
}

/// The Shadow vertex of a host.
pub fn vertex_of(h: &Host) -> usize {
    h.region * CLASSES.len() + h.class
}

/// Order publications: `count` orders from distinct random non-bootstrap hosts, one every
/// `every_ms` from `start_ms`. Returns (time, host id, tag).
pub fn schedule(hosts: &[Host], count: u32, start_ms: u64, every_ms: u64, seed: u64) -> Vec<(u64, u32, u64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0bde_55ee_d000_0001);
    let mut makers: Vec<u32> = hosts.iter().filter(|h| !h.bootstrap).map(|h| h.id).collect();
    makers.shuffle(&mut rng);
    (0..count as u64).map(|k| (start_ms + k * every_ms, makers[k as usize % makers.len().max(1)], k + 1)).collect()
}

/// When each host first starts: bootstrap nodes at 0, the others spread over 1-10 s.
pub fn join_times(hosts: &[Host]) -> Vec<u64> {
    let n = hosts.len().max(1) as u64;
    hosts.iter().map(|h| if h.bootstrap { 0 } else { 1_000 + u64::from(h.id) * 9_000 / n }).collect()
}

/// One process of a host: when it starts and, if it is stopped (killed), when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    pub start_ms: u64,
    pub stop_ms: Option<u64>,
}

/// Restarts: in each of `minutes` minutes from `from_ms`, `percent`% of the non-bootstrap hosts
/// (at least one) are killed at a random moment of the minute and start again `down_ms` later
/// with nothing but their key. A host is not picked again while it is down or within a minute
/// of its restart. Returns each host's lives, given when each first starts.
pub fn churn(
    hosts: &[Host],
    first_start_ms: &[u64],
    percent: u32,
    from_ms: u64,
    minutes: u32,
    down_ms: u64,
    seed: u64,
) -> Vec<Vec<Life>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0c4e_55ee_d000_0002);
    let mut lives: Vec<Vec<Life>> = first_start_ms.iter().map(|s| vec![Life { start_ms: *s, stop_ms: None }]).collect();
    let candidates: Vec<usize> = hosts.iter().filter(|h| !h.bootstrap).map(|h| h.id as usize).collect();
    let per_minute = ((candidates.len() as u64 * u64::from(percent)).div_ceil(100)).max(1) as usize;
    for m in 0..u64::from(minutes) {
        let mut pool = candidates.clone();
        pool.shuffle(&mut rng);
        let mut picked = 0;
        for i in pool {
            if picked == per_minute {
                break;
            }
            let at = from_ms + m * 60_000 + rng.gen_range(0..60_000);
            let last = *lives[i].last().expect("every host has a first life");
            if at < last.start_ms + 60_000 {
                continue;
            }
            lives[i].last_mut().expect("checked").stop_ms = Some(at);
            lives[i].push(Life { start_ms: at + down_ms, stop_ms: None });
            picked += 1;
        }
    }
    lives
}
