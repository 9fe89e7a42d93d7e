//! Blobs with real `kith` daemons (issue 15, item 2): a file attached to a post reaches a
//! follower's node, verified while it streams, and `kith blob get` writes the same bytes; an
//! attachment over the limit is refused with nothing stored; deleting the post that attached a
//! blob, or unfollowing its author, drops the fetched blob; and a peer that serves corrupted bytes (an in-process rogue daemon whose serving is
//! tampered with through `Blobs::set_tamper`, a hook only the `test-utils` feature compiles) is
//! caught at the first bad chunk, refused by name — it hears why — and nothing is stored.
//!
//! Every wait is a bounded poll; nothing about speed is asserted.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kith::testing::{eventually_async, eventually_blocking};
use support::in_process::daemon_tree;
use support::{head_seq, kith, kith_json, listen_addr, Daemon, Home, POLL};

const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];
/// Deadline for replication and a fetch between running daemons (debug build, shared box).
const SOON: Duration = Duration::from_secs(30);

/// Bytes that look like nothing in particular (a PNG header, then a cheap PRNG).
fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn blob_ids(dir: &Path) -> Vec<(String, bool)> {
    kith_json(dir, &["blob", "ls", "--json"])["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["id"].as_str().unwrap().to_string(), b["pinned"] == true))
        .collect()
}

fn fails_with(dir: &Path, args: &[&str], words: &str) {
    let out = kith(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kith {args:?} succeeded");
    assert!(err.contains(words), "kith {args:?}: {err}");
}

fn tmp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("blobs").join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn an_attached_image_reaches_a_follower_verified_and_blob_get_writes_the_same_bytes() {
    let (a_home, b_home) = (Home::init(), Home::init());
    let (a, b) = (&a_home.dir, &b_home.dir);
    let _da = Daemon::start(a, LOOPBACK);
    let _db = Daemon::start(b, LOOPBACK);
    let (a_id, a_addr) = (a_home.id(), listen_addr(a));
    let files = tempfile::tempdir().unwrap();

    // Over the 5 MiB default: refused by name, nothing stored, nothing posted.
    let big = files.path().join("huge.png");
    std::fs::write(&big, image(5 * 1024 * 1024 + 1, 1)).unwrap();
    fails_with(
        a,
        &["post", "too big", "--attach", big.to_str().unwrap()],
        "the most allowed is 5242880",
    );
    fails_with(
        a,
        &["blob", "add", big.to_str().unwrap()],
        "blobs.max_bytes",
    );
    assert!(blob_ids(a).is_empty());
    assert_eq!(head_seq(a, &a_id), 0, "a refused attachment posts nothing");

    // A posts an image (about 300 KB: many 16 KiB chunk groups).
    let bytes = image(300_000, 7);
    let img = files.path().join("cat.png");
    std::fs::write(&img, &bytes).unwrap();
    let posted = kith_json(
        a,
        &[
            "post",
            "look at this",
            "--attach",
            img.to_str().unwrap(),
            "--json",
        ],
    );
    let blob = posted["attachments"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(posted["attachments"][0]["size"], 300_000);
    assert_eq!(posted["attachments"][0]["name"], "cat.png");
    assert_eq!(
        blob_ids(a),
        vec![(blob.clone(), true)],
        "the author's copy is pinned"
    );

    // B follows A: the post replicates and the blob follows it, verified.
    let out = kith_json(b, &["follow", &a_id, "--addr", &a_addr, "--json"]);
    assert_eq!(out["contact"]["following"], true, "{out}");
    eventually_blocking("B holds A's post", SOON, POLL, || head_seq(b, &a_id) >= 1);
    eventually_blocking("B holds the blob", SOON, POLL, || {
        blob_ids(b).contains(&(blob.clone(), false))
    });
    let timeline = kith_json(b, &["timeline", "--json"]);
    let shown = timeline.to_string();
    assert!(
        shown.contains(&blob),
        "the post shows its attachment: {timeline}"
    );

    // `kith blob get` writes the same bytes; a second time it refuses to overwrite.
    let out_file = files.path().join("copy.png");
    let got = kith_json(
        b,
        &[
            "blob",
            "get",
            &blob,
            "--out",
            out_file.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(got["size"], 300_000);
    assert_eq!(std::fs::read(&out_file).unwrap(), bytes, "the same bytes");
    fails_with(
        b,
        &["blob", "get", &blob, "--out", out_file.to_str().unwrap()],
        "exists",
    );
    // To standard output too.
    let raw = kith(b, &["blob", "get", &blob]);
    assert!(raw.status.success());
    assert_eq!(raw.stdout, bytes);
    // Adding the same file again names the same blob; an id nobody attached is not held, and
    // a malformed one is not an id.
    let again = kith_json(a, &["blob", "add", img.to_str().unwrap(), "--json"]);
    assert_eq!(again["id"], blob.as_str());
    fails_with(
        b,
        &[
            "blob",
            "get",
            "&AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=.b3",
        ],
        "not held here",
    );
    fails_with(b, &["blob", "get", "nonsense"], "is not a blob id");
    assert_eq!(tmp_files(b), 0, "no temporary file is left behind");

    // A attaches a second image and then deletes that post: B drops the blob only the deleted
    // post attached, and keeps the first.
    let second = files.path().join("dog.png");
    std::fs::write(&second, image(40_000, 11)).unwrap();
    let regretted = kith_json(
        a,
        &[
            "post",
            "oops",
            "--attach",
            second.to_str().unwrap(),
            "--json",
        ],
    );
    let regretted_blob = regretted["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    eventually_blocking("B holds the second blob", SOON, POLL, || {
        blob_ids(b).contains(&(regretted_blob.clone(), false))
    });
    let msg = regretted["id"].as_str().unwrap().to_string();
    kith_json(a, &["delete", &msg, "--json"]);
    eventually_blocking("B drops the blob of the deleted post", SOON, POLL, || {
        blob_ids(b) == vec![(blob.clone(), false)]
    });

    // B unfollows A: the blob it fetched for A's feed is dropped; A keeps its own.
    kith_json(b, &["unfollow", &a_id, "--json"]);
    eventually_blocking("B drops the blob", SOON, POLL, || blob_ids(b).is_empty());
    assert!(blob_ids(a).contains(&(blob, true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_corrupted_bytes_is_caught_refused_by_name_and_nothing_is_stored() {
    // The rogue: a real daemon tree in this process whose blob serving flips one byte.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = daemon_tree(rogue_dir.path()).await;
    let flipped_at = 100_000usize;
    rogue
        .node
        .blobs
        .set_tamper(Arc::new(move |_, stream: &mut Vec<u8>| {
            stream[flipped_at] ^= 0x01;
        }));
    let bytes = image(200_000, 3);
    let file = rogue_dir.path().join("photo.png");
    std::fs::write(&file, &bytes).unwrap();
    let r = rogue.node.blobs.store.add_file(&file).unwrap();
    let blob = r.id.to_string();
    rogue
        .node
        .post_attached("a photo".into(), None, Vec::new(), vec![r])
        .await
        .unwrap();
    let rogue_id = rogue.node.identity.id().to_string();
    let rogue_addr = rogue.peers.endpoint.local_addr().unwrap().to_string();

    // B, a real `kith` process, follows the rogue.
    let b_home = Home::init();
    let b = b_home.dir.clone();
    let _db = Daemon::start(&b, LOOPBACK);
    let out = kith_json(&b, &["follow", &rogue_id, "--addr", &rogue_addr, "--json"]);
    assert_eq!(out["contact"]["following"], true, "{out}");

    // The rogue hears why its bytes were refused, by name.
    eventually_async(
        "the rogue is told its blob was refused",
        SOON,
        POLL,
        async || !rogue.node.blobs.refusals().is_empty(),
    )
    .await;
    let refusal = &rogue.node.blobs.refusals()[0];
    assert_eq!(refusal.blob, blob);
    assert!(
        refusal.reason.contains("does not match the blob's hash"),
        "{refusal:?}"
    );
    // B replicated the post, and stored nothing of the blob: not in its list, no temporary.
    let b2 = b.clone();
    let (held, tmp, post) = tokio::task::spawn_blocking(move || {
        (blob_ids(&b2), tmp_files(&b2), head_seq(&b2, &rogue_id))
    })
    .await
    .unwrap();
    assert!(held.is_empty(), "nothing stored: {held:?}");
    assert_eq!(tmp, 0);
    assert!(post >= 1, "the post itself replicated");
    let b3 = b.clone();
    let got = tokio::task::spawn_blocking(move || kith(&b3, &["blob", "get", &blob]))
        .await
        .unwrap();
    assert!(!got.status.success());
    assert!(String::from_utf8_lossy(&got.stderr).contains("not held here"));
}
