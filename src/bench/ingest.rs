//! `kith bench ingest`: entries verified and stored per second through the real pipeline (the
//! store writer actor, batched verification, grouped LMDB commits into a temporary store), and in
//! the same run the raw ed25519 verification rates on one core.

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use ractor::Actor;
use serde::Serialize;

use crate::bench::TempDir;
use crate::daemon::messages::{IngestReply, StoreWriterMsg};
use crate::daemon::store_writer::{StoreWriter, StoreWriterArgs};
use crate::feed::{next_entry, now_ms, Content, Entry, FeedHead};
use crate::identity::Identity;
use crate::ingest::{Op, OpOutcome};
use crate::limits::{CONTROL_TIMEOUT, VERIFY_CHUNK_MAX};
use crate::rolodex::Rolodex;
use crate::runtime::Slot;
use crate::store::Store;

/// Authors the generated entries are spread over.
const AUTHORS: usize = 16;
/// Entries per submission, as a replication stream would deliver them.
const SUBMIT_CHUNK: usize = 1_000;
/// Submissions in flight at once.
const IN_FLIGHT: usize = 4;
/// Signatures used to measure the raw verification rates.
const RAW_SAMPLES: usize = 8_192;

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Entries through the pipeline.
    pub entries: usize,
    /// Seconds the pipeline took.
    pub seconds: f64,
    /// Entries verified and durably stored per second.
    pub ingest_per_s: f64,
    /// Raw `verify_strict` rate on one core.
    pub verify_single_per_s: f64,
    /// Raw `verify_batch` rate on one core (batches of [`VERIFY_CHUNK_MAX`]).
    pub verify_batch_per_s: f64,
    /// `ingest_per_s / verify_batch_per_s`.
    pub ingest_vs_verify_batch: f64,
    /// Cores available to the pipeline's verification.
    pub cores: usize,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up failed.
    #[error("benchmark setup: {0}")]
    Setup(String),
    /// An entry was refused: the pipeline is broken.
    #[error("the pipeline refused an entry: {0}")]
    Refused(String),
}

/// Run the benchmark with `entries` entries.
pub async fn run(entries: usize) -> Result<IngestReport, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let ops = generate(entries.max(1)).map_err(|e| setup(&e))?;
    let dir = TempDir::new("kith-bench-ingest").map_err(|e| setup(&e))?;
    let store = Store::open(dir.path()).map_err(|e| setup(&e))?;
    let slot = Slot::new();
    let identity = Arc::new(Identity::generate());
    let args = StoreWriterArgs {
        store,
        own: crate::daemon::own_seq::OwnFeed::untracked(identity.id()),
        identity,
        rolodex: Rolodex::default(),
        slot: slot.clone(),
        events: crate::daemon::events::channel(),
    };
    let (writer, handle) = Actor::spawn(None, StoreWriter, args)
        .await
        .map_err(|e| setup(&e))?;
    let started = Instant::now();
    let result = pump(&writer, ops).await;
    let seconds = started.elapsed().as_secs_f64();
    writer.stop(None);
    let _ = handle.await;
    result?;
    let (verify_single_per_s, verify_batch_per_s) = raw_verify_rates();
    let ingest_per_s = entries as f64 / seconds;
    Ok(IngestReport {
        entries,
        seconds,
        ingest_per_s,
        verify_single_per_s,
        verify_batch_per_s,
        ingest_vs_verify_batch: ingest_per_s / verify_batch_per_s,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// Submit the chunks in order (casts keep the mailbox order), at most [`IN_FLIGHT`] waiting.
async fn pump(writer: &ractor::ActorRef<StoreWriterMsg>, ops: Vec<Op>) -> Result<(), BenchError> {
    let mut ops = ops.into_iter().peekable();
    let mut waiting = std::collections::VecDeque::new();
    while ops.peek().is_some() {
        if waiting.len() >= IN_FLIGHT {
            settle(waiting.pop_front()).await?;
        }
        let chunk: Vec<Op> = ops.by_ref().take(SUBMIT_CHUNK).collect();
        let (tx, rx) = ractor::concurrency::oneshot();
        writer
            .cast(StoreWriterMsg::Submit(chunk, tx.into()))
            .map_err(|e| BenchError::Refused(e.to_string()))?;
        waiting.push_back(rx);
    }
    while let Some(rx) = waiting.pop_front() {
        settle(Some(rx)).await?;
    }
    Ok(())
}

async fn settle(
    rx: Option<ractor::concurrency::OneshotReceiver<IngestReply>>,
) -> Result<(), BenchError> {
    let refused = |e: &dyn std::fmt::Display| BenchError::Refused(e.to_string());
    let Some(rx) = rx else { return Ok(()) };
    let reply = tokio::time::timeout(CONTROL_TIMEOUT, rx)
        .await
        .map_err(|_| refused(&"the store writer did not answer"))?
        .map_err(|_| refused(&"the store writer dropped the request"))?;
    for outcome in reply.map_err(|e| refused(&e))? {
        match outcome {
            Ok(OpOutcome::Appended { .. }) => {}
            Ok(other) => return Err(refused(&format!("{other:?}"))),
            Err(e) => return Err(refused(&e)),
        }
    }
    Ok(())
}

/// One author's signed entries with their payloads.
type SignedFeed = Vec<(Entry, Vec<u8>)>;

/// Chained, signed entries from [`AUTHORS`] authors, interleaved as replication would deliver
/// several feeds. Signed on all cores: signing is not what is measured.
fn generate(entries: usize) -> Result<Vec<Op>, crate::feed::FeedError> {
    let per_author = entries.div_ceil(AUTHORS);
    let signed: Vec<Result<SignedFeed, _>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..AUTHORS)
            .map(|a| scope.spawn(move || author_feed(a as u8, per_author)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(crate::feed::FeedError::ContentInvalid(
                        "a signing thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let signed: Vec<SignedFeed> = signed.into_iter().collect::<Result<_, _>>()?;
    let mut feeds: Vec<_> = signed.into_iter().map(Vec::into_iter).collect();
    let mut ops = Vec::with_capacity(entries);
    'outer: loop {
        let mut any = false;
        for feed in feeds.iter_mut() {
            if ops.len() >= entries {
                break 'outer;
            }
            if let Some((entry, payload)) = feed.next() {
                ops.push(Op::Remote {
                    entry,
                    payload: Some(payload),
                    feed: None,
                });
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    Ok(ops)
}

fn author_feed(seed: u8, count: usize) -> Result<Vec<(Entry, Vec<u8>)>, crate::feed::FeedError> {
    let identity = Identity::from_seed([seed.wrapping_add(1); 32]);
    let mut head: Option<FeedHead> = None;
    let now = now_ms();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let content = Content::Post { text: format!("bench post {i} from author {seed}: about 100 bytes of text to look like a short message."), reply_to: None };
        let (entry, payload, header) = next_entry(&identity, head.as_ref(), &content, now)?;
        head = Some(FeedHead {
            seq: header.seq,
            id: entry.id(),
            timestamp_ms: header.timestamp_ms,
        });
        out.push((entry, payload));
    }
    Ok(out)
}

/// Raw verification rates on one core: strict single, and batches of [`VERIFY_CHUNK_MAX`].
pub fn raw_verify_rates() -> (f64, f64) {
    let keys: Vec<SigningKey> = (0..64u8)
        .map(|i| SigningKey::from_bytes(&[i.wrapping_add(100); 32]))
        .collect();
    let messages: Vec<Vec<u8>> = (0..RAW_SAMPLES)
        .map(|i| format!("{i:0>150}").into_bytes())
        .collect();
    let signed: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                keys[i % keys.len()].verifying_key(),
                keys[i % keys.len()].sign(m),
            )
        })
        .collect();
    let started = Instant::now();
    let valid = messages
        .iter()
        .zip(&signed)
        .filter(|(m, (k, s))| k.verify_strict(m, s).is_ok())
        .count();
    let single = valid as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut verified = 0;
    for (ms, ss) in messages
        .chunks(VERIFY_CHUNK_MAX)
        .zip(signed.chunks(VERIFY_CHUNK_MAX))
    {
        let refs: Vec<&[u8]> = ms.iter().map(Vec::as_slice).collect();
        let sigs: Vec<_> = ss.iter().map(|(_, s)| *s).collect();
        let vks: Vec<_> = ss.iter().map(|(k, _)| *k).collect();
        if ed25519_dalek::verify_batch(&refs, &sigs, &vks).is_ok() {
            verified += refs.len();
        }
    }
    let batch = verified as f64 / started.elapsed().as_secs_f64();
    (single, batch)
}
