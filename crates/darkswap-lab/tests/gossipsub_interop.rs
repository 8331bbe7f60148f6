//! DarkSwap's gossip layer under the libp2p gossipsub benchmark's contract: the benchmark's own
//! harness (scripts/gossipsub-interop.sh) writes a scenario for `darkswap-gossipsub-interop`
//! nodes, Shadow runs them, and their logs must say what the contract asks.

use serde_json::Value;
use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::Command,
};

/// Instructions of `script` that node `me` runs.
fn flatten(script: &[Value], me: u64, out: &mut Vec<Value>) {
    for i in script {
        if i["type"] == "ifNodeIDEquals" {
            if i["nodeID"].as_u64() == Some(me) {
                flatten(std::slice::from_ref(&i["instruction"]), me, out);
            }
        } else {
            out.push(i.clone());
        }
    }
}

/// 12 nodes of the harness's `simple-fanout` scenario (two topics, half the nodes on each, 16
/// messages of 1 KiB, some published by nodes not subscribed to their topic): each node names
/// its peer id and node id, every message reaches every other subscriber of its topic, and
/// duplicates are written too.
#[test]
fn the_benchmark_harness_runs_darkswap_nodes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!("darkswap-gossipsub-interop-{}", std::process::id()));
    let status = Command::new("bash")
        .arg(root.join("scripts/gossipsub-interop.sh"))
        .args(["12", "simple-fanout"])
        .env("DARKSWAP_INTEROP_BIN", env!("CARGO_BIN_EXE_darkswap-gossipsub-interop"))
        .env("DARKSWAP_INTEROP_OUT", &out)
        .status()
        .expect("the script starts");
    assert!(status.success(), "the harness run failed: {status}");
    let dir = out.join("simple-fanout-12");
    let params: Value = serde_json::from_slice(&std::fs::read(dir.join("params.json")).unwrap()).unwrap();
    let script = params["script"].as_array().unwrap();

    let (mut subscribers, mut published) = (HashMap::<String, HashSet<u64>>::new(), Vec::new());
    for node in 0..12u64 {
        let mut mine = Vec::new();
        flatten(script, node, &mut mine);
        for i in mine {
            match i["type"].as_str() {
                Some("subscribeToTopic") => {
                    subscribers.entry(i["topicID"].as_str().unwrap().into()).or_default().insert(node);
                }
                Some("publish") => published.push((node, i["messageID"].as_u64().unwrap(), i["topicID"].clone())),
                _ => {}
            }
        }
    }
    assert_eq!(published.len(), 16);

    let (mut first, mut duplicates) = (HashMap::<u64, HashSet<u64>>::new(), 0);
    for node in 0..12u64 {
        let log = dir.join(format!("shadow.data/hosts/node{node}/darkswap-gossipsub-interop.1000.stdout"));
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let lines: Vec<Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
        assert!(lines.iter().all(|l| l["time"].is_string() && l["msg"].is_string()));
        let starts: Vec<&Value> = lines.iter().filter(|l| l["msg"] == "PeerID").collect();
        assert_eq!(starts.len(), 1, "node {node}");
        assert_eq!(starts[0]["node_id"].as_u64(), Some(node));
        let key = darkswap_lab::plan::node_key(node as u32);
        assert_eq!(starts[0]["id"].as_str(), Some(libp2p::PeerId::from(key.public()).to_string().as_str()));
        for l in lines.iter().filter(|l| l["msg"] == "Received Message") {
            let id: u64 = l["id"].as_str().unwrap().parse().unwrap();
            if l["from"].is_string() {
                assert!(first.entry(id).or_default().insert(node), "node {node} delivered {id} twice");
            } else {
                duplicates += 1;
            }
        }
    }
    for (maker, id, topic) in published {
        let wanted: HashSet<u64> =
            subscribers[topic.as_str().unwrap()].iter().copied().filter(|n| *n != maker).collect();
        assert_eq!(first.get(&id).cloned().unwrap_or_default(), wanted, "message {id} from node {maker} on {topic}");
    }
    assert!(duplicates > 0, "duplicates are written");
    let _ = std::fs::remove_dir_all(&out);
}
