//! Size and count caps for everything that crosses the wire. Each one bounds memory a remote peer
//! can make us spend.

use std::time::Duration;

/// Largest gossip envelope the validator accepts (an order is ~200 bytes).
pub const MAX_GOSSIP_MESSAGE: usize = 8 * 1024;
/// Gossipsub frame cap; above [`MAX_GOSSIP_MESSAGE`] so oversized envelopes reach the validator and
/// get a typed rejection instead of a silent frame error.
pub const GOSSIP_TRANSMIT_MAX: usize = 64 * 1024;
/// Most message ids a node advertises to a peer in one gossip round (IHAVE), and asks a peer for
/// (IWANT). gossipsub's default, 5,000, does not fit its own default 16 KiB cap on the control
/// part of a frame: past ~740 ids (20 bytes each, 22 on the wire) the receiver fails the frame
/// and drops the stream, and after five such drops gossipsub stops using that connection for
/// good, silently. At 200 orders/s a round advertises ~600 ids, and more when heartbeats lag.
pub const GOSSIP_IHAVE_MAX: usize = 1024;
/// Cap on the control part of one gossip frame (IHAVE, IWANT, GRAFT, PRUNE, subscriptions): a
/// full IHAVE of [`GOSSIP_IHAVE_MAX`] ids (~22.6 KiB) with room to spare.
pub const GOSSIP_CONTROL_MAX: usize = 32 * 1024;
const _: () = assert!(GOSSIP_IHAVE_MAX * 22 + 1024 <= GOSSIP_CONTROL_MAX && GOSSIP_CONTROL_MAX <= GOSSIP_TRANSMIT_MAX);
/// Largest PSBT carried in a trade message.
pub const MAX_PSBT: usize = 256 * 1024;
/// Largest reason text in `Reject` / `Cancel`.
pub const MAX_REASON: usize = 256;
/// Largest encoded trade message.
pub const MAX_TRADE_MESSAGE: usize = MAX_PSBT + 1024;
/// Largest encoded trade acknowledgement.
pub const MAX_TRADE_ACK: usize = 1024;
/// Bytes end-to-end encryption and framing add to a trade message or acknowledgement.
pub const SEAL_OVERHEAD: usize = 64;
/// Largest trade-protocol request (a sealed trade message or a key offer).
pub const MAX_TRADE_REQUEST: usize = MAX_TRADE_MESSAGE + SEAL_OVERHEAD;
/// Largest trade-protocol reply (a sealed acknowledgement or a key offer).
pub const MAX_TRADE_REPLY: usize = crate::encryption::envelope::MAX_KEY_MESSAGE_BYTES + MAX_TRADE_ACK + SEAL_OVERHEAD;
/// Largest encoded sync request.
pub const MAX_SYNC_REQUEST: usize = 1024;
/// Buckets of an order-book digest (anti-entropy sync).
pub const SYNC_BUCKETS: usize = 64;
/// Most orders in one sync page.
pub const SYNC_PAGE_MAX: u16 = 256;
/// Largest encoded sync response.
pub const MAX_SYNC_RESPONSE: usize = SYNC_PAGE_MAX as usize * (MAX_GOSSIP_MESSAGE + 8) + 64;
/// Largest Negentropy message of a reconciliation round: a round over 100,000 orders needs a
/// few kilobytes, and a larger difference takes more rounds rather than larger ones.
pub const RECONCILE_FRAME: usize = 60_000;
/// Rounds one reconciliation may take (Negentropy needs about log16 of the book's size, plus
/// one per frame of differences): bounds a responder that never lets it end.
pub const RECONCILE_MAX_ROUNDS: u32 = 64;
/// Largest encoded reconciliation request or response (an offer or fetched orders: a page).
pub const MAX_RECONCILE_MESSAGE: usize = MAX_SYNC_RESPONSE;
/// Most sync pages fetched from one peer per connection (bounds a peer that never says "last").
pub const SYNC_MAX_PAGES: u32 = 1024;
/// Longest order lifetime accepted.
pub const MAX_ORDER_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How far in the future an order's creation time may be (clock skew allowance).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
