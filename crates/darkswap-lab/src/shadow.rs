//! Runs a plan in Shadow: writes its configuration, starts the simulator, reads the hosts' logs.

use darkswap_lab::{
    plan::{Plan, Record},
    topology::{vertex_of, Life},
};
use std::{
    fmt::Write,
    path::{Path, PathBuf},
    process::Command,
};

/// Errors of a simulation run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Files could not be written or read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// Shadow could not be started.
    #[error("cannot run {0} (install it with scripts/setup-shadow.sh, or pass --shadow): {1}")]
    Start(PathBuf, std::io::Error),
    /// Shadow ended with an error.
    #[error("shadow failed (exit {0}); see {1}")]
    Failed(i32, PathBuf),
}

/// The processes each host runs one after another (ms of simulated time), and when the
/// simulation ends.
pub struct Timing {
    pub lives: Vec<Vec<Life>>,
    pub end_ms: u64,
}

/// Writes `dir/<stack>.yaml` for `plan` and runs Shadow on it; returns each host's records.
pub fn run(
    shadow: &Path,
    exe: &Path,
    dir: &Path,
    plan: &Plan,
    timing: &Timing,
    seed: u64,
) -> Result<Vec<Vec<Record>>, SimError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| SimError::Io(p, e)
    };
    let name = plan.stack.name();
    let plan_path = dir.join(format!("plan-{name}.json"));
    std::fs::write(&plan_path, serde_json::to_vec(plan).expect("a plan serialises")).map_err(io(&plan_path))?;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "general:\n  stop_time: {} ms\n  seed: {seed}\n  model_unblocked_syscall_latency: true",
        timing.end_ms
    );
    let _ =
        writeln!(y, "network:\n  graph:\n    type: gml\n    file:\n      path: {}", dir.join("graph.gml").display());
    // The nodes' log filter (stderr): `DARKSWAP_LAB_LOG`, by default warnings only.
    let log = std::env::var("DARKSWAP_LAB_LOG").unwrap_or_else(|_| "warn".into()).replace(['"', '\\'], "");
    let _ = writeln!(y, "hosts:");
    for h in &plan.hosts {
        let i = h.id as usize;
        let _ =
            writeln!(y, "  {}:\n    network_node_id: {}\n    ip_addr: {}\n    processes:", h.name, vertex_of(h), h.ip);
        for life in &timing.lives[i] {
            let _ = writeln!(
                y,
                "    - path: {}\n      args: node --plan {} --id {}\n      environment: {{ RUST_LOG: \"{log}\" }}\n      start_time: {} ms",
                exe.display(),
                plan_path.display(),
                h.id,
                life.start_ms
            );
            match life.stop_ms {
                Some(stop) => {
                    let _ = writeln!(y, "      shutdown_time: {stop} ms\n      expected_final_state: {{ signaled: SIGKILL }}\n      shutdown_signal: SIGKILL");
                }
                None => {
                    let _ = writeln!(y, "      expected_final_state: running");
                }
            }
        }
    }
    let yaml = dir.join(format!("{name}.yaml"));
    std::fs::write(&yaml, y).map_err(io(&yaml))?;
    let data = dir.join(format!("{name}.data"));
    let _ = std::fs::remove_dir_all(&data);
    let log = dir.join(format!("{name}.shadow.log"));
    let out = std::fs::File::create(&log).map_err(io(&log))?;
    let status = Command::new(shadow)
        .arg("--parallelism")
        .arg(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string())
        .arg("--data-directory")
        .arg(&data)
        .arg(&yaml)
        .stdout(out.try_clone().map_err(io(&log))?)
        .stderr(out)
        .status()
        .map_err(|e| SimError::Start(shadow.to_path_buf(), e))?;
    if !status.success() {
        return Err(SimError::Failed(status.code().unwrap_or(-1), log));
    }
    plan.hosts
        .iter()
        .map(|h| {
            let host_dir = data.join("hosts").join(&h.name);
            let mut records = Vec::new();
            let entries = std::fs::read_dir(&host_dir).map_err(io(&host_dir))?;
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "stdout") {
                    let text = std::fs::read_to_string(e.path()).map_err(io(&e.path()))?;
                    records.extend(text.lines().filter_map(|l| serde_json::from_str::<Record>(l).ok()));
                }
            }
            // A host that restarted wrote one file per process.
            records.sort_by_key(Record::t);
            Ok(records)
        })
        .collect()
}
