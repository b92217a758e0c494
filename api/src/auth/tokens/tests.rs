//! Local access tokens: issue, verify, the remembered tokens, the key.

use super::*;

fn tokens() -> AccessTokens {
    AccessTokens::from_key(&[7u8; 32], &ApiConfig::default())
}

#[test]
fn issued_tokens_verify() {
    let t = tokens();
    let token = t.issue("u1", "f1").unwrap();
    let claims = t.verify(token.expose()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.fid.as_str()), ("u1", "f1"));
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.token_use, "access");
}

#[test]
fn another_key_is_a_bad_signature() {
    let token = tokens().issue("u1", "f1").unwrap();
    let other = AccessTokens::from_key(&[8u8; 32], &ApiConfig::default());
    assert_eq!(other.verify(token.expose()), Err(Rejection::Signature));
}

#[test]
fn wrong_issuer_and_audience_are_named() {
    let token = tokens().issue("u1", "f1").unwrap();
    let config = ApiConfig {
        jwt_issuer: "other".into(),
        ..ApiConfig::default()
    };
    let t = AccessTokens::from_key(&[7u8; 32], &config);
    assert_eq!(t.verify(token.expose()), Err(Rejection::Issuer));
    let config = ApiConfig {
        jwt_audience: "other".into(),
        ..ApiConfig::default()
    };
    let t = AccessTokens::from_key(&[7u8; 32], &config);
    assert_eq!(t.verify(token.expose()), Err(Rejection::Audience));
}

fn signed(t: &AccessTokens, edit: impl FnOnce(&mut AccessClaims)) -> String {
    let mut claims = t.verify(t.issue("u1", "f1").unwrap().expose()).unwrap();
    edit(&mut claims);
    jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &t.encoding).unwrap()
}

#[test]
fn future_nbf_and_iat_are_refused_beyond_the_leeway() {
    let t = tokens();
    let now = unix_now();
    let day = 24 * 3600;
    let cases = [
        (Some(now + day), now, Err(Rejection::NotYetValid)),
        (Some(now - 60), now, Ok(())),
        (None, now + day, Err(Rejection::IssuedInFuture)),
        (None, now + 1, Ok(())),
    ];
    for (nbf, iat, want) in cases {
        let token = signed(&t, |c| {
            c.exp = now + day + 900;
            c.nbf = nbf;
            c.iat = iat;
        });
        assert_eq!(t.verify(&token).map(drop), want, "nbf {nbf:?} iat {iat}");
    }
}

#[test]
fn key_file_is_created_once_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("jwt.key");
    let a = load_or_create_key(&path).unwrap();
    let b = load_or_create_key(&path).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn short_configured_secret_is_refused() {
    let config = ApiConfig {
        jwt_secret: Some(Secret::new("short")),
        ..ApiConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        AccessTokens::new(&config, dir.path()),
        Err(KeyError::TooShort)
    ));
}

/// The claims as they verify at `now + shift` seconds: `check_time`
/// there must say what `jsonwebtoken` and `verify` say now of the same
/// claims moved `shift` seconds earlier (so both read the real clock).
#[test]
fn remembered_claims_are_held_to_the_clock_as_a_fresh_token() {
    let t = tokens();
    let base = t.verify(t.issue("u1", "f1").unwrap().expose()).unwrap();
    let now = unix_now();
    let l = LEEWAY_SECS;
    // Two seconds off each edge, so a tick of the clock between the two
    // reads cannot change the answer.
    let shifts = [0, l - 2, l + 2, 60];
    let mut seen = std::collections::BTreeSet::new();
    for (exp, nbf, iat) in [
        (now + 900, None, now),
        (now, None, now),
        (now, Some(now), now),
        (now + 900, Some(now + 900), now),
        (now + 900, None, now + 900),
    ] {
        for shift in shifts.iter().flat_map(|s| [*s as i64, -(*s as i64)]) {
            let claims = AccessClaims {
                exp,
                nbf,
                iat,
                ..base.clone()
            };
            let moved = |v: u64| v.checked_add_signed(-shift).unwrap();
            let earlier = AccessClaims {
                exp: moved(exp),
                nbf: nbf.map(moved),
                iat: moved(iat),
                ..base.clone()
            };
            let token =
                jsonwebtoken::encode(&Header::new(ALGORITHM), &earlier, &t.encoding).unwrap();
            let fresh = tokens().verify(&token).map(drop);
            let at = now.checked_add_signed(shift).unwrap();
            assert_eq!(
                check_time(&claims, at),
                fresh,
                "exp {exp} nbf {nbf:?} iat {iat}, {shift} s from now"
            );
            seen.insert(format!("{fresh:?}"));
        }
    }
    // Every outcome the clock can give was compared.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

/// A remembered token is answered from memory, and still refused once
/// its time is up: the clock is checked on every use.
#[test]
fn a_remembered_token_is_refused_once_it_expires() {
    let t = tokens();
    let token = t.issue("u1", "f1").unwrap();
    let claims = t.verify(token.expose()).unwrap();
    assert_eq!(t.remembered.len(), 1);
    // What memory holds is what is answered (no second decode)...
    t.remembered.get_mut(token.expose()).unwrap().jti = "from memory".into();
    assert_eq!(t.verify(token.expose()).unwrap().jti, "from memory");
    // ...and held to the clock.
    t.remembered.get_mut(token.expose()).unwrap().exp = unix_now() - LEEWAY_SECS - 60;
    assert_eq!(t.verify(token.expose()), Err(Rejection::Expired));
    assert_eq!(claims.sub, "u1");
}

/// A token one byte away from a remembered one is verified, and refused.
#[test]
fn a_token_that_differs_from_a_remembered_one_is_verified_again() {
    let t = tokens();
    let token = t.issue("u1", "f1").unwrap().expose().to_owned();
    t.verify(&token).unwrap();
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(t.verify(&tampered), Err(Rejection::Signature));
    assert_eq!(t.remembered.len(), 1, "a refused token is not remembered");
}

/// Memory never holds more than `REMEMBERED` tokens.
#[test]
fn remembered_tokens_are_bounded() {
    let t = tokens();
    for i in 0..=REMEMBERED {
        let token = t.issue(&format!("u{i}"), "f1").unwrap();
        t.verify(token.expose()).unwrap();
        assert!(t.remembered.len() <= REMEMBERED);
    }
    assert!(t.remembered.len() < REMEMBERED);
}

/// The edges themselves, on a fixed clock (the comparison above stays two
/// seconds off them): `exp` exactly the leeway past is still valid
/// (`jsonwebtoken` 9 expires a token when `exp < now - leeway`), one
/// second more is expired; `nbf` and `iat` exactly the leeway ahead are
/// valid, one second more are not.
#[test]
fn remembered_claims_at_the_edges_of_the_leeway() {
    let t = tokens();
    let base = t.verify(t.issue("u1", "f1").unwrap().expose()).unwrap();
    let now = 1_000_000;
    let l = LEEWAY_SECS;
    let cases = [
        (now - l, None, now, Ok(())),
        (now - l - 1, None, now, Err(Rejection::Expired)),
        (now + 900, Some(now + l), now, Ok(())),
        (
            now + 900,
            Some(now + l + 1),
            now,
            Err(Rejection::NotYetValid),
        ),
        (now + 900, None, now + l, Ok(())),
        (now + 900, None, now + l + 1, Err(Rejection::IssuedInFuture)),
    ];
    for (exp, nbf, iat, want) in cases {
        let claims = AccessClaims {
            exp,
            nbf,
            iat,
            ..base.clone()
        };
        assert_eq!(
            check_time(&claims, now),
            want,
            "exp {exp} nbf {nbf:?} iat {iat}"
        );
    }
}
