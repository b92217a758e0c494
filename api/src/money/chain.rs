//! The identity of a transfer on a blockchain into custody: (asset,
//! transaction hash, output). A deposit is credited once per identity,
//! whatever ids the custody provider reports it under (see
//! [`webhooks::process`](crate::webhooks::process)), so the identity is
//! spelled one way only:
//!
//! | network | hash as reported | canonical |
//! |---|---|---|
//! | `bitcoin` | 64 hex digits, any case, optional `0x` | lowercase hex, no prefix |
//! | `ethereum` | 64 hex digits, any case, optional `0x` | `0x` + lowercase hex |
//! | `solana` | base58 of a 64-byte signature (case-sensitive) | unchanged |
//!
//! The output is the provider's index of the transfer within the
//! transaction (a UTXO's vout; the transfer's position on account
//! chains) or, when the provider gives none, the destination address.

use super::address::Network;
use thiserror::Error;

/// Hex digits of a Bitcoin or Ethereum transaction hash.
const HEX_HASH_LEN: usize = 64;
/// Bytes of a Solana transaction signature.
const SOLANA_SIGNATURE_LEN: usize = 64;

/// Which transfer of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The provider's index (vout for UTXO chains).
    Index(u64),
    /// The destination address, when the provider gives no index.
    Address(String),
}

/// One transfer on a chain, canonically spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTransfer {
    pub asset: String,
    /// The canonical hash (see the module table).
    pub tx_hash: String,
    /// `index:<n>` or `address:<address>`.
    pub output: String,
}

/// Why a reported hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxHashError {
    #[error("not a {0} transaction hash")]
    Format(&'static str),
}

impl ChainTransfer {
    /// The transfer of `asset` (on `network`) in transaction `raw_hash`
    /// at `output`; refuses a hash that is not one of the network's.
    pub fn new(
        network: Network,
        asset: &str,
        raw_hash: &str,
        output: &Output,
    ) -> Result<ChainTransfer, TxHashError> {
        Ok(ChainTransfer {
            asset: asset.to_owned(),
            tx_hash: canonical_hash(network, raw_hash)?,
            output: match output {
                Output::Index(i) => format!("index:{i}"),
                Output::Address(a) => format!("address:{a}"),
            },
        })
    }
}

/// The one spelling of `raw` on `network` (see the module table).
pub fn canonical_hash(network: Network, raw: &str) -> Result<String, TxHashError> {
    let refused = || TxHashError::Format(network.as_str());
    match network {
        Network::Bitcoin | Network::Ethereum => {
            let digits = raw
                .strip_prefix("0x")
                .or_else(|| raw.strip_prefix("0X"))
                .unwrap_or(raw);
            if digits.len() != HEX_HASH_LEN || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(refused());
            }
            let lower = digits.to_ascii_lowercase();
            Ok(match network {
                Network::Ethereum => format!("0x{lower}"),
                _ => lower,
            })
        }
        Network::Solana => {
            let bytes = bs58::decode(raw).into_vec().map_err(|_| refused())?;
            if bytes.len() != SOLANA_SIGNATURE_LEN {
                return Err(refused());
            }
            // Base58 spells each byte string one way: `raw` is canonical.
            Ok(raw.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";

    #[test]
    fn hex_hashes_ignore_case_and_prefix() {
        for raw in [
            HEX.to_owned(),
            HEX.to_uppercase(),
            format!("0x{HEX}"),
            format!("0X{}", HEX.to_uppercase()),
        ] {
            assert_eq!(canonical_hash(Network::Bitcoin, &raw).unwrap(), HEX);
            assert_eq!(
                canonical_hash(Network::Ethereum, &raw).unwrap(),
                format!("0x{HEX}")
            );
        }
    }

    #[test]
    fn malformed_hex_hashes_are_refused() {
        for raw in [
            "",
            "0x",
            "abc",
            &HEX[1..],
            &format!("{HEX}0"),
            &format!("0x0x{}", &HEX[4..]),
            &HEX.replace('a', "g"),
            &format!(" {}", &HEX[1..]),
        ] {
            assert_eq!(
                canonical_hash(Network::Ethereum, raw),
                Err(TxHashError::Format("ethereum")),
                "{raw}"
            );
        }
    }

    #[test]
    fn base58_signatures_keep_their_case() {
        let signature = bs58::encode([7u8; 64]).into_string();
        assert_eq!(
            canonical_hash(Network::Solana, &signature).unwrap(),
            signature
        );
        let lower = signature.to_ascii_lowercase();
        assert_ne!(lower, signature);
        assert_ne!(
            canonical_hash(Network::Solana, &lower).ok(),
            Some(signature)
        );
        assert!(canonical_hash(Network::Solana, "0OIl").is_err());
        let short = bs58::encode([7u8; 32]).into_string();
        assert!(canonical_hash(Network::Solana, &short).is_err());
    }

    #[test]
    fn outputs_are_named_by_index_or_address() {
        let by_index = ChainTransfer::new(Network::Bitcoin, "BTC", HEX, &Output::Index(3)).unwrap();
        assert_eq!(by_index.output, "index:3");
        let by_address = ChainTransfer::new(
            Network::Bitcoin,
            "BTC",
            HEX,
            &Output::Address("bc1qexample".into()),
        )
        .unwrap();
        assert_eq!(by_address.output, "address:bc1qexample");
        assert_eq!(by_index.tx_hash, by_address.tx_hash);
    }
}
