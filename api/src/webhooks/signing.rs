//! Signing webhooks the way each provider does, for the sandbox providers
//! (and for tests that play a provider): [`WebhookSigner`] produces the
//! headers of a body. The HMAC-SHA256 primitives shared by the Stripe,
//! Banxa and BCB schemes live here too.

use super::notice::Provider;
use super::provider::WebhookProvider as _;
use super::{banxa, bcb, fireblocks, stripe, sumsub};
use crate::secret::Secret;
use hmac::{Hmac, Mac};
use rsa::RsaPrivateKey;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac =
        HmacSha256::new_from_slice(key).expect("invariant: HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// True when `hex_signature` is the HMAC-SHA256 of `parts` under `key`.
/// The comparison is constant-time (`Mac::verify_slice`); a signature
/// that is not hex never matches.
pub fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], hex_signature: &str) -> bool {
    let Ok(signature) = hex::decode(hex_signature.trim()) else {
        return false;
    };
    let mut mac =
        HmacSha256::new_from_slice(key).expect("invariant: HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(&signature).is_ok()
}

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs bodies as one provider does. The named variants sign as the
/// built-in providers (tests playing one); [`WebhookSigner::Payments`]
/// signs as any payment provider of the registry (the payment sandbox).
#[derive(Clone)]
pub enum WebhookSigner {
    Stripe(Secret),
    Banxa {
        api_key: String,
        secret: Secret,
        /// The path the request goes to ([`WebhookKeys::signed_path`](super::keys::WebhookKeys::signed_path)).
        path: String,
    },
    Bcb(Secret),
    Fireblocks(Box<RsaPrivateKey>),
    Sumsub(Secret),
    /// A payment provider's own scheme, with its HMAC secret (its value
    /// at each signature) and the path its deliveries go to.
    Payments {
        provider: Provider,
        secret: crate::secrets::LiveSecret,
        path: String,
    },
}

impl WebhookSigner {
    /// The name of the provider it signs as (`/webhooks/{name}`).
    pub fn provider_name(&self) -> &'static str {
        match self {
            WebhookSigner::Stripe(_) => stripe::PROVIDER.name,
            WebhookSigner::Banxa { .. } => banxa::PROVIDER.name,
            WebhookSigner::Bcb(_) => bcb::PROVIDER.name,
            WebhookSigner::Fireblocks(_) => fireblocks::Fireblocks.name(),
            WebhookSigner::Sumsub(_) => sumsub::Sumsub.name(),
            WebhookSigner::Payments { provider, .. } => provider.as_str(),
        }
    }

    /// The signature headers of `body`, signed now.
    pub fn headers(&self, body: &[u8]) -> Vec<(&'static str, String)> {
        let now = unix_now();
        match self {
            WebhookSigner::Stripe(secret) => {
                vec![(stripe::HEADER, stripe::sign(secret, now, body))]
            }
            WebhookSigner::Banxa {
                api_key,
                secret,
                path,
            } => {
                // Milliseconds, as Banxa's legacy API writes its nonces.
                let nonce = now * 1_000;
                vec![(
                    banxa::HEADER,
                    banxa::sign(api_key, secret, path, nonce, body),
                )]
            }
            WebhookSigner::Bcb(secret) => vec![(bcb::HEADER, bcb::sign(secret, body))],
            WebhookSigner::Fireblocks(key) => {
                vec![(fireblocks::HEADER, fireblocks::sign(key, body))]
            }
            WebhookSigner::Sumsub(secret) => sumsub::sign(secret, body),
            WebhookSigner::Payments {
                provider,
                secret,
                path,
            } => provider
                .payments()
                .map(|p| p.sign(&secret.current(), path, body, now))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_known_answer_and_matching() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = hex::encode(&mac);
        assert!(hmac_sha256_matches(
            b"Jefe",
            &[b"what do ya want for nothing?"],
            &sig
        ));
        assert!(!hmac_sha256_matches(
            b"jefe",
            &[b"what do ya want for nothing?"],
            &sig
        ));
        assert!(!hmac_sha256_matches(
            b"Jefe",
            &[b"what do ya want for nothing!"],
            &sig
        ));
        assert!(!hmac_sha256_matches(b"Jefe", &[b"x"], "not hex"));
        assert!(!hmac_sha256_matches(b"Jefe", &[b"x"], ""));
    }
}
