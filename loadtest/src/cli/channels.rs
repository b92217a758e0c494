//! `--channels` values: one weighted subscription set each
//! (`W*name,name,...`), parsed and checked for form. An item `MIX:PAIR`
//! names a subscription mix ([`MIXES`]) and stands for its channels of
//! that pair.

use super::{OptionsError, MAX_CHANNELS_PER_SET};
use serde::Serialize;
use std::str::FromStr;

/// One subscription set of the channel mix: the channels a client
/// subscribes to, and how many clients get it relative to the other sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelSet {
    /// Relative share of clients, at least 1.
    pub weight: u32,
    /// Channel names, in subscribe order, without duplicates.
    pub channels: Vec<String>,
}

/// The subscription mixes an item `MIX:PAIR` of a set expands to, each
/// `(name, channel kinds)`: the channels are `KIND.PAIR`, in this order.
pub const MIXES: [(&str, &[&str]); 1] = [
    // What a trading screen with a price chart holds open.
    ("chart", &["book", "trades", "ticker", "candles1m"]),
];

/// The channels `item` stands for: a mix's channels of its pair, or the
/// item itself; `None` for an unknown mix or a mix without a pair.
fn expand(item: &str) -> Option<Vec<String>> {
    let Some((mix, pair)) = item.split_once(':') else {
        return Some(vec![item.to_owned()]);
    };
    let (_, kinds) = MIXES.iter().find(|(name, _)| *name == mix)?;
    if pair.is_empty() || pair.contains([':', '.', '@']) {
        return None;
    }
    Some(kinds.iter().map(|kind| format!("{kind}.{pair}")).collect())
}

impl FromStr for ChannelSet {
    type Err = OptionsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (weight, list) = match s.split_once('*') {
            Some((w, list)) => {
                let w: u32 = w
                    .trim()
                    .parse()
                    .map_err(|_| OptionsError::BadWeight(s.into()))?;
                if w == 0 {
                    return Err(OptionsError::BadWeight(s.into()));
                }
                (w, list)
            }
            None => (1, s),
        };
        let mut channels: Vec<String> = Vec::new();
        for item in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let bad = || OptionsError::BadChannel {
                set: s.into(),
                channel: item.into(),
            };
            for name in expand(item).ok_or_else(bad)? {
                if !looks_like_channel(&name) {
                    return Err(bad());
                }
                if !channels.contains(&name) {
                    channels.push(name);
                }
            }
        }
        if channels.is_empty() {
            return Err(OptionsError::EmptySet(s.into()));
        }
        if channels.len() > MAX_CHANNELS_PER_SET {
            return Err(OptionsError::TooManyChannels(s.into()));
        }
        Ok(ChannelSet { weight, channels })
    }
}

/// A cheap form check; the hub is the judge of which channels exist (an
/// unknown one is counted as an `error` frame).
fn looks_like_channel(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}
