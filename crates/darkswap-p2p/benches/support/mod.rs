//! Shared by the benchmarks: processes of their own (so memory figures are a node's alone),
//! resident memory, percentiles, and the machine-readable result lines `scripts/bench.sh`
//! collects into BENCHMARKS.md.

#![allow(dead_code)] // each bench uses a part

use std::{
    io::{BufRead, Write},
    process::{Child, Command, Stdio},
};

/// Resident memory of `pid` in KiB (`field` is `VmRSS:` or `VmHWM:`).
pub fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Runs this bench binary again with `flag` (a child role) and returns it with the first line
/// it prints (its address).
pub fn spawn_child(flag: &str) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg(flag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_owned())
}

/// In a child: prints `line` for the parent, then runs until the parent closes stdin.
pub async fn serve_parent(line: &str) {
    println!("{line}");
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
    })
    .await
    .unwrap();
}

/// Stops a child started by [`spawn_child`].
pub fn stop_child(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}

/// The `p` quantile of `sorted`.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    pct(v, 0.5)
}

/// A result line for BENCHMARKS.md: `BENCH | figure | value | goal | ratio | note`.
pub fn report(figure: &str, value: &str, goal: &str, ratio: &str, note: &str) {
    println!("BENCH | {figure} | {value} | {goal} | {ratio} | {note}");
}
