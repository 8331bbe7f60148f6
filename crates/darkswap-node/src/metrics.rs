//! The node's Prometheus endpoint: `GET /metrics` in Prometheus text format 0.0.4, everything the
//! node records (see [`darkswap_p2p::metrics`]), and the signaling server's figures when it runs one.

use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use darkswap_p2p::metrics::{P2PMetrics, PROMETHEUS_CONTENT_TYPE};

/// `/metrics` over `metrics`.
pub fn router(metrics: P2PMetrics) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(metrics)
}

async fn scrape(State(metrics): State<P2PMetrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], metrics.get_prometheus_metrics())
}
