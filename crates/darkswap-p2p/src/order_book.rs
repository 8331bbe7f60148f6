//! Each node's local view of the live order book: orders added from gossip or sync, removed when
//! cancelled, settled or expired. Bounded in total and per maker.

use crate::protocol::limits::{SYNC_BUCKETS, SYNC_PAGE_MAX};
use darkswap_support::types::{Order, OrderId, PeerId};
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

/// Caps on the order book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBookLimits {
    /// Most live orders held.
    pub max_orders: usize,
    /// Most live orders held from one maker.
    pub max_orders_per_maker: usize,
}

impl Default for OrderBookLimits {
    fn default() -> Self {
        Self { max_orders: 100_000, max_orders_per_maker: 1_000 }
    }
}

/// Why an order was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The book holds `max_orders` already.
    #[error("order book is full")]
    Full,
    /// The maker holds `max_orders_per_maker` already.
    #[error("maker is over its order quota")]
    MakerQuota,
}

/// What happened to an order offered to the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// It is new and now live.
    Added,
    /// It is already live.
    Duplicate,
    /// It was cancelled or settled before; it stays out.
    Withdrawn,
}

#[derive(Clone, Debug)]
struct Entry {
    order: Order,
    /// The maker's signed gossip envelope, served to peers that sync.
    envelope: Arc<[u8]>,
}

/// The local order book.
#[derive(Debug, Default)]
pub struct OrderBook {
    limits: OrderBookLimits,
    orders: BTreeMap<OrderId, Entry>,
    per_maker: HashMap<PeerId, usize>,
    /// Withdrawn order ids (cancelled or settled) with the maker and the time to forget them.
    withdrawn: HashMap<OrderId, (PeerId, u64)>,
}

impl OrderBook {
    /// An empty book with `limits`.
    pub fn new(limits: OrderBookLimits) -> Self {
        Self { limits, ..Default::default() }
    }

    /// Adds a validated order with the envelope it arrived in.
    pub fn insert(&mut self, order: Order, envelope: Arc<[u8]>) -> Result<Insert, BookError> {
        if self.orders.contains_key(&order.id) {
            return Ok(Insert::Duplicate);
        }
        if let Some((maker, _)) = self.withdrawn.get(&order.id) {
            if *maker == order.maker {
                return Ok(Insert::Withdrawn);
            }
        }
        if self.orders.len() >= self.limits.max_orders {
            return Err(BookError::Full);
        }
        let count = self.per_maker.entry(order.maker).or_default();
        if *count >= self.limits.max_orders_per_maker {
            return Err(BookError::MakerQuota);
        }
        *count += 1;
        self.orders.insert(order.id, Entry { order, envelope });
        Ok(Insert::Added)
    }

    /// Withdraws `id` on behalf of `maker` (cancel or settlement), remembering it until `forget_at`
    /// so a late copy cannot bring it back. Returns the order if it was live.
    ///
    /// A withdrawal by anyone but the order's maker is ignored.
    pub fn withdraw(&mut self, id: OrderId, maker: PeerId, forget_at: u64) -> Option<Order> {
        if let Some(entry) = self.orders.get(&id) {
            if entry.order.maker != maker {
                return None;
            }
        }
        if self.withdrawn.len() < self.limits.max_orders || self.withdrawn.contains_key(&id) {
            self.withdrawn.insert(id, (maker, forget_at));
        }
        let entry = self.orders.remove(&id)?;
        self.decrement(&maker);
        Some(entry.order)
    }

    fn decrement(&mut self, maker: &PeerId) {
        if let Some(c) = self.per_maker.get_mut(maker) {
            *c -= 1;
            if *c == 0 {
                self.per_maker.remove(maker);
            }
        }
    }

    /// Drops orders expired at `now` and forgets old withdrawals; returns the expired orders.
    pub fn expire(&mut self, now: u64) -> Vec<Order> {
        let gone: Vec<OrderId> =
            self.orders.iter().filter(|(_, e)| e.order.is_expired(now)).map(|(id, _)| *id).collect();
        let mut out = Vec::with_capacity(gone.len());
        for id in gone {
            if let Some(e) = self.orders.remove(&id) {
                self.decrement(&e.order.maker);
                out.push(e.order);
            }
        }
        self.withdrawn.retain(|_, (_, forget_at)| *forget_at > now);
        out
    }

    /// The live order with `id`.
    pub fn get(&self, id: &OrderId) -> Option<&Order> {
        self.orders.get(id).map(|e| &e.order)
    }

    /// All live orders (those not yet expired at `now`), in id order.
    pub fn live(&self, now: u64) -> Vec<Order> {
        self.orders.values().filter(|e| !e.order.is_expired(now)).map(|e| e.order.clone()).collect()
    }

    /// Number of orders held (expired ones linger until the next [`OrderBook::expire`]).
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// One sync page: envelopes of live orders with id > `after`, at most `limit` (capped at
    /// [`SYNC_PAGE_MAX`]), and where the next page starts.
    pub fn page(&self, after: Option<OrderId>, limit: u16, now: u64) -> (Vec<serde_bytes::ByteBuf>, Option<OrderId>) {
        self.page_in(after, limit, now, u64::MAX)
    }

    /// The bucket of the book digest an order id falls in.
    pub fn bucket(id: &OrderId) -> usize {
        usize::from(id.0[0]) % SYNC_BUCKETS
    }

    /// A digest of the live orders: for each of [`SYNC_BUCKETS`] buckets, the XOR of the first
    /// eight bytes of its order ids. Equal books have equal digests; a differing bucket says
    /// where to look. (Not a proof: a peer could lie, which only costs us one round of repair.)
    pub fn digest(&self, now: u64) -> Vec<u64> {
        let mut d = vec![0u64; SYNC_BUCKETS];
        for (id, e) in &self.orders {
            if !e.order.is_expired(now) {
                let mut head = [0u8; 8];
                head.copy_from_slice(&id.0[..8]);
                d[Self::bucket(id)] ^= u64::from_le_bytes(head);
            }
        }
        d
    }

    /// Buckets (a bit each) where `theirs` differs from this book's digest; all of them when
    /// `theirs` is not a digest.
    pub fn differing(&self, theirs: &[u64], now: u64) -> u64 {
        if theirs.len() != SYNC_BUCKETS {
            return u64::MAX;
        }
        let ours = self.digest(now);
        ours.iter().zip(theirs).enumerate().filter(|(_, (a, b))| a != b).fold(0, |m, (i, _)| m | 1 << i)
    }

    /// [`page`](Self::page) restricted to the buckets set in `mask`.
    pub fn page_in(
        &self,
        after: Option<OrderId>,
        limit: u16,
        now: u64,
        mask: u64,
    ) -> (Vec<serde_bytes::ByteBuf>, Option<OrderId>) {
        let limit = limit.clamp(1, SYNC_PAGE_MAX) as usize;
        let range = match after {
            Some(a) => self.orders.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => self.orders.range(..),
        };
        let mut out = Vec::new();
        let mut last = None;
        let mut more = false;
        for (id, e) in range {
            if out.len() == limit {
                more = true;
                break;
            }
            last = Some(*id);
            if !e.order.is_expired(now) && mask & (1 << Self::bucket(id)) != 0 {
                out.push(serde_bytes::ByteBuf::from(e.envelope.to_vec()));
            }
        }
        (out, if more { last } else { None })
    }

    /// The signed envelopes of all live orders, in id order.
    pub fn all_envelopes(&self, now: u64) -> Vec<Vec<u8>> {
        self.orders.values().filter(|e| !e.order.is_expired(now)).map(|e| e.envelope.to_vec()).collect()
    }

    /// The signed envelopes of the live orders among `ids` (at most [`SYNC_PAGE_MAX`]).
    pub fn envelopes(&self, ids: &[OrderId], now: u64) -> Vec<serde_bytes::ByteBuf> {
        ids.iter()
            .take(SYNC_PAGE_MAX as usize)
            .filter_map(|id| self.orders.get(id))
            .filter(|e| !e.order.is_expired(now))
            .map(|e| serde_bytes::ByteBuf::from(e.envelope.to_vec()))
            .collect()
    }

    /// The live orders as a sealed Negentropy set of (creation time, order id) items, for
    /// reconciliation (`protocol::reconcile`).
    pub(crate) fn reconciliation_set(&self, now: u64) -> negentropy::NegentropyStorageVector {
        let mut set = negentropy::NegentropyStorageVector::with_capacity(self.orders.len());
        for (id, e) in &self.orders {
            if !e.order.is_expired(now) {
                // Cannot fail: the set is not sealed yet.
                let _ = set.insert(e.order.created_at, reconciliation_id(id));
            }
        }
        let _ = set.seal();
        set
    }
}

/// An order id as a Negentropy item id (32 bytes; an order id is 16, the rest zero).
pub(crate) fn reconciliation_id(id: &OrderId) -> negentropy::Id {
    let mut bytes = [0u8; negentropy::ID_SIZE];
    bytes[..id.0.len()].copy_from_slice(&id.0);
    negentropy::Id::from_byte_array(bytes)
}

/// The order id inside a Negentropy item id, if it is one (the padding is zero).
pub(crate) fn order_id_of(id: &negentropy::Id) -> Option<OrderId> {
    let bytes = id.as_bytes();
    let mut out = OrderId([0; 16]);
    let n = out.0.len();
    if bytes[n..].iter().any(|b| *b != 0) {
        return None;
    }
    out.0.copy_from_slice(&bytes[..n]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_support::types::{AssetId, OrderDraft, Side};
    use std::time::Duration;

    fn order(maker: PeerId, nonce: u64, ttl: u64) -> Order {
        let d = OrderDraft {
            base: AssetId::Btc,
            quote: "rune:5:5".parse().unwrap(),
            side: Side::Sell,
            amount: 1,
            price: 1,
            ttl: Duration::from_secs(ttl),
            terms: Vec::new(),
        };
        Order::from_draft(maker, &d, 100, nonce)
    }

    #[test]
    fn add_cancel_expire_and_quota() {
        let m = PeerId::random();
        let mut book = OrderBook::new(OrderBookLimits { max_orders: 3, max_orders_per_maker: 2 });
        let env: Arc<[u8]> = Arc::from(vec![1u8]);
        let a = order(m, 1, 10);
        assert_eq!(book.insert(a.clone(), env.clone()), Ok(Insert::Added));
        assert_eq!(book.insert(a.clone(), env.clone()), Ok(Insert::Duplicate));
        assert_eq!(book.insert(order(m, 2, 100), env.clone()), Ok(Insert::Added));
        assert_eq!(book.insert(order(m, 3, 100), env.clone()), Err(BookError::MakerQuota));
        assert_eq!(book.insert(order(PeerId::random(), 4, 100), env.clone()), Ok(Insert::Added));
        assert_eq!(book.insert(order(PeerId::random(), 5, 100), env.clone()), Err(BookError::Full));
        // Only the maker can withdraw; a late copy stays out.
        assert!(book.withdraw(a.id, PeerId::random(), 200).is_none());
        assert_eq!(book.withdraw(a.id, m, 200).map(|o| o.id), Some(a.id));
        assert_eq!(book.insert(a.clone(), env.clone()), Ok(Insert::Withdrawn));
        assert_eq!(book.expire(250).len(), 2);
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn pages_cover_everything_once() {
        let mut book = OrderBook::new(OrderBookLimits::default());
        for n in 0..10 {
            book.insert(order(PeerId::random(), n, 100), Arc::from(vec![n as u8])).unwrap();
        }
        let (mut seen, mut after) = (Vec::new(), None);
        loop {
            let (page, next) = book.page(after, 3, 100);
            seen.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let mut seen: Vec<Vec<u8>> = seen.into_iter().map(|b| b.into_vec()).collect();
        seen.sort();
        assert_eq!(seen, (0..10u8).map(|n| vec![n]).collect::<Vec<_>>());
    }

    #[test]
    fn digests_find_the_differing_buckets() {
        let maker = PeerId::random();
        let (mut a, mut b) = (OrderBook::new(OrderBookLimits::default()), OrderBook::new(OrderBookLimits::default()));
        for n in 0..50 {
            let o = order(maker, n, 1000);
            a.insert(o.clone(), Arc::from(vec![n as u8])).unwrap();
            b.insert(o, Arc::from(vec![n as u8])).unwrap();
        }
        assert_eq!(b.differing(&a.digest(200), 200), 0, "equal books, nothing to send");
        assert_eq!(b.page_in(None, 256, 200, 0).0.len(), 0);
        let extra = order(maker, 99, 1000);
        b.insert(extra.clone(), Arc::from(vec![99u8])).unwrap();
        let mask = b.differing(&a.digest(200), 200);
        assert_eq!(mask, 1 << OrderBook::bucket(&extra.id), "only the new order's bucket differs");
        let (page, next) = b.page_in(None, 256, 200, mask);
        assert!(page.iter().any(|e| e.as_slice() == [99u8]) && next.is_none());
        assert!(page.len() < 50, "only that bucket is sent");
        assert_eq!(b.differing(&[1, 2, 3], 200), u64::MAX, "not a digest: everything");
    }
}
