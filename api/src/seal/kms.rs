//! The KMS calls behind the deployment's data key: `GenerateDataKey`
//! once per deployment, `Decrypt` of the wrapped key at every start. Both
//! carry the encryption context `nax-purpose = store-data-key`, which
//! the task role's policy requires (`infra/terraform/iam.tf`), so the
//! role cannot use the key for anything else through these calls.

use super::KeyringError;
use crate::config::ApiConfig;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;

/// Encryption context of the data key (name, value).
pub const CONTEXT: (&str, &str) = ("nax-purpose", "store-data-key");

/// A KMS client for `config` (`kms_region`, `kms_endpoint`, the shared AWS
/// credentials); makes no call.
pub async fn client(config: &ApiConfig) -> Client {
    let endpoint = (!config.kms_endpoint.is_empty()).then_some(config.kms_endpoint.as_str());
    let sdk = crate::aws::sdk_config(
        &config.kms_region,
        endpoint,
        config.aws_credentials().as_ref(),
    )
    .await;
    Client::new(&sdk)
}

/// Creates a symmetric KMS key and returns its id. For tests and local
/// development (moto); production keys come from Terraform.
pub async fn create_key(client: &Client) -> Result<String, KeyringError> {
    let out = client
        .create_key()
        .description("nax-stream data key (development)")
        .send()
        .await
        .map_err(|e| kms_error("CreateKey", e))?;
    out.key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| KeyringError::Kms {
            operation: "CreateKey",
            message: "answer without key metadata".into(),
        })
}

/// A new data key under `key_id`: (plaintext, wrapped).
pub(super) async fn generate(
    client: &Client,
    key_id: &str,
) -> Result<([u8; 32], Vec<u8>), KeyringError> {
    let out = client
        .generate_data_key()
        .key_id(key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context(CONTEXT.0, CONTEXT.1)
        .send()
        .await
        .map_err(|e| kms_error("GenerateDataKey", e))?;
    let plain = key_bytes("GenerateDataKey", out.plaintext())?;
    let wrapped = out
        .ciphertext_blob()
        .map(|b| b.as_ref().to_vec())
        .ok_or_else(|| KeyringError::Kms {
            operation: "GenerateDataKey",
            message: "answer without a ciphertext blob".into(),
        })?;
    Ok((plain, wrapped))
}

/// The plaintext of a data key wrapped under `key_id`.
pub(super) async fn unwrap(
    client: &Client,
    key_id: &str,
    wrapped: &[u8],
) -> Result<[u8; 32], KeyringError> {
    let out = client
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(Blob::new(wrapped.to_vec()))
        .encryption_context(CONTEXT.0, CONTEXT.1)
        .send()
        .await
        .map_err(|e| kms_error("Decrypt", e))?;
    key_bytes("Decrypt", out.plaintext())
}

fn key_bytes(operation: &'static str, blob: Option<&Blob>) -> Result<[u8; 32], KeyringError> {
    blob.and_then(|b| <[u8; 32]>::try_from(b.as_ref()).ok())
        .ok_or_else(|| KeyringError::Kms {
            operation,
            message: "the plaintext data key is not 32 bytes".into(),
        })
}

fn kms_error<E: std::error::Error + 'static>(operation: &'static str, e: E) -> KeyringError {
    KeyringError::Kms {
        operation,
        message: DisplayErrorContext(e).to_string(),
    }
}
