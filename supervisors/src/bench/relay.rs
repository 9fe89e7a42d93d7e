//! `kith bench relay`: a real switchboard process on loopback and peers in this process, on the
//! work iroh-relay was measured on here: relayed round trips of a 1,200-byte packet, the highest
//! relayed rate without loss, connects per second, and the switchboard's memory per client.
//!
//! The peers speak the real protocol (key-bound QUIC, hello, join, introduction) and then send
//! raw relayed datagrams (`[32-byte key][payload]`), which is what an inner QUIC packet is to the
//! switchboard. Each client is rate-limited by design (`RELAY_CLIENT_*` in limits.rs, 16 MiB/s by
//! default: about 13,600 full frames a second). Sequential round trips with idle CPUs polling
//! run faster than that, so the bench's switchboard runs with the operator's flags raising the
//! per-client limits ([`CLIENT_PACKETS_PER_SEC`], [`CLIENT_BYTES_PER_SEC`]): it measures the
//! relay, not the throttle (the throttle has its own tests). The rate sweep uses several
//! introduced pairs at once, and reads the switchboard's refusal counters per step.
//!
//! Round trips are measured twice, with the machine's floor beside each: plain UDP round trips
//! between two threads, and direct QUIC round trips between A and B. First with idle CPUs free
//! to halt, then as `cyclictest` measures, with a PM QoS request that keeps idle CPUs polling
//! ([`crate::bench::wake_latency`]): on this VM a halted vCPU takes tens to hundreds of microseconds to
//! wake, and a relayed round trip wakes four sleepers. The headline `rtt_us` is the second when
//! the request could be made (root), and says which it is.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use kith::bench::handshake::HandshakeCrypto;
use kith::identity::FeedId;
use kith::loadtest::client::{self as lt_client, Joined, SbTarget};
use kith::loadtest::histogram::Hist;
use kith::loadtest::procfs;
use kith::net::tls::server_name;
use kith::net::PeerEndpoint;
use kith::relay::config::{outer_client_config, outer_server_config};
use kith::wire::control::Request;
use kith::wire::switchboard::{ClientMsg, IntroAnswer, ServerMsg};
use serde::Serialize;

use crate::bench::wake_latency::WakeLatencyHold;
use crate::cli::client;
use crate::loadtest::spawn::{LocalCluster, Node};

/// Sequential round trips measured.
const ROUND_TRIPS: usize = 10_000;
/// Round trips made before each measurement and not counted (connections, caches and the
/// switchboard's buffers warm up, as in any latency benchmark).
const WARM_UP: usize = 500;
/// A round trip not back by then is counted lost, and the next one starts.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_millis(200);
/// Lost round trips past which a measurement is abandoned (1%): something is broken.
const LOST_MAX: u64 = ROUND_TRIPS as u64 / 100;
/// Per-client packet rate the bench's switchboard allows (`--client-packets-per-sec`).
const CLIENT_PACKETS_PER_SEC: u32 = 200_000;
/// Per-client byte rate the bench's switchboard allows (`--client-bytes-per-sec`, 256 MiB/s).
const CLIENT_BYTES_PER_SEC: u64 = 256 * 1024 * 1024;
/// Payload of a relayed packet (an inner QUIC packet's size).
const PACKET_BYTES: usize = 1_200;
/// Pairs used for the rate sweep.
const PAIRS: usize = 8;
/// The sweep's first rate and its step, in packets per second over all pairs.
const RATE_STEP: u64 = 10_000;
/// The sweep stops at this rate, or earlier at the first step that loses packets or that the
/// harness cannot offer in time.
const RATE_MAX: u64 = 500_000;
/// A step's packets must all be offered within this share over its second, or the harness, not
/// the switchboard, is the limit and the sweep stops.
const OFFERED_SHARE_MIN: f64 = 0.95;
/// Clients connected for the connect rate and the memory per client (as iroh-relay was measured).
const CLIENTS: usize = 5_000;
/// Rounds of each public-key operation timed for the handshake ceiling (about 0.3 s here).
const HANDSHAKE_CRYPTO_ROUNDS: u32 = 2_000;
/// Clients connecting at once: enough that the switchboard, not the round trips, sets the pace.
const CONCURRENCY: usize = 128;
/// UDP sockets the clients dial from, each on its own loopback address, so that `CONCURRENCY`
/// stays within the switchboard's per-address handshake cap (half of it per socket).
const CLIENT_SOCKETS: usize = 32;
const _: () = assert!(CONCURRENCY <= CLIENT_SOCKETS * kith::limits::HANDSHAKES_PER_ADDRESS_MAX / 2);

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    /// Relayed round-trip percentiles in µs: `polling.relayed_us` when idle CPUs were kept
    /// polling, else `halting.relayed_us`.
    pub rtt_us: Percentiles,
    /// Whether `rtt_us` was measured with idle CPUs polling (the PM QoS request was made).
    pub cpus_polled_when_idle: bool,
    /// Round trips with idle CPUs free to halt (each wake-up pays the hypervisor's latency).
    pub halting: Latency,
    /// The same with idle CPUs polling; `None` when the request could not be made.
    pub polling: Option<Latency>,
    /// Highest rate (packets/s over all pairs) relayed with no loss and offered in time; 0 if
    /// even the lowest lost.
    pub relay_pps: u64,
    /// Per rate tried: sent and received packets.
    pub sweep: Vec<RateStep>,
    /// The connect phases (first joins, then reconnects after a switchboard restart), their
    /// fields at the top level of the JSON as `--connects-only` prints them.
    #[serde(flatten)]
    pub connects: ConnectsReport,
    /// Per-client relay limits the switchboard ran with, as its status reports them.
    pub client_packets_per_sec: u64,
    /// See `client_packets_per_sec`.
    pub client_bytes_per_sec: u64,
}

/// Round trips under one condition of the CPUs, beside the machine's floor in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// A → switchboard → B → switchboard → A: four loopback hops and four QUIC stacks.
    pub relayed_us: Percentiles,
    /// The floor: the same packet over plain loopback UDP between two threads, one hop each
    /// way (no QUIC, no switchboard).
    pub udp_us: Percentiles,
    /// A and B over a direct QUIC connection: two QUIC stacks and the harness, no switchboard.
    pub direct_us: Percentiles,
    /// What the relayed round trips cost the switchboard process, per round trip (two relayed
    /// packets, warm-up included): counts the machine's load does not change, unlike the times.
    pub switchboard_per_round_trip: Cost,
    /// The same for the harness's thread that runs A and B (four QUIC stacks' ends).
    pub harness_per_round_trip: Cost,
    /// Times a CPU of the machine entered a halting idle state per relayed round trip (any
    /// process's; from the cpuidle counters, `None` where there are none): the condition the
    /// times were taken in, near 0 when CPUs were kept polling or busy.
    pub cpu_halts_per_round_trip: Option<f64>,
}

/// Entries into idle states other than polling, summed over the machine's CPUs (cpuidle's
/// `usage` counters); `None` without cpuidle.
fn cpu_halts() -> Option<u64> {
    let cpus = std::fs::read_dir("/sys/devices/system/cpu").ok()?;
    let mut halts = None;
    for cpu in cpus.flatten() {
        let Ok(states) = std::fs::read_dir(cpu.path().join("cpuidle")) else {
            continue;
        };
        for state in states.flatten() {
            let read = |name: &str| std::fs::read_to_string(state.path().join(name));
            if read("name").is_ok_and(|n| n.trim() == "POLL") {
                continue;
            }
            if let Some(usage) = read("usage")
                .ok()
                .and_then(|u| u.trim().parse::<u64>().ok())
            {
                *halts.get_or_insert(0) += usage;
            }
        }
    }
    halts
}

/// CPU time and wake-ups per round trip, from the kernel's scheduler statistics
/// (`/proc/PID/task/*/schedstat`: time on a CPU, and times a thread was switched in).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cost {
    /// CPU time in µs, all threads.
    pub cpu_us: f64,
    /// Times a thread was switched in: each is a wake-up (or a preemption), and with idle CPUs
    /// halting a wake-up on another CPU pays the hypervisor's wake latency.
    pub switched_in: f64,
}

/// Scheduler totals of a set of threads at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct SchedTotals {
    on_cpu_ns: u64,
    switched_in: u64,
}

impl SchedTotals {
    /// Summed over every thread of process `pid`.
    fn process(pid: u32) -> Result<Self> {
        let mut totals = SchedTotals::default();
        let dir = format!("/proc/{pid}/task");
        for task in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            // A thread that ended since the listing has no file any more: it is not counted.
            if let Ok(text) = std::fs::read_to_string(task?.path().join("schedstat")) {
                totals.add(&text)?;
            }
        }
        Ok(totals)
    }

    /// The calling thread's.
    fn this_thread() -> Result<Self> {
        let mut totals = SchedTotals::default();
        totals.add(&std::fs::read_to_string("/proc/thread-self/schedstat")?)?;
        Ok(totals)
    }

    /// Adds one `schedstat` line: ns on a CPU, ns waiting to run, times switched in.
    fn add(&mut self, schedstat: &str) -> Result<()> {
        let mut fields = schedstat.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(on_cpu_ns)), Some(Ok(_)), Some(Ok(switched_in))) =
            (fields.next(), fields.next(), fields.next())
        else {
            bail!("malformed schedstat: {schedstat:?}");
        };
        self.on_cpu_ns += on_cpu_ns;
        self.switched_in += switched_in;
        Ok(())
    }

    /// Per round trip, from `self` to `later`, over `round_trips`.
    fn per(self, later: SchedTotals, round_trips: usize) -> Cost {
        let n = round_trips.max(1) as f64;
        Cost {
            cpu_us: later.on_cpu_ns.saturating_sub(self.on_cpu_ns) as f64 / 1_000.0 / n,
            switched_in: later.switched_in.saturating_sub(self.switched_in) as f64 / n,
        }
    }
}

/// CPU time per client of one phase, in µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuPerClient {
    /// The switchboard process.
    pub switchboard: u64,
    /// The bench's own process (the clients' side).
    pub harness: u64,
}

/// p50 / p99 / max of the round trips that came back, and how many did not.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Round trips not back within the timeout (not in the percentiles).
    pub lost: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Worst.
    pub max: u64,
}

/// One step of the rate sweep.
#[derive(Debug, Clone, Serialize)]
pub struct RateStep {
    /// Packets per second offered.
    pub rate: u64,
    /// Packets sent.
    pub sent: u64,
    /// Milliseconds the harness took to offer them (1,000 when it kept up).
    pub offered_in_ms: u64,
    /// Packets received.
    pub received: u64,
    /// Of the lost, refused by the switchboard because the receiver's queue was full (counted
    /// there; the rest were lost in the sockets on the way).
    pub refused_queue_full: u64,
    /// Of the lost, refused by the switchboard's per-client rate limit.
    pub refused_rate_limited: u64,
    /// UDP datagrams the kernel dropped for a full socket receive buffer during the step, on
    /// any socket of the machine (`RcvbufErrors` in /proc/net/snmp); 0 where unreadable.
    pub dropped_rcvbuf: u64,
}

impl RateStep {
    fn lossless(&self) -> bool {
        self.received == self.sent
    }

    fn offered_in_time(&self) -> bool {
        self.sent as f64 / (self.offered_in_ms.max(1_000) as f64 / 1_000.0)
            >= OFFERED_SHARE_MIN * self.rate as f64
    }
}

/// The switchboard process (spawned and killed by the load-test harness's local cluster).
type Switchboard = Node;
/// Where the switchboard listens and the key it proves.
type Target = SbTarget;

/// Run the benchmark.
pub async fn run() -> Result<RelayReport> {
    let mut cluster = start_switchboard()?;
    let sb = the_switchboard(&cluster)?;
    let (halting, polling) = latencies(sb.at, sb.child.id()).await?;
    let rtt_us = polling.as_ref().unwrap_or(&halting).relayed_us.clone();
    let cpus_polled_when_idle = polling.is_some();
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let (x, y) = (
            Peer::connect(sb.at, 10 + 2 * i as u8).await?,
            Peer::connect(sb.at, 11 + 2 * i as u8).await?,
        );
        introduce(&x, &y).await?;
        pairs.push((x, y));
    }
    let sweep = sweep(sb, &pairs).await?;
    let relay_pps = sweep
        .iter()
        .filter(|s| s.lossless() && s.offered_in_time())
        .map(|s| s.rate)
        .max()
        .unwrap_or(0);
    let relay = &client::call(sb.dir.path(), &Request::Status)?["relay"];
    let limit = |key: &str| {
        relay[key]
            .as_u64()
            .ok_or_else(|| anyhow!("no {key} in the switchboard's status"))
    };
    let client_packets_per_sec = limit("client_packets_per_sec")?;
    let client_bytes_per_sec = limit("client_bytes_per_sec")?;
    drop(pairs);
    Ok(RelayReport {
        rtt_us,
        cpus_polled_when_idle,
        halting,
        polling,
        relay_pps,
        sweep,
        connects: connects(&mut cluster).await?,
        client_packets_per_sec,
        client_bytes_per_sec,
    })
}

/// One local switchboard, with the operator's flags raising the per-client relay limits.
fn start_switchboard() -> Result<LocalCluster> {
    LocalCluster::start(1, &switchboard_flags())
}

/// The bench switchboard's flags (the per-client relay limits).
fn switchboard_flags() -> Vec<String> {
    vec![
        "--client-packets-per-sec".to_string(),
        CLIENT_PACKETS_PER_SEC.to_string(),
        "--client-bytes-per-sec".to_string(),
        CLIENT_BYTES_PER_SEC.to_string(),
    ]
}

struct Peer {
    id: FeedId,
    key: SigningKey,
    conn: quinn::Connection,
    send: tokio::sync::Mutex<quinn::SendStream>,
    recv: tokio::sync::Mutex<quinn::RecvStream>,
    endpoint: PeerEndpoint,
}

impl Peer {
    async fn connect(sb: Target, seed: u8) -> Result<Peer> {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let endpoint = PeerEndpoint::bind("127.0.0.1:0".parse()?, &key)?;
        let joined = lt_client::join(&endpoint, &key, sb).await?;
        Ok(Peer {
            id: FeedId::from(key.verifying_key()),
            key,
            conn: joined.conn,
            send: tokio::sync::Mutex::new(joined.send),
            recv: tokio::sync::Mutex::new(joined.recv),
            endpoint,
        })
    }

    async fn write(&self, msg: &ClientMsg) -> Result<()> {
        Ok(lt_client::write(&mut *self.send.lock().await, msg).await?)
    }

    async fn read(&self) -> Result<ServerMsg> {
        Ok(lt_client::read(&mut *self.recv.lock().await).await?)
    }
}

async fn introduce(a: &Peer, b: &Peer) -> Result<()> {
    a.write(&ClientMsg::Introduce { to: b.id }).await?;
    match b.read().await? {
        ServerMsg::IntroRequest { from, .. } if from == a.id => {}
        other => bail!("unexpected {other:?}"),
    }
    b.write(&ClientMsg::IntroAnswer {
        from: a.id,
        answer: IntroAnswer::RelayOnly,
    })
    .await?;
    match a.read().await? {
        ServerMsg::Introduced { peer, .. } if peer == b.id => Ok(()),
        other => bail!("not introduced: {other:?}"),
    }
}

fn packet(to: &FeedId, seq: u64) -> Bytes {
    let mut bytes = vec![0u8; 32 + PACKET_BYTES];
    bytes[..32].copy_from_slice(&to.0);
    bytes[32..40].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(bytes)
}

/// The round trips with idle CPUs halting, then polling (when the PM QoS request can be made).
/// A and B live on a runtime of their own on one thread: the measurement is the switchboard's,
/// so the harness keeps its own scheduling (work stealing between two busy processes on two
/// cores) out of it.
async fn latencies(sb: Target, sb_pid: u32) -> Result<(Latency, Option<Latency>)> {
    let measure = move || -> Result<(Latency, Option<Latency>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let (a, b) = (Peer::connect(sb, 1).await?, Peer::connect(sb, 2).await?);
            introduce(&a, &b).await?;
            let (a_direct, b_direct) = direct_connection(&a, &b).await?;
            let measure = || async {
                let before = (SchedTotals::process(sb_pid)?, SchedTotals::this_thread()?);
                let halts_before = cpu_halts();
                let relayed_us = echo_round_trips(&a.conn, &b.conn, &b.id).await?;
                let halts = cpu_halts()
                    .zip(halts_before)
                    .map(|(a, b)| a.saturating_sub(b));
                let after = (SchedTotals::process(sb_pid)?, SchedTotals::this_thread()?);
                Ok::<_, anyhow::Error>(Latency {
                    relayed_us,
                    udp_us: udp_round_trips().await?,
                    direct_us: echo_round_trips(&a_direct, &b_direct, &b.id).await?,
                    switchboard_per_round_trip: before.0.per(after.0, WARM_UP + ROUND_TRIPS),
                    harness_per_round_trip: before.1.per(after.1, WARM_UP + ROUND_TRIPS),
                    cpu_halts_per_round_trip: halts
                        .map(|h| h as f64 / (WARM_UP + ROUND_TRIPS) as f64),
                })
            };
            let halting = measure().await?;
            let polling = match WakeLatencyHold::zero() {
                Ok(_hold) => Some(measure().await?),
                Err(e) => {
                    eprintln!("round trips measured with idle CPUs halting only: {e}");
                    None
                }
            };
            Ok((halting, polling))
        })
    };
    tokio::task::spawn_blocking(measure).await?
}

/// A direct QUIC connection from A to B (no switchboard), for the floor of two QUIC stacks and
/// the harness. Both ends use the relay link's transport, so that the same 1,232-byte datagrams
/// fit.
async fn direct_connection(a: &Peer, b: &Peer) -> Result<(quinn::Connection, quinn::Connection)> {
    b.endpoint
        .quinn()
        .set_server_config(Some(outer_server_config(&b.key)?));
    let accept = async {
        let incoming = b
            .endpoint
            .quinn()
            .accept()
            .await
            .ok_or_else(|| anyhow!("b's endpoint closed"))?;
        Ok::<_, anyhow::Error>(incoming.await?)
    };
    let b_key = b.id.verifying_key()?;
    let config = outer_client_config(&a.key, b_key)?;
    let dial = async {
        Ok::<_, anyhow::Error>(
            a.endpoint
                .quinn()
                .connect_with(config, b.endpoint.local_addr()?, &server_name(&b_key))?
                .await?,
        )
    };
    let (accepted, dialled) = tokio::join!(accept, dial);
    Ok((dialled?, accepted?))
}

/// `a` sends `[to][seq][payload]`, `b` echoes it back, one at a time; on a relayed link the
/// switchboard has already rewritten the header to A's key, so the same bytes go back to A.
/// The first [`WARM_UP`] are not counted; one not back within [`ROUND_TRIP_TIMEOUT`] is counted
/// lost (a refusal by the switchboard, or a drop in a socket) and the next one starts.
async fn echo_round_trips(
    a: &quinn::Connection,
    b: &quinn::Connection,
    to: &FeedId,
) -> Result<Percentiles> {
    let echo_conn = b.clone();
    let echo = tokio::spawn(async move {
        while let Ok(frame) = echo_conn.read_datagram().await {
            if echo_conn.send_datagram(frame).is_err() {
                return;
            }
        }
    });
    let (mut samples, mut lost) = (Vec::with_capacity(ROUND_TRIPS), 0);
    for seq in 0..(WARM_UP + ROUND_TRIPS) as u64 {
        let started = Instant::now();
        a.send_datagram(packet(to, seq))?;
        let back = tokio::time::timeout(ROUND_TRIP_TIMEOUT, async {
            // Skips a late echo of an earlier, lost round trip.
            while a.read_datagram().await?.get(32..40) != Some(&seq.to_be_bytes()[..]) {}
            Ok::<_, quinn::ConnectionError>(())
        });
        match back.await {
            Ok(Ok(())) if seq >= WARM_UP as u64 => {
                samples.push(started.elapsed().as_micros() as u64)
            }
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("round trip {seq}: {e}"),
            Err(_) => lost += 1,
        }
        if lost > LOST_MAX {
            bail!("{lost} of {seq} round trips lost");
        }
    }
    echo.abort();
    percentiles(samples, lost)
}

/// p50 / p99 / max from an HDR histogram (the one percentile helper of `kith bench` and the load
/// test), in µs.
fn percentiles(samples: Vec<u64>, lost: u64) -> Result<Percentiles> {
    let mut hist = Hist::new()?;
    for sample in samples {
        hist.record(sample);
    }
    Ok(Percentiles {
        lost,
        p50: hist.value_at(0.50),
        p99: hist.value_at(0.99),
        max: hist.max_value(),
    })
}

/// Plain UDP round trips of a relayed packet's size: a blocking echo thread, and a client on
/// the same kind of one-thread runtime the relayed round trips use.
async fn udp_round_trips() -> Result<Percentiles> {
    let echo = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let echo_addr = echo.local_addr()?;
    // The echo thread ends once nothing has come for a while.
    echo.set_read_timeout(Some(Duration::from_secs(2)))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            if echo.send_to(&buf[..n], from).is_err() {
                return;
            }
        }
    });
    let measure = move || -> Result<Percentiles> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(echo_addr).await?;
            let (packet, mut buf) = (vec![0u8; 32 + PACKET_BYTES], vec![0u8; 2048]);
            let mut samples = Vec::with_capacity(WARM_UP + ROUND_TRIPS);
            for _ in 0..WARM_UP + ROUND_TRIPS {
                let started = Instant::now();
                socket.send(&packet).await?;
                tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await??;
                samples.push(started.elapsed().as_micros() as u64);
            }
            percentiles(samples.split_off(WARM_UP), 0)
        })
    };
    tokio::task::spawn_blocking(measure).await?
}

/// The switchboard's refusal counters: (queue full, rate limited).
fn refusals(sb: &Switchboard) -> Result<(u64, u64)> {
    let status = client::call(sb.dir.path(), &Request::Status)?;
    let relay = &status["relay"];
    let count = |key: &str| {
        relay[key]
            .as_u64()
            .ok_or_else(|| anyhow!("no {key} in the switchboard's status"))
    };
    Ok((count("refused_queue_full")?, count("refused_rate_limited")?))
}

/// Offer each rate for one second over all pairs (x → y), paced per millisecond; count what
/// arrives, and what the switchboard refused. Stops after the first step that lost packets or
/// that the harness could not offer in time.
async fn sweep(sb: &Switchboard, pairs: &[(Peer, Peer)]) -> Result<Vec<RateStep>> {
    let mut steps: Vec<RateStep> = Vec::new();
    for rate in (RATE_STEP..=RATE_MAX).step_by(RATE_STEP as usize) {
        if steps
            .last()
            .is_some_and(|s| !s.lossless() || !s.offered_in_time())
        {
            break;
        }
        let (before, rcvbuf_before) = (refusals(sb)?, udp_rcvbuf_errors());
        let received = Arc::new(AtomicU64::new(0));
        let counters: Vec<_> = pairs
            .iter()
            .map(|(_, y)| {
                let (conn, received) = (y.conn.clone(), Arc::clone(&received));
                tokio::spawn(async move {
                    while let Ok(Ok(_)) =
                        tokio::time::timeout(Duration::from_millis(500), conn.read_datagram()).await
                    {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Exactly `rate / 1000` packets each millisecond, spread over the pairs.
        let (per_ms, n) = (rate / 1_000, pairs.len() as u64);
        let mut sent = 0;
        let start = tokio::time::Instant::now();
        for ms in 0..1_000u64 {
            for (i, (x, y)) in pairs.iter().enumerate() {
                for _ in 0..per_ms / n + u64::from((i as u64) < per_ms % n) {
                    if x.conn.send_datagram(packet(&y.id, sent)).is_ok() {
                        sent += 1;
                    }
                }
            }
            tokio::time::sleep_until(start + Duration::from_millis(ms + 1)).await;
        }
        let offered_in_ms = start.elapsed().as_millis() as u64;
        for counter in counters {
            let _ = counter.await;
        }
        let after = refusals(sb)?;
        steps.push(RateStep {
            rate,
            sent,
            offered_in_ms,
            received: received.load(Ordering::Relaxed),
            refused_queue_full: after.0 - before.0,
            refused_rate_limited: after.1 - before.1,
            dropped_rcvbuf: udp_rcvbuf_errors().saturating_sub(rcvbuf_before),
        });
    }
    Ok(steps)
}

/// The kernel's count of UDP datagrams dropped for a full receive buffer; 0 if unreadable.
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors");
    at.and_then(|i| values.split_whitespace().nth(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What [`connects`] measured: flattened into [`RelayReport`] (the same JSON keys), and alone what
/// `kith bench relay --connects-only` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectsReport {
    /// Clients that connected, joined and were admitted per second (first joins: full TLS
    /// handshakes, hello and join pipelined in one round trip).
    pub connects_per_s: f64,
    /// The same clients coming back at once after the switchboard was killed and started again
    /// on the same address with the same key (SIGKILL, as a crash): per second.
    pub reconnects_per_s: f64,
    /// Of those reconnects, how many resumed their TLS session (no signature either way).
    pub reconnects_resumed: usize,
    /// Retries (address validation) the switchboard asked for during the first joins, and
    /// during the reconnects: each costs the client a round trip.
    pub connect_retries: u64,
    /// See `connect_retries`.
    pub reconnect_retries: u64,
    /// CPU time per first join, in µs: the switchboard process's and this harness's (all
    /// threads, from /proc): a count the machine's load does not change, unlike the rates.
    pub connect_cpu_us: CpuPerClient,
    /// The same per reconnect.
    pub reconnect_cpu_us: CpuPerClient,
    /// What the switchboard's accept loop did during the first joins, and the datagrams each
    /// client exchanged: counts the machine's load does not change.
    pub connect_counts: PhaseCounts,
    /// The same during the reconnects.
    pub reconnect_counts: PhaseCounts,
    /// The switchboard process's resident memory per connected client.
    pub bytes_per_client: u64,
    /// Clients used for the two figures above.
    pub clients: usize,
    /// The machine's raw limit, measured in this run: the public-key work of one side of a
    /// handshake (`kith::bench::handshake`), full and resumed, in µs of one core.
    pub handshake_crypto_us: HandshakeCrypto,
    /// Connects per second this machine's cores could reach if they did nothing but that work
    /// for both sides (clients and switchboard share the machine here): no faster
    /// implementation of this protocol can pass it on this machine.
    pub connects_crypto_ceiling_per_s: f64,
    /// The same for resumed reconnects (one X25519 exchange per side).
    pub reconnects_crypto_ceiling_per_s: f64,
    /// The cores those ceilings count.
    pub cores: usize,
}

/// What the switchboard's accept loop did during one connect phase (the differences of its
/// handshake counts in `kith status`), and the UDP datagrams each client's connection exchanged
/// by the end of the phase (quinn's connection stats: handshake, Retry, hello, join, acks).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PhaseCounts {
    /// Attempts answered with a Retry (address validation): a round trip more for the client.
    pub retried: u64,
    /// Attempts from validated addresses that waited for a free handshake slot.
    pub queued: u64,
    /// Attempts refused (every slot and the queue taken, the per-address cap, a queue wait run
    /// out): the client tries again.
    pub refused: u64,
    /// Times the switchboard's door went on guard (Retries for new addresses) after a sign of
    /// attack: a handshake from a new address pending past `HANDSHAKE_STALE_AFTER`, or ending
    /// without completing. Honest clients should raise none.
    pub guarded: u64,
    /// Datagrams a client sent, per client.
    pub datagrams_sent: f64,
    /// Datagrams a client received, per client.
    pub datagrams_received: f64,
}

/// The switchboard's handshake counts now: (retried, queued, refused, guarded).
fn handshake_counts(sb: &Switchboard) -> Result<(u64, u64, u64, u64)> {
    let status = client::call(sb.dir.path(), &Request::Status)?;
    let counts = &status["counters"]["handshakes"];
    let count = |key: &str| {
        counts[key]
            .as_u64()
            .ok_or_else(|| anyhow!("no {key} in the switchboard's handshake counts"))
    };
    Ok((
        count("retried")?,
        count("queued_total")?,
        count("refused_busy")? + count("refused_per_address")? + count("queue_expired")?,
        count("guarded")?,
    ))
}

/// The phase's counts from the switchboard's counts before and after it, and its clients.
fn phase_counts(
    before: (u64, u64, u64, u64),
    after: (u64, u64, u64, u64),
    clients: &[Joined],
) -> PhaseCounts {
    let n = clients.len().max(1) as f64;
    let (sent, received) = clients.iter().fold((0, 0), |(s, r), c| {
        let stats = c.conn.stats();
        (s + stats.udp_tx.datagrams, r + stats.udp_rx.datagrams)
    });
    PhaseCounts {
        retried: after.0.saturating_sub(before.0),
        queued: after.1.saturating_sub(before.1),
        refused: after.2.saturating_sub(before.2),
        guarded: after.3.saturating_sub(before.3),
        datagrams_sent: sent as f64 / n,
        datagrams_received: received as f64 / n,
    }
}

/// Only the connect phases, on a switchboard of their own: `kith bench relay --connects-only`.
pub async fn run_connects() -> Result<ConnectsReport> {
    let mut cluster = start_switchboard()?;
    connects(&mut cluster).await
}

/// The connect phases' figures as text.
pub fn connects_text(r: &ConnectsReport) -> String {
    format!(
        "{} clients: {:.0} connects/s (TLS + hello + join; {} Retries asked; CPU per client: switchboard {} µs, harness {} µs), {} B of switchboard memory per client\n\
         after a switchboard restart: {:.0} reconnects/s, {} of {} resumed TLS sessions ({} Retries asked; CPU per client: switchboard {} µs, harness {} µs)\n\
         this machine's ceiling, handshake public-key work alone for both sides on its {} cores: {:.0} connects/s, {:.0} resumed reconnects/s (per side: {:.1} µs full, {:.1} µs resumed)",
        r.clients,
        r.connects_per_s,
        r.connect_retries,
        r.connect_cpu_us.switchboard,
        r.connect_cpu_us.harness,
        r.bytes_per_client,
        r.reconnects_per_s,
        r.reconnects_resumed,
        r.clients,
        r.reconnect_retries,
        r.reconnect_cpu_us.switchboard,
        r.reconnect_cpu_us.harness,
        r.cores,
        r.connects_crypto_ceiling_per_s,
        r.reconnects_crypto_ceiling_per_s,
        r.handshake_crypto_us.full_us,
        r.handshake_crypto_us.resumed_us,
    )
}

/// CPU times (switchboard, harness) of processes now.
fn cpu_now(sb: &Switchboard) -> Result<(Duration, Duration)> {
    let own = procfs::cpu("self").context("reading this process's CPU time")?;
    let theirs =
        procfs::cpu(&sb.child.id().to_string()).context("reading the switchboard's CPU time")?;
    Ok((theirs, own))
}

/// CPU per client between two [`cpu_now`] readings.
fn per_client(before: (Duration, Duration), after: (Duration, Duration)) -> CpuPerClient {
    let us = |a: Duration, b: Duration| (a.saturating_sub(b).as_micros() / CLIENTS as u128) as u64;
    CpuPerClient {
        switchboard: us(after.0, before.0),
        harness: us(after.1, before.1),
    }
}

/// Connect `CLIENTS` clients (handshake, hello and join) with `CONCURRENCY` at once; the
/// switchboard's resident memory before and after, per client. Then kill the switchboard and
/// start it again on the same address with the same key, and bring every client back at once:
/// a restart is when a switchboard sees all its clients reconnect together (closing the
/// clients' connections instead would measure the old sessions' teardown too). Each client
/// dials with the TLS config it used before, so it offers its session ticket.
async fn connects(cluster: &mut LocalCluster) -> Result<ConnectsReport> {
    let sb = the_switchboard(cluster)?;
    let at = sb.at;
    // The raw limit first, on an idle switchboard: the handshake's public-key work alone.
    let handshake_crypto_us = kith::bench::handshake::measure(HANDSHAKE_CRYPTO_ROUNDS)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let (connects_crypto_ceiling_per_s, reconnects_crypto_ceiling_per_s) =
        handshake_crypto_us.ceilings_per_s(cores);
    // A few client sockets; each dial carries its own identity in its client config.
    let mut endpoints = Vec::new();
    for i in 0..CLIENT_SOCKETS {
        let key = SigningKey::from_bytes(&[200 + i as u8; 32]);
        // Each socket on its own loopback address (127.0.0.1, .2, …): the switchboard admits at
        // most `HANDSHAKES_PER_ADDRESS_MAX` pending handshakes per source address, as from one
        // NAT, and refuses a validated one past it.
        let bind = SocketAddr::from(([127, 0, 0, 1 + i as u8], 0));
        endpoints.push(Arc::new(PeerEndpoint::bind(bind, &key)?));
    }
    // Each client's identity exists before it connects, as a daemon's does.
    let keys: Vec<SigningKey> = (0..CLIENTS)
        .map(|i| {
            let mut secret = [7u8; 32];
            secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SigningKey::from_bytes(&secret)
        })
        .collect();
    let before = rss(sb.child.id())?;
    let counts = handshake_counts(sb)?;
    let cpu = cpu_now(sb)?;
    let (clients, seconds) = join_all(&endpoints, &keys, at).await?;
    let connect_cpu_us = per_client(cpu, cpu_now(sb)?);
    let connect_counts = phase_counts(counts, handshake_counts(sb)?, &clients);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss(sb.child.id())?;
    let bytes_per_client = after.saturating_sub(before) / CLIENTS as u64;

    cluster.restart(0, &switchboard_flags())?;
    let sb = the_switchboard(cluster)?;
    let full_before = full_handshakes(&keys, at)?;
    let counts = handshake_counts(sb)?;
    let cpu = cpu_now(sb)?;
    // The old connections stay open (dead) until the clients are back, as a crash leaves them.
    let (back, reconnect_seconds) = join_all(&endpoints, &keys, at).await?;
    let reconnect_cpu_us = per_client(cpu, cpu_now(sb)?);
    let reconnect_counts = phase_counts(counts, handshake_counts(sb)?, &back);
    let full = full_handshakes(&keys, at)? - full_before;
    drop((clients, back));
    Ok(ConnectsReport {
        connects_per_s: CLIENTS as f64 / seconds,
        bytes_per_client,
        reconnects_per_s: CLIENTS as f64 / reconnect_seconds,
        reconnects_resumed: CLIENTS.saturating_sub(full as usize),
        connect_retries: connect_counts.retried,
        reconnect_retries: reconnect_counts.retried,
        connect_cpu_us,
        reconnect_cpu_us,
        connect_counts,
        reconnect_counts,
        clients: CLIENTS,
        handshake_crypto_us,
        connects_crypto_ceiling_per_s,
        reconnects_crypto_ceiling_per_s,
        cores,
    })
}

/// Every key joins `at` (spread over `endpoints`, `CONCURRENCY` at once); the clients and the
/// seconds it took.
async fn join_all(
    endpoints: &[Arc<PeerEndpoint>],
    keys: &[SigningKey],
    at: Target,
) -> Result<(Vec<Joined>, f64)> {
    let started = Instant::now();
    let mut clients = Vec::with_capacity(keys.len());
    let mut batch = tokio::task::JoinSet::new();
    for (i, key) in keys.iter().enumerate() {
        batch.spawn(connect_client(
            Arc::clone(&endpoints[i % endpoints.len()]),
            key.clone(),
            at,
        ));
        if batch.len() >= CONCURRENCY {
            if let Some(done) = batch.join_next().await {
                clients.push(done??);
            }
        }
    }
    while let Some(done) = batch.join_next().await {
        clients.push(done??);
    }
    Ok((clients, started.elapsed().as_secs_f64()))
}

/// Full TLS handshakes (the switchboard proved its key by signature) the clients' configs have
/// verified so far; a resumed handshake adds none.
fn full_handshakes(keys: &[SigningKey], at: Target) -> Result<u64> {
    keys.iter().try_fold(0, |sum, key| {
        let (_, probe) = kith::net::endpoint::client_config_probed(key, at.key)?;
        Ok(sum + probe.full_handshakes())
    })
}

async fn connect_client(
    endpoint: Arc<PeerEndpoint>,
    key: SigningKey,
    sb: Target,
) -> Result<Joined> {
    Ok(lt_client::join(&endpoint, &key, sb).await?)
}

/// Resident bytes of process `pid`.
fn rss(pid: u32) -> Result<u64> {
    procfs::rss(&pid.to_string()).context("reading the switchboard's memory")
}

/// The report as text: only what this run measured (iroh-relay's figures on the same work are
/// quoted in the README with their date).
pub fn text(r: &RelayReport) -> String {
    let sweep: Vec<String> = r
        .sweep
        .iter()
        .map(|s| {
            let refused = s.refused_queue_full + s.refused_rate_limited;
            let late = if s.offered_in_time() { String::new() } else { format!(", offered in {} ms: the harness's limit", s.offered_in_ms) };
            let kernel = s.dropped_rcvbuf;
            format!("{}/s: {} of {} ({refused} refused by the switchboard, {kernel} dropped by full socket buffers{late})", s.rate, s.received, s.sent)
        })
        .collect();
    let mut out = latency_lines(&r.halting, r.polling.as_ref());
    out += &format!(
        "rtt_us (the {} figure): p50 {} µs, p99 {} µs\n\
         highest rate with no loss ({PAIRS} pairs): {} packets/s\n  sweep: {}\n\
         {}\n\
         per-client limits the switchboard reported: {} packets/s, {} bytes/s",
        if r.cpus_polled_when_idle {
            "polling"
        } else {
            "halting"
        },
        r.rtt_us.p50,
        r.rtt_us.p99,
        r.relay_pps,
        sweep.join(", "),
        connects_text(&r.connects),
        r.client_packets_per_sec,
        r.client_bytes_per_sec,
    );
    out
}

/// The round trips, per CPU state: the lines `kith bench relay` and `--latency-only` print.
fn latency_lines(halting: &Latency, polling: Option<&Latency>) -> String {
    let mut out = format!(
        "round trips of {PACKET_BYTES} B, {ROUND_TRIPS} sequential after {WARM_UP} warm-up (µs, p50 / p99 / max)\n"
    );
    let mut conditions = vec![("idle CPUs halting", halting)];
    if let Some(polling) = polling {
        conditions.push(("idle CPUs polling (PM QoS 0 µs, as cyclictest)", polling));
    }
    for (name, l) in conditions {
        let p = |p: &Percentiles| match p.lost {
            0 => format!("{} / {} / {}", p.p50, p.p99, p.max),
            lost => format!("{} / {} / {} ({lost} lost)", p.p50, p.p99, p.max),
        };
        let (sb, harness) = (&l.switchboard_per_round_trip, &l.harness_per_round_trip);
        out += &format!(
            "  {name}: relayed {}   floor: plain UDP {}, direct QUIC A ↔ B {}\n\
             \x20   per relayed round trip: switchboard {:.1} µs CPU, {:.2} thread wake-ups; harness {:.1} µs CPU, {:.2} wake-ups; CPU halts {}\n",
            p(&l.relayed_us),
            p(&l.udp_us),
            p(&l.direct_us),
            sb.cpu_us,
            sb.switched_in,
            harness.cpu_us,
            harness.switched_in,
            l.cpu_halts_per_round_trip
                .map_or("unknown".to_string(), |h| format!("{h:.2}")),
        );
    }
    out
}

/// Only the round trips: `kith bench relay --latency-only`.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// With idle CPUs halting.
    pub halting: Latency,
    /// With idle CPUs polling; `None` when the PM QoS request could not be made.
    pub polling: Option<Latency>,
}

/// The one switchboard the bench started (or restarted).
fn the_switchboard(cluster: &LocalCluster) -> Result<&Switchboard> {
    cluster
        .nodes
        .first()
        .ok_or_else(|| anyhow!("the bench's switchboard is not running"))
}

/// Only the round trips, on a switchboard of their own: `kith bench relay --latency-only`.
pub async fn run_latency() -> Result<LatencyReport> {
    let cluster = start_switchboard()?;
    let sb = the_switchboard(&cluster)?;
    let (halting, polling) = latencies(sb.at, sb.child.id()).await?;
    Ok(LatencyReport { halting, polling })
}

/// The round trips alone as text.
pub fn latency_text(r: &LatencyReport) -> String {
    latency_lines(&r.halting, r.polling.as_ref())
}
