//! `kith bench relay`: a real switchboard process on loopback and peers in this process, on the
//! work iroh-relay was measured on here: relayed round trips of a 1,200-byte packet, the highest
//! relayed rate without loss, connects per second, and the switchboard's memory per client.
//!
//! The peers speak the real protocol (key-bound QUIC, hello, join, introduction) and then send
//! raw relayed datagrams (`[32-byte key][payload]`), which is what an inner QUIC packet is to the
//! switchboard. Each client is rate-limited by design (`RELAY_CLIENT_*` in limits.rs), so the
//! rate sweep uses several introduced pairs at once, and reads the switchboard's refusal
//! counters per step. Beside the relayed round trips it measures, in the same run, the machine's
//! floor: plain UDP round trips between two threads, and direct QUIC round trips between A and B.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use kith::bench::TempDir;
use kith::control::protocol::Request;
use kith::identity::FeedId;
use kith::net::hello::{dial_hello, Capabilities, Capability, Hello, NodeRole};
use kith::net::tls::{peer_key, server_name};
use kith::net::{stream, PeerEndpoint};
use kith::relay::config::{outer_client_config, outer_server_config};
use kith::switchboard::{ClientMsg, ServerMsg};
use serde::Serialize;

use crate::client;

/// Sequential round trips measured.
const ROUND_TRIPS: usize = 10_000;
/// Payload of a relayed packet (an inner QUIC packet's size).
const PACKET_BYTES: usize = 1_200;
/// Pairs used for the rate sweep.
const PAIRS: usize = 8;
/// Rates tried, in packets per second over all pairs.
const RATES: [u64; 8] = [10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000];
/// Clients connected for the connect rate and the memory per client (as iroh-relay was measured).
const CLIENTS: usize = 5_000;
/// Clients connecting at once: enough that the switchboard, not the round trips, sets the pace.
const CONCURRENCY: usize = 128;
/// UDP sockets the clients dial from.
const CLIENT_SOCKETS: usize = 8;

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    /// Round-trip percentiles in µs.
    pub rtt_us: Percentiles,
    /// The machine's floor in the same run: round trips of the same packet over plain loopback
    /// UDP between two threads (no QUIC, no switchboard). A relayed round trip crosses four
    /// such hops (A → switchboard → B → switchboard → A) and four QUIC stacks.
    pub udp_rtt_us: Percentiles,
    /// Also in the same run: the same round trips between A and B over a direct QUIC connection
    /// (two QUIC stacks and the harness, no switchboard).
    pub direct_rtt_us: Percentiles,
    /// Highest rate (packets/s over all pairs) relayed with no loss; 0 if even the lowest lost.
    pub relay_pps: u64,
    /// Per rate tried: sent and received packets.
    pub sweep: Vec<RateStep>,
    /// Clients that connected, joined and were admitted per second.
    pub connects_per_s: f64,
    /// The switchboard process's resident memory per connected client.
    pub bytes_per_client: u64,
    /// Clients used for the two figures above.
    pub clients: usize,
}

/// p50 / p99 / max.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
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
    /// Packets received.
    pub received: u64,
    /// Of the lost, refused by the switchboard because the receiver's queue was full (counted
    /// there; the rest were lost in the sockets on the way).
    pub refused_queue_full: u64,
    /// Of the lost, refused by the switchboard's per-client rate limit.
    pub refused_rate_limited: u64,
}

struct Switchboard {
    child: Child,
    at: Target,
    dir: TempDir,
}

/// Where the switchboard listens and the key it proves.
#[derive(Clone, Copy)]
struct Target {
    addr: std::net::SocketAddr,
    key: ed25519_dalek::VerifyingKey,
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the benchmark.
pub async fn run() -> Result<RelayReport> {
    let sb = start_switchboard()?;
    let udp_rtt_us = udp_round_trips().await?;
    let (rtt_us, direct_rtt_us) = round_trips_alone(sb.at).await?;
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let (x, y) = (Peer::connect(sb.at, 10 + 2 * i as u8).await?, Peer::connect(sb.at, 11 + 2 * i as u8).await?);
        introduce(&x, &y).await?;
        pairs.push((x, y));
    }
    let sweep = sweep(&sb, &pairs).await?;
    let relay_pps = sweep.iter().filter(|s| s.received == s.sent).map(|s| s.rate).max().unwrap_or(0);
    let (connects_per_s, bytes_per_client) = connects(&sb).await?;
    Ok(RelayReport { rtt_us, udp_rtt_us, direct_rtt_us, relay_pps, sweep, connects_per_s, bytes_per_client, clients: CLIENTS })
}

fn start_switchboard() -> Result<Switchboard> {
    let dir = TempDir::new("kith-bench-relay")?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let exe = std::env::current_exe().context("finding the kith binary")?;
    let child = Command::new(exe)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["switchboard", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the switchboard")?;
    let started = Instant::now();
    let status = loop {
        if let Ok(status) = client::call(dir.path(), &Request::Status) {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("the switchboard did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let id: FeedId = status["id"].as_str().ok_or_else(|| anyhow!("no id"))?.parse()?;
    let at = Target { addr: format!("127.0.0.1:{port}").parse()?, key: id.verifying_key()? };
    Ok(Switchboard { child, at, dir })
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
        let conn = dial(&endpoint, &key, sb).await?;
        let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Presence]));
        let greeted = dial_hello(&conn, &ours).await?;
        let peer = Peer {
            id: FeedId::from(key.verifying_key()),
            key,
            conn,
            send: tokio::sync::Mutex::new(greeted.send),
            recv: tokio::sync::Mutex::new(greeted.recv),
            endpoint,
        };
        peer.write(&ClientMsg::Join { invite: None }).await?;
        match peer.read().await? {
            ServerMsg::Welcome { .. } => Ok(peer),
            other => bail!("not admitted: {other:?}"),
        }
    }

    async fn write(&self, msg: &ClientMsg) -> Result<()> {
        Ok(stream::write_frame(&mut *self.send.lock().await, msg).await?)
    }

    async fn read(&self) -> Result<ServerMsg> {
        let frame = stream::read_frame::<ServerMsg>(&mut *self.recv.lock().await, 1 << 20).await?;
        frame.ok_or_else(|| anyhow!("the switchboard closed the stream"))
    }
}

async fn dial(endpoint: &PeerEndpoint, key: &SigningKey, sb: Target) -> Result<quinn::Connection> {
    let config = outer_client_config(key, sb.key)?;
    let conn = endpoint.quinn().connect_with(config, sb.addr, &server_name(&sb.key))?.await?;
    if peer_key(&conn)? != sb.key {
        bail!("the switchboard proved another key");
    }
    Ok(conn)
}

async fn introduce(a: &Peer, b: &Peer) -> Result<()> {
    a.write(&ClientMsg::Introduce { to: b.id }).await?;
    match b.read().await? {
        ServerMsg::IntroRequest { from, .. } if from == a.id => {}
        other => bail!("unexpected {other:?}"),
    }
    b.write(&ClientMsg::IntroAnswer { from: a.id, accept: true }).await?;
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

/// The round trips, with A and B on a runtime of their own on one thread: the measurement is the
/// switchboard's, so the harness keeps its own scheduling (work stealing between two busy
/// processes on two cores) out of it.
async fn round_trips_alone(sb: Target) -> Result<(Percentiles, Percentiles)> {
    let measure = move || -> Result<(Percentiles, Percentiles)> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let (a, b) = (Peer::connect(sb, 1).await?, Peer::connect(sb, 2).await?);
            introduce(&a, &b).await?;
            let relayed = round_trips(&a, &b).await?;
            Ok((relayed, direct_round_trips(&a, &b).await?))
        })
    };
    tokio::task::spawn_blocking(measure).await?
}

/// A → switchboard → B → switchboard → A, one at a time. B echoes what it gets: the switchboard
/// has already rewritten the header to A's key, so the same bytes go back to A.
async fn round_trips(a: &Peer, b: &Peer) -> Result<Percentiles> {
    echo_round_trips(&a.conn, &b.conn, &b.id).await
}

/// The same round trips over a direct QUIC connection from A to B (no switchboard): the cost of
/// the two QUIC stacks and the harness, measured in the same run.
async fn direct_round_trips(a: &Peer, b: &Peer) -> Result<Percentiles> {
    // The relay link's transport on both ends, so that the same 1,232-byte datagrams fit.
    b.endpoint.quinn().set_server_config(Some(outer_server_config(&b.key)?));
    let accept = async {
        let incoming = b.endpoint.quinn().accept().await.ok_or_else(|| anyhow!("b's endpoint closed"))?;
        Ok::<_, anyhow::Error>(incoming.await?)
    };
    let b_key = b.id.verifying_key()?;
    let config = outer_client_config(&a.key, b_key)?;
    let dial = async { Ok::<_, anyhow::Error>(a.endpoint.quinn().connect_with(config, b.endpoint.local_addr()?, &server_name(&b_key))?.await?) };
    let (accepted, dialled) = tokio::join!(accept, dial);
    let (b_conn, a_conn) = (accepted?, dialled?);
    echo_round_trips(&a_conn, &b_conn, &b.id).await
}

/// `a` sends `[to][seq][payload]`, `b` echoes it back, one at a time.
async fn echo_round_trips(a: &quinn::Connection, b: &quinn::Connection, to: &FeedId) -> Result<Percentiles> {
    let echo_conn = b.clone();
    let echo = tokio::spawn(async move {
        while let Ok(frame) = echo_conn.read_datagram().await {
            if echo_conn.send_datagram(frame).is_err() {
                return;
            }
        }
    });
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for seq in 0..ROUND_TRIPS as u64 {
        let started = Instant::now();
        a.send_datagram(packet(to, seq))?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(1), a.read_datagram()).await;
            let Ok(Ok(frame)) = frame else { bail!("round trip {seq} lost") };
            if frame.len() >= 40 && frame[32..40] == seq.to_be_bytes() {
                break;
            }
        }
        samples.push(started.elapsed().as_micros() as u64);
    }
    echo.abort();
    Ok(percentiles(samples))
}

fn percentiles(mut samples: Vec<u64>) -> Percentiles {
    samples.sort_unstable();
    let at = |q: f64| samples.get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1))).copied().unwrap_or(0);
    Percentiles { p50: at(0.50), p99: at(0.99), max: at(1.0) }
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
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(echo_addr).await?;
            let (packet, mut buf) = (vec![0u8; 32 + PACKET_BYTES], vec![0u8; 2048]);
            let mut samples = Vec::with_capacity(ROUND_TRIPS);
            for _ in 0..ROUND_TRIPS {
                let started = Instant::now();
                socket.send(&packet).await?;
                tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await??;
                samples.push(started.elapsed().as_micros() as u64);
            }
            Ok(percentiles(samples))
        })
    };
    tokio::task::spawn_blocking(measure).await?
}

/// The switchboard's refusal counters: (queue full, rate limited).
fn refusals(sb: &Switchboard) -> Result<(u64, u64)> {
    let status = client::call(sb.dir.path(), &Request::Status)?;
    let relay = &status["relay"];
    let count = |key: &str| relay[key].as_u64().ok_or_else(|| anyhow!("no {key} in the switchboard's status"));
    Ok((count("refused_queue_full")?, count("refused_rate_limited")?))
}

/// Offer each rate for one second over all pairs (x → y), paced per millisecond; count what
/// arrives, and what the switchboard refused.
async fn sweep(sb: &Switchboard, pairs: &[(Peer, Peer)]) -> Result<Vec<RateStep>> {
    let mut steps = Vec::new();
    for rate in RATES {
        let before = refusals(sb)?;
        let received = Arc::new(AtomicU64::new(0));
        let counters: Vec<_> = pairs
            .iter()
            .map(|(_, y)| {
                let (conn, received) = (y.conn.clone(), Arc::clone(&received));
                tokio::spawn(async move {
                    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), conn.read_datagram()).await {
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
        for counter in counters {
            let _ = counter.await;
        }
        let after = refusals(sb)?;
        steps.push(RateStep {
            rate,
            sent,
            received: received.load(Ordering::Relaxed),
            refused_queue_full: after.0 - before.0,
            refused_rate_limited: after.1 - before.1,
        });
    }
    Ok(steps)
}

/// Connect `CLIENTS` clients (handshake, hello, join) with `CONCURRENCY` at once; the
/// switchboard's resident memory before and after, per client.
async fn connects(sb: &Switchboard) -> Result<(f64, u64)> {
    // A few client sockets; each dial carries its own identity in its client config.
    let mut endpoints = Vec::new();
    for i in 0..CLIENT_SOCKETS {
        let key = SigningKey::from_bytes(&[200 + i as u8; 32]);
        endpoints.push(Arc::new(PeerEndpoint::bind("127.0.0.1:0".parse()?, &key)?));
    }
    // Each client's identity and TLS config exist before it connects, as a daemon's do.
    let configs = (0..CLIENTS)
        .map(|i| {
            let mut secret = [7u8; 32];
            secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
            outer_client_config(&SigningKey::from_bytes(&secret), sb.at.key)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let before = rss(sb.child.id())?;
    let started = Instant::now();
    let mut clients = Vec::with_capacity(CLIENTS);
    let mut batch = tokio::task::JoinSet::new();
    let sb_ref = (sb.at.addr, sb.at.key);
    for (i, config) in configs.into_iter().enumerate() {
        batch.spawn(connect_client(Arc::clone(&endpoints[i % CLIENT_SOCKETS]), config, sb_ref));
        if batch.len() >= CONCURRENCY {
            if let Some(done) = batch.join_next().await {
                clients.push(done??);
            }
        }
    }
    while let Some(done) = batch.join_next().await {
        clients.push(done??);
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss(sb.child.id())?;
    let per_client = after.saturating_sub(before) / CLIENTS as u64;
    drop(clients);
    Ok((CLIENTS as f64 / seconds, per_client))
}

type Client = (quinn::Connection, quinn::SendStream, quinn::RecvStream);

async fn connect_client(
    endpoint: Arc<PeerEndpoint>,
    config: quinn::ClientConfig,
    sb: (std::net::SocketAddr, ed25519_dalek::VerifyingKey),
) -> Result<Client> {
    let conn = endpoint.quinn().connect_with(config, sb.0, &server_name(&sb.1))?.await?;
    let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Presence]));
    let mut greeted = dial_hello(&conn, &ours).await?;
    stream::write_frame(&mut greeted.send, &ClientMsg::Join { invite: None }).await?;
    match stream::read_frame::<ServerMsg>(&mut greeted.recv, 1 << 20).await? {
        Some(ServerMsg::Welcome { .. }) => Ok((conn, greeted.send, greeted.recv)),
        other => bail!("not admitted: {other:?}"),
    }
}

/// Resident bytes of process `pid`.
fn rss(pid: u32) -> Result<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).context("reading statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).ok_or_else(|| anyhow!("no rss"))?;
    Ok(pages * 4096)
}

/// The report as text, beside iroh-relay's figures on this machine.
pub fn text(r: &RelayReport) -> String {
    let sweep: Vec<String> = r
        .sweep
        .iter()
        .map(|s| {
            let refused = s.refused_queue_full + s.refused_rate_limited;
            format!("{}/s: {} of {} ({} refused by the switchboard)", s.rate, s.received, s.sent, refused)
        })
        .collect();
    format!(
        "relayed round trip (1,200 B, {ROUND_TRIPS} sequential): p50 {} µs, p99 {} µs, max {} µs   iroh-relay here: p50 ~70 µs, p99 130–250 µs\n\
         plain UDP round trip between two threads, this run: p50 {} µs, p99 {} µs (a relayed one is four such hops)\n\
         direct QUIC round trip A ↔ B, this run: p50 {} µs, p99 {} µs\n\
         highest rate with no loss ({PAIRS} pairs): {} packets/s   iroh-relay here: 50–75k/s\n  sweep: {}\n\
         {} clients: {:.0} connects/s (TLS + hello + join), {} B of switchboard memory per client   iroh-relay here: 4,200/s without TLS, 18 KiB",
        r.rtt_us.p50, r.rtt_us.p99, r.rtt_us.max, r.udp_rtt_us.p50, r.udp_rtt_us.p99, r.direct_rtt_us.p50, r.direct_rtt_us.p99, r.relay_pps, sweep.join(", "), r.clients, r.connects_per_s, r.bytes_per_client
    )
}

