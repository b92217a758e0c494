//! [`BcbServer`]: a BCB Group-shaped payments server of a test's own on
//! 127.0.0.1, from BCB's documented API: an OAuth token endpoint on its own
//! port ([`BcbServer::auth_url`], as `auth.bcb.group` is its own host), and
//! an API ([`BcbServer::url`]) that lists the exchange's accounts
//! ([`ACCOUNTS`]), authorises payments (payouts) and reads transactions;
//! test-side controls settle or reject a payout and bring in a deposit,
//! each sending BCB's webhook signed `X-BCB-Signature`. Every request is
//! logged ([`BcbServer::requests`]); a refused one changes nothing.
//!
//! Documented (sources below; "[x]" marks which):
//! - Token [A][C]: `POST https://auth.bcb.group/oauth/token`, JSON
//!   `{"client_id", "client_secret"}` (no `grant_type` nor `audience` in
//!   BCB's examples); every API call then sends `Authorization: Bearer
//!   {access_token}`. Base URLs [B][C]: production `https://api.bcb.group`,
//!   sandbox `https://api.uat.bcb.group`; credentials differ per environment.
//! - Accounts [C]: `GET /v3/accounts{?counterparty_id,limit,pageToken,id}`,
//!   an array of `{id, counterparty_id, aid, cid, account_type: "Bank", ccy,
//!   host_name, host_hub (sort code), host_location, node_name (holder),
//!   node_address (account number), node_location, node_country, iban,
//!   account_label, description, bcb_controlled, settlement_reference,
//!   created_at, updated_at, …}`; "additional fields … should be
//!   disregarded" (`bic` appears in BCB's balance example, not this list).
//! - Authorise Payment [C][D][E]: `POST /v5/payments/authorise` (v4 is the
//!   same without `reason`; only v5 is served), JSON `counterparty_id`
//!   (integer), `sender_account_id`, `ccy` (ISO 4217), `amount` (a string,
//!   "888.11"), `reference` (remittance information for the beneficiary),
//!   `reason` (mandatory in v5), `notes` (optional, not relayed),
//!   `preferred_scheme` (`AUTO` | `BLINC` | `INTERNAL`), `nonce`, and
//!   either `beneficiary_account_id` or inline beneficiary fields per
//!   currency (GBP FPS: `beneficiary_name`, `beneficiary_account_number`,
//!   `beneficiary_sort_code`; EUR: name, `beneficiary_address_line_1`,
//!   `beneficiary_city`, `beneficiary_country`, `beneficiary_bic`,
//!   `beneficiary_iban` or account number; USD: name, address line 1,
//!   city, country, account number, `beneficiary_routing_number`,
//!   `beneficiary_bank_name`, `beneficiary_bank_address`,
//!   `beneficiary_bank_country`). "The nonce … must be unique per payment
//!   per account. If the nonce for a payment request is not unique for the
//!   account then it will be rejected" [C][D]. The reference page [D] marks
//!   `nonce` required, the guides [C][E] optional: required here. Answer:
//!   `[{"endToEndIdentification", "transactionId", "nonce", "response":
//!   "Accepted"}]`.
//! - Payment status [C]: a registered status webhook (`POST
//!   /v3/payments/register-webhook`, not served: the URL is set by the
//!   test) POSTs the same array shape with `response` `Accepted`,
//!   `Processing`, then `Complete` or `Rejected` (or `vopheld` for EUR
//!   Verification of Payee, not modelled). BCB documents no status read
//!   endpoint besides `GET /v3/accounts/{account_id}/transactions[/{tx_id}]`
//!   [C]: `{tx_id, account_id, blinc_id, network, value_date, credit (1 in, 0
//!   out), details {bic, iban, blinc_id, reference, sort_code, account_name,
//!   account_number, counterparty_reference, endToEndIdentifier, nonce},
//!   ticker, amount (a number), approved (1 settled, 0 pending), notes,
//!   source_name}`.
//! - Deposits [C][G]: the notifications service (set up by BCB support, a
//!   URL per account) POSTs `{"subject": "TRANSACTION:{ccy}:{id}",
//!   "timestamp", "account_id", "transactions": [{id, timestamp,
//!   amount_instructed, amount_actual (numbers), currency, credit: true,
//!   reference, bank_name, bank_country, account_name, account_number,
//!   account_address, sort_code, iban, notes_external, from}]}`.
//! - Signature [C][F]: header `X-BCB-SIGNATURE`; "using the exact same raw
//!   payload … and your secret key, compute … HMAC-SHA256" and compare. The
//!   encoding is not stated: lowercase hex here, as `api` verifies.
//! - Errors [C][H]: 400 bad/missing parameters, 401 invalid or expired
//!   token, 403 no permission, 404, 405, 500; "a JSON response body
//!   containing … an error code, message".
//!
//! Invented (BCB documents none): the error body `{"statusCode", "code",
//! "message"}` and its codes; 400 `NONCE_REUSED` for a repeated nonce;
//! opaque tokens (BCB's are Auth0 JWTs) living [`TOKEN_LIFETIME_SECS`];
//! the token endpoint's errors, RFC 6749 / Auth0-like `{"error",
//! "error_description"}` (401 `access_denied`, 400 `invalid_request`, 400
//! `unsupported_grant_type` for a `grant_type` other than
//! `client_credentials`; form bodies and `audience` are accepted as Auth0
//! does); the validation rules beyond presence (sort code 6 digits, account
//! number 8, at most 2 decimals, `ccy` = the sender account's); a payout's
//! `tx_id` being its `transactionId`; the `status` and `rejection_reason`
//! fields of a transaction; the `network` per currency (FPS, SEPA, SWIFT);
//! ids' formats; the deposit sender's bank details.
//!
//! Sources: [A] docs.bcb.group/docs/authentication; [B]
//! docs.bcb.group/docs/available-environments-for-bcb-api-interaction; [C]
//! BCB's API Blueprint `bcbdigital.apib` (HOST api.bcb.group), as copied in
//! github.com/apricode-cmd/vasp-bitflow; [D]
//! docs.bcb.group/reference/payments-authorise-payment; [E]
//! docs.bcb.group/docs/create-a-payment-request; [F]
//! docs.bcb.group/docs/webhook-signature; [G]
//! docs.bcb.group/docs/introduction-1; [H] docs.bcb.group/docs/status-codes,
//! docs.bcb.group/docs/faq-2.

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod api;
mod wire;

/// The token endpoint, on [`BcbServer::auth_url`].
pub const TOKEN_PATH: &str = "/oauth/token";
/// The accounts list, on [`BcbServer::url`].
pub const ACCOUNTS_PATH: &str = "/v3/accounts";
/// Authorise Payment (v5), on [`BcbServer::url`].
pub const AUTHORISE_PATH: &str = "/v5/payments/authorise";
/// Largest request body accepted (larger: 413).
pub const MAX_BODY: usize = 64 * 1024;
/// How long an access token lives (`expires_in`; invented, Auth0's default).
pub const TOKEN_LIFETIME_SECS: u64 = 86_400;
/// The exchange's counterparty at BCB (`counterparty_id`).
pub const COUNTERPARTY_ID: u64 = 4242;
/// The holder name of every account ([`ACCOUNTS`]).
pub const ACCOUNT_NAME: &str = "NA-X Stream client funds";

/// One of the exchange's accounts at BCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BcbAccount {
    /// The numeric account id (`sender_account_id`, `account_id`).
    pub id: u64,
    pub ccy: &'static str,
    pub iban: &'static str,
    pub bic: &'static str,
    /// Six digits.
    pub sort_code: &'static str,
    /// Eight digits.
    pub account_number: &'static str,
}

/// The exchange's accounts: GBP (the IBAN `api`'s sandbox quotes), EUR, USD.
pub const ACCOUNTS: [BcbAccount; 3] = [
    BcbAccount {
        id: 10_001,
        ccy: "GBP",
        iban: "GB33BUKB20201555555555",
        bic: "BUKBGB22",
        sort_code: "202015",
        account_number: "55555555",
    },
    BcbAccount {
        id: 10_002,
        ccy: "EUR",
        iban: "GB07CLRB04032500000002",
        bic: "CLRBGB22",
        sort_code: "040325",
        account_number: "00000002",
    },
    BcbAccount {
        id: 10_003,
        ccy: "USD",
        iban: "GB77CLRB04032500000003",
        bic: "CLRBGB22",
        sort_code: "040325",
        account_number: "00000003",
    },
];

/// Whom the server lets in, what it signs webhooks with, and where they go.
#[derive(Debug, Clone)]
pub struct BcbConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Keys the `X-BCB-Signature` HMAC of every webhook.
    pub webhook_secret: String,
    /// Where webhooks are POSTed (plain http).
    pub webhook_url: Option<String>,
}

impl Default for BcbConfig {
    fn default() -> Self {
        BcbConfig {
            client_id: "bcb-test-client".to_owned(),
            client_secret: "bcb-test-client-secret".to_owned(),
            webhook_secret: "bcb-test-webhook-secret".to_owned(),
            webhook_url: None,
        }
    }
}

/// One request as the server saw it (token endpoint and API alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    /// Access token → when it expires.
    tokens: HashMap<String, Instant>,
    /// Payout records ([`BcbServer::payments`]), oldest first.
    payments: Vec<Value>,
    /// Transactions as `GET …/transactions/{tx_id}` answers them.
    transactions: Vec<Value>,
    /// `(sender_account_id, nonce)` of every authorised payment.
    nonces: HashSet<(u64, String)>,
    faults: VecDeque<u16>,
    token_faults: VecDeque<u16>,
    log: Vec<LoggedRequest>,
    /// Every webhook body, as sent (or as it would have been).
    webhooks: Vec<String>,
    webhook_url: Option<String>,
    /// Makes ids unique.
    seq: u64,
}

impl Inner {
    /// 32 lowercase hex digits, never the same twice.
    fn new_hex(&mut self) -> String {
        self.seq += 1;
        let seed = format!("{}:{:?}", self.seq, SystemTime::now());
        hex::encode(&Sha256::digest(seed.as_bytes())[..16])
    }

    /// A UUID-shaped id (8-4-4-4-12 hex).
    fn new_uuid(&mut self) -> String {
        let h = self.new_hex();
        let (a, b, c, d, e) = (&h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
        format!("{a}-{b}-{c}-{d}-{e}")
    }
}

struct Shared {
    config: BcbConfig,
    inner: Mutex<Inner>,
}

/// A running BCB-shaped server (token endpoint and API); stops when dropped.
pub struct BcbServer {
    shared: Arc<Shared>,
    url: String,
    auth_url: String,
    _tasks: [crate::served::Task; 2],
}

/// Which of the two listeners a request came to.
#[derive(Clone)]
struct Host {
    shared: Arc<Shared>,
    auth: bool,
}

async fn listen(host: Host) -> (String, crate::served::Task) {
    let (listener, url) = crate::served::bind().await;
    let app = Router::new().fallback(handle).with_state(host);
    (url, crate::served::serve(listener, app, "BCB"))
}

async fn handle(State(host): State<Host>, request: Request) -> Response {
    api::handle(&host.shared, host.auth, request).await
}

impl BcbServer {
    /// Starts the token endpoint and the API, each on a free port of
    /// 127.0.0.1 (needs a tokio runtime).
    pub async fn start(config: BcbConfig) -> BcbServer {
        let inner = Mutex::new(Inner::default());
        let shared = Arc::new(Shared { config, inner });
        let auth = Host {
            shared: shared.clone(),
            auth: true,
        };
        let (auth_url, auth_task) = listen(auth).await;
        let api = Host {
            shared: shared.clone(),
            auth: false,
        };
        let (url, api_task) = listen(api).await;
        BcbServer {
            shared,
            url,
            auth_url,
            _tasks: [auth_task, api_task],
        }
    }

    /// `http://127.0.0.1:<port>`, the API base (`https://api.bcb.group`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// `http://127.0.0.1:<port>`, the token endpoint's base
    /// (`https://auth.bcb.group`): tokens are a POST to `{auth_url}/oauth/token`.
    pub fn auth_url(&self) -> String {
        self.auth_url.clone()
    }

    /// Every payout, oldest first: `{"transactionId",
    /// "endToEndIdentification", "nonce", "response"` (`Accepted`,
    /// `Complete`, `Rejected`), `"rejection_reason", "account_id", "ccy",
    /// "amount"` (as sent), `"reference", "created_at", "request"` (the
    /// authorise body as received)`}`.
    pub fn payments(&self) -> Vec<Value> {
        self.shared.inner.lock().payments.clone()
    }

    /// Every webhook body, oldest first, whether sent or not (no URL).
    pub fn webhooks(&self) -> Vec<Value> {
        let inner = self.shared.inner.lock();
        let parse = |b: &String| serde_json::from_str(b).unwrap_or(Value::Null);
        inner.webhooks.iter().map(parse).collect()
    }

    /// Every request, token endpoint and API, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.inner.lock().log.clone()
    }

    /// Answers the next `count` authenticated API requests with `status`
    /// (429, 5xx, …) and the error body, before any change.
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut inner = self.shared.inner.lock();
        inner.faults.extend(std::iter::repeat_n(status, count));
    }

    /// Answers the next `count` token requests with the right credentials
    /// with `status`, issuing no token (an outage of `auth.bcb.group`).
    pub fn fail_next_token(&self, count: usize, status: u16) {
        let mut inner = self.shared.inner.lock();
        inner
            .token_faults
            .extend(std::iter::repeat_n(status, count));
    }

    /// Expires every token issued so far: the next API call with one is 401
    /// until the client fetches a new token.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        let mut inner = self.shared.inner.lock();
        inner.tokens.values_mut().for_each(|expiry| *expiry = now);
    }

    /// Where the webhooks go from now on (wins over the configuration's).
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.inner.lock().webhook_url = Some(url.to_owned());
    }

    /// Payout `transaction_id` completes: `response` `Complete`, its
    /// transaction `approved` 1; sends the status webhook. Like
    /// [`BcbServer::fail_payment`]: panics on an unknown payout or one no
    /// longer pending, or when the webhook cannot be sent; returns its
    /// answer (status, JSON), `None` when there is no webhook URL.
    pub async fn settle_payment(&self, transaction_id: &str) -> Option<(u16, Value)> {
        self.finish(transaction_id, "Complete", None).await
    }

    /// Payout `transaction_id` is rejected for `reason` (kept on the
    /// record and the transaction; BCB's webhook carries no reason).
    pub async fn fail_payment(&self, transaction_id: &str, reason: &str) -> Option<(u16, Value)> {
        self.finish(transaction_id, "Rejected", Some(reason)).await
    }

    /// A bank transfer of `amount` (a positive decimal string) from
    /// `sender_name`, quoting `reference`, arrives on the account in
    /// `account_currency`: a settled credit transaction and BCB's deposit
    /// notification. Panics on an unknown currency or a bad amount.
    pub async fn incoming_transfer(
        &self,
        account_currency: &str,
        amount: &str,
        reference: &str,
        sender_name: &str,
    ) -> Option<(u16, Value)> {
        let account = ACCOUNTS.iter().find(|a| a.ccy == account_currency);
        let account = account.unwrap_or_else(|| panic!("no BCB account in {account_currency}"));
        let value = wire::amount_value(amount, 2);
        let value = value.unwrap_or_else(|| panic!("`{amount}` is not a positive amount"));
        let body = {
            let mut inner = self.shared.inner.lock();
            let (id, end_to_end, subject) = (inner.new_uuid(), inner.new_hex(), inner.new_uuid());
            let now = wire::timestamp();
            let sender = wire::sender(account.ccy);
            let details = json!({
                "bic": sender.bic, "iban": sender.iban, "blinc_id": null,
                "reference": reference, "sort_code": sender.sort_code,
                "account_name": sender_name, "account_number": sender.account_number,
                "counterparty_reference": reference, "endToEndIdentifier": end_to_end,
                "nonce": null,
            });
            inner.transactions.push(json!({
                "tx_id": id, "account_id": account.id, "blinc_id": null,
                "network": wire::network(account.ccy, "AUTO"), "value_date": now, "credit": 1,
                "details": details, "ticker": account.ccy, "amount": value, "approved": 1,
                "notes": null, "source_name": "bcb-testkit", "status": "Complete",
            }));
            let body = json!({
                "subject": format!("TRANSACTION:{}:{subject}", account.ccy),
                "timestamp": now, "account_id": account.id,
                "transactions": [{
                    "id": id, "timestamp": now, "amount_instructed": value,
                    "amount_actual": value, "currency": account.ccy, "credit": true,
                    "reference": reference, "bank_name": sender.bank_name,
                    "bank_country": sender.country, "account_name": sender_name,
                    "account_number": sender.account_number, "account_address": "",
                    "sort_code": sender.sort_code, "iban": sender.iban,
                    "notes_external": "", "from": sender_name,
                }],
            })
            .to_string();
            inner.webhooks.push(body.clone());
            body
        };
        self.deliver(&body).await
    }

    /// POSTs the last webhook again, byte for byte, freshly signed: a
    /// duplicate delivery. Panics when there was none.
    pub async fn resend_last(&self) -> Option<(u16, Value)> {
        let last = self.shared.inner.lock().webhooks.last().cloned();
        self.deliver(&last.expect("no BCB webhook to resend")).await
    }

    /// Moves a pending payout to `status` and sends the status webhook.
    async fn finish(&self, id: &str, status: &str, reason: Option<&str>) -> Option<(u16, Value)> {
        let body = {
            let mut inner = self.shared.inner.lock();
            let found = inner.payments.iter_mut().find(|p| p["transactionId"] == id);
            let payment = found.unwrap_or_else(|| panic!("the BCB test server has no payout {id}"));
            let was = payment["response"].as_str().unwrap_or_default().to_owned();
            assert!(was == "Accepted", "payout {id} is {was}, no longer pending");
            payment["response"] = json!(status);
            payment["rejection_reason"] = json!(reason);
            let body = json!([{
                "endToEndIdentification": payment["endToEndIdentification"],
                "transactionId": id, "nonce": payment["nonce"], "response": status,
            }])
            .to_string();
            let found = inner.transactions.iter_mut().find(|t| t["tx_id"] == id);
            if let Some(transaction) = found {
                transaction["status"] = json!(status);
                transaction["rejection_reason"] = json!(reason);
                transaction["approved"] = json!(u8::from(status == "Complete"));
            }
            inner.webhooks.push(body.clone());
            body
        };
        self.deliver(&body).await
    }

    /// POSTs `body` with `X-BCB-Signature: {hex HMAC-SHA256 of body}`; the
    /// answer, or `None` without a webhook URL. Panics when it cannot be sent.
    async fn deliver(&self, body: &str) -> Option<(u16, Value)> {
        let config = &self.shared.config;
        let set = self.shared.inner.lock().webhook_url.clone();
        let url = set.or_else(|| config.webhook_url.clone())?;
        let mac = Hmac::<Sha256>::new_from_slice(config.webhook_secret.as_bytes());
        let mut mac = mac.expect("any key length");
        mac.update(body.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let headers = [
            ("content-type", "application/json"),
            ("x-bcb-signature", signature.as_str()),
        ];
        let body = body.as_bytes().to_vec();
        Some(crate::served::post_webhook("BCB", &url, body, &headers).await)
    }
}

#[cfg(test)]
#[path = "bcb_tests.rs"]
mod tests;
