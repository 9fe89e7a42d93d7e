//! `kith bench web`: the web page's timeline with many posts held — server render time and
//! page weight (issue 16: the targets are ≤ 5 ms and ≤ 30 KB; SSB's Oasis, measured in the
//! design brief, served its main page in 18 ms at 9.6 KB).
//!
//! A scratch store is filled with `posts` posts of ten feeds (this node's and nine it follows;
//! one post in five a reply to an earlier one, so the page threads them), a real daemon tree is
//! started on it, and the timeline page is rendered by the page's own code
//! ([`kith::daemon::web::pages::timeline_page`]): the store read, the names, the threads, the
//! HTML. The figures are the times of those renders and the bytes of the page; nothing is
//! printed that this run did not measure.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use kith::daemon::peer::{IntroPolicy, ServePolicy};
use kith::daemon::web::auth::Keys;
use kith::daemon::web::guard::Allowed;
use kith::daemon::web::pages::timeline_page;
use kith::daemon::web::server::static_bytes;
use kith::daemon::web::WebState;
use kith::feed::{Content, MsgId};
use kith::identity::Identity;
use kith::ingest::{run_batch, Op, OpOutcome};
use kith::loadtest::histogram::Hist;
use kith::net::PeerEndpoint;
use kith::rolodex::RolodexEntry;
use kith::store::Store;
use serde::Serialize;

use crate::trees::daemon::{self, DaemonParts};

/// Feeds the posts are spread over (this node's and the ones it follows).
const FEEDS: usize = 10;
/// Posts signed per batch while filling the store.
const BATCH: usize = 500;
/// Renders timed (after [`WARMUP`] untimed ones).
const RENDERS: usize = 200;
const WARMUP: usize = 20;

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct WebReport {
    /// Posts in the store.
    pub posts: usize,
    /// Feeds they belong to.
    pub feeds: usize,
    /// Threads on the page.
    pub threads: usize,
    /// Renders timed.
    pub renders: usize,
    /// The first render (cold caches), in ms.
    pub first_ms: f64,
    /// Median render, in ms.
    pub median_ms: f64,
    /// 99th percentile render, in ms.
    pub p99_ms: f64,
    /// Slowest render, in ms.
    pub max_ms: f64,
    /// Bytes of the page's HTML.
    pub page_bytes: usize,
    /// Bytes of the script and style sheet (fetched once, then revalidated).
    pub script_bytes: usize,
    /// Bytes of the style sheet.
    pub style_bytes: usize,
}

/// Fill a scratch store and time the timeline page.
pub async fn run(posts: usize) -> Result<WebReport> {
    let scratch = tempfile::Builder::new()
        .prefix("kith-bench-web")
        .tempdir()?;
    let store = Store::open(scratch.path())?;
    let me = Identity::generate();
    let others: Vec<Identity> = (1..FEEDS).map(|_| Identity::generate()).collect();
    let follows: Vec<Op> = others
        .iter()
        .map(|o| {
            let mut entry = RolodexEntry::new(o.id());
            entry.following = true;
            Op::Rolodex(entry)
        })
        .collect();
    run_batch(&store, &me, follows, kith::feed::now_ms())?;
    let authors: Vec<&Identity> = std::iter::once(&me).chain(&others).collect();
    let mut roots: Vec<MsgId> = Vec::new();
    let start_ms = kith::feed::now_ms().saturating_sub(posts as u64 * 60_000);
    let mut made = 0usize;
    let mut batch_no = 0u64;
    while made < posts {
        let author = authors[batch_no as usize % authors.len()];
        let n = BATCH.min(posts - made);
        let ops: Vec<Op> = (0..n)
            .map(|i| {
                let text = format!(
                    "post {} of the benchmark: a sentence or two of ordinary length, as people write them.",
                    made + i
                );
                // One in five answers an earlier post, spread over the whole history.
                let k = (made + i) as u64;
                let reply = (!roots.is_empty() && k % 5 == 4).then(|| {
                    roots[(k.wrapping_mul(2_654_435_761) % roots.len() as u64) as usize]
                });
                Op::Publish(Content::Text {
                    text,
                    root: reply,
                    branch: reply,
                    mentions: Vec::new(),
                })
            })
            .collect();
        let now = start_ms + batch_no * BATCH as u64 * 60_000;
        for outcome in run_batch(&store, author, ops, now)? {
            match outcome {
                Ok(OpOutcome::Appended { id, .. }) => roots.push(id),
                Ok(_) => {}
                Err(e) => return Err(anyhow!("filling the store: {e}")),
            }
        }
        made += n;
        batch_no += 1;
    }
    let identity = Arc::new(me);
    let endpoint = Arc::new(PeerEndpoint::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        identity.signing_key(),
    )?);
    let parts = DaemonParts {
        data_dir: scratch.path().to_path_buf(),
        identity,
        store,
        endpoint,
        serve: ServePolicy::Everyone,
        switchboards: Vec::new(),
        introductions: IntroPolicy::Relay,
        presence_visible_to: Default::default(),
        blobs: Default::default(),
    };
    let mut running = daemon::start(parts).await?;
    let keys = Arc::new(Keys::from_token("bench".into()));
    let session = keys
        .check_session(&keys.new_session(u64::MAX), 0)
        .ok_or_else(|| anyhow!("the benchmark's session did not verify"))?;
    let tree: kith::runtime::control_socket::TreeReporter =
        Arc::new(|| Box::pin(async { serde_json::Value::Null }));
    let state = WebState::new(
        running.node.clone(),
        Some(running.peers.clone()),
        tree,
        keys,
        Allowed::for_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
    );
    let clock = Instant::now();
    let page = timeline_page(&state, &session)?;
    let first_ms = clock.elapsed().as_secs_f64() * 1e3;
    for _ in 0..WARMUP {
        timeline_page(&state, &session)?;
    }
    // Render times in µs, in the HDR histogram every `kith bench` percentile comes from.
    let mut times = Hist::new()?;
    for _ in 0..RENDERS {
        let clock = Instant::now();
        let html = timeline_page(&state, &session)?;
        times.record(clock.elapsed().as_micros() as u64);
        std::hint::black_box(html);
    }
    let at = |q: f64| times.value_at(q) as f64 / 1e3;
    let (script_bytes, style_bytes) = static_bytes();
    drop(state);
    running.root.shutdown().await?;
    drop(running);
    drop(scratch);
    Ok(WebReport {
        posts,
        feeds: FEEDS,
        threads: page.matches("<li class=\"thread\"").count(),
        renders: RENDERS,
        first_ms,
        median_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: times.max_value() as f64 / 1e3,
        page_bytes: page.len(),
        script_bytes,
        style_bytes,
    })
}

/// The report as text.
pub fn text(r: &WebReport) -> String {
    format!(
        "timeline page, {} posts held in {} feeds ({} threads shown):\n\
         server render: median {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} renders (first, cold: {:.2} ms)\n\
         page weight: {:.1} KB of HTML (+ {:.1} KB script and {:.1} KB style sheet, fetched once)",
        r.posts,
        r.feeds,
        r.threads,
        r.median_ms,
        r.p99_ms,
        r.max_ms,
        r.renders,
        r.first_ms,
        r.page_bytes as f64 / 1024.0,
        r.script_bytes as f64 / 1024.0,
        r.style_bytes as f64 / 1024.0,
    )
}
