//! The outer link's transport, over real QUIC on loopback: what a switchboard join costs in
//! packets, and that an idle link stays up on its client's keep-alives alone.
//!
//! - MTU discovery probes the ceiling once per direction (not a binary search of three probes)
//!   and keeps it on a path that carries it.
//! - The switchboard side sends no keep-alives; the client's hold an idle link open past the
//!   idle timeout.

mod relay_util;

use std::time::{Duration, Instant};

use kith::limits;
use kith::net::endpoint::accept;
use kith::net::tls;
use kith::net::PeerEndpoint;
use kith::relay::config::{outer_client_config, outer_server_config};
use kith::testing::eventually;
use relay_util::{key, BOUND, POLL};

/// A switchboard-side endpoint with the outer server config, and one accepted client link.
async fn link(
    seed: u8,
) -> (
    PeerEndpoint,
    quinn::Connection,
    PeerEndpoint,
    quinn::Connection,
) {
    let sb_key = key(seed);
    let sb = PeerEndpoint::bind("127.0.0.1:0".parse().expect("addr"), &sb_key).expect("bind");
    sb.quinn()
        .set_server_config(Some(outer_server_config(&sb_key).expect("server config")));
    let client_key = key(seed + 1);
    let client =
        PeerEndpoint::bind("127.0.0.1:0".parse().expect("addr"), &client_key).expect("bind");
    let expected = sb_key.verifying_key();
    let config = outer_client_config(&client_key, expected).expect("client config");
    let dialing = client
        .quinn()
        .connect_with(
            config,
            sb.local_addr().expect("addr"),
            &tls::server_name(&expected),
        )
        .expect("connect");
    let accepting = async {
        let incoming = sb.quinn().accept().await.expect("incoming");
        accept(incoming).await.expect("accept").0
    };
    let (dialed, server_conn) =
        tokio::time::timeout(BOUND, async { tokio::join!(dialing, accepting) })
            .await
            .expect("bounded");
    (sb, server_conn, client, dialed.expect("outer handshake"))
}

#[tokio::test]
async fn mtu_discovery_probes_the_ceiling_once_each_way() {
    let (_sb, server, _client, client) = link(40).await;
    let mtu = |c: &quinn::Connection| c.stats().path.current_mtu;
    eventually("both directions at the ceiling", BOUND, POLL, || {
        mtu(&server) == limits::RELAY_OUTER_MTU_CEILING
            && mtu(&client) == limits::RELAY_OUTER_MTU_CEILING
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // any further probe would be out by now
    for (side, conn) in [("switchboard", &server), ("client", &client)] {
        let path = conn.stats().path;
        assert_eq!(path.sent_plpmtud_probes, 1, "{side} sent one probe");
        assert_eq!(path.lost_plpmtud_probes, 0, "{side} lost none on loopback");
    }
}

#[tokio::test]
async fn an_idle_link_outlives_the_idle_timeout_on_the_clients_keep_alives() {
    let (_sb, server, _client, client) = link(50).await;
    let started = Instant::now();
    let outlive = limits::CONNECTION_IDLE_TIMEOUT + Duration::from_secs(2);
    while started.elapsed() < outlive {
        assert!(
            server.close_reason().is_none(),
            "the switchboard dropped an idle client: {:?}",
            server.close_reason()
        );
        assert!(
            client.close_reason().is_none(),
            "the client lost its switchboard: {:?}",
            client.close_reason()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // PING frames besides MTU probes are keep-alives: only the client sends them.
    let keep_alives =
        |c: &quinn::Connection| c.stats().frame_tx.ping - c.stats().path.sent_plpmtud_probes;
    assert_eq!(
        keep_alives(&server),
        0,
        "the switchboard sends no keep-alives"
    );
    let expected = (outlive.as_secs() / limits::KEEP_ALIVE_INTERVAL.as_secs()).saturating_sub(1);
    assert!(
        keep_alives(&client) >= expected,
        "the client kept the link alive: {} pings",
        keep_alives(&client)
    );
}
