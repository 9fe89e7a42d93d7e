//! Measures the network layer on loopback: handshakes per second and memory per idle connection.
//!
//! The server runs in a child process (this same binary, `serve` mode) so each side's RSS is
//! measured alone. Each connection is a full dial: QUIC + raw-public-key TLS + the hello, with
//! its control stream held open, i.e. what an idle peer costs.
//!
//! ```text
//! cargo run --release --example net_probe -- [connections]      # default 1000
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use kith::net::endpoint::accept;
use kith::net::hello::{
    accept_hello, dial_hello, Admission, Capabilities, Capability, Hello, NodeRole,
};
use kith::net::PeerEndpoint;

const SERVER_SEED: u8 = 1;
const PAGE_BYTES: u64 = 4096;
const IN_FLIGHT: usize = 32;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

fn rss_bytes(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * PAGE_BYTES
}

/// CPU time (user + system) the process has used, in microseconds (assumes CLK_TCK = 100).
fn cpu_micros(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    ticks * 10_000
}

fn hello(role: NodeRole) -> Hello {
    Hello::new(
        role,
        Capabilities::of(&[Capability::Replicate, Capability::Presence]),
    )
}

#[tokio::main]
async fn main() -> Result<(), BoxErr> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve().await;
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    client(n).await
}

async fn serve() -> Result<(), BoxErr> {
    let server = PeerEndpoint::bind(
        "127.0.0.1:0".parse()?,
        &SigningKey::from_bytes(&[SERVER_SEED; 32]),
    )?;
    println!("{}", server.local_addr()?);
    let (keep, mut held) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(x) = held.recv().await {
            std::mem::forget(x)
        }
    });
    while let Some(incoming) = server.incoming().await {
        let keep = keep.clone();
        tokio::spawn(async move {
            let Ok((conn, _)) = accept(incoming).await else {
                return;
            };
            if let Ok(greeted) =
                accept_hello(&conn, &hello(NodeRole::Switchboard), Admission::Welcome).await
            {
                let _ = keep.send((conn, greeted));
            }
        });
    }
    Ok(())
}

async fn client(n: usize) -> Result<(), BoxErr> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let addr: SocketAddr = line.trim().parse()?;
    let server_pid = child.id();
    let expected = SigningKey::from_bytes(&[SERVER_SEED; 32]).verifying_key();
    let client = PeerEndpoint::bind("127.0.0.1:0".parse()?, &SigningKey::from_bytes(&[2; 32]))?;
    let me = std::process::id();

    // Warm up (allocator arenas, lazy statics) before taking the baseline.
    let mut held = Vec::new();
    for _ in 0..IN_FLIGHT {
        held.push(connect(&client, addr, expected).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (server_before, client_before) = (rss_bytes(server_pid), rss_bytes(me));

    let (server_cpu, client_cpu) = (cpu_micros(server_pid), cpu_micros(me));
    let started = Instant::now();
    for _ in 0..n {
        held.push(connect(&client, addr, expected).await?);
    }
    let sequential = n as f64 / started.elapsed().as_secs_f64();
    let server_cpu = (cpu_micros(server_pid) - server_cpu) / n as u64;
    let client_cpu = (cpu_micros(me) - client_cpu) / n as u64;

    tokio::time::sleep(Duration::from_secs(2)).await; // let the handshakes' transient state go.
    let (server_after, client_after) = (rss_bytes(server_pid), rss_bytes(me));

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let client = std::sync::Arc::new(client);
    for worker in 0..IN_FLIGHT {
        let client = client.clone();
        let share = n / IN_FLIGHT + usize::from(worker < n % IN_FLIGHT);
        tasks.spawn(async move {
            let mut mine = Vec::with_capacity(share);
            for _ in 0..share {
                mine.push(
                    connect(&client, addr, expected)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            Ok::<_, String>(mine)
        });
    }
    while let Some(done) = tasks.join_next().await {
        held.extend(done??);
    }
    let concurrent = n as f64 / started.elapsed().as_secs_f64();

    let per_conn =
        |before: u64, after: u64| after.saturating_sub(before) as f64 / n as f64 / 1024.0;
    println!("connections (each: QUIC + RPK TLS + hello, control stream held): {n}");
    println!("handshakes/s sequential (1 in flight): {sequential:.0}");
    println!("handshakes/s concurrent ({IN_FLIGHT} in flight): {concurrent:.0}");
    println!("CPU per sequential handshake: server {server_cpu} us, client {client_cpu} us");
    println!(
        "server RSS {:.1} -> {:.1} MiB: {:.1} KiB per idle connection",
        server_before as f64 / 1048576.0,
        server_after as f64 / 1048576.0,
        per_conn(server_before, server_after)
    );
    println!(
        "client RSS {:.1} -> {:.1} MiB: {:.1} KiB per idle connection",
        client_before as f64 / 1048576.0,
        client_after as f64 / 1048576.0,
        per_conn(client_before, client_after)
    );
    println!("open connections held by the client: {}", held.len());
    child.kill()?;
    Ok(())
}

async fn connect(
    client: &PeerEndpoint,
    addr: SocketAddr,
    expected: ed25519_dalek::VerifyingKey,
) -> Result<(quinn::Connection, kith::net::hello::Greeted), BoxErr> {
    let (conn, _) = client.dial(addr, expected).await?;
    let greeted = dial_hello(&conn, &hello(NodeRole::Daemon)).await?;
    Ok((conn, greeted))
}
