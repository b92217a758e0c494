//! Webhooks: each provider's signature check and payload reader (Stripe,
//! Banxa, BCB, Fireblocks v1 and v2, and the JWKS its v2 keys come in,
//! Sumsub),
//! and the generic JSON-pointer reading every reader is built on. Input: one byte picking the provider, the
//! signature header's value up to the first `\n`, then the body.
//!
//! Invariants: a fuzzed signature never verifies (unless it carries the
//! body's real HMAC), the real signature always does; every id read from
//! a payload is a sane store key; a refusal's message is terse.
#![no_main]

use api::secret::Secret;
use api::webhooks::notice::{self, Notice, PayloadError, SignatureError, MAX_ID_LEN};
use api::webhooks::signing::hmac_sha256;
use api::webhooks::{banxa, bcb, fireblocks, stripe, sumsub};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::RsaPublicKey;
use std::sync::OnceLock;

const NOW: i64 = 1_700_000_000;
/// The path Banxa signs (its webhook URL's path).
const BANXA_PATH: &str = "/webhooks/banxa";

fn secret() -> Secret {
    Secret::new("whsec_fuzz")
}

/// A fixed Fireblocks public key (made once with `openssl genrsa 2048 |
/// openssl rsa -pubout`): generating one per process takes longer than
/// libFuzzer's timeout in an unoptimized build, and a fixed key makes a
/// crash reproduce.
fn fireblocks_key() -> &'static RsaPublicKey {
    static KEY: OnceLock<RsaPublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPublicKey::from_public_key_pem(include_str!("fireblocks_fuzz_key.pem"))
            .expect("the fuzz key parses")
    })
}

fn headers(name: &'static str, value: &[u8]) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(name, HeaderValue::from_bytes(value).ok()?);
    Some(h)
}

fn sane_id(id: &str) {
    assert!(!id.is_empty() && id.len() <= MAX_ID_LEN, "id {id:?}");
    assert!(!id.chars().any(char::is_control), "id {id:?}");
}

/// Checks a verify result: `Ok` only when `header` carries `mac`.
fn check_hmac(result: Result<(), SignatureError>, header: &[u8], mac: &[u8]) {
    if result.is_ok() {
        let want = hex::encode(mac);
        let got = String::from_utf8_lossy(header).to_ascii_lowercase();
        assert!(got.contains(&want), "a forged signature verified");
    }
}

fn check_read(read: Result<Notice, PayloadError>, body: &[u8]) {
    match read {
        Ok(Notice::Settlement {
            webhook_id,
            event_type,
            user_id,
            transaction_id,
            amount,
            ..
        }) => {
            for id in [&user_id, &transaction_id] {
                sane_id(id);
            }
            assert!(!webhook_id.is_empty() && !event_type.is_empty());
            if let Some(amount) = amount {
                sane_id(&amount);
            }
        }
        Ok(Notice::ProviderSettlement {
            webhook_id,
            event_type,
            provider_ref,
            amount,
            ..
        }) => {
            sane_id(&provider_ref);
            assert!(!webhook_id.is_empty() && !event_type.is_empty());
            if let Some(amount) = amount {
                sane_id(&amount);
            }
        }
        Ok(Notice::IncomingDeposit {
            webhook_id,
            user_id,
            asset,
            amount,
            address,
            custody_ref,
            tx_hash,
            ..
        }) => {
            for id in [&asset, &amount, &address, &custody_ref] {
                sane_id(id);
            }
            if let Some(user_id) = user_id {
                sane_id(&user_id);
            }
            assert!(!webhook_id.is_empty());
            if let Some(h) = tx_hash {
                sane_id(&h);
            }
        }
        Ok(Notice::Refund {
            webhook_id,
            event_type,
            provider_ref,
            refunded,
        }) => {
            sane_id(&provider_ref);
            sane_id(&refunded);
            assert!(!webhook_id.is_empty() && !event_type.is_empty());
        }
        Ok(Notice::KycReview {
            webhook_id,
            user_id,
            applicant_id,
            reason,
            ..
        }) => {
            sane_id(&user_id);
            sane_id(&applicant_id);
            assert!(!webhook_id.is_empty());
            assert!(reason.is_none_or(|r| r.chars().count() <= 300));
        }
        Ok(Notice::Ignored {
            webhook_id,
            event_type,
        }) => assert!(!webhook_id.is_empty() && !event_type.is_empty()),
        Err(e) => nax_fuzz::assert_terse(&e.to_string(), body),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    let s = secret();
    let key = s.expose().as_bytes();
    match pick % 6 {
        0 => {
            if let Some(h) = headers(stripe::HEADER, header) {
                // The seeds are signed at t = NOW; no other MAC can be had.
                let mac = hmac_sha256(key, &[NOW.to_string().as_bytes(), b".", body]);
                check_hmac(stripe::verify(&s, &h, body, NOW), header, &mac);
            }
            let good = headers(stripe::HEADER, stripe::sign(&s, NOW, body).as_bytes()).unwrap();
            assert_eq!(stripe::verify(&s, &good, body, NOW), Ok(()));
            check_read(stripe::read(body), body);
        }
        1 => {
            if let Some(h) = headers(banxa::HEADER, header) {
                let head = format!("POST\n{BANXA_PATH}\n{NOW}\n");
                let mac = hmac_sha256(key, &[head.as_bytes(), body]);
                check_hmac(banxa::verify(&s, BANXA_PATH, &h, body, NOW), header, &mac);
            }
            let good = banxa::sign("merchant", &s, BANXA_PATH, NOW, body);
            let good = headers(banxa::HEADER, good.as_bytes()).unwrap();
            assert_eq!(banxa::verify(&s, BANXA_PATH, &good, body, NOW), Ok(()));
            check_read(banxa::read(body), body);
        }
        2 => {
            if let Some(h) = headers(bcb::HEADER, header) {
                let mac = hmac_sha256(key, &[body]);
                check_hmac(bcb::verify(&s, &h, body), header, &mac);
            }
            let good = headers(bcb::HEADER, bcb::sign(&s, body).as_bytes()).unwrap();
            assert_eq!(bcb::verify(&s, &good, body), Ok(()));
            check_read(bcb::read(body), body);
        }
        3 => {
            if let Some(h) = headers(fireblocks::HEADER, header) {
                assert!(
                    fireblocks::verify(fireblocks_key(), &h, body).is_err(),
                    "a forged RSA signature verified"
                );
            }
            // The same line as a v2 detached JWS, and the body as a key set.
            if let Some(h) = headers(fireblocks::V2_HEADER, header) {
                assert!(
                    fireblocks::verify_v2_with(fireblocks_key(), &h, body).is_err(),
                    "a forged JWS verified"
                );
            }
            let _ = api::webhooks::jwks::parse(body, fireblocks::V2_ALG);
            check_read(fireblocks::read(body), body);
        }
        4 => {
            if let Some(mut h) = headers(sumsub::HEADER, header) {
                h.insert(
                    sumsub::ALG_HEADER,
                    HeaderValue::from_static("HMAC_SHA256_HEX"),
                );
                let mac = hmac_sha256(key, &[body]);
                check_hmac(sumsub::verify(&s, &h, body), header, &mac);
            }
            let mut good = HeaderMap::new();
            for (name, value) in sumsub::sign(&s, body) {
                good.insert(name, HeaderValue::from_str(&value).unwrap());
            }
            assert_eq!(sumsub::verify(&s, &good, body), Ok(()));
            check_read(sumsub::read(body), body);
        }
        _ => {
            // The generic reading under every provider's reader: the
            // header line is a JSON pointer into the body.
            let pointer = String::from_utf8_lossy(header);
            match notice::json(body) {
                Ok(value) => {
                    if let Ok(id) = notice::id_at(&value, &pointer, "field") {
                        sane_id(&id);
                    }
                    if let Ok(Some(id)) = notice::optional_id_at(&value, &pointer, "field") {
                        sane_id(&id);
                    }
                }
                Err(e) => nax_fuzz::assert_terse(&e.to_string(), body),
            }
        }
    }
});
