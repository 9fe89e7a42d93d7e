//! Property-based fuzzing of every decoder that reads bytes from another process: wire frames
//! (`net::frame`), the hello (`net::hello`), feed entries and their content (`feed`), presence
//! frames (`presence::message`), switchboard and node messages (`wire::switchboard`) and the
//! control protocol (`wire::control`). Each decoder gets random bytes and mutated valid inputs
//! (bit flips, byte overwrites, truncation, insertion, duplicated spans, rewritten length
//! prefixes); the properties are: no panic, every failure is a named error, and bounded memory:
//! the largest single allocation made while decoding one input is measured by a counting
//! allocator and must stay under [`ALLOC_MAX`] (serde's cautious preallocation cap is 1 MiB, so
//! this catches a length prefix trusted for preallocation), and whatever decodes re-encodes no
//! larger than the frame bound it came through.
//!
//! `net_frame.rs` already covers the frame decoder's stream properties (garbage, splits,
//! truncation, oversize); this file adds mutated valid frame streams and the allocation bound.
//!
//! Case count: 2,000 per property by default (under a second of run time on 2 cores, debug build). Run
//! longer with `KITH_FUZZ_CASES`, e.g.
//! `KITH_FUZZ_CASES=200000 cargo test --release -p kith --test fuzz_decoders`.
//! A failure prints the shrunk input; nothing is persisted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use proptest::prelude::*;

use kith::feed::{check_entry, hash_payload, Content, ContentType, Entry, Header, MsgId};
use kith::identity::{FeedId, Identity};
use kith::limits::{FRAME_BYTES_MAX, MAX_PRESENCE_FRAME_BYTES};
use kith::net::frame::{self, FrameDecoder};
use kith::net::hello::{self, Capabilities, GoodbyeReason, Hello, NodeRole, PROTOCOL_VERSION};
use kith::presence::message::Envelope;
use kith::presence::shard::Action;
use kith::presence::{Options, Owner, ReplicaRef, Shard};
use kith::wire::control::Request;
use kith::wire::switchboard::{
    ClientMsg, IntroAnswer, JoinRefusal, NodeMsg, NodePacket, PeerMeta, SealedStatus, ServerMsg,
    TrackedMeta,
};

// ----- a counting allocator: the largest single allocation on this thread -------------------

/// Largest single allocation allowed while decoding one input.
const ALLOC_MAX: usize = 64 * 1024;

struct Counting;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the thread-local is a
// const-initialised Cell without a destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the largest single allocation it made.
fn peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let out = f();
    (out, PEAK.with(Cell::get))
}

// ----- configuration and mutation -----------------------------------------------------------

fn cases() -> u32 {
    std::env::var("KITH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One mutation of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
    /// Overwrite four bytes with a big-endian u32 (a length prefix, or a varint's bytes).
    Length(usize, u32),
    /// Overwrite with a varint (postcard's length and tag encoding).
    Varint(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (
            any::<usize>(),
            prop_oneof![Just(u32::MAX), Just(0), any::<u32>()]
        )
            .prop_map(|(i, n)| Mutation::Length(i, n)),
        (
            any::<usize>(),
            prop_oneof![Just(u64::MAX), Just(1 << 32), any::<u64>()]
        )
            .prop_map(|(i, n)| Mutation::Varint(i, n)),
    ]
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % len };
        match m {
            Mutation::Flip(i, b) if len > 0 => bytes[at(*i)] ^= b,
            Mutation::Set(i, b) if len > 0 => bytes[at(*i)] = *b,
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            Mutation::Insert(i, v) => {
                let i = i % (len + 1);
                bytes.splice(i..i, v.iter().copied());
            }
            Mutation::Duplicate(i, n) if len > 0 => {
                let i = at(*i);
                let span: Vec<u8> = bytes[i..(i + n).min(len)].to_vec();
                bytes.splice(i..i, span);
            }
            Mutation::Length(i, n) if len > 0 => {
                let i = at(*i);
                for (k, b) in n.to_be_bytes().iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(i + k) {
                        *slot = *b;
                    }
                }
            }
            Mutation::Varint(i, n) => {
                let i = i % (len + 1);
                let v = varint(*n);
                let end = (i + v.len()).min(len);
                bytes.splice(i..end, v);
            }
            _ => {}
        }
    }
    bytes
}

/// A valid sample from `corpus`, mutated.
fn mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(corpus),
        proptest::collection::vec(mutation(), 1..6),
    )
        .prop_map(|(b, ms)| mutate(b, &ms))
}

fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..1_500)
}

/// Random bytes or a mutated valid input.
fn input(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![1 => random_bytes(), 3 => mutated(corpus)]
}

// ----- valid corpora ------------------------------------------------------------------------

fn id(n: u8) -> FeedId {
    Identity::from_seed([n; 32]).id()
}

fn addr() -> SocketAddr {
    "203.0.113.7:4242".parse().unwrap()
}

fn client_msgs() -> Vec<ClientMsg> {
    vec![
        ClientMsg::Join {
            invite: Some("x".repeat(40)),
        },
        ClientMsg::Join { invite: None },
        ClientMsg::SetStatus {
            status: Some(SealedStatus {
                epoch: 7,
                nonce: [3; 24],
                sealed: vec![9; 197],
            }),
        },
        ClientMsg::SetStatus { status: None },
        ClientMsg::Watch {
            ids: (0..20).map(id).collect(),
        },
        ClientMsg::Introduce { to: id(3) },
        ClientMsg::IntroAnswer {
            from: id(4),
            answer: IntroAnswer::Direct,
        },
        ClientMsg::IntroAnswer {
            from: id(4),
            answer: IntroAnswer::RelayOnly,
        },
        ClientMsg::IntroAnswer {
            from: id(4),
            answer: IntroAnswer::Refuse,
        },
        ClientMsg::VisibleTo {
            ids: Some((0..20).map(id).collect()),
        },
        ClientMsg::VisibleTo { ids: None },
    ]
}

fn server_msgs() -> Vec<ServerMsg> {
    let meta = PeerMeta {
        since_ms: 1_700_000_000_000,
        node: id(9).to_string(),
        status: Some(SealedStatus {
            epoch: 1,
            nonce: [0; 24],
            sealed: b"away".to_vec(),
        }),
    };
    vec![
        ServerMsg::Welcome { observed: addr() },
        ServerMsg::Refused {
            reason: "no".into(),
        },
        ServerMsg::IntroRequest { from: id(1) },
        ServerMsg::Introduced {
            peer: id(2),
            observed: Some(addr()),
        },
        ServerMsg::Introduced {
            peer: id(2),
            observed: None,
        },
        ServerMsg::IntroRefused {
            to: id(3),
            reason: "busy".into(),
            declined: true,
        },
        ServerMsg::PunchTo {
            peer: id(2),
            observed: "[2001:db8::1]:9".parse().unwrap(),
        },
        ServerMsg::Presence {
            id: id(4),
            online: Some(meta),
        },
        ServerMsg::Presence {
            id: id(5),
            online: None,
        },
        ServerMsg::JoinRefused {
            why: JoinRefusal::Other,
            reason: "later".into(),
        },
    ]
}

fn node_msgs() -> Vec<NodeMsg> {
    vec![
        NodeMsg::Introduce {
            from: id(1),
            to: id(2),
            observed: addr(),
        },
        NodeMsg::Answer {
            callee: id(2),
            caller: id(1),
            result: Ok(Some(addr())),
            declined: false,
        },
        NodeMsg::Answer {
            callee: id(2),
            caller: id(1),
            result: Ok(None),
            declined: false,
        },
        NodeMsg::Answer {
            callee: id(2),
            caller: id(1),
            result: Err("refused".into()),
            declined: true,
        },
        NodeMsg::Packets(
            (0..8)
                .map(|i| NodePacket {
                    to: id(i),
                    frame: vec![i; 100],
                })
                .collect(),
        ),
    ]
}

fn body<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).unwrap()
}

fn wire_corpus() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = client_msgs().iter().map(body).collect();
    out.extend(server_msgs().iter().map(body));
    out.extend(node_msgs().iter().map(body));
    out
}

fn exchange(from: &mut Shard, to: &mut Shard, name: &str, now: u64, frames: &mut Vec<Vec<u8>>) {
    for act in from.drain_actions() {
        if let Action::Broadcast(env) | Action::SendTo(_, env) = act {
            frames.push(env.encode().unwrap());
            to.receive(&kith::presence::ReplicaName::new(name), env, now);
        }
    }
}

/// Valid presence frames, taken from two real shards exchanging heartbeats and transfers.
fn presence_corpus() -> Vec<Vec<u8>> {
    let opts = Options::with_periods(100, 2, 1_500);
    let mut a = Shard::new(ReplicaRef::new("a", 1), 0, opts.clone(), 1, 0).unwrap();
    let mut b = Shard::new(ReplicaRef::new("b", 2), 0, opts, 2, 0).unwrap();
    for i in 0..5 {
        a.track(Owner(i), "room", &format!("k{i}"), vec![i as u8; 8])
            .unwrap();
        b.track(Owner(i), "lobby", &format!("j{i}"), vec![])
            .unwrap();
    }
    a.untrack(Owner(0), "room", "k0");
    let mut frames = Vec::new();
    let mut now = 0;
    for _ in 0..6 {
        now += 100;
        a.tick(now);
        b.tick(now);
        exchange(&mut a, &mut b, "a", now, &mut frames);
        exchange(&mut b, &mut a, "b", now, &mut frames);
    }
    a.graceful_permdown();
    for act in a.drain_actions() {
        if let Action::Broadcast(env) = act {
            frames.push(env.encode().unwrap());
        }
    }
    assert!(frames.len() > 4);
    frames
}

fn signed_entries() -> Vec<(Entry, Vec<u8>)> {
    let me = Identity::from_seed([7; 32]);
    let contents = [
        Content::Post {
            text: "hello".into(),
            reply_to: Some(MsgId([1; 32])),
        },
        Content::Follow { id: id(2) },
        Content::Unfollow { id: id(3) },
        Content::About {
            id: me.id(),
            name: Some("me".into()),
            description: Some("d".repeat(200)),
        },
    ];
    let mut prev = None;
    let mut out = Vec::new();
    for (i, c) in contents.iter().enumerate() {
        let payload = c.encode().unwrap();
        let header = Header {
            version: kith::feed::FORMAT_VERSION,
            author: me.id(),
            seq: i as u64 + 1,
            prev,
            timestamp_ms: 1_700_000_000_000 + i as u64,
            content_type: c.content_type(),
            payload_hash: hash_payload(&payload),
            payload_len: payload.len() as u32,
        };
        let entry = Entry::sign(&me, &header).unwrap();
        prev = Some(entry.id());
        out.push((entry, payload));
    }
    out
}

fn control_corpus() -> Vec<Vec<u8>> {
    [
        r#"{"cmd":"whoami"}"#,
        r#"{"cmd":"post","text":"hi","reply_to":null}"#,
        r#"{"cmd":"feed","id":null,"limit":20}"#,
        r#"{"cmd":"timeline","limit":5}"#,
        r#"{"cmd":"post","text":"\u00e9\ud83d\ude00 nested [[[{}]]]","reply_to":"abc"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

// ----- properties -----------------------------------------------------------------------------

fn bounded(peak: usize) -> Result<(), TestCaseError> {
    prop_assert!(
        peak <= ALLOC_MAX,
        "one allocation of {peak} bytes while decoding"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Mutated valid frame streams: frames decode one by one or fail with a named error, and
    /// the decoder's buffer stays within what it was given and the frame bound.
    #[test]
    fn frame_streams(bytes in input({
        let mut stream = Vec::new();
        for m in client_msgs() {
            stream.extend(frame::encode(&m, FRAME_BYTES_MAX).unwrap());
        }
        vec![stream, frame::encode(&server_msgs(), FRAME_BYTES_MAX).unwrap()]
    }), cut in any::<prop::sample::Index>()) {
        let ((), p) = peak(|| {
            let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
            let at = cut.index(bytes.len() + 1);
            for piece in [&bytes[..at], &bytes[at..]] {
                let mut input = piece;
                while !input.is_empty() {
                    match decoder.decode_raw(&mut input) {
                        Ok(Some(body)) => {
                            assert!(body.len() <= bytes.len());
                            let _ = frame::decode_body::<ClientMsg>(&body);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = (e.to_string(), e.close_code());
                            return;
                        }
                    }
                    // Amortised growth of what was received, never the claimed length.
                    assert!(decoder.buffered_capacity() <= 2 * bytes.len() + 8);
                }
            }
            let _ = decoder.finish();
        });
        bounded(p)?;
    }

    /// The hello: random and mutated hello and goodbye bodies.
    #[test]
    fn hello_bodies(bytes in input({
        let mut out = Vec::new();
        for role in [NodeRole::Daemon, NodeRole::Switchboard] {
            let h = Hello::new(role, Capabilities::NONE);
            out.push(hello::hello_frame(&h).unwrap()[4..].to_vec());
        }
        out.push(hello::goodbye_frame(PROTOCOL_VERSION, GoodbyeReason::VersionMismatch).unwrap()[4..].to_vec());
        out
    })) {
        prop_assert!(bytes.len() <= 1_500);
        let (r, p) = peak(|| hello::parse(PROTOCOL_VERSION, &bytes));
        bounded(p)?;
        if let Err(e) = r {
            let _ = (e.to_string(), e.close_code());
        }
        let (c, p) = peak(|| hello::conclude(&Hello::new(NodeRole::Daemon, Capabilities::NONE), &bytes));
        bounded(p)?;
        let _ = c.map_err(|e| e.to_string());
    }

    /// Entries: random and mutated signed entries (and payloads) through the full structural
    /// check and the signature check.
    #[test]
    fn entries(bytes in input(signed_entries().into_iter().map(|(e, _)| e.0).collect()),
               payload in input(signed_entries().into_iter().map(|(_, p)| p).collect()),
               with_payload in any::<bool>()) {
        let entry = Entry(bytes.clone());
        let (r, p) = peak(|| {
            let _ = entry.header();
            check_entry(entry, with_payload.then(|| payload.clone()), None, 1_700_000_100_000)
        });
        bounded(p)?;
        match r {
            Ok(checked) => {
                prop_assert!(checked.header.payload_len as usize <= kith::limits::PAYLOAD_BYTES_MAX);
                let (v, p) = peak(|| checked.verify_signature());
                bounded(p)?;
                let _ = v.map_err(|e| e.to_string());
                if let Some(c) = checked.content() {
                    let _ = c.map_err(|e| e.to_string());
                }
            }
            Err(e) => { let _ = e.to_string(); }
        }
    }

    /// Content payloads: random and mutated; what decodes validates or fails by name, and is
    /// no larger re-encoded than the payload it came from.
    #[test]
    fn contents(bytes in input(signed_entries().into_iter().map(|(_, p)| p).collect())) {
        let (r, p) = peak(|| Content::decode(&bytes));
        bounded(p)?;
        if let Ok(c) = r {
            let _ = c.validate().map_err(|e| e.to_string());
            prop_assert!(body(&c).len() <= bytes.len());
            let _: ContentType = c.content_type();
        }
    }

    /// Presence frames: random and mutated frames of real shards; a decoded frame is within
    /// the presence frame bound and is handled by a shard without panicking.
    #[test]
    fn presence_frames(bytes in input(presence_corpus())) {
        let (r, p) = peak(|| Envelope::decode(&bytes));
        bounded(p)?;
        if let Ok(env) = r {
            prop_assert!(body(&env).len() <= MAX_PRESENCE_FRAME_BYTES);
            let from = env.message.from().name.clone();
            let mut shard = Shard::new(ReplicaRef::new("z", 9), env.shard, Options {
                shard_count: env.shard_count.max(1),
                ..Options::with_periods(100, 2, 1_500)
            }, 0, 0);
            if let Ok(s) = shard.as_mut() {
                s.receive(&from, env, 10);
                s.tick(10_000);
                let _ = s.drain_actions();
            }
        }
    }

    /// Switchboard and node messages: every message type the control stream carries.
    #[test]
    fn switchboard_messages(bytes in input(wire_corpus())) {
        let (_, p) = peak(|| {
            if let Ok(m) = frame::decode_body::<ClientMsg>(&bytes) {
                assert!(body(&m).len() <= bytes.len());
            }
            if let Ok(m) = frame::decode_body::<ServerMsg>(&bytes) {
                assert!(body(&m).len() <= bytes.len());
            }
            if let Ok(m) = frame::decode_body::<NodeMsg>(&bytes) {
                assert!(body(&m).len() <= bytes.len());
            }
            let _ = TrackedMeta::decode(&bytes);
        });
        bounded(p)?;
    }

    /// The control protocol: random and mutated request lines (as UTF-8, lossily, as the
    /// server only parses valid UTF-8), including deeply nested JSON.
    #[test]
    fn control_requests(bytes in input(control_corpus()), depth in 0usize..300) {
        let text = String::from_utf8_lossy(&bytes);
        let nested = format!("{}{}{}", "[".repeat(depth), text, "]".repeat(depth));
        let (_, p) = peak(|| {
            for line in [text.as_ref(), nested.as_str()] {
                match serde_json::from_str::<Request>(line) {
                    Ok(r) => { let _ = serde_json::to_string(&r); }
                    Err(e) => { let _ = e.to_string(); }
                }
            }
        });
        prop_assert!(p <= ALLOC_MAX.max(8 * nested.len()), "one allocation of {p} bytes");
    }
}

/// The corpora are valid: each sample decodes unmutated (else the mutations fuzz nothing).
#[test]
fn corpora_decode() {
    for b in wire_corpus() {
        assert!(
            frame::decode_body::<ClientMsg>(&b).is_ok()
                || frame::decode_body::<ServerMsg>(&b).is_ok()
                || frame::decode_body::<NodeMsg>(&b).is_ok()
        );
    }
    for b in presence_corpus() {
        Envelope::decode(&b).unwrap();
    }
    for (e, p) in signed_entries() {
        let c = check_entry(e, Some(p), None, 1_700_000_100_000).unwrap();
        c.verify_signature().unwrap();
        c.content().unwrap().unwrap();
    }
    for b in control_corpus() {
        serde_json::from_slice::<Request>(&b).unwrap();
    }
}

/// The allocation probe sees allocations (else the bound checks nothing).
#[test]
fn the_probe_measures() {
    let (v, p) = peak(|| vec![0u8; 100_000]);
    assert_eq!(v.len(), 100_000);
    assert!(p >= 100_000);
    // A length prefix claiming 2^32 elements in a tiny body must not be trusted for
    // preallocation.
    let mut claim = vec![3u8]; // ClientMsg::Watch
    claim.extend(varint(u64::from(u32::MAX)));
    let (r, p) = peak(|| frame::decode_body::<ClientMsg>(&claim));
    assert!(r.is_err());
    assert!(p <= ALLOC_MAX, "{p}");
}

// ----- private messages and deletion (issue 15) -----------------------------------------------

/// A sealed private message from `author` to `reader` (and a stranger's message beside it).
fn sealed_corpus(author: &Identity, reader: &Identity) -> Vec<Vec<u8>> {
    let mut rng = rand::thread_rng();
    let other = Identity::from_seed([9; 32]).id();
    vec![
        kith::feed::private::seal(author, &[reader.id()], "hello there", &mut rng).unwrap(),
        kith::feed::private::seal(author, &[reader.id(), other], &"x".repeat(300), &mut rng)
            .unwrap(),
        kith::feed::private::seal(author, &[other], "not for the reader", &mut rng).unwrap(),
    ]
}

/// Signed entries of one feed: a post and the delete entry that takes it back, as a tombstone.
fn tombstone_corpus() -> (Entry, Vec<Vec<u8>>) {
    let me = Identity::from_seed([7; 32]);
    let post = Content::Post {
        text: "regret".into(),
        reply_to: None,
    };
    let (e1, _, h1) = kith::feed::next_entry(&me, None, &post, 1_700_000_000_000).unwrap();
    let head = kith::feed::FeedHead {
        seq: 1,
        id: e1.id(),
        timestamp_ms: h1.timestamp_ms,
    };
    let delete = Content::Delete { msg: e1.id() };
    let (d, dp, _) = kith::feed::next_entry(&me, Some(&head), &delete, 1_700_000_000_001).unwrap();
    let tomb = kith::feed::deletion::Tombstone {
        entry: d,
        payload: dp,
    };
    let wire = kith::replicate::Msg::Entries {
        feed: me.id(),
        entries: vec![kith::replicate::WireEntry {
            entry: e1.clone(),
            payload: None,
            tombstone: Some(tomb.clone()),
        }],
    };
    (e1, vec![body(&tomb), body(&wire)])
}

proptest! {
    #![proptest_config(config())]

    /// Sealed private messages, random and mutated, opened by a recipient: a message for the
    /// reader, one not for it, or a named error (never a panic), in bounded memory.
    #[test]
    fn sealed_private_messages(bytes in input(sealed_corpus(
        &Identity::from_seed([7; 32]),
        &Identity::from_seed([8; 32]),
    ))) {
        let reader = Identity::from_seed([8; 32]);
        let author = Identity::from_seed([7; 32]).id();
        let (r, p) = peak(|| kith::feed::private::open(&reader, &author, &bytes));
        bounded(p)?;
        match r {
            Ok(Some(body)) => {
                prop_assert!(body.recipients.len() <= kith::limits::DM_RECIPIENTS_MAX);
                prop_assert!(body.text.len() <= kith::limits::DM_TEXT_BYTES_MAX);
            }
            Ok(None) => {}
            Err(e) => { let _ = e.to_string(); }
        }
        let content = Content::Private { sealed: bytes.clone() };
        let _ = content.validate().map_err(|e| e.to_string());
    }

    /// Tombstones and replication frames carrying them, random and mutated: they decode or
    /// fail by name, and a decoded tombstone covers the deleted entry only if it checks.
    #[test]
    fn tombstones_and_entry_frames(bytes in input(tombstone_corpus().1)) {
        let (target, _) = tombstone_corpus();
        let (r, p) = peak(|| postcard::from_bytes::<kith::feed::deletion::Tombstone>(&bytes));
        bounded(p)?;
        if let Ok(tomb) = r {
            let checked = check_entry(target, None, None, 1_700_000_100_000).unwrap();
            let (v, p) = peak(|| kith::feed::deletion::check_tombstone(&checked, &tomb, 1_700_000_100_000));
            bounded(p)?;
            let _ = v.map_err(|e| e.to_string());
        }
        let (r, p) = peak(|| frame::decode_body::<kith::replicate::Msg>(&bytes));
        bounded(p)?;
        if let Ok(msg) = r {
            prop_assert!(body(&msg).len() <= FRAME_BYTES_MAX as usize);
        }
    }
}

/// The private-message and tombstone corpora are valid (else the mutations fuzz nothing).
#[test]
fn private_corpora_decode() {
    let (reader, author) = (Identity::from_seed([8; 32]), Identity::from_seed([7; 32]));
    let sealed = sealed_corpus(&author, &reader);
    assert!(kith::feed::private::open(&reader, &author.id(), &sealed[0])
        .unwrap()
        .is_some());
    assert!(kith::feed::private::open(&reader, &author.id(), &sealed[2])
        .unwrap()
        .is_none());
    let (target, corpus) = tombstone_corpus();
    let tomb: kith::feed::deletion::Tombstone = postcard::from_bytes(&corpus[0]).unwrap();
    let checked = check_entry(target, None, None, 1_700_000_100_000).unwrap();
    kith::feed::deletion::check_tombstone(&checked, &tomb, 1_700_000_100_000).unwrap();
    frame::decode_body::<kith::replicate::Msg>(&corpus[1]).unwrap();
}

// ----- blobs (issue 15, item 2) -----------------------------------------------------------------

/// The blob a stream property fetches (40,000 bytes: three chunk groups and two parents).
fn blob_data() -> Vec<u8> {
    (0..40_000u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect()
}

fn blob_corpus() -> Vec<Vec<u8>> {
    use kith::blob::verify::VerifyError;
    use kith::blob::wire::{BlobReply, BlobVerdict, BlobWant, FetchRefusal, ServeRefusal};
    use kith::blob::{BlobId, BlobRef};
    let blob = BlobId::of(b"blob");
    let attached = Content::Attached {
        text: "a photo".into(),
        root: Some(MsgId([1; 32])),
        branch: Some(MsgId([2; 32])),
        mentions: vec![id(3)],
        blobs: vec![BlobRef {
            id: blob,
            size: 1234,
            name: Some("cat.png".into()),
        }],
    };
    vec![
        body(&BlobWant {
            id: blob,
            max_bytes: 5 << 20,
        }),
        body(&BlobReply::Blob { size: 40_000 }),
        body(&BlobReply::Refused(ServeRefusal::TooLarge {
            size: 9,
            max: 8,
        })),
        body(&BlobVerdict::Stored),
        body(&BlobVerdict::Refused(FetchRefusal::Corrupt(
            VerifyError::ChunkMismatch { offset: 16_384 },
        ))),
        attached.encode().unwrap(),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// The blob exchange's frames (want, reply, verdict) and attached-post payloads, random and
    /// mutated: they decode or fail by name, in bounded memory; a decoded post validates or
    /// fails by name.
    #[test]
    fn blob_messages(bytes in input(blob_corpus())) {
        use kith::blob::wire::{BlobReply, BlobVerdict, BlobWant};
        let (r, p) = peak(|| frame::decode_body::<BlobWant>(&bytes));
        bounded(p)?;
        let _ = r.map_err(|e| e.to_string());
        let (r, p) = peak(|| frame::decode_body::<BlobReply>(&bytes));
        bounded(p)?;
        let _ = r.map_err(|e| e.to_string());
        let (r, p) = peak(|| frame::decode_body::<BlobVerdict>(&bytes));
        bounded(p)?;
        let _ = r.map_err(|e| e.to_string());
        let (r, p) = peak(|| Content::decode(&bytes));
        bounded(p)?;
        if let Ok(c) = r {
            let _ = c.validate().map_err(|e| e.to_string());
        }
    }

    /// Bao streams of one blob, mutated and split anywhere: the verifier never panics, holds
    /// at most one chunk group at a time, yields only the blob's own bytes at their offsets, and
    /// accepts the stream whole only if it is the blob's exact encoding.
    #[test]
    fn blob_streams(
        bytes in mutated(vec![kith::blob::verify::encode(&blob_data()).unwrap().1]),
        split in 1usize..20_000,
    ) {
        use kith::blob::verify::{encode, Verifier};
        let data = blob_data();
        let (id, stream) = encode(&data).unwrap();
        let mut verifier = Verifier::new(id, data.len() as u64);
        let mut out = Vec::new();
        for piece in bytes.chunks(split) {
            let (r, p) = peak(|| verifier.push(piece, &mut out));
            bounded(p)?;
            if r.is_err() {
                break;
            }
        }
        let whole = verifier.finish();
        for v in &out {
            let at = v.offset as usize;
            prop_assert_eq!(&v.data[..], &data[at..at + v.data.len()]);
        }
        prop_assert_eq!(whole.is_ok(), bytes == stream);
    }
}

/// The blob corpus is valid (else the mutations fuzz nothing).
#[test]
fn blob_corpus_decodes() {
    use kith::blob::wire::{BlobReply, BlobVerdict, BlobWant};
    let corpus = blob_corpus();
    frame::decode_body::<BlobWant>(&corpus[0]).unwrap();
    frame::decode_body::<BlobReply>(&corpus[1]).unwrap();
    frame::decode_body::<BlobVerdict>(&corpus[4]).unwrap();
    Content::decode(&corpus[5]).unwrap().validate().unwrap();
}

/// A found case: a node message claiming 1,171 relayed packets in three bytes made serde
/// reserve 64 KiB from the length prefix alone (lists from other processes now grow only with
/// the elements read).
#[test]
fn a_list_length_prefix_reserves_nothing_by_itself() {
    let mut bytes = vec![2, 147, 9];
    bytes.extend([0u8; 40]);
    let (_, p) = peak(|| {
        let _ = frame::decode_body::<NodeMsg>(&bytes);
        let _ = frame::decode_body::<ClientMsg>(&bytes);
    });
    assert!(p <= 4 * 1024, "one allocation of {p} bytes");
}
