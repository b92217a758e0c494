use super::*;
use api::secret::Secret;
use chrono::TimeZone as _;
use serde_json::json;

fn at(second: i64) -> Timestamp {
    chrono::Utc
        .timestamp_opt(1_800_000_000 + second, 0)
        .unwrap()
}

fn event(kind: &str, second: i64, data: serde_json::Value) -> Event {
    Event {
        id: format!("e{second:04}"),
        event_type: kind.to_owned(),
        version: 1,
        time: at(second),
        user_id: Some("u1".to_owned()),
        correlation_id: "c".to_owned(),
        data,
        traceparent: None,
    }
}

fn user(kyc: KycStatus) -> User {
    User {
        user_id: "u1".to_owned(),
        email: "ada@example.com".to_owned(),
        password_hash: Secret::default(),
        first_name: Some("Ada".to_owned()),
        last_name: None,
        phone: None,
        country: Some("GB".to_owned()),
        kyc_status: kyc,
        kyc_updated_at: at(0),
        mfa_secret: None,
        mfa_enabled: false,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    }
}

fn history() -> Vec<Event> {
    vec![
        event(
            "user.registered",
            1,
            json!({"user_id": "u1", "email": "ada@example.com"}),
        ),
        event("user.profile_updated", 2, json!({"fields": ["first_name"]})),
        event(
            "kyc.status_changed",
            3,
            json!({"from": "NONE", "to": "PENDING"}),
        ),
        event(
            "kyc.status_changed",
            4,
            json!({"from": "PENDING", "to": "VERIFIED"}),
        ),
        event("deposit.state_changed", 5, json!({"status": "pending"})),
        event("deposit.state_changed", 6, json!({"status": "completed"})),
        event("order.filled", 7, json!({"fill": {}, "order_id": "o"})),
        event("deposit.state_changed", 8, json!({"status": "completed"})),
    ]
}

#[test]
fn stages_follow_the_events_and_only_go_up() {
    let u = user(KycStatus::Verified);
    let events = history();
    let stage_after = |n: usize| {
        let refs: Vec<&Event> = events[..n].iter().collect();
        contact(&u, None, &refs).unwrap().1.stage
    };
    // The record is already verified: at least salesqualifiedlead.
    assert_eq!(stage_after(1), Stage::SalesQualifiedLead);
    assert_eq!(stage_after(5), Stage::SalesQualifiedLead);
    assert_eq!(stage_after(6), Stage::Customer);
    let fresh = user(KycStatus::None);
    let refs: Vec<&Event> = events[..1].iter().collect();
    let mut bare = fresh.clone();
    bare.first_name = None;
    assert_eq!(
        contact(&bare, None, &refs).unwrap().1.stage,
        Stage::Subscriber
    );
    let refs: Vec<&Event> = events[..3].iter().collect();
    assert_eq!(contact(&fresh, None, &refs).unwrap().1.stage, Stage::Lead);
}

#[test]
fn the_result_does_not_depend_on_the_order_or_the_split() {
    let u = user(KycStatus::Verified);
    let events = history();
    let all: Vec<&Event> = events.iter().collect();
    let (whole_input, whole) = contact(&u, None, &all).unwrap();
    assert_eq!(whole.first_deposit_at, Some(at(6)));
    assert_eq!(whole.first_trade_at, Some(at(7)));
    assert_eq!(whole.event_time, at(8));
    assert_eq!(whole_input.properties["lifecyclestage"], "customer");
    assert_eq!(
        whole_input.properties["na_x_first_deposit_at"],
        hubspot_time(&at(6))
    );
    assert_eq!(whole_input.properties["na_x_kyc_status"], "VERIFIED");
    // Reversed, and in two halves, newest half first.
    let reversed: Vec<&Event> = events.iter().rev().collect();
    assert_eq!(contact(&u, None, &reversed).unwrap().1, whole);
    let (_, late_half) = contact(&u, None, &all[4..]).unwrap();
    let early: Vec<&Event> = all[..4]
        .iter()
        .copied()
        .filter(|e| late_half.adds(e))
        .collect();
    assert!(
        early.is_empty(),
        "older events add nothing after newer ones"
    );
    // A late first deposit still counts.
    let (_, without_first) = contact(&u, None, &[all[6], all[7]]).unwrap();
    assert_eq!(without_first.first_deposit_at, Some(at(8)));
    assert!(without_first.adds(all[5]));
    let (_, merged) = contact(&u, Some(&without_first), &[all[5]]).unwrap();
    assert_eq!(merged.first_deposit_at, Some(at(6)));
    assert_eq!(merged.event_time, at(8));
}

#[test]
fn a_replayed_event_adds_nothing() {
    let u = user(KycStatus::Verified);
    let events = history();
    let all: Vec<&Event> = events.iter().collect();
    let (_, state) = contact(&u, None, &all).unwrap();
    for e in &events {
        assert!(!state.adds(e), "{} replayed", e.event_type);
    }
    assert!(state.covers(&state.clone()));
    let decoded: ContactState =
        serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(decoded, state);
}

#[test]
fn every_property_is_a_string_and_unset_fields_are_left_out() {
    let u = user(KycStatus::Pending);
    let events = history();
    let (input, _) = contact(&u, None, &[&events[0]]).unwrap();
    assert_eq!(input.email, "ada@example.com");
    assert_eq!(input.properties["firstname"], "Ada");
    assert!(!input.properties.contains_key("lastname"));
    assert!(!input.properties.contains_key("na_x_first_deposit_at"));
    assert_eq!(input.properties["na_x_user_id"], "u1");
    assert_eq!(input.properties["lifecyclestage"], "lead");
    assert_eq!(
        input.properties["na_x_registered_at"],
        "2027-01-15T08:00:00.000Z"
    );
}
