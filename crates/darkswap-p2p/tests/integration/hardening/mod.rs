//! Hardening against floods and resource exhaustion.

mod flood;
mod limits;
