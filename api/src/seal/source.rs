//! Where the data key comes from, and how every node of a deployment ends
//! up with the same one.
//!
//! - **KMS** (`kms_key_id` set; production): the first node to start calls
//!   `GenerateDataKey` and stores the wrapped key as the checkpoint
//!   (`nax-data-key`, `kms-wrapped-key`) with a create-only write, so
//!   nodes starting at once agree on the first one stored; every node
//!   then calls `Decrypt` on it at start. The plaintext key lives in
//!   memory only. A `keys/data.key` left from before KMS still opens what
//!   it sealed (re-sealed under the KMS key by the next write).
//! - **Local key file** (default): 32 random bytes generated once into
//!   `<data_dir>/keys/data.key` (0600, like the JWT key). The store
//!   records the key's id (checkpoint `nax-data-key`, `local-key-id`):
//!   a node whose key file differs (lost or regenerated, or another node
//!   on a shared store with a key of its own) refuses to start instead of
//!   sealing with a key the others cannot open.

use super::{kms, DataKey, Keyring};
use crate::config::ApiConfig;
use crate::store::{Store, StoreError, SyncCheckpoint, Write};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// `service_name` of the data key's checkpoints.
pub const CHECKPOINT_SERVICE: &str = "nax-data-key";
/// The wrapped KMS data key (base64).
const KMS_CHECKPOINT: &str = "kms-wrapped-key";
/// The id of the local key file's key.
const LOCAL_CHECKPOINT: &str = "local-key-id";
/// The local key file, inside `<data_dir>/keys/`.
pub const DATA_KEY_FILE: &str = "data.key";
/// Reads of the checkpoint after losing a race to create it.
const ATTEMPTS: usize = 3;

/// Why the data key could not be had; the node does not start.
#[derive(Debug, Error)]
pub enum KeyringError {
    #[error("data key file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data key file {0} is not 32 bytes of base64url")]
    CorruptFile(PathBuf),
    #[error("the stored wrapped data key is not base64")]
    CorruptWrapped,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("KMS {operation}: {message}")]
    Kms {
        operation: &'static str,
        message: String,
    },
    /// This node's key is not the deployment's.
    #[error("{0}")]
    Mismatch(String),
}

/// The deployment's keyring (see the module docs). Makes
/// `<data_dir>/keys/` (0700) when it uses the local key file.
pub async fn keyring(
    config: &ApiConfig,
    data_dir: &Path,
    store: &dyn Store,
) -> Result<Keyring, KeyringError> {
    let path = data_dir
        .join(crate::webhooks::keys::KEYS_DIR)
        .join(DATA_KEY_FILE);
    if config.kms_key_id.is_empty() {
        if store
            .checkpoint(CHECKPOINT_SERVICE, KMS_CHECKPOINT)
            .await?
            .is_some()
        {
            return Err(KeyringError::Mismatch(
                "the store's secrets are sealed with a KMS data key: set kms_key_id (NAX_KMS_KEY_ID)".into(),
            ));
        }
        let key = local_key(&path, true)?.expect("invariant: created when missing");
        agree_on_local_key(store, &key, &path).await?;
        tracing::info!(key_id = key.id(), "data key: local key file");
        return Ok(Keyring::new(key));
    }
    let client = kms::client(config).await;
    let key = shared_kms_key(&client, &config.kms_key_id, store).await?;
    tracing::info!(key_id = key.id(), "data key: from KMS");
    let mut ring = Keyring::new(key);
    if let Some(local) = local_key(&path, false)? {
        ring = ring.also_opening(local);
    }
    Ok(ring)
}

/// The key in `path`, created first when `create` (else `None` if absent).
fn local_key(path: &Path, create: bool) -> Result<Option<DataKey>, KeyringError> {
    let io = |source| KeyringError::File {
        path: path.to_owned(),
        source,
    };
    if create {
        if let Some(dir) = path.parent() {
            crate::owner_only::dir(dir).map_err(io)?;
        }
    }
    let text = match crate::owner_only::read(path).map_err(io)? {
        Some(text) => text,
        None if !create => return Ok(None),
        None => {
            let fresh: [u8; 32] = rand::random();
            crate::owner_only::create_once(path, &URL_SAFE_NO_PAD.encode(fresh)).map_err(io)?
        }
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| KeyringError::CorruptFile(path.to_owned()))?;
    Ok(Some(DataKey::new(&bytes)))
}

/// Records the local key's id in the store, or checks it against the one
/// recorded.
async fn agree_on_local_key(
    store: &dyn Store,
    key: &DataKey,
    path: &Path,
) -> Result<(), KeyringError> {
    for _ in 0..ATTEMPTS {
        match store
            .checkpoint(CHECKPOINT_SERVICE, LOCAL_CHECKPOINT)
            .await?
        {
            Some(recorded) if recorded.value == key.id() => return Ok(()),
            Some(recorded) => {
                return Err(KeyringError::Mismatch(format!(
                    "{} holds data key {}, but the store's secrets are sealed with data key {}: \
                     restore that key file (nodes sharing a store need the same file, or kms_key_id)",
                    path.display(),
                    key.id(),
                    recorded.value
                )))
            }
            None => {}
        }
        match create_checkpoint(store, LOCAL_CHECKPOINT, key.id()).await {
            Err(StoreError::Conflict(_)) => continue,
            done => return done.map_err(Into::into),
        }
    }
    Err(KeyringError::Mismatch(
        "the local data key's checkpoint keeps changing".into(),
    ))
}

/// The deployment's KMS data key: the stored wrapped key, unwrapped; or,
/// on the very first start, a new one whose wrapped form is stored unless
/// another node stored its own first (then that one is used).
async fn shared_kms_key(
    client: &aws_sdk_kms::Client,
    key_id: &str,
    store: &dyn Store,
) -> Result<DataKey, KeyringError> {
    for _ in 0..ATTEMPTS {
        if let Some(stored) = store.checkpoint(CHECKPOINT_SERVICE, KMS_CHECKPOINT).await? {
            let wrapped = STANDARD
                .decode(stored.value.as_bytes())
                .map_err(|_| KeyringError::CorruptWrapped)?;
            let plain = kms::unwrap(client, key_id, &wrapped).await?;
            return Ok(DataKey::new(&plain));
        }
        let (plain, wrapped) = kms::generate(client, key_id).await?;
        match create_checkpoint(store, KMS_CHECKPOINT, &STANDARD.encode(wrapped)).await {
            Ok(()) => return Ok(DataKey::new(&plain)),
            // Another node stored its key first: read and use that one.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(KeyringError::Mismatch(
        "the wrapped data key's checkpoint keeps changing".into(),
    ))
}

async fn create_checkpoint(
    store: &dyn Store,
    sync_type: &str,
    value: &str,
) -> Result<(), StoreError> {
    store
        .commit(vec![Write::CreateCheckpoint(SyncCheckpoint {
            service_name: CHECKPOINT_SERVICE.to_owned(),
            sync_type: sync_type.to_owned(),
            value: value.to_owned(),
            updated_at: crate::events::now(),
        })])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    #[tokio::test]
    async fn the_local_key_is_made_once_private_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let config = ApiConfig::default();
        let a = keyring(&config, dir.path(), &store).await.unwrap();
        let b = keyring(&config, dir.path(), &store).await.unwrap();
        assert_eq!(a.sealing_key_id(), b.sealing_key_id());
        let path = dir.path().join("keys").join(DATA_KEY_FILE);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let recorded = store
            .checkpoint(CHECKPOINT_SERVICE, LOCAL_CHECKPOINT)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recorded.value, a.sealing_key_id());
    }

    #[tokio::test]
    async fn a_regenerated_key_file_is_refused_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let config = ApiConfig::default();
        keyring(&config, dir.path(), &store).await.unwrap();
        std::fs::remove_file(dir.path().join("keys").join(DATA_KEY_FILE)).unwrap();
        let err = keyring(&config, dir.path(), &store).await.unwrap_err();
        assert!(
            matches!(&err, KeyringError::Mismatch(m) if m.contains("restore that key file")),
            "{err}"
        );
    }
}
