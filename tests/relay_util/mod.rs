//! Shared fixtures for the relay suites: a tiny switchboard (one outer endpoint, a forwarding
//! loop per client driven by `kith::relay::Router`, a bounded send queue per client) that records
//! every frame it receives and forwards, and relayed peers (an outer connection to it plus an
//! inner `PeerEndpoint` on a `VirtualSocket`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use kith::identity::FeedId;
use kith::net::endpoint::accept;
use kith::net::{tls, PeerEndpoint};
use kith::relay::config::{check_link, outer_client_config, outer_server_config};
use kith::relay::{spawn_pump, Action, Router, RouterConfig, VirtualSocket};
use kith::testing::eventually;

/// Every wait in these suites is bounded by this.
pub(crate) const BOUND: Duration = Duration::from_secs(10);
/// How often a bounded wait (`kith::testing::eventually`) checks its condition.
pub(crate) const POLL: Duration = Duration::from_millis(5);

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(crate) fn id(seed: u8) -> FeedId {
    FeedId::from(key(seed).verifying_key())
}

/// The switchboard's shared state: the router and one bounded send queue per client.
pub(crate) struct Hub {
    pub router: Router,
    outs: HashMap<FeedId, quinn::Connection>,
    /// Every frame received from a client, then every frame forwarded, in order.
    pub received: Vec<Bytes>,
    pub forwarded: Vec<Bytes>,
    pub record: bool,
}

pub(crate) struct Switchboard {
    pub endpoint: PeerEndpoint,
    pub hub: Arc<Mutex<Hub>>,
    pub addr: SocketAddr,
    pub key: SigningKey,
}

impl Switchboard {
    pub(crate) fn start(seed: u8, config: RouterConfig, record: bool) -> Arc<Self> {
        let key = key(seed);
        let endpoint =
            PeerEndpoint::bind("127.0.0.1:0".parse().expect("addr"), &key).expect("bind");
        endpoint
            .quinn()
            .set_server_config(Some(outer_server_config(&key).expect("server config")));
        let addr = endpoint.local_addr().expect("addr");
        let hub = Arc::new(Mutex::new(Hub {
            router: Router::new(config),
            outs: HashMap::new(),
            received: Vec::new(),
            forwarded: Vec::new(),
            record,
        }));
        let sb = Arc::new(Self {
            endpoint,
            hub,
            addr,
            key,
        });
        let accepting = sb.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.endpoint.incoming().await {
                let hub = accepting.hub.clone();
                tokio::spawn(async move {
                    if let Ok((conn, key)) = accept(incoming).await {
                        serve_client(hub, conn, FeedId::from(key)).await;
                    }
                });
            }
        });
        sb
    }

    pub(crate) fn is_client(&self, who: &FeedId) -> bool {
        self.hub.lock().expect("hub").router.is_client(who)
    }

    /// Introduces `a` and `b` once both are connected.
    pub(crate) async fn introduce(&self, a: FeedId, b: FeedId) {
        eventually("both clients connected", BOUND, POLL, || {
            self.is_client(&a) && self.is_client(&b)
        })
        .await;
        self.hub
            .lock()
            .expect("hub")
            .router
            .open_pair(a, b, std::time::Instant::now())
            .expect("pair");
    }

    pub(crate) fn stats(&self) -> kith::relay::RouterStats {
        self.hub.lock().expect("hub").router.stats().clone()
    }
}

/// One client: a reader routing its datagrams straight into the destination's connection, whose
/// datagram send buffer is the queue the router checks for room (as the real switchboard does).
async fn serve_client(hub: Arc<Mutex<Hub>>, conn: quinn::Connection, from: FeedId) {
    {
        let mut h = hub.lock().expect("hub");
        if h.router.add_client(from, Instant::now()).is_err() {
            return;
        }
        h.outs.insert(from, conn.clone());
    }
    while let Ok(frame) = conn.read_datagram().await {
        let mut h = hub.lock().expect("hub");
        if h.record {
            h.received.push(frame.clone());
        }
        let Hub { router, outs, .. } = &mut *h;
        let action = router.route(&from, frame, Instant::now(), |to| {
            outs.get(to).map_or(0, |q| q.datagram_send_buffer_space())
        });
        if let Action::Forward { to, frame } = action {
            if h.record {
                h.forwarded.push(frame.clone());
            }
            if let Some(q) = h.outs.get(&to) {
                // The router checked the room under the same lock; a closed link just drops it.
                let _ = q.send_datagram(frame);
            }
        }
    }
    let mut h = hub.lock().expect("hub");
    h.router.remove_client(&from);
    h.outs.remove(&from);
}

/// An outer connection from `seed` to the switchboard, checked to carry relayed packets.
pub(crate) async fn connect_outer(seed: u8, sb: &Switchboard) -> (PeerEndpoint, quinn::Connection) {
    let me = key(seed);
    let endpoint = PeerEndpoint::bind("127.0.0.1:0".parse().expect("addr"), &me).expect("bind");
    let expected = sb.key.verifying_key();
    let config = outer_client_config(&me, expected).expect("client config");
    let connecting = endpoint
        .quinn()
        .connect_with(config, sb.addr, &tls::server_name(&expected))
        .expect("connect");
    let conn = tokio::time::timeout(BOUND, connecting)
        .await
        .expect("bounded")
        .expect("outer handshake");
    assert_eq!(tls::peer_key(&conn).expect("key"), expected);
    check_link(&conn).expect("the outer link carries 1200-byte inner packets");
    (endpoint, conn)
}

/// A relayed peer: its outer connection and its inner endpoint on a virtual socket.
pub(crate) struct RelayPeer {
    pub id: FeedId,
    pub outer_endpoint: PeerEndpoint,
    pub outer: quinn::Connection,
    pub socket: Arc<VirtualSocket>,
    pub inner: PeerEndpoint,
}

pub(crate) async fn relay_peer(seed: u8, sb: &Switchboard) -> RelayPeer {
    let (outer_endpoint, outer) = connect_outer(seed, sb).await;
    let id = id(seed);
    let socket = VirtualSocket::new(id, Arc::new(outer.clone()));
    spawn_pump(outer.clone(), socket.clone());
    let inner = PeerEndpoint::with_socket(socket.clone(), &key(seed)).expect("inner endpoint");
    RelayPeer {
        id,
        outer_endpoint,
        outer,
        socket,
        inner,
    }
}

/// A dials B through the relay (expecting B's key) while B accepts; returns both connections.
pub(crate) async fn inner_connect(
    a: &RelayPeer,
    b: &RelayPeer,
) -> (quinn::Connection, quinn::Connection) {
    let b_addr = a.socket.register_peer(b.id).expect("register");
    let b_key = b.id.verifying_key().expect("key");
    let accepting = async {
        let incoming = tokio::time::timeout(BOUND, b.inner.incoming())
            .await
            .expect("an attempt arrives")
            .expect("endpoint open");
        accept(incoming).await.expect("inner accept")
    };
    let (dialed, (b_conn, a_key)) = tokio::join!(a.inner.dial(b_addr, b_key), accepting);
    let (a_conn, proven) = dialed.expect("inner dial");
    assert_eq!(FeedId::from(proven), b.id);
    assert_eq!(FeedId::from(a_key), a.id);
    (a_conn, b_conn)
}
