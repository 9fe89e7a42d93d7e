//! The supervision engine says when a child crashes: an abnormal exit is logged at WARN (OTP's
//! crash report), never only at DEBUG, so that a daemon restarting its store writer in a loop
//! shows why in its default log. Captured with a minimal subscriber, no log parsing.

mod supervisor_util;

use std::sync::{Arc, Mutex};

use kith::supervisor::{Restart, Strategy, Supervisor};
use supervisor_util::{spec, Env, ProbeMsg};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Keeps the level and fields of every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Level, String)>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn a_crashed_child_is_logged_at_warn() {
    let capture = Capture::default();
    let _guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(capture.clone()));
    let env = Env::default();
    let sup_spec = spec(
        "s",
        Strategy::OneForOne,
        3,
        vec![env.worker("writer", Restart::Permanent)],
    );
    let (sup, _join) = Supervisor::start(sup_spec).await.unwrap();
    env.crash_and_wait("writer", ProbeMsg::Fail, 2).await;
    Supervisor::shutdown(&sup).await.unwrap();

    let events = capture.0.lock().unwrap().clone();
    let crash: Vec<_> = events
        .iter()
        .filter(|(_, text)| text.contains("child=writer") && text.contains("exited"))
        .collect();
    assert_eq!(crash.len(), 1, "one exit event for the crash: {events:?}");
    assert!(
        crash[0].0 <= Level::WARN,
        "the crash was logged at {}: {:?}",
        crash[0].0,
        crash[0].1
    );
}
