//! The lab in the test command: a small propagation scenario in Shadow (real node processes on
//! a simulated internet of eight regions), run twice with one seed.

use std::{path::PathBuf, process::Command};

/// Where Shadow is: `DARKSWAP_SHADOW` (scripts/test.sh sets it from scripts/setup-shadow.sh).
fn shadow() -> PathBuf {
    let path = std::env::var_os("DARKSWAP_SHADOW").map(PathBuf::from).expect(
        "DARKSWAP_SHADOW is not set: install Shadow with `bash scripts/setup-shadow.sh` and export its output \
         (scripts/test.sh does both)",
    );
    assert!(path.is_file(), "no Shadow binary at {}", path.display());
    path
}

fn run(out: &std::path::Path, shadow: &std::path::Path) -> serde_json::Value {
    let status = Command::new(env!("CARGO_BIN_EXE_darkswap-lab"))
        .args(["run", "propagation", "--nodes", "60", "--orders", "10", "--stacks", "darkswap", "--seed", "7"])
        .arg("--out")
        .arg(out)
        .arg("--shadow")
        .arg(shadow)
        .status()
        .expect("darkswap-lab starts");
    assert!(status.success(), "the lab run failed: {status}");
    let figures = out.join("propagation-60-seed7").join("figures.json");
    let text = std::fs::read(&figures).unwrap_or_else(|e| panic!("{}: {e}", figures.display()));
    serde_json::from_slice(&text).expect("figures are JSON")
}

/// 60 nodes start from three bootstrap nodes, which stop once the network formed; ten orders
/// from random nodes then reach every live node, the network holds together without its
/// bootstrap nodes, no node holds more than its peer limit, and a second run with the same seed
/// gives the same figures to the millisecond (every delivery's latency included).
#[test]
fn sixty_nodes_deliver_every_order_and_one_seed_gives_one_result() {
    let shadow = shadow();
    let base = std::env::temp_dir().join(format!("darkswap-lab-test-{}", std::process::id()));
    let first = run(&base.join("a"), &shadow);
    let f = &first[0];
    assert_eq!(f["stack"], "darkswap");
    assert_eq!(f["live_nodes"], 57, "the three bootstrap nodes stopped before the orders");
    assert_eq!(f["delivered"], f["expected"], "every order reaches every live node: {f}");
    assert_eq!(f["complete_orders"], 10);
    assert!(f["diameter"].is_u64(), "the network holds together without its bootstrap nodes: {f}");
    assert!(f["degree_min"].as_u64().unwrap() >= 8, "every node keeps its outbound target: {f}");
    assert!(f["degree_max"].as_u64().unwrap() <= 40, "no node holds more than its peer limit: {f}");
    let second = run(&base.join("b"), &shadow);
    assert_eq!(first, second, "the same seed gives the same figures");
    let _ = std::fs::remove_dir_all(&base);
}

/// 12 nodes hold a book of 2,000 orders; a newcomer joins with nothing and a node comes back
/// after two minutes away while 20 orders were published: both end with every order, the
/// newcomer having received about the book's bytes and the returner about the new orders'.
#[test]
fn a_newcomer_and_a_returning_node_fetch_what_they_lack_and_little_more() {
    let shadow = shadow();
    let out = std::env::temp_dir().join(format!("darkswap-lab-resync-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_darkswap-lab"))
        .args(["run", "resync", "--nodes", "12", "--book", "2000", "--away-minutes", "2", "--seed", "3"])
        .arg("--out")
        .arg(&out)
        .arg("--shadow")
        .arg(&shadow)
        .status()
        .expect("darkswap-lab starts");
    assert!(status.success(), "the lab run failed: {status}");
    let figures = out.join("resync-12-seed3").join("figures.json");
    let text = std::fs::read(&figures).unwrap_or_else(|e| panic!("{}: {e}", figures.display()));
    let f: serde_json::Value = serde_json::from_slice(&text).expect("figures are JSON");
    assert_eq!(f["incomplete_nodes"], 0, "every node holds every published order: {f}");
    assert_eq!(f["changed"], 20, "{f}");
    assert!(f["newcomer_complete_ms"].is_u64() && f["returner_complete_ms"].is_u64(), "{f}");
    let order = f["order_bytes"].as_f64().unwrap();
    let newcomer = f["newcomer_bytes"].as_f64().unwrap() / (2000.0 * order);
    assert!((1.0..1.5).contains(&newcomer), "the newcomer received {newcomer:.2}x the book: {f}");
    let returner = f["returner_bytes"].as_f64().unwrap() / (20.0 * order);
    assert!((1.0..3.0).contains(&returner), "the returner moved {returner:.2}x the difference: {f}");
    let _ = std::fs::remove_dir_all(&out);
}
