//! A bounded pool of connections keyed by peer: reuse while fresh, idle expiry (`ttl`), a hard
//! age limit (`max_age`), and statistics. The relay connection pool keeps its relayed
//! connections here; the WebRTC connection manager will keep its connections here too.
//!
//! ```
//! use darkswap_p2p::connection_pool::{ConnectionPool, ConnectionPoolConfig};
//! use libp2p::PeerId;
//! use std::time::Duration;
//!
//! let pool = ConnectionPool::new(ConnectionPoolConfig {
//!     max_connections: 100,
//!     ttl: Duration::from_secs(300),
//!     max_age: Duration::from_secs(3600),
//!     enable_reuse: true,
//! });
//! let peer = PeerId::random();
//! pool.insert(peer, "a connection").unwrap(); // in use by the caller that made it
//! pool.release(&peer);
//! assert_eq!(pool.acquire(&peer), Some("a connection")); // reused
//! assert_eq!(pool.stats().in_use_connections, 1);
//! ```

use libp2p::PeerId;
use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};
use web_time::Instant;

/// Limits of a [`ConnectionPool`], as in the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPoolConfig {
    /// Most connections held.
    pub max_connections: usize,
    /// How long a connection may sit unused before it is pruned.
    pub ttl: Duration,
    /// Oldest a connection may get before it is pruned, used or not.
    pub max_age: Duration,
    /// Whether `acquire` hands out existing connections.
    pub enable_reuse: bool,
}

impl Default for ConnectionPoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 100,
            ttl: Duration::from_secs(300),
            max_age: Duration::from_secs(3600),
            enable_reuse: true,
        }
    }
}

/// Counts of a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionPoolStats {
    /// Connections held.
    pub total_connections: usize,
    /// Connections acquired and not released.
    pub in_use_connections: usize,
    /// Connections held and not in use.
    pub idle_connections: usize,
}

/// The pool is full of connections in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection pool full: {0} connections, all in use")]
pub struct PoolFull(pub usize);

struct Entry<C> {
    conn: C,
    created: Instant,
    last_used: Instant,
    users: usize,
}

/// Connections by peer, bounded and expiring. Thread-safe (`&self`).
pub struct ConnectionPool<C> {
    config: ConnectionPoolConfig,
    entries: Mutex<HashMap<PeerId, Entry<C>>>,
}

impl<C: Clone> std::fmt::Debug for ConnectionPool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

impl<C: Clone> ConnectionPool<C> {
    /// An empty pool.
    pub fn new(config: ConnectionPoolConfig) -> Self {
        Self { config, entries: Mutex::new(HashMap::new()) }
    }

    /// The limits.
    pub fn config(&self) -> &ConnectionPoolConfig {
        &self.config
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<PeerId, Entry<C>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces) the connection to `peer`, in use by the caller. When full, the least
    /// recently used idle connection makes room; when all are in use, [`PoolFull`].
    pub fn insert(&self, peer: PeerId, conn: C) -> Result<(), PoolFull> {
        let mut entries = self.entries();
        if !entries.contains_key(&peer) && entries.len() >= self.config.max_connections {
            let victim = entries.iter().filter(|(_, e)| e.users == 0).min_by_key(|(_, e)| e.last_used).map(|(p, _)| *p);
            match victim {
                Some(v) => {
                    entries.remove(&v);
                }
                None => return Err(PoolFull(entries.len())),
            }
        }
        let now = Instant::now();
        entries.insert(peer, Entry { conn, created: now, last_used: now, users: 1 });
        Ok(())
    }

    /// The connection to `peer`, if reuse is on and it is still within `max_age`; it counts as in
    /// use until [`release`](Self::release).
    pub fn acquire(&self, peer: &PeerId) -> Option<C> {
        if !self.config.enable_reuse {
            return None;
        }
        let mut entries = self.entries();
        let e = entries.get_mut(peer)?;
        if e.created.elapsed() >= self.config.max_age {
            return None;
        }
        e.users += 1;
        e.last_used = Instant::now();
        Some(e.conn.clone())
    }

    /// The connection to `peer` without taking it.
    pub fn get(&self, peer: &PeerId) -> Option<C> {
        self.entries().get(peer).map(|e| e.conn.clone())
    }

    /// Gives back one use of the connection to `peer`; `false` if there is none.
    pub fn release(&self, peer: &PeerId) -> bool {
        match self.entries().get_mut(peer) {
            Some(e) => {
                e.users = e.users.saturating_sub(1);
                e.last_used = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Removes the connection to `peer`.
    pub fn remove(&self, peer: &PeerId) -> Option<C> {
        self.entries().remove(peer).map(|e| e.conn)
    }

    /// Removes connections idle for `ttl` or older than `max_age`, and returns them.
    pub fn prune(&self) -> Vec<(PeerId, C)> {
        let (ttl, max_age) = (self.config.ttl, self.config.max_age);
        let mut entries = self.entries();
        let gone: Vec<PeerId> = entries
            .iter()
            .filter(|(_, e)| e.created.elapsed() >= max_age || (e.users == 0 && e.last_used.elapsed() >= ttl))
            .map(|(p, _)| *p)
            .collect();
        gone.into_iter().filter_map(|p| entries.remove(&p).map(|e| (p, e.conn))).collect()
    }

    /// Removes every connection for which `keep` says no.
    pub fn retain(&self, mut keep: impl FnMut(&PeerId, &C) -> bool) {
        self.entries().retain(|p, e| keep(p, &e.conn));
    }

    /// Counts.
    pub fn stats(&self) -> ConnectionPoolStats {
        let entries = self.entries();
        let in_use = entries.values().filter(|e| e.users > 0).count();
        ConnectionPoolStats {
            total_connections: entries.len(),
            in_use_connections: in_use,
            idle_connections: entries.len() - in_use,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reuse_expiry() {
        let pool =
            ConnectionPool::new(ConnectionPoolConfig { max_connections: 2, ttl: Duration::ZERO, ..Default::default() });
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        pool.insert(a, 1).unwrap();
        pool.insert(b, 2).unwrap();
        assert_eq!(pool.insert(c, 3), Err(PoolFull(2)));
        pool.release(&a);
        pool.insert(c, 3).unwrap();
        assert_eq!(pool.get(&a), None, "the idle one made room");
        assert_eq!(pool.acquire(&b), Some(2));
        pool.release(&b);
        pool.release(&b);
        pool.release(&c);
        assert_eq!(pool.prune().len(), 2, "idle beyond ttl");
        let no_reuse = ConnectionPool::new(ConnectionPoolConfig { enable_reuse: false, ..Default::default() });
        no_reuse.insert(a, 1).unwrap();
        assert_eq!(no_reuse.acquire(&a), None);
    }
}
