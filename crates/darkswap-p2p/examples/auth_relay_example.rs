//! An authenticated relay: it serves reservations only to peers that prove the network's shared
//! key. A member reserves and is reachable through it; an outsider is refused. Starts everything
//! itself on loopback and exits.
//!
//! Run: `cargo run -p darkswap-p2p --example auth_relay_example`

use darkswap_p2p::{
    auth::{AuthManager, AuthManagerConfig, AuthMethod, AuthorizationLevel},
    network::{Network, NetworkConfig, NetworkEvent, NetworkNotice, RelayServerConfig},
};
use std::{collections::HashSet, time::Duration};

fn auth_config() -> AuthManagerConfig {
    AuthManagerConfig {
        auth_method: AuthMethod::SharedKey,
        shared_key: Some(b"secret-key".to_vec()),
        token_ttl: Duration::from_secs(3600),
        challenge_ttl: Duration::from_secs(60),
        trusted_peers: HashSet::new(),
        banned_peers: HashSet::new(),
        default_auth_level: AuthorizationLevel::Basic,
        require_auth: true,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let relay = Network::builder(NetworkConfig { topics: vec![], ..NetworkConfig::default() })
        .relay_server(RelayServerConfig::default())
        .auth(auth_config())
        .build()
        .await?;
    let relay_addr = format!("{}/p2p/{}", relay.listen_on("/ip4/127.0.0.1/tcp/0").await?, relay.local_peer_id());
    println!("relay {relay_addr} (requires authentication)");
    let config = || NetworkConfig { relay_peers: vec![relay_addr.parse().unwrap()], ..NetworkConfig::default() };

    // A member: authenticates with the shared key, then reserves.
    let mut member = Network::builder(config()).auth(auth_config()).build().await?;
    let wait = Duration::from_secs(20);
    tokio::time::timeout(wait, async {
        while let Some(ev) = member.next_event().await {
            if let NetworkEvent::RelayReserved { relay_peer_id, reservation_id } = ev {
                println!("member reserved on {relay_peer_id} (reservation {reservation_id})");
                break;
            }
        }
    })
    .await?;
    println!("relay sees the member at level {:?}", relay.auth().authorization_level(&member.local_peer_id()));

    // An outsider without the key: the relay refuses its reservation.
    let mut outsider = Network::new(config()).await?;
    tokio::time::timeout(wait, async {
        while let Some(notice) = outsider.next_notice().await {
            if let NetworkNotice::RelayReservationFailed { error, .. } = notice {
                println!("outsider refused: {error}");
                break;
            }
        }
    })
    .await?;

    // The seed's challenge flow, by hand: the operator's AuthManager checks a relay's proof.
    let operator = AuthManager::new(auth_config())?;
    let relay_side = AuthManager::new(auth_config())?;
    let challenge = operator.generate_challenge(&relay_side.local_peer_id())?;
    let response = relay_side.respond_to_challenge(&challenge)?;
    let grant = operator.verify_response(&relay_side.local_peer_id(), &response)?;
    println!("challenge answered: level {:?}, token of {} bytes", grant.level, grant.token.to_bytes().len());

    for net in [member, outsider, relay] {
        net.shutdown().await?;
    }
    Ok(())
}
