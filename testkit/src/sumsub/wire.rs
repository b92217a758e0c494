//! The wire of the Sumsub-shaped server ([`super`]): Sumsub's error body,
//! its date formats, the HMACs of requests and webhooks, and a small
//! `multipart/form-data` reader for `POST …/info/idDoc`.

use super::*;

/// A refusal or answer: its status and body.
pub(super) type Reply = (u16, Value);

/// An error in Sumsub's shape (docs.sumsub.com/reference/review-api-health,
/// "Errors"): `{"description", "code", "correlationId", "errorCode"?,
/// "errorName"?}`; `error_code` 0 leaves the last two out.
pub(super) fn error(status: u16, error_code: u16, description: &str) -> Reply {
    let mut body = json!({ "description": description, "code": status,
        "correlationId": correlation_id() });
    if error_code != 0 {
        body["errorCode"] = json!(error_code);
        body["errorName"] = json!(error_name(error_code));
    }
    (status, body)
}

/// Sumsub's `errorName` of `code` (see the module doc of [`super`] for
/// which names are documented and which are derived).
fn error_name(code: u16) -> &'static str {
    match code {
        1000 => "duplicate-document",
        1003 => "empty-file",
        1006 => "no-upload-verification-in-progress",
        1009 => "applicant-with-final-reject",
        3000 => "applicant-already-in-the-state",
        4001 => "app-token-not-found",
        4003 => "app-token-signature-mismatch",
        4004 => "app-token-request-expired",
        4005 => "app-token-invalid-value",
        4006 => "app-token-not-all-auth-params-provided",
        _ => "unknown",
    }
}

/// A JSON answer.
pub(super) fn reply((status, body): Reply) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (status, content_type, body.to_string()).into_response()
}

/// `req-` and a UUID-shaped random hex, as Sumsub's examples show.
pub(super) fn correlation_id() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = format!("{n}:{:?}", std::time::SystemTime::now());
    let h = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "req-{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `createdAt` of an applicant: `2020-04-17 23:03:47` (UTC).
pub(super) fn seconds(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `createDate`/`reviewDate` of a review: `2020-04-17 23:05:46+0000`.
pub(super) fn review_date(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y-%m-%d %H:%M:%S+0000").to_string()
}

/// A webhook's `createdAtMs`, `yyyy-MM-dd HH:mm:ss.fff` in UTC, from Unix ms.
pub(super) fn created_at_ms(ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// Lowercase hex HMAC-SHA256 of `parts` concatenated, keyed with `key`.
pub(super) fn hmac_sha256(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Lowercase hex HMAC of `body` keyed with `key`, with `alg`'s hash.
pub(super) fn digest(alg: DigestAlg, key: &str, body: &[u8]) -> String {
    fn hex_mac<M: Mac + hmac::digest::KeyInit>(key: &str, body: &[u8]) -> String {
        let mut mac =
            <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }
    match alg {
        DigestAlg::Sha1 => hex_mac::<Hmac<sha1::Sha1>>(key, body),
        DigestAlg::Sha256 => hex_mac::<Hmac<Sha256>>(key, body),
        DigestAlg::Sha512 => hex_mac::<Hmac<sha2::Sha512>>(key, body),
    }
}

/// `%XX` decoded (`+` kept); `None` unless that makes UTF-8.
pub(super) fn percent_decode(raw: &str) -> Option<String> {
    let (raw, mut out, mut i) = (raw.as_bytes(), Vec::new(), 0);
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            out.push(*hex::decode(raw.get(i + 1..i + 3)?).ok()?.first()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The decoded value of query parameter `name` (`None`: absent or not UTF-8).
pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs = query.unwrap_or_default().split('&');
    let mut found = pairs
        .filter_map(|pair| pair.split_once('='))
        .filter(|(n, _)| *n == name);
    found
        .next()
        .and_then(|(_, v)| percent_decode(&v.replace('+', " ")))
}

/// One part of a `multipart/form-data` body.
pub(super) struct Part<'a> {
    pub(super) name: String,
    pub(super) filename: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) data: &'a [u8],
}

/// The boundary of a `multipart/form-data` Content-Type (quoted or not).
pub(super) fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let param = params
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("boundary"))?;
    let value = param.1.trim().trim_matches('"');
    // RFC 2046: 1 to 70 characters.
    (!value.is_empty() && value.len() <= 70).then(|| value.to_owned())
}

/// The parts of `body` delimited by `boundary` (RFC 7578), at most
/// [`MAX_PARTS`], each header block at most [`MAX_PART_HEADERS`] bytes.
pub(super) fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let bad = |why: &str| Err(format!("malformed multipart body: {why}"));
    // The first delimiter opens the body or follows a preamble's CRLF.
    let mut at = if body.starts_with(delimiter) {
        delimiter.len()
    } else {
        let mut after_crlf = delimiter.to_vec();
        after_crlf.splice(0..0, *b"\r\n");
        match find(body, &after_crlf) {
            Some(i) => i + after_crlf.len(),
            None => return bad("no opening boundary"),
        }
    };
    let mut close = b"\r\n".to_vec();
    close.extend_from_slice(delimiter);
    let mut parts = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let Some(rest) = rest.strip_prefix(b"\r\n") else {
            return bad("no CRLF after a boundary");
        };
        if parts.len() == MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} parts"));
        }
        let Some(end) = find(&rest[..rest.len().min(MAX_PART_HEADERS + 4)], b"\r\n\r\n") else {
            return bad("a part's headers do not end");
        };
        let headers = std::str::from_utf8(&rest[..end]).map_err(|_| "headers not UTF-8")?;
        let content = &rest[end + 4..];
        let Some(len) = find(content, &close) else {
            return bad("no closing boundary");
        };
        parts.push(part(headers, &content[..len])?);
        at = body.len() - content.len() + len + close.len();
    }
}

/// A part from its header block and content.
fn part<'a>(headers: &str, data: &'a [u8]) -> Result<Part<'a>, String> {
    let (mut name, mut filename, mut content_type) = (None, None, None);
    for line in headers.split("\r\n") {
        let Some((field, value)) = line.split_once(':') else {
            return Err(format!("malformed part header {line:?}"));
        };
        let value = value.trim();
        if field.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        } else if field.eq_ignore_ascii_case("content-disposition") {
            let mut params = value.split(';');
            let kind = params.next().unwrap_or_default().trim();
            if !kind.eq_ignore_ascii_case("form-data") {
                return Err("a part is not form-data".to_owned());
            }
            for (key, val) in params.filter_map(|p| p.split_once('=')) {
                let val = val.trim().trim_matches('"').to_owned();
                match key.trim() {
                    "name" => name = Some(val),
                    "filename" => filename = Some(val),
                    _ => {}
                }
            }
        }
    }
    let name = name.ok_or("a part has no name")?;
    Ok(Part {
        name,
        filename,
        content_type,
        data,
    })
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = haystack.get(from..)?.iter().position(|b| *b == first) {
        let at = from + i;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}
