//! The resync scenario: what it costs a newcomer to fetch a large book, and a node back from an
//! absence to catch up with what changed meanwhile. The figures are bytes beside the size of
//! what had to move: the whole book for the newcomer, the orders published while the returner
//! was away for it.

use darkswap_lab::plan::{Plan, Record, Resync, BOOK_TAG};
use darkswap_p2p::protocol::{envelope, Message, ORDERBOOK_TOPIC};
use darkswap_support::types::{AssetId, Order, OrderDraft, Side};
use libp2p::identity::Keypair;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, io::Write, path::Path, time::Duration};

/// Shadow's clock starts at 2000-01-01T00:00:00Z (seconds).
const SIM_EPOCH_S: u64 = 946_684_800;

/// Writes a book of `orders` signed orders to `path` and returns the mean envelope size. Each
/// maker holds 500 orders (half the book's per-maker quota); they were created over the day
/// before the run and live 20 days.
pub fn write_book(path: &Path, orders: u32, payload: usize, seed: u64) -> std::io::Result<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xb00c);
    let makers: Vec<Keypair> = (0..orders.div_ceil(500))
        .map(|m| {
            let mut secret = [0x5a; 32];
            secret[..4].copy_from_slice(&m.to_le_bytes());
            Keypair::ed25519_from_bytes(secret).expect("32 bytes are an ed25519 secret")
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut total = 0usize;
    for k in 0..orders {
        let maker = &makers[(k / 500) as usize];
        let mut terms = (BOOK_TAG + u64::from(k)).to_be_bytes().to_vec();
        terms.resize(payload.max(8), 0xab);
        let draft = OrderDraft {
            base: AssetId::Btc,
            quote: "rune:840000:1".parse().expect("a rune id"),
            side: if k % 2 == 0 { Side::Sell } else { Side::Buy },
            amount: 1 + u128::from(k),
            price: 2_500,
            ttl: Duration::from_secs(20 * 86_400),
            terms,
        };
        let created = SIM_EPOCH_S - rng.gen_range(60..86_400);
        let order = Order::from_draft(maker.public().to_peer_id(), &draft, created, rng.gen());
        let bytes = envelope::seal(maker, ORDERBOOK_TOPIC, &Message::OrderAnnounce(order))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        out.write_all(&bytes)?;
        total += bytes.len();
    }
    out.flush()?;
    Ok(total as f64 / f64::from(orders.max(1)))
}

/// What the resync run showed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResyncFigures {
    pub nodes: usize,
    /// Orders in the book every node but the newcomer started with, and their mean size.
    pub book: usize,
    pub order_bytes: f64,
    /// The newcomer: from its start until it held the whole book (ms), and the bytes it
    /// received on the sync and reconciliation protocols meanwhile.
    pub newcomer_complete_ms: Option<u64>,
    pub newcomer_bytes: u64,
    /// Orders published while the returner was away; when it held all of them, counted from
    /// its return (ms); the bytes it sent and received on the sync and reconciliation
    /// protocols from its return to the end.
    pub changed: usize,
    pub returner_complete_ms: Option<u64>,
    pub returner_bytes: u64,
    /// Nodes that lacked some published order at the end.
    pub incomplete_nodes: usize,
}

/// Bytes on the sync and reconciliation protocols (both ways) in a `Counters` record.
fn sync_bytes(r: &Record) -> Option<(u64, u64)> {
    let Record::Counters { t, sent_by_protocol, received_by_protocol, .. } = r else { return None };
    let both = sent_by_protocol.iter().chain(received_by_protocol);
    let on = both.filter(|(p, _)| p.contains("/darkswap/sync/") || p.contains("/darkswap/reconcile/"));
    Some((*t, on.map(|(_, v)| v).sum()))
}

/// The figures of a run of `plan` with `resync`.
pub fn analyse(plan: &Plan, logs: &[Vec<Record>], resync: &Resync, book: usize, order_bytes: f64) -> ResyncFigures {
    let mut f = ResyncFigures { nodes: plan.hosts.len(), book, order_bytes, ..Default::default() };
    let published: HashMap<u64, u64> = logs
        .iter()
        .flatten()
        .filter_map(|r| match r {
            Record::Publish { t, tag } => Some((*tag, *t)),
            _ => None,
        })
        .collect();
    f.changed = published.values().filter(|t| (resync.away_from_ms..resync.away_to_ms).contains(*t)).count();
    for (host, log) in plan.hosts.iter().zip(logs) {
        let mut held: HashMap<u64, u64> = HashMap::new();
        let mut start = 0;
        for r in log {
            match r {
                Record::Start { t, .. } => start = *t,
                Record::Publish { t, tag } | Record::Receive { t, tag } => {
                    held.entry(*tag).or_insert(*t);
                }
                _ => {}
            }
        }
        if published.keys().any(|tag| !held.contains_key(tag)) {
            f.incomplete_nodes += 1;
        }
        if host.id == resync.newcomer {
            let book_held: Vec<u64> = held.iter().filter(|(tag, _)| **tag >= BOOK_TAG).map(|(_, t)| *t).collect();
            if book_held.len() == book {
                f.newcomer_complete_ms = book_held.iter().max().map(|t| t.saturating_sub(start));
            }
            f.newcomer_bytes = log.iter().filter_map(sync_bytes).map(|(_, b)| b).max().unwrap_or(0);
        }
        if host.id == resync.returner {
            let changed: Vec<u64> = published
                .iter()
                .filter(|(_, t)| (resync.away_from_ms..resync.away_to_ms).contains(*t))
                .map(|(tag, _)| *tag)
                .collect();
            let times: Option<Vec<u64>> = changed.iter().map(|tag| held.get(tag).copied()).collect();
            f.returner_complete_ms =
                times.and_then(|t| t.into_iter().max()).map(|t| t.saturating_sub(resync.away_to_ms));
            let counts: Vec<(u64, u64)> = log.iter().filter_map(sync_bytes).collect();
            let before = counts.iter().filter(|(t, _)| *t <= resync.away_to_ms).map(|(_, b)| *b).max().unwrap_or(0);
            let end = counts.iter().map(|(_, b)| *b).max().unwrap_or(0);
            f.returner_bytes = end.saturating_sub(before);
        }
    }
    f
}

/// The report's rows.
pub fn rows(f: &ResyncFigures) -> Vec<(String, Vec<String>)> {
    let ms = |v: Option<u64>| v.map_or("never".to_string(), |v| format!("{:.1} s", v as f64 / 1000.0));
    // "moved / size (ratio)", in kilobytes.
    let share = |moved: u64, size: f64| {
        format!("{:.1} KB / {:.1} KB ({:.2}x)", moved as f64 / 1000.0, size / 1000.0, moved as f64 / size.max(1.0))
    };
    let row = |name: &str, v: String| (name.to_string(), vec![v]);
    vec![
        row("nodes", f.nodes.to_string()),
        row("book: orders / mean order size", format!("{} / {:.0} B", f.book, f.order_bytes)),
        row("newcomer: start to complete book", ms(f.newcomer_complete_ms)),
        row("newcomer: bytes received / the book's size", share(f.newcomer_bytes, f.book as f64 * f.order_bytes)),
        row("orders published while the returner was away", f.changed.to_string()),
        row("returner: return to complete book", ms(f.returner_complete_ms)),
        row(
            "returner: bytes both ways / the difference's size",
            share(f.returner_bytes, f.changed as f64 * f.order_bytes),
        ),
        row("nodes lacking some published order at the end", f.incomplete_nodes.to_string()),
    ]
}
