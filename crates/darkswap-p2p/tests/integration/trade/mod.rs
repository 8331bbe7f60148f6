//! Trade negotiation and its end-to-end encryption.

mod encryption_table;
mod negotiation;
