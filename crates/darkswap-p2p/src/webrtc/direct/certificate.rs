//! The DTLS certificate of a WebRTC-direct listener. Its SHA-256 fingerprint is the
//! `/certhash/…` in the address browsers dial, so a node that keeps the certificate in a file
//! keeps its address across restarts.

use libp2p_webrtc_utils::Fingerprint;
use str0m::config::DtlsCert;
use zeroize::Zeroizing;

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Generating the key or the certificate failed.
    #[error("generating the WebRTC certificate: {0}")]
    Generate(String),
    /// The PEM text is not a certificate with its key.
    #[error("not a WebRTC certificate with its key: {0}")]
    Invalid(String),
}

/// A self-signed ECDSA P-256 certificate with its private key (WebRTC's usual choice, which
/// every browser accepts).
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    /// PKCS#8.
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").field("fingerprint", &self.fingerprint()).finish()
    }
}

/// PEM labels of the private key: the standard one, and the one webrtc-rs wrote (files made
/// before the move to str0m).
const KEY_LABELS: [&str; 2] = ["PRIVATE KEY", "PRIVATE_KEY"];

impl Certificate {
    /// A fresh certificate with its own key.
    pub fn generate() -> Result<Self, CertificateError> {
        let fail = |e: rcgen::Error| CertificateError::Generate(e.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "darkswap-p2p webrtc-direct");
        // Firefox refuses two certificates with one issuer and serial, even across machines.
        params.serial_number = Some(rand::random::<[u8; 16]>().to_vec().into());
        let cert = params.self_signed(&key).map_err(fail)?;
        Ok(Self { der: cert.der().to_vec(), key: Zeroizing::new(key.serialize_der()) })
    }

    /// Reads a certificate and its key from PEM ([`serialize_pem`](Self::serialize_pem)'s
    /// output, or a file libp2p-webrtc wrote).
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let invalid = |reason: String| CertificateError::Invalid(reason);
        let blocks = pem::parse_many(pem).map_err(|e| invalid(e.to_string()))?;
        let der = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| invalid("no CERTIFICATE block".into()))?
            .contents()
            .to_vec();
        let key = blocks
            .iter()
            .find(|b| KEY_LABELS.contains(&b.tag()))
            .ok_or_else(|| invalid("no PRIVATE KEY block".into()))?
            .contents();
        let pair = rcgen::KeyPair::try_from(key).map_err(|e| invalid(format!("private key: {e}")))?;
        // The certificate must carry this key's public half, or DTLS fails at the first peer.
        let public = pair.public_key_raw();
        if !der.windows(public.len()).any(|w| w == public) {
            return Err(invalid("the private key does not belong to the certificate".into()));
        }
        Ok(Self { der, key: Zeroizing::new(key.to_vec()) })
    }

    /// The certificate and its key as PEM, for a file only this node can read.
    pub fn serialize_pem(&self) -> Zeroizing<String> {
        let blocks = [pem::Pem::new("PRIVATE KEY", self.key.to_vec()), pem::Pem::new("CERTIFICATE", self.der.clone())];
        Zeroizing::new(pem::encode_many(&blocks))
    }

    /// The SHA-256 fingerprint of the certificate: the address's `/certhash/…`.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::from_certificate(&self.der)
    }

    pub(crate) fn dtls(&self) -> DtlsCert {
        DtlsCert { certificate: self.der.clone(), private_key: self.key.to_vec() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_fingerprint_and_refuses_a_foreign_key() {
        let a = Certificate::generate().unwrap();
        let b = Certificate::from_pem(&a.serialize_pem()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let other = Certificate::generate().unwrap();
        let mixed = format!(
            "{}{}",
            pem::encode(&pem::Pem::new("PRIVATE KEY", other.key.to_vec())),
            pem::encode(&pem::Pem::new("CERTIFICATE", a.der.clone()))
        );
        assert!(matches!(Certificate::from_pem(&mixed), Err(CertificateError::Invalid(_))));
        assert!(Certificate::from_pem("garbage").is_err());
    }

    /// What libp2p-webrtc (webrtc-rs 0.17) wrote: an EXPIRES block, then `PRIVATE_KEY` (PKCS#8)
    /// and the certificate.
    #[test]
    fn reads_the_files_libp2p_webrtc_wrote() {
        let a = Certificate::generate().unwrap();
        let expires = pem::Pem::new("EXPIRES", 4_000_000_000u64.to_le_bytes().to_vec());
        let blocks = [pem::Pem::new("PRIVATE_KEY", a.key.to_vec()), pem::Pem::new("CERTIFICATE", a.der.clone())];
        let old = format!("{}\n{}", pem::encode(&expires), pem::encode_many(&blocks));
        assert_eq!(Certificate::from_pem(&old).unwrap().fingerprint(), a.fingerprint());
    }
}
