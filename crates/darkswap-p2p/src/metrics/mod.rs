//! Metrics for Prometheus (and Grafana), on prometheus-client.
//!
//! Every [`Network`](crate::network::Network) records into a [`P2PMetrics`] by itself (its own, or
//! the one given to [`NetworkBuilder::metrics`](crate::network::NetworkBuilder::metrics)):
//!
//! | family | kind | what |
//! |---|---|---|
//! | `p2p_connections_total` | gauge | connections open (the relay pool's, once one is set) |
//! | `p2p_connections_active` | gauge | of those, carrying DarkSwap traffic in the last minute (pool: in use) |
//! | `p2p_connections_idle` | gauge | the rest |
//! | `p2p_connection_attempts` | counter | outgoing connection attempts |
//! | `p2p_connection_successes` | counter | of those, established |
//! | `p2p_connection_failures` | counter | of those, failed |
//! | `p2p_relay_connections` | gauge | relay reservations held |
//! | `p2p_connection_latency_ms` | histogram | dial to established, milliseconds |
//! | `p2p_relay_score` | gauge, label `relay` | each known relay's score (0-100) |
//! | `darkswap_orderbook_orders` | gauge | live orders in the local book |
//! | `darkswap_messages_accepted`, `darkswap_messages_rejected{reason}` | counters | inbound DarkSwap messages |
//! | `darkswap_protocol_bytes{protocol,direction}` | counter | bytes on each application protocol's streams |
//! | `darkswap_anti_entropy_rounds`, `darkswap_orders_regossiped` | counters | book comparisons started, repaired orders gossiped on |
//! | `libp2p_*` | various | rust-libp2p's own: swarm, gossipsub, kad, identify, ping, relay, DCUtR |
//!
//! Counters follow OpenMetrics: the family `p2p_connection_attempts` is scraped as the sample
//! `p2p_connection_attempts_total` (what Prometheus queries and the alert rules use).
//!
//! ```
//! use darkswap_p2p::metrics::P2PMetrics;
//! use std::time::Duration;
//!
//! let metrics = P2PMetrics::new(Duration::from_secs(1));
//! metrics.record_connection_attempt();
//! metrics.record_connection_success(50);
//! metrics.update_metrics();
//! let attempts = metrics.registry().get_metric("p2p_connection_attempts").unwrap();
//! assert_eq!(attempts.value(), 1.0);
//! assert!(metrics.get_prometheus_metrics().contains("p2p_connection_latency_ms_bucket"));
//! ```

// Bytes per protocol are metered on native connections only.
#[cfg(not(target_arch = "wasm32"))]
mod protocols;
mod text;

#[doc(hidden)]
/// The fuzz targets reach the protocol-name sniffer through here.
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub use protocols::sniff_protocol;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use protocols::ProtocolBytes;
pub use text::{Metric, MetricKind, Sample};

use prometheus_client::{
    collector::Collector,
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::{
    sync::{atomic::AtomicU64, Arc, Mutex, MutexGuard},
    time::Duration,
};

/// The content type of [`P2PMetrics::get_prometheus_metrics`]: Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of `p2p_connection_latency_ms`, in milliseconds.
pub const LATENCY_BUCKETS_MS: [f64; 14] =
    [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0];

/// Relays shown in `p2p_relay_score` at most (the best ones).
pub const MAX_RELAY_SCORES: usize = 256;

/// A Prometheus registry shared by everything that records into it. Clones share it.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    inner: Arc<Mutex<Registry>>,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry").finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers more metrics (yours, or a library's) in the same registry.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.lock())
    }

    /// Registers a collector (metrics computed at each scrape).
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.lock().register_collector(collector);
    }

    /// Everything, in OpenMetrics text.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.lock()) {
            tracing::warn!("metrics encoding failed: {e}");
        }
        out
    }

    /// Everything, in Prometheus text format 0.0.4 ([`PROMETHEUS_CONTENT_TYPE`]).
    pub fn get_prometheus_metrics(&self) -> String {
        text::to_prometheus_text(&self.encode_openmetrics())
    }

    /// Every metric family with its current samples.
    pub fn get_metrics(&self) -> Vec<Metric> {
        text::parse(&self.encode_openmetrics())
    }

    /// One family by name (`p2p_connection_attempts`; a sample name such as
    /// `p2p_connection_attempts_total` finds its family too).
    pub fn get_metric(&self, name: &str) -> Option<Metric> {
        let metrics = self.get_metrics();
        let exact = metrics.iter().position(|m| m.name == name);
        let by_sample = || metrics.iter().position(|m| m.samples.iter().any(|s| s.name == name));
        exact.or_else(by_sample).map(|i| metrics[i].clone())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RelayLabel {
    relay: String,
}

struct Families {
    connections_total: Gauge,
    connections_active: Gauge,
    connections_idle: Gauge,
    connection_attempts: Counter,
    connection_successes: Counter,
    connection_failures: Counter,
    relay_connections: Gauge,
    connection_latency_ms: Histogram,
    relay_score: Family<RelayLabel, Gauge<f64, AtomicU64>>,
}

/// Connection figures a [`ConnectionSource`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionGauges {
    /// Connections held.
    pub total: usize,
    /// Of those, in use.
    pub active: usize,
    /// Of those, idle.
    pub idle: usize,
    /// Relay reservations held.
    pub relays: usize,
}

/// Something [`P2PMetrics`] reads its connection gauges and relay scores from: a
/// [`Network`](crate::network::Network) (done by the network itself) or a
/// [`RelayConnectionPool`](crate::relay_connection_pool::RelayConnectionPool)
/// ([`set_relay_pool`](P2PMetrics::set_relay_pool)).
pub trait ConnectionSource: Send + Sync {
    /// Connections and reservations now.
    fn connection_gauges(&self) -> ConnectionGauges;
    /// Known relays and their scores (0-100), best first.
    fn relay_scores(&self, max: usize) -> Vec<(String, f64)>;
}

/// Where the connection gauges come from.
#[derive(Default)]
struct Sources {
    relay_pool: Option<Box<dyn ConnectionSource>>,
    network: Option<std::sync::Weak<dyn ConnectionSource>>,
    last_update: Option<web_time::Instant>,
}

struct Inner {
    families: Families,
    update_interval: Duration,
    sources: Mutex<Sources>,
}

/// The seed's P2P metrics in a [`MetricsRegistry`]: connection counts, attempts, successes,
/// failures, latency, relays and relay scores. Clones share everything.
#[derive(Clone)]
pub struct P2PMetrics {
    registry: MetricsRegistry,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for P2PMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2PMetrics").field("update_interval", &self.inner.update_interval).finish_non_exhaustive()
    }
}

impl P2PMetrics {
    /// Metrics in a new registry; gauges read from their sources at most every
    /// `update_interval` when metrics are read (or on [`update_metrics`](Self::update_metrics)).
    pub fn new(update_interval: Duration) -> Self {
        Self::with_registry(MetricsRegistry::new(), update_interval)
    }

    /// The same, registered in `registry` (to serve it with other metrics).
    pub fn with_registry(registry: MetricsRegistry, update_interval: Duration) -> Self {
        let families = Families {
            connections_total: Gauge::default(),
            connections_active: Gauge::default(),
            connections_idle: Gauge::default(),
            connection_attempts: Counter::default(),
            connection_successes: Counter::default(),
            connection_failures: Counter::default(),
            relay_connections: Gauge::default(),
            connection_latency_ms: Histogram::new(LATENCY_BUCKETS_MS),
            relay_score: Family::default(),
        };
        registry.with_registry(|r| {
            let f = &families;
            r.register(
                "p2p_connections_total",
                "Connections open (the relay pool's when one is set)",
                f.connections_total.clone(),
            );
            r.register("p2p_connections_active", "Connections carrying traffic", f.connections_active.clone());
            r.register("p2p_connections_idle", "Connections open and idle", f.connections_idle.clone());
            r.register("p2p_connection_attempts", "Outgoing connection attempts", f.connection_attempts.clone());
            r.register("p2p_connection_successes", "Outgoing connections established", f.connection_successes.clone());
            r.register(
                "p2p_connection_failures",
                "Outgoing connection attempts that failed",
                f.connection_failures.clone(),
            );
            r.register("p2p_relay_connections", "Relay reservations held", f.relay_connections.clone());
            r.register(
                "p2p_connection_latency_ms",
                "Time from dial to established connection, in milliseconds",
                f.connection_latency_ms.clone(),
            );
            r.register("p2p_relay_score", "Score of each known relay (0-100)", f.relay_score.clone());
        });
        Self { registry, inner: Arc::new(Inner { families, update_interval, sources: Mutex::new(Sources::default()) }) }
    }

    fn sources(&self) -> MutexGuard<'_, Sources> {
        self.inner.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the connection gauges and relay counts from `pool` (a
    /// [`RelayConnectionPool`](crate::relay_connection_pool::RelayConnectionPool)) from now on.
    pub fn set_relay_pool(&mut self, pool: impl ConnectionSource + 'static) {
        self.sources().relay_pool = Some(Box::new(pool));
        self.update_metrics();
    }

    /// Takes the connection gauges, reservations and relay scores from a network while it lives
    /// (done by [`Network`](crate::network::Network) itself).
    pub(crate) fn set_network(&self, network: std::sync::Weak<dyn ConnectionSource>) {
        self.sources().network = Some(network);
    }

    /// One outgoing connection attempt.
    pub fn record_connection_attempt(&self) {
        self.inner.families.connection_attempts.inc();
    }

    /// One connection established, `latency_ms` after its dial started.
    pub fn record_connection_success(&self, latency_ms: u64) {
        self.inner.families.connection_successes.inc();
        self.inner.families.connection_latency_ms.observe(latency_ms as f64);
    }

    /// One connection attempt failed.
    pub fn record_connection_failure(&self) {
        self.inner.families.connection_failures.inc();
    }

    /// Reads the gauges from their sources now: the relay pool if set, else the network.
    pub fn update_metrics(&self) {
        let mut sources = self.sources();
        sources.last_update = Some(web_time::Instant::now());
        let f = &self.inner.families;
        let network = sources.network.as_ref().and_then(|w| w.upgrade());
        let source: Option<&dyn ConnectionSource> = sources.relay_pool.as_deref().or(network.as_deref());
        let Some(source) = source else { return };
        let g = source.connection_gauges();
        f.connections_total.set(g.total as i64);
        f.connections_active.set(g.active as i64);
        f.connections_idle.set(g.idle as i64);
        f.relay_connections.set(g.relays as i64);
        f.relay_score.clear();
        for (relay, score) in source.relay_scores(MAX_RELAY_SCORES) {
            f.relay_score.get_or_create(&RelayLabel { relay }).set(score);
        }
    }

    fn refresh_if_due(&self) {
        let due = self.sources().last_update.is_none_or(|t| t.elapsed() >= self.inner.update_interval);
        if due {
            self.update_metrics();
        }
    }

    /// The registry these metrics live in.
    pub fn registry(&self) -> &MetricsRegistry {
        self.refresh_if_due();
        &self.registry
    }

    /// One family by name (see [`MetricsRegistry::get_metric`]).
    pub fn get_metric(&self, name: &str) -> Option<Metric> {
        self.registry().get_metric(name)
    }

    /// Every family.
    pub fn get_metrics(&self) -> Vec<Metric> {
        self.registry().get_metrics()
    }

    /// Everything in the registry, in Prometheus text format ([`PROMETHEUS_CONTENT_TYPE`]).
    pub fn get_prometheus_metrics(&self) -> String {
        self.registry().get_prometheus_metrics()
    }
}
