//! Order gossip: propagation through a line of nodes, churn, and the timer the gossip runs on.

mod churn;
mod line;
mod timers;
