//! How DynamoDB call failures become [`StoreError`]s: a request DynamoDB
//! refuses as malformed is `Corrupt` (retrying cannot help); anything
//! else (network, timeouts, throttling, a missing table, a server error)
//! is `Unavailable`.

use crate::store::StoreError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes that say the request itself is wrong.
const INVALID_REQUEST: [&str; 3] = [
    "ValidationException",
    "SerializationException",
    "IdempotentParameterMismatchException",
];

/// Maps a failed call of `operation` on `table`.
pub(crate) fn sdk_error<E, R>(operation: &str, table: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let invalid = matches!(&e, SdkError::ServiceError(_))
        && e.code().is_some_and(|c| INVALID_REQUEST.contains(&c));
    let why = format!(
        "dynamodb {operation} on {table}: {}",
        DisplayErrorContext(&e)
    );
    if invalid {
        StoreError::Corrupt(why)
    } else {
        StoreError::Unavailable(why)
    }
}
