//! From a user's events (and the user record as it is now) to a HubSpot
//! contact's properties and lifecycle stage (docs/HUBSPOT.md, "Mapping").
//!
//! Guarantees: the result depends only on the user record, the
//! checkpoint ([`ContactState`]) and the set of events, never on their
//! order: the stage is the highest any of them implies, the first
//! deposit and first trade times are the earliest seen, the position is
//! the newest event. So events delivered out of order (a standard SQS
//! queue) or twice converge on the same contact, and an event that adds
//! nothing to the checkpoint ([`ContactState::adds`] is false) changes
//! nothing.

use api::events::{Event, Timestamp};
use api::store::{KycStatus, User};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The lifecycle stages this sync sets, in HubSpot's order (internal
/// values; docs/HUBSPOT.md, "Lifecycle stage").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Registered.
    Subscriber,
    /// Profile filled or KYC submitted.
    Lead,
    /// KYC verified: allowed to fund and trade.
    #[serde(rename = "salesqualifiedlead")]
    SalesQualifiedLead,
    /// First completed deposit or first fill.
    Customer,
}

impl Stage {
    /// HubSpot's internal value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Subscriber => "subscriber",
            Stage::Lead => "lead",
            Stage::SalesQualifiedLead => "salesqualifiedlead",
            Stage::Customer => "customer",
        }
    }
}

/// What the sync remembers of a contact: the `value` of its checkpoint
/// (`SyncCheckpoints`, service `hubspot`, type `contact#{user_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    /// The newest event applied.
    pub event_time: Timestamp,
    pub event_id: String,
    /// The highest stage sent.
    pub stage: Stage,
    /// The earliest completed deposit seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_deposit_at: Option<Timestamp>,
    /// The earliest fill seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_trade_at: Option<Timestamp>,
}

/// One contact of a batch upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInput {
    /// The contact's key (`idProperty: email`).
    pub email: String,
    /// Property name → value (HubSpot takes every value as a string).
    pub properties: BTreeMap<String, String>,
}

/// What an event means for the contact.
#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    stage: Option<Stage>,
    deposit_completed: bool,
    withdrawal_completed: bool,
    filled: bool,
}

fn facts(event: &Event) -> Facts {
    let status = event.data.get("status").and_then(|v| v.as_str());
    let kyc_to = event.data.get("to").and_then(|v| v.as_str());
    match event.event_type.as_str() {
        "user.registered" => Facts {
            stage: Some(Stage::Subscriber),
            ..Facts::default()
        },
        "user.profile_updated" => Facts {
            stage: Some(Stage::Lead),
            ..Facts::default()
        },
        "kyc.status_changed" => Facts {
            stage: match kyc_to {
                Some("PENDING") => Some(Stage::Lead),
                Some("VERIFIED") => Some(Stage::SalesQualifiedLead),
                _ => None,
            },
            ..Facts::default()
        },
        "order.filled" => Facts {
            stage: Some(Stage::Customer),
            filled: true,
            ..Facts::default()
        },
        "deposit.state_changed" if status == Some("completed") => Facts {
            stage: Some(Stage::Customer),
            deposit_completed: true,
            ..Facts::default()
        },
        "withdrawal.state_changed" if status == Some("completed") => Facts {
            withdrawal_completed: true,
            ..Facts::default()
        },
        _ => Facts::default(),
    }
}

/// The stage the user record alone implies (its KYC status and profile
/// are current, whatever events are still on their way).
fn record_stage(user: &User) -> Stage {
    match user.kyc_status {
        KycStatus::Verified => Stage::SalesQualifiedLead,
        KycStatus::Pending => Stage::Lead,
        _ if user.first_name.is_some() || user.last_name.is_some() => Stage::Lead,
        _ => Stage::Subscriber,
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `event` is after the position `(time, id)` (ids are time-ordered,
/// so they break ties of equal times).
fn after(event: &Event, time: &Timestamp, id: &str) -> bool {
    (event.time, event.id.as_str()) > (*time, id)
}

impl ContactState {
    /// Whether `event` adds anything to this state: it is newer, or it
    /// is an earlier first deposit or first fill than the one known (it
    /// arrived late). Otherwise it is stale and changes nothing.
    pub fn adds(&self, event: &Event) -> bool {
        if after(event, &self.event_time, &self.event_id) {
            return true;
        }
        let f = facts(event);
        let earlier = |known: Option<Timestamp>| known.is_none_or(|t| event.time < t);
        (f.deposit_completed && earlier(self.first_deposit_at))
            || (f.filled && earlier(self.first_trade_at))
    }

    /// This state and `other` merged (what two racing writers agree on).
    pub fn merge(&self, other: &ContactState) -> ContactState {
        let newest = if (other.event_time, other.event_id.as_str())
            > (self.event_time, self.event_id.as_str())
        {
            other
        } else {
            self
        };
        ContactState {
            event_time: newest.event_time,
            event_id: newest.event_id.clone(),
            stage: self.stage.max(other.stage),
            first_deposit_at: earliest(self.first_deposit_at, other.first_deposit_at),
            first_trade_at: earliest(self.first_trade_at, other.first_trade_at),
        }
    }

    /// `true` when this state holds everything `other` holds.
    pub fn covers(&self, other: &ContactState) -> bool {
        &self.merge(other) == self
    }
}

/// RFC 3339 UTC with milliseconds, which HubSpot's datetime properties
/// take (docs/HUBSPOT.md).
pub fn hubspot_time(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The contact for `user` after `events` (those [`ContactState::adds`]
/// accepted; at least one), and the checkpoint state to store once
/// HubSpot took it.
pub fn contact(
    user: &User,
    prior: Option<&ContactState>,
    events: &[&Event],
) -> Option<(ContactInput, ContactState)> {
    let newest = events
        .iter()
        .max_by(|a, b| (a.time, a.id.as_str()).cmp(&(b.time, b.id.as_str())))?;
    let mut state = ContactState {
        event_time: newest.time,
        event_id: newest.id.clone(),
        stage: record_stage(user),
        first_deposit_at: None,
        first_trade_at: None,
    };
    let mut last_deposit = None;
    let mut last_withdrawal = None;
    for event in events {
        let f = facts(event);
        state.stage = state.stage.max(f.stage.unwrap_or(Stage::Subscriber));
        let newer = prior.is_none_or(|p| after(event, &p.event_time, &p.event_id));
        if f.deposit_completed {
            state.first_deposit_at = earliest(state.first_deposit_at, Some(event.time));
            if newer {
                last_deposit = last_deposit.max(Some(event.time));
            }
        }
        if f.filled {
            state.first_trade_at = earliest(state.first_trade_at, Some(event.time));
        }
        if f.withdrawal_completed && newer {
            last_withdrawal = last_withdrawal.max(Some(event.time));
        }
    }
    if let Some(prior) = prior {
        state = state.merge(prior);
    }
    let mut input = input(user, &state);
    for (name, time) in [
        ("na_x_last_deposit_at", last_deposit),
        ("na_x_last_withdrawal_at", last_withdrawal),
    ] {
        if let Some(t) = time {
            input.properties.insert(name.to_owned(), hubspot_time(&t));
        }
    }
    Some((input, state))
}

/// The contact of `user` as `state` describes it (what a writer that
/// lost a race sends again).
pub fn input(user: &User, state: &ContactState) -> ContactInput {
    let mut p = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        p.insert(name.to_owned(), value);
    };
    set("email", user.email.clone());
    for (name, value) in [
        ("firstname", &user.first_name),
        ("lastname", &user.last_name),
        ("phone", &user.phone),
        ("country", &user.country),
    ] {
        if let Some(v) = value {
            set(name, v.clone());
        }
    }
    set(
        "lifecyclestage",
        state.stage.max(record_stage(user)).as_str().to_owned(),
    );
    set("na_x_user_id", user.user_id.clone());
    set("na_x_kyc_status", kyc_word(user.kyc_status).to_owned());
    set("na_x_registered_at", hubspot_time(&user.created_at));
    set("na_x_last_event_at", hubspot_time(&state.event_time));
    for (name, time) in [
        ("na_x_first_deposit_at", state.first_deposit_at),
        ("na_x_first_trade_at", state.first_trade_at),
    ] {
        if let Some(t) = time {
            set(name, hubspot_time(&t));
        }
    }
    ContactInput {
        email: user.email.clone(),
        properties: p,
    }
}

/// The KYC status as the API answers it (`NONE`, `PENDING`, ...).
pub fn kyc_word(status: KycStatus) -> &'static str {
    match status {
        KycStatus::None => "NONE",
        KycStatus::Pending => "PENDING",
        KycStatus::Verified => "VERIFIED",
        KycStatus::Rejected => "REJECTED",
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
