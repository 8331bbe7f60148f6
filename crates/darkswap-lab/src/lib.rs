//! The parts of DarkSwap's network lab that its two programs share: `darkswap-lab` (scenarios
//! in Shadow, see docs/LAB.md) and `darkswap-gossipsub-interop` (DarkSwap's gossip layer under
//! the libp2p gossipsub benchmark's contract).

pub mod plan;
pub mod topology;
pub mod transport;
