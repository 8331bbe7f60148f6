//! A network lab in Linux network namespaces: a public network with a relay, and hosts each
//! behind its own NAT router (nftables masquerade). Everything is removed on drop, also when the
//! test fails.
//!
//! Addresses come from 198.18.0.0/15 (reserved for benchmarking) and exist only inside the
//! namespaces: WAN of NAT i is 198.18.i.0/24 (the public side answers at 198.18.i.1, the router's
//! public address is 198.18.i.2), its LAN 198.19.i.0/24 (host at 198.19.i.2).

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_darkswap-node");
pub const API: &str = "http://127.0.0.1:9091";

/// How a NAT maps ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping (port-preserving masquerade) with inbound filtering: hole
    /// punching can work.
    Cone,
    /// A new port for every destination (`random,fully-random`): hole punching cannot work.
    Symmetric,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The namespaces and processes of one test run.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    nodes: Vec<Child>,
}

/// A node process in the lab: its output lines, collected as they come.
pub struct LabNode {
    pub ns: String,
    pub peer_id: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Lab {
    /// Checks the tools and builds the public namespace.
    pub fn new() -> Lab {
        let uid = Command::new("id").arg("-u").output().expect("id");
        assert_eq!(String::from_utf8_lossy(&uid.stdout).trim(), "0", "the NAT lab needs root (CI runs as root)");
        for tool in ["ip", "nft"] {
            let check = format!("command -v {tool} || test -x /usr/sbin/{tool}");
            let found = Command::new("sh").args(["-c", &check]).output();
            assert!(
                found.is_ok_and(|o| o.status.success()),
                "{tool} is missing: run scripts/setup-nat.sh (scripts/test.sh does)"
            );
        }
        let mut lab = Lab { prefix: format!("ds{}", std::process::id()), namespaces: Vec::new(), nodes: Vec::new() };
        let public = lab.ns("pub");
        lab.add_ns(&public);
        lab.exec(&public, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn add_ns(&mut self, ns: &str) {
        run(&["ip", "netns", "add", ns]);
        self.namespaces.push(ns.to_string());
        self.exec(ns, &["ip", "link", "set", "lo", "up"]);
    }

    fn exec(&self, ns: &str, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full);
    }

    /// The public namespace (where the relay runs).
    pub fn public(&self) -> String {
        self.ns("pub")
    }

    /// Adds NAT `i` (1..=250) of kind `nat` with one host behind it; returns the host's namespace.
    pub fn add_nat(&mut self, i: u8, nat: Nat) -> String {
        let (public, router, host) = (self.public(), self.ns(&format!("nat{i}")), self.ns(&format!("host{i}")));
        self.add_ns(&router);
        self.add_ns(&host);
        let (wan_pub, wan_nat) = (format!("{}w{i}", self.prefix), format!("{}v{i}", self.prefix));
        let (lan_nat, lan_host) = (format!("{}l{i}", self.prefix), format!("{}h{i}", self.prefix));
        run(&["ip", "link", "add", &wan_pub, "type", "veth", "peer", "name", &wan_nat]);
        run(&["ip", "link", "set", &wan_pub, "netns", &public]);
        run(&["ip", "link", "set", &wan_nat, "netns", &router]);
        run(&["ip", "link", "add", &lan_nat, "type", "veth", "peer", "name", &lan_host]);
        run(&["ip", "link", "set", &lan_nat, "netns", &router]);
        run(&["ip", "link", "set", &lan_host, "netns", &host]);
        let addr = |ns: &str, ip: String, dev: &str| {
            self.exec(ns, &["ip", "addr", "add", &ip, "dev", dev]);
            self.exec(ns, &["ip", "link", "set", dev, "up"]);
        };
        addr(&public, format!("198.18.{i}.1/24"), &wan_pub);
        addr(&router, format!("198.18.{i}.2/24"), &wan_nat);
        addr(&router, format!("198.19.{i}.1/24"), &lan_nat);
        addr(&host, format!("198.19.{i}.2/24"), &lan_host);
        self.exec(&router, &["ip", "route", "add", "default", "via", &format!("198.18.{i}.1")]);
        self.exec(&host, &["ip", "route", "add", "default", "via", &format!("198.19.{i}.1")]);
        self.exec(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.exec(&router, &["nft", "add", "table", "ip", "nat"]);
        self.exec(&router, &["nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }"]);
        let rule = match nat {
            Nat::Cone => format!("add rule ip nat post oifname {wan_nat} masquerade"),
            Nat::Symmetric => format!("add rule ip nat post oifname {wan_nat} masquerade random,fully-random"),
        };
        self.exec(&router, &["nft", &rule]);
        // Like a home router, drop unsolicited packets from the WAN. This also keeps a peer's
        // early hole-punching packet from leaving a conntrack entry that would make the NAT pick
        // another port for the host's own outgoing packet.
        self.exec(&router, &["nft", "add table ip filter"]);
        for hook in ["input", "forward"] {
            self.exec(
                &router,
                &["nft", &format!("add chain ip filter {hook} {{ type filter hook {hook} priority 0 ; }}")],
            );
            self.exec(
                &router,
                &["nft", &format!("add rule ip filter {hook} iifname {wan_nat} ct state established,related accept")],
            );
            self.exec(&router, &["nft", &format!("add rule ip filter {hook} iifname {wan_nat} drop")]);
        }
        host
    }

    /// Adds a host on a direct link to the public namespace (its own LAN segment with the relay,
    /// no NAT, no filter); returns its namespace. Its address is 198.18.{i}.2.
    pub fn add_neighbour(&mut self, i: u8) -> String {
        let (public, host) = (self.public(), self.ns(&format!("lan{i}")));
        self.add_ns(&host);
        let (a, b) = (format!("{}w{i}", self.prefix), format!("{}n{i}", self.prefix));
        run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]);
        run(&["ip", "link", "set", &a, "netns", &public]);
        run(&["ip", "link", "set", &b, "netns", &host]);
        self.exec(&public, &["ip", "addr", "add", &format!("198.18.{i}.1/24"), "dev", &a]);
        self.exec(&public, &["ip", "link", "set", &a, "up"]);
        self.exec(&host, &["ip", "addr", "add", &format!("198.18.{i}.2/24"), "dev", &b]);
        self.exec(&host, &["ip", "link", "set", &b, "up"]);
        host
    }

    /// Starts `darkswap-node` in `ns` with `args` and waits for its peer id.
    pub fn start(&mut self, ns: &str, args: &[&str]) -> LabNode {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, BIN])
            .args(args)
            .env("RUST_LOG", "info,libp2p=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            // Also kept in target/tmp for reading after a failure.
            let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}.log"));
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        self.nodes.push(child);
        let node = LabNode { ns: ns.to_string(), peer_id: String::new(), logs };
        let line = node.wait_log("peer id: ", Duration::from_secs(30));
        let peer_id = line.rsplit(' ').next().unwrap().to_string();
        LabNode { peer_id, ..node }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace removes its veth ends (and their peers).
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl LabNode {
    /// The first log line containing `needle`, waiting up to `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.logs.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(Instant::now() < deadline, "{}: no log line with {needle:?} within {timeout:?}", self.ns);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether some log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Runs a `darkswap-node` client command against this node's API, inside its namespace.
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIN])
            .args(args)
            .args(["--api", API])
            .output()
            .expect("cli runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    }

    /// This node's connections to `peer`: `(relayed, address)` pairs.
    pub fn connections_to(&self, peer: &str) -> Vec<(bool, String)> {
        let (ok, out) = self.cli(&["connections"]);
        assert!(ok, "{out}");
        out.lines()
            .filter(|l| l.starts_with(peer))
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols.get(1) == Some(&"relayed"), cols.last().unwrap_or(&"").to_string())
            })
            .collect()
    }
}

/// Polls `f` until it is true, failing after `timeout`.
pub fn until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
