//! A raw switchboard client: key-bound QUIC with the relay link's transport, hello, join. The
//! simulated peers, the ghost check and `kith bench relay` all dial switchboards this way.
//!
//! Why apart from the daemon's `uplink::link`: that actor carries a whole node (store, rolodex,
//! events); a simulated peer needs only the connection and its control stream, and thousands of
//! them share a few UDP endpoints, each dial carrying its own identity in its client config.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ed25519_dalek::{SigningKey, VerifyingKey};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

use crate::identity::FeedId;
use crate::limits::{
    FRAME_BYTES_MAX, HANDSHAKE_TIMEOUT, SB_FRAME_BYTES_MAX, UDP_SOCKET_BUFFER_BYTES,
};
use crate::loadtest::lane::{quinn_runtime, Lane};
use crate::loadtest::LoadtestError;
use crate::net::frame;
use crate::net::hello::{dial_hello_pipelined, Capabilities, Capability, Hello, NodeRole};
use crate::net::pin::pin;
use crate::net::target::Target;
use crate::net::tls::{peer_key, server_name};
use crate::net::{stream, PeerEndpoint};
use crate::relay::config::{outer_client_config, uplink_client_config};
use crate::wire::switchboard::{ClientMsg, ServerMsg};

/// One of the UDP endpoints the simulated peers share: a [`PeerEndpoint`] on a socket bound to
/// `addr` that sends one datagram per transmit ([`OneDatagram`]).
///
/// Why not [`PeerEndpoint::bind`]: with segmentation offload (GSO) a quinn connection builds up
/// to ten datagrams into its own transmit buffer and keeps that buffer's capacity for its life
/// (about 2.6-5 KB once a handshake flight or a burst of relayed datagrams grew it). A daemon
/// pays that once per connection it holds, a few; the harness pays it for each of thousands of
/// simulated peers, which is more than any other single part of a peer's outer connection
/// after quinn's own state. A simulated peer's sends are single keep-alives, control frames and
/// relayed datagrams, so batching them saves it little; without it each connection's buffer
/// stays one datagram. The protocol, and what the switchboard receives, are the same.
///
/// Nor does it receive with generic receive offload (GRO) where the socket lets it be turned
/// off: quinn sizes an endpoint's receive buffer for 32 batches of as many datagrams as one GRO
/// receive may coalesce (64 on Linux: about 3 MB), and the pages a batch writes stay resident.
/// Peers that each receive a datagram now and then gain nothing from coalescing; the harness's
/// endpoints then hold one datagram per batch slot (46 KB each).
///
/// On `lane` the endpoint, its connections and their timers are driven by the lane's runtime
/// (see [`crate::loadtest::lane`]); without one, by the caller's.
pub fn shared_endpoint(
    addr: SocketAddr,
    key: &SigningKey,
    lane: Option<&Lane>,
) -> Result<PeerEndpoint, LoadtestError> {
    let socket = std::net::UdpSocket::bind(addr)?;
    // As `PeerEndpoint::bind` does: a burst is queued by the kernel rather than dropped (a
    // refusal leaves the default, which only makes drops likelier).
    let sock = socket2::SockRef::from(&socket);
    if let Err(e) = sock
        .set_recv_buffer_size(UDP_SOCKET_BUFFER_BYTES)
        .and_then(|()| sock.set_send_buffer_size(UDP_SOCKET_BUFFER_BYTES))
    {
        tracing::debug!(error = %e, "could not enlarge a shared endpoint's UDP buffers");
    }
    let runtime = quinn_runtime(lane);
    // quinn-udp turns GRO on as it wraps the socket; it is turned off after, on a duplicate of
    // the descriptor (the option belongs to the socket both share).
    let same_socket = socket.try_clone()?;
    let inner = runtime.wrap_udp_socket(socket)?;
    let receive_segments = match gro_off(&same_socket) {
        Ok(()) => 1,
        Err(e) => {
            tracing::debug!(error = %e, "GRO stays on for a shared endpoint");
            inner.max_receive_segments()
        }
    };
    let socket = OneDatagram {
        inner,
        receive_segments,
    };
    Ok(PeerEndpoint::with_socket_on(
        Arc::new(socket),
        key,
        runtime,
    )?)
}

/// Turn UDP generic receive offload off on `socket`: the kernel then hands it one datagram per
/// receive, whatever it coalesced on the way.
fn gro_off(socket: &std::net::UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let off: libc::c_int = 0;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the descriptor is open for the call (`socket` is borrowed), and the option value
    // points at a live c_int whose size is passed as its length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            std::ptr::from_ref(&off).cast::<libc::c_void>(),
            len,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// A UDP socket that tells quinn it sends one datagram per transmit (no GSO), and receives as
/// many per receive as `receive_segments` (1 once GRO is off); everything else is the wrapped
/// socket's. See [`shared_endpoint`].
pub struct OneDatagram {
    inner: Arc<dyn AsyncUdpSocket>,
    receive_segments: usize,
}

impl fmt::Debug for OneDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneDatagram")
            .field("inner", &self.inner)
            .field("receive_segments", &self.receive_segments)
            .finish()
    }
}

impl AsyncUdpSocket for OneDatagram {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Arc::clone(&self.inner).create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        1
    }

    fn max_receive_segments(&self) -> usize {
        self.receive_segments
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Where a switchboard listens and the key it must prove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SbTarget {
    /// Its UDP address.
    pub addr: SocketAddr,
    /// Its key.
    pub key: VerifyingKey,
}

impl SbTarget {
    /// Its id.
    pub fn id(&self) -> FeedId {
        FeedId::from(self.key)
    }

    /// `@ID@HOST:PORT`, the pinned text form (what `--join` and `--switchboard` take).
    pub fn to_text(&self) -> String {
        format!("{}@{}", self.id(), self.addr)
    }

    /// Resolve `[@ID@]HOST:PORT`; without an id the key is learned by a probe from `endpoint`
    /// (trust on first use, [`pin`]).
    pub async fn resolve(text: &str, endpoint: &PeerEndpoint) -> Result<SbTarget, LoadtestError> {
        let target = Target::parse(text).map_err(|_| LoadtestError::Target(text.to_string()))?;
        let addr = tokio::net::lookup_host(target.host.as_str())
            .await?
            .next()
            .ok_or_else(|| LoadtestError::Target(text.to_string()))?;
        let pinned = match target.id {
            Some(id) => Some(
                id.verifying_key()
                    .map_err(|_| LoadtestError::Target(text.to_string()))?,
            ),
            None => None,
        };
        // Trust on first use, as a daemon does (`net::pin`).
        let key = pin(endpoint, addr, pinned).await?.key;
        Ok(SbTarget { addr, key })
    }
}

/// A joined client: the outer connection and its control stream.
pub struct Joined {
    /// The outer connection (its datagrams carry relayed inner packets).
    pub conn: quinn::Connection,
    /// The control stream, client → switchboard.
    pub send: quinn::SendStream,
    /// The control stream, switchboard → client.
    pub recv: quinn::RecvStream,
    /// The address the switchboard sees this client at.
    pub observed: SocketAddr,
}

/// Which client transport a dial uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The relay link's transport with the connection defaults (15 s idle timeout, keep-alives
    /// every 5 s): what `kith bench relay` measures.
    Outer,
    /// What a daemon's switchboard link uses ([`uplink_client_config`]: keep-alives every
    /// 1.5 s, 5 s idle timeout), so a dead node is noticed within seconds. Simulated peers dial
    /// this way: their failover and their keep-alive load are a daemon's.
    Daemon,
}

/// The QUIC handshake to `sb` as `key`, from the shared `endpoint`, with the relay link's
/// transport; the switchboard must prove `sb.key`.
pub async fn dial(
    endpoint: &PeerEndpoint,
    key: &SigningKey,
    sb: SbTarget,
) -> Result<quinn::Connection, LoadtestError> {
    dial_as(endpoint, key, sb, Link::Outer).await
}

/// [`dial`] with the transport of `link`.
pub async fn dial_as(
    endpoint: &PeerEndpoint,
    key: &SigningKey,
    sb: SbTarget,
    link: Link,
) -> Result<quinn::Connection, LoadtestError> {
    let config = match link {
        Link::Outer => outer_client_config(key, sb.key)?,
        Link::Daemon => uplink_client_config(key, sb.key)?,
    };
    let connecting = endpoint
        .quinn()
        .connect_with(config, sb.addr, &server_name(&sb.key))?;
    let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
        .await
        .map_err(|_| LoadtestError::Timeout("the QUIC handshake"))??;
    if peer_key(&conn)? != sb.key {
        return Err(LoadtestError::Protocol(
            "the switchboard proved another key",
        ));
    }
    Ok(conn)
}

/// Dial, hello and join: the whole admission of one client.
pub async fn join(
    endpoint: &PeerEndpoint,
    key: &SigningKey,
    sb: SbTarget,
) -> Result<Joined, LoadtestError> {
    join_as(endpoint, key, sb, Link::Outer).await
}

/// [`join`] with the transport of `link`.
pub async fn join_as(
    endpoint: &PeerEndpoint,
    key: &SigningKey,
    sb: SbTarget,
    link: Link,
) -> Result<Joined, LoadtestError> {
    let conn = dial_as(endpoint, key, sb, link).await?;
    let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Presence]));
    // The join rides behind the hello (one round trip for both; a refused hello refuses it).
    let mut join = frame::encode(&ClientMsg::Join { invite: None }, FRAME_BYTES_MAX)?;
    // Simulated peers show their presence to every watcher (a daemon's default shows it only to
    // those it follows): the load is the same, and any watcher may time it.
    join.extend(frame::encode(
        &ClientMsg::VisibleTo { ids: None },
        FRAME_BYTES_MAX,
    )?);
    let greeted = dial_hello_pipelined(&conn, &ours, &join);
    let mut greeted = tokio::time::timeout(HANDSHAKE_TIMEOUT, greeted)
        .await
        .map_err(|_| LoadtestError::Timeout("the hello"))??;
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, read(&mut greeted.recv))
        .await
        .map_err(|_| LoadtestError::Timeout("the join"))??;
    match answer {
        ServerMsg::Welcome { observed } => Ok(Joined {
            conn,
            send: greeted.send,
            recv: greeted.recv,
            observed,
        }),
        ServerMsg::Refused { reason } | ServerMsg::JoinRefused { reason, .. } => {
            Err(LoadtestError::Refused(reason))
        }
        _ => Err(LoadtestError::Protocol(
            "the join was not answered with a welcome",
        )),
    }
}

/// The next message from the switchboard; an error when the stream ended.
pub async fn read(recv: &mut quinn::RecvStream) -> Result<ServerMsg, LoadtestError> {
    stream::read_frame::<ServerMsg>(recv, SB_FRAME_BYTES_MAX)
        .await?
        .ok_or(LoadtestError::Protocol("the switchboard closed the stream"))
}

/// Send one message to the switchboard.
pub async fn write(send: &mut quinn::SendStream, msg: &ClientMsg) -> Result<(), LoadtestError> {
    Ok(stream::write_frame(send, msg).await?)
}

/// The cause of a failed admission, for the report's `connect_failures` (a short stable name).
pub fn cause(error: &LoadtestError) -> &'static str {
    match error {
        LoadtestError::Timeout(_) => "timeout",
        LoadtestError::Refused(_) => "refused",
        LoadtestError::Connect(_) => "dial",
        LoadtestError::Net(_) => "tls",
        LoadtestError::Connection(e) => connection_cause(e),
        LoadtestError::Hello(_) => "hello",
        LoadtestError::Frame(_) | LoadtestError::Protocol(_) => "protocol",
        _ => "other",
    }
}

/// The cause of a refused introduction, for the report's `intro_refused` (a short stable name).
/// The switchboard sends its reason as text (`ServerMsg::IntroRefused`); this names the
/// switchboard's refusal kinds by the words of their messages, and anything else `other`.
pub fn intro_cause(reason: &str) -> &'static str {
    const CAUSES: [(&str, &str); 10] = [
        ("too many introductions asked", "over_rate"),
        (
            "not known on the callee's switchboard node",
            "caller_not_known_there",
        ),
        ("your own id", "self"),
        (
            "not connected to this switchboard cluster",
            "not_in_cluster",
        ),
        ("not connected to this switchboard", "not_connected"),
        ("cannot be reached", "node_unreachable"),
        ("too many introductions pending", "too_many_pending"),
        ("refused the introduction", "declined"),
        ("does not accept introductions", "declined"),
        ("cannot relay between you", "cannot_relay"),
    ];
    CAUSES
        .iter()
        .find(|(words, _)| reason.contains(words))
        .map_or("other", |(_, cause)| cause)
}

fn connection_cause(e: &quinn::ConnectionError) -> &'static str {
    match e {
        quinn::ConnectionError::TimedOut => "timeout",
        quinn::ConnectionError::ConnectionClosed(_)
        | quinn::ConnectionError::ApplicationClosed(_) => "closed",
        quinn::ConnectionError::Reset => "reset",
        _ => "handshake",
    }
}

#[cfg(test)]
mod tests {
    use super::{gro_off, intro_cause, shared_endpoint};

    /// The socket's UDP_GRO option, as the kernel reports it.
    fn gro(socket: &std::net::UdpSocket) -> libc::c_int {
        use std::os::fd::AsRawFd;
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the descriptor is open (borrowed), and value and len point at live locals of
        // the sizes passed.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_GRO,
                std::ptr::from_mut(&mut value).cast::<libc::c_void>(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        value
    }

    /// quinn-udp turns GRO on as it wraps a socket; the shared endpoints turn it off after, on
    /// the socket itself (a duplicate descriptor shares it), and build on such a socket.
    #[tokio::test]
    async fn shared_endpoints_receive_without_gro() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let same = socket.try_clone().unwrap();
        let _wrapped = quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket).unwrap();
        assert_eq!(gro(&same), 1, "quinn-udp turned GRO on");
        gro_off(&same).unwrap();
        assert_eq!(gro(&same), 0, "and it is off now");
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let endpoint = shared_endpoint("127.0.0.1:0".parse().unwrap(), &key, None).unwrap();
        assert!(endpoint.local_addr().unwrap().ip().is_loopback());
    }

    #[test]
    fn refusals_are_named_by_their_words() {
        let id = "@abc=.ed25519";
        assert_eq!(
            intro_cause(&format!("{id} is not connected to this switchboard")),
            "not_connected"
        );
        assert_eq!(
            intro_cause(&format!(
                "{id} is not connected to this switchboard cluster"
            )),
            "not_in_cluster"
        );
        assert_eq!(
            intro_cause("too many introductions asked: at most 20 a second; try again later"),
            "over_rate"
        );
        assert_eq!(
            intro_cause(&format!(
                "{id} refused the introduction: they do not follow you"
            )),
            "declined"
        );
        assert_eq!(intro_cause("something new"), "other");
    }
}
