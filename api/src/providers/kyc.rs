//! The KYC-provider boundary: where identity documents go for review, and
//! the implementations `kyc_provider` may name ([`super::KYC`]).
//!
//! A provider accepts a document and decides later (minutes to days for a
//! real one). Its decision comes back through [`KycDecisions`], which
//! turns it into the user's new KYC status. The
//! [sandbox](super::kyc_sandbox) decides by itself after
//! `kyc_verify_delay_ms`; a production provider (Sumsub, Onfido, ...)
//! would implement the same trait and deliver decisions from its webhook.

use super::{ProviderContext, SetupError};
use crate::users::kyc::{DocumentType, KycDecisions};
use async_trait::async_trait;
use std::sync::Arc;
use thiserror::Error;

/// How a KYC provider is built.
pub type BuildKyc = fn(&ProviderContext<'_>) -> Result<Arc<dyn KycProvider>, SetupError>;

/// A document handed to a provider. The content lives only in memory for
/// the duration of the hand-over; the store keeps just its digest.
#[derive(Clone)]
pub struct KycDocument {
    pub user_id: String,
    /// Ties the provider's decision to this submission.
    pub submission_id: String,
    /// The user's country from their profile (ISO 3166-1 alpha-2), when
    /// set: providers ask which country issued a document.
    pub country: Option<String>,
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
    /// The submission cannot be sent as it is (the reason is for the
    /// user); nothing was sent.
    #[error("{0}")]
    Refused(String),
}

/// Where documents are reviewed.
#[async_trait]
pub trait KycProvider: Send + Sync + 'static {
    /// Hands `document` over for review. `Ok` means the provider has it
    /// and will deliver exactly one decision for it through `decisions`
    /// (later, from another task).
    async fn submit(
        &self,
        document: KycDocument,
        decisions: KycDecisions,
    ) -> Result<(), KycProviderError>;

    /// What the provider needs of the submitter before anything is
    /// recorded (Sumsub: a profile country); `Err(reason)` refuses the
    /// submission with nothing changed. By default nothing.
    fn check_submitter(&self, country: Option<&str>) -> Result<(), String> {
        let _ = country;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_content() {
        let doc = KycDocument {
            user_id: "u".into(),
            submission_id: "s".into(),
            country: None,
            document_type: DocumentType::Passport,
            content: b"secret-passport-scan".to_vec(),
            sha256: "ab".into(),
        };
        assert!(!format!("{doc:?}").contains("secret"));
    }
}
