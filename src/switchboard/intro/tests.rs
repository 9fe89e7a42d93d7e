//! Unit tests of the introduction policy: each decision, the rate, the pending bound, and the
//! exact refusal texts peers are shown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::wire::switchboard::IntroAnswer::{Direct, Refuse, RelayOnly};

fn id(n: u8) -> FeedId {
    FeedId([n; 32])
}

const ME: FeedId = FeedId([1; 32]);

fn addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], 4433))
}

/// An asker the tests can tell apart.
type Asker = &'static str;

/// A caller id for the `n`th pending request, never `ME`.
fn caller(n: usize) -> FeedId {
    let mut bytes = [0xAA; 32];
    bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
    FeedId(bytes)
}

#[test]
fn an_introduction_within_the_rate_is_forwarded() {
    let now = Instant::now();
    let mut intros = Introductions::<Asker>::new(ME, now);
    assert_eq!(
        intros.introduce(id(2), now),
        Decision::Forward { to: id(2) }
    );
}

#[test]
fn an_introduction_to_oneself_is_refused() {
    let now = Instant::now();
    let mut intros = Introductions::<Asker>::new(ME, now);
    assert_eq!(
        intros.introduce(ME, now),
        Decision::Refuse {
            to: ME,
            error: IntroError::SelfIntroduction
        }
    );
}

#[test]
fn the_burst_passes_then_the_rate_refuses_until_it_refills() {
    let t0 = Instant::now();
    let mut intros = Introductions::<Asker>::new(ME, t0);
    let burst = SB_INTRODUCTIONS_BURST as usize;
    for _ in 0..burst {
        assert_eq!(intros.introduce(id(2), t0), Decision::Forward { to: id(2) });
    }
    assert_eq!(
        intros.introduce(id(2), t0),
        Decision::Refuse {
            to: id(2),
            error: IntroError::OverRate
        }
    );
    // One token refills in 1/rate seconds.
    let t1 = t0 + Duration::from_secs_f64(1.0 / f64::from(SB_INTRODUCTIONS_PER_SEC));
    assert_eq!(intros.introduce(id(2), t1), Decision::Forward { to: id(2) });
    assert!(matches!(
        intros.introduce(id(2), t1),
        Decision::Refuse {
            error: IntroError::OverRate,
            ..
        }
    ));
}

#[test]
fn the_rate_is_checked_first_and_a_refused_request_spends_its_token() {
    let t0 = Instant::now();
    let mut intros = Introductions::<Asker>::new(ME, t0);
    for _ in 0..SB_INTRODUCTIONS_BURST {
        assert!(matches!(
            intros.introduce(ME, t0),
            Decision::Refuse {
                error: IntroError::SelfIntroduction,
                ..
            }
        ));
    }
    assert_eq!(
        intros.introduce(ME, t0),
        Decision::Refuse {
            to: ME,
            error: IntroError::OverRate
        }
    );
}

#[test]
fn a_request_is_shown_then_accepted_once() {
    let now = Instant::now();
    let mut intros = Introductions::new(ME, now);
    assert_eq!(
        intros.ask(id(3), "a", addr()),
        Decision::Show { from: id(3) }
    );
    assert_eq!(intros.pending(), 1);
    assert_eq!(
        intros.answer(id(3), Direct),
        Decision::Accept {
            caller: id(3),
            asker: "a",
            punch: Some(addr()),
        }
    );
    assert_eq!(intros.pending(), 0);
    assert_eq!(intros.answer(id(3), Direct), Decision::Nothing);
}

#[test]
fn a_relay_only_answer_lets_no_address_cross() {
    let mut intros = Introductions::new(ME, Instant::now());
    // The request shown to the callee has no address in it (Show carries only the id).
    assert_eq!(
        intros.ask(id(3), "a", addr()),
        Decision::Show { from: id(3) }
    );
    assert_eq!(
        intros.answer(id(3), RelayOnly),
        Decision::Accept {
            caller: id(3),
            asker: "a",
            punch: None,
        }
    );
}

#[test]
fn a_declined_request_names_the_callee() {
    let mut intros = Introductions::new(ME, Instant::now());
    intros.ask(id(3), "a", addr());
    assert_eq!(
        intros.answer(id(3), Refuse),
        Decision::Decline {
            caller: id(3),
            asker: "a",
            error: IntroError::Declined(ME)
        }
    );
    assert!(IntroError::Declined(ME).declined());
    assert!(IntroError::Declined(ME)
        .to_string()
        .ends_with("they do not follow you"));
    assert_eq!(intros.pending(), 0);
}

#[test]
fn an_answer_to_nothing_asked_does_nothing() {
    let mut intros = Introductions::<Asker>::new(ME, Instant::now());
    assert_eq!(intros.answer(id(3), Direct), Decision::Nothing);
    assert_eq!(intros.answer(id(3), Refuse), Decision::Nothing);
}

#[test]
fn a_second_request_from_the_same_caller_replaces_the_first() {
    let mut intros = Introductions::new(ME, Instant::now());
    intros.ask(id(3), "first", addr());
    intros.ask(id(3), "second", addr());
    assert_eq!(intros.pending(), 1);
    assert_eq!(
        intros.answer(id(3), RelayOnly),
        Decision::Accept {
            caller: id(3),
            asker: "second",
            punch: None,
        }
    );
}

#[test]
fn pending_requests_are_bounded() {
    let mut intros = Introductions::new(ME, Instant::now());
    for n in 0..INTRODUCTIONS_PENDING_MAX {
        assert!(matches!(
            intros.ask(caller(n), "a", addr()),
            Decision::Show { .. }
        ));
    }
    let extra = caller(INTRODUCTIONS_PENDING_MAX);
    assert_eq!(
        intros.ask(extra, "b", addr()),
        Decision::Reply {
            caller: extra,
            asker: "b",
            error: IntroError::TooManyPending(ME)
        }
    );
    assert_eq!(intros.pending(), INTRODUCTIONS_PENDING_MAX);
    // A caller already pending may ask again at the bound.
    assert!(matches!(
        intros.ask(caller(0), "c", addr()),
        Decision::Show { .. }
    ));
    // An answer makes room.
    assert!(matches!(
        intros.answer(caller(1), Refuse),
        Decision::Decline { .. }
    ));
    assert!(matches!(
        intros.ask(extra, "b", addr()),
        Decision::Show { .. }
    ));
}

#[test]
fn leaving_answers_every_pending_request() {
    let mut intros = Introductions::new(ME, Instant::now());
    intros.ask(id(3), "a", addr());
    intros.ask(id(4), "b", addr());
    let mut replies = intros.abandon();
    replies.sort_by_key(|d| match d {
        Decision::Reply { caller, .. } => *caller,
        _ => ME,
    });
    assert_eq!(
        replies,
        vec![
            Decision::Reply {
                caller: id(3),
                asker: "a",
                error: IntroError::NotConnected(ME)
            },
            Decision::Reply {
                caller: id(4),
                asker: "b",
                error: IntroError::NotConnected(ME)
            },
        ]
    );
    assert_eq!(intros.pending(), 0);
    assert!(intros.abandon().is_empty());
}

#[test]
fn refusal_texts_are_unchanged() {
    let peer = id(5);
    let cases = [
        (
            IntroError::OverRate,
            format!(
                "too many introductions asked: at most {SB_INTRODUCTIONS_PER_SEC} a second; try again later"
            ),
        ),
        (IntroError::SelfIntroduction, "that is your own id".to_string()),
        (
            IntroError::NotConnected(peer),
            format!("{peer} is not connected to this switchboard"),
        ),
        (
            IntroError::NotInCluster(peer),
            format!("{peer} is not connected to this switchboard cluster"),
        ),
        (
            IntroError::NodeUnreachable(peer),
            format!("{peer} is on another switchboard node that cannot be reached now"),
        ),
        (
            IntroError::TooManyPending(peer),
            format!("{peer} has too many introductions pending; try again later"),
        ),
        (
            IntroError::Declined(peer),
            format!("{peer} refused the introduction: they do not follow you"),
        ),
        (
            IntroError::CannotRelay(RelayError::NodeNotLinked),
            "the switchboard cannot relay between you: the other node is not linked".to_string(),
        ),
        (
            IntroError::from(RouterError::SelfPair),
            format!(
                "the switchboard cannot relay between you: {}",
                RouterError::SelfPair
            ),
        ),
        (IntroError::Remote("as sent".into()), "as sent".to_string()),
        (
            IntroError::RemoteDeclined("as sent".into()),
            "as sent".to_string(),
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn each_refusal_kind_has_its_own_counter_slot_and_name() {
    use std::collections::HashSet;
    let names: HashSet<&str> = RefusalKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), RefusalKind::ALL.len());
    for (i, kind) in RefusalKind::ALL.iter().enumerate() {
        assert_eq!(*kind as usize, i, "{kind:?} is counted in slot {i}");
    }
    let id = FeedId([9; 32]);
    assert_eq!(IntroError::Declined(id).kind(), RefusalKind::Declined);
    assert_eq!(
        IntroError::NotInCluster(id).kind(),
        RefusalKind::NotConnected
    );
    assert_eq!(IntroError::OverRate.kind(), RefusalKind::OverRate);
}
