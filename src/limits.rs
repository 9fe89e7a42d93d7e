//! Every bound in kith, named in one place.
//!
//! Frames, queues, tables, retries and backoff all take their limits from here, so that a
//! reviewer can see at a glance what the node will hold on to, and so that related limits can be
//! checked against each other at compile time.

// --- network ---

/// Largest body of one wire frame, in bytes (the u32 length prefix excluded).
///
/// The length prefix is checked against this before a single byte of the body is buffered, so a
/// peer can make us hold at most this much per stream being read. 1 MiB fits any feed entry with
/// its payload; bulk data (blobs) is streamed in many frames.
pub const FRAME_BYTES_MAX: u32 = 1024 * 1024;

/// Largest hello or goodbye frame body, in bytes.
///
/// The hello is the first thing an unauthenticated-at-the-application-level peer sends, so it
/// gets a much smaller bound than ordinary frames.
pub const HELLO_FRAME_BYTES_MAX: u32 = 1024;

/// How long a connection may stay silent before QUIC drops it.
///
/// Keep-alives (below) keep a healthy but quiet connection well inside this.
pub const CONNECTION_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Interval between QUIC keep-alive pings on an otherwise idle connection.
///
/// Short enough to hold NAT bindings open (many home NATs expire UDP mappings after 30 s) and to
/// fit at least two pings in one idle timeout.
pub const KEEP_ALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest a dial or an accept may take to finish the QUIC + TLS handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest the hello exchange may take once the connection is up.
pub const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Bidirectional streams a peer may have open at once on one connection.
///
/// One stream per request or replication session; 64 covers a daemon replicating many feeds
/// concurrently while capping the per-connection stream state a peer can make us hold.
pub const STREAMS_BIDI_MAX: u32 = 64;

/// Unidirectional streams a peer may have open at once on one connection.
pub const STREAMS_UNI_MAX: u32 = 16;

/// Per-stream flow-control window, in bytes: unread data a peer may send on one stream.
///
/// Credit, not a preallocated buffer: an idle connection holds none of it. 1 MiB sustains about
/// 1 GB/s at 1 ms RTT and 20 MB/s at 50 ms on one stream.
pub const STREAM_RECEIVE_WINDOW_BYTES: u32 = 1024 * 1024;

/// Per-connection flow-control window, in bytes: unread data a peer may send across all streams.
///
/// This is the worst case a single (misbehaving) peer can make us buffer.
pub const CONNECTION_RECEIVE_WINDOW_BYTES: u32 = 4 * 1024 * 1024;

/// Unacknowledged bytes we keep in flight towards one peer across all streams.
pub const CONNECTION_SEND_WINDOW_BYTES: u64 = 4 * 1024 * 1024;

/// Incoming QUIC datagrams buffered per connection before the oldest are dropped, in bytes.
///
/// Datagrams carry presence heartbeats and relayed packets; the relay reads them promptly.
pub const DATAGRAM_RECEIVE_BUFFER_BYTES: usize = 256 * 1024;

/// Outgoing QUIC datagrams buffered per connection before the oldest are dropped, in bytes.
pub const DATAGRAM_SEND_BUFFER_BYTES: usize = 256 * 1024;

/// Incoming connection attempts an endpoint holds at once before refusing new ones.
pub const INCOMING_HANDSHAKES_MAX: usize = 4096;

const _: () = assert!(HELLO_FRAME_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(KEEP_ALIVE_INTERVAL.as_millis() * 2 <= CONNECTION_IDLE_TIMEOUT.as_millis());
const _: () = assert!(STREAM_RECEIVE_WINDOW_BYTES <= CONNECTION_RECEIVE_WINDOW_BYTES);
const _: () = assert!(HELLO_TIMEOUT.as_millis() <= CONNECTION_IDLE_TIMEOUT.as_millis());

/// After refusing a peer in the hello, how long we wait for it to read our goodbye and close
/// before we close ourselves (closing at once could discard the goodbye in flight).
pub const GOODBYE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);
