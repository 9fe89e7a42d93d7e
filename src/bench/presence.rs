//! The library side of `kith bench presence`: the work Phoenix.Tracker was measured on, on the
//! same sizes, so the figures compare one to one (`research/tracker-spec.md` §6, DESIGN.md).
//!
//! Wall-clock figures (`full_transfer_ms`, `delta_merges_per_s`) are measured with
//! `std::time::Instant` around the CRDT work. Cluster figures (`catchup_ms`, `convergence_ms`)
//! run the real shard state machines in the deterministic simulator ([`crate::presence::sim`]) and report
//! **simulated** time: protocol latency (periods, round trips), not CPU time. Memory figures are
//! counted by [`crate::bench::alloc::CountingAlloc`] when it is the global allocator (the `kith`
//! binary, `cargo bench --bench presence`), and absent otherwise. Percentiles come from an HDR
//! histogram ([`crate::loadtest::histogram::Hist`]), as every percentile `kith bench` and the load
//! test print. Phoenix's own figures are quoted in the README with their date and source; this
//! file prints none of them.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::bench::alloc::held_by;
use crate::loadtest::histogram::Hist;
use crate::presence::delta::Payload;
use crate::presence::driver::view::ShardView;
use crate::presence::message::{Envelope, Message};
use crate::presence::options::Options;
use crate::presence::sim::{NetConfig, Sim};
use crate::presence::state::State;
use crate::presence::types::{Dot, Owner, ReplicaRef};

/// Sizes and knobs of a bench run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Presences in the full transfer and in the memory figure (Phoenix: 100,000).
    pub presences: usize,
    /// Number of deltas merged one after another (Phoenix: 1,000).
    pub deltas: usize,
    /// Joins per delta (Phoenix: 100).
    pub delta_joins: usize,
    /// Presences held by the quiet cluster a new node joins (Phoenix: 10,000).
    pub catchup_presences: usize,
    /// Presences tracked in each convergence run (Phoenix: 10,000).
    pub convergence_presences: usize,
    /// Track rate in the convergence runs, per second (Phoenix: 1,000).
    pub joins_per_s: u64,
    /// Cluster sizes for the convergence runs.
    pub cluster_sizes: Vec<usize>,
    /// Seed of the simulated networks.
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            presences: 100_000,
            deltas: 1_000,
            delta_joins: 100,
            catchup_presences: 10_000,
            convergence_presences: 10_000,
            joins_per_s: 1_000,
            cluster_sizes: vec![3, 5, 8],
            seed: 1,
        }
    }
}

impl BenchOptions {
    /// Small sizes, for a smoke test under `cargo test`.
    pub fn tiny() -> Self {
        Self {
            presences: 2_000,
            deltas: 20,
            delta_joins: 10,
            catchup_presences: 300,
            convergence_presences: 200,
            joins_per_s: 1_000,
            cluster_sizes: vec![3],
            ..Self::default()
        }
    }
}

/// Median and 99th percentile, in milliseconds, of the presences that converged.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Presences some node had not listed by the end of the run (not in the percentiles).
    pub unconverged: usize,
}

/// The figures of a bench run, with the sizes they were measured at. Phoenix.Tracker's figures
/// on the same work are quoted in the README ("Anchors"), not here.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Presences in the full transfer and in the memory figures.
    pub presences: usize,
    /// Extract, postcard encode, decode and merge of `presences` into a fresh replica, wall
    /// clock.
    pub full_transfer_ms: f64,
    /// Size of that full-state frame.
    pub full_transfer_bytes: usize,
    /// The full transfer by phase: extract, encode, decode, merge.
    pub full_transfer_phases_ms: [f64; 4],
    /// Deltas merged one after another for `delta_merges_per_s`.
    pub deltas: usize,
    /// Joins per delta.
    pub delta_joins: usize,
    /// `deltas` deltas of `delta_joins` joins merged one after another into a growing replica,
    /// wall clock.
    pub delta_merges_per_s: f64,
    /// Presences held by the quiet cluster a new node joins.
    pub catchup_presences: usize,
    /// A new node joining a quiet 3-node cluster holding `catchup_presences`, at default
    /// periods, until it lists them all. **Simulated time** through the real shard state
    /// machines, 1–5 ms links; `u64::MAX` if it never did within the run.
    pub catchup_ms: u64,
    /// Presences tracked in each convergence run.
    pub convergence_presences: usize,
    /// Their track rate, per second.
    pub joins_per_s: u64,
    /// From a track on one node until every other node lists it, by cluster size, at default
    /// periods (1.5 s broadcast), `convergence_presences` tracked at `joins_per_s`.
    /// **Simulated time**, 1–5 ms links.
    pub convergence_ms: BTreeMap<String, Percentiles>,
    /// Heap bytes per tracked presence in the CRDT state of a replica holding `presences`
    /// remote presences, counted by the counting allocator; `None` when it is not the global
    /// allocator (never estimated).
    pub bytes_per_presence: Option<f64>,
    /// Same, for a replica's own presences (they also sit in the owner index).
    pub bytes_per_local_presence: Option<f64>,
    /// Extra heap bytes per presence in the shard actor's concurrently readable view.
    pub view_bytes_per_presence: Option<f64>,
}

fn meta(i: usize) -> Vec<u8> {
    (i as u64).to_le_bytes().to_vec()
}

/// A replica holding `n` of its own presences over 100 topics.
fn populated(me: &ReplicaRef, n: usize) -> State {
    let mut s = State::new(me.clone());
    for i in 0..n {
        let _ = s.track(
            Owner(i as u64),
            &format!("room{}", i % 100),
            &format!("user{i}"),
            meta(i),
        );
    }
    s.reset_delta();
    s
}

/// Runs every measurement.
pub fn run(opts: BenchOptions) -> BenchReport {
    let (full_transfer_ms, full_transfer_bytes, phases) = full_transfer(opts.presences);
    let memory = memory(&opts);
    BenchReport {
        presences: opts.presences,
        full_transfer_ms,
        full_transfer_bytes,
        full_transfer_phases_ms: phases,
        deltas: opts.deltas,
        delta_joins: opts.delta_joins,
        delta_merges_per_s: delta_merges(opts.deltas, opts.delta_joins),
        catchup_presences: opts.catchup_presences,
        catchup_ms: catchup(opts.catchup_presences, opts.seed),
        convergence_presences: opts.convergence_presences,
        joins_per_s: opts.joins_per_s,
        convergence_ms: opts
            .cluster_sizes
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    convergence(*k, opts.convergence_presences, opts.joins_per_s, opts.seed),
                )
            })
            .collect(),
        bytes_per_presence: memory.remote,
        bytes_per_local_presence: memory.local,
        view_bytes_per_presence: memory.view,
    }
}

fn full_transfer(n: usize) -> (f64, usize, [f64; 4]) {
    let (a_ref, b_ref) = (ReplicaRef::new("a", 1), ReplicaRef::new("b", 1));
    let a = populated(&a_ref, n);
    let mut b = State::new(b_ref.clone());
    b.replica_up(&a_ref);
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    let payload = Payload::Full(a.extract(&b_ref, b.context()));
    let extract = ms(t0);
    let t1 = Instant::now();
    let env = Envelope {
        shard: 0,
        shard_count: 1,
        message: Message::TransferAck {
            id: 1,
            from: a_ref,
            payload,
        },
    };
    let bytes = env.encode().unwrap_or_default();
    let encode = ms(t1);
    let t2 = Instant::now();
    let decoded = Envelope::decode(&bytes).map(|e| e.message);
    let decode = ms(t2);
    let t3 = Instant::now();
    let diff = match decoded {
        Ok(Message::TransferAck { payload, .. }) => b.merge(payload),
        _ => Default::default(),
    };
    let merge = ms(t3);
    debug_assert_eq!(diff.joins.len(), n);
    (
        extract + encode + decode + merge,
        bytes.len(),
        [extract, encode, decode, merge],
    )
}

fn delta_merges(count: usize, joins: usize) -> f64 {
    let (a_ref, b_ref) = (ReplicaRef::new("a", 1), ReplicaRef::new("b", 1));
    let mut a = State::new(a_ref.clone());
    let deltas: Vec<_> = (0..count)
        .map(|d| {
            for j in 0..joins {
                let i = d * joins + j;
                let _ = a.track(
                    Owner(i as u64),
                    &format!("room{}", i % 100),
                    &format!("user{i}"),
                    meta(i),
                );
            }
            a.reset_delta()
        })
        .collect();
    let mut b = State::new(b_ref);
    b.replica_up(&a_ref);
    let start = Instant::now();
    for d in deltas {
        b.merge_delta(d);
    }
    count as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

fn bench_net() -> NetConfig {
    NetConfig {
        latency_min: 1,
        latency_max: 5,
        record_joins: true,
        ..NetConfig::default()
    }
}

fn catchup(total: usize, seed: u64) -> u64 {
    let mut s = Sim::new(bench_net(), seed);
    let names = ["a", "b", "c"];
    for n in names {
        let _ = s.start(n, 1, Options::default());
    }
    for i in 0..total {
        let node = names[i % names.len()];
        s.with(node, |sh| {
            sh.track(
                Owner(i as u64),
                &format!("room{}", i % 100),
                &format!("user{i}"),
                meta(i),
            )
        });
    }
    s.run_until(30_000);
    let start = s.now();
    let _ = s.start("new", 1, Options::default());
    let seen = |s: &Sim| {
        s.node("new")
            .is_some_and(|n| n.shard.state().visible_count() >= total)
    };
    s.run_until_pred(start + 120_000, seen)
        .map_or(u64::MAX, |t| t - start)
}

fn convergence(nodes: usize, total: usize, per_s: u64, seed: u64) -> Percentiles {
    let mut s = Sim::new(bench_net(), seed);
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
    for n in &names {
        let _ = s.start(n, 1, Options::default());
    }
    s.run_until(5_000);
    let mut tracked: Vec<(Dot, usize, u64)> = Vec::with_capacity(total);
    for i in 0..total {
        let at = 5_000 + (i as u64 * 1_000) / per_s.max(1);
        s.run_until(at);
        let node = i % nodes;
        let p = s.with(&names[node], |sh| {
            sh.track(Owner(i as u64), "room", &format!("user{i}"), meta(i))
        });
        if let Some(Ok(p)) = p {
            tracked.push((p.dot, node, s.now()));
        }
    }
    let t = s.now() + 10_000;
    s.run_until(t);
    // Each presence's latency: until the last of the other nodes listed it; `None` if one
    // never did.
    let latencies = tracked.iter().map(|(dot, origin, t0)| {
        names
            .iter()
            .enumerate()
            .filter(|(i, _)| i != origin)
            .map(|(_, n)| {
                s.node(n)
                    .and_then(|nd| nd.joined_at.get(dot))
                    .map(|t| t.saturating_sub(*t0))
            })
            .try_fold(0, |worst, t| t.map(|t| worst.max(t)))
    });
    let (mut hist, mut unconverged) = (Hist::new().ok(), 0);
    for latency in latencies {
        match (latency, hist.as_mut()) {
            (Some(ms), Some(hist)) => hist.record(ms),
            _ => unconverged += 1,
        }
    }
    let at = |q: f64| hist.as_ref().map_or(0, |h| h.value_at(q));
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        unconverged,
    }
}

/// Heap bytes per presence, counted by the counting allocator (`None` without it).
struct Memory {
    remote: Option<f64>,
    local: Option<f64>,
    view: Option<f64>,
}

fn memory(opts: &BenchOptions) -> Memory {
    let n = opts.presences.max(1);
    let (a_ref, b_ref) = (ReplicaRef::new("a", 1), ReplicaRef::new("b", 1));
    let (local, local_bytes) = held_by(|| populated(&a_ref, n));
    let ctx = [(a_ref.clone(), 0), (b_ref.clone(), 0)]
        .into_iter()
        .collect();
    let frame = postcard::to_stdvec(&local.extract(&b_ref, &ctx)).unwrap_or_default();
    drop(local);
    let mut remote = State::new(b_ref.clone());
    remote.replica_up(&a_ref);
    let ((), remote_bytes) = held_by(|| {
        if let Ok(full) = postcard::from_bytes(&frame) {
            drop(remote.merge(Payload::Full(full)));
        }
    });
    let view = ShardView::new();
    // The diff is built and dropped inside the measurement: only what the view keeps counts.
    let ((), view_bytes) = held_by(|| {
        view.apply(&crate::presence::types::Diff {
            joins: remote.visible_presences(),
            leaves: vec![],
        })
    });
    let per = |b: Option<usize>| b.map(|b| b as f64 / n as f64);
    Memory {
        remote: per(remote_bytes),
        local: per(local_bytes),
        view: per(view_bytes),
    }
}
