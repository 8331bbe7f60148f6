//! The node's ed25519 identity: random, or persisted in a file (libp2p's protobuf key encoding).

#[cfg(not(target_arch = "wasm32"))]
use crate::webrtc::direct::Certificate;
use libp2p::identity::Keypair;
use std::path::Path;

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not hold a valid key.
    #[error("identity file {path} does not hold a valid key: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key is not ed25519.
    #[error("identity key must be ed25519")]
    NotEd25519,
}

/// Loads the keypair in `path`, or creates a new ed25519 one there (mode 0600 on Unix).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_or_create(path: &Path) -> Result<Keypair, IdentityError> {
    let name = path.display().to_string();
    let io = |source| IdentityError::Io { path: name.clone(), source };
    match std::fs::read(path) {
        Ok(bytes) => {
            let key = Keypair::from_protobuf_encoding(&bytes)
                .map_err(|e| IdentityError::Invalid { path: name.clone(), reason: e.to_string() })?;
            key.clone().try_into_ed25519().map_err(|_| IdentityError::NotEd25519)?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| IdentityError::Invalid { path: name.clone(), reason: e.to_string() })?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            write_private(path, &bytes).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// A fresh WebRTC-direct certificate (its own ECDSA P-256 key, as WebRTC requires).
#[cfg(not(target_arch = "wasm32"))]
pub fn new_webrtc_certificate() -> Result<Certificate, IdentityError> {
    Certificate::generate()
        .map_err(|e| IdentityError::Invalid { path: "<generated webrtc certificate>".into(), reason: e.to_string() })
}

/// Loads the WebRTC-direct certificate (PEM with its key) in `path`, or creates one there (mode
/// 0600 on Unix), so the node's `/certhash/…` stays the same across restarts.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_or_create_webrtc_certificate(path: &Path) -> Result<Certificate, IdentityError> {
    let name = path.display().to_string();
    let io = |source| IdentityError::Io { path: name.clone(), source };
    match std::fs::read_to_string(path) {
        Ok(pem) => Certificate::from_pem(&pem)
            .map_err(|e| IdentityError::Invalid { path: name.clone(), reason: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cert = new_webrtc_certificate()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            write_private(path, cert.serialize_pem().as_bytes()).map_err(io)?;
            Ok(cert)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(all(not(target_arch = "wasm32"), unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(all(not(target_arch = "wasm32"), not(unix)))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Browsers have no file system: a path is refused.
#[cfg(target_arch = "wasm32")]
pub fn load_or_create(path: &Path) -> Result<Keypair, IdentityError> {
    Err(IdentityError::Io {
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::Unsupported, "no file system in the browser"),
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn persists_across_loads_and_rejects_garbage() {
        let dir = std::env::temp_dir().join(format!("darkswap-id-{}", std::process::id()));
        let path = dir.join("key");
        let _ = std::fs::remove_dir_all(&dir);
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(load_or_create(&path), Err(IdentityError::Invalid { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
