//! The secrets and keys webhooks are signed and verified with.
//!
//! HMAC secrets (Stripe, Banxa, BCB: every registered provider with a
//! [`HmacSecret`](super::provider::HmacSecret)) come from the config,
//! live when they are Secrets Manager references ([`crate::secrets`]: a
//! rotated secret is used without a restart, and the previous one still
//! verifies for [`ROTATION_GRACE`](crate::secrets::ROTATION_GRACE)); when
//! unset they are generated once into `<data_dir>/keys/` (mode 0600) and
//! reused on every start, so the sandbox providers and the verifying
//! routes agree across restarts. Fireblocks signs with RSA: verification uses the
//! configured public key file, else the public half of the sandbox
//! custody's key pair, which is generated once into the same folder.

use crate::config::ApiConfig;
use crate::secret::Secret;
use crate::secrets::{LiveSecret, ProviderSecrets};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Folder (inside the data directory) holding generated secrets.
pub const KEYS_DIR: &str = "keys";
/// File names of the generated secrets, inside [`KEYS_DIR`].
pub const STRIPE_SECRET_FILE: &str = "stripe_webhook_secret";
pub const BANXA_SECRET_FILE: &str = "banxa_webhook_secret";
pub const BCB_SECRET_FILE: &str = "bcb_webhook_secret";
/// PKCS#8 PEM private key of the sandbox custody (Fireblocks webhooks).
pub const FIREBLOCKS_SANDBOX_KEY_FILE: &str = "fireblocks_sandbox_private.pem";
/// RSA modulus size of the generated sandbox key (Fireblocks' own is RSA too).
pub const SANDBOX_RSA_BITS: usize = 2048;

/// Why keys could not be loaded or generated; the service does not start.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} holds no usable key: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("generating a key: {0}")]
    Generate(String),
    /// A provider's key set could not be fetched (and none was before).
    #[error("fetching a key set: {0}")]
    Fetch(String),
}

/// Everything the webhook routes verify with, and the signing key of the
/// sandbox custody. Never printed.
pub struct WebhookKeys {
    /// Stripe endpoint secret (`whsec_…`), used whole as the HMAC key.
    pub stripe: LiveSecret,
    /// Banxa API secret (HMAC key of the `Authorization` signature).
    pub banxa: LiveSecret,
    /// BCB Group webhook secret.
    pub bcb: LiveSecret,
    /// The HMAC secret of every registered provider that has one, by name.
    hmac: HashMap<&'static str, LiveSecret>,
    /// Fireblocks' public key from `fireblocks_public_key_file`, if set.
    fireblocks_configured: Option<RsaPublicKey>,
    /// Fireblocks' key set of webhooks v2 (`fireblocks_jwks_url`), if set.
    fireblocks_jwks: Option<Arc<super::jwks::Jwks>>,
    /// The sandbox custody's key pair (signs its Fireblocks webhooks; its
    /// public half verifies them unless a key file is configured).
    pub sandbox_fireblocks: Arc<SandboxRsaKey>,
    /// The path of `webhook_base_url` (empty when unset or the root):
    /// what the path providers call has before `/webhooks/{name}`.
    base_path: String,
}

impl WebhookKeys {
    /// [`load`](Self::load) on the blocking pool.
    pub async fn open(
        config: &ApiConfig,
        data_dir: &Path,
        secrets: &ProviderSecrets,
    ) -> Result<Self, KeyError> {
        let (config, data_dir) = (config.clone(), data_dir.to_owned());
        let secrets = secrets.clone();
        tokio::task::spawn_blocking(move || WebhookKeys::load(&config, &data_dir, &secrets))
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))?
    }

    /// Loads configured secrets (live from `secrets` when they are
    /// references), generating the missing HMAC secrets once into
    /// `<data_dir>/keys/`. The sandbox RSA key is loaded (or generated,
    /// which takes seconds in debug builds) on first use.
    pub fn load(
        config: &ApiConfig,
        data_dir: &Path,
        secrets: &ProviderSecrets,
    ) -> Result<Self, KeyError> {
        let dir = data_dir.join(KEYS_DIR);
        let mut hmac = HashMap::new();
        for provider in super::notice::Provider::all() {
            let Some(spec) = provider.get().hmac_secret() else {
                continue;
            };
            let secret = match (spec.configured)(config) {
                Some(s) => secrets.live(&s),
                None => load_or_create(&dir, spec.file, || {
                    Ok(format!("{}{}", spec.prefix, random_hex(32)))
                })
                .map(|s| LiveSecret::fixed(Secret::new(s)))?,
            };
            hmac.insert(provider.as_str(), secret);
        }
        let named = |name: &str| {
            hmac.get(name)
                .cloned()
                .ok_or_else(|| KeyError::Generate(format!("no {name} webhook secret")))
        };
        let (stripe, banxa, bcb) = (named("stripe")?, named("banxa")?, named("bcb")?);
        let fireblocks_configured = config
            .fireblocks_public_key_file
            .as_ref()
            .map(|file| read_public_key(Path::new(file)))
            .transpose()?;
        let fireblocks_jwks = (!config.fireblocks_jwks_url.is_empty())
            .then(|| {
                super::jwks::Jwks::new(
                    &config.fireblocks_jwks_url,
                    super::fireblocks::V2_ALG,
                    std::time::Duration::from_millis(config.upstream_timeout_ms),
                )
                .map(Arc::new)
                .map_err(KeyError::Fetch)
            })
            .transpose()?;
        Ok(WebhookKeys {
            stripe,
            banxa,
            bcb,
            hmac,
            fireblocks_configured,
            fireblocks_jwks,
            sandbox_fireblocks: Arc::new(SandboxRsaKey::new(data_dir)),
            base_path: url_path(&config.webhook_base_url),
        })
    }

    /// The path provider `name` POSTs its webhooks to, as it sees it
    /// (`/webhooks/{name}` after the path of `webhook_base_url`, the
    /// public address registered with the providers): what Banxa's
    /// signature covers, wherever a gateway in front routes it.
    pub fn signed_path(&self, name: &str) -> String {
        format!("{}/webhooks/{name}", self.base_path)
    }

    /// The HMAC secret of the registered provider `name`.
    pub fn hmac(&self, name: &str) -> Result<&LiveSecret, KeyError> {
        self.hmac
            .get(name)
            .ok_or_else(|| KeyError::Generate(format!("no {name} webhook secret")))
    }

    /// Fireblocks' key set of webhooks v2, when configured.
    pub fn fireblocks_jwks(&self) -> Option<&super::jwks::Jwks> {
        self.fireblocks_jwks.as_deref()
    }

    /// True when Fireblocks' v1 public key is configured (not the
    /// sandbox's).
    pub fn fireblocks_v1_configured(&self) -> bool {
        self.fireblocks_configured.is_some()
    }

    /// The key Fireblocks webhooks must be signed with: the configured
    /// one, else the sandbox custody's.
    pub async fn fireblocks(&self) -> Result<RsaPublicKey, KeyError> {
        match &self.fireblocks_configured {
            Some(key) => Ok(key.clone()),
            None => Ok(self.sandbox_fireblocks.get().await?.to_public_key()),
        }
    }
}

/// The sandbox custody's RSA key pair, read from (or generated once into)
/// `<data_dir>/keys/` on first use, then kept in memory.
pub struct SandboxRsaKey {
    data_dir: PathBuf,
    key: tokio::sync::OnceCell<RsaPrivateKey>,
}

impl SandboxRsaKey {
    pub fn new(data_dir: &Path) -> Self {
        SandboxRsaKey {
            data_dir: data_dir.to_owned(),
            key: tokio::sync::OnceCell::new(),
        }
    }

    /// The key (loaded on the blocking pool the first time).
    pub async fn get(&self) -> Result<&RsaPrivateKey, KeyError> {
        self.key
            .get_or_try_init(|| async {
                let dir = self.data_dir.clone();
                tokio::task::spawn_blocking(move || sandbox_fireblocks_key(&dir))
                    .await
                    .map_err(|e| KeyError::Generate(e.to_string()))?
            })
            .await
    }
}

/// The sandbox custody's RSA key, generated once into
/// `<data_dir>/keys/fireblocks_sandbox_private.pem` (tests read it to sign
/// their own Fireblocks webhooks).
pub fn sandbox_fireblocks_key(data_dir: &Path) -> Result<RsaPrivateKey, KeyError> {
    let dir = data_dir.join(KEYS_DIR);
    let path = dir.join(FIREBLOCKS_SANDBOX_KEY_FILE);
    let pem = load_or_create(&dir, FIREBLOCKS_SANDBOX_KEY_FILE, || {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), SANDBOX_RSA_BITS)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(pem.to_string())
    })?;
    RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Invalid {
        path,
        why: e.to_string(),
    })
}

/// Reads an RSA public key in SPKI (`BEGIN PUBLIC KEY`) or PKCS#1
/// (`BEGIN RSA PUBLIC KEY`) PEM.
pub fn read_public_key(path: &Path) -> Result<RsaPublicKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    RsaPublicKey::from_public_key_pem(&pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(&pem))
        .map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            why: e.to_string(),
        })
}

/// `n` random bytes, hex.
fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

/// Returns the content of `dir/name`, creating it with `make()` first if
/// absent. `dir` is made (or tightened to) 0700 and the file is 0600;
/// creation is atomic and first-writer-wins
/// ([`crate::owner_only::create_once`]), so two processes starting at
/// once end up with the same secret.
pub fn load_or_create(
    dir: &Path,
    name: &str,
    make: impl FnOnce() -> Result<String, KeyError>,
) -> Result<String, KeyError> {
    let path = dir.join(name);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    };
    crate::owner_only::dir(dir).map_err(io(dir))?;
    if let Some(s) = crate::owner_only::read(&path).map_err(io(&path))? {
        return Ok(s.trim_end().to_owned());
    }
    let value = make()?;
    crate::owner_only::create_once(&path, &value)
        .map(|s| s.trim_end().to_owned())
        .map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generated_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let config = ApiConfig::default();
        let none = ProviderSecrets::default();
        let a = WebhookKeys::open(&config, dir.path(), &none).await.unwrap();
        let b = WebhookKeys::open(&config, dir.path(), &none).await.unwrap();
        assert!(a.stripe.current().expose().starts_with("whsec_"));
        assert_eq!(a.stripe.current(), b.stripe.current());
        assert_eq!(a.banxa.current(), b.banxa.current());
        assert_eq!(a.bcb.current(), b.bcb.current());
        assert_ne!(a.banxa.current(), a.bcb.current());
        let fa = a.fireblocks().await.unwrap();
        assert_eq!(fa, b.fireblocks().await.unwrap());
        assert_eq!(
            fa,
            a.sandbox_fireblocks.get().await.unwrap().to_public_key()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let keys = dir.path().join(KEYS_DIR);
            for f in [STRIPE_SECRET_FILE, FIREBLOCKS_SANDBOX_KEY_FILE] {
                let mode = std::fs::metadata(keys.join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
    }

    #[test]
    fn configured_secrets_win() {
        let dir = tempfile::tempdir().unwrap();
        let config = ApiConfig {
            stripe_webhook_secret: Some(Secret::new("whsec_configured")),
            ..ApiConfig::default()
        };
        let keys = WebhookKeys::load(&config, dir.path(), &ProviderSecrets::default()).unwrap();
        assert_eq!(keys.stripe.current().expose(), "whsec_configured");
        assert!(!dir.path().join(KEYS_DIR).join(STRIPE_SECRET_FILE).exists());
    }
}

/// The path of `url` without a trailing `/`, query or fragment
/// (`https://h/api/` → `/api`; `https://h` → ``).
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod path_tests {
    use super::url_path;

    #[test]
    fn the_base_urls_path_is_kept_without_its_trailing_slash() {
        for (url, path) in [
            ("", ""),
            ("http://127.0.0.1:8080", ""),
            ("https://api.example.com/", ""),
            ("https://api.example.com/prod", "/prod"),
            ("https://api.example.com/prod/api/", "/prod/api"),
            ("https://api.example.com/x?y=1#z", "/x"),
        ] {
            assert_eq!(url_path(url), path, "{url}");
        }
    }
}
