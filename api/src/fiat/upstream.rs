//! Every call the fiat routes make to a payment provider, one function per
//! call kind, under the provider's [`resilience`](crate::resilience)
//! policy (timeout, breaker, retries: provider calls are idempotent on our
//! transaction id, so retrying cannot pay twice).

use super::Fiat;
use crate::error::ApiError;
use crate::providers::payment::{DepositStart, FiatProvider, PaymentOrder, ProviderError};
use crate::resilience::IntoApiError as _;
use crate::resilience::{CallError, Idempotency};

fn provider_down(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Unavailable(_))
}

fn provider_error(provider: FiatProvider) -> impl FnOnce(ProviderError) -> ApiError {
    move |e| match e {
        ProviderError::Rejected(why) => ApiError::unprocessable(
            "provider_rejected",
            format!("{} refused the request: {why}", provider.as_str()),
        ),
        ProviderError::Unavailable(why) => {
            tracing::warn!(provider = provider.as_str(), error = %why, "payment provider unavailable");
            ApiError::unavailable(
                "provider_unavailable",
                format!("{} is unavailable", provider.as_str()),
                1,
            )
        }
    }
}

impl Fiat {
    /// Opens a deposit with `provider`.
    pub async fn start_deposit(
        &self,
        provider: FiatProvider,
        order: &PaymentOrder,
    ) -> Result<DepositStart, ApiError> {
        let slot = self.slot(provider);
        slot.upstream
            .call(Idempotency::Idempotent, provider_down, || {
                slot.provider.start_deposit(order)
            })
            .await
            .map_err(|e| e.into_api(provider.as_str(), provider_error(provider)))
    }

    /// Sends a payout with `provider`. The raw outcome is returned: the
    /// caller decides what a refusal means for the debited funds.
    pub async fn start_payout(
        &self,
        provider: FiatProvider,
        order: &PaymentOrder,
        destination: &str,
    ) -> Result<String, CallError<ProviderError>> {
        let slot = self.slot(provider);
        slot.upstream
            .call(Idempotency::Idempotent, provider_down, || {
                slot.provider.start_payout(order, destination)
            })
            .await
    }
}
