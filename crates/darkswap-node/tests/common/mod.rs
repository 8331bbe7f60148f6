//! Helpers shared by the tests that run the `darkswap-node` binary.
#![allow(dead_code)] // each test binary uses its own subset

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_darkswap-node");
pub const WAIT: Duration = Duration::from_secs(30);

/// A running `darkswap-node`, killed on drop.
pub struct Node {
    pub child: Child,
    pub api: String,
    pub p2p: String,
    /// `http://ADDR/metrics`.
    pub metrics: String,
    /// What the node printed up to its metrics address.
    pub printed: Vec<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(extra: &[&str]) -> Node {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
            "--web",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut api, mut p2p, mut metrics, mut printed) = (None, None, None, Vec::new());
    while api.is_none() || p2p.is_none() || metrics.is_none() {
        let line = rx.recv_timeout(WAIT).expect("node prints its addresses");
        printed.push(line.clone());
        if let Some(a) = line.strip_prefix("api: ") {
            api = Some(a.to_string());
        }
        if let Some(a) = line.strip_prefix("listening: ") {
            p2p = Some(a.to_string());
        }
        if let Some(a) = line.strip_prefix("metrics: ") {
            metrics = Some(a.to_string());
        }
    }
    Node { child, api: api.unwrap(), p2p: p2p.unwrap(), metrics: metrics.unwrap(), printed }
}

pub fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().expect("cli runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

pub fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
