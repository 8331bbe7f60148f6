//! Attacks, bad input of every kind, authentication, and security wired into the network.

mod attacks;
mod auth_table;
mod bad_input;
mod fuzz_regressions;
mod signaling_bad_input;
mod wired;
