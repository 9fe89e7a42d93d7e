//! A quinn endpoint bound to a node identity: one UDP socket that both listens and dials.
//!
//! Dialing and accepting on the same socket is what hole punching needs later (the NAT mapping
//! the peer sees for our outbound packets is the one it must reach us on). Every connection gets
//! the same [`transport_config`], built only from named bounds in [`crate::limits`].
//!
//! The configs are reusable on their own ([`server_config`], [`client_config`]) so an endpoint
//! over a custom [`quinn::AsyncUdpSocket`] (the relay's virtual socket) is built the same way:
//! see [`PeerEndpoint::with_socket`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{AsyncUdpSocket, Connection, EndpointConfig, IdleTimeout, TransportConfig, VarInt};

use super::admission::{Admission, AdmissionCounts};
use super::close::{close, CloseCode};
use super::tls::{self, KeyProbe, TlsIdentity};
use super::{KeyMismatch, NetError};
use crate::limits;

/// The transport every kith connection uses, from the named bounds in [`crate::limits`].
pub fn transport_config() -> Result<TransportConfig, NetError> {
    let idle = IdleTimeout::try_from(limits::CONNECTION_IDLE_TIMEOUT)
        .map_err(|_| NetError::Config("idle timeout out of QUIC range"))?;
    let mut transport = TransportConfig::default();
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(limits::KEEP_ALIVE_INTERVAL))
        .max_concurrent_bidi_streams(VarInt::from_u32(limits::STREAMS_BIDI_MAX))
        .max_concurrent_uni_streams(VarInt::from_u32(limits::STREAMS_UNI_MAX))
        .stream_receive_window(VarInt::from_u32(limits::STREAM_RECEIVE_WINDOW_BYTES))
        .receive_window(VarInt::from_u32(limits::CONNECTION_RECEIVE_WINDOW_BYTES))
        .send_window(limits::CONNECTION_SEND_WINDOW_BYTES)
        .datagram_receive_buffer_size(Some(limits::DATAGRAM_RECEIVE_BUFFER_BYTES))
        .datagram_send_buffer_size(limits::DATAGRAM_SEND_BUFFER_BYTES);
    Ok(transport)
}

/// The endpoint config for `key`: quinn's defaults, except for two things that let a node that
/// restarted on the same address end its peers' connections of its previous life at once.
///
/// - The stateless-reset key is derived from the node's secret key (a BLAKE3 derivation under
///   its own context string, so it stays secret) instead of drawn at random, so the new process
///   computes the same reset tokens as the old one.
/// - Connection ids are plain random ids. quinn's default generator tags its ids with a key drawn
///   at random per endpoint and drops packets for ids it cannot validate without answering, so a
///   restarted node would never reset anything.
///
/// The peer's next packet on a dead connection (a keep-alive at the latest) then draws a valid
/// stateless reset (RFC 9000 §10.3): the peer drops the connection and redials, instead of
/// waiting for the idle timeout. Resets are rate-limited by quinn and smaller than the packet
/// that caused them, so they cannot amplify anything.
pub fn endpoint_config(key: &SigningKey) -> EndpointConfig {
    let reset = blake3::derive_key(RESET_KEY_CONTEXT, key.as_bytes());
    let mut config = EndpointConfig::new(Arc::new(ResetKey(reset)));
    config.cid_generator(|| Box::new(RandomCids));
    config
}

const RESET_KEY_CONTEXT: &str = "kith 2025-06 quic stateless reset key v1";
/// Length of a local connection id (quinn's default length).
const CID_BYTES: usize = 8;

/// Random connection ids of [`CID_BYTES`] (quinn's `RandomConnectionIdGenerator`, which it does
/// not re-export).
struct RandomCids;

impl quinn::ConnectionIdGenerator for RandomCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&rand::random::<[u8; CID_BYTES]>())
    }

    fn cid_len(&self) -> usize {
        CID_BYTES
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A keyed BLAKE3 MAC as quinn's stateless-reset HMAC.
struct ResetKey([u8; 32]);

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let mac = blake3::keyed_hash(&self.0, data);
        let n = signature_out.len().min(32);
        signature_out[..n].copy_from_slice(&mac.as_bytes()[..n]);
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        let expected = blake3::keyed_hash(&self.0, data);
        let given: [u8; 32] = signature
            .try_into()
            .map_err(|_| quinn::crypto::CryptoError)?;
        // blake3::Hash compares in constant time.
        if expected == blake3::Hash::from(given) {
            Ok(())
        } else {
            Err(quinn::crypto::CryptoError)
        }
    }
}

/// The quinn server config for `key`: mutual raw-public-key TLS and the kith transport.
pub fn server_config(key: &SigningKey) -> Result<quinn::ServerConfig, NetError> {
    server_config_for(&TlsIdentity::new(key)?, Arc::new(transport_config()?))
}

/// The quinn client config for a dial from `key` to the node that must prove `expected`. Its TLS
/// part is the one every dial of this pair shares ([`client_crypto`]), so it resumes the last
/// session with that node when it can.
pub fn client_config(
    key: &SigningKey,
    expected: VerifyingKey,
) -> Result<quinn::ClientConfig, NetError> {
    Ok(client_config_probed(key, expected)?.0)
}

/// [`client_config`] with the pair's [`KeyProbe`]: whether a dial was resumed shows as no new
/// full handshake on the probe ([`KeyProbe::full_handshakes`]).
pub fn client_config_probed(
    key: &SigningKey,
    expected: VerifyingKey,
) -> Result<(quinn::ClientConfig, KeyProbe), NetError> {
    let (crypto, probe) = client_crypto(key.verifying_key(), expected, || TlsIdentity::new(key))?;
    let mut config = quinn::ClientConfig::new(crypto);
    config.transport_config(Arc::new(transport_config()?));
    Ok((config, probe))
}

fn server_config_for(
    identity: &TlsIdentity,
    transport: Arc<TransportConfig>,
) -> Result<quinn::ServerConfig, NetError> {
    let crypto = QuicServerConfig::try_from(tls::server_config(identity)?)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config
        .transport_config(transport)
        .max_incoming(limits::INCOMING_HANDSHAKES_MAX);
    Ok(config)
}

/// A (own key, peer key) pair: what a client TLS config is kept by.
type Pair = ([u8; 32], [u8; 32]);

/// The client TLS configs of this process, one per pair, the oldest dropped past
/// [`limits::TLS_CLIENT_CONFIGS_MAX`].
///
/// Why shared: rustls resumes a session only with the very config objects (verifier, client
/// credentials) it was made with, and a config holds the tickets of its peer. Building one per
/// dial, as before, made every reconnect a full handshake and parsed the identity key again.
#[derive(Default)]
struct ClientConfigs {
    by_pair: HashMap<Pair, (Arc<QuicClientConfig>, KeyProbe)>,
    /// Insertion order, for dropping the oldest.
    order: VecDeque<Pair>,
}

fn client_configs() -> &'static Mutex<ClientConfigs> {
    static CONFIGS: OnceLock<Mutex<ClientConfigs>> = OnceLock::new();
    CONFIGS.get_or_init(Mutex::default)
}

/// The shared TLS config (and its probe) for dials from `public` (built with `identity` on first
/// use) to the node that must prove `expected`.
fn client_crypto(
    public: VerifyingKey,
    expected: VerifyingKey,
    identity: impl FnOnce() -> Result<TlsIdentity, NetError>,
) -> Result<(Arc<QuicClientConfig>, KeyProbe), NetError> {
    let pair = (public.to_bytes(), expected.to_bytes());
    let lock = || client_configs().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = lock().by_pair.get(&pair) {
        return Ok(found.clone());
    }
    // Built outside the lock (it parses the key); a racing dial's config wins if it got in first.
    let identity = identity()?;
    let (rustls_config, probe) = tls::client_config(&identity, expected)?;
    let built = (Arc::new(QuicClientConfig::try_from(rustls_config)?), probe);
    let mut configs = lock();
    if let Some(found) = configs.by_pair.get(&pair) {
        return Ok(found.clone());
    }
    while configs.by_pair.len() >= limits::TLS_CLIENT_CONFIGS_MAX {
        let Some(oldest) = configs.order.pop_front() else {
            break;
        };
        configs.by_pair.remove(&oldest);
    }
    configs.order.push_back(pair);
    configs.by_pair.insert(pair, built.clone());
    Ok(built)
}

/// A quinn endpoint that accepts and dials as one ed25519 identity.
#[derive(Debug)]
pub struct PeerEndpoint {
    endpoint: quinn::Endpoint,
    identity: TlsIdentity,
    transport: Arc<TransportConfig>,
    /// Which inbound handshakes the accept loop takes on (see [`super::accept`]); kept here so
    /// that its counts outlive a restarted loop and every role's status can read them.
    admission: Arc<Mutex<Admission>>,
    /// A duplicate of the UDP socket [`Self::bind`] made (sharing its receive queue), for a
    /// runtime that watches it before sleeping ([`crate::relay::idle_poll`]); `None` over a
    /// custom socket.
    probe: Option<std::net::UdpSocket>,
}

impl PeerEndpoint {
    /// Binds a UDP socket on `addr` (port 0 for any) and serves as `key`.
    pub fn bind(addr: SocketAddr, key: &SigningKey) -> Result<Self, NetError> {
        let socket = std::net::UdpSocket::bind(addr)?;
        enlarge_buffers(&socket);
        let probe = Some(socket.try_clone()?);
        let runtime = Arc::new(quinn::TokioRuntime);
        let (identity, transport, server) = Self::configs(key)?;
        let endpoint = quinn::Endpoint::new(endpoint_config(key), Some(server), socket, runtime)?;
        Ok(Self {
            endpoint,
            identity,
            transport,
            admission: Arc::default(),
            probe,
        })
    }

    /// Serves as `key` over a custom socket (for instance a relay's virtual socket).
    pub fn with_socket(
        socket: Arc<dyn AsyncUdpSocket>,
        key: &SigningKey,
    ) -> Result<Self, NetError> {
        Self::with_socket_on(socket, key, Arc::new(quinn::TokioRuntime))
    }

    /// [`Self::with_socket`], driven by `runtime` (its endpoint and connection drivers, their
    /// timers) instead of the runtime the caller is in.
    pub fn with_socket_on(
        socket: Arc<dyn AsyncUdpSocket>,
        key: &SigningKey,
        runtime: Arc<dyn quinn::Runtime>,
    ) -> Result<Self, NetError> {
        let (identity, transport, server) = Self::configs(key)?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            endpoint_config(key),
            Some(server),
            socket,
            runtime,
        )?;
        Ok(Self {
            endpoint,
            identity,
            transport,
            admission: Arc::default(),
            probe: None,
        })
    }

    fn configs(
        key: &SigningKey,
    ) -> Result<(TlsIdentity, Arc<TransportConfig>, quinn::ServerConfig), NetError> {
        let identity = TlsIdentity::new(key)?;
        let transport = Arc::new(transport_config()?);
        let server = server_config_for(&identity, transport.clone())?;
        Ok((identity, transport, server))
    }

    /// Another duplicate of the UDP socket [`Self::bind`] made, to watch for queued datagrams
    /// without reading them ([`crate::relay::idle_poll::IdlePoller::watch`]); `None` over a
    /// custom socket.
    pub fn socket_probe(&self) -> Option<std::io::Result<std::net::UdpSocket>> {
        self.probe.as_ref().map(std::net::UdpSocket::try_clone)
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// The key this endpoint proves.
    pub fn public_key(&self) -> VerifyingKey {
        self.identity.public()
    }

    /// The counts of the accept loop's admission decisions (for `kith status`).
    pub fn handshakes(&self) -> AdmissionCounts {
        self.admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts()
    }

    /// The admission state the accept loop decides with.
    pub(crate) fn admission(&self) -> Arc<Mutex<Admission>> {
        Arc::clone(&self.admission)
    }

    /// The underlying quinn endpoint (stats, rebinding, ...).
    pub fn quinn(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Dials `addr`, which must prove `expected`; returns the connection and the proven key.
    ///
    /// Fails with [`NetError::PeerKeyMismatch`] when another key answers, and
    /// [`NetError::HandshakeTimeout`] after [`limits::HANDSHAKE_TIMEOUT`].
    pub async fn dial(
        &self,
        addr: SocketAddr,
        expected: VerifyingKey,
    ) -> Result<(Connection, VerifyingKey), NetError> {
        let identity = &self.identity;
        let (crypto, probe) = client_crypto(identity.public(), expected, || Ok(identity.clone()))?;
        let mut config = quinn::ClientConfig::new(crypto);
        config.transport_config(self.transport.clone());
        let connecting = self
            .endpoint
            .connect_with(config, addr, &tls::server_name(&expected))?;
        let conn = match tokio::time::timeout(limits::HANDSHAKE_TIMEOUT, connecting).await {
            Err(_) => return Err(NetError::HandshakeTimeout(limits::HANDSHAKE_TIMEOUT)),
            Ok(Err(err)) => return Err(mismatch_or(&probe, expected, err)),
            Ok(Ok(conn)) => conn,
        };
        let presented = tls::peer_key(&conn)?;
        if presented != expected {
            // The verifier already refuses this; checked again so a verifier bug cannot leak a
            // connection to the wrong peer.
            close(&conn, CloseCode::Normal);
            return Err(NetError::PeerKeyMismatch(Box::new(KeyMismatch {
                expected,
                presented,
            })));
        }
        Ok((conn, presented))
    }

    /// The next incoming connection attempt; `None` once the endpoint is closed.
    ///
    /// Finish it with [`accept`] in its own task so that a slow handshake never blocks the loop.
    pub async fn incoming(&self) -> Option<quinn::Incoming> {
        self.endpoint.accept().await
    }

    /// Closes every connection with `code` and stops accepting.
    pub fn close(&self, code: CloseCode) {
        self.endpoint.close(code.varint(), code.reason().as_bytes());
    }
}

fn mismatch_or(probe: &KeyProbe, expected: VerifyingKey, err: quinn::ConnectionError) -> NetError {
    match probe.take_mismatch() {
        Some(presented) => NetError::PeerKeyMismatch(Box::new(KeyMismatch {
            expected,
            presented,
        })),
        None => NetError::Handshake(err),
    }
}

/// Completes an incoming connection; returns it with the key the client proved.
pub async fn accept(incoming: quinn::Incoming) -> Result<(Connection, VerifyingKey), NetError> {
    accept_within(incoming, limits::HANDSHAKE_TIMEOUT).await
}

/// Completes an incoming connection within `deadline` (a dropped handshake is closed by quinn);
/// returns it with the key the client proved.
pub async fn accept_within(
    incoming: quinn::Incoming,
    deadline: Duration,
) -> Result<(Connection, VerifyingKey), NetError> {
    let conn = match tokio::time::timeout(deadline, incoming).await {
        Err(_) => return Err(NetError::HandshakeTimeout(deadline)),
        Ok(result) => result.map_err(NetError::Handshake)?,
    };
    let key = tls::peer_key(&conn)?;
    Ok((conn, key))
}

/// Asks for [`limits::UDP_SOCKET_BUFFER_BYTES`] of socket buffer each way, so that a burst (a
/// switchboard relaying tens of thousands of packets a second, a scheduling hiccup) is queued
/// rather than dropped. The kernel caps the request at `net.core.{r,w}mem_max`; a refusal only
/// leaves the default, so it is logged, not fatal.
fn enlarge_buffers(socket: &std::net::UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    let asked = limits::UDP_SOCKET_BUFFER_BYTES;
    if let Err(e) = socket
        .set_recv_buffer_size(asked)
        .and_then(|()| socket.set_send_buffer_size(asked))
    {
        tracing::debug!(error = %e, "could not enlarge the UDP socket buffers");
    }
}
