//! Integration tests: real nodes over real sockets on loopback, in one test binary so the libp2p
//! link happens once.

mod attacks;
mod auth_table;
mod bad_input;
mod basic_example;
mod churn;
mod common;
mod encryption_table;
mod flood;
mod fuzz_regressions;
mod gossip;
mod limits;
mod metrics;
mod raw_gossip;
mod relay;
mod relay_pool;
mod relay_view;
mod secure;
mod signaling_bad_input;
mod streams;
mod sync;
mod timers;
mod trade;
mod transports;
mod turn;
mod webrtc;
