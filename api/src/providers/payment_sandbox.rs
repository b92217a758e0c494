//! [`SandboxPaymentProvider`], the default `payment_provider`: a stand-in
//! for a fiat provider of the registry (Stripe, Banxa, BCB) that
//! moves no money. A deposit gets a payment page (Stripe, Banxa; the URLs
//! use the reserved `.invalid` domain) or bank-transfer instructions
//! (BCB), and is reported paid after the configured delay; a payout is
//! reported sent after the same delay. Reports are that provider's real
//! webhook format and signature scheme, delivered to
//! `POST {base}/webhooks/{provider}` with retries. Asked for a status, it
//! answers `completed` once the delay has passed (what it reports), for
//! the references this instance handed out (they live in memory only).

use super::payment::{DepositStart, FiatProvider, PaymentOrder, PaymentProvider, ProviderError};
use super::{ProviderContext, RemoteStatus, SetupError};
use crate::webhooks::delivery::{Report, WebhookSender};
use crate::webhooks::notice::{Direction, Outcome};
use crate::webhooks::provider::PaymentWebhooks;
use crate::webhooks::signing::WebhookSigner;
use async_trait::async_trait;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// The sandbox of `provider` for `ctx`: it reports after
/// `fiat_confirm_delay_ms` through `{callback_base}/webhooks/{provider}`,
/// signed with the provider's secret.
pub fn build(
    ctx: &ProviderContext<'_>,
    provider: FiatProvider,
) -> Result<Arc<dyn PaymentProvider>, SetupError> {
    let signer = WebhookSigner::Payments {
        provider: provider.webhook(),
        secret: ctx.keys.hmac(provider.as_str())?.clone(),
        path: ctx.keys.signed_path(provider.as_str()),
    };
    Ok(Arc::new(SandboxPaymentProvider::new(
        provider,
        signer,
        WebhookSender::new(ctx.callback_base),
        Duration::from_millis(ctx.config.fiat_confirm_delay_ms),
    )))
}

/// One sandbox provider.
pub struct SandboxPaymentProvider {
    provider: FiatProvider,
    signer: WebhookSigner,
    sender: WebhookSender,
    delay: Duration,
    /// Our transaction id → what was answered (idempotency).
    deposits: DashMap<String, DepositStart>,
    payouts: DashMap<String, String>,
    /// Provider reference → when it was handed out (status queries).
    started: DashMap<String, std::time::Instant>,
}

impl SandboxPaymentProvider {
    /// `signer` must be `provider`'s scheme.
    pub fn new(
        provider: FiatProvider,
        signer: WebhookSigner,
        sender: WebhookSender,
        delay: Duration,
    ) -> Self {
        debug_assert_eq!(signer.provider_name(), provider.as_str());
        SandboxPaymentProvider {
            provider,
            signer,
            sender,
            delay,
            deposits: DashMap::new(),
            payouts: DashMap::new(),
            started: DashMap::new(),
        }
    }

    /// How this provider is imitated (every [`FiatProvider`] has it).
    fn style(&self) -> Option<&'static dyn PaymentWebhooks> {
        self.provider.webhook().payments()
    }

    fn new_ref(&self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.style().map(|p| p.sandbox_ref(&id)).unwrap_or(id)
    }

    /// Reports `order` as done, after the delay.
    fn report_later(&self, direction: Direction, provider_ref: &str, order: &PaymentOrder) {
        let report = Report {
            direction,
            outcome: Outcome::Completed,
            user_id: &order.user_id,
            transaction_id: &order.transaction_id,
            provider_ref,
            currency: &order.currency,
            amount: &order.amount,
        };
        let webhook_id = format!("evt_sandbox_{}", uuid::Uuid::new_v4().simple());
        let Some(style) = self.style() else {
            return;
        };
        let body = style.event_body(&report, &webhook_id);
        self.sender
            .send_later(self.signer.clone(), body, self.delay);
    }
}

#[async_trait]
impl PaymentProvider for SandboxPaymentProvider {
    async fn start_deposit(&self, order: &PaymentOrder) -> Result<DepositStart, ProviderError> {
        if let Some(known) = self.deposits.get(&order.transaction_id) {
            return Ok(known.clone());
        }
        let style = self
            .style()
            .ok_or_else(|| ProviderError::Rejected("not a payment provider".into()))?;
        let provider_ref = self.new_ref();
        let start = DepositStart {
            next_step: style.sandbox_next_step(&provider_ref, order),
            provider_ref,
        };
        let mut fresh = false;
        let start = self
            .deposits
            .entry(order.transaction_id.clone())
            .or_insert_with(|| {
                fresh = true;
                start
            })
            .clone();
        if fresh {
            self.started
                .insert(start.provider_ref.clone(), std::time::Instant::now());
            self.report_later(Direction::In, &start.provider_ref, order);
        }
        Ok(start)
    }

    async fn start_payout(
        &self,
        order: &PaymentOrder,
        _destination: &str,
    ) -> Result<String, ProviderError> {
        let mut fresh = false;
        let provider_ref = self
            .payouts
            .entry(order.transaction_id.clone())
            .or_insert_with(|| {
                fresh = true;
                self.new_ref()
            })
            .clone();
        if fresh {
            self.started
                .insert(provider_ref.clone(), std::time::Instant::now());
            self.report_later(Direction::Out, &provider_ref, order);
        }
        Ok(provider_ref)
    }

    async fn payment_status(&self, provider_ref: &str) -> Result<RemoteStatus, ProviderError> {
        Ok(match self.started.get(provider_ref) {
            Some(at) if at.elapsed() >= self.delay => RemoteStatus::Completed,
            Some(_) => RemoteStatus::Pending,
            None => RemoteStatus::NotFound,
        })
    }
}
