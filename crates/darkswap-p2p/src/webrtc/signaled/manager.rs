//! [`WebRtcConnectionManager`]: WebRTC connections by peer, made through a signaling client and
//! kept in a bounded, expiring [`ConnectionPool`].

use super::{WebRtcConnection, WebRtcError, WebRtcSignalingClient};
use crate::connection_pool::{ConnectionPool, ConnectionPoolConfig, ConnectionPoolStats};
use libp2p::PeerId;
use std::sync::Arc;

/// Makes, reuses and retires WebRTC connections.
///
/// A connection handed out by [`create_connection`](Self::create_connection) or
/// [`get_connection`](Self::get_connection) counts as in use until
/// [`release_connection`](Self::release_connection); idle ones expire after the pool's `ttl`, all
/// of them after `max_age`, and dead ones (the peer went away) at the next prune.
#[derive(Debug, Clone)]
pub struct WebRtcConnectionManager {
    local_peer_id: PeerId,
    signaling: Arc<WebRtcSignalingClient>,
    pool: Arc<ConnectionPool<Arc<WebRtcConnection>>>,
}

impl WebRtcConnectionManager {
    /// A manager with a default pool.
    pub fn new(local_peer_id: PeerId, signaling_client: Arc<WebRtcSignalingClient>) -> Self {
        let pool = Arc::new(ConnectionPool::new(ConnectionPoolConfig::default()));
        Self::with_connection_pool(local_peer_id, signaling_client, pool)
    }

    /// A manager keeping its connections in `connection_pool`.
    pub fn with_connection_pool(
        local_peer_id: PeerId,
        signaling_client: Arc<WebRtcSignalingClient>,
        connection_pool: Arc<ConnectionPool<Arc<WebRtcConnection>>>,
    ) -> Self {
        if local_peer_id != signaling_client.peer_id() {
            tracing::warn!(%local_peer_id, client = %signaling_client.peer_id(), "manager and signaling client ids differ; connections use the client's");
        }
        Self { local_peer_id, signaling: signaling_client, pool: connection_pool }
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The pool.
    pub fn pool(&self) -> &Arc<ConnectionPool<Arc<WebRtcConnection>>> {
        &self.pool
    }

    /// A live connection to `peer`: the pooled one when reuse is on, else a new one (offer,
    /// answer, ICE, identity handshake) added to the pool. In use until released.
    pub async fn create_connection(&self, peer_id: &PeerId) -> Result<Arc<WebRtcConnection>, WebRtcError> {
        if let Some(c) = self.get_connection(peer_id) {
            return Ok(c);
        }
        let connection = self.signaling.connect_to_peer(peer_id).await?;
        if let Err(full) = self.pool.insert(*peer_id, connection.clone()) {
            let _ = connection.close().await;
            return Err(full.into());
        }
        Ok(connection)
    }

    /// The pooled live connection to `peer`, marked in use; `None` if there is none (or reuse is off).
    pub fn get_connection(&self, peer_id: &PeerId) -> Option<Arc<WebRtcConnection>> {
        let c = self.pool.acquire(peer_id)?;
        if c.is_connected() {
            return Some(c);
        }
        self.pool.remove(peer_id);
        None
    }

    /// Puts a connection another peer opened into the pool, idle, and returns it.
    pub fn adopt(&self, connection: Arc<WebRtcConnection>) -> Result<Arc<WebRtcConnection>, WebRtcError> {
        let peer = connection.remote_peer_id();
        self.pool.insert(peer, connection.clone())?;
        self.pool.release(&peer);
        Ok(connection)
    }

    /// Waits for the next connection another peer opens and [`adopt`](Self::adopt)s it.
    pub async fn accept_connection(&self) -> Result<Arc<WebRtcConnection>, WebRtcError> {
        let c = self.signaling.next_connection().await.ok_or(WebRtcError::Closed)?;
        self.adopt(c)
    }

    /// Gives back one use of the connection to `peer`; `false` if none is pooled.
    pub fn release_connection(&self, peer_id: &PeerId) -> bool {
        self.pool.release(peer_id)
    }

    /// Closes the connection to `peer` and drops it from the pool.
    pub async fn close_connection(&self, peer_id: &PeerId) -> Result<(), WebRtcError> {
        let c = self.pool.remove(peer_id).ok_or(WebRtcError::NoConnection(Box::new(*peer_id)))?;
        c.close().await
    }

    /// Pool counts.
    pub fn get_connection_stats(&self) -> ConnectionPoolStats {
        self.pool.stats()
    }

    /// Drops dead connections, idle ones past `ttl` and all past `max_age`; returns how many went.
    pub fn prune_connections(&self) -> usize {
        let mut dead = 0;
        self.pool.retain(|_, c| {
            let alive = c.is_connected();
            dead += usize::from(!alive);
            alive
        });
        let expired = self.pool.prune();
        let n = dead + expired.len();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            for (_, c) in expired {
                rt.spawn(async move {
                    let _ = c.close().await;
                });
            }
        }
        n
    }
}
