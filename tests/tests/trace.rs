//! The `trace` feature: each call through a policy is a `reliable.call` span with its policy,
//! the attempts that ran, the outcome, the layer that refused and the breaker's state.

use reliable_runtime::retry::Jitter;
use reliable_runtime::{Failure, Policy, Rejected};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Every span made while it is the default subscriber, with its fields as recorded.
#[derive(Default)]
struct Spans {
    spans: Mutex<Vec<(String, HashMap<String, String>)>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// The subscriber: a handle on the shared record.
struct Recording(Arc<Spans>);

impl Subscriber for Recording {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut fields = HashMap::new();
        attributes.record(&mut Fields(&mut fields));
        let mut spans = self.0.spans.lock().unwrap();
        spans.push((attributes.metadata().name().to_owned(), fields));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        let fields = &mut spans[span.into_u64() as usize - 1].1;
        values.record(&mut Fields(fields));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Spans {
    fn calls(&self, policy: &str) -> Vec<HashMap<String, String>> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, fields)| {
                name == "reliable.call" && fields.get("policy").map(String::as_str) == Some(policy)
            })
            .map(|(_, fields)| fields.clone())
            .collect()
    }
}

#[test]
fn each_call_is_a_span_with_its_attempts_outcome_and_breaker_state() {
    let spans = Arc::new(Spans::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(Recording(Arc::clone(&spans)), || {
        runtime.block_on(async {
            let policy = Policy::builder("traced_policy")
                .breaker("traced_breaker", |b| b.failure_threshold(1))
                .retry("traced_retry", |r| {
                    r.max_attempts(3)
                        .initial_delay(Duration::from_millis(10))
                        .jitter(Jitter::None)
                        .budget(None)
                })
                .build()
                .unwrap();
            let ok = policy.try_call(|| async { Ok::<u32, &str>(7) }).await;
            assert_eq!(ok.unwrap(), 7);
            // Fails once: the breaker (threshold 1) opens, and refuses the retry.
            let failed = policy.try_call(|| async { Err::<u32, _>("down") }).await;
            assert!(matches!(failed, Err(Failure::Rejected(_))), "{failed:?}");
            let refused = policy.try_call(|| async { Ok::<u32, &str>(1) }).await;
            assert!(matches!(
                refused,
                Err(Failure::Rejected(Rejected::CircuitOpen { .. }))
            ));
        });
    });
    let calls = spans.calls("traced_policy");
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0]["outcome"], "ok");
    assert_eq!(calls[0]["attempts"], "1");
    assert_eq!(calls[0]["breaker"], "CLOSED");
    // One attempt failed and opened the breaker; the retry was refused by it.
    assert_eq!(calls[1]["outcome"], "rejected", "{:?}", calls[1]);
    assert_eq!(calls[1]["attempts"], "1");
    assert_eq!(calls[2]["outcome"], "rejected");
    assert_eq!(calls[2]["rejected_by"], "traced_breaker");
    assert_eq!(calls[2]["breaker"], "OPEN");
    assert_eq!(calls[2]["attempts"], "0", "refused before any attempt ran");
}

#[test]
fn a_blocking_call_is_one_span_over_its_attempts() {
    let spans = Arc::new(Spans::default());
    tracing::subscriber::with_default(Recording(Arc::clone(&spans)), || {
        let policy = Policy::builder("traced_blocking")
            .retry("traced_blocking_retry", |r| {
                r.max_attempts(3)
                    .initial_delay(Duration::from_millis(1))
                    .jitter(Jitter::None)
                    .budget(None)
            })
            .build()
            .unwrap();
        let failed = policy.try_call_blocking(|| Err::<u32, _>("down"));
        assert!(matches!(failed, Err(Failure::Inner("down"))));
        let ok = policy.try_call_once_blocking(|| Ok::<u32, &str>(1));
        assert_eq!(ok.unwrap(), 1);
    });
    let calls = spans.calls("traced_blocking");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        (calls[0]["outcome"].as_str(), calls[0]["attempts"].as_str()),
        ("failed", "3")
    );
    assert_eq!(
        (calls[1]["outcome"].as_str(), calls[1]["attempts"].as_str()),
        ("ok", "1")
    );
    assert!(!calls[0].contains_key("breaker"), "no breaker, no state");
}
