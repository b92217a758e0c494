//! [`S3Sink`]: archive objects in an S3 bucket (production). Objects are
//! put with SSE-KMS under the configured key, a SHA-256 checksum (which
//! S3 checks on receipt, and which Object Lock requires), content type
//! `application/x-ndjson` and content encoding `gzip`. Reads are bounded
//! by the caller's maximum (the declared length first, then the bytes
//! actually streamed).

use super::sink::{Sink, SinkError};
use api::aws::StaticCredentials;
use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};

/// How to reach the archive bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// KMS key (id or ARN) of SSE-KMS; `None` leaves the bucket's default
    /// encryption to apply.
    pub kms_key_id: Option<String>,
    pub region: String,
    /// Endpoint override (moto); `None` uses the region's AWS endpoint.
    pub endpoint: Option<String>,
    /// Fixed credentials (tests, moto); `None` uses the default chain.
    pub static_credentials: Option<StaticCredentials>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            kms_key_id: None,
            region: "us-east-1".to_owned(),
            endpoint: None,
            static_credentials: None,
        }
    }
}

/// The S3 sink (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct S3Sink {
    client: Client,
    bucket: String,
    kms_key_id: Option<String>,
}

impl S3Sink {
    /// Builds the client (path-style addressing when an endpoint is
    /// given, as moto needs); makes no call.
    pub async fn new(config: &S3Config) -> S3Sink {
        let sdk = api::aws::sdk_config(
            &config.region,
            config.endpoint.as_deref(),
            config.static_credentials.as_ref(),
        )
        .await;
        let s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(config.endpoint.is_some())
            .build();
        S3Sink {
            client: Client::from_conf(s3),
            bucket: config.bucket.clone(),
            kms_key_id: config.kms_key_id.clone(),
        }
    }

    /// The client (tests create buckets with it).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn unavailable(operation: &str, key: &str, e: impl std::error::Error) -> SinkError {
    SinkError::Unavailable(format!("s3 {operation} {key}: {}", DisplayErrorContext(&e)))
}

/// Standard base64 (the encoding of S3's checksum headers).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[async_trait]
impl Sink for S3Sink {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError> {
        let checksum = base64(&Sha256::digest(&body));
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .content_encoding("gzip")
            .checksum_sha256(checksum)
            .body(ByteStream::from(body));
        if let Some(kms) = &self.kms_key_id {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        request
            .send()
            .await
            .map_err(|e| unavailable("PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, SinkError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(unavailable("GetObject", key, e)),
        };
        let too_large = || SinkError::TooLarge {
            key: key.to_owned(),
            max,
        };
        if out.content_length().is_some_and(|n| n as u64 > max) {
            return Err(too_large());
        }
        let mut stream = out.body;
        let mut body = Vec::new();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| unavailable("GetObject body", key, e))?
        {
            if (body.len() + chunk.len()) as u64 > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    async fn list(
        &self,
        start_after: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<String>, SinkError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(super::record::KEY_PREFIX)
                .start_after(start_after)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| unavailable("ListObjectsV2", start_after, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if key >= before || keys.len() >= limit {
                    return Ok(keys);
                }
                keys.push(key.to_owned());
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(keys),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
