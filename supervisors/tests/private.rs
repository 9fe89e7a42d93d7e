//! Private messages and deletion with real `kith` daemons on loopback (issue 15, items 1, 3, 4).
//!
//! - A sends a private message to B and C (and to E, who does not follow A: `dm` says so); B and
//!   C read it; D, who follows A, replicates the entry and can neither read it nor learn who it
//!   was for: D's store file holds no plaintext and no recipient id or key. Eight recipients are
//!   refused by name.
//! - A deletes a post: B's store no longer holds its payload after the next sync and A's feed in
//!   B's store still validates end to end; C, who follows A only afterwards, receives the header
//!   with its author's tombstone and never the payload. Deleting someone else's message is
//!   refused by name and stores nothing.
//!
//! Every wait is a bounded poll; nothing about speed is asserted.

mod support;

use support::node::{Node, SOON};

use std::path::Path;

use kith::testing::eventually_blocking;
use serde_json::Value;
use support::{kith, verify_offline, POLL};

impl Node {
    fn post(&self, text: &str) -> String {
        let out = self.json(&["post", text]);
        out["id"].as_str().expect("post prints its id").to_string()
    }

    /// The raw bytes of the LMDB data file (the daemon must be stopped).
    fn store_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir().join("store").join("data.mdb")).expect("read data.mdb")
    }
}

fn fails_with(dir: &Path, args: &[&str], words: &str) {
    let out = kith(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kith {args:?} succeeded");
    assert!(err.contains(words), "kith {args:?}: {err}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_private_message_reaches_its_recipients_and_no_one_else_learns_anything() {
    let (a, b, c, mut d, e) = (
        Node::start(),
        Node::start(),
        Node::start(),
        Node::start(),
        Node::start(),
    );
    for x in [&b, &c, &d] {
        x.follow(&a);
    }
    // A follows E (so A knows E's follows), and E does not follow A.
    e.post("hello from e");
    a.follow(&e);
    a.holds(&e, 1);

    let secret = "the secret plan 7f3a9c";
    let sent = a.json(&["dm", &b.id, &c.id, &e.id, secret]);
    assert_eq!(ids(&sent["recipients"]).len(), 3, "{sent}");
    assert_eq!(ids(&sent["not_following"]), vec![e.id.clone()], "{sent}");
    let out = kith(a.dir(), &["dm", &e.id, "just", "for", "e"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not follow you"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dm_seq = a.seq();

    // Eight recipients: refused by name, nothing appended.
    let eight: Vec<String> = (0..8)
        .map(|_| kith::identity::Identity::generate().id().to_string())
        .collect();
    let mut args: Vec<&str> = vec!["dm"];
    args.extend(eight.iter().map(String::as_str));
    args.push("too many");
    fails_with(a.dir(), &args, "at most 7 recipients");
    assert_eq!(a.seq(), dm_seq);

    // B and C read it, with who else it was for.
    for reader in [&b, &c] {
        reader.holds(&a, dm_seq);
        let inbox = reader.json(&["inbox"]);
        let convs = inbox["conversations"].as_array().expect("conversations");
        assert_eq!(convs.len(), 1, "{inbox}");
        assert_eq!(convs[0]["last_text"], secret, "{inbox}");
        let mut with = ids(&convs[0]["with"]);
        with.sort();
        let mut expected: Vec<String> = [&a, &b, &c, &e]
            .iter()
            .filter(|n| n.id != reader.id)
            .map(|n| n.id.clone())
            .collect();
        expected.sort();
        assert_eq!(with, expected);
        let thread = reader.json(&["dm", "--thread", &a.id]);
        let msgs = thread["messages"].as_array().expect("messages");
        assert_eq!(msgs.len(), 1, "{thread}");
        assert_eq!(msgs[0]["text"], secret);
        assert_eq!(msgs[0]["author"], a.id);
    }
    // A reads its own, both conversations.
    let inbox = a.json(&["inbox"]);
    assert_eq!(
        inbox["conversations"].as_array().map(Vec::len),
        Some(2),
        "{inbox}"
    );
    // E does not replicate A: nothing reaches it.
    assert!(e.json(&["inbox"])["conversations"]
        .as_array()
        .expect("conversations")
        .is_empty());

    // D holds the entries and reads nothing.
    d.holds(&a, dm_seq);
    assert!(d.json(&["inbox"])["conversations"]
        .as_array()
        .expect("conversations")
        .is_empty());
    let feed = d.json(&["feed", &a.id]);
    let private: Vec<&Value> = feed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["type"] == "private")
        .collect();
    assert_eq!(private.len(), 2, "{feed}");
    assert!(private.iter().all(|e| e.get("text").is_none()));
    let thread = d.json(&["dm", "--thread", &a.id]);
    assert!(thread["messages"].as_array().expect("messages").is_empty());

    // D's store file: no plaintext, no recipient id (raw or printed) and no recipient key.
    d.stop();
    let bytes = d.store_bytes();
    assert!(contains(&bytes, a.id.as_bytes()) || contains(&bytes, &raw_id(&a.id)));
    assert!(!contains(&bytes, secret.as_bytes()));
    assert!(!contains(&bytes, b"just for e"));
    for r in [&b, &c] {
        let id: kith::identity::FeedId = r.id.parse().expect("id");
        assert!(
            !contains(&bytes, &id.0),
            "{}'s raw id is in D's store",
            r.id
        );
        assert!(!contains(&bytes, r.id.as_bytes()));
        let x = kith::feed::private::x25519_public(&id).expect("key");
        assert!(
            !contains(&bytes, x.as_bytes()),
            "{}'s X25519 key is in D's store",
            r.id
        );
    }
    assert_eq!(verify_offline(d.dir(), &a.id), dm_seq);
}

fn raw_id(id: &str) -> Vec<u8> {
    let id: kith::identity::FeedId = id.parse().expect("id");
    id.0.to_vec()
}

#[test]
fn a_deleted_post_is_dropped_by_followers_and_never_served_again() {
    let (a, mut b) = (Node::start(), Node::start());
    b.follow(&a);
    let regret = "regrettable words 91c2e7";
    let p1 = a.post(regret);
    let p2 = a.post("keep this");
    b.holds(&a, 2);
    let feed = b.json(&["feed", &a.id]);
    assert!(feed.to_string().contains(regret));

    // B cannot delete A's message: refused by name, nothing appended to B's feed.
    let b_seq = b.seq();
    fails_with(
        b.dir(),
        &["delete", &p1],
        "you can only delete your own messages",
    );
    assert_eq!(b.seq(), b_seq);
    // Nor can A delete a message that is not a post, reaction or private message.
    let follow = a.json(&["follow", &b.id, "--addr", &b.addr]);
    assert_eq!(follow["contact"]["following"], true);
    let a_feed = a.json(&["feed"]);
    let follow_id = a_feed["entries"][0]["id"].as_str().expect("id").to_string();
    fails_with(a.dir(), &["delete", &follow_id], "cannot delete");

    let deleted = a.json(&["delete", &p1]);
    assert_eq!(deleted["deletes"], p1.as_str());
    fails_with(a.dir(), &["delete", &p1], "already deleted");
    let a_seq = a.seq();
    b.holds(&a, a_seq);
    eventually_blocking("B shows the post as deleted", SOON, POLL, || {
        let feed = b.json(&["feed", &a.id]);
        let list = feed["entries"].as_array().cloned().unwrap_or_default();
        list.iter()
            .any(|e| e["id"] == p1.as_str() && e["type"] == "deleted")
    });
    let text = String::from_utf8_lossy(&kith(b.dir(), &["feed", &a.id]).stdout).into_owned();
    assert!(text.contains("(deleted by its author)"), "{text}");
    assert!(!text.contains(regret), "{text}");
    let feed = b.json(&["feed", &a.id]);
    assert!(feed.to_string().contains("keep this"));
    assert!(feed.to_string().contains(&p2));

    // B's store: the payload is gone, the signed header stays, the feed validates end to end.
    b.stop();
    {
        let store = kith::store::Store::open(b.dir()).expect("store");
        let reader = store.read().expect("read");
        let author: kith::identity::FeedId = a.id.parse().expect("id");
        let at = reader
            .locate(&p1.parse().expect("msg id"))
            .expect("read")
            .expect("the entry is still held");
        assert_eq!(reader.payload(&at.0, at.1).expect("read"), None);
        assert!(reader.tombstone(&at.0, at.1).expect("read").is_some());
        assert!(reader.entry(&author, at.1).expect("read").is_some());
    }
    assert_eq!(verify_offline(b.dir(), &a.id), a_seq);

    // C follows A only now: it gets the header and the tombstone, never the payload.
    let mut c = Node::start();
    c.follow(&a);
    c.holds(&a, a_seq);
    let feed = c.json(&["feed", &a.id]);
    assert!(feed.to_string().contains("keep this"));
    assert!(!feed.to_string().contains(regret));
    c.stop();
    assert_eq!(verify_offline(c.dir(), &a.id), a_seq);
    assert!(!contains(&c.store_bytes(), regret.as_bytes()));
}
