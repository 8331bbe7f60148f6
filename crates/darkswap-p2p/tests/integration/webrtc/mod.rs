//! WebRTC through the signaling server, and through a TURN server.

mod signaled;
mod turn;
