//! Inner QUIC through a switchboard, on loopback: two peers with virtual sockets complete mutual
//! raw-public-key TLS through the relay and exchange data on a stream; the switchboard never
//! sees the plaintext; impersonation fails; unintroduced peers get nothing; a flooding client is
//! throttled while another pair keeps working.

mod relay_util;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kith::net::NetError;
use kith::relay::bucket::Rate;
use kith::relay::{fake_addr, Refusal, RouterConfig};
use kith::testing::eventually;
use relay_util::*;

const CANARY: &[u8] = b"kith relay canary: the switchboard must never read this sentence";

/// Sends `data` on a fresh bidi stream from `from`, has `to` echo it back, returns the echo.
async fn echo(from: &quinn::Connection, to: &quinn::Connection, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = from.open_bi().await.expect("open");
    send.write_all(data).await.expect("write");
    send.finish().expect("finish");
    let (mut back, mut incoming) = tokio::time::timeout(BOUND, to.accept_bi())
        .await
        .expect("bounded")
        .expect("accept");
    let got = incoming.read_to_end(1 << 20).await.expect("read");
    back.write_all(&got).await.expect("write back");
    back.finish().expect("finish");
    tokio::time::timeout(BOUND, recv.read_to_end(1 << 20))
        .await
        .expect("bounded")
        .expect("read echo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_quic_handshake_and_stream_through_the_relay() {
    let sb = Switchboard::start(100, RouterConfig::default(), false);
    let (a, b) = tokio::join!(relay_peer(1, &sb), relay_peer(2, &sb));
    sb.introduce(a.id, b.id).await;
    let (a_conn, b_conn) = inner_connect(&a, &b).await;
    // The inner connections really run over the fake addresses, i.e. through the relay.
    assert_eq!(a_conn.remote_address(), fake_addr(&b.id));
    assert_eq!(b_conn.remote_address(), fake_addr(&a.id));
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    assert_eq!(echo(&a_conn, &b_conn, &data).await, data);
    assert!(sb.stats().forwarded_bytes > 2 * data.len() as u64);
    assert!(a.socket.stats().sent_packets > 0 && b.socket.stats().received_packets > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switchboard_never_sees_the_plaintext() {
    let sb = Switchboard::start(100, RouterConfig::default(), true);
    let (a, b) = tokio::join!(relay_peer(1, &sb), relay_peer(2, &sb));
    sb.introduce(a.id, b.id).await;
    let (a_conn, b_conn) = inner_connect(&a, &b).await;
    let plaintext = CANARY.repeat(200);
    assert_eq!(echo(&a_conn, &b_conn, &plaintext).await, plaintext);
    a_conn.close(0u32.into(), b"done");
    tokio::time::sleep(Duration::from_millis(50)).await;

    let hub = sb.hub.lock().expect("hub");
    let seen: u64 = hub.forwarded.iter().map(|f| f.len() as u64).sum();
    assert!(
        seen > 2 * plaintext.len() as u64,
        "the data went through the switchboard ({seen} bytes forwarded)"
    );
    // Any 16-byte window of the canary would show a readable leak.
    let needles: Vec<&[u8]> = CANARY.windows(16).step_by(8).collect();
    for frame in hub.received.iter().chain(hub.forwarded.iter()) {
        for needle in &needles {
            assert!(
                !frame.windows(needle.len()).any(|w| w == *needle),
                "plaintext visible to the switchboard"
            );
        }
    }
    // The check itself can fail: the canary is found when it is there.
    let leaky = Bytes::from([&[0u8; 40][..], CANARY].concat());
    assert!(leaky.windows(16).any(|w| w == needles[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_through_the_relay_fails() {
    let sb = Switchboard::start(100, RouterConfig::default(), false);
    let (a, b, c) = tokio::join!(relay_peer(1, &sb), relay_peer(2, &sb), relay_peer(3, &sb));
    sb.introduce(a.id, c.id).await;
    // A means to reach B but its packets go to C (a stale or poisoned address): C answers with
    // its own key, and A's TLS refuses it.
    let c_addr = a.socket.register_peer(c.id).expect("register");
    let b_key = b.id.verifying_key().expect("key");
    let c_accepts = async {
        let incoming = tokio::time::timeout(BOUND, c.inner.incoming())
            .await
            .expect("an attempt arrives")
            .expect("open");
        kith::net::endpoint::accept(incoming).await
    };
    let (dialed, _) = tokio::join!(a.inner.dial(c_addr, b_key), c_accepts);
    match dialed {
        Err(NetError::PeerKeyMismatch(m)) => {
            assert_eq!(m.expected, b_key);
            assert_eq!(kith::identity::FeedId::from(m.presented), c.id);
        }
        other => panic!("expected a key mismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_forwards_nothing_without_an_introduction() {
    let sb = Switchboard::start(100, RouterConfig::default(), true);
    let (a, b) = tokio::join!(relay_peer(1, &sb), relay_peer(2, &sb));
    eventually("connected", BOUND, POLL, || {
        sb.is_client(&a.id) && sb.is_client(&b.id)
    })
    .await;
    let b_addr = a.socket.register_peer(b.id).expect("register");
    let b_key = b.id.verifying_key().expect("key");
    let dial = tokio::time::timeout(Duration::from_millis(500), a.inner.dial(b_addr, b_key));
    let arrives = tokio::time::timeout(Duration::from_millis(500), b.inner.incoming());
    let (dialed, arrived) = tokio::join!(dial, arrives);
    assert!(dialed.is_err(), "the dial cannot finish");
    assert!(arrived.is_err(), "B never sees an attempt");
    let stats = sb.stats();
    assert!(stats.refused(Refusal::NotIntroduced) > 0);
    assert_eq!(stats.forwarded_packets, 0);
    assert_eq!(b.socket.stats().received_packets, 0);
    assert!(sb.hub.lock().expect("hub").forwarded.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_throttled_while_another_pair_keeps_working() {
    let rate = Rate {
        packets_per_sec: 2_000.0,
        packets_burst: 500.0,
        bytes_per_sec: 4.0 * 1024.0 * 1024.0,
        bytes_burst: 1024.0 * 1024.0,
    };
    let sb = Switchboard::start(
        100,
        RouterConfig {
            rate,
            ..RouterConfig::default()
        },
        false,
    );
    let (a, b) = tokio::join!(relay_peer(1, &sb), relay_peer(2, &sb));
    let ((_c_ep, c), (_d_ep, d)) = tokio::join!(connect_outer(3, &sb), connect_outer(4, &sb));
    sb.introduce(a.id, b.id).await;
    sb.introduce(id(3), id(4)).await;
    let (a_conn, b_conn) = inner_connect(&a, &b).await;

    const FLOOD: u64 = 20_000;
    let flood_frame = Bytes::from([id(4).0.as_slice(), &[0xAB; 200]].concat());
    let flooder = tokio::spawn(async move {
        let start = Instant::now();
        for _ in 0..FLOOD {
            c.send_datagram_wait(flood_frame.clone())
                .await
                .expect("flood send");
        }
        (c, start.elapsed())
    });
    let drain = tokio::spawn(async move {
        let mut got = 0u64;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(300), d.read_datagram()).await
        {
            got += 1;
        }
        got
    });
    // Round trips on the other pair while the flood runs.
    let mut round_trips = 0;
    while !flooder.is_finished() || round_trips < 20 {
        let msg = format!("ping {round_trips}").into_bytes();
        let echoed = tokio::time::timeout(BOUND, echo(&a_conn, &b_conn, &msg))
            .await
            .expect("round trip within the bound during the flood");
        assert_eq!(echoed, msg);
        round_trips += 1;
        assert!(round_trips < 10_000, "flood never ended");
    }
    let (_c, flood_time) = flooder.await.expect("flooder");
    let delivered = drain.await.expect("drain");
    let stats = sb.stats();
    let limited = stats.refused(Refusal::RateLimited);
    // The flooder got at most its burst plus its rate over the flood (with slack for the drain).
    let allowance = 500.0 + 2_000.0 * (flood_time.as_secs_f64() + 0.5);
    assert!(limited > 0, "the flood was rate limited");
    assert!(
        (delivered as f64) <= allowance,
        "delivered {delivered} > allowance {allowance}"
    );
    assert!(delivered + limited <= FLOOD);
    assert!(round_trips >= 20);
    println!(
        "flood: {FLOOD} frames in {flood_time:?}, {limited} rate-limited, {delivered} delivered; \
         {round_trips} round trips on the other pair meanwhile"
    );
}
