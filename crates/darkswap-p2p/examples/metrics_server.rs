//! A node serving its metrics to Prometheus: `GET http://localhost:9090/metrics`, as the README's
//! scrape config expects (Prometheus text format 0.0.4).
//!
//! ```bash
//! cargo run --example metrics_server                          # Ctrl-C stops it
//! cargo run --example metrics_server -- --addr 127.0.0.1:0 --bootstrap /ip4/…/tcp/9000/p2p/12D3…
//! ```
//!
//! `--exit-after-scrapes N` stops it after N scrapes (for scripts and tests).

use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use darkswap_p2p::{
    metrics::{P2PMetrics, PROMETHEUS_CONTENT_TYPE},
    network::{Network, NetworkConfig},
};
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};
use tokio::sync::Notify;

#[derive(Clone)]
struct Served {
    metrics: P2PMetrics,
    scrapes: Arc<AtomicU64>,
    scraped: Arc<Notify>,
}

async fn scrape(State(s): State<Served>) -> impl IntoResponse {
    let body = s.metrics.get_prometheus_metrics();
    // Counted once the body is built: `--exit-after-scrapes` shuts the network down on this
    // signal, and a network gone mid-scrape would leave its order-book families out.
    s.scrapes.fetch_add(1, Ordering::Relaxed);
    s.scraped.notify_one();
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9090".to_string();
    let mut bootstrap = Vec::new();
    let mut exit_after: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs an address")?,
            "--bootstrap" => bootstrap.push(args.next().ok_or("--bootstrap needs a multiaddr")?.parse()?),
            "--exit-after-scrapes" => exit_after = Some(args.next().ok_or("--exit-after-scrapes needs N")?.parse()?),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let mut network = Network::new(NetworkConfig { bootstrap_peers: bootstrap, ..NetworkConfig::default() }).await?;
    let p2p = network.listen_on("/ip4/127.0.0.1/tcp/0").await?;
    println!("peer: {p2p}/p2p/{}", network.local_peer_id());

    let served = Served { metrics: network.metrics(), scrapes: Arc::default(), scraped: Arc::default() };
    let app = Router::new().route("/metrics", get(scrape)).with_state(served.clone());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("metrics: http://{}/metrics", listener.local_addr()?);
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    // Graceful, so a scrape that ends the run still gets its whole answer before the process exits.
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stopped.notified().await });
        if let Err(e) = serve.await {
            eprintln!("metrics server stopped: {e}");
        }
    });
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = served.scraped.notified() => {
                if exit_after.is_some_and(|n| served.scrapes.load(Ordering::Relaxed) >= n) {
                    break;
                }
            }
            event = network.next_event() => {
                if event.is_none() {
                    break;
                }
            }
        }
    }
    stop.notify_one();
    let _ = server.await;
    network.shutdown().await?;
    println!("served {} scrapes", served.scrapes.load(Ordering::Relaxed));
    Ok(())
}
