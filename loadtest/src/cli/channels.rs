//! `--channels` values: one weighted subscription set each
//! (`W*name,name,...`), parsed and checked for form.

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
        for name in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !looks_like_channel(name) {
                return Err(OptionsError::BadChannel {
                    set: s.into(),
                    channel: name.into(),
                });
            }
            if !channels.iter().any(|c| c == name) {
                channels.push(name.to_string());
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
