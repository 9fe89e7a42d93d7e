//! Router tests: each refusal reason on its own, then properties over random operation sequences
//! checked against a model of the introductions (random frames never panic, a frame is only
//! delivered across an open pair, the header always becomes the authenticated sender).

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn id(n: u8) -> FeedId {
    FeedId([n; 32])
}

fn frame(to: FeedId, body: &[u8]) -> Bytes {
    let mut f = to.0.to_vec();
    f.extend_from_slice(body);
    Bytes::from(f)
}

fn router_with(a: u8, b: u8, now: Instant) -> Router {
    let mut r = Router::default();
    r.add_client(id(a), now).expect("a");
    r.add_client(id(b), now).expect("b");
    r
}

#[test]
fn forwards_across_an_open_pair_with_the_source_stamped() {
    let now = Instant::now();
    let mut r = router_with(1, 2, now);
    r.open_pair(id(1), id(2), now).expect("pair");
    let action = r.route(&id(1), frame(id(2), b"inner"), now, |_| usize::MAX);
    assert_eq!(
        action,
        Action::Forward {
            to: id(2),
            frame: frame(id(1), b"inner")
        }
    );
    // The other way round too.
    let back = r.route(&id(2), frame(id(1), b"back"), now, |_| usize::MAX);
    assert_eq!(
        back,
        Action::Forward {
            to: id(1),
            frame: frame(id(2), b"back")
        }
    );
    assert_eq!(r.stats().forwarded_packets, 2);
    assert_eq!(r.stats().forwarded_bytes, 2 * 32 + 9);
}

#[test]
fn a_shared_frame_is_copied_not_mutated() {
    let now = Instant::now();
    let mut r = router_with(1, 2, now);
    r.open_pair(id(1), id(2), now).expect("pair");
    let original = frame(id(2), b"x");
    let keep = original.clone();
    let Action::Forward { frame: out, .. } = r.route(&id(1), original, now, |_| usize::MAX) else {
        panic!("not forwarded")
    };
    assert_eq!(&out[..32], &id(1).0);
    assert_eq!(&keep[..32], &id(2).0, "the caller's copy is untouched");
}

#[test]
fn each_refusal_is_named_and_counted() {
    let now = Instant::now();
    let mut r = router_with(1, 2, now);
    r.add_client(id(3), now).expect("c");
    r.open_pair(id(1), id(2), now).expect("pair");
    let max = r.config().frame_bytes_max;
    let cases = [
        (id(9), frame(id(2), b"x"), Refusal::UnknownSender),
        (id(1), Bytes::from_static(&[7; 31]), Refusal::TooShort),
        (id(1), Bytes::from(vec![2u8; max + 1]), Refusal::TooLarge),
        (id(1), frame(id(1), b"x"), Refusal::SelfAddressed),
        (id(1), frame(id(3), b"x"), Refusal::NotIntroduced),
        (id(1), frame(id(8), b"x"), Refusal::NotIntroduced),
    ];
    for (from, f, reason) in cases {
        let before = r.stats().refused(reason);
        assert_eq!(
            r.route(&from, f, now, |_| usize::MAX),
            Action::Refuse(reason)
        );
        assert_eq!(r.stats().refused(reason), before + 1, "{}", reason.name());
    }
    assert_eq!(
        r.route(&id(1), frame(id(2), b"xy"), now, |to| {
            assert_eq!(*to, id(2));
            33
        }),
        Action::Refuse(Refusal::QueueFull)
    );
    assert_eq!(r.stats().refused_total(), 7);
    assert_eq!(r.stats().forwarded_packets, 0);
    // A frame of exactly the maximum size passes.
    let mut big = vec![2u8; max];
    big[..32].copy_from_slice(&id(2).0);
    assert!(matches!(
        r.route(&id(1), Bytes::from(big), now, |_| usize::MAX),
        Action::Forward { .. }
    ));
}

#[test]
fn a_flooding_client_is_rate_limited_without_touching_others() {
    let now = Instant::now();
    let mut r = router_with(1, 2, now);
    r.add_client(id(3), now).expect("c");
    r.add_client(id(4), now).expect("d");
    r.open_pair(id(1), id(2), now).expect("pair");
    r.open_pair(id(3), id(4), now).expect("pair");
    let burst = r.config().rate.packets_burst as usize;
    let mut passed = 0;
    for _ in 0..burst * 2 {
        if let Action::Forward { .. } = r.route(&id(1), frame(id(2), b"x"), now, |_| usize::MAX) {
            passed += 1;
        }
    }
    assert_eq!(passed, burst);
    assert_eq!(r.stats().refused(Refusal::RateLimited), burst as u64);
    assert!(matches!(
        r.route(&id(3), frame(id(4), b"x"), now, |_| usize::MAX),
        Action::Forward { .. }
    ));
    // Time refills the flooder's bucket.
    let later = now + Duration::from_millis(10);
    assert!(matches!(
        r.route(&id(1), frame(id(2), b"x"), later, |_| usize::MAX),
        Action::Forward { .. }
    ));
}

#[test]
fn an_operators_client_rate_sets_the_sustained_rate_and_a_burst_of_an_eighth_of_a_second() {
    let config = RouterConfig::with_client_rate(1_000, 1 << 20).expect("valid rates");
    assert_eq!(config.rate.packets_burst, 125.0);
    assert_eq!(config.rate.bytes_burst, 131_072.0);
    let now = Instant::now();
    let mut r = Router::new(config);
    r.add_client(id(1), now).expect("a");
    r.add_client(id(2), now).expect("b");
    r.open_pair(id(1), id(2), now).expect("pair");
    let mut send = |at| {
        matches!(
            r.route(&id(1), frame(id(2), b"x"), at, |_| usize::MAX),
            Action::Forward { .. }
        )
    };
    assert_eq!((0..200).filter(|_| send(now)).count(), 125, "the burst");
    // 100 ms at 1,000 packets/s refills 100.
    let later = now + Duration::from_millis(100);
    assert_eq!(
        (0..200).filter(|_| send(later)).count(),
        100,
        "the sustained rate"
    );
}

#[test]
fn client_rates_too_low_to_hold_a_frame_are_refused_by_name() {
    let min = (
        limits::RELAY_CLIENT_PACKETS_PER_SEC_MIN,
        limits::RELAY_CLIENT_BYTES_PER_SEC_MIN,
    );
    assert_eq!(
        RouterConfig::with_client_rate(min.0 - 1, min.1),
        Err(RateError::PacketsTooLow(min.0 - 1))
    );
    assert_eq!(
        RouterConfig::with_client_rate(min.0, min.1 - 1),
        Err(RateError::BytesTooLow(min.1 - 1))
    );
    let lowest = RouterConfig::with_client_rate(min.0, min.1).expect("the minimums are valid");
    assert!(
        lowest.rate.bytes_burst >= limits::RELAY_FRAME_BYTES_MAX as f64,
        "a burst holds a full frame"
    );
    assert!(lowest.rate.packets_burst >= 1.0);
    assert_eq!(
        RouterConfig::with_client_rate(
            limits::RELAY_CLIENT_PACKETS_PER_SEC,
            limits::RELAY_CLIENT_BYTES_PER_SEC
        ),
        Ok(RouterConfig::default())
    );
}

#[test]
fn pairs_close_explicitly_and_when_a_client_leaves() {
    let now = Instant::now();
    let mut r = router_with(1, 2, now);
    assert_eq!(r.open_pair(id(1), id(1), now), Err(RouterError::SelfPair));
    assert_eq!(
        r.open_pair(id(1), id(9), now),
        Err(RouterError::NotConnected(id(9)))
    );
    assert_eq!(
        r.add_client(id(1), now),
        Err(RouterError::AlreadyConnected(id(1)))
    );
    r.open_pair(id(1), id(2), now).expect("pair");
    assert!(r.close_pair(&id(2), &id(1)));
    assert!(!r.close_pair(&id(2), &id(1)));
    r.open_pair(id(1), id(2), now).expect("pair");
    assert_eq!(r.remove_client(&id(2)), vec![id(1)]);
    assert!(!r.is_paired(&id(1), &id(2)));
    // B reconnects: the old introduction does not come back with it.
    r.add_client(id(2), now).expect("back");
    assert_eq!(
        r.route(&id(1), frame(id(2), b"x"), now, |_| usize::MAX),
        Action::Refuse(Refusal::NotIntroduced)
    );
}

#[test]
fn bounds_on_clients_and_pairs() {
    let now = Instant::now();
    let mut r = Router::new(RouterConfig {
        clients_max: 3,
        pairs_per_client_max: 1,
        ..RouterConfig::default()
    });
    for n in 1..=3 {
        r.add_client(id(n), now).expect("client");
    }
    assert_eq!(r.add_client(id(4), now), Err(RouterError::ClientsFull(3)));
    r.open_pair(id(1), id(2), now).expect("pair");
    r.open_pair(id(1), id(2), now)
        .expect("reopening refreshes the pair");
    assert_eq!(
        r.open_pair(id(3), id(1), now),
        Err(RouterError::PairsFull(id(1)))
    );
    assert!(
        !r.is_paired(&id(3), &id(1)),
        "a refused pair is not half open"
    );
}

#[test]
fn a_full_client_makes_room_by_closing_its_pair_idle_past_the_expiry() {
    let t0 = Instant::now();
    let mut r = Router::new(RouterConfig {
        pairs_per_client_max: 2,
        ..RouterConfig::default()
    });
    for n in 1..=4 {
        r.add_client(id(n), t0).expect("client");
    }
    r.open_pair(id(1), id(2), t0).expect("pair");
    r.open_pair(id(1), id(3), t0).expect("pair");
    let expired = t0 + limits::RELAY_PAIR_IDLE_EXPIRY;
    let just_before = expired - Duration::from_secs(1);
    // 2 keeps sending to 1 (1 itself never sends); 3 falls silent.
    let sent = r.route(&id(2), frame(id(1), b"x"), just_before, |_| usize::MAX);
    assert!(matches!(sent, Action::Forward { .. }));
    assert_eq!(
        r.open_pair(id(1), id(4), just_before),
        Err(RouterError::PairsFull(id(1))),
        "nothing idle long enough yet"
    );
    r.open_pair(id(4), id(1), expired)
        .expect("the silent pair makes room");
    assert!(
        r.is_paired(&id(1), &id(2)),
        "a pair used in either direction stays"
    );
    assert!(r.is_paired(&id(1), &id(4)));
    assert!(
        !r.is_paired(&id(1), &id(3)) && !r.is_paired(&id(3), &id(1)),
        "closed on both sides"
    );
    assert_eq!(r.stats().expired_pairs, 1);
    // Frames delivered from another node count as use too.
    let later = expired + limits::RELAY_PAIR_IDLE_EXPIRY;
    let delivered = r.deliver(
        id(1),
        frame(id(4), b"from afar"),
        later - Duration::from_secs(1),
        |_| usize::MAX,
    );
    assert!(matches!(delivered, Action::Forward { .. }));
    r.open_pair(id(1), id(3), later)
        .expect("room made by the idle pair with 2");
    assert!(r.is_paired(&id(1), &id(4)) && !r.is_paired(&id(1), &id(2)));
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8),
    Remove(u8),
    Open(u8, u8),
    Close(u8, u8),
    Route {
        from: u8,
        frame: Vec<u8>,
        room: usize,
    },
    Advance(u16),
}

const IDS: u8 = 5;

fn op() -> impl Strategy<Value = Op> {
    let who = 0..IDS;
    // Frames: mostly addressed to one of the ids, sometimes arbitrary or short.
    let addressed = (0..IDS, prop::collection::vec(any::<u8>(), 0..64))
        .prop_map(|(to, body)| [id(to).0.to_vec(), body].concat());
    let raw = prop::collection::vec(any::<u8>(), 0..80);
    let frame = prop_oneof![4 => addressed, 1 => raw];
    prop_oneof![
        2 => who.clone().prop_map(Op::Add),
        1 => who.clone().prop_map(Op::Remove),
        2 => (who.clone(), who.clone()).prop_map(|(a, b)| Op::Open(a, b)),
        1 => (who.clone(), who.clone()).prop_map(|(a, b)| Op::Close(a, b)),
        8 => (who, frame, 0usize..100).prop_map(|(from, frame, room)| Op::Route { from, frame, room }),
        1 => any::<u16>().prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn router_matches_a_model_of_introductions(ops in prop::collection::vec(op(), 1..200)) {
        let config = RouterConfig {
            frame_bytes_max: 72,
            rate: Rate { packets_per_sec: 1_000.0, packets_burst: 20.0, bytes_per_sec: 50_000.0, bytes_burst: 1_000.0 },
            ..RouterConfig::default()
        };
        let mut r = Router::new(config);
        let mut now = Instant::now();
        let mut clients: HashSet<u8> = HashSet::new();
        let mut pairs: HashSet<(u8, u8)> = HashSet::new();
        let mut routed = 0u64;
        for op in ops {
            match op {
                Op::Add(a) => {
                    let ok = r.add_client(id(a), now).is_ok();
                    prop_assert_eq!(ok, clients.insert(a));
                }
                Op::Remove(a) => {
                    r.remove_client(&id(a));
                    clients.remove(&a);
                    pairs.retain(|(x, y)| *x != a && *y != a);
                }
                Op::Open(a, b) => {
                    let ok = r.open_pair(id(a), id(b), now).is_ok();
                    prop_assert_eq!(ok, a != b && clients.contains(&a) && clients.contains(&b));
                    if ok {
                        pairs.insert((a, b));
                        pairs.insert((b, a));
                    }
                }
                Op::Close(a, b) => {
                    let was = r.close_pair(&id(a), &id(b));
                    prop_assert_eq!(was, pairs.remove(&(a, b)) | pairs.remove(&(b, a)));
                }
                Op::Advance(us) => now += Duration::from_micros(u64::from(us)),
                Op::Route { from, frame, room } => {
                    routed += 1;
                    let input = Bytes::from(frame.clone());
                    match r.route(&id(from), input, now, |_| room) {
                        Action::Forward { to, frame: out } => {
                            let to_n = to.0[0];
                            prop_assert_eq!(to, id(to_n), "destination is a known id");
                            prop_assert!(pairs.contains(&(from, to_n)), "forwarded without an introduction");
                            prop_assert!(clients.contains(&to_n));
                            prop_assert!(frame.len() <= room);
                            prop_assert!(frame.len() >= 32 && frame.len() <= 72);
                            prop_assert_eq!(&out[..32], &id(from).0[..], "source stamped");
                            prop_assert_eq!(&out[32..], &frame[32..], "body untouched");
                        }
                        Action::Refuse(reason) => {
                            let legit = frame.len() >= 32
                                && frame.len() <= 72
                                && frame.len() <= room
                                && pairs.iter().any(|(a, b)| *a == from && frame[..32] == id(*b).0);
                            // A legitimate frame may only be refused by the rate limit.
                            if legit {
                                prop_assert_eq!(reason, Refusal::RateLimited);
                            }
                            if !clients.contains(&from) {
                                prop_assert_eq!(reason, Refusal::UnknownSender);
                            }
                        }
                    }
                }
            }
        }
        let stats = r.stats();
        prop_assert_eq!(stats.forwarded_packets + stats.refused_total(), routed);
    }

    #[test]
    fn random_frames_from_random_senders_never_panic(
        frames in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..2_000)), 1..50)
    ) {
        let now = Instant::now();
        let mut r = router_with(1, 2, now);
        r.open_pair(id(1), id(2), now).expect("pair");
        for (from, frame) in frames {
            let _ = r.route(&id(from % 3), Bytes::from(frame), now, |_| usize::MAX);
        }
    }
}

#[test]
fn frames_from_another_node_are_delivered_only_across_an_open_pair() {
    let now = Instant::now();
    let mut r = router_with(1, 2, now);
    // 2 stands for a client of another node: a stamped frame from it, for local client 1.
    let stamped = frame(id(2), b"from afar");
    assert_eq!(
        r.deliver(id(1), stamped.clone(), now, |_| usize::MAX),
        Action::Refuse(Refusal::NotIntroduced)
    );
    r.open_pair(id(1), id(2), now).expect("pair");
    assert_eq!(r.pair_count(&id(2)), 1);
    assert_eq!(
        r.deliver(id(1), stamped.clone(), now, |_| 3),
        Action::Refuse(Refusal::QueueFull)
    );
    assert_eq!(
        r.deliver(id(1), Bytes::from_static(b"short"), now, |_| usize::MAX),
        Action::Refuse(Refusal::TooShort)
    );
    assert_eq!(
        r.deliver(id(1), stamped.clone(), now, |_| usize::MAX),
        Action::Forward {
            to: id(1),
            frame: stamped.clone()
        }
    );
    // A stamp naming a client that is not introduced to the destination is refused.
    assert_eq!(
        r.deliver(id(1), frame(id(9), b"forged"), now, |_| usize::MAX),
        Action::Refuse(Refusal::NotIntroduced)
    );
    assert_eq!(r.stats().forwarded_packets, 1);
    assert_eq!(r.stats().refused_total(), 4);
}
