//! The requests of the BCB-shaped server ([`super`]): the token endpoint,
//! and the API's routing, bearer check, injected faults, accounts,
//! transactions and Authorise Payment with its validation.

use super::wire::{self, error, oauth_error, reply, Refusal};
use super::*;
use axum::body::to_bytes;
use axum::http::{header, request::Parts, Method};
use serde_json::Map;

/// Answers and logs one request to the token endpoint (`auth`) or the API.
pub(super) async fn handle(shared: &Shared, auth: bool, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|pq| pq.as_str());
    let path = path.unwrap_or(parts.uri.path()).to_owned();
    let response = match to_bytes(body, MAX_BODY).await {
        Ok(body) if auth => token(shared, &parts, &body),
        Ok(body) => answer(shared, &parts, &body),
        Err(_) => {
            let message = format!("the body is over {MAX_BODY} bytes");
            error((413, "PAYLOAD_TOO_LARGE", message))
        }
    };
    let logged = LoggedRequest {
        method: parts.method.to_string(),
        path,
        status: response.status().as_u16(),
    };
    shared.inner.lock().log.push(logged);
    response
}

/// `POST /oauth/token`: checks the client's id and secret, issues a token.
fn token(shared: &Shared, parts: &Parts, body: &[u8]) -> Response {
    if parts.uri.path() != TOKEN_PATH {
        return error((404, "NOT_FOUND", format!("no {}", parts.uri.path())));
    }
    if parts.method != Method::POST {
        return error((
            405,
            "METHOD_NOT_ALLOWED",
            format!("{TOKEN_PATH} takes a POST"),
        ));
    }
    let Some(fields) = wire::token_fields(parts, body) else {
        let why = "the body is not a JSON object or a form";
        return oauth_error(400, "invalid_request", why);
    };
    let field = |name: &str| fields.get(name).and_then(Value::as_str);
    let grant = field("grant_type").unwrap_or("client_credentials");
    if grant != "client_credentials" {
        let why = format!("Grant type '{grant}' not allowed for the client.");
        return oauth_error(400, "unsupported_grant_type", &why);
    }
    let config = &shared.config;
    let id_ok = field("client_id") == Some(config.client_id.as_str());
    if !id_ok || field("client_secret") != Some(config.client_secret.as_str()) {
        return oauth_error(401, "access_denied", "Unauthorized");
    }
    let mut inner = shared.inner.lock();
    match inner.token_faults.pop_front() {
        Some(429) => return oauth_error(429, "too_many_requests", "Global limit has been reached"),
        Some(status) => return oauth_error(status, "server_error", "injected fault"),
        None => {}
    }
    let access_token = format!("{}{}", inner.new_hex(), inner.new_hex());
    let lifetime = Duration::from_secs(TOKEN_LIFETIME_SECS);
    inner
        .tokens
        .insert(access_token.clone(), Instant::now() + lifetime);
    let answer = json!({ "access_token": access_token, "expires_in": TOKEN_LIFETIME_SECS,
        "token_type": "Bearer" });
    reply(200, &answer)
}

/// What an API request asks for.
enum Route<'a> {
    Accounts,
    Authorise,
    Transactions(&'a str),
    Transaction(&'a str, &'a str),
}

/// The route of `method` `path`: 404 for an unknown path, 405 for a known
/// path with another method.
fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, Refusal> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let (route, wanted) = match segments[..] {
        ["v3", "accounts"] => (Route::Accounts, Method::GET),
        ["v5", "payments", "authorise"] => (Route::Authorise, Method::POST),
        ["v3", "accounts", id, "transactions"] if !id.is_empty() => {
            (Route::Transactions(id), Method::GET)
        }
        ["v3", "accounts", id, "transactions", tx] if !id.is_empty() && !tx.is_empty() => {
            (Route::Transaction(id, tx), Method::GET)
        }
        _ => return Err((404, "NOT_FOUND", format!("no {method} {path}"))),
    };
    if *method != wanted {
        let why = format!("{path} takes a {wanted}");
        return Err((405, "METHOD_NOT_ALLOWED", why));
    }
    Ok(route)
}

/// Routes, checks the bearer token, injects faults, handles.
fn answer(shared: &Shared, parts: &Parts, body: &[u8]) -> Response {
    let route = match route(&parts.method, parts.uri.path()) {
        Ok(route) => route,
        Err(refused) => return error(refused),
    };
    if let Err(why) = bearer(shared, parts) {
        return error((401, "UNAUTHORIZED", why.to_owned()));
    }
    match shared.inner.lock().faults.pop_front() {
        Some(429) => return error((429, "TOO_MANY_REQUESTS", "injected fault".to_owned())),
        Some(s) if s >= 500 => return error((s, "INTERNAL_SERVER_ERROR", "injected fault".into())),
        Some(s) => return error((s, "INJECTED_FAULT", "injected fault".to_owned())),
        None => {}
    }
    let handled = match route {
        Route::Accounts => accounts(parts.uri.query().unwrap_or_default()),
        Route::Authorise => authorise(shared, parts, body),
        Route::Transactions(id) => transactions(shared, id, None),
        Route::Transaction(id, tx) => transactions(shared, id, Some(tx)),
    };
    handled.unwrap_or_else(error)
}

/// Checks `Authorization: Bearer {token}` against the live tokens.
fn bearer(shared: &Shared, parts: &Parts) -> Result<(), &'static str> {
    let value = parts.headers.get(header::AUTHORIZATION);
    let value = value.and_then(|v| v.to_str().ok());
    let value = value.ok_or("no Authorization header")?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("the Authorization header is not `Bearer {access_token}`");
    }
    match shared.inner.lock().tokens.get(token.trim()) {
        None => Err("invalid token"),
        Some(expiry) if *expiry <= Instant::now() => Err("token expired"),
        Some(_) => Ok(()),
    }
}

/// An account as `GET /v3/accounts` lists it.
fn account_json(account: &BcbAccount) -> Value {
    let sort = account.sort_code;
    let host_hub = format!("{}-{}-{}", &sort[..2], &sort[2..4], &sort[4..]);
    let (iban, ccy) = (account.iban, account.ccy);
    json!({
        "id": account.id, "counterparty_id": COUNTERPARTY_ID,
        "aid": format!("A{:02}-C{COUNTERPARTY_ID:09}", account.id % 100),
        "cid": format!("C{COUNTERPARTY_ID:09}"), "account_type": "Bank", "ccy": ccy,
        "host_name": "BCB Payments", "host_hub": host_hub, "host_location": "",
        "host_country": "GB", "node_name": ACCOUNT_NAME,
        "node_address": account.account_number, "node_location": "", "node_country": "GB",
        "node_subaddress": "", "iban": iban, "bic": account.bic,
        "account_label": format!("{ACCOUNT_NAME} {ccy}"),
        "description": format!("{ACCOUNT_NAME}, BCB Payments {iban}, {ccy}"),
        "bcb_controlled": 1, "settlement_reference": "", "reporting_ccy": "GBP",
        "created_at": "2024-01-02T09:00:00.000Z", "updated_at": "2024-01-02T09:00:00.000Z",
    })
}

/// `GET /v3/accounts`, filtered by `id` and `counterparty_id` (`limit` and
/// `pageToken` are accepted: everything fits one page).
fn accounts(query: &str) -> Result<Response, Refusal> {
    let mut listed: Vec<&BcbAccount> = ACCOUNTS.iter().collect();
    for (name, value) in wire::query_pairs(query) {
        let number = || value.parse::<u64>().ok();
        let invalid = || (400, "INVALID_FIELD", format!("{name} must be a number"));
        match name.as_str() {
            "id" => {
                let id = number().ok_or_else(invalid)?;
                listed.retain(|a| a.id == id);
            }
            "counterparty_id" => {
                let id = number().ok_or_else(invalid)?;
                listed.retain(|_| id == COUNTERPARTY_ID);
            }
            "limit" | "pageToken" => {
                number().ok_or_else(invalid)?;
            }
            _ => {}
        }
    }
    let listed: Vec<Value> = listed.into_iter().map(account_json).collect();
    Ok(reply(200, &json!(listed)))
}

/// `GET /v3/accounts/{id}/transactions[/{tx_id}]`: newest first, or one.
fn transactions(shared: &Shared, id: &str, tx_id: Option<&str>) -> Result<Response, Refusal> {
    let account = ACCOUNTS.iter().find(|a| a.id.to_string() == id);
    let account = account.ok_or_else(|| (404, "NOT_FOUND", format!("no account {id}")))?;
    let inner = shared.inner.lock();
    let mine = inner
        .transactions
        .iter()
        .filter(|t| t["account_id"] == account.id);
    let Some(tx_id) = tx_id else {
        let listed: Vec<&Value> = mine.rev().collect();
        return Ok(reply(200, &json!(listed)));
    };
    let mut found = mine.filter(|t| t["tx_id"] == tx_id);
    let missing = || {
        (
            404,
            "NOT_FOUND",
            format!("no transaction {tx_id} on account {id}"),
        )
    };
    Ok(reply(200, found.next().ok_or_else(missing)?))
}

/// A checked Authorise Payment body.
struct Payout {
    account: &'static BcbAccount,
    nonce: String,
    amount: f64,
    scheme: String,
    fields: Map<String, Value>,
}

/// `POST /v5/payments/authorise`: validates, refuses a nonce the sender
/// account already used, records the payout (`Accepted`).
fn authorise(shared: &Shared, parts: &Parts, body: &[u8]) -> Result<Response, Refusal> {
    if wire::content_type(parts) != "application/json" {
        return Err((
            400,
            "INVALID_REQUEST",
            "the body must be application/json".into(),
        ));
    }
    let Payout {
        account,
        nonce,
        amount,
        scheme,
        fields,
    } = validate(body)?;
    let mut inner = shared.inner.lock();
    if !inner.nonces.insert((account.id, nonce.clone())) {
        let why = format!("nonce {nonce} was already used on account {}", account.id);
        return Err((400, "NONCE_REUSED", why));
    }
    let (transaction_id, end_to_end) = (inner.new_hex(), inner.new_hex());
    let text = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
    let now = wire::timestamp();
    inner.payments.push(json!({
        "transactionId": transaction_id, "endToEndIdentification": end_to_end,
        "nonce": nonce, "response": "Accepted", "rejection_reason": null,
        "account_id": account.id, "ccy": account.ccy, "amount": text("amount"),
        "reference": text("reference"), "created_at": now, "request": fields,
    }));
    let details = json!({
        "bic": text("beneficiary_bic"), "iban": text("beneficiary_iban"), "blinc_id": null,
        "reference": text("reference"), "sort_code": text("beneficiary_sort_code"),
        "account_name": text("beneficiary_name"),
        "account_number": text("beneficiary_account_number"),
        "counterparty_reference": text("reference"), "endToEndIdentifier": end_to_end,
        "nonce": nonce,
    });
    inner.transactions.push(json!({
        "tx_id": transaction_id, "account_id": account.id, "blinc_id": null,
        "network": wire::network(account.ccy, &scheme), "value_date": now, "credit": 0,
        "details": details, "ticker": account.ccy, "amount": amount, "approved": 0,
        "notes": text("notes"), "source_name": "bcb-testkit", "status": "Accepted",
        "rejection_reason": null,
    }));
    let answer = json!([{ "endToEndIdentification": end_to_end,
        "transactionId": transaction_id, "nonce": nonce, "response": "Accepted" }]);
    Ok(reply(200, &answer))
}

/// The inline beneficiary fields a payment in `ccy` needs (BCB's
/// "different payment models by currency"; GBP: FPS).
fn beneficiary_fields(ccy: &str) -> &'static [&'static str] {
    match ccy {
        "GBP" => &[
            "beneficiary_name",
            "beneficiary_account_number",
            "beneficiary_sort_code",
        ],
        "EUR" => &[
            "beneficiary_name",
            "beneficiary_address_line_1",
            "beneficiary_city",
            "beneficiary_country",
            "beneficiary_bic",
        ],
        _ => &[
            "beneficiary_name",
            "beneficiary_address_line_1",
            "beneficiary_city",
            "beneficiary_country",
            "beneficiary_account_number",
            "beneficiary_routing_number",
            "beneficiary_bank_name",
            "beneficiary_bank_address",
            "beneficiary_bank_country",
        ],
    }
}

/// The Authorise Payment body's fields, or why it is refused.
fn validate(body: &[u8]) -> Result<Payout, Refusal> {
    let Ok(Value::Object(fields)) = serde_json::from_slice(body) else {
        return Err((
            400,
            "INVALID_REQUEST",
            "the body is not a JSON object".into(),
        ));
    };
    let missing = |name: &str| (400, "MISSING_FIELD", format!("{name} is required"));
    let invalid = |name: &str, want: &str| (400, "INVALID_FIELD", format!("{name} must be {want}"));
    // A non-empty string, or (`numeric`) a non-negative integer as text.
    let text = |name: &str, numeric: bool| match fields.get(name) {
        None | Some(Value::Null) => Err(missing(name)),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) if numeric && n.is_u64() => Ok(n.to_string()),
        Some(_) if numeric => Err(invalid(name, "a string or an integer")),
        Some(_) => Err(invalid(name, "a non-empty string")),
    };
    let counterparty = fields
        .get("counterparty_id")
        .ok_or_else(|| missing("counterparty_id"));
    let counterparty = counterparty?.as_u64();
    let counterparty = counterparty.ok_or_else(|| invalid("counterparty_id", "an integer"))?;
    if counterparty != COUNTERPARTY_ID {
        let why = format!("counterparty {counterparty} is not yours");
        return Err((403, "FORBIDDEN", why));
    }
    let sender = text("sender_account_id", true)?;
    let account = ACCOUNTS.iter().find(|a| a.id.to_string() == sender);
    let not_yours = || (403, "FORBIDDEN", format!("account {sender} is not yours"));
    let account = account.ok_or_else(not_yours)?;
    let ccy = text("ccy", false)?;
    if ccy != account.ccy {
        return Err(invalid(
            "ccy",
            &format!("{}, the sender account's currency", account.ccy),
        ));
    }
    let amount = text("amount", false)?;
    let want = "a positive decimal string with at most 2 decimals";
    let amount = wire::amount_value(&amount, 2).ok_or_else(|| invalid("amount", want))?;
    if text("reference", false)?.chars().count() > 140 {
        return Err(invalid("reference", "at most 140 characters"));
    }
    text("reason", false)?;
    if !matches!(
        fields.get("notes"),
        None | Some(Value::Null | Value::String(_))
    ) {
        return Err(invalid("notes", "a string"));
    }
    let scheme = text("preferred_scheme", false)?;
    if !["AUTO", "BLINC", "INTERNAL"].contains(&scheme.as_str()) {
        return Err(invalid("preferred_scheme", "AUTO, BLINC or INTERNAL"));
    }
    let nonce = text("nonce", true)?;
    if fields.contains_key("beneficiary_account_id") {
        text("beneficiary_account_id", true)?;
    } else if scheme != "AUTO" {
        return Err(missing("beneficiary_account_id"));
    } else {
        check_beneficiary(&fields, account.ccy, &text)?;
    }
    Ok(Payout {
        account,
        nonce,
        amount,
        scheme,
        fields,
    })
}

/// Checks the inline beneficiary of a payment in `ccy`.
fn check_beneficiary<F>(fields: &Map<String, Value>, ccy: &str, text: &F) -> Result<(), Refusal>
where
    F: Fn(&str, bool) -> Result<String, Refusal>,
{
    for name in beneficiary_fields(ccy) {
        text(name, false)?;
    }
    let invalid = |name: &str, want: &str| (400, "INVALID_FIELD", format!("{name} must be {want}"));
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let country = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
    match ccy {
        "GBP" => {
            if !digits(&text("beneficiary_account_number", false)?, 8) {
                return Err(invalid("beneficiary_account_number", "8 digits"));
            }
            if !digits(&text("beneficiary_sort_code", false)?, 6) {
                return Err(invalid("beneficiary_sort_code", "6 digits"));
            }
        }
        "EUR" => {
            let bic = text("beneficiary_bic", false)?;
            let alnum = bic
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !(alnum && matches!(bic.len(), 8 | 11)) {
                return Err(invalid("beneficiary_bic", "a BIC of 8 or 11 characters"));
            }
            let account = ["beneficiary_iban", "beneficiary_account_number"];
            let Some(name) = account.into_iter().find(|name| fields.contains_key(*name)) else {
                let why = "beneficiary_iban or beneficiary_account_number is required";
                return Err((400, "MISSING_FIELD", why.to_owned()));
            };
            text(name, false)?;
        }
        _ => {
            if !country(&text("beneficiary_bank_country", false)?) {
                return Err(invalid(
                    "beneficiary_bank_country",
                    "a 2-letter ISO country code",
                ));
            }
        }
    }
    if fields.contains_key("beneficiary_country") && !country(&text("beneficiary_country", false)?)
    {
        return Err(invalid(
            "beneficiary_country",
            "a 2-letter ISO country code",
        ));
    }
    Ok(())
}
