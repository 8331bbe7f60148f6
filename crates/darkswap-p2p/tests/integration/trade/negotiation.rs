//! A full trade negotiation between two nodes, and out-of-turn steps refused.

use crate::support::*;
use darkswap_p2p::{
    error::TradeSendError,
    network::NetworkEvent,
    protocol::Message,
    trade::{TradeError, TradeState},
    Error,
};
use darkswap_support::types::{TradeBody, TradeId, TradeMessage, Txid};
use std::time::Duration;

async fn expect_step(rx: &mut tokio::sync::mpsc::UnboundedReceiver<NetworkEvent>, id: TradeId) -> TradeBody {
    next_matching(rx, |ev| match ev {
        NetworkEvent::MessageReceived { message: Message::Trade(t), topic, .. } if t.trade_id == id => {
            assert_eq!(topic, "darkswap/trade/v1");
            Some(t.body)
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_round_trip() {
    let ((maker, mut maker_rx), (taker, mut taker_rx), _) = meshed_pair().await;

    let order = maker.publish_order(draft(1, Duration::from_secs(600))).await.unwrap();
    until("taker sees the order", || async { taker.order(&order.id) }).await;

    let id = taker.start_trade(&order, 400).await.unwrap();
    assert_eq!(expect_step(&mut maker_rx, id).await, TradeBody::Intent { amount: 400 });
    let msg = |body| TradeMessage { trade_id: id, order_id: order.id, body };

    // Out of turn: the taker cannot send a PSBT before the maker accepts.
    let err = taker.send_trade(order.maker, msg(TradeBody::PsbtOffer { psbt: vec![1] })).await.unwrap_err();
    assert!(matches!(err, Error::Trade(TradeSendError::Refused(TradeError::UnexpectedStep { .. }))), "{err}");

    let t = taker.local_peer_id();
    assert_eq!(maker.send_trade(t, msg(TradeBody::Accept)).await.unwrap(), TradeState::Accepted);
    assert_eq!(expect_step(&mut taker_rx, id).await, TradeBody::Accept);
    let psbt = vec![0x70, 0x73, 0x62, 0x74, 0xff, 1, 2, 3];
    let st = taker.send_trade(order.maker, msg(TradeBody::PsbtOffer { psbt: psbt.clone() })).await.unwrap();
    assert_eq!(st, TradeState::PsbtOffered);
    assert_eq!(expect_step(&mut maker_rx, id).await, TradeBody::PsbtOffer { psbt: psbt.clone() });
    let signed = [psbt.clone(), vec![9; 64]].concat();
    let st = maker.send_trade(t, msg(TradeBody::PsbtSigned { psbt: signed.clone() })).await.unwrap();
    assert_eq!(st, TradeState::PsbtSigned);
    assert_eq!(expect_step(&mut taker_rx, id).await, TradeBody::PsbtSigned { psbt: signed });
    let txid = Txid([0xab; 32]);
    let st = taker.send_trade(order.maker, msg(TradeBody::Complete { txid })).await.unwrap();
    assert_eq!(st, TradeState::Completed);
    assert_eq!(expect_step(&mut maker_rx, id).await, TradeBody::Complete { txid });

    assert_eq!(maker.trade(&id).unwrap().state, TradeState::Completed);
    assert_eq!(taker.trade(&id).unwrap().state, TradeState::Completed);
    // Finished: a late cancel is refused.
    let err = maker.send_trade(t, msg(TradeBody::Cancel { reason: "late".into() })).await.unwrap_err();
    assert!(matches!(err, Error::Trade(TradeSendError::Refused(_))), "{err}");
    maker.shutdown().await.unwrap();
    taker.shutdown().await.unwrap();
}
