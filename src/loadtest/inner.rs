//! A simulated peer's inner QUIC over the relay: the real [`VirtualSocket`] on its outer
//! connection's datagrams, an inner endpoint with its own identity, end-to-end TLS with the
//! other peer, and on it either round trips of a fixed-size message on one stream (the relay
//! scenario: the caller measures, the callee echoes) or a replication session (the replicate
//! scenario, [`crate::loadtest::replicate`]). The switchboard sees only `[key][opaque packet]`
//! datagrams, as with daemons.
//!
//! Why: the relay and replicate scenarios must measure what a relayed daemon pays (inner QUIC,
//! both switchboards, the cluster link), not raw datagrams, which `kith bench relay` already
//! does.
//!
//! Memory: a simulated peer's inner endpoint is a plain quinn endpoint on the virtual socket
//! with kith's TLS (the same endpoint, server and client configs a daemon's inner endpoint
//! uses), but a transport that allows the peer only the one bidirectional stream it opens
//! (hello, then round trips or the replication session) and no datagrams
//! ([`inner_transport`]). quinn keeps a table entry for every stream the peer may open, for the
//! connection's life: the default 64 + 16 cost about 5 KiB per inner connection, and a
//! replicating peer holds several.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::{SigningKey, VerifyingKey};
use quinn::{TransportConfig, VarInt};

use crate::identity::FeedId;
use crate::limits::{
    HANDSHAKE_TIMEOUT, LOADTEST_INNER_STREAMS_BIDI, LOADTEST_RELAY_INTERVAL,
    LOADTEST_RELAY_MESSAGE_BYTES, LOADTEST_RELAY_TIMEOUT,
};
use crate::loadtest::lane::{quinn_runtime, spawn_on, Lane};
use crate::loadtest::metrics::{Measure, Metrics};
use crate::loadtest::replicate::{session, Feeds, Side};
use crate::loadtest::LoadtestError;
use crate::net::endpoint::{
    accept, client_config, endpoint_config, server_config, transport_config,
};
use crate::net::tls::{peer_key, server_name};
use crate::net::CloseCode;
use crate::relay::{pump, VirtualSocket};
use crate::runtime::OwnedTask;

/// What a peer does with the inner connections it accepts.
#[derive(Clone)]
pub enum Serve {
    /// Echo every stream (a relay callee).
    Echo,
    /// Run a replication session on each (a replicator), with these feeds.
    Replicate {
        /// The peer's feeds.
        feeds: Arc<Feeds>,
        /// The recorder.
        metrics: Arc<Metrics>,
        /// Set when the run ends.
        stop: Arc<AtomicBool>,
    },
}

/// The inner endpoint over one outer connection, and the tasks that drive it.
pub struct InnerRelay {
    socket: Arc<VirtualSocket>,
    endpoint: Arc<InnerEndpoint>,
    tasks: Vec<OwnedTask>,
    /// Where the tasks and the inner endpoint run (the probes' lane for a relayed pair).
    lane: Option<Lane>,
}

impl Drop for InnerRelay {
    fn drop(&mut self) {
        // Inner connections first (their close leaves while the socket still sends), then the
        // socket.
        self.endpoint.close();
        self.socket.close();
    }
}

/// The transport of simulated peers' inner connections: kith's, with room for one
/// bidirectional stream the peer opens (two, so a stream closing and its successor may
/// overlap), none unidirectional, and no datagrams (nothing inner sends any).
pub fn inner_transport() -> Result<TransportConfig, LoadtestError> {
    let mut transport = transport_config()?;
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(LOADTEST_INNER_STREAMS_BIDI))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .datagram_receive_buffer_size(None);
    Ok(transport)
}

/// A simulated peer's inner endpoint: dials and accepts as the peer's identity with kith's TLS
/// over the virtual socket, with [`inner_transport`].
struct InnerEndpoint {
    endpoint: quinn::Endpoint,
    key: SigningKey,
    transport: Arc<TransportConfig>,
}

impl InnerEndpoint {
    fn new(
        socket: Arc<VirtualSocket>,
        key: &SigningKey,
        lane: Option<&Lane>,
    ) -> Result<InnerEndpoint, LoadtestError> {
        let transport = Arc::new(inner_transport()?);
        let mut server = server_config(key)?;
        server.transport_config(Arc::clone(&transport));
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            endpoint_config(key),
            Some(server),
            socket,
            quinn_runtime(lane),
        )?;
        Ok(InnerEndpoint {
            endpoint,
            key: key.clone(),
            transport,
        })
    }

    /// Dial `addr`, which must prove `expected`.
    async fn dial(
        &self,
        addr: SocketAddr,
        expected: VerifyingKey,
    ) -> Result<quinn::Connection, LoadtestError> {
        let mut config = client_config(&self.key, expected)?;
        config.transport_config(Arc::clone(&self.transport));
        let connecting = self
            .endpoint
            .connect_with(config, addr, &server_name(&expected))?;
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| LoadtestError::Timeout("the inner QUIC handshake"))??;
        // The verifier already refuses another key; checked again, as `PeerEndpoint` does.
        if peer_key(&conn)? != expected {
            conn.close(CloseCode::Normal.varint(), b"wrong key");
            return Err(LoadtestError::Protocol("the inner peer proved another key"));
        }
        Ok(conn)
    }

    fn close(&self) {
        let code = CloseCode::Normal;
        self.endpoint.close(code.varint(), code.reason().as_bytes());
    }
}

impl InnerRelay {
    /// The virtual socket on `outer`, its receive pump, and an inner endpoint proving `key` that
    /// serves the connections it accepts as `serve` says; all of it on `lane` if given.
    pub fn start(
        key: &SigningKey,
        outer: &quinn::Connection,
        serve: Serve,
        lane: Option<&Lane>,
    ) -> Result<InnerRelay, LoadtestError> {
        let own = FeedId::from(key.verifying_key());
        let socket = VirtualSocket::new(own, Arc::new(outer.clone()));
        let endpoint = Arc::new(InnerEndpoint::new(socket.clone(), key, lane)?);
        let (conn, inner) = (outer.clone(), Arc::clone(&socket));
        let pump = spawn_on(lane, async move {
            let _ = pump(conn, inner).await;
        });
        let accepting = spawn_on(lane, accept_all(Arc::clone(&endpoint), serve));
        Ok(InnerRelay {
            socket,
            endpoint,
            tasks: vec![pump, accepting],
            lane: lane.cloned(),
        })
    }

    /// The fake address `peer` has on this socket (registered so packets to it can leave).
    pub fn register(&self, peer: FeedId) -> Result<SocketAddr, LoadtestError> {
        self.socket
            .register_peer(peer)
            .map_err(|_| LoadtestError::Protocol("the relay's address table is full"))
    }

    /// Dial `peer` through the relay and make round trips every
    /// [`LOADTEST_RELAY_INTERVAL`] until `stop` is set or the connection fails.
    pub fn round_trips(
        &mut self,
        peer: FeedId,
        metrics: Arc<Metrics>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), LoadtestError> {
        let addr = self.register(peer)?;
        let key = peer
            .verifying_key()
            .map_err(|_| LoadtestError::Protocol("the callee's key is not a valid key"))?;
        let endpoint = Arc::clone(&self.endpoint);
        self.tasks.push(spawn_on(self.lane.as_ref(), async move {
            let result = measure(&endpoint, addr, key, &metrics, &stop).await;
            if let Err(e) = result {
                if !stop.load(Ordering::Relaxed) {
                    metrics.fail(&format!("relay_{}", crate::loadtest::client::cause(&e)));
                }
            }
        }));
        Ok(())
    }

    /// Dial `peer` through the relay and run a replication session with it until `stop` is set
    /// or the connection fails (a failure is counted by cause).
    pub fn replicate_with(
        &mut self,
        peer: FeedId,
        feeds: Arc<Feeds>,
        metrics: Arc<Metrics>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), LoadtestError> {
        let addr = self.register(peer)?;
        let key = peer
            .verifying_key()
            .map_err(|_| LoadtestError::Protocol("the followed peer's key is not a valid key"))?;
        let endpoint = Arc::clone(&self.endpoint);
        self.tasks.push(spawn_on(self.lane.as_ref(), async move {
            let result = match endpoint.dial(addr, key).await {
                Ok(conn) => {
                    Metrics::bump(&metrics.replicate_links_up);
                    session(
                        conn,
                        Side::Dialled,
                        feeds,
                        Arc::clone(&metrics),
                        Arc::clone(&stop),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            replicate_ended(&metrics, &stop, result);
        }));
        Ok(())
    }
}

/// Count a replication session that ended in an error before the run's end.
fn replicate_ended(metrics: &Metrics, stop: &AtomicBool, result: Result<(), LoadtestError>) {
    if let Err(e) = result {
        if !stop.load(Ordering::Relaxed) {
            tracing::debug!(error = %e, "a replication session ended");
            metrics.fail(&format!("replicate_{}", crate::loadtest::client::cause(&e)));
        }
    }
}

async fn measure(
    endpoint: &InnerEndpoint,
    addr: SocketAddr,
    key: VerifyingKey,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), LoadtestError> {
    let conn = endpoint.dial(addr, key).await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    Metrics::bump(&metrics.relay_pairs_up);
    let mut message = vec![0u8; LOADTEST_RELAY_MESSAGE_BYTES];
    let mut back = vec![0u8; LOADTEST_RELAY_MESSAGE_BYTES];
    let mut tick = tokio::time::interval(LOADTEST_RELAY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    let mut lost_seen = conn.stats().path.lost_packets;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        seq += 1;
        message[..8].copy_from_slice(&seq.to_le_bytes());
        let started = Instant::now();
        let trip = async {
            send.write_all(&message)
                .await
                .map_err(std::io::Error::from)?;
            recv.read_exact(&mut back)
                .await
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(LOADTEST_RELAY_TIMEOUT, trip).await {
            Ok(Ok(())) if back == message => {
                metrics.record(Measure::RelayRtt, started.elapsed());
                let lost = conn.stats().path.lost_packets;
                metrics
                    .relay_inner_lost
                    .fetch_add(lost.saturating_sub(lost_seen), Ordering::Relaxed);
                lost_seen = lost;
                Metrics::bump(&metrics.relay_round_trips);
                metrics
                    .relay_bytes
                    .fetch_add(2 * message.len() as u64, Ordering::Relaxed);
            }
            Ok(Ok(())) => return Err(LoadtestError::Protocol("the echo came back changed")),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                // A stream cannot skip a late message: count it and end this pair's loop.
                Metrics::bump(&metrics.relay_lost);
                return Err(LoadtestError::Timeout("an inner round trip"));
            }
        }
    }
    conn.close(0u32.into(), b"done");
    Ok(())
}

/// Accept inner connections and serve each.
async fn accept_all(endpoint: Arc<InnerEndpoint>, serve: Serve) {
    while let Some(incoming) = endpoint.endpoint.accept().await {
        let serve = serve.clone();
        tokio::spawn(async move {
            let Ok((conn, _)) = accept(incoming).await else {
                return;
            };
            match serve {
                Serve::Echo => echo(conn).await,
                Serve::Replicate {
                    feeds,
                    metrics,
                    stop,
                } => {
                    let result = session(
                        conn,
                        Side::Accepted,
                        feeds,
                        Arc::clone(&metrics),
                        Arc::clone(&stop),
                    )
                    .await;
                    replicate_ended(&metrics, &stop, result);
                }
            }
        });
    }
}

/// Echo every stream of `conn`.
async fn echo(conn: quinn::Connection) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        tokio::spawn(async move {
            let mut buf = vec![0u8; LOADTEST_RELAY_MESSAGE_BYTES];
            while recv.read_exact(&mut buf).await.is_ok() {
                if send.write_all(&buf).await.is_err() {
                    return;
                }
            }
        });
    }
}
