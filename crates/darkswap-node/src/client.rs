//! Command-line client for a running node's control API.

use crate::api::{ApiError, ConnectionView, DialRequest, DialResponse, OrderView, PostOrder, Status};

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached.
    #[error("cannot reach the node's API at {url}: {reason} (is `darkswap-node` running?)")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The node answered with an error.
    #[error("the node refused: {0}")]
    Refused(String),
}

fn call<T: serde::de::DeserializeOwned>(
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<T, ClientError> {
    let mut resp = result.map_err(|e| ClientError::Unreachable { url: url.to_string(), reason: e.to_string() })?;
    let ok = resp.status().is_success();
    let body = resp.body_mut().read_to_string().map_err(|e| ClientError::Refused(e.to_string()))?;
    if !ok {
        let msg = serde_json::from_str::<ApiError>(&body).map(|e| e.error).unwrap_or(body);
        return Err(ClientError::Refused(msg));
    }
    serde_json::from_str(if body.is_empty() { "null" } else { &body }).map_err(|e| ClientError::Refused(e.to_string()))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// `GET /orders`.
pub fn orders(api: &str) -> Result<Vec<OrderView>, ClientError> {
    let url = format!("{api}/orders");
    call(&url, agent().get(&url).call())
}

/// `POST /orders`.
pub fn post(api: &str, order: &PostOrder) -> Result<OrderView, ClientError> {
    let url = format!("{api}/orders");
    call(&url, agent().post(&url).send_json(order))
}

/// `DELETE /orders/{id}`.
pub fn cancel(api: &str, id: &str) -> Result<(), ClientError> {
    let url = format!("{api}/orders/{id}");
    call::<Option<()>>(&url, agent().delete(&url).call()).map(|_| ())
}

/// `GET /status`.
pub fn status(api: &str) -> Result<Status, ClientError> {
    let url = format!("{api}/status");
    call(&url, agent().get(&url).call())
}

/// `POST /dial`.
pub fn dial(api: &str, addr: &str) -> Result<DialResponse, ClientError> {
    let url = format!("{api}/dial");
    call(&url, agent().post(&url).send_json(DialRequest { addr: addr.to_string() }))
}

/// `GET /connections`.
pub fn connections(api: &str) -> Result<Vec<ConnectionView>, ClientError> {
    let url = format!("{api}/connections");
    call(&url, agent().get(&url).call())
}
