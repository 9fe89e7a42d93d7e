//! `kith bench ingest`: entries verified and stored per second through the real pipeline (the
//! store writer actor, batched verification, grouped LMDB commits into a temporary store), and in
//! the same run the raw ed25519 verification rates: strict and batched on one core, and batched
//! on every core at once, which is the ceiling ingest is read against
//! (`ingest_vs_verify_all_cores`). The raw rates verify the very signatures the pipeline
//! ingests (the first [`RAW_SAMPLES`] entries, in the order they are submitted) with
//! `ed25519_dalek::verify_batch` in batches of [`VERIFY_CHUNK_MAX`], without I/O.
//!
//! The pipeline's own batch check ([`crate::ingest::batch_valid`], one term per author) costs
//! about two thirds of `verify_batch` on these signatures, so ingest can beat the
//! `verify_batch` ceiling. The same all-cores run with the pipeline's check gives the second
//! ceiling, `ingest_vs_coalesced_verify_all_cores`: what the pipeline's plumbing and commits
//! cost beside the verification it does.

use std::sync::Arc;
use std::time::Instant;

use ractor::Actor;
use serde::Serialize;

use crate::daemon::messages::{IngestReply, StoreWriterMsg};
use crate::daemon::store_writer::{StoreWriter, StoreWriterArgs};
use crate::feed::{
    check_entry_with, next_entry, now_ms, Content, Entry, FeedError, FeedHead, KeyCache,
};
use crate::identity::Identity;
use crate::ingest::{IngestError, Op, OpOutcome};
use crate::limits::{
    CONTROL_TIMEOUT, ENTRIES_FRAME_BYTES, INGEST_FRAMES_IN_FLIGHT, VERIFY_CHUNK_MAX,
};
use crate::rolodex::Rolodex;
use crate::runtime::Slot;
use crate::store::{Store, StoreError};

/// Authors the generated entries are spread over.
const AUTHORS: usize = 16;
/// Signatures (the first entries submitted) used to measure the raw verification rates.
const RAW_SAMPLES: usize = 8_192;
/// Times each verifying thread goes through the samples (a longer measurement is steadier).
const RAW_ROUNDS: usize = 4;

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
    /// Raw `verify_batch` rate of all `cores` verifying at once (batches of
    /// [`VERIFY_CHUNK_MAX`]): what the machine can verify, with nothing else to do.
    pub verify_batch_all_cores_per_s: f64,
    /// `ingest_per_s / verify_batch_per_s`.
    pub ingest_vs_verify_one_core: f64,
    /// `ingest_per_s / verify_batch_all_cores_per_s`.
    pub ingest_vs_verify_all_cores: f64,
    /// The pipeline's own batch check ([`crate::ingest::batch_valid`]) on all `cores` at once,
    /// same signatures and batches, without I/O.
    pub verify_coalesced_all_cores_per_s: f64,
    /// `ingest_per_s / verify_coalesced_all_cores_per_s`: ingest against the verification it
    /// does itself, on every core with nothing else to do.
    pub ingest_vs_coalesced_verify_all_cores: f64,
    /// Cores available to the pipeline's verification.
    pub cores: usize,
    /// CPU time the whole process spent per entry while the pipeline ran (verifiers, committer,
    /// the actor and the submitting task), in µs: a count that does not depend on the machine's
    /// load, unlike the rates.
    pub pipeline_cpu_us_per_entry: f64,
    /// Of that, the verifier threads' CPU time per entry, in µs.
    pub verifiers_cpu_us_per_entry: f64,
    /// Of that, the committer thread's CPU time per entry, in µs.
    pub committer_cpu_us_per_entry: f64,
    /// Raw `verify_batch` CPU time per signature on the all-cores run, in µs.
    pub verify_batch_cpu_us_per_entry: f64,
    /// `verify_batch_cpu_us_per_entry / pipeline_cpu_us_per_entry`: the share of the pipeline's
    /// CPU time that is the verification the all-cores ceiling does. On an idle machine whose
    /// cores the pipeline keeps busy, `ingest_vs_verify_all_cores` approaches it.
    pub verify_cpu_share: f64,
    /// The pipeline's own batch check ([`crate::ingest::batch_valid`]: one term per author in
    /// each batch) on one core, over the same signatures in the same batches: its CPU time per
    /// signature, in µs, beside `verify_batch_cpu_us_per_entry`.
    pub verify_coalesced_cpu_us_per_entry: f64,
    /// Bytes the process wrote (write system calls: LMDB's pages and meta) per entry while the
    /// pipeline ran.
    pub written_bytes_per_entry: f64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The scratch directory could not be made, or a thread not started.
    #[error("benchmark setup: {0}")]
    Io(#[from] std::io::Error),
    /// The temporary store could not be opened.
    #[error("benchmark setup: {0}")]
    Store(#[from] StoreError),
    /// The entries could not be generated.
    #[error("generating the signed entries: {0}")]
    Generate(#[source] FeedError),
    /// The store writer did not start.
    #[error("starting the store writer: {0}")]
    Spawn(#[from] ractor::SpawnErr),
    /// The store writer could not be sent a submission: it stopped.
    #[error("the store writer stopped: {0}")]
    WriterGone(String),
    /// The store writer did not answer within [`CONTROL_TIMEOUT`], or dropped the request.
    #[error("the store writer {0}")]
    NoAnswer(&'static str),
    /// The pipeline refused a whole submission.
    #[error("the pipeline refused a submission: {0}")]
    Batch(#[from] IngestError),
    /// The pipeline refused an entry: the pipeline is broken.
    #[error("the pipeline refused an entry: {0}")]
    Entry(#[source] FeedError),
    /// An entry was not appended (a duplicate, or another outcome): the bench is broken.
    #[error("an entry was not appended: {0:?}")]
    NotAppended(OpOutcome),
}

/// Run the benchmark with `entries` entries.
pub async fn run(entries: usize) -> Result<IngestReport, BenchError> {
    let frames = generate(entries.max(1)).map_err(BenchError::Generate)?;
    let samples = samples_of(&frames).map_err(BenchError::Generate)?;
    let dir = tempfile::Builder::new()
        .prefix("kith-bench-ingest")
        .tempdir()?;
    let store = Store::open(dir.path())?;
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
    let (writer, handle) = Actor::spawn(None, StoreWriter, args).await?;
    let (cpu_before, written_before) = (procfs::process_cpu_ns()?, procfs::written_bytes()?);
    let threads_before = procfs::threads_cpu_ns()?;
    let started = Instant::now();
    let result = pump(&writer, frames).await;
    let seconds = started.elapsed().as_secs_f64();
    // Read while the pipeline's threads still run (they end with the writer).
    let (cpu_after, written_after) = (procfs::process_cpu_ns()?, procfs::written_bytes()?);
    let threads_after = procfs::threads_cpu_ns()?;
    writer.stop(None);
    let _ = handle.await;
    result?;
    let per_entry_us = |ns: u64| ns as f64 / 1_000.0 / entries as f64;
    let spent = |prefix: &str| {
        let sum = |threads: &[(String, u64)]| -> u64 {
            threads
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, ns)| ns)
                .sum()
        };
        per_entry_us(sum(&threads_after).saturating_sub(sum(&threads_before)))
    };
    let pipeline_cpu_us_per_entry = per_entry_us(cpu_after.saturating_sub(cpu_before));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rates = tokio::task::spawn_blocking(move || raw_verify_rates(&samples, cores))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let ingest_per_s = entries as f64 / seconds;
    Ok(IngestReport {
        pipeline_cpu_us_per_entry,
        verifiers_cpu_us_per_entry: spent("kith-verify"),
        committer_cpu_us_per_entry: spent("kith-committer"),
        verify_batch_cpu_us_per_entry: rates.batch_cpu_us,
        verify_cpu_share: rates.batch_cpu_us / pipeline_cpu_us_per_entry,
        verify_coalesced_cpu_us_per_entry: rates.coalesced_cpu_us,
        written_bytes_per_entry: written_after.saturating_sub(written_before) as f64
            / entries as f64,
        entries,
        seconds,
        ingest_per_s,
        verify_single_per_s: rates.single,
        verify_batch_per_s: rates.batch,
        verify_batch_all_cores_per_s: rates.batch_all_cores,
        ingest_vs_verify_one_core: ingest_per_s / rates.batch,
        ingest_vs_verify_all_cores: ingest_per_s / rates.batch_all_cores,
        verify_coalesced_all_cores_per_s: rates.coalesced_all_cores,
        ingest_vs_coalesced_verify_all_cores: ingest_per_s / rates.coalesced_all_cores,
        cores,
    })
}

/// Submit the frames as one replication stream delivers them: each frame one submission, at
/// most [`INGEST_FRAMES_IN_FLIGHT`] waiting for their verdict (the next is sent when the oldest
/// is durable). Casts keep the mailbox order.
async fn pump(
    writer: &ractor::ActorRef<StoreWriterMsg>,
    frames: Vec<Vec<Op>>,
) -> Result<(), BenchError> {
    let mut waiting = std::collections::VecDeque::new();
    for frame in frames {
        if waiting.len() >= INGEST_FRAMES_IN_FLIGHT {
            settle(waiting.pop_front()).await?;
        }
        let (tx, rx) = ractor::concurrency::oneshot();
        writer
            .cast(StoreWriterMsg::Submit(frame, tx.into()))
            .map_err(|e| BenchError::WriterGone(e.to_string()))?;
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
    let Some(rx) = rx else { return Ok(()) };
    let reply = tokio::time::timeout(CONTROL_TIMEOUT, rx)
        .await
        .map_err(|_| BenchError::NoAnswer("did not answer in time"))?
        .map_err(|_| BenchError::NoAnswer("dropped the request"))?;
    for outcome in reply? {
        match outcome.map_err(BenchError::Entry)? {
            OpOutcome::Appended { .. } => {}
            other => return Err(BenchError::NotAppended(other)),
        }
    }
    Ok(())
}

/// One author's signed entries with their payloads.
type SignedFeed = Vec<(Entry, Vec<u8>)>;

/// Chained, signed entries from [`AUTHORS`] authors, in frames as replication delivers them:
/// each frame holds consecutive entries of one feed, at most [`ENTRIES_FRAME_BYTES`] of entries
/// and payloads, and the feeds take turns. Signed on all cores: signing is not what is measured.
fn generate(entries: usize) -> Result<Vec<Vec<Op>>, FeedError> {
    let per_author = entries.div_ceil(AUTHORS);
    let signed: Vec<Result<SignedFeed, _>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..AUTHORS)
            .map(|a| scope.spawn(move || author_feed(a as u8, per_author)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(FeedError::ContentInvalid(
                        "a signing thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let signed: Vec<SignedFeed> = signed.into_iter().collect::<Result<_, _>>()?;
    let mut feeds: Vec<_> = signed
        .into_iter()
        .enumerate()
        .map(|(a, f)| (author(a as u8).id(), f.into_iter().peekable()))
        .collect();
    let (mut frames, mut left) = (Vec::new(), entries);
    while left > 0 && feeds.iter_mut().any(|(_, f)| f.peek().is_some()) {
        for (id, feed) in feeds.iter_mut() {
            let (mut frame, mut bytes) = (Vec::new(), 0);
            while let Some((entry, payload)) = feed.next_if(|(entry, payload)| {
                left > frame.len()
                    && (frame.is_empty()
                        || bytes + entry.0.len() + payload.len() <= ENTRIES_FRAME_BYTES)
            }) {
                bytes += entry.0.len() + payload.len();
                // Delivered as part of its feed, as a connection hands entries in.
                frame.push(Op::Remote {
                    entry,
                    payload: Some(payload),
                    feed: Some(*id),
                });
            }
            left -= frame.len();
            if !frame.is_empty() {
                frames.push(frame);
            }
        }
    }
    Ok(frames)
}

/// The `seed`-th generated author.
fn author(seed: u8) -> Identity {
    Identity::from_seed([seed.wrapping_add(1); 32])
}

fn author_feed(seed: u8, count: usize) -> Result<Vec<(Entry, Vec<u8>)>, FeedError> {
    let identity = author(seed);
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

/// The raw ed25519 rates, measured on the same signatures.
#[derive(Clone, Copy, Debug)]
pub struct RawRates {
    /// `verify_strict`, one core.
    pub single: f64,
    /// `verify_batch` in batches of [`VERIFY_CHUNK_MAX`], one core.
    pub batch: f64,
    /// The same on `cores` threads at once, each with its own copy of the work.
    pub batch_all_cores: f64,
    /// The pipeline's batch check ([`crate::ingest::batch_valid`]) on `cores` threads at once.
    pub coalesced_all_cores: f64,
    /// CPU time per signature of the all-cores run, in µs (0 if /proc could not be read).
    pub batch_cpu_us: f64,
    /// CPU time per signature of the pipeline's batch check ([`crate::ingest::batch_valid`]) on
    /// one core, in µs (0 if /proc could not be read).
    pub coalesced_cpu_us: f64,
}

/// One signed sample: message, key, signature.
pub type Sample = (
    Vec<u8>,
    ed25519_dalek::VerifyingKey,
    ed25519_dalek::Signature,
);

/// The signed bytes, author key and signature of the first [`RAW_SAMPLES`] entries of `frames`,
/// in the order the pipeline is handed them: the raw rates verify what ingest verifies.
fn samples_of(frames: &[Vec<Op>]) -> Result<Vec<Sample>, FeedError> {
    // Checked as the pipeline checks them (each author's key read once), outside the timing.
    let (mut keys, now) = (KeyCache::default(), now_ms());
    let mut samples = Vec::with_capacity(RAW_SAMPLES);
    for op in frames.iter().flatten().take(RAW_SAMPLES) {
        if let Op::Remote { entry, payload, .. } = op {
            let checked = check_entry_with(entry.clone(), payload.clone(), None, now, &mut keys)?;
            samples.push((
                checked.signed_bytes().to_vec(),
                checked.key,
                checked.signature,
            ));
        }
    }
    Ok(samples)
}

/// Raw verification rates of `samples`: strict single and batches of [`VERIFY_CHUNK_MAX`] on one
/// core, then batches on `cores` threads at once.
pub fn raw_verify_rates(samples: &[Sample], cores: usize) -> RawRates {
    let started = Instant::now();
    let valid = samples
        .iter()
        .filter(|(m, k, s)| k.verify_strict(m, s).is_ok())
        .count();
    let single = valid as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let verified = verify_rounds(samples);
    let batch = verified as f64 / started.elapsed().as_secs_f64();
    let before = procfs::this_thread_cpu_ns().unwrap_or(0);
    let coalesced = coalesced_rounds(samples);
    let coalesced_ns = procfs::this_thread_cpu_ns()
        .unwrap_or(0)
        .saturating_sub(before);
    let (batch_all_cores, verified, cpu_ns) = all_cores(samples, cores, verify_rounds);
    let (coalesced_all_cores, _, _) = all_cores(samples, cores, coalesced_rounds);
    RawRates {
        single,
        batch,
        batch_all_cores,
        coalesced_all_cores,
        batch_cpu_us: cpu_ns as f64 / 1_000.0 / verified.max(1) as f64,
        coalesced_cpu_us: coalesced_ns as f64 / 1_000.0 / coalesced.max(1) as f64,
    }
}

/// `rounds` on `cores` threads at once, each with its own copy of the work: the rate, the
/// signatures verified and the threads' CPU time in ns.
fn all_cores(
    samples: &[Sample],
    cores: usize,
    rounds: fn(&[Sample]) -> usize,
) -> (f64, usize, u64) {
    let started = Instant::now();
    let (verified, cpu_ns): (usize, u64) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let before = procfs::this_thread_cpu_ns().unwrap_or(0);
                    let verified = rounds(samples);
                    let after = procfs::this_thread_cpu_ns().unwrap_or(0);
                    (verified, after.saturating_sub(before))
                })
            })
            .collect();
        // A thread that panicked verified nothing.
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or((0, 0)))
            .fold((0, 0), |(v, c), (tv, tc)| (v + tv, c + tc))
    });
    (
        verified as f64 / started.elapsed().as_secs_f64(),
        verified,
        cpu_ns,
    )
}

/// [`RAW_ROUNDS`] passes of `verify_batch` over the samples; the signatures verified.
fn verify_rounds(samples: &[Sample]) -> usize {
    let mut verified = 0;
    for _ in 0..RAW_ROUNDS {
        for chunk in samples.chunks(VERIFY_CHUNK_MAX) {
            let messages: Vec<&[u8]> = chunk.iter().map(|(m, _, _)| m.as_slice()).collect();
            let keys: Vec<_> = chunk.iter().map(|(_, k, _)| *k).collect();
            let signatures: Vec<_> = chunk.iter().map(|(_, _, s)| *s).collect();
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                verified += chunk.len();
            }
        }
    }
    verified
}

/// [`verify_rounds`] with the pipeline's batch check instead of `verify_batch`.
fn coalesced_rounds(samples: &[Sample]) -> usize {
    let mut verified = 0;
    for _ in 0..RAW_ROUNDS {
        for chunk in samples.chunks(VERIFY_CHUNK_MAX) {
            if crate::ingest::batch_valid(chunk.iter().map(|(m, k, s)| (k, s, m.as_slice()))) {
                verified += chunk.len();
            }
        }
    }
    verified
}

/// CPU time and bytes written, from this process's /proc entries: counts that do not depend on
/// the machine's load as wall-clock rates do.
mod procfs {
    /// Clock ticks per second in /proc/PID/stat (`USER_HZ`, 100 on every mainstream
    /// architecture whatever the kernel's `CONFIG_HZ`).
    const TICKS_PER_SEC: u64 = 100;

    /// User plus system CPU time of the whole process (all threads, live and ended), in ns.
    pub(super) fn process_cpu_ns() -> std::io::Result<u64> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        parse_stat_cpu_ticks(&stat)
            .map(|ticks| ticks * (1_000_000_000 / TICKS_PER_SEC))
            .ok_or_else(|| std::io::Error::other("malformed /proc/self/stat"))
    }

    /// Bytes this process handed to write system calls (`wchar` in /proc/self/io).
    pub(super) fn written_bytes() -> std::io::Result<u64> {
        let io = std::fs::read_to_string("/proc/self/io")?;
        parse_io_field(&io, "wchar")
            .ok_or_else(|| std::io::Error::other("no wchar in /proc/self/io"))
    }

    /// Each live thread's name and CPU time in ns (from its `schedstat`).
    pub(super) fn threads_cpu_ns() -> std::io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        // Bounded by the process's threads; one that ends meanwhile is skipped.
        for task in std::fs::read_dir("/proc/self/task")? {
            let path = task?.path();
            let (Ok(name), Ok(stat)) = (
                std::fs::read_to_string(path.join("comm")),
                std::fs::read_to_string(path.join("schedstat")),
            ) else {
                continue;
            };
            if let Some(ns) = parse_schedstat_ns(&stat) {
                out.push((name.trim_end().to_string(), ns));
            }
        }
        Ok(out)
    }

    /// The calling thread's CPU time in ns.
    pub(super) fn this_thread_cpu_ns() -> Option<u64> {
        parse_schedstat_ns(&std::fs::read_to_string("/proc/thread-self/schedstat").ok()?)
    }

    fn parse_schedstat_ns(schedstat: &str) -> Option<u64> {
        schedstat.split_whitespace().next()?.parse().ok()
    }

    fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
        // After the command name (in parentheses, may hold spaces): utime and stime are the
        // 12th and 13th fields.
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(utime + stime)
    }

    fn parse_io_field(io: &str, name: &str) -> Option<u64> {
        io.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_what_proc_prints() {
            let stat = "42 (kith (a b)) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0";
            assert_eq!(parse_stat_cpu_ticks(stat), Some(200));
            assert_eq!(
                parse_schedstat_ns("198777519 228625229 74\n"),
                Some(198_777_519)
            );
            let io = "rchar: 6976\nwchar: 1234\nsyscr: 10\n";
            assert_eq!(parse_io_field(io, "wchar"), Some(1234));
            assert_eq!(parse_io_field(io, "write_bytes"), None);
            assert!(process_cpu_ns().is_ok());
            assert!(written_bytes().is_ok());
            assert!(this_thread_cpu_ns().is_some());
        }
    }
}
