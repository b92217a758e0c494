//! The KYC-provider boundary: where identity documents go for review, and
//! the sandbox provider used by default.
//!
//! A provider accepts a document and decides later (minutes to days for a
//! real one). Its decision comes back through [`KycDecisions`], which
//! turns it into the user's new KYC status. The sandbox decides by itself
//! after `kyc_verify_delay_ms`; a production provider (Sumsub, Onfido, ...)
//! would implement the same trait and deliver decisions from its webhook.

use super::kyc::{DocumentType, KycDecisions};
use async_trait::async_trait;
use std::time::Duration;
use thiserror::Error;

/// A document handed to a provider. The content lives only in memory for
/// the duration of the hand-over; the store keeps just its digest.
#[derive(Clone)]
pub struct KycDocument {
    pub user_id: String,
    /// Ties the provider's decision to this submission.
    pub submission_id: String,
    pub document_type: DocumentType,
    pub content: Vec<u8>,
    /// SHA-256 of `content`, hex.
    pub sha256: String,
}

impl std::fmt::Debug for KycDocument {
    // The content is personal data: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KycDocument")
            .field("user_id", &self.user_id)
            .field("submission_id", &self.submission_id)
            .field("document_type", &self.document_type)
            .field("bytes", &self.content.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// A provider's verdict on a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KycDecision {
    Verified,
    Rejected { reason: String },
}

/// Why a provider did not take a document; the user's status stays
/// `PENDING` and the client may submit again.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KycProviderError {
    #[error("KYC provider unavailable: {0}")]
    Unavailable(String),
}

/// Where documents are reviewed.
#[async_trait]
pub trait KycProvider: Send + Sync {
    /// Hands `document` over for review. `Ok` means the provider has it
    /// and will deliver exactly one decision for it through `decisions`
    /// (later, from another task).
    async fn submit(
        &self,
        document: KycDocument,
        decisions: KycDecisions,
    ) -> Result<(), KycProviderError>;
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

    #[test]
    fn debug_never_prints_the_content() {
        let doc = KycDocument {
            user_id: "u".into(),
            submission_id: "s".into(),
            document_type: DocumentType::Passport,
            content: b"secret-passport-scan".to_vec(),
            sha256: "ab".into(),
        };
        assert!(!format!("{doc:?}").contains("secret"));
    }
}
