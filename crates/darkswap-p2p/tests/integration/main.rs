//! Integration tests: real nodes over real sockets on loopback, in one test binary so the libp2p
//! link happens once. One folder per feature; `support` starts nodes, connects them and waits
//! for events with timeouts. docs/TESTING.md says what each folder proves.

mod gossip;
mod hardening;
mod network;
mod relay;
mod security;
mod support;
mod sync;
mod trade;
mod webrtc;
