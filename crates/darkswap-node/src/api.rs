//! The node's local control API (HTTP + JSON, loopback by default): read the book, post and
//! cancel orders, see peers. `darkswap-node orders|post|cancel|status` are its command-line client.
//!
//! | method | path            | body / answer                                   |
//! |--------|-----------------|-------------------------------------------------|
//! | GET    | /status         | [`Status`]                                       |
//! | GET    | /orders         | `[OrderView]`, live orders in id order           |
//! | POST   | /orders         | [`PostOrder`] → [`OrderView`] (the posted order)  |
//! | DELETE | /orders/{id}    | 204 when cancelled, 404 when not ours / unknown  |
//! | POST   | /dial           | [`DialRequest`] → [`DialResponse`] once connected |
//! | GET    | /connections    | `[ConnectionView]`, direct and relayed            |
//!
//! Amounts and prices are decimal strings, since they may exceed what JSON numbers hold exactly.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Json, Router,
};
use darkswap_p2p::{
    error::PublishError,
    network::{NetworkHandle, NetworkStats, Reachability},
    Error,
};
use darkswap_support::types::OrderId;
pub use darkswap_support::view::{OrderView, PostOrder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Answer of `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// This node's peer id.
    pub peer_id: String,
    /// Addresses it listens on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<String>,
    /// Live orders in the local book.
    pub orders: usize,
    /// Rejected inbound messages by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Accepted gossip messages.
    pub messages_accepted: u64,
    /// AutoNAT's view: `unknown`, `private` or `public <addr>`.
    pub reachability: String,
}

/// Body of `POST /dial`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DialRequest {
    /// Multiaddr to dial (ending in `/p2p/<peer id>`; through a relay:
    /// `…/p2p/<relay>/p2p-circuit/p2p/<peer>`).
    pub addr: String,
}

/// Answer of `POST /dial`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DialResponse {
    /// The peer now connected.
    pub peer_id: String,
}

/// One connection, as `GET /connections` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionView {
    /// Remote peer id.
    pub peer_id: String,
    /// Remote address.
    pub addr: String,
    /// Over a relay circuit.
    pub relayed: bool,
    /// Dialed by this node.
    pub outbound: bool,
}

/// An API error: a status code and a message.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
}

struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Publish(PublishError::UnknownOrder) => StatusCode::NOT_FOUND,
            Error::Publish(PublishError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Busy => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure(code, e.to_string())
    }
}

/// The control API's routes over `network`.
pub fn router(network: NetworkHandle) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/orders", get(list_orders).post(post_order))
        .route("/orders/{id}", delete(cancel_order))
        .route("/dial", post(dial))
        .route("/connections", get(connections))
        .with_state(network)
}

async fn status(State(net): State<NetworkHandle>) -> Result<Json<Status>, Failure> {
    let peers = net.connected_peers().await?;
    let stats: NetworkStats = net.stats();
    Ok(Json(Status {
        peer_id: net.local_peer_id().to_string(),
        listen_addrs: net.listen_addrs().iter().map(|a| a.to_string()).collect(),
        peers: peers.iter().map(|p| p.to_string()).collect(),
        orders: net.orders().len(),
        rejected: stats.rejected.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
        messages_accepted: stats.messages_accepted,
        reachability: match net.reachability() {
            Reachability::Unknown => "unknown".into(),
            Reachability::Private => "private".into(),
            Reachability::Public(addr) => format!("public {addr}"),
        },
    }))
}

async fn dial(State(net): State<NetworkHandle>, Json(body): Json<DialRequest>) -> Result<Json<DialResponse>, Failure> {
    let peer = net.dial(&body.addr).await.map_err(|e| match e {
        Error::InvalidAddress { .. } => Failure(StatusCode::BAD_REQUEST, e.to_string()),
        e => Failure(StatusCode::BAD_GATEWAY, e.to_string()),
    })?;
    Ok(Json(DialResponse { peer_id: peer.to_string() }))
}

async fn connections(State(net): State<NetworkHandle>) -> Json<Vec<ConnectionView>> {
    let mut list: Vec<ConnectionView> = net
        .connections()
        .into_iter()
        .map(|c| ConnectionView {
            peer_id: c.peer_id.to_string(),
            addr: c.remote_addr.to_string(),
            relayed: c.relayed,
            outbound: c.outbound,
        })
        .collect();
    list.sort_by(|a, b| (&a.peer_id, &a.addr).cmp(&(&b.peer_id, &b.addr)));
    Json(list)
}

async fn list_orders(State(net): State<NetworkHandle>) -> Json<Vec<OrderView>> {
    Json(net.orders().iter().map(OrderView::from).collect())
}

async fn post_order(State(net): State<NetworkHandle>, Json(body): Json<PostOrder>) -> Result<Json<OrderView>, Failure> {
    let draft = body.to_draft().map_err(|e| Failure(StatusCode::BAD_REQUEST, e))?;
    let order = net.publish_order(draft).await?;
    tracing::info!(id = %order.id, "order posted through the API");
    Ok(Json(OrderView::from(&order)))
}

async fn cancel_order(State(net): State<NetworkHandle>, Path(id): Path<String>) -> Result<StatusCode, Failure> {
    let id: OrderId = id.parse().map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("bad order id {id:?}")))?;
    net.cancel_order(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
