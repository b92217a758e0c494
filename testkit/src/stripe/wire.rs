//! The wire of the Stripe-shaped server ([`super`]): what a client sends
//! (form bodies in Stripe's bracket notation, the parameters of a
//! PaymentIntent, `Stripe-Version` values, keys as Stripe masks them) and
//! answers and errors in Stripe's shape.

use super::*;

/// A JSON answer with `body` as is.
pub(super) fn reply(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error in Stripe's shape; `code` and `param` left out when `""`.
pub(super) fn error(status: u16, kind: &str, code: &str, param: &str, message: &str) -> Refusal {
    let mut error = json!({ "type": kind, "message": message });
    if !code.is_empty() {
        let page = code.replace('_', "-");
        let doc_url = format!("https://stripe.com/docs/error-codes/{page}");
        set(&mut error, json!({ "code": code, "doc_url": doc_url }));
    }
    if !param.is_empty() {
        error["param"] = json!(param);
    }
    (status, json!({ "error": error }).to_string())
}

/// A 400 `invalid_request_error`.
pub(super) fn bad(code: &str, param: &str, message: &str) -> Result<Value, Refusal> {
    Err(error(400, INVALID, code, param, message))
}

/// All values of header `name`, joined with ", " (`None`: absent).
pub(super) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let values: Vec<_> = headers.get_all(name).iter().map(text).collect();
    (!values.is_empty()).then(|| values.join(", "))
}
/// `key` with all but its `sk_test_`-like prefix and its last 4 characters
/// (when there are more) starred.
pub(super) fn mask(key: &str) -> String {
    let mode = key
        .get(..8)
        .filter(|p| p.is_ascii() && ["_test_", "_live_"].contains(&&p[2..]));
    let (prefix, chars) = (mode.map_or(0, str::len), key.chars().count());
    let tail = if chars > prefix + 4 { 4 } else { 0 };
    let stars = "*".repeat(chars - prefix - tail);
    let tail: String = key.chars().skip(chars - tail).collect();
    format!("{}{stars}{tail}", &key[..prefix])
}

/// `YYYY-MM-DD` or `YYYY-MM-DD.name`, a real date not after today.
pub(super) fn valid_version(version: &str) -> bool {
    let (date, name) = version.split_once('.').unwrap_or((version, "x"));
    let named = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase());
    let shaped = date.split('-').map(str::len).eq([4, 2, 2]);
    let digits = date.bytes().all(|b| b == b'-' || b.is_ascii_digit());
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d");
    let past = day.is_ok_and(|day| day <= chrono::Utc::now().date_naive());
    named && shaped && digits && past
}

/// The decoded `name=value` pairs of a form body, at most [`MAX_FIELDS`].
pub(super) fn parse_form(parts: &Parts, body: &[u8]) -> Result<Params, Refusal> {
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    let content_type = content_type.map_or(&[][..], |v| v.as_bytes());
    let essence = content_type.split(|b| *b == b';').next();
    let form = essence.unwrap_or_default().trim_ascii();
    let refused = || error(400, INVALID, "", "", NOT_FORM);
    if !body.is_empty() && !form.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        return Err(refused());
    }
    let pairs = body.split(|b| *b == b'&').filter(|pair| !pair.is_empty());
    let mut params = Vec::new();
    for pair in pairs {
        if params.len() == MAX_FIELDS {
            let message = format!("More than {MAX_FIELDS} parameters.");
            return Err(error(400, INVALID, "", "", &message));
        }
        let at = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
        let value = pair.get(at + 1..).unwrap_or_default();
        params.push(decode(&pair[..at]).zip(decode(value)).ok_or_else(refused)?);
    }
    Ok(params)
}

/// `+` as space, `%XX` as a byte; `None` unless that makes UTF-8.
pub(super) fn decode(raw: &[u8]) -> Option<String> {
    let (mut out, mut i) = (Vec::with_capacity(raw.len()), 0);
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(*hex::decode(raw.get(i + 1..i + 3)?).ok()?.first()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A new intent (without `id`, `client_secret`, `created`) from the create
/// parameters, or Stripe's refusal.
pub(super) fn validate(params: &Params) -> Result<Value, Refusal> {
    let (max_keys, max_key, max_value) = METADATA_LIMITS;
    let mut intent = json!({
        "object": "payment_intent", "amount_capturable": 0, "amount_received": 0,
        "canceled_at": null, "cancellation_reason": null, "description": null,
        "last_payment_error": null, "latest_charge": null, "livemode": false, "metadata": {},
        "status": "requires_payment_method",
    });
    let (mut amount, mut currency, mut automatic, mut types) = (None, None, None, vec![]);
    for (name, value) in params {
        let (field, inner) = name.split_once('[').unwrap_or((name, ""));
        match (field, inner.strip_suffix(']')) {
            ("metadata", Some(key)) => {
                let long = key.chars().count() > max_key || value.chars().count() > max_value;
                if key.is_empty() || key.contains(['[', ']']) || long {
                    let why = format!(
                        "Metadata keys have 1 to {max_key} characters, values \
                        up to {max_value}; keys have no [ or ]."
                    );
                    return bad("", "metadata", &why);
                }
                if !value.is_empty() {
                    intent["metadata"][key] = json!(value);
                }
            }
            ("payment_method_types", Some(i)) if i.bytes().all(|b| b.is_ascii_digit()) => {
                types.push(value);
            }
            ("automatic_payment_methods", Some("enabled")) => match value.as_str() {
                "true" | "false" => automatic = Some(value == "true"),
                _ => return bad("", name, &format!("Invalid boolean: {value}")),
            },
            ("amount", None) => amount = Some(value),
            ("currency", None) => currency = Some(value.to_ascii_lowercase()),
            ("description", None) => intent["description"] = json!(value),
            ("metadata", None) if value.is_empty() => {}
            _ => {
                let message = format!("Received unknown parameter: {name}");
                return bad("parameter_unknown", name, &message);
            }
        }
    }
    let keys = intent["metadata"].as_object().map_or(0, |m| m.len());
    if keys > max_keys {
        let message = format!("Metadata can have up to {max_keys} keys, not {keys}.");
        return bad("", "metadata", &message);
    }
    let missing = |name| format!("Missing required param: {name}.");
    let Some(amount) = amount else {
        return bad("parameter_missing", "amount", &missing("amount"));
    };
    let Some(currency) = currency else {
        return bad("parameter_missing", "currency", &missing("currency"));
    };
    match amount.parse::<i64>() {
        Ok(amount) if amount >= 1 => intent["amount"] = json!(amount),
        Ok(_) => {
            let message = "This value must be greater than or equal to 1.";
            return bad("parameter_invalid_integer", "amount", message);
        }
        Err(_) => {
            let message = format!("Invalid integer: {amount}");
            return bad("parameter_invalid_integer", "amount", &message);
        }
    }
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return bad("", "currency", &format!("Invalid currency: {currency}."));
    }
    intent["currency"] = json!(currency);
    // Since 2023-08-16, automatic payment methods are on unless types are given.
    let on = automatic.unwrap_or(types.is_empty());
    let methods = on.then(|| json!({ "enabled": true, "allow_redirects": "always" }));
    intent["automatic_payment_methods"] = json!(methods);
    intent["payment_method_types"] = if types.is_empty() {
        json!(["card"])
    } else {
        json!(types)
    };
    Ok(intent)
}
