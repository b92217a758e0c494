//! The AWS SDK set-up shared by the SQS publisher and the DynamoDB store:
//! region, endpoint override (moto), fixed or default credentials, short
//! timeouts and the SDK's standard retries.

use crate::secret::Secret;
use aws_smithy_http_client::tls;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// An access key pair; the secret key never prints.
#[derive(Debug, Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

impl StaticCredentials {
    /// The dummy pair moto accepts.
    pub fn test() -> Self {
        StaticCredentials {
            access_key_id: "test".to_owned(),
            secret_access_key: Secret::new("test"),
        }
    }
}

/// The SDK configuration for `region`, at `endpoint` when given (else the
/// region's AWS endpoint), with `credentials` when given (else the default
/// provider chain: environment, ECS task role, ...).
pub async fn sdk_config(
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<&StaticCredentials>,
) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    // The one HTTPS client of every SDK client and credential provider:
    // hyper 1 with rustls on ring (Cargo.toml says why not the default).
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .http_client(https)
        .timeout_config(timeouts);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(creds) = credentials {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.expose(),
            None,
            None,
            "nax-static",
        ));
    }
    loader.load().await
}
