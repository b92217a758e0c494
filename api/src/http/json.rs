//! Strict request decoding: JSON bodies with unknown fields rejected
//! (400 `unknown_field`), missing or mistyped fields named (422
//! `missing_field` / `invalid_field`), malformed JSON (400 `bad_request`),
//! bodies over [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES) (413); and query
//! strings with the same error shapes.
//!
//! Request types opt into strictness with `#[serde(deny_unknown_fields)]`.
//!
//! A body is checked against [`BODY_BOUNDS`] before serde sees it (see
//! docs/SECURITY.md, "Input bounds"), and an error message echoes at most
//! [`ECHO_MAX`] characters of any one piece of the client's input.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use inbound::{BoundsError, JsonBounds};
use serde::de::DeserializeOwned;

/// Bounds of a JSON request body, checked before it is parsed. Every body
/// the routes take is one flat object (depth 1) of at most 8 members;
/// the limits leave room for a mistyped field to be named by the parser
/// rather than refused, and keep what a body of [`MAX_BODY_BYTES`]
/// (already enforced while it is read) can make serde allocate small.
///
/// [`MAX_BODY_BYTES`]: super::MAX_BODY_BYTES
pub const BODY_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: super::MAX_BODY_BYTES,
    max_depth: 8,
    max_elements: 1024,
};

/// Longest piece of client input (a field name, a value) an error message
/// repeats; longer ones are cut and end in `…`.
pub const ECHO_MAX: usize = 40;

/// A JSON body decoded strictly into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// The raw body, size-limited, for routes that verify signatures over the
/// exact bytes (webhooks).
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is over 64 KiB",
        )
    } else {
        ApiError::bad_request(
            "bad_request",
            format!("could not read the body: {rejection}"),
        )
    }
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_error)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !mime.eq_ignore_ascii_case("application/json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "request bodies are application/json",
                ));
            }
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        decode(&bytes).map(ApiJson)
    }
}

/// Decodes `bytes` as `T`, mapping every failure to the API's error codes.
/// A body over [`BODY_BOUNDS`] is refused before it is parsed: 413 when
/// it is too large, else 400 `bad_request` naming the limit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    BODY_BOUNDS.check(bytes).map_err(refused)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(&path, &inner.to_string(), inner.classify())
    })?;
    // Anything but whitespace after the value is malformed JSON.
    de.end().map_err(|e| {
        let msg = e.to_string();
        let plain = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        ApiError::bad_request("bad_request", format!("malformed JSON: {plain}"))
    })?;
    Ok(value)
}

/// The answer to a body over [`BODY_BOUNDS`].
fn refused(e: BoundsError) -> ApiError {
    match e {
        BoundsError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is over 64 KiB",
        ),
        _ => ApiError::bad_request("bad_request", format!("body refused: {e}")),
    }
}

/// `text` cut to [`ECHO_MAX`] characters (then `…`).
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(ECHO_MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A serde message with the piece of input it repeats cut by [`clip`].
///
/// serde puts a variant or field name it read between backquotes as it
/// is (a name may hold backquotes itself: the closing one is the last
/// before serde's own `, expected`), a string value between double quotes
/// Debug-escaped, and numbers between backquotes.
fn clip_quoted(message: &str) -> String {
    for prefix in ["unknown variant `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let end = ["`, expected", "`, there are no"]
                .iter()
                .filter_map(|suffix| rest.rfind(suffix))
                .max()
                .unwrap_or(rest.len());
            return format!("{prefix}{}{}", clip(&rest[..end]), &rest[end..]);
        }
    }
    let mut out = String::with_capacity(message.len().min(256));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        // A `"` inside a Debug-escaped string is `\"`: skip escapes.
        let mut close = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    close = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = close.unwrap_or(rest.len());
        out.push_str(&clip(&rest[..end]));
        match close {
            Some(end) => {
                out.push(quote);
                rest = &rest[end + 1..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Checks one request body as its route does before reading any state.
pub type BodyCheck = fn(&[u8]) -> Result<(), ApiError>;

fn decodes<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), ApiError> {
    decode::<T>(bytes).map(drop)
}

/// Every JSON request body the routes take (each operation's
/// `request_body` in the OpenAPI document, by schema name), with what its
/// route checks of it before reading any state: [`decode`], plus the
/// pure validation where a route has one. For fuzzing (`fuzz/`, target
/// `rest_bodies`); a test keeps it in step with the routes.
pub const REQUEST_BODIES: &[(&str, BodyCheck)] = &[
    ("RegisterRequest", decodes::<crate::auth::RegisterRequest>),
    ("LoginRequest", decodes::<crate::auth::LoginRequest>),
    ("RefreshRequest", decodes::<crate::auth::RefreshRequest>),
    ("MfaVerifyRequest", decodes::<crate::auth::MfaVerifyRequest>),
    (
        "ProfileUpdate",
        crate::users::profile::ProfileUpdate::check_body,
    ),
    (
        "KycDocumentRequest",
        decodes::<crate::users::kyc::KycDocumentRequest>,
    ),
    ("PlaceOrderRequest", crate::trading::check_order_body),
    (
        "DepositAddressRequest",
        decodes::<crate::wallets::handlers::DepositAddressRequest>,
    ),
    (
        "WithdrawRequest",
        decodes::<crate::wallets::handlers::WithdrawRequest>,
    ),
    (
        "FiatDepositRequest",
        decodes::<crate::fiat::handlers::FiatDepositRequest>,
    ),
    (
        "FiatWithdrawRequest",
        decodes::<crate::fiat::handlers::FiatWithdrawRequest>,
    ),
];

/// Maps a serde error to (status, code) naming the field.
fn classify(path: &str, message: &str, category: serde_json::error::Category) -> ApiError {
    use serde_json::error::Category;
    // serde's messages: "unknown field `x`, expected ...", "missing field `x`".
    let quoted = |msg: &str| msg.split('`').nth(1).map(str::to_owned);
    // serde_path_to_error's path already ends at an unknown field, and
    // stops at the parent of a missing one. A path is made of the
    // client's field names: cut.
    let at = |field: Option<String>| -> String {
        let root = path.is_empty() || path == ".";
        clip(&match field {
            Some(f) if root => f,
            Some(f) if path == f || path.ends_with(&format!(".{f}")) => path.to_owned(),
            Some(f) => format!("{path}.{f}"),
            None => path.to_owned(),
        })
    };
    // Strip serde's " at line 1 column 9" suffix: positions mean nothing to clients.
    let plain = message.split(" at line ").next().unwrap_or(message);
    match category {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "bad_request",
            format!("malformed JSON: {}", clip_quoted(plain)),
        ),
        Category::Data if plain.starts_with("unknown field") => {
            let field = at(quoted(plain));
            ApiError::bad_request("unknown_field", format!("unknown field: {field}"))
        }
        Category::Data if plain.starts_with("missing field") => {
            let field = at(quoted(plain));
            ApiError::unprocessable("missing_field", format!("missing field: {field}"))
        }
        Category::Data => {
            let field = if path.is_empty() || path == "." {
                "body".to_owned()
            } else {
                clip(path)
            };
            ApiError::invalid_field(&field, clip_quoted(plain))
        }
    }
}

/// A path parameter; one that cannot be decoded (e.g. invalid UTF-8) is
/// 404 `not_found`: no resource has that name.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| {
                ApiError::not_found("not_found", format!("no such resource: {}", e.body_text()))
            })
    }
}

/// A query string decoded into `T`; malformed values are 422 naming the
/// parameter. Unknown parameters are ignored (they are not a body).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                if msg.starts_with("missing field") {
                    let field = msg.split('`').nth(1).unwrap_or(&path).to_owned();
                    ApiError::unprocessable(
                        "missing_field",
                        format!("missing query parameter: {field}"),
                    )
                } else {
                    ApiError::invalid_field(&path, msg)
                }
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        email: String,
        qty: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        a: String,
    }

    fn err(body: &str) -> ApiError {
        decode::<Req>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn unknown_field_is_400_naming_it() {
        let e = err(r#"{"email":"a","qty":"1","is_admin":true}"#);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "unknown_field"));
        assert!(e.message.contains("is_admin"), "{}", e.message);
    }

    #[test]
    fn nested_unknown_field_names_its_path() {
        let e = err(r#"{"email":"a","qty":"1","nested":{"a":"x","b":1}}"#);
        assert_eq!(&*e.code, "unknown_field");
        assert!(e.message.contains("nested.b"), "{}", e.message);
    }

    #[test]
    fn missing_field_is_422_naming_it() {
        let e = err(r#"{"email":"a"}"#);
        assert_eq!((e.status.as_u16(), &*e.code), (422, "missing_field"));
        assert!(e.message.contains("qty"), "{}", e.message);
    }

    #[test]
    fn wrong_type_is_422_naming_the_field() {
        let e = err(r#"{"email":"a","qty":1.5}"#);
        assert_eq!((e.status.as_u16(), &*e.code), (422, "invalid_field"));
        assert!(e.message.starts_with("qty:"), "{}", e.message);
    }

    #[test]
    fn unknown_field_is_named_once() {
        let e = err(r#"{"email":"a","qty":"1","is_admin":true}"#);
        assert_eq!(e.message, "unknown field: is_admin");
        let e = err(r#"{"email":"a","qty":"1","nested":{"a":"x","b":1}}"#);
        assert_eq!(e.message, "unknown field: nested.b");
        let e = err(r#"{"email":"a","nested":{"a":"x"}}"#);
        assert_eq!(e.message, "missing field: qty");
    }

    #[test]
    fn trailing_garbage_is_400() {
        let e = err(r#"{"email":"a","qty":"1"} xx"#);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
        assert!(decode::<Req>(b"{\"email\":\"a\",\"qty\":\"1\"}\n ").is_ok());
    }

    #[test]
    fn malformed_json_is_400() {
        let e = err(r#"{"email":"#);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
        let e = err("");
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn deep_nesting_is_refused_naming_the_limit() {
        // Far over the body limit: 413, as from the extractor.
        let e = err(&format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)));
        assert_eq!((e.status.as_u16(), &*e.code), (413, "payload_too_large"));
        // Under it, refused before serde (whose own recursion limit is 128).
        for body in [
            format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
            format!(r#"{{"email":{}"a"{}}}"#, "[".repeat(9), "]".repeat(9)),
        ] {
            let e = err(&body);
            assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
            assert_eq!(e.message, "body refused: input nests deeper than 8 levels");
        }
    }

    #[test]
    fn too_many_elements_are_refused_naming_the_limit() {
        // As many elements as fit under the byte limit.
        let body = format!("[{}0]", "0,".repeat(super::super::MAX_BODY_BYTES / 2 - 2));
        assert!(body.len() <= super::super::MAX_BODY_BYTES);
        let e = err(&body);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
        assert_eq!(
            e.message,
            "body refused: input holds more than 1024 elements"
        );
        let members: String = (0..1100).map(|i| format!(r#","k{i}":1"#)).collect();
        let e = err(&format!(r#"{{"email":"a","qty":"1"{members}}}"#));
        assert_eq!(
            e.message,
            "body refused: input holds more than 1024 elements"
        );
    }

    #[test]
    fn messages_echo_at_most_40_characters_of_input() {
        let long = "x".repeat(5000);
        let e = err(&format!(r#"{{"email":"a","qty":"1","{long}":1}}"#));
        assert_eq!(
            e.message,
            format!("unknown field: {}…", "x".repeat(ECHO_MAX))
        );
        let e = err(&format!(
            r#"{{"email":"a","qty":"1","nested":{{"{long}":1}}}}"#
        ));
        assert_eq!(&*e.code, "unknown_field");
        assert!(e.message.len() < 100, "{}", e.message);
        // serde repeats a mistyped value: cut too.
        let e = err(&format!(r#"{{"email":"a","qty":"1","nested":"{long}"}}"#));
        assert_eq!(&*e.code, "invalid_field");
        assert!(e.message.len() < 150, "{}", e.message);
        assert!(
            !e.message.contains(&"x".repeat(ECHO_MAX + 1)),
            "{}",
            e.message
        );
    }

    /// Found by fuzzing (`rest_bodies`): a backquote inside an unknown
    /// variant ended the cut early and the rest was repeated whole.
    #[test]
    fn a_backquote_in_an_unknown_variant_does_not_end_the_cut() {
        let body = r#"{"client_order_id":"c","pair":"BTC-USD","side":"xxxxxxxxxxxxxamountxxxxxxxxxxxxxxxxxxxxxpxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxp`exxxx*x.xx:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxzxxxxxxxxxxxxxxxxxxxxqxx""}"#;
        let (name, check) = REQUEST_BODIES[6];
        assert_eq!(name, "PlaceOrderRequest");
        let e = check(body.as_bytes()).unwrap_err();
        assert_eq!(&*e.code, "invalid_field");
        assert_eq!(
            e.message,
            "side: unknown variant `xxxxxxxxxxxxxamountxxxxxxxxxxxxxxxxxxxxx…`, expected `buy` or `sell`"
        );
    }

    #[test]
    fn clip_quoted_cuts_each_quoted_piece() {
        let long = "y".repeat(50);
        assert_eq!(
            clip_quoted(&format!("unknown variant `{long}`, expected `a` or `b`")),
            format!("unknown variant `{}…`, expected `a` or `b`", "y".repeat(40))
        );
        assert_eq!(
            clip_quoted(&format!(r#"invalid type: string "\"{long}", expected x"#)),
            format!(
                r#"invalid type: string "\"{}…", expected x"#,
                "y".repeat(38)
            )
        );
        // A name holding backquotes is cut as a whole.
        let tricky = format!("{long}`{long}`, expected {long}");
        assert_eq!(
            clip_quoted(&format!(
                "unknown variant `{tricky}`, expected `buy` or `sell`"
            )),
            format!(
                "unknown variant `{}…`, expected `buy` or `sell`",
                "y".repeat(40)
            )
        );
        assert_eq!(clip_quoted("no quotes"), "no quotes");
        assert_eq!(clip_quoted("torn `abc"), "torn `abc");
    }

    #[test]
    fn good_body_decodes() {
        let r = decode::<Req>(br#"{"email":"a","qty":"1"}"#).unwrap();
        assert_eq!(r.qty, "1");
    }
}
