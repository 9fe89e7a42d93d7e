//! Tampered entries are refused through the real ingest path, each with its own error, and the
//! store is left exactly as it was.

use kith::feed::{next_entry, now_ms, Content, Entry, FeedError, FeedHead, Header};
use kith::identity::Identity;
use kith::ingest::{run_batch, Op, OpOutcome};
use kith::limits::PAYLOAD_BYTES_MAX;
use kith::store::Store;

struct Feed {
    author: Identity,
    entries: Vec<(Entry, Vec<u8>, Header)>,
}

fn feed(seed: u8, n: usize) -> Feed {
    let author = Identity::from_seed([seed; 32]);
    let mut head: Option<FeedHead> = None;
    let mut entries = Vec::new();
    for i in 0..n {
        let content = Content::Post {
            text: format!("post {i}"),
            reply_to: None,
        };
        let made = next_entry(&author, head.as_ref(), &content, now_ms()).unwrap();
        head = Some(FeedHead {
            seq: made.2.seq,
            id: made.0.id(),
            timestamp_ms: made.2.timestamp_ms,
        });
        entries.push(made);
    }
    Feed { author, entries }
}

fn remote(entry: &Entry, payload: &[u8]) -> Op {
    Op::Remote {
        entry: entry.clone(),
        payload: Some(payload.to_vec()),
        feed: None,
    }
}

fn ingest(store: &Store, ops: Vec<Op>) -> Vec<Result<OpOutcome, FeedError>> {
    run_batch(store, &Identity::from_seed([99; 32]), ops, now_ms()).unwrap()
}

fn snapshot(store: &Store, f: &Feed) -> (Option<FeedHead>, usize) {
    let r = store.read().unwrap();
    (
        r.head(&f.author.id()).unwrap(),
        r.feed(&f.author.id(), 1000).unwrap().len(),
    )
}

/// A store holding the first two entries of a three-entry feed.
fn setup() -> (tempfile::TempDir, Store, Feed) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let f = feed(1, 3);
    let ops = f.entries[..2]
        .iter()
        .map(|(e, p, _)| remote(e, p))
        .collect();
    assert!(ingest(&store, ops)
        .iter()
        .all(|o| matches!(o, Ok(OpOutcome::Appended { .. }))));
    (dir, store, f)
}

fn resign(author: &Identity, header: &Header) -> Entry {
    Entry::sign(author, header).unwrap()
}

#[test]
fn a_valid_chain_is_stored_and_verifies() {
    let (_dir, store, f) = setup();
    let (e, p, _) = &f.entries[2];
    assert!(matches!(
        ingest(&store, vec![remote(e, p)])[0],
        Ok(OpOutcome::Appended { seq: 3, .. })
    ));
    assert_eq!(
        store
            .read()
            .unwrap()
            .verify_feed(&f.author.id(), now_ms())
            .unwrap(),
        3
    );
    // Replaying an entry already held is a duplicate, not an error.
    assert!(matches!(
        ingest(&store, vec![remote(e, p)])[0],
        Ok(OpOutcome::Duplicate(_))
    ));
}

#[test]
fn each_tampering_gets_its_own_error_and_leaves_the_store_unchanged() {
    let (_dir, store, f) = setup();
    let before = snapshot(&store, &f);
    let (entry, payload, header) = f.entries[2].clone();

    let mut flipped = entry.clone();
    flipped.0[0] ^= 1;
    let mut changed = payload.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    let wrong_seq = resign(
        &f.author,
        &Header {
            seq: 5,
            ..header.clone()
        },
    );
    let wrong_link = resign(
        &f.author,
        &Header {
            prev: Some(f.entries[0].0.id()),
            ..header.clone()
        },
    );
    let oversize = resign(
        &f.author,
        &Header {
            payload_len: PAYLOAD_BYTES_MAX as u32 + 1,
            ..header.clone()
        },
    );
    let other_payload = Content::Post {
        text: "a different second post".into(),
        reply_to: None,
    }
    .encode()
    .unwrap();
    let fork = resign(
        &f.author,
        &Header {
            seq: 2,
            prev: Some(f.entries[0].0.id()),
            payload_hash: kith::feed::hash_payload(&other_payload),
            payload_len: other_payload.len() as u32,
            ..header.clone()
        },
    );

    type Case = (&'static str, Op, fn(&FeedError) -> bool);
    let cases: Vec<Case> = vec![
        ("flipped signature bit", remote(&flipped, &payload), |e| {
            matches!(e, FeedError::BadSignature { .. })
        }),
        ("changed payload", remote(&entry, &changed), |e| {
            matches!(e, FeedError::PayloadHashMismatch)
        }),
        ("wrong seq", remote(&wrong_seq, &payload), |e| {
            matches!(
                e,
                FeedError::WrongSequence {
                    expected: 3,
                    got: 5,
                    ..
                }
            )
        }),
        ("wrong backlink", remote(&wrong_link, &payload), |e| {
            matches!(e, FeedError::WrongBacklink { seq: 3, .. })
        }),
        ("oversize", remote(&oversize, &payload), |e| {
            matches!(e, FeedError::PayloadTooLarge { .. })
        }),
        ("fork", remote(&fork, &other_payload), |e| {
            matches!(e, FeedError::Fork { seq: 2, .. })
        }),
    ];
    for (name, op, expected) in cases {
        let outcome = ingest(&store, vec![op]).remove(0);
        match outcome {
            Err(e) => assert!(expected(&e), "{name}: wrong error {e:?}"),
            Ok(o) => panic!("{name}: accepted as {o:?}"),
        }
        assert_eq!(snapshot(&store, &f), before, "{name}: store changed");
    }
    // The first entry at seq 2 is the one kept.
    let kept = store
        .read()
        .unwrap()
        .entry(&f.author.id(), 2)
        .unwrap()
        .unwrap();
    assert_eq!(kept.id(), f.entries[1].0.id());
}

#[test]
fn one_forged_entry_does_not_sink_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let good = feed(2, 40);
    let bad = feed(3, 1);
    let mut forged = bad.entries[0].0.clone();
    forged.0[10] ^= 0x40;
    let mut ops: Vec<Op> = good.entries.iter().map(|(e, p, _)| remote(e, p)).collect();
    ops.insert(17, remote(&forged, &bad.entries[0].1));
    let outcomes = ingest(&store, ops);
    assert!(matches!(outcomes[17], Err(FeedError::BadSignature { .. })));
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(OpOutcome::Appended { .. })))
            .count(),
        40
    );
    assert_eq!(
        store
            .read()
            .unwrap()
            .verify_feed(&good.author.id(), now_ms())
            .unwrap(),
        40
    );
    assert_eq!(store.read().unwrap().head(&bad.author.id()).unwrap(), None);
}

#[test]
fn wrong_author_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let f = feed(4, 1);
    let (e, p, _) = &f.entries[0];
    let other = Identity::from_seed([5; 32]).id();
    let op = Op::Remote {
        entry: e.clone(),
        payload: Some(p.clone()),
        feed: Some(other),
    };
    assert!(matches!(
        ingest(&store, vec![op])[0],
        Err(FeedError::WrongAuthor { .. })
    ));
    let garbage = Op::Remote {
        entry: Entry(vec![7; 90]),
        payload: None,
        feed: None,
    };
    assert!(matches!(
        ingest(&store, vec![garbage])[0],
        Err(FeedError::HeaderMalformed(_))
    ));
    let huge = Op::Remote {
        entry: Entry(vec![0; 10_000]),
        payload: None,
        feed: None,
    };
    assert!(matches!(
        ingest(&store, vec![huge])[0],
        Err(FeedError::EntryTooLarge { .. })
    ));
}

#[test]
fn a_second_open_of_the_data_directory_names_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).err().unwrap();
    assert!(err.to_string().contains("kith.lock"), "{err}");
}
