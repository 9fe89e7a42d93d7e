//! Two sessions wired back to back over in-memory queues, with stores simulated as real signed
//! feeds held in memory, so the sequences and headers are the real thing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::feed::{next_entry, Content, Entry, FeedHead};
use crate::identity::{FeedId, Identity};

/// Signed feeds by author seed, shared by all simulated nodes.
struct Universe {
    feeds: BTreeMap<FeedId, Vec<Entry>>,
}

impl Universe {
    fn new(lengths: &[(u8, usize)]) -> Self {
        let mut feeds = BTreeMap::new();
        for (seed, len) in lengths {
            let author = Identity::from_seed([*seed; 32]);
            let mut head: Option<FeedHead> = None;
            let mut entries = Vec::new();
            for i in 0..*len {
                let content = Content::Post {
                    text: format!("{seed}/{i}"),
                    reply_to: None,
                };
                let (entry, _, header) =
                    next_entry(&author, head.as_ref(), &content, 1_700_000_000_000).unwrap();
                head = Some(FeedHead {
                    seq: header.seq,
                    id: entry.id(),
                    timestamp_ms: header.timestamp_ms,
                });
                entries.push(entry);
            }
            feeds.insert(author.id(), entries);
        }
        Universe { feeds }
    }
}

fn feed(seed: u8) -> FeedId {
    Identity::from_seed([seed; 32]).id()
}

struct Node {
    held: BTreeMap<FeedId, u64>,
    wants: BTreeSet<FeedId>,
    refuse: BTreeSet<FeedId>,
    memory: PeerMemory,
    received: Vec<FeedId>,
}

impl Local for Node {
    fn seq(&self, feed: &FeedId) -> u64 {
        self.held.get(feed).copied().unwrap_or(0)
    }
    fn may_serve(&self, feed: &FeedId) -> bool {
        !self.refuse.contains(feed)
    }
}

impl Node {
    fn new(held: &[(u8, u64)], wants: &[u8]) -> Node {
        Node {
            held: held.iter().map(|(s, n)| (feed(*s), *n)).collect(),
            wants: wants.iter().map(|s| feed(*s)).collect(),
            refuse: BTreeSet::new(),
            memory: PeerMemory::default(),
            received: Vec::new(),
        }
    }
    fn clock(&self) -> Clock {
        self.wants.iter().map(|f| (*f, self.seq(f))).collect()
    }
}

/// Run a session between `a` and `b` until quiet; returns the messages each side sent.
fn run(u: &Universe, a: &mut Node, b: &mut Node) -> Result<(Vec<Msg>, Vec<Msg>), SessionError> {
    let mut sa = Session::new(a.clock(), a.memory.clone());
    let mut sb = Session::new(b.clock(), b.memory.clone());
    let mut to_b: VecDeque<Msg> = VecDeque::new();
    let mut to_a: VecDeque<Msg> = VecDeque::new();
    let (mut sent_a, mut sent_b) = (Vec::new(), Vec::new());
    let first_a = sa.start();
    let first_b = sb.start();
    perform(u, a, &mut sa, first_a, &mut to_b);
    perform(u, b, &mut sb, first_b, &mut to_a);
    for _ in 0..100_000 {
        if let Some(m) = to_b.pop_front() {
            sent_a.push(m.clone());
            let actions = sb.handle(m, b)?;
            perform(u, b, &mut sb, actions, &mut to_a);
        } else if let Some(m) = to_a.pop_front() {
            sent_b.push(m.clone());
            let actions = sa.handle(m, a)?;
            perform(u, a, &mut sa, actions, &mut to_b);
        } else {
            return Ok((sent_a, sent_b));
        }
    }
    panic!("no quiescence");
}

fn perform(
    u: &Universe,
    node: &mut Node,
    session: &mut Session,
    actions: Vec<Action>,
    out: &mut VecDeque<Msg>,
) {
    for action in actions {
        match action {
            Action::Send(m) => out.push_back(m),
            Action::Remember(m) => node.memory = m,
            Action::Serve { feed, after, upto } => {
                let all = &u.feeds[&feed];
                let wire: Vec<WireEntry> = all[after as usize..upto as usize]
                    .iter()
                    .map(|e| WireEntry {
                        entry: e.clone(),
                        payload: None,
                        tombstone: None,
                    })
                    .collect();
                for chunk in wire.chunks(crate::limits::REPLICATION_BATCH_MAX) {
                    out.push_back(Msg::Entries {
                        feed,
                        entries: chunk.to_vec(),
                    });
                }
            }
            Action::Ingest { feed, entries } => {
                let mut seq = node.seq(&feed);
                for e in &entries {
                    let h = e.entry.header().unwrap();
                    assert_eq!(h.seq, seq + 1, "entries arrive in order with no gap");
                    seq = h.seq;
                }
                node.held.insert(feed, seq);
                node.received.push(feed);
                let more = session.local_append(feed, seq, &*node);
                perform(u, node, session, more, out);
            }
        }
    }
}

fn entries_sent(msgs: &[Msg]) -> usize {
    msgs.iter()
        .map(|m| {
            if let Msg::Entries { entries, .. } = m {
                entries.len()
            } else {
                0
            }
        })
        .sum()
}

#[test]
fn a_backlog_syncs_in_order_and_nothing_is_echoed() {
    let u = Universe::new(&[(1, 10), (2, 2_500)]);
    let mut a = Node::new(&[(1, 10)], &[1, 2]);
    let mut b = Node::new(&[(2, 2_500)], &[2]);
    let (from_a, from_b) = run(&u, &mut a, &mut b).unwrap();
    assert_eq!(a.seq(&feed(2)), 2_500);
    assert_eq!(entries_sent(&from_b), 2_500);
    assert_eq!(
        entries_sent(&from_a),
        0,
        "b does not want a's feed, and nothing is echoed"
    );
}

#[test]
fn friends_of_friends_never_flow() {
    let u = Universe::new(&[(1, 3), (2, 3), (3, 50)]);
    let mut a = Node::new(&[(1, 3)], &[1, 2]);
    let mut b = Node::new(&[(2, 3), (3, 50)], &[2, 3]);
    run(&u, &mut a, &mut b).unwrap();
    assert_eq!(a.seq(&feed(2)), 3);
    assert_eq!(a.seq(&feed(3)), 0);
    assert!(!a.received.contains(&feed(3)));
}

#[test]
fn unsolicited_entries_end_the_session() {
    let u = Universe::new(&[(3, 2)]);
    let mut s = Session::new(Clock::new(), PeerMemory::default());
    let node = Node::new(&[], &[]);
    let clock = Msg::Clock {
        full: true,
        notes: vec![],
        digest: digest(&Clock::new()),
    };
    s.handle(clock, &node).unwrap();
    let entries = vec![WireEntry {
        entry: u.feeds[&feed(3)][0].clone(),
        payload: None,
        tombstone: None,
    }];
    let err = s
        .handle(
            Msg::Entries {
                feed: feed(3),
                entries,
            },
            &node,
        )
        .unwrap_err();
    assert_eq!(err, SessionError::Unsolicited(feed(3)));
}

#[test]
fn consent_refusal_serves_nothing() {
    let u = Universe::new(&[(2, 5)]);
    let mut a = Node::new(&[], &[2]);
    let mut b = Node::new(&[(2, 5)], &[2]);
    b.refuse.insert(feed(2));
    run(&u, &mut a, &mut b).unwrap();
    assert_eq!(a.seq(&feed(2)), 0);
}

#[test]
fn reconnect_skips_unchanged_feeds_and_resends_nothing() {
    let lengths: Vec<(u8, usize)> = (10..40).map(|s| (s, 20)).collect();
    let u = Universe::new(&lengths);
    let all: Vec<u8> = (10..40).collect();
    let held: Vec<(u8, u64)> = all.iter().map(|s| (*s, 20)).collect();
    let mut a = Node::new(&[], &all);
    let mut b = Node::new(&held, &all);
    run(&u, &mut a, &mut b).unwrap();
    assert!(all.iter().all(|s| a.seq(&feed(*s)) == 20));
    // Reconnect: a's clock changed (it now holds everything) but b's did not.
    let (from_a, from_b) = run(&u, &mut a, &mut b).unwrap();
    let notes = |msgs: &[Msg]| {
        msgs.iter()
            .map(|m| {
                if let Msg::Clock { notes, .. } = m {
                    notes.len()
                } else {
                    0
                }
            })
            .sum::<usize>()
    };
    assert_eq!(notes(&from_b), 0, "b's clock is unchanged: no notes");
    assert_eq!(notes(&from_a), 30, "a reports the feeds it advanced");
    assert_eq!(entries_sent(&from_b), 0);
    // A third time, nothing changed on either side: no notes at all.
    let (from_a, from_b) = run(&u, &mut a, &mut b).unwrap();
    assert_eq!(notes(&from_a) + notes(&from_b), 0);
    assert!(!from_a
        .iter()
        .chain(&from_b)
        .any(|m| matches!(m, Msg::ResendFull)));
}

#[test]
fn a_side_that_lost_its_memory_is_repaired_by_the_digest() {
    let u = Universe::new(&[(2, 30)]);
    let mut a = Node::new(&[], &[2]);
    let mut b = Node::new(&[(2, 10)], &[2]);
    run(&u, &mut a, &mut b).unwrap();
    assert_eq!(a.seq(&feed(2)), 10);
    // b forgets everything about a; b gains entries.
    b.memory = PeerMemory::default();
    b.held.insert(feed(2), 30);
    let (_, from_b) = run(&u, &mut a, &mut b).unwrap();
    assert_eq!(a.seq(&feed(2)), 30);
    assert_eq!(entries_sent(&from_b), 20, "resumes where it stopped");
    // a's memory goes stale instead (it kept an old view of b's clock).
    a.memory.received.insert(feed(2), 0);
    a.memory.received.insert(feed(9), 4);
    run(&u, &mut a, &mut b).unwrap();
    assert_eq!(a.memory.received, b.clock());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Whatever each side holds, wants and remembers (even wrongly), one session leaves each side
    /// with every feed it wants at least at the other's level, unless consent refuses it.
    #[test]
    fn sessions_converge_whatever_the_memory(
        a_held in proptest::collection::vec(0u64..12, 4),
        b_held in proptest::collection::vec(0u64..12, 4),
        a_wants in proptest::collection::vec(any::<bool>(), 4),
        b_wants in proptest::collection::vec(any::<bool>(), 4),
        stale in proptest::collection::vec(0u64..12, 4),
        refuse in 0u8..5,
    ) {
        let u = Universe::new(&[(1, 12), (2, 12), (3, 12), (4, 12)]);
        let seeds = [1u8, 2, 3, 4];
        let pick = |w: &[bool]| seeds.iter().zip(w).filter(|(_, w)| **w).map(|(s, _)| *s).collect::<Vec<_>>();
        let mut a = Node::new(&seeds.iter().zip(&a_held).map(|(s, n)| (*s, *n)).collect::<Vec<_>>(), &pick(&a_wants));
        let mut b = Node::new(&seeds.iter().zip(&b_held).map(|(s, n)| (*s, *n)).collect::<Vec<_>>(), &pick(&b_wants));
        a.memory.received = seeds.iter().zip(&stale).map(|(s, n)| (feed(*s), *n)).collect();
        b.memory.sent = a.memory.received.clone();
        if refuse > 0 { b.refuse.insert(feed(refuse)); }
        run(&u, &mut a, &mut b).unwrap();
        for s in seeds {
            let f = feed(s);
            if a.wants.contains(&f) && !b.refuse.contains(&f) {
                prop_assert!(a.seq(&f) >= b_held[(s - 1) as usize], "a lacks feed {}", s);
            }
            if b.wants.contains(&f) {
                prop_assert!(b.seq(&f) >= a_held[(s - 1) as usize], "b lacks feed {}", s);
            }
            if !a.wants.contains(&f) {
                prop_assert!(!a.received.contains(&f));
            }
        }
    }
}
