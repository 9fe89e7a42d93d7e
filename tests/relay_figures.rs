//! Relay figures (ignored by default; run once in release):
//!
//! ```text
//! cargo test --release --test relay_figures -- --ignored --nocapture
//! ```
//!
//! Outer datagrams only, no inner QUIC: A and B hold outer connections to the in-test
//! switchboard (Router + per-client bounded queues, as in the other relay suites), all in one
//! process on loopback. The router's rate limits are lifted so that the switchboard's forwarding
//! capacity is what is measured.
//! - `rtt_us`: a 1,200-byte inner packet A → switchboard → B → switchboard → A, 10,000 sequential
//!   round trips after 500 warm-up ones; p50 / p99 / max.
//! - `relay_pps`: A sends 1,200-byte packets to B at a paced rate for 1 s; the highest rate of a
//!   sweep at which B received every packet (every step runs; each prints where packets went).

mod relay_util;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kith::relay::bucket::Rate;
use kith::relay::RouterConfig;
use relay_util::*;

const INNER: usize = 1200;

fn unlimited() -> RouterConfig {
    RouterConfig {
        rate: Rate {
            packets_per_sec: 1e12,
            packets_burst: 1e12,
            bytes_per_sec: 1e15,
            bytes_burst: 1e15,
        },
        ..RouterConfig::default()
    }
}

fn packet(to: &kith::identity::FeedId, seq: u64) -> Bytes {
    let mut f = BytesMut::with_capacity(32 + INNER);
    f.put_slice(&to.0);
    f.put_u64(seq);
    f.put_bytes(0x5A, INNER - 8);
    f.freeze()
}

fn seq_of(frame: &Bytes) -> u64 {
    let mut s = [0u8; 8];
    s.copy_from_slice(&frame[32..40]);
    u64::from_be_bytes(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run in release with --ignored --nocapture"]
async fn relay_figures() {
    let sb = Switchboard::start(100, unlimited(), false);
    let ((_a_ep, a), (_b_ep, b)) = tokio::join!(connect_outer(1, &sb), connect_outer(2, &sb));
    sb.introduce(id(1), id(2)).await;

    // --- round trips: B echoes every packet back to A ---
    let echo_conn = b.clone();
    let echo = tokio::spawn(async move {
        while let Ok(frame) = echo_conn.read_datagram().await {
            let mut back = BytesMut::from(&frame[..]);
            back[..32].copy_from_slice(&id(1).0);
            if echo_conn.send_datagram(back.freeze()).is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::with_capacity(10_000);
    let mut lost = 0u64;
    for seq in 0..10_500u64 {
        let start = Instant::now();
        a.send_datagram(packet(&id(2), seq)).expect("send");
        loop {
            match tokio::time::timeout(Duration::from_millis(200), a.read_datagram()).await {
                Ok(Ok(frame)) if seq_of(&frame) == seq => {
                    if seq >= 500 {
                        samples.push(start.elapsed().as_micros() as u64);
                    }
                    break;
                }
                Ok(Ok(_late)) => continue,
                Ok(Err(e)) => panic!("outer connection lost: {e}"),
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    echo.abort();
    assert!(!samples.is_empty());
    // Percentiles from the one helper `kith bench` and the load test use.
    let mut hist = kith::loadtest::histogram::Hist::new().expect("histogram");
    for sample in &samples {
        hist.record(*sample);
    }
    println!(
        "rtt_us: n={} p50={} p99={} max={} lost={}",
        samples.len(),
        hist.value_at(0.50),
        hist.value_at(0.99),
        hist.max_value(),
        lost
    );

    // --- packet rate: A → B paced for 1 s per step ---
    let mut best = 0u64;
    for rate in [5_000u64, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000] {
        let before = sb.stats();
        let b_before = b.stats().frame_rx.datagram;
        let counter = b.clone();
        let receiver = tokio::spawn(async move {
            let mut got = 0u64;
            while let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(300), counter.read_datagram()).await
            {
                got += 1;
            }
            got
        });
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(1) {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                a.send_datagram_wait(packet(&id(2), sent))
                    .await
                    .expect("send");
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let send_secs = start.elapsed().as_secs_f64();
        let got = receiver.await.expect("receiver");
        let after = sb.stats();
        let forwarded = after.forwarded_packets - before.forwarded_packets;
        let refused = after.refused_total() - before.refused_total();
        let achieved = (sent as f64 / send_secs) as u64;
        // DATAGRAM frames B's quinn received: short of `forwarded` means lost on the wire (UDP
        // socket buffers); short of it in `received` means dropped in B's datagram buffer.
        let b_frames = b.stats().frame_rx.datagram - b_before;
        println!(
            "relay_pps step: target={rate} achieved_send={achieved} sent={sent} switchboard_forwarded={forwarded} refused={refused} b_quinn_frames={b_frames} received={got} lost={}",
            sent - got.min(sent)
        );
        if got == sent && achieved + rate / 50 >= rate {
            best = best.max(achieved);
        }
    }
    println!("relay_pps (highest with no loss, 1,200-byte packets): {best}");
}
