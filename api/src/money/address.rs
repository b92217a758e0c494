//! Blockchain addresses of the assets with a custody network: checking a
//! withdrawal address, and deriving a deposit address from key material.
//!
//! | asset | network | accepted for withdrawals | derived deposit address |
//! |---|---|---|---|
//! | BTC | `bitcoin` | bech32/bech32m segwit (`bc1…`, checksum verified) or base58check P2PKH/P2SH (`1…`/`3…`) | P2WPKH `bc1q…` |
//! | ETH | `ethereum` | `0x` + 40 hex; mixed case must be a valid EIP-55 checksum | EIP-55 `0x…` |
//! | SOL | `solana` | base58 of a 32-byte key | base58 of 32 bytes |

use sha3::{Digest, Keccak256};
use thiserror::Error;

/// Longest address accepted (before any parsing).
pub const MAX_ADDRESS_LEN: usize = 128;

/// A custody network and its address format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Bitcoin,
    Ethereum,
    Solana,
}

impl Network {
    /// The network an asset moves on, if custody supports the asset.
    pub fn of(asset: &str) -> Option<Network> {
        match asset {
            "BTC" => Some(Network::Bitcoin),
            "ETH" => Some(Network::Ethereum),
            "SOL" => Some(Network::Solana),
            _ => None,
        }
    }

    /// The `network` field of API answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Bitcoin => "bitcoin",
            Network::Ethereum => "ethereum",
            Network::Solana => "solana",
        }
    }

    /// Checks that `address` is a well-formed address of this network
    /// (checksums included where the format has one).
    pub fn validate(self, address: &str) -> Result<(), AddressError> {
        if address.is_empty() || address.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::Length);
        }
        match self {
            Network::Bitcoin => validate_bitcoin(address),
            Network::Ethereum => validate_ethereum(address),
            Network::Solana => validate_solana(address),
        }
    }

    /// The address of this network made from `seed` (at least 32 bytes of
    /// key material): the same seed always gives the same address.
    pub fn address_from_seed(self, seed: &[u8; 32]) -> String {
        match self {
            Network::Bitcoin => bech32::segwit::encode_v0(bech32::hrp::BC, &seed[..20])
                .expect("invariant: a 20-byte v0 witness program always encodes"),
            Network::Ethereum => eip55(&seed[..20]),
            Network::Solana => bs58::encode(seed).into_string(),
        }
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("address is empty or too long")]
    Length,
    #[error("not an address of this network")]
    Format,
    #[error("address checksum does not match")]
    Checksum,
}

fn validate_bitcoin(address: &str) -> Result<(), AddressError> {
    if address
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("bc1"))
    {
        let (hrp, _, _) = bech32::segwit::decode(address).map_err(|_| AddressError::Checksum)?;
        return if hrp == bech32::hrp::BC {
            Ok(())
        } else {
            Err(AddressError::Format)
        };
    }
    if !(address.starts_with('1') || address.starts_with('3')) || address.len() < 26 {
        return Err(AddressError::Format);
    }
    let payload = bs58::decode(address)
        .with_check(None)
        .into_vec()
        .map_err(|_| AddressError::Checksum)?;
    // Version byte (0x00 P2PKH, 0x05 P2SH) + 20-byte hash.
    match payload.as_slice() {
        [0x00 | 0x05, hash @ ..] if hash.len() == 20 => Ok(()),
        _ => Err(AddressError::Format),
    }
}

fn validate_ethereum(address: &str) -> Result<(), AddressError> {
    let hex_part = address.strip_prefix("0x").ok_or(AddressError::Format)?;
    if hex_part.len() != 40 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressError::Format);
    }
    let has_lower = hex_part.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex_part.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        let bytes = hex::decode(hex_part).map_err(|_| AddressError::Format)?;
        if eip55(&bytes) != address {
            return Err(AddressError::Checksum);
        }
    }
    Ok(())
}

fn validate_solana(address: &str) -> Result<(), AddressError> {
    let bytes = bs58::decode(address)
        .into_vec()
        .map_err(|_| AddressError::Format)?;
    if bytes.len() == 32 {
        Ok(())
    } else {
        Err(AddressError::Format)
    }
}

/// EIP-55 mixed-case checksum encoding of a 20-byte address.
fn eip55(bytes: &[u8]) -> String {
    let lower = hex::encode(bytes);
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        out.push(if c.is_ascii_alphabetic() && nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoin_addresses() {
        let btc = Network::Bitcoin;
        for good in [
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
            "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        ] {
            assert_eq!(btc.validate(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx",
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",
            "0x742d35cc6634c0532925a3b844bc454e4438f44e",
            "not-an-address",
        ] {
            assert!(btc.validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ethereum_addresses() {
        let eth = Network::Ethereum;
        for good in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0x742d35cc6634c0532925a3b844bc454e4438f44e",
            "0xFB6916095CA1DF60BB79CE92CE3EA74C37C5D359",
        ] {
            assert_eq!(eth.validate(good), Ok(()), "{good}");
        }
        assert_eq!(
            eth.validate("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            Err(AddressError::Checksum)
        );
        for bad in ["0x123", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0xzz"] {
            assert!(eth.validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn solana_addresses() {
        let sol = Network::Solana;
        assert_eq!(sol.validate("11111111111111111111111111111111"), Ok(()));
        assert_eq!(
            sol.validate("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"),
            Ok(())
        );
        assert!(sol.validate("0OIl").is_err());
        assert!(sol.validate("1111").is_err());
    }

    #[test]
    fn derived_addresses_are_valid_and_stable() {
        let seed = [7u8; 32];
        for net in [Network::Bitcoin, Network::Ethereum, Network::Solana] {
            let a = net.address_from_seed(&seed);
            assert_eq!(a, net.address_from_seed(&seed));
            assert_eq!(net.validate(&a), Ok(()), "{a}");
        }
        assert!(Network::Bitcoin
            .address_from_seed(&seed)
            .starts_with("bc1q"));
        assert!(Network::Ethereum.address_from_seed(&seed).starts_with("0x"));
        assert_ne!(
            Network::Bitcoin.address_from_seed(&seed),
            Network::Bitcoin.address_from_seed(&[8u8; 32])
        );
    }
}
