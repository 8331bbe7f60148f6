//! Circuit relay: reservations and circuits, the relay pool, and what a relay can see.

mod circuit;
mod pool;
mod what_a_relay_sees;
