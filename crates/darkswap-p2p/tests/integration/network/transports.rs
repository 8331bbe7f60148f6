//! Every native transport carries a real connection: TCP, QUIC, WebSocket, and TCP through DNS.

use crate::support::*;
use darkswap_p2p::network::{Network, NetworkConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_quic_websocket_and_dns_connect() {
    init_tracing();
    let server = Network::new(NetworkConfig::default()).await.unwrap();
    let id = server.local_peer_id();
    let tcp = server.listen_on("/ip4/127.0.0.1/tcp/0").await.unwrap();
    let quic = server.listen_on("/ip4/127.0.0.1/udp/0/quic-v1").await.unwrap();
    let ws = server.listen_on("/ip4/127.0.0.1/tcp/0/ws").await.unwrap();
    let (server, _rx) = drain(server);
    let tcp_port = tcp.to_string().rsplit('/').next().unwrap().to_string();

    let targets = [
        ("tcp", format!("{tcp}/p2p/{id}")),
        ("quic", format!("{quic}/p2p/{id}")),
        ("websocket", format!("{ws}/p2p/{id}")),
        ("dns", format!("/dns4/localhost/tcp/{tcp_port}/p2p/{id}")),
    ];
    for (name, addr) in targets {
        let client = Network::new(NetworkConfig::default()).await.unwrap();
        let remote = tokio::time::timeout(WAIT, client.dial(&addr)).await.expect(name).expect(name);
        assert_eq!(remote, id, "{name}");
        assert!(client.connected_peers().await.unwrap().contains(&id), "{name}");
        client.shutdown().await.unwrap();
    }
    // Bad addresses are typed errors, not panics.
    let client = Network::new(NetworkConfig::default()).await.unwrap();
    assert!(matches!(client.dial("not a multiaddr").await, Err(darkswap_p2p::Error::InvalidAddress { .. })));
    assert!(matches!(
        client.listen_on("/ip4/127.0.0.1/tcp/notaport").await,
        Err(darkswap_p2p::Error::InvalidAddress { .. })
    ));
    let refused = format!("/ip4/127.0.0.1/tcp/1/p2p/{id}");
    assert!(matches!(client.dial(&refused).await, Err(darkswap_p2p::Error::Dial(_))));
    client.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}
