//! The authentication bad-input table: every way a proof or token can be wrong gets its own error,
//! and the manager keeps working for honest peers afterwards.

use darkswap_p2p::auth::{
    AuthConfigError, AuthManager, AuthManagerConfig, AuthMethod, AuthorizationLevel, ChallengeError, DecodeError,
    Proof, TokenError,
};
use libp2p::{identity::Keypair, PeerId};
use std::time::Duration;

fn cfg(method: AuthMethod, key: &[u8]) -> AuthManagerConfig {
    AuthManagerConfig {
        auth_method: method,
        shared_key: (!key.is_empty()).then(|| key.to_vec()),
        require_auth: true,
        ..Default::default()
    }
}

fn pair(method: AuthMethod) -> (AuthManager, AuthManager) {
    (AuthManager::new(cfg(method, b"secret-key")).unwrap(), AuthManager::new(cfg(method, b"secret-key")).unwrap())
}

#[test]
fn happy_paths_for_every_method() {
    for method in [AuthMethod::SharedKey, AuthMethod::ChallengeResponse, AuthMethod::PublicKey] {
        let (verifier, prover) = pair(method);
        let who = prover.local_peer_id();
        assert_eq!(
            verifier.authorization_level(&who),
            AuthorizationLevel::None,
            "require_auth holds newcomers at None"
        );
        if method == AuthMethod::PublicKey {
            verifier.allow_public_key(&public_of(&prover), AuthorizationLevel::Relay);
        }
        let challenge = verifier.generate_challenge(&who).unwrap();
        let grant = verifier.verify_response(&who, &prover.respond_to_challenge(&challenge).unwrap()).unwrap();
        let want = if method == AuthMethod::PublicKey { AuthorizationLevel::Relay } else { AuthorizationLevel::Basic };
        assert_eq!(grant.level, want, "{method:?}");
        assert!(verifier.is_authenticated(&who));
        // The token works later, and survives the wire.
        let bytes = grant.token.to_bytes();
        assert_eq!(verifier.validate_token(&who, &bytes), Ok(want));
        verifier.revoke(&who);
        assert_eq!(verifier.authorization_level(&who), AuthorizationLevel::None);
        assert_eq!(verifier.authenticate_with_token(&who, &bytes), Ok(want));
        assert_eq!(verifier.authorization_level(&who), want);
    }
}

fn public_of(m: &AuthManager) -> libp2p::identity::PublicKey {
    darkswap_p2p::auth::peer_public_key(&m.local_peer_id()).unwrap()
}

#[test]
fn shared_key_tokens_verify_across_the_network_and_levels_come_from_issuers() {
    let (operator, relay) = pair(AuthMethod::SharedKey);
    let client = AuthManager::new(cfg(AuthMethod::SharedKey, b"secret-key")).unwrap();
    let token = operator.issue_token(&relay.local_peer_id(), AuthorizationLevel::Relay).unwrap();
    assert_eq!(
        client.authenticate_with_token(&relay.local_peer_id(), &token.to_bytes()),
        Ok(AuthorizationLevel::Relay)
    );
    let outsider = AuthManager::new(cfg(AuthMethod::SharedKey, b"another-key")).unwrap();
    assert_eq!(outsider.validate_token(&relay.local_peer_id(), &token.to_bytes()), Err(TokenError::BadSeal));
}

#[test]
fn trusted_and_banned_peers() {
    let trusted = PeerId::random();
    let banned = Keypair::generate_ed25519();
    let mut config = cfg(AuthMethod::SharedKey, b"k");
    config.trusted_peers.insert(trusted);
    config.banned_peers.insert(banned.public().to_peer_id());
    let verifier = AuthManager::new(config.clone()).unwrap();
    assert_eq!(verifier.authorization_level(&trusted), AuthorizationLevel::Admin);
    let banned_id = banned.public().to_peer_id();
    assert_eq!(verifier.generate_challenge(&banned_id), Err(ChallengeError::Banned(banned_id)));
    assert_eq!(verifier.issue_token(&banned_id, AuthorizationLevel::Basic), Err(TokenError::Banned(banned_id)));
    // A token minted elsewhere does not help a banned peer either.
    let elsewhere = AuthManager::new(cfg(AuthMethod::SharedKey, b"k")).unwrap();
    let token = elsewhere.issue_token(&banned_id, AuthorizationLevel::Admin).unwrap();
    assert_eq!(verifier.validate_token(&banned_id, &token.to_bytes()), Err(TokenError::Banned(banned_id)));
    assert_eq!(verifier.authorization_level(&banned_id), AuthorizationLevel::None);
    // Banning at run time drops a live session.
    let prover = AuthManager::with_identity(cfg(AuthMethod::SharedKey, b"k"), Keypair::generate_ed25519()).unwrap();
    let who = prover.local_peer_id();
    let c = verifier.generate_challenge(&who).unwrap();
    verifier.verify_response(&who, &prover.respond_to_challenge(&c).unwrap()).unwrap();
    verifier.ban_peer(who);
    assert!(!verifier.is_authorized(&who, AuthorizationLevel::Basic));
}

#[test]
fn bad_input_table() {
    let (verifier, prover) = pair(AuthMethod::SharedKey);
    let who = prover.local_peer_id();

    // Wrong shared key.
    let wrong = AuthManager::new(cfg(AuthMethod::SharedKey, b"wrong-key")).unwrap();
    let wrong_id = wrong.local_peer_id();
    let c = verifier.generate_challenge(&wrong_id).unwrap();
    assert_eq!(
        verifier.verify_response(&wrong_id, &wrong.respond_to_challenge(&c).unwrap()),
        Err(ChallengeError::BadProof)
    );

    // Reused challenge: the second answer finds no challenge.
    let c = verifier.generate_challenge(&who).unwrap();
    let r = prover.respond_to_challenge(&c).unwrap();
    verifier.verify_response(&who, &r).unwrap();
    assert_eq!(verifier.verify_response(&who, &r), Err(ChallengeError::UnknownChallenge));

    // A response relayed by another peer.
    let c = verifier.generate_challenge(&who).unwrap();
    let r = prover.respond_to_challenge(&c).unwrap();
    assert_eq!(verifier.verify_response(&PeerId::random(), &r), Err(ChallengeError::WrongPeer));

    // An altered challenge (longer expiry) inside the response.
    let c = verifier.generate_challenge(&who).unwrap();
    let mut r = prover.respond_to_challenge(&c).unwrap();
    r.challenge.expires_at += 3600;
    assert_eq!(verifier.verify_response(&who, &r), Err(ChallengeError::Mismatch));

    // A challenge addressed to someone else.
    let c = verifier.generate_challenge(&PeerId::random()).unwrap();
    assert_eq!(prover.respond_to_challenge(&c), Err(ChallengeError::NotForUs));

    // Expired challenge.
    let mut short = cfg(AuthMethod::SharedKey, b"secret-key");
    short.challenge_ttl = Duration::from_millis(1);
    let hasty = AuthManager::new(short).unwrap();
    let c = hasty.generate_challenge(&who).unwrap();
    let r = prover.respond_to_challenge(&c).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(hasty.verify_response(&who, &r), Err(ChallengeError::Expired));

    // Too many outstanding challenges for one peer.
    let flood = PeerId::random();
    let errors: Vec<_> = (0..10).filter_map(|_| verifier.generate_challenge(&flood).err()).collect();
    assert!(errors.iter().all(|e| *e == ChallengeError::TooManyPending) && !errors.is_empty());

    // Signature by the wrong key: a proof produced by a key other than the prover's.
    let (sig_verifier, sig_prover) = pair(AuthMethod::ChallengeResponse);
    let imposter = AuthManager::new(cfg(AuthMethod::ChallengeResponse, b"")).unwrap();
    let victim = sig_prover.local_peer_id();
    let c = sig_verifier.generate_challenge(&victim).unwrap();
    let mut forged = c.clone();
    forged.prover = imposter.local_peer_id();
    let mut r = imposter.respond_to_challenge(&forged).unwrap();
    r.challenge = c;
    assert_eq!(sig_verifier.verify_response(&victim, &r), Err(ChallengeError::BadProof));
    // A MAC where a signature is due.
    let c = sig_verifier.generate_challenge(&victim).unwrap();
    let r = darkswap_p2p::auth::ChallengeResponse { challenge: c, proof: Proof::Mac([0; 32]) };
    assert_eq!(
        sig_verifier.verify_response(&victim, &r),
        Err(ChallengeError::WrongProofKind(AuthMethod::ChallengeResponse))
    );

    // PublicKey: valid signature, key not on the allow-list.
    let (pk_verifier, pk_prover) = pair(AuthMethod::PublicKey);
    let id = pk_prover.local_peer_id();
    let c = pk_verifier.generate_challenge(&id).unwrap();
    assert_eq!(
        pk_verifier.verify_response(&id, &pk_prover.respond_to_challenge(&c).unwrap()),
        Err(ChallengeError::NotAllowed(id))
    );

    // Tokens: forged, for another peer, expired, untrusted issuer, garbage, unknown version.
    let token = verifier.issue_token(&who, AuthorizationLevel::Basic).unwrap();
    let mut forged = token.clone();
    forged.level = AuthorizationLevel::Admin;
    assert_eq!(verifier.validate_token(&who, &forged.to_bytes()), Err(TokenError::BadSeal));
    let other = PeerId::random();
    assert_eq!(verifier.validate_token(&other, &token.to_bytes()), Err(TokenError::WrongPeer(who)));
    let mut zero = cfg(AuthMethod::SharedKey, b"secret-key");
    zero.token_ttl = Duration::ZERO;
    let stale = AuthManager::new(zero).unwrap().issue_token(&who, AuthorizationLevel::Basic).unwrap();
    assert_eq!(verifier.validate_token(&who, &stale.to_bytes()), Err(TokenError::Expired));
    let (sig_issuer, _) = pair(AuthMethod::ChallengeResponse);
    let t = sig_issuer.issue_token(&victim, AuthorizationLevel::Admin).unwrap();
    assert_eq!(
        sig_verifier.validate_token(&victim, &t.to_bytes()),
        Err(TokenError::UntrustedIssuer(sig_issuer.local_peer_id()))
    );
    assert!(matches!(
        verifier.validate_token(&who, b"\x01garbage"),
        Err(TokenError::Decode(DecodeError::Malformed(_)))
    ));
    let mut v2 = token.to_bytes();
    v2[0] = 2;
    assert_eq!(verifier.validate_token(&who, &v2), Err(TokenError::Decode(DecodeError::UnknownVersion(2))));
    assert_eq!(verifier.validate_token(&who, &[]), Err(TokenError::Decode(DecodeError::Empty)));
    assert_eq!(verifier.validate_token(&who, &vec![1; 4096]), Err(TokenError::Decode(DecodeError::Oversized(512))));

    // Configuration errors.
    assert_eq!(AuthManager::new(cfg(AuthMethod::SharedKey, b"")).err(), Some(AuthConfigError::MissingSharedKey));

    // After all that, honest peers still authenticate.
    let c = verifier.generate_challenge(&who).unwrap();
    assert_eq!(
        verifier.verify_response(&who, &prover.respond_to_challenge(&c).unwrap()).unwrap().level,
        AuthorizationLevel::Basic
    );
}
