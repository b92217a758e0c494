//! [`SandboxCustody`], the default `custody_provider`: no chain, no
//! Fireblocks; addresses derived locally, every withdrawal completed after
//! a delay through a Fireblocks-signed webhook. Asked for a transfer's
//! status, it answers `completed` once the delay has passed, for the
//! withdrawals this instance took (in memory only).

use super::custody::{Custody, CustodyError, DepositAddress, WithdrawalOrder};
use super::{ProviderContext, RemoteStatus, SetupError};
use crate::money::address::Network;
use crate::secret::Secret;
use crate::webhooks::delivery::WebhookSender;
use crate::webhooks::fireblocks::{self, TransactionReport};
use crate::webhooks::keys::{self, SandboxRsaKey};
use crate::webhooks::signing::{hmac_sha256, WebhookSigner};
use async_trait::async_trait;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// The sandbox custody of `ctx`: its address key lives in
/// `<data_dir>/keys/`, its withdrawals complete after
/// `fiat_confirm_delay_ms` through `{callback_base}/webhooks/fireblocks`.
pub fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn Custody>, SetupError> {
    let dir = ctx.data_dir.join(keys::KEYS_DIR);
    let address_key = keys::load_or_create(&dir, SandboxCustody::ADDRESS_KEY_FILE, || {
        Ok(hex::encode(rand::random::<[u8; 32]>()))
    })?;
    Ok(Arc::new(SandboxCustody::new(
        Secret::new(address_key),
        ctx.keys.sandbox_fireblocks.clone(),
        WebhookSender::new(ctx.callback_base),
        Duration::from_millis(ctx.config.fiat_confirm_delay_ms),
    )))
}

/// The default custody: no chain, no Fireblocks. Deposit addresses are
/// `HMAC-SHA256(address key, "deposit-address\0{user}\0{asset}")` written
/// in the asset's address format (the key is generated once into the data
/// directory, so addresses survive restarts). Every submitted withdrawal
/// is reported `COMPLETED` after `delay` through a signed
/// `POST /webhooks/fireblocks`.
pub struct SandboxCustody {
    address_key: Secret,
    signing_key: Arc<SandboxRsaKey>,
    sender: WebhookSender,
    delay: Duration,
    /// Our transaction id → custody id, for idempotent submission.
    submitted: DashMap<String, String>,
    /// Custody id → when it was submitted (status queries).
    started: DashMap<String, std::time::Instant>,
}

impl SandboxCustody {
    /// File (in `<data_dir>/keys/`) of the address derivation key.
    pub const ADDRESS_KEY_FILE: &'static str = "custody_address_key";

    pub fn new(
        address_key: Secret,
        signing_key: Arc<SandboxRsaKey>,
        sender: WebhookSender,
        delay: Duration,
    ) -> Self {
        SandboxCustody {
            address_key,
            signing_key,
            sender,
            delay,
            submitted: DashMap::new(),
            started: DashMap::new(),
        }
    }

    fn seed(&self, user_id: &str, asset: &str) -> [u8; 32] {
        let mac = hmac_sha256(
            self.address_key.expose().as_bytes(),
            &[
                b"deposit-address\0",
                user_id.as_bytes(),
                b"\0",
                asset.as_bytes(),
            ],
        );
        mac.try_into()
            .expect("invariant: HMAC-SHA256 output is 32 bytes")
    }
}

#[async_trait]
impl Custody for SandboxCustody {
    async fn deposit_address(
        &self,
        user_id: &str,
        asset: &str,
    ) -> Result<DepositAddress, CustodyError> {
        let network =
            Network::of(asset).ok_or_else(|| CustodyError::UnsupportedAsset(asset.to_owned()))?;
        Ok(DepositAddress {
            asset: asset.to_owned(),
            address: network.address_from_seed(&self.seed(user_id, asset)),
            network,
        })
    }

    async fn submit_withdrawal(&self, order: &WithdrawalOrder) -> Result<String, CustodyError> {
        if Network::of(&order.asset).is_none() {
            return Err(CustodyError::UnsupportedAsset(order.asset.clone()));
        }
        let mut fresh = false;
        let fireblocks_id = self
            .submitted
            .entry(order.transaction_id.clone())
            .or_insert_with(|| {
                fresh = true;
                uuid::Uuid::new_v4().to_string()
            })
            .clone();
        if fresh {
            self.started
                .insert(fireblocks_id.clone(), std::time::Instant::now());
            let tx_hash = hex::encode(hmac_sha256(fireblocks_id.as_bytes(), &[b"tx-hash"]));
            let body = fireblocks::transaction_body(&TransactionReport {
                fireblocks_id: &fireblocks_id,
                external_tx_id: Some(&order.transaction_id),
                user_id: &order.user_id,
                status: "COMPLETED",
                asset: &order.asset,
                amount: &order.amount,
                destination_address: &order.address,
                tx_hash: &tx_hash,
            });
            // The key is loaded in the delivery task, not here: its first
            // load may generate it (seconds in a debug build), which must
            // not hold up the withdrawal request.
            let (key, sender, delay) = (self.signing_key.clone(), self.sender.clone(), self.delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match key.get().await {
                    Ok(key) => {
                        let signer = WebhookSigner::Fireblocks(Box::new(key.clone()));
                        if let Err(last) = sender.send(&signer, &body).await {
                            tracing::warn!(last = %last, "sandbox custody webhook not accepted");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "sandbox custody has no signing key"),
                }
            });
        }
        Ok(fireblocks_id)
    }

    async fn transfer_status(&self, provider_ref: &str) -> Result<RemoteStatus, CustodyError> {
        Ok(match self.started.get(provider_ref) {
            Some(at) if at.elapsed() >= self.delay => RemoteStatus::Completed,
            Some(_) => RemoteStatus::Pending,
            None => RemoteStatus::NotFound,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custody() -> SandboxCustody {
        // The signing key is only loaded when a report is delivered, an
        // hour after submission: never during these tests.
        let dir = std::env::temp_dir().join("nax-custody-unit-test-never-written");
        SandboxCustody::new(
            Secret::new("address-key"),
            Arc::new(SandboxRsaKey::new(&dir)),
            WebhookSender::new("http://127.0.0.1:9"),
            Duration::from_secs(3600),
        )
    }

    #[tokio::test]
    async fn addresses_are_stable_per_user_and_asset() {
        let c = custody();
        let a = c.deposit_address("u1", "BTC").await.unwrap();
        assert_eq!(a, c.deposit_address("u1", "BTC").await.unwrap());
        assert!(a.address.starts_with("bc1q"), "{}", a.address);
        assert_ne!(
            a.address,
            c.deposit_address("u2", "BTC").await.unwrap().address
        );
        let eth = c.deposit_address("u1", "ETH").await.unwrap();
        assert_eq!(eth.network, Network::Ethereum);
        assert_eq!(
            c.deposit_address("u1", "USD").await,
            Err(CustodyError::UnsupportedAsset("USD".into()))
        );
    }

    #[tokio::test]
    async fn submission_is_idempotent_on_the_transaction_id() {
        let c = custody();
        let order = WithdrawalOrder {
            transaction_id: "t1".into(),
            user_id: "u1".into(),
            asset: "BTC".into(),
            amount: "0.1".into(),
            address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into(),
        };
        let first = c.submit_withdrawal(&order).await.unwrap();
        assert_eq!(first, c.submit_withdrawal(&order).await.unwrap());
        // Reported an hour after submission: pending until then.
        assert_eq!(c.transfer_status(&first).await, Ok(RemoteStatus::Pending));
        assert_eq!(c.transfer_status("other").await, Ok(RemoteStatus::NotFound));
    }
}
