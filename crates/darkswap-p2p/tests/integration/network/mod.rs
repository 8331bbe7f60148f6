//! The network's plumbing: every transport, application streams, metrics, and the examples.

mod examples;
mod metrics;
mod peering;
mod streams;
mod transports;
