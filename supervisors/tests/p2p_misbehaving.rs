//! Misbehaving peers against a real `kith` daemon: a fake peer built from the library's net
//! layer sends a forged entry (or a feed nobody asked for); the daemon refuses it, closes that
//! connection with the matching close code, and its other peers go on replicating.

mod support;

use std::time::Duration;

use kith::feed::{next_entry, now_ms, Content, Entry, FeedHead};
use kith::identity::{FeedId, Identity};
use kith::net::close::peer_close_code;
use kith::net::hello::{dial_hello, Capabilities, Capability, Greeted, Hello, NodeRole};
use kith::net::{stream, CloseCode, PeerEndpoint};
use kith::replicate::{digest, Clock, Msg, Note, WireEntry};
use kith::testing::eventually_blocking;
use support::{connection, head_seq, kith_json, listen_addr, Daemon, Home, POLL};

const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];
const SOON: Duration = Duration::from_secs(20);

/// A fake peer: an identity, its endpoint, and a feed of `len` signed posts.
struct Fake {
    identity: Identity,
    endpoint: PeerEndpoint,
    feed: Vec<(Entry, Vec<u8>)>,
}

impl Fake {
    fn new(len: usize) -> Fake {
        let identity = Identity::generate();
        let endpoint =
            PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), identity.signing_key()).unwrap();
        let mut head: Option<FeedHead> = None;
        let mut feed = Vec::new();
        for i in 0..len {
            let content = Content::Post {
                text: format!("fake post {i}"),
                reply_to: None,
            };
            let (entry, payload, header) =
                next_entry(&identity, head.as_ref(), &content, now_ms()).unwrap();
            head = Some(FeedHead {
                seq: header.seq,
                id: entry.id(),
                timestamp_ms: header.timestamp_ms,
            });
            feed.push((entry, payload));
        }
        Fake {
            identity,
            endpoint,
            feed,
        }
    }

    fn id(&self) -> FeedId {
        self.identity.id()
    }

    /// Dial the daemon, say hello and send our clock (we want our own feed, holding `len`).
    async fn connect(&self, daemon_id: &str, addr: &str) -> (quinn::Connection, Greeted) {
        let key = daemon_id
            .parse::<FeedId>()
            .unwrap()
            .verifying_key()
            .unwrap();
        let (conn, _) = self
            .endpoint
            .dial(addr.parse().unwrap(), key)
            .await
            .unwrap();
        let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Replicate]));
        let mut greeted = dial_hello(&conn, &ours).await.unwrap();
        let clock: Clock = [(self.id(), self.feed.len() as u64)].into_iter().collect();
        let notes = clock
            .iter()
            .map(|(feed, seq)| Note {
                feed: *feed,
                seq: *seq,
                want: true,
            })
            .collect();
        stream::write_frame(
            &mut greeted.send,
            &Msg::Clock {
                full: true,
                notes,
                digest: digest(&clock),
            },
        )
        .await
        .unwrap();
        (conn, greeted)
    }
}

fn wire(entry: &Entry, payload: &[u8]) -> WireEntry {
    WireEntry {
        entry: entry.clone(),
        payload: Some(payload.to_vec()),
        tombstone: None,
    }
}

/// A well-behaved real peer G that the daemon D follows; returns (G's home, G's daemon).
fn well_behaved_peer(d: &Home) -> (Home, Daemon, String) {
    let g = Home::init();
    let g_id = g.id();
    let dg = Daemon::start(&g.dir, LOOPBACK);
    kith_json(&g.dir, &["post", "g one", "--json"]);
    kith_json(
        &d.dir,
        &["follow", &g_id, "--addr", &listen_addr(&g.dir), "--json"],
    );
    eventually_blocking("D holds G's first post", SOON, POLL, || {
        head_seq(&d.dir, &g_id) == 1
    });
    (g, dg, g_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_entry_is_refused_and_its_sender_cut_off_while_others_go_on() {
    let d = Home::init();
    let d_id = d.id();
    let _dd = Daemon::start(&d.dir, LOOPBACK);
    let d_addr = listen_addr(&d.dir);
    let (g, _dg, g_id) = well_behaved_peer(&d);
    let g_since = connection(&d.dir, &g_id).expect("D is connected to G")["since_ms"].clone();

    let fake = Fake::new(2);
    let fake_id = fake.id().to_string();
    kith_json(&d.dir, &["follow", &fake_id, "--json"]);
    let (conn, mut greeted) = fake.connect(&d_id, &d_addr).await;
    let (good, good_payload) = &fake.feed[0];
    let (second, second_payload) = &fake.feed[1];
    let mut forged = second.clone();
    forged.0[0] ^= 0x01; // one bit of the signature
    let entries = vec![wire(good, good_payload), wire(&forged, second_payload)];
    stream::write_frame(
        &mut greeted.send,
        &Msg::Entries {
            feed: fake.id(),
            entries,
        },
    )
    .await
    .unwrap();

    let closed = tokio::time::timeout(SOON, conn.closed())
        .await
        .expect("D closes the connection");
    assert_eq!(
        peer_close_code(&closed),
        Some(CloseCode::InvalidEntry),
        "closed with: {closed}"
    );
    // The valid entry before the forgery is kept; the forged one is not in the store.
    assert_eq!(head_seq(&d.dir, &fake_id), 1);
    let feed = kith_json(&d.dir, &["feed", &fake_id, "--json"]);
    let seqs: Vec<u64> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1]);
    eventually_blocking("D forgets the fake peer's connection", SOON, POLL, || {
        connection(&d.dir, &fake_id).is_none()
    });

    // G was not disturbed: same connection, and it still replicates.
    assert_eq!(
        connection(&d.dir, &g_id).expect("still connected to G")["since_ms"],
        g_since
    );
    kith_json(&g.dir, &["post", "g two", "--json"]);
    eventually_blocking(
        "D holds G's post made after the forgery",
        SOON,
        POLL,
        || head_seq(&d.dir, &g_id) == 2,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_feed_nobody_asked_for_close_the_connection() {
    let d = Home::init();
    let d_id = d.id();
    let _dd = Daemon::start(&d.dir, LOOPBACK);
    let d_addr = listen_addr(&d.dir);
    let (g, _dg, g_id) = well_behaved_peer(&d);

    // D does not follow this peer: its entries are unsolicited (friends of friends pushed at us).
    let fake = Fake::new(1);
    let fake_id = fake.id().to_string();
    let (conn, mut greeted) = fake.connect(&d_id, &d_addr).await;
    let (entry, payload) = &fake.feed[0];
    stream::write_frame(
        &mut greeted.send,
        &Msg::Entries {
            feed: fake.id(),
            entries: vec![wire(entry, payload)],
        },
    )
    .await
    .unwrap();
    let closed = tokio::time::timeout(SOON, conn.closed())
        .await
        .expect("D closes the connection");
    assert_eq!(
        peer_close_code(&closed),
        Some(CloseCode::ProtocolViolation),
        "closed with: {closed}"
    );
    assert_eq!(
        head_seq(&d.dir, &fake_id),
        0,
        "nothing of the unsolicited feed is stored"
    );
    kith_json(&g.dir, &["post", "g two", "--json"]);
    eventually_blocking("D still replicates G", SOON, POLL, || {
        head_seq(&d.dir, &g_id) == 2
    });
}
