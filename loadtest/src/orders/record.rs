//! What the orders flow measures: a latency histogram per request kind,
//! every HTTP status per request kind, the states orders were accepted in,
//! and every failure, by kind. Requests record into one mutex-protected
//! [`Interval`] (a few thousand requests per second at most: the lock is
//! never the bottleneck); once a second the sampler takes it, which yields
//! the timeline and, summed, the run's totals.

use crate::stats::micros_histogram;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The kinds of request timed, each with its own histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `POST /orders` of a limit buy far from the market.
    PlaceResting,
    /// `POST /orders` of a market IOC order.
    PlaceIoc,
    /// `DELETE /orders/{id}` of a resting order.
    Cancel,
}

impl Request {
    pub const ALL: [Request; 3] = [Request::PlaceResting, Request::PlaceIoc, Request::Cancel];

    /// Name of the histogram in `result.json`.
    pub fn name(self) -> &'static str {
        match self {
            Request::PlaceResting => "post_orders_resting",
            Request::PlaceIoc => "post_orders_ioc",
            Request::Cancel => "delete_orders",
        }
    }

    /// `METHOD` of the request, for status keys.
    pub fn method(self) -> &'static str {
        match self {
            Request::PlaceResting | Request::PlaceIoc => "POST",
            Request::Cancel => "DELETE",
        }
    }

    /// The status the scenario expects: anything else is an error.
    pub fn expected_status(self) -> u16 {
        match self {
            Request::PlaceResting | Request::PlaceIoc => 201,
            Request::Cancel => 200,
        }
    }
}

/// What the requests of one interval (or of the whole run) recorded.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Per [`Request`], latency of every answered request, µs.
    pub latency: [Histogram<u64>; 3],
    /// `"POST 201"`, `"DELETE 429"`, ... → count.
    pub statuses: BTreeMap<String, u64>,
    /// `status` of accepted orders as `POST /orders` answered it (`open`,
    /// `filled`, `cancelled`, ...).
    pub order_states: BTreeMap<String, u64>,
    /// Unexpected answers (`"POST 422 insufficient_funds"`) and requests
    /// without an answer (`"DELETE timeout"`) → count.
    pub errors: BTreeMap<String, u64>,
    /// Orders accepted (201).
    pub placed: u64,
    /// Resting orders cancelled (200).
    pub cancelled: u64,
}

impl Default for Interval {
    fn default() -> Self {
        Interval {
            latency: [micros_histogram(), micros_histogram(), micros_histogram()],
            statuses: BTreeMap::new(),
            order_states: BTreeMap::new(),
            errors: BTreeMap::new(),
            placed: 0,
            cancelled: 0,
        }
    }
}

impl Interval {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Interval) {
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            a.add(b).expect("histograms share their bounds");
        }
        for (mine, theirs) in [
            (&mut self.statuses, &other.statuses),
            (&mut self.order_states, &other.order_states),
            (&mut self.errors, &other.errors),
        ] {
            for (k, v) in theirs {
                *mine.entry(k.clone()).or_default() += v;
            }
        }
        self.placed += other.placed;
        self.cancelled += other.cancelled;
    }

    /// Every `POST /orders` latency together.
    pub fn place_latency(&self) -> Histogram<u64> {
        let mut all = self.latency[Request::PlaceResting as usize].clone();
        all.add(&self.latency[Request::PlaceIoc as usize])
            .expect("histograms share their bounds");
        all
    }

    /// Requests answered or failed in the interval.
    pub fn requests(&self) -> u64 {
        let no_answer: u64 = self
            .errors
            .iter()
            .filter(|(k, _)| !k.split(' ').nth(1).is_some_and(is_status))
            .map(|(_, v)| v)
            .sum();
        self.statuses.values().sum::<u64>() + no_answer
    }

    /// Errors of the interval.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn is_status(word: &str) -> bool {
    word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit())
}

/// The shared record of a run.
#[derive(Debug, Default)]
pub struct OrderRecorder {
    interval: Mutex<Interval>,
}

impl OrderRecorder {
    fn with<R>(&self, f: impl FnOnce(&mut Interval) -> R) -> R {
        let mut interval = self
            .interval
            .lock()
            .expect("the order record is never poisoned: recording cannot panic");
        f(&mut interval)
    }

    /// An answer to `request` with `status` after `elapsed`; `order_state`
    /// is the `status` field of the answered order (counted for
    /// placements); `error_code` the docs/API.md code of an error answer.
    pub fn answered(
        &self,
        request: Request,
        status: u16,
        elapsed: Duration,
        order_state: Option<&str>,
        error_code: Option<&str>,
    ) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.with(|i| {
            i.latency[request as usize].saturating_record(micros.max(1));
            *i.statuses
                .entry(format!("{} {status}", request.method()))
                .or_default() += 1;
            if status == request.expected_status() {
                match request {
                    Request::Cancel => i.cancelled += 1,
                    _ => i.placed += 1,
                }
                if let (Some(state), false) = (order_state, request == Request::Cancel) {
                    *i.order_states.entry(state.to_owned()).or_default() += 1;
                }
            } else {
                let code = error_code.map(|c| format!(" {c}")).unwrap_or_default();
                *i.errors
                    .entry(format!("{} {status}{code}", request.method()))
                    .or_default() += 1;
            }
        });
    }

    /// `request` got no answer (`kind`: timeout, connect, ...).
    pub fn unanswered(&self, request: Request, kind: &str) {
        self.with(|i| {
            *i.errors
                .entry(format!("{} {kind}", request.method()))
                .or_default() += 1;
        });
    }

    /// Takes (and resets) what was recorded since the last take.
    pub fn take(&self) -> Interval {
        self.with(std::mem::take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_status_and_outcome() {
        let r = OrderRecorder::default();
        let ms = Duration::from_millis;
        r.answered(Request::PlaceResting, 201, ms(2), Some("open"), None);
        r.answered(Request::PlaceIoc, 201, ms(3), Some("filled"), None);
        r.answered(
            Request::PlaceIoc,
            422,
            ms(1),
            None,
            Some("insufficient_funds"),
        );
        r.answered(Request::Cancel, 200, ms(1), Some("cancelled"), None);
        r.answered(Request::Cancel, 429, ms(1), None, Some("rate_limited"));
        r.unanswered(Request::PlaceIoc, "timeout");
        let i = r.take();
        assert_eq!((i.placed, i.cancelled), (2, 1));
        assert_eq!(i.statuses["POST 201"], 2);
        assert_eq!(i.statuses["DELETE 429"], 1);
        assert_eq!(i.errors["POST 422 insufficient_funds"], 1);
        assert_eq!(i.errors["DELETE 429 rate_limited"], 1);
        assert_eq!(i.errors["POST timeout"], 1);
        assert_eq!((i.requests(), i.error_count()), (6, 3));
        assert_eq!(i.order_states["open"], 1);
        assert_eq!(i.place_latency().len(), 3);
        assert_eq!(i.latency[Request::Cancel as usize].len(), 2);
        assert_eq!(r.take().requests(), 0, "take resets");

        let mut total = Interval::default();
        total.merge(&i);
        total.merge(&i);
        assert_eq!((total.placed, total.statuses["POST 201"]), (4, 4));
    }
}
