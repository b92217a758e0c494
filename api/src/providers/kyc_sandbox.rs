//! [`SandboxKyc`], the default `kyc_provider`: verifies every document
//! after `kyc_verify_delay_ms`, except (as a test hook, like a payment
//! sandbox's magic card numbers) documents whose content starts with
//! [`SANDBOX_REJECT_PREFIX`].

use super::kyc::{KycDecision, KycDocument, KycProvider, KycProviderError};
use super::{ProviderContext, SetupError};
use crate::users::kyc::KycDecisions;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The sandbox provider of `ctx`.
pub fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn KycProvider>, SetupError> {
    Ok(Arc::new(SandboxKyc::new(Duration::from_millis(
        ctx.config.kyc_verify_delay_ms,
    ))))
}

/// The sandbox provider: verifies every document after a fixed delay,
/// except (as a test hook, like a payment sandbox's magic card numbers)
/// documents whose content starts with `REJECT`, which it rejects.
#[derive(Debug, Clone)]
pub struct SandboxKyc {
    delay: Duration,
}

/// Content prefix the sandbox rejects.
pub const SANDBOX_REJECT_PREFIX: &[u8] = b"REJECT";

impl SandboxKyc {
    pub fn new(delay: Duration) -> Self {
        SandboxKyc { delay }
    }

    fn decide(content: &[u8]) -> KycDecision {
        if content.starts_with(SANDBOX_REJECT_PREFIX) {
            KycDecision::Rejected {
                reason: "sandbox: document marked REJECT".into(),
            }
        } else {
            KycDecision::Verified
        }
    }
}

#[async_trait]
impl KycProvider for SandboxKyc {
    async fn submit(
        &self,
        document: KycDocument,
        decisions: KycDecisions,
    ) -> Result<(), KycProviderError> {
        let decision = Self::decide(&document.content);
        let delay = self.delay;
        let (user_id, submission_id) = (document.user_id, document.submission_id);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            decisions.apply(&user_id, &submission_id, decision).await;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_verifies_unless_marked() {
        assert_eq!(SandboxKyc::decide(b"hello"), KycDecision::Verified);
        assert!(matches!(
            SandboxKyc::decide(b"REJECT please"),
            KycDecision::Rejected { .. }
        ));
    }
}
