//! [`SandboxPaymentProvider`]: a stand-in for Stripe, Banxa or BCB that
//! moves no money. A deposit gets a payment page (Stripe, Banxa; the URLs
//! use the reserved `.invalid` domain) or bank-transfer instructions
//! (BCB), and is reported paid after the configured delay; a payout is
//! reported sent after the same delay. Reports are that provider's real
//! webhook format and signature scheme, delivered to
//! `POST {base}/webhooks/{provider}` with retries.

use super::provider::{
    BankInstructions, DepositStart, FiatProvider, NextStep, PaymentOrder, PaymentProvider,
    ProviderError,
};
use crate::webhooks::delivery::{Report, WebhookSender};
use crate::webhooks::notice::{Direction, Outcome};
use crate::webhooks::signing::WebhookSigner;
use crate::webhooks::{banxa, bcb, stripe};
use async_trait::async_trait;
use dashmap::DashMap;
use std::time::Duration;

/// One sandbox provider.
pub struct SandboxPaymentProvider {
    provider: FiatProvider,
    signer: WebhookSigner,
    sender: WebhookSender,
    delay: Duration,
    /// Our transaction id → what was answered (idempotency).
    deposits: DashMap<String, DepositStart>,
    payouts: DashMap<String, String>,
}

impl SandboxPaymentProvider {
    /// `signer` must be `provider`'s scheme.
    pub fn new(
        provider: FiatProvider,
        signer: WebhookSigner,
        sender: WebhookSender,
        delay: Duration,
    ) -> Self {
        debug_assert_eq!(signer.provider(), provider.webhook());
        SandboxPaymentProvider {
            provider,
            signer,
            sender,
            delay,
            deposits: DashMap::new(),
            payouts: DashMap::new(),
        }
    }

    fn new_ref(&self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match self.provider {
            FiatProvider::Stripe => format!("pi_sandbox_{id}"),
            FiatProvider::Banxa => format!("bx_sandbox_{id}"),
            FiatProvider::Bcb => format!("bcb_sandbox_{id}"),
        }
    }

    fn next_step(&self, provider_ref: &str, order: &PaymentOrder) -> NextStep {
        match self.provider {
            FiatProvider::Stripe => NextStep::PaymentUrl(format!(
                "https://checkout.stripe.invalid/pay/{provider_ref}"
            )),
            FiatProvider::Banxa => NextStep::PaymentUrl(format!(
                "https://checkout.banxa.invalid/order/{provider_ref}"
            )),
            FiatProvider::Bcb => NextStep::Instructions(BankInstructions {
                bank_name: "BCB Payments Ltd (sandbox)".into(),
                account_name: "NA-X Stream client funds".into(),
                iban: "GB33BUKB20201555555555".into(),
                bic: "BUKBGB22".into(),
                // 35 characters at most (SEPA remittance reference).
                reference: format!("NAX{}", order.transaction_id.replace('-', ""))
                    .chars()
                    .take(35)
                    .collect(),
            }),
        }
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
        let body = match self.provider {
            FiatProvider::Stripe => stripe::event_body(&report, &webhook_id),
            FiatProvider::Banxa => banxa::event_body(&report, &webhook_id),
            FiatProvider::Bcb => bcb::event_body(&report, &webhook_id),
        };
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
        let provider_ref = self.new_ref();
        let start = DepositStart {
            next_step: self.next_step(&provider_ref, order),
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
            self.report_later(Direction::Out, &provider_ref, order);
        }
        Ok(provider_ref)
    }
}
