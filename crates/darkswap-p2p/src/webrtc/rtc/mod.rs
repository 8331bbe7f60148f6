//! The native WebRTC machinery the signaled and the direct connections share: str0m driven by a
//! task of its own ([`driver`]), the UDP sockets of its candidates ([`sockets`]), gathering host
//! and server-reflexive candidates ([`gather`]), TURN ([`turn`]), when in-band channels may be
//! opened ([`channel_opening`]), and the libp2p byte stream over a data channel ([`stream`]).

pub(crate) mod channel_opening;
pub(crate) mod driver;
pub(crate) mod gather;
pub(crate) mod sockets;
pub(crate) mod stream;
pub(crate) mod turn;
