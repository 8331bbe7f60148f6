//! What every stack's run shares: the report, CPU time, the publish schedule and the drain.

use super::Opts;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[derive(Clone)]
pub struct Report {
    pub name: &'static str,
    pub latencies_us: Vec<u64>,
    pub expected: usize,
    pub published: usize,
    pub elapsed: Duration,
    /// CPU time the whole process used while orders were published and delivered.
    pub cpu: Duration,
}

/// CPU time (user + system) this process has used so far, from /proc/self/stat.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

impl Report {
    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    pub fn ratio(&self) -> f64 {
        self.latencies_us.len() as f64 / self.expected.max(1) as f64
    }
    pub fn rate(&self) -> f64 {
        self.published as f64 / self.elapsed.as_secs_f64()
    }
    pub fn print(&self) {
        println!(
            "{:<25} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  delivered {:>7}/{:<7} ({:>6.2}%)  published {:>7.1} msg/s  CPU {:.2} s",
            self.name,
            self.pct(0.50),
            self.pct(0.99),
            self.pct(1.0),
            self.latencies_us.len(),
            self.expected,
            self.ratio() * 100.0,
            self.rate(),
            self.cpu.as_secs_f64()
        );
    }
}

pub type Sent = Arc<Mutex<HashMap<Vec<u8>, Instant>>>;
pub type Received = Arc<Mutex<Vec<(Vec<u8>, Instant)>>>;

/// Delivery latencies in microseconds, sorted: each receipt matched to its publish time.
pub fn latencies(sent: &Sent, received: &Received) -> Vec<u64> {
    let sent = sent.lock().unwrap();
    let mut lat: Vec<u64> = received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(tag, at)| sent.get(tag).map(|t0| at.duration_since(*t0).as_micros() as u64))
        .collect();
    lat.sort_unstable();
    lat
}

/// Where the tail comes from (`--timeline`): the p99 of the orders published in each 250 ms of
/// the run, and the longest stretches in which no node received anything. A p99 that climbs
/// through the run is a backlog (the machine is short of CPU); spikes at the same offsets in every
/// run, in every stack, are work done in step by all nodes (it found gossipsub's first heartbeat).
pub fn timeline(sent: &Sent, received: &Received) -> String {
    let sent = sent.lock().unwrap();
    let received = received.lock().unwrap();
    let Some(t0) = sent.values().min().copied() else {
        return "timeline: nothing published".into();
    };
    let mut windows: std::collections::BTreeMap<u128, Vec<u64>> = Default::default();
    for (tag, at) in received.iter() {
        if let Some(s) = sent.get(tag) {
            let lat = at.duration_since(*s).as_micros() as u64;
            windows.entry(s.duration_since(t0).as_millis() / 250).or_default().push(lat);
        }
    }
    let p99: Vec<String> = windows
        .into_iter()
        .map(|(w, mut v)| {
            v.sort_unstable();
            format!("{:.2}s {:.1}", w as f64 / 4.0, v[(v.len() - 1) * 99 / 100] as f64 / 1000.0)
        })
        .collect();
    let mut at: Vec<Duration> = received.iter().map(|(_, at)| at.saturating_duration_since(t0)).collect();
    at.sort_unstable();
    let mut gaps: Vec<(Duration, Duration)> = at.windows(2).map(|w| (w[1] - w[0], w[0])).collect();
    gaps.sort_unstable_by(|a, b| b.cmp(a));
    let gaps: Vec<String> = gaps
        .iter()
        .take(8)
        .map(|(g, at)| format!("{:.1} ms at {:.3}s", g.as_secs_f64() * 1e3, at.as_secs_f64()))
        .collect();
    format!(
        "timeline: p99 (ms) of the orders published in each 250 ms: {}\ntimeline: longest stretches without a delivery: {}",
        p99.join(", "),
        gaps.join(", ")
    )
}

pub async fn publish_loop<F, Fut>(o: &Opts, mut publish: F) -> (usize, Duration)
where
    F: FnMut(usize, u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let total = o.rate * o.secs;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    for k in 0..total {
        tick.tick().await;
        publish((k as usize * 7) % o.nodes, k).await;
    }
    (total as usize, start.elapsed())
}

/// Waits for in-flight messages: until every expected delivery arrived, or nothing new arrived
/// for `settle` (3 s unless `--settle`), or 60 s passed (or `settle` plus 30 s). Overloaded runs then report what was delivered late, not what was
/// still queued when a fixed timer fired.
pub async fn drain(received: &Received, expected: usize, settle: Duration) {
    let start = Instant::now();
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = received.lock().unwrap().len();
        if now >= expected || start.elapsed() > Duration::from_secs(60).max(settle + Duration::from_secs(30)) {
            return;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        } else if last_change.elapsed() > settle {
            return;
        }
    }
}
