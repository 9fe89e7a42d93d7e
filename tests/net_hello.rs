//! The hello over real quinn on loopback, and protocol errors closing one connection with their
//! named code while the endpoint keeps serving well-behaved ones.

use std::net::SocketAddr;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kith::limits;
use kith::net::close::peer_close_code;
use kith::net::endpoint::accept;
use kith::net::hello::{
    accept_hello, dial_hello, dial_hello_pipelined, Admission, Capabilities, Capability,
    GoodbyeReason, Greeted, Hello, HelloError, NodeRole,
};
use kith::net::stream::{read_frame, write_frame, write_raw};
use kith::net::{CloseCode, PeerEndpoint};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Every wait in these tests is bounded by this; no test asserts on timing.
const BOUND: Duration = Duration::from_secs(10);

/// The post-hello protocol of the test server: it echoes pings.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Echo {
    Ping(u32),
    Pong(u32),
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn endpoint(seed: u8) -> PeerEndpoint {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    PeerEndpoint::bind(loopback, &key(seed)).expect("bind")
}

fn switchboard() -> Hello {
    Hello::new(
        NodeRole::Switchboard,
        Capabilities::of(&[Capability::Relay, Capability::Presence]),
    )
}

fn daemon() -> Hello {
    Hello::new(
        NodeRole::Daemon,
        Capabilities::of(&[Capability::Replicate, Capability::Presence]),
    )
}

/// What the server reports about each connection it handled.
type Outcome = Result<(), Option<CloseCode>>;

/// Serves forever: hello, then echo pings until the stream ends; reports how each connection ended.
fn spawn_server(server: PeerEndpoint, admission: Admission) -> mpsc::UnboundedReceiver<Outcome> {
    let (report, outcomes) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = server.incoming().await {
            let report = report.clone();
            tokio::spawn(async move {
                let Ok((conn, _key)) = accept(incoming).await else {
                    return;
                };
                let outcome = serve(&conn, admission).await;
                let _ = report.send(outcome);
            });
        }
    });
    outcomes
}

async fn serve(conn: &quinn::Connection, admission: Admission) -> Outcome {
    let mut greeted = accept_hello(conn, &switchboard(), admission)
        .await
        .map_err(|e| e.close_code())?;
    loop {
        match read_frame::<Echo>(&mut greeted.recv, limits::FRAME_BYTES_MAX).await {
            Ok(Some(Echo::Ping(n))) => write_frame(&mut greeted.send, &Echo::Pong(n))
                .await
                .map_err(|e| e.close_code())?,
            Ok(Some(Echo::Pong(_))) | Ok(None) => return Ok(()),
            Err(err) => {
                let code = err.close_code();
                kith::net::close::close(conn, code.unwrap_or(CloseCode::Normal));
                return Err(code);
            }
        }
    }
}

async fn next_outcome(outcomes: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
    tokio::time::timeout(BOUND, outcomes.recv())
        .await
        .expect("bounded")
        .expect("server alive")
}

async fn connect(client: &PeerEndpoint, server_addr: SocketAddr) -> quinn::Connection {
    let dialed = tokio::time::timeout(BOUND, client.dial(server_addr, key(1).verifying_key()));
    dialed.await.expect("bounded").expect("dials").0
}

async fn greet(conn: &quinn::Connection, hello: &Hello) -> Result<Greeted, HelloError> {
    tokio::time::timeout(BOUND, dial_hello(conn, hello))
        .await
        .expect("bounded")
}

async fn ping(greeted: &mut Greeted, n: u32) {
    write_frame(&mut greeted.send, &Echo::Ping(n))
        .await
        .expect("ping sent");
    let reply = read_frame::<Echo>(&mut greeted.recv, limits::FRAME_BYTES_MAX);
    let reply = tokio::time::timeout(BOUND, reply).await.expect("bounded");
    assert_eq!(reply.expect("reply read"), Some(Echo::Pong(n)));
}

/// The code the server closed `conn` with, as this client sees it.
async fn closed_with(conn: &quinn::Connection) -> Option<CloseCode> {
    let err = tokio::time::timeout(BOUND, conn.closed())
        .await
        .expect("server closes");
    peer_close_code(&err)
}

#[tokio::test]
async fn hello_agrees_on_version_roles_and_common_capabilities() {
    let (server, client) = (endpoint(1), endpoint(2));
    let addr = server.local_addr().expect("addr");
    let _outcomes = spawn_server(server, Admission::Welcome);
    let conn = connect(&client, addr).await;
    let mut greeted = greet(&conn, &daemon()).await.expect("hello succeeds");
    assert_eq!(greeted.agreed.version, kith::net::hello::PROTOCOL_VERSION);
    assert_eq!(greeted.agreed.peer_role, NodeRole::Switchboard);
    assert_eq!(greeted.agreed.peer_capabilities, switchboard().capabilities);
    assert_eq!(
        greeted.agreed.common,
        Capabilities::of(&[Capability::Presence])
    );
    ping(&mut greeted, 7).await;
}

#[tokio::test]
async fn version_mismatch_is_named_on_both_sides_and_closes_with_its_code() {
    let (server, client) = (endpoint(1), endpoint(2));
    let addr = server.local_addr().expect("addr");
    let mut outcomes = spawn_server(server, Admission::Welcome);
    let conn = connect(&client, addr).await;
    let future = Hello {
        version: 2,
        ..daemon()
    };
    match greet(&conn, &future).await {
        Err(HelloError::VersionMismatch { ours: 2, theirs: 1 }) => {}
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    assert_eq!(
        next_outcome(&mut outcomes).await,
        Err(Some(CloseCode::VersionMismatch))
    );
}

#[tokio::test]
async fn refused_peer_gets_a_goodbye() {
    let (server, client) = (endpoint(1), endpoint(2));
    let addr = server.local_addr().expect("addr");
    let mut outcomes = spawn_server(server, Admission::Refuse(GoodbyeReason::NotWelcome));
    let conn = connect(&client, addr).await;
    match greet(&conn, &daemon()).await {
        Err(HelloError::PeerSaidGoodbye(GoodbyeReason::NotWelcome)) => {}
        other => panic!("expected a goodbye, got {other:?}"),
    }
    assert_eq!(
        next_outcome(&mut outcomes).await,
        Err(Some(CloseCode::Goodbye))
    );
}

/// Pings as encoded frames, to send behind a hello.
fn pings(ns: &[u32]) -> Vec<u8> {
    ns.iter()
        .flat_map(|&n| {
            kith::net::frame::encode(&Echo::Ping(n), limits::FRAME_BYTES_MAX).expect("encode")
        })
        .collect()
}

async fn greet_pipelined(
    conn: &quinn::Connection,
    hello: &Hello,
    then: &[u8],
) -> Result<Greeted, HelloError> {
    tokio::time::timeout(BOUND, dial_hello_pipelined(conn, hello, then))
        .await
        .expect("bounded")
}

#[tokio::test]
async fn frames_sent_behind_the_hello_are_served_after_it_in_order() {
    let (server, client) = (endpoint(1), endpoint(2));
    let addr = server.local_addr().expect("addr");
    let _outcomes = spawn_server(server, Admission::Welcome);
    let conn = connect(&client, addr).await;
    let mut greeted = greet_pipelined(&conn, &daemon(), &pings(&[7, 8]))
        .await
        .expect("hello succeeds");
    assert_eq!(greeted.agreed.peer_role, NodeRole::Switchboard);
    // The hello's answer came first; the pings' answers follow, in order.
    for n in [7, 8] {
        let reply = read_frame::<Echo>(&mut greeted.recv, limits::FRAME_BYTES_MAX);
        let reply = tokio::time::timeout(BOUND, reply).await.expect("bounded");
        assert_eq!(reply.expect("reply read"), Some(Echo::Pong(n)));
    }
    ping(&mut greeted, 9).await;
}

#[tokio::test]
async fn a_refused_hello_refuses_what_was_sent_behind_it() {
    for (admission, hello, code) in [
        (
            Admission::Refuse(GoodbyeReason::NotWelcome),
            daemon(),
            CloseCode::Goodbye,
        ),
        (
            Admission::Welcome,
            Hello {
                version: 2,
                ..daemon()
            },
            CloseCode::VersionMismatch,
        ),
    ] {
        let (server, client) = (endpoint(1), endpoint(2));
        let addr = server.local_addr().expect("addr");
        let mut outcomes = spawn_server(server, admission);
        let conn = connect(&client, addr).await;
        match greet_pipelined(&conn, &hello, &pings(&[1])).await {
            Err(HelloError::PeerSaidGoodbye(_) | HelloError::VersionMismatch { .. }) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The server ended at the hello: it never read the ping behind it (a served ping would
        // have ended the connection normally, after a pong).
        assert_eq!(next_outcome(&mut outcomes).await, Err(Some(code)));
    }
}

/// Sends `frame` (raw bytes) on a fresh, greeted connection; returns the server's close code.
async fn misbehave_after_hello(
    client: &PeerEndpoint,
    addr: SocketAddr,
    frame: &[u8],
) -> Option<CloseCode> {
    let conn = connect(client, addr).await;
    let mut greeted = greet(&conn, &daemon()).await.expect("hello succeeds");
    write_raw(&mut greeted.send, frame).await.expect("sent");
    closed_with(&conn).await
}

#[tokio::test]
async fn protocol_errors_close_only_their_connection_with_the_named_code() {
    let (server, client) = (endpoint(1), endpoint(2));
    let addr = server.local_addr().expect("addr");
    let mut outcomes = spawn_server(server, Admission::Welcome);

    // A well-behaved peer connects first and stays connected throughout.
    let good = connect(&client, addr).await;
    let mut good_greeted = greet(&good, &daemon()).await.expect("hello succeeds");
    ping(&mut good_greeted, 1).await;

    let garbled = [0, 0, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]; // Ping with a broken varint.
    let unknown = [0, 0, 0, 1, 9]; // Message tag 9 does not exist.
    let oversized = (limits::FRAME_BYTES_MAX + 1).to_be_bytes(); // Only the prefix is ever sent.
    let cases: [(&[u8], CloseCode); 3] = [
        (&garbled, CloseCode::FrameMalformed),
        (&unknown, CloseCode::UnknownMessage),
        (&oversized, CloseCode::FrameTooLarge),
    ];
    for (frame, code) in cases {
        assert_eq!(
            misbehave_after_hello(&client, addr, frame).await,
            Some(code)
        );
        assert_eq!(next_outcome(&mut outcomes).await, Err(Some(code)));
    }

    // An unknown message in place of the hello (right version 1, then tag 9) closes the
    // connection during the hello.
    let conn = connect(&client, addr).await;
    let (mut send, _recv) = conn.open_bi().await.expect("stream");
    write_raw(&mut send, &[0, 0, 0, 2, 1, 9])
        .await
        .expect("sent");
    assert_eq!(closed_with(&conn).await, Some(CloseCode::UnknownMessage));
    assert_eq!(
        next_outcome(&mut outcomes).await,
        Err(Some(CloseCode::UnknownMessage))
    );

    // The early connection is untouched, and new ones are still served.
    ping(&mut good_greeted, 2).await;
    let late = connect(&client, addr).await;
    ping(
        &mut greet(&late, &daemon()).await.expect("hello succeeds"),
        3,
    )
    .await;
}
