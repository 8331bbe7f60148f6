//! Errors, one small enum per operation, gathered in [`Error`] for `?` convenience.

use crate::{order_book::BookError, protocol::RejectReason, trade::TradeError};

/// Every error the crate returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network task has stopped (after `shutdown`, or it failed).
    #[error("the network task has stopped")]
    Stopped,
    /// The command queue to the network task is full (the task is overloaded); retry later.
    #[error("the network is busy: command queue full")]
    Busy,
    /// A multiaddr did not parse.
    #[error("invalid multiaddr {addr:?}: {reason}")]
    InvalidAddress {
        /// The text given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A topic name is empty or too long.
    #[error("invalid topic {0:?}")]
    InvalidTopic(String),
    /// Loading or creating the identity failed.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// Building the transport failed.
    #[error("transport setup failed: {0}")]
    Transport(String),
    /// Listening failed.
    #[error("listen failed: {0}")]
    Listen(String),
    /// Dialing failed.
    #[error("dial failed: {0}")]
    Dial(String),
    /// Opening or accepting an application stream failed.
    #[error("stream: {0}")]
    Stream(String),
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Sending a trade message failed.
    #[error(transparent)]
    Trade(#[from] TradeSendError),
    /// The authentication configuration cannot work.
    #[error(transparent)]
    AuthConfig(#[from] crate::auth::AuthConfigError),
    /// The encryption configuration cannot work.
    #[error(transparent)]
    EncryptionConfig(#[from] crate::encryption::EncryptionConfigError),
    /// No relay could be used (none known, all refused, or the reservation failed).
    #[error("relay: {0}")]
    Relay(String),
    /// Authenticating to a peer, or verifying one, failed.
    #[error(transparent)]
    Auth(#[from] AuthRequestError),
}

/// Why authenticating to a peer (or making it prove itself) failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthRequestError {
    /// The peer refused.
    #[error("refused by peer: {0}")]
    Refused(crate::auth::AuthRefusal),
    /// The peer's answer did not verify here.
    #[error("peer's proof refused: {0}")]
    Proof(#[from] crate::auth::ChallengeError),
    /// This node could not answer the peer's challenge.
    #[error("cannot answer the peer's challenge: {0}")]
    Answer(crate::auth::ChallengeError),
    /// The peer answered out of protocol.
    #[error("unexpected answer from peer")]
    Unexpected,
    /// A token was refused.
    #[error("token refused: {0}")]
    Token(crate::auth::TokenError),
    /// No `auth_config` was given for this operation.
    #[error("authentication is not configured")]
    NotConfigured,
    /// The peer could not be reached, or the stream failed.
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// Why a gossip publication failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The node is not subscribed to the topic.
    #[error("not subscribed to topic {0:?}")]
    NotSubscribed(String),
    /// The message breaks the protocol rules it would be rejected for elsewhere.
    #[error("message would be rejected by peers: {0}")]
    Invalid(RejectReason),
    /// The order to cancel is not one of this node's live orders.
    #[error("no live order of ours with that id")]
    UnknownOrder,
    /// The local book refused the order.
    #[error("order book: {0}")]
    Book(#[from] BookError),
    /// Sealing the envelope failed.
    #[error(transparent)]
    Envelope(#[from] crate::protocol::EnvelopeError),
    /// Gossipsub refused the message.
    #[error("gossipsub: {0}")]
    Gossip(String),
}

/// Why a trade message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum TradeSendError {
    /// This node's own session rules refuse the step.
    #[error("refused locally: {0}")]
    Refused(TradeError),
    /// The peer refused it.
    #[error("refused by peer: {0}")]
    RefusedByPeer(TradeError),
    /// The peer could not be reached or the stream failed.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The end-to-end session could not be set up, or the peer refused the sealed message.
    #[error("end-to-end encryption: {0}")]
    Sealing(String),
}
