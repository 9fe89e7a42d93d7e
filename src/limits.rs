//! Every bound in kith, named in one place.
//!
//! Frames, queues, tables, retries and backoff all take their limits from here, so that a
//! reviewer can see at a glance what the node will hold on to, and so that related limits can be
//! checked against each other at compile time.

use std::time::Duration;

// --- feeds ---

/// Largest payload an entry may reference. SSB caps messages at 8 KiB of JSON; kith's payloads
/// are compact postcard, so 8 KiB of text is generous and bounds what a peer can make us hold.
pub const PAYLOAD_BYTES_MAX: usize = 8 * 1024;
/// Largest encoded header. A header holds two hashes, a key and a few integers: ~150 bytes.
pub const HEADER_BYTES_MAX: usize = 256;
/// Largest post text, in bytes, leaving room in the payload for the reply-to id and framing.
pub const POST_TEXT_BYTES_MAX: usize = PAYLOAD_BYTES_MAX - 128;
/// Largest petname / about name, in bytes.
pub const NAME_BYTES_MAX: usize = 128;
/// Largest about description, in bytes.
pub const DESCRIPTION_BYTES_MAX: usize = 2 * 1024;
/// How far in the future an entry's timestamp may be before it is refused (clock skew).
pub const TIMESTAMP_SKEW_MAX: Duration = Duration::from_secs(10 * 60);
/// Earliest acceptable timestamp (2020-01-01T00:00:00Z, in ms): older is a broken clock or a forgery.
pub const TIMESTAMP_MIN_MS: u64 = 1_577_836_800_000;

const _: () = assert!(POST_TEXT_BYTES_MAX < PAYLOAD_BYTES_MAX);
const _: () = assert!(DESCRIPTION_BYTES_MAX < PAYLOAD_BYTES_MAX);

// --- store and ingest ---

/// LMDB map size: a virtual reservation, not an allocation. 64 GiB leaves room for years of feeds.
pub const STORE_MAP_BYTES: usize = 64 * 1024 * 1024 * 1024;
/// LMDB reader slots: concurrent read transactions across the daemon's threads.
pub const STORE_READERS_MAX: u32 = 256;
/// Most entries written in one LMDB commit. Group commit amortises the fsync and the pages a
/// commit rewrites: the message-id index is keyed by hash, so a batch dirties pages all over it
/// and a larger batch shares each page among more entries (8192 rather than 4096, which cut a
/// replicated frame of ~2,700 entries into batches of one frame, took `kith bench ingest`'s
/// bytes written per entry from ~2,450 to ~2,100); the cap keeps one transaction (and the
/// latency of the replies waiting on it) bounded.
pub const INGEST_BATCH_MAX: usize = 8192;
/// Most entries waiting in the ingest queue before producers are told to back off (16,384, as
/// before the batch grew: at most 128 MiB of payloads at [`PAYLOAD_BYTES_MAX`]).
pub const INGEST_QUEUE_MAX: usize = 2 * INGEST_BATCH_MAX;
/// Most entries verified in one ed25519 batch call (the batch rate plateaus past ~512).
pub const VERIFY_CHUNK_MAX: usize = 512;
/// Largest `--limit` a feed or timeline query may ask for.
pub const QUERY_LIMIT_MAX: usize = 10_000;
/// Default number of rows a feed or timeline query returns.
pub const QUERY_LIMIT_DEFAULT: usize = 50;

const _: () = assert!(INGEST_QUEUE_MAX >= INGEST_BATCH_MAX);
/// Parts of batches (of up to [`VERIFY_CHUNK_MAX`] ops each) waiting for the store writer's
/// verifier threads: three batches' worth (one committing, one queued for the committer, one
/// being handed over), the most the pipeline holds at once.
pub const VERIFY_PARTS_QUEUED_MAX: usize = 3 * INGEST_BATCH_MAX.div_ceil(VERIFY_CHUNK_MAX);

// --- rolodex ---

/// Most rolodex entries kept; beyond it `follow` of a new id is refused.
pub const ROLODEX_ENTRIES_MAX: usize = 1_000_000;
/// Most address hints remembered per rolodex entry.
pub const ADDRESS_HINTS_MAX: usize = 8;

// --- control socket ---

/// Largest request or response line on the control socket.
pub const CONTROL_LINE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most client connections served at once on the control socket.
pub const CONTROL_CONNECTIONS_MAX: usize = 64;
/// How long a client command waits for the daemon's answer.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
// --- supervision ---

/// How long a worker child gets to stop gracefully before it is killed (OTP's default 5000 ms).
pub const SUPERVISOR_WORKER_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a child supervisor gets to stop its own subtree before it is killed. OTP uses
/// `infinity`; we bound it so a wedged subtree cannot hold a node's shutdown forever. It must
/// exceed a worker's deadline so a nested supervisor can finish stopping at least one worker.
pub const SUPERVISOR_CHILD_SUPERVISOR_SHUTDOWN: std::time::Duration =
    std::time::Duration::from_secs(60);

/// After a kill, how long to wait for the child to finish. A kill lands at the child's next
/// `.await`; a child blocking its thread without awaiting cannot be stopped, and the supervisor
/// moves on after this long rather than hang.
pub const SUPERVISOR_KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Default restart intensity: restarts allowed within [`SUPERVISOR_DEFAULT_PERIOD`] (OTP: 1).
pub const SUPERVISOR_DEFAULT_MAX_RESTARTS: u32 = 1;

/// Default restart intensity window (OTP: 5 s).
pub const SUPERVISOR_DEFAULT_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// Default cap on a dynamic supervisor's children (e.g. one connection actor per peer).
pub const DYNAMIC_SUPERVISOR_MAX_CHILDREN: usize = 10_000;

/// Bound on one call to a supervisor (start_child, terminate_child, count, one level of a
/// report). It covers a child's `pre_start` and, for terminate_child, the child's shutdown
/// deadline, so it exceeds [`SUPERVISOR_WORKER_SHUTDOWN`] plus [`SUPERVISOR_KILL_WAIT`].
pub const SUPERVISOR_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

const _: () = assert!(
    SUPERVISOR_CHILD_SUPERVISOR_SHUTDOWN.as_millis() > SUPERVISOR_WORKER_SHUTDOWN.as_millis()
);
const _: () = assert!(
    SUPERVISOR_CALL_TIMEOUT.as_millis()
        > SUPERVISOR_WORKER_SHUTDOWN.as_millis() + SUPERVISOR_KILL_WAIT.as_millis()
);

// --- replication ---

/// Most entries in one `Entries` frame. With 8 KiB payloads the frame bound cuts in first; for
/// typical posts this is what bounds one ingest submission per frame.
pub const REPLICATION_BATCH_MAX: usize = 1_000;
/// Most notes in one clock message: the most feeds one node may want.
pub const CLOCK_NOTES_MAX: usize = 100_000;
/// How often a peer may ask for the full clock in one session before it is cut off.
pub const RESEND_FULL_MAX: u32 = 3;

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
/// Keep-alives (below) keep a healthy but quiet connection well inside this. It is also how long
/// a peer that vanished without a word (killed, unplugged) still looks online to a switchboard,
/// so it is kept short: three keep-alive intervals.
pub const CONNECTION_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Interval between QUIC keep-alive pings on an otherwise idle connection.
///
/// Short enough to hold NAT bindings open (many home NATs expire UDP mappings after 30 s) and to
/// fit at least two pings in one idle timeout.
pub const KEEP_ALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

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

/// UDP socket buffer asked for each way (the kernel caps it at `net.core.rmem_max`/`wmem_max`):
/// about 3,000 full-size packets, 50 ms of a switchboard relaying 60,000 packets a second.
pub const UDP_SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Incoming connection attempts an endpoint holds at once before refusing new ones.
pub const INCOMING_HANDSHAKES_MAX: usize = 4096;

const _: () = assert!(HELLO_FRAME_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(KEEP_ALIVE_INTERVAL.as_millis() * 2 <= CONNECTION_IDLE_TIMEOUT.as_millis());
const _: () = assert!(STREAM_RECEIVE_WINDOW_BYTES <= CONNECTION_RECEIVE_WINDOW_BYTES);
const _: () = assert!(HELLO_TIMEOUT.as_millis() <= CONNECTION_IDLE_TIMEOUT.as_millis());

/// After refusing a peer in the hello, how long we wait for it to read our goodbye and close
/// before we close ourselves (closing at once could discard the goodbye in flight).
pub const GOODBYE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Capacity of the node event broadcast (appended entries, wants changes, connections).
pub const EVENTS_CAPACITY: usize = 4_096;
/// Largest `Entries` frame body the server side builds, under [`FRAME_BYTES_MAX`].
pub const ENTRIES_FRAME_BYTES: usize = 768 * 1024;
/// Most peer connections at once.
pub const PEERS_MAX: usize = 1_024;
/// Handshakes in progress at once on the listener.
pub const HANDSHAKES_MAX: usize = 64;
/// First redial delay after a failed dial or a lost connection.
pub const REDIAL_BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest redial delay.
pub const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Redial delays are spread by up to this fraction either way, so that peers do not redial in step.
pub const REDIAL_JITTER: f64 = 0.25;
/// First delay after a switchboard refused a join for a reason that may pass (busy, full); it
/// doubles on each refusal.
pub const REFUSED_BACKOFF_MIN: Duration = Duration::from_secs(10);
/// Longest delay between joins a switchboard keeps refusing.
pub const REFUSED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// First retry of the direct path while a connection this node dialled rides a relay (the NATs
/// or the network between the two may have changed); doubled after each failed try.
pub const REPUNCH_BACKOFF_MIN: Duration = Duration::from_secs(10);
/// Longest wait between two tries of the direct path.
pub const REPUNCH_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Most rolodex entry actors (active entries) at once.
pub const ACTIVE_ENTRIES_MAX: usize = 10_000;

const _: () = assert!(ENTRIES_FRAME_BYTES < FRAME_BYTES_MAX as usize);
const _: () = assert!(REDIAL_BACKOFF_MIN.as_millis() < REDIAL_BACKOFF_MAX.as_millis());
const _: () = assert!(REPUNCH_BACKOFF_MIN.as_millis() < REPUNCH_BACKOFF_MAX.as_millis());
/// Most feeds followed at once (one feed replicator each, plus the own feed).
pub const ROLODEX_FOLLOWS_MAX: usize = 10_000;

// --- presence ---

/// Most shards a presence tracker may run (Phoenix's `pool_size`).
pub const MAX_PRESENCE_SHARDS: u16 = 1_024;
/// Most rungs in a delta-generation ladder.
pub const MAX_DELTA_GENERATIONS: usize = 8;
/// Largest delta-generation cap (values plus covered dots).
pub const MAX_DELTA_GENERATION_SIZE: usize = 1_000_000;
/// Largest encoded presence frame (a full state of ~100k presences fits comfortably).
pub const MAX_PRESENCE_FRAME_BYTES: usize = 64 * 1024 * 1024;
/// Most clocks a shard keeps between two pull decisions (at most one per peer is useful).
pub const MAX_PENDING_CLOCKS: usize = 1_024;
/// Most actions a shard buffers before its driver drains them.
pub const MAX_SHARD_ACTIONS: usize = 65_536;
/// Capacity of a tracker's diff broadcast channel; slower subscribers lag and are told so.
pub const PRESENCE_DIFF_CHANNEL: usize = 4_096;
/// Most frames the in-memory test transport holds in flight per node before dropping.
pub const MEMORY_TRANSPORT_INFLIGHT: usize = 100_000;
/// Most replica names (tombstones included) a shard tracks.
pub const MAX_PRESENCE_REPLICAS: usize = 4_096;
/// Largest presence frame between cluster nodes: a full-state transfer of ~100k presences is a
/// few MiB, so this leaves room for a large cluster while bounding what a node buffers.
pub const PRESENCE_FRAME_BYTES_MAX: u32 = 32 * 1024 * 1024;
/// Presence frames queued per cluster link before new ones are refused (gossip repairs loss).
pub const PRESENCE_LINK_QUEUE: usize = 1_024;
/// Messages (clocks) waiting to be sent to one peer before the connection is given up on; ranges
/// to serve are merged per feed and so need no bound beyond the number of feeds.
pub const OUTBOX_MESSAGES_MAX: usize = 64;
/// `Entries` frames of one connection handed to ingest and not yet durable; the next frame is
/// not read past this (backpressure to QUIC flow control). Several in flight let the store
/// writer verify one batch while it commits another.
pub const INGEST_FRAMES_IN_FLIGHT: usize = 4;

// --- switchboard ---

/// Longest status line a peer may set (`kith presence set`).
pub const STATUS_BYTES_MAX: usize = 140;
/// Most ids one peer may watch on a switchboard (its follows).
pub const WATCH_IDS_MAX: usize = 10_000;
/// Bidirectional streams a peer may open on a switchboard link (the hello stream, and slack).
pub const SB_STREAMS_BIDI_MAX: u32 = 2;
/// Unidirectional streams a peer may open on a switchboard link (presence gossip between
/// cluster nodes, and slack).
pub const SB_STREAMS_UNI_MAX: u32 = 2;
/// Largest control frame between a daemon and a switchboard (a watch list of 10k ids ≈ 330 KiB).
pub const SB_FRAME_BYTES_MAX: u32 = 512 * 1024;
/// Most peers connected to one switchboard node.
pub const SB_CLIENTS_MAX: usize = 100_000;
/// Answers queued for one switchboard client before it is cut off for not reading: room for a
/// notice about every watched id at once, and some. (A bound, not an allocation.)
pub const SB_SEND_QUEUE: usize = WATCH_IDS_MAX + 256;
/// Presence shards of a switchboard's `peers` topic (every node of a cluster must agree).
pub const PEERS_SHARDS: u16 = 1;

// --- relay ---

/// Bytes of the key header in front of every relayed packet: the destination key on the way to
/// the switchboard, the authenticated source key on the way out of it.
pub const RELAY_HEADER_BYTES: usize = 32;
/// Smallest inner packet the relay path must carry: QUIC pads client Initials to 1200 bytes and
/// quinn never lets its MTU drop below that, so an outer link that cannot carry
/// `1200 + RELAY_HEADER_BYTES` in one datagram cannot relay QUIC at all.
pub const RELAY_INNER_PACKET_BYTES_MIN: usize = 1200;
/// Largest inner packet the relay forwards: quinn's default MTU-discovery ceiling (1452 bytes,
/// the UDP payload of a 1500-byte Ethernet path over IPv6 minus headers). Larger inner packets
/// cannot fit in an outer datagram anyway.
pub const RELAY_INNER_PACKET_BYTES_MAX: usize = 1452;
/// Largest relayed frame (key header plus inner packet) the switchboard accepts.
pub const RELAY_FRAME_BYTES_MAX: usize = RELAY_HEADER_BYTES + RELAY_INNER_PACKET_BYTES_MAX;
/// Initial MTU (UDP payload bytes) of an outer connection to a switchboard. quinn's default 1200
/// leaves ~1162 bytes per datagram, too small for a 1200-byte inner Initial plus the key header;
/// 1300 leaves ~1262 (38 bytes of outer overhead measured), and MTU discovery raises it from there.
pub const RELAY_OUTER_INITIAL_MTU: u16 = 1300;
/// Ceiling MTU discovery tries on an outer link: quinn's default, the UDP payload of a 1500-byte
/// Ethernet path over IPv6.
pub const RELAY_OUTER_MTU_CEILING: u16 = 1452;
/// Smallest MTU step discovery bothers with on an outer link. Being more than half the distance
/// from the floor to the ceiling, it turns quinn's binary search into a single probe of the
/// ceiling (kept on success, the floor otherwise). The default step of 20 costs three probes and
/// their acknowledgements each way on every connection, which is half the packets of a
/// switchboard join.
pub const RELAY_OUTER_MTU_STEP: u16 = 100;
/// Inner packets a virtual socket holds between its receive pump and the inner quinn endpoint;
/// past it packets are dropped and counted, like a full `SO_RCVBUF` (inner QUIC recovers them).
pub const RELAY_RECEIVE_QUEUE_PACKETS: usize = 4096;
/// Peers a virtual socket maps fake addresses back to keys for; the least recently used mapping
/// is forgotten past it (a forgotten peer is re-learnt from its next packet).
pub const RELAY_ADDR_BOOK_MAX: usize = 1024;
/// Clients one switchboard's router tracks at once.
pub const RELAY_CLIENTS_MAX: usize = 100_000;
/// Introductions (open pairs) one client may hold at once.
pub const RELAY_PAIRS_PER_CLIENT_MAX: usize = 256;
/// An introduction no frame crossed for this long may be closed to make room for a new one (a
/// live inner QUIC connection sends a keep-alive every [`KEEP_ALIVE_INTERVAL`], and gives up
/// after [`CONNECTION_IDLE_TIMEOUT`]).
pub const RELAY_PAIR_IDLE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(30);
/// Sustained packets per second one client may push through the relay, unless the operator sets
/// `kith switchboard --client-packets-per-sec`.
pub const RELAY_CLIENT_PACKETS_PER_SEC: u32 = 20_000;
/// Sustained bytes per second one client may push through the relay (16 MiB/s), unless the
/// operator sets `kith switchboard --client-bytes-per-sec`.
pub const RELAY_CLIENT_BYTES_PER_SEC: u64 = 16 * 1024 * 1024;
/// A client's burst above its sustained rates (its bucket's depth), as milliseconds at those
/// rates: 2,500 packets and 2 MiB at the defaults.
pub const RELAY_CLIENT_BURST_MS: u64 = 125;
/// Lowest per-client rates an operator may set: at these a burst still holds a full frame.
pub const RELAY_CLIENT_PACKETS_PER_SEC_MIN: u32 = 100;
/// See [`RELAY_CLIENT_PACKETS_PER_SEC_MIN`].
pub const RELAY_CLIENT_BYTES_PER_SEC_MIN: u64 = 64 * 1024;
/// Bytes of relayed frames queued towards one client (its outer connection's datagram send
/// buffer on the switchboard, about 512 full-size frames) before the router refuses more for it:
/// a router's tail drop, counted, and inner QUIC congestion control backs off.
pub const RELAY_CLIENT_QUEUE_BYTES: usize = 512 * RELAY_FRAME_BYTES_MAX;

const _: () = assert!(RELAY_INNER_PACKET_BYTES_MIN <= RELAY_INNER_PACKET_BYTES_MAX);
const _: () = assert!(2 * RELAY_OUTER_MTU_STEP > RELAY_OUTER_MTU_CEILING - RELAY_OUTER_INITIAL_MTU);
const _: () = assert!(RELAY_OUTER_MTU_STEP <= RELAY_OUTER_MTU_CEILING - RELAY_OUTER_INITIAL_MTU);
const _: () = assert!(
    RELAY_OUTER_INITIAL_MTU as usize >= RELAY_INNER_PACKET_BYTES_MIN + RELAY_HEADER_BYTES + 38
);
const _: () =
    assert!(RELAY_PAIR_IDLE_EXPIRY.as_millis() >= 2 * CONNECTION_IDLE_TIMEOUT.as_millis());
const _: () = assert!(RELAY_CLIENT_BURST_MS <= 1_000);
const _: () = assert!(RELAY_CLIENT_PACKETS_PER_SEC_MIN as u64 * RELAY_CLIENT_BURST_MS >= 1_000);
const _: () = assert!(
    RELAY_CLIENT_BYTES_PER_SEC_MIN * RELAY_CLIENT_BURST_MS / 1_000 >= RELAY_FRAME_BYTES_MAX as u64
);
const _: () = assert!(RELAY_CLIENT_PACKETS_PER_SEC >= RELAY_CLIENT_PACKETS_PER_SEC_MIN);
const _: () = assert!(RELAY_CLIENT_BYTES_PER_SEC >= RELAY_CLIENT_BYTES_PER_SEC_MIN);
/// Messages and relayed frames queued towards one cluster node before more are refused (relayed
/// frames are counted as `queue_full`, like a full client queue).
pub const NODE_QUEUE_MAX: usize = 4096;
/// Bytes a cluster link's writer puts in one batch (one stream write) at most.
pub const NODE_BATCH_BYTES_MAX: usize = 256 * 1024;
/// Introductions asked of one peer and not yet answered.
pub const INTRODUCTIONS_PENDING_MAX: usize = 64;
/// Introductions one client may ask for per second (sustained); each one asks the callee's
/// daemon, which may dial back, so a client cannot turn the switchboard on someone.
pub const SB_INTRODUCTIONS_PER_SEC: u32 = 20;
/// Introductions one client may ask for at once above that rate (a daemon starting with many
/// follows online asks for many at once).
pub const SB_INTRODUCTIONS_BURST: u32 = 100;
/// How long a dialer waits for a switchboard to answer an introduction request.
pub const INTRODUCTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Invite codes outstanding at once on a switchboard.
pub const INVITES_MAX: usize = 10_000;
/// Members an invite-only switchboard remembers (keys its invite codes admitted).
pub const MEMBERS_MAX: usize = 100_000;
/// Introductions one switchboard node has asked another for and not yet had answered; past
/// it, introductions to that node's clients are refused until answers come back.
pub const NODE_INTRODUCTIONS_PENDING_MAX: usize = 4_096;
/// Node keys a switchboard accepts as members of its cluster (`--join`, `--cluster-key`,
/// `--cluster-keys`): a cluster is a handful of nodes, this bounds the file read at start.
pub const CLUSTER_MEMBERS_MAX: usize = 1_024;
/// How long an invite code is valid unless the operator says otherwise.
pub const INVITE_TTL_DEFAULT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a direct attempt after an introduction may take before the relay is used.
pub const PUNCH_TIMEOUT: Duration = Duration::from_millis(1_500);

// ---- Load-test harness (`kith loadtest`, `src/loadtest/`) ----

/// Simulated peers one harness process runs at most (its dynamic supervisor's maximum too).
pub const LOADTEST_PEERS_MAX: usize = 100_000;
/// Peers started per second at most (`--ramp`).
pub const LOADTEST_RAMP_MAX: u32 = 20_000;
/// Longest steady phase after the ramp (`--duration`, seconds).
pub const LOADTEST_DURATION_MAX_SECS: u64 = 3_600;
/// How long the ramp's peers get to join once the last one started, before the run moves on
/// and counts the rest as not joined.
pub const LOADTEST_JOIN_GRACE: Duration = Duration::from_secs(30);
/// Local switchboard processes `--spawn` starts at most.
pub const LOADTEST_SPAWN_MAX: usize = 8;
/// How long a spawned switchboard gets to answer on its control socket.
pub const LOADTEST_SPAWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Harness processes a population may be split into (`--shard I/N`).
pub const LOADTEST_SHARDS_MAX: u32 = 1_024;
/// UDP sockets (QUIC endpoints) the simulated peers share: QUIC needs no socket per connection.
pub const LOADTEST_ENDPOINTS: usize = 16;
/// UDP sockets the relayed pairs share, on their own lane (`loadtest::lane`): on loopback each
/// has its own source address, so that the pairs, which start first, have as many handshakes
/// in flight as `LOADTEST_HANDSHAKES_IN_FLIGHT` allows without a switchboard's cap per source
/// address refusing some.
pub const LOADTEST_PROBE_ENDPOINTS: usize = 8;
/// Worker threads of the relayed pairs' lane. Two, so that a pair's round trip need not wait
/// while the other thread works through a later pair's handshake (outer or inner): with one,
/// 200 pairs on one switchboard had a whole-run p99 of 94 ms against 48–54 ms with two.
pub const LOADTEST_PROBE_THREADS: usize = 2;
/// Connection attempts of one simulated peer before it gives up (each failure is counted by
/// cause).
pub const LOADTEST_CONNECT_ATTEMPTS: u32 = 5;
/// Wait before a simulated peer's next attempt, times the attempt number.
pub const LOADTEST_RETRY_BASE: Duration = Duration::from_millis(500);
/// Churn events (status changes, leaves and rejoins) per second at most (`--churn`).
pub const LOADTEST_CHURN_MAX: u32 = 10_000;
/// How long a peer that left stays away before it rejoins.
pub const LOADTEST_AWAY: Duration = Duration::from_millis(1_000);
/// Introduced pairs the relay scenario makes at most (`--relay-pairs`).
pub const LOADTEST_RELAY_PAIRS_MAX: usize = 5_000;
/// Each relayed pair makes one inner round trip this often.
pub const LOADTEST_RELAY_INTERVAL: Duration = Duration::from_millis(50);
/// Bytes of one relayed round trip's message (each way).
pub const LOADTEST_RELAY_MESSAGE_BYTES: usize = 256;
/// An inner round trip not back by then is counted lost.
pub const LOADTEST_RELAY_TIMEOUT: Duration = Duration::from_secs(2);
/// Introductions a caller asks for one pair before it gives up (its callee may not be online yet).
pub const LOADTEST_INTRO_ATTEMPTS: u32 = 20;
/// Peers in the replicate scenario's follow graph at most (`--replicate-peers`).
pub const LOADTEST_REPLICATE_PEERS_MAX: usize = 2_000;
/// Feeds one simulated peer follows at most in the follow graph.
pub const LOADTEST_FOLLOWS_MAX: usize = 64;
/// Posts per second at most in the replicate scenario, whole population (`--posts`).
pub const LOADTEST_POSTS_MAX: u32 = 10_000;
/// Entries one simulated peer keeps of one feed (in memory); past it the peer stops posting and
/// its followers stop taking that feed's entries (each counted).
pub const LOADTEST_FEED_ENTRIES_MAX: usize = 100_000;
/// Replication frames read from one inner connection and not yet handled; a full queue stops
/// the reading (backpressure reaches QUIC's flow control).
pub const LOADTEST_REPLICATE_FRAMES_QUEUE: usize = 16;
/// How long a caller waits for the answer to an introduction before it asks again (a request
/// another node drops unanswered would otherwise leave it waiting forever).
pub const LOADTEST_INTRO_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// QUIC handshakes the harness has in flight at most, all peers together. A switchboard holds
/// at most [`HANDSHAKES_MAX`] pending handshakes and refuses past it (and
/// [`HANDSHAKES_PER_ADDRESS_MAX`] per source address): a harness that dialled without a bound
/// would measure those refusals rather than how fast the switchboard admits. Peers wait for a
/// slot; the wait is not part of their `connect_ms`, and a ramp the slots cannot keep up with
/// shows as `handshakes_per_s` below `ramp_per_s`.
pub const LOADTEST_HANDSHAKES_IN_FLIGHT: usize = 48;
/// How long the ghost check waits for the cluster's presence to forget the stopped peers.
pub const LOADTEST_GHOST_SETTLE: Duration = Duration::from_secs(20);
/// Samples of the timeline kept at most (one per second: an hour's run and its ramp).
pub const LOADTEST_TIMELINE_MAX: usize = 7_200;
/// Largest latency a histogram holds (longer ones are clamped to it): one hour, in µs.
pub const LOADTEST_LATENCY_MAX_US: u64 = 3_600_000_000;
/// Report files `kith loadtest merge` reads at most.
pub const LOADTEST_MERGE_FILES_MAX: usize = LOADTEST_SHARDS_MAX as usize;
/// Admissions in flight at most that `--in-flight` may ask for. Past
/// `LOADTEST_ENDPOINTS * HANDSHAKES_PER_ADDRESS_MAX` (128 on loopback) a switchboard refuses the
/// handshakes over its per-address cap, which the run then counts as failures.
pub const LOADTEST_HANDSHAKES_IN_FLIGHT_MAX: usize = 256;
/// Failover scenario: how long the cluster runs with every peer joined before a node is killed.
pub const LOADTEST_FAILOVER_AFTER: Duration = Duration::from_secs(2);
/// Failover scenario: how long the run waits for the killed node's peers to be back online
/// through other nodes, and for the dead node's presence to leave every other node.
pub const LOADTEST_FAILOVER_WAIT: Duration = Duration::from_secs(90);
/// Failover scenario: how often the harness reads each surviving node's presence count.
pub const LOADTEST_FAILOVER_POLL: Duration = Duration::from_millis(100);
/// The presence heartbeat period `--spawn` gives its switchboards unless
/// `--presence-broadcast-ms` says otherwise, in ms. A cluster shows a join on other nodes at
/// the next heartbeat (p99 about one period), and marks a silent node down after 20 periods:
/// 750 ms keeps the first under a second and the second (15 s) past the QUIC idle timeout
/// (`CONNECTION_IDLE_TIMEOUT`) a client needs to notice its node is gone.
pub const LOADTEST_SPAWN_BROADCAST_MS: u64 = 750;

const _: () = assert!(LOADTEST_PEERS_MAX <= SB_CLIENTS_MAX);
const _: () = assert!(LOADTEST_HANDSHAKES_IN_FLIGHT < HANDSHAKES_MAX);
const _: () =
    assert!(LOADTEST_HANDSHAKES_IN_FLIGHT <= LOADTEST_ENDPOINTS * HANDSHAKES_PER_ADDRESS_MAX / 2);
const _: () =
    assert!(LOADTEST_HANDSHAKES_IN_FLIGHT <= LOADTEST_PROBE_ENDPOINTS * HANDSHAKES_PER_ADDRESS_MAX);
const _: () = assert!(LOADTEST_ENDPOINTS + LOADTEST_PROBE_ENDPOINTS < 254);
const _: () = assert!(LOADTEST_RELAY_PAIRS_MAX * 2 <= LOADTEST_PEERS_MAX);
const _: () = assert!(LOADTEST_FOLLOWS_MAX <= WATCH_IDS_MAX);
const _: () = assert!(LOADTEST_RELAY_MESSAGE_BYTES <= RELAY_INNER_PACKET_BYTES_MIN);

// --- control socket deadlines and storage faults (hardening issue, items 3–5 and 7) ---

/// How long a control connection may take to send its next request line; past it the server
/// answers an error and closes, freeing the slot (idle clients cannot hold every slot).
pub const CONTROL_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server waits to write one answer before giving up on that client.
pub const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pages of LMDB's free list read at most when checking that a short `data.mdb` is only short by
/// free pages (a damaged list cannot make the open-time check run unbounded).
pub const STORE_CHECK_PAGES_MAX: u64 = 1 << 20;

// --- handshake admission (hardening issue, item 2) ---

/// On guard (after a sign of attack, see [`HANDSHAKE_GUARD_FOR`]): pending handshakes (in total)
/// from which an Initial from an address not yet validated is answered with a QUIC Retry instead
/// of a slot: under a flood, only clients that can receive our packets hold slots. Low enough
/// that stalled Initials cannot fill [`HANDSHAKES_MAX`].
pub const HANDSHAKES_RETRY_FROM: usize = 16;
/// Pending handshakes at most from one source address (an IPv4 address, an IPv6 /64), counted
/// apart for validated and unvalidated ones. Past it an unvalidated Initial gets a Retry and a
/// validated one is refused. Several honest users behind one NAT address share it; a handshake
/// lasts one round trip, so 8 at once from one address is already a burst.
pub const HANDSHAKES_PER_ADDRESS_MAX: usize = 8;
/// How long a handshake from an address not validated may take (a validated one has
/// [`HANDSHAKE_TIMEOUT`]). An honest client answers our first flight within one round trip; 3 s
/// leaves room for a lost flight at QUIC's initial 1 s probe timeout.
pub const HANDSHAKE_UNVALIDATED_TIMEOUT: Duration = Duration::from_secs(3);

const _: () = assert!(HANDSHAKES_RETRY_FROM <= HANDSHAKES_MAX);
const _: () = assert!(HANDSHAKES_PER_ADDRESS_MAX <= HANDSHAKES_RETRY_FROM);
const _: () = assert!(HANDSHAKE_UNVALIDATED_TIMEOUT.as_millis() <= HANDSHAKE_TIMEOUT.as_millis());
/// Validated handshakes (their address proven) that wait for a slot at most when all
/// [`HANDSHAKES_MAX`] are taken, instead of being refused at once (at most
/// [`HANDSHAKES_PER_ADDRESS_MAX`] of them from one source). A burst of honest clients — a ramp, a
/// failed node's clients moving over — is admitted as slots free; stalled handshakes cannot use it
/// (unvalidated attempts are answered with a Retry, never queued). Each holds one Initial packet.
pub const HANDSHAKES_QUEUED_MAX: usize = 512;
/// How long a queued handshake may wait for a slot before it is refused (below the client's own
/// handshake timeout, so it hears the refusal and backs off instead of timing out).
pub const HANDSHAKE_QUEUE_WAIT: Duration = Duration::from_secs(2);

const _: () = assert!(HANDSHAKE_QUEUE_WAIT.as_millis() < HANDSHAKE_TIMEOUT.as_millis());
/// While calm (no sign of attack), unvalidated handshakes pending at most; past it an Initial from
/// an address not yet validated gets a Retry. Three quarters of [`HANDSHAKES_MAX`]: a burst of new
/// clients (a switchboard's clients all coming back after a restart) gets in without the Retry's
/// round trip, and a spoofed flood that takes all of these before it is noticed still leaves the
/// rest to validated clients (see `net::admission` for the worst case).
pub const HANDSHAKES_UNVALIDATED_MAX: usize = 48;
/// An unvalidated handshake still pending this long is a sign of attack. An honest client answers
/// our first flight within a round trip; one whose flight was lost waits for QUIC's probe timeout
/// (about 1 s) and may raise a false alarm, which costs new clients a Retry's round trip for
/// [`HANDSHAKE_GUARD_FOR`], as every busy moment did before.
pub const HANDSHAKE_STALE_AFTER: Duration = Duration::from_secs(1);
/// How long the door stays on guard (a Retry for new addresses once [`HANDSHAKES_RETRY_FROM`]
/// handshakes are pending) after the last sign of attack: a stale or abandoned unvalidated
/// handshake. A flood that wants the larger calm share of slots again must first stop this long,
/// so it holds that share at most [`HANDSHAKE_UNVALIDATED_TIMEOUT`] out of every this long.
pub const HANDSHAKE_GUARD_FOR: Duration = Duration::from_secs(30);

const _: () = assert!(HANDSHAKES_RETRY_FROM <= HANDSHAKES_UNVALIDATED_MAX);
const _: () = assert!(HANDSHAKES_UNVALIDATED_MAX < HANDSHAKES_MAX);
const _: () =
    assert!(HANDSHAKE_STALE_AFTER.as_millis() < HANDSHAKE_UNVALIDATED_TIMEOUT.as_millis());

// --- wrong invite codes (hardening issue, item 6) ---

/// Wrong invite codes one client key may send in a row before its joins are refused without the
/// code being checked.
pub const JOIN_GUESSES_BURST: u32 = 5;
/// Wrong invite codes one source address (an IPv4 address, an IPv6 /64) may send in a row; more
/// than per key, since several users may share an address behind a NAT.
pub const JOIN_GUESSES_ADDR_BURST: u32 = 20;
/// Past a burst, one more wrong code is forgiven per this interval (per key and per address).
pub const JOIN_GUESS_INTERVAL: Duration = Duration::from_secs(10);
/// Client keys, and source addresses, remembered with unforgiven wrong codes (each table); when
/// one is full, newcomers share one entry, so a flood of fresh keys is throttled as one client.
pub const JOIN_GUESS_TABLE_MAX: usize = 4_096;
/// How long a session whose join was refused stays open for the refusal to reach the peer
/// (closing at once discards it); the peer normally closes first.
pub const JOIN_REFUSED_LINGER: Duration = Duration::from_secs(2);

// --- the social layer: names, threads, mentions, reactions (social issue, part 1) ---

/// Feeds one post may mention.
pub const MENTIONS_MAX: usize = 16;
/// Bytes of one reaction (an emoji with its modifiers, or a short word).
pub const REACTION_BYTES_MAX: usize = 32;
/// Characters of a name shown; longer names are cut with an ellipsis.
pub const NAME_CHARS_SHOWN_MAX: usize = 48;
/// Replies of one thread read at most (the thread view says when it stops there).
pub const THREAD_REPLIES_MAX: usize = 1_000;
/// Reactions to one message read at most to count them.
pub const REACTIONS_SCAN_MAX: usize = 10_000;
/// Distinct reactions shown under one message (the most used first).
pub const REACTION_KINDS_SHOWN_MAX: usize = 12;
/// Where the daemon listens for peers when no port was given or kept: a fixed port, so that a
/// contact card stays valid across restarts (SSB uses 8008). If it is taken at the first start,
/// a free port is chosen; either way the port is kept in the data directory (`listen.port`).
pub const DEFAULT_PEER_PORT: u16 = 8009;

/// Entries of one feed read at most to count its posts and follows for `kith profile`.
pub const PROFILE_SCAN_MAX: usize = 100_000;
/// Bytes of a contact card (`kith:…`), read or made.
pub const CARD_BYTES_MAX: usize = 2_048;
/// Addresses in one contact card.
pub const CARD_ADDRS_MAX: usize = 8;
/// Switchboards in one contact card.
pub const CARD_SWITCHBOARDS_MAX: usize = 8;

const _: () = assert!(MENTIONS_MAX * 32 < PAYLOAD_BYTES_MAX);
const _: () = assert!(NAME_CHARS_SHOWN_MAX * 4 >= NAME_BYTES_MAX / 4);

// --- introductions: three outcomes, relay first (introductions issue, items 4–6) ---

/// Ids whose last introduction outcome a daemon remembers for `kith contacts` and `kith status`
/// (its follows, and the ids `kith connect @ID` asked for); past it the oldest is forgotten.
pub const INTRO_OUTCOMES_MAX: usize = ROLODEX_FOLLOWS_MAX + 256;

const _: () = assert!(INTRO_OUTCOMES_MAX >= ROLODEX_FOLLOWS_MAX);

// --- metrics: `--metrics ADDR` on switchboards and daemons (issue 17, item 4) ---

/// Scrapes served at once by one metrics endpoint; past it a connection waits in the backlog.
pub const METRICS_CONNECTIONS_MAX: usize = 8;
/// Time a scraper has to send its request head (slow-loris bound).
pub const METRICS_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Time one metrics connection may live, whatever it does.
pub const METRICS_CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// Time a scrape may take to gather its figures (the supervision report included).
pub const METRICS_GATHER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Followed feeds a daemon reports a replication lag for, one series each (the most behind
/// first); the rest are summed into `kith_daemon_replication_lag_feeds_omitted`.
pub const METRICS_LAG_FEEDS_MAX: usize = 64;
/// Supervisors named in `kith_supervisor_restarts_total` (the trees have a fixed shape: a
/// dozen at most; the bound guards the label's cardinality anyway).
pub const METRICS_SUPERVISORS_MAX: usize = 64;

// --- private messages and deletion (issue 15, items 1, 3, 4) ---

/// Recipients of one private message besides its author (SSB's private-box allows 7).
pub const DM_RECIPIENTS_MAX: usize = 7;
/// Sealed key slots in every private message: the recipients and the author, the unused ones
/// filled with random bytes, so that the payload does not tell how many read it.
pub const DM_SLOTS: usize = DM_RECIPIENTS_MAX + 1;
/// Largest private message text, in bytes (the slots, the nonce, the tag, the author and up to
/// seven recipient ids take the rest of the payload).
pub const DM_TEXT_BYTES_MAX: usize = 7_000;
/// The sealed body is padded to a multiple of this, so its length tells little of the text's.
pub const DM_PAD_BYTES: usize = 64;
/// Private entries read (and trial-opened) at most for one `kith inbox` or `kith dm --thread`.
pub const INBOX_SCAN_MAX: usize = 5_000;
/// Conversations listed at most by one `kith inbox`.
pub const INBOX_CONVERSATIONS_MAX: usize = 500;

// Slots (80 bytes each), nonce (24), tag (16), the body's ids and padding fit in a payload.
const _: () = assert!(
    DM_SLOTS * 80 + 24 + 16 + 8 + (DM_RECIPIENTS_MAX + 1) * 33 + DM_TEXT_BYTES_MAX + DM_PAD_BYTES
        < PAYLOAD_BYTES_MAX
);

// --- the web page: `kith daemon --web`, `kith web` (issue 16) ---

/// Where the daemon serves its web page when `--web` is not given: loopback only, a fixed port
/// so that a bookmark keeps working (`--web off` turns it off). If the port is taken the daemon
/// says so and runs without the page; an address given with `--web` must bind.
pub const WEB_PORT_DEFAULT: u16 = 8807;
/// Threads on one timeline page.
pub const WEB_TIMELINE_THREADS: usize = 20;
/// Replies shown under a thread on the timeline (the thread's page shows them all).
pub const WEB_TIMELINE_REPLIES_SHOWN: usize = 3;
/// Timeline keys one page reads at most (a page of a few followed feeds among many held).
pub const TIMELINE_PAGE_SCAN_MAX: usize = 20_000;
/// Posts shown on a profile page.
pub const WEB_PROFILE_POSTS: usize = 30;
/// HTTP connections the web page serves at once; past it a connection waits in the backlog.
pub const WEB_CONNECTIONS_MAX: usize = 64;
/// Live-update streams (server-sent events) open at once; past it a page works without them.
pub const WEB_EVENT_STREAMS_MAX: usize = 16;
/// How often a live-update stream looks for presence and replication changes.
pub const WEB_EVENT_TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// New entries of one feed a live-update stream sends at once (a burst from replication is
/// cut to its newest; the page shows the rest on reload).
pub const WEB_EVENT_POSTS_MAX: u64 = 20;
/// Contacts a live-update stream watches for presence changes (the page's own).
pub const WEB_EVENT_CONTACTS_MAX: usize = 1_024;
/// Time a browser has to send a request head (slow-loris bound).
pub const WEB_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Bytes of a form a browser may post (a post is at most a payload; the rest is small).
pub const WEB_FORM_BYTES_MAX: usize = 64 * 1024;
/// How long a session cookie is valid.
pub const WEB_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// Peers whose announced clocks are read for the replication bars of the status page.
pub const WEB_PROGRESS_PEERS_MAX: usize = 256;
/// Connections drawn on the status page's live list (the first in id order).
pub const WEB_EVENT_CONNECTIONS_MAX: usize = 256;

const _: () = assert!(WEB_FORM_BYTES_MAX > PAYLOAD_BYTES_MAX * 3);
const _: () = assert!(WEB_TIMELINE_THREADS <= TIMELINE_PAGE_SCAN_MAX);

// --- blobs: files by BLAKE3 hash, fetched by verified streaming (issue 15, item 2) ---

/// Default largest blob (`blobs.max_bytes` in config.toml): what one attachment may be.
pub const BLOB_BYTES_MAX_DEFAULT: u64 = 5 * 1024 * 1024;
/// Default total of all blobs a node holds (`blobs.budget_bytes`).
pub const BLOB_BUDGET_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;
/// The most `blobs.max_bytes` may be set to: a served blob is read into memory whole.
pub const BLOB_BYTES_CEILING: u64 = 64 * 1024 * 1024;
/// Bytes of an attachment's file name.
pub const BLOB_NAME_BYTES_MAX: usize = 255;
/// Attachments of one post.
pub const ATTACHMENTS_MAX: usize = 8;
/// Blob files a node lists or counts (a store past it refuses new blobs as over budget).
pub const BLOBS_HELD_MAX: usize = 100_000;
/// Blobs referenced by wanted feeds that the fetcher tracks.
pub const BLOB_REFS_MAX: usize = 65_536;
/// Blob fetches running at once.
pub const BLOB_FETCHES_IN_FLIGHT: usize = 4;
/// Blobs served at once by one node (all peers together): each is read into memory whole.
pub const BLOB_SERVES_MAX: usize = 4;
/// Blob streams one peer may have open towards this node at once (more wait in QUIC).
pub const BLOB_STREAMS_PER_PEER: usize = 2;
/// Largest frame of the blob exchange (the want, the reply, the verdict: all small).
pub const BLOB_FRAME_BYTES_MAX: u32 = 1024;
/// Time one blob fetch may take, from the want to the verdict.
pub const BLOB_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// First delay before asking again for a blob whose fetch failed; doubles up to the max.
pub const BLOB_RETRY_BASE: std::time::Duration = std::time::Duration::from_secs(2);
/// Longest delay between two tries of one blob.
pub const BLOB_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(300);
/// Entries the fetcher reads from the store per step when it looks for attachments.
pub const BLOB_SCAN_BATCH: usize = 512;
/// How often the fetcher looks for work (retries due, new peers) without an event.
pub const BLOB_TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// Bytes read from a blob stream at a time.
pub const BLOB_READ_BYTES: usize = 64 * 1024;

const _: () = assert!(BLOB_BYTES_MAX_DEFAULT <= BLOB_BYTES_CEILING);
const _: () = assert!(BLOB_BUDGET_BYTES_DEFAULT >= BLOB_BYTES_MAX_DEFAULT);
const _: () = assert!(BLOB_FRAME_BYTES_MAX <= FRAME_BYTES_MAX);
/// Refusals of served blobs a node remembers for `kith blob ls` (the newest).
pub const BLOB_REFUSALS_KEPT: usize = 32;

// --- a daemon's link to a switchboard cluster (failover) ------------------------------------

/// Members (`@ID@HOST:PORT`, `HOST:PORT` or a bare `@ID`) one `--switchboard` cluster may list.
pub const SB_CLUSTER_ITEMS_MAX: usize = 16;
/// Addresses a link tries per round, all its cluster's names resolved together: a DNS name that
/// resolves to more is cut here.
pub const SB_CLUSTER_ADDRS_MAX: usize = 32;
/// Longest wait before a link tries the next member of its cluster (jitter, so that the clients
/// of a node that died spread over the others instead of all landing at one instant).
pub const SB_FAILOVER_JITTER_MAX: std::time::Duration = std::time::Duration::from_millis(500);
/// Keep-alive interval of a daemon's link to its switchboard: the link notices a dead node within
/// [`SB_LINK_IDLE_TIMEOUT`], which also bounds how long a dead daemon looks online to its node.
pub const SB_LINK_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(1_500);
/// How long a daemon's link to its switchboard may hear nothing before it is given up and the
/// link moves to another member of the cluster (QUIC takes the smaller of the two sides' idle
/// timeouts, so the switchboard drops a silent daemon as soon).
pub const SB_LINK_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

const _: () = assert!(SB_LINK_KEEP_ALIVE.as_millis() * 3 <= SB_LINK_IDLE_TIMEOUT.as_millis());
const _: () = assert!(SB_LINK_IDLE_TIMEOUT.as_millis() <= CONNECTION_IDLE_TIMEOUT.as_millis());
/// Switchboard links (each to one switchboard or cluster) a daemon runs at once: given,
/// remembered, and added by followed contact cards.
pub const SB_LINKS_MAX: usize = 32;

const _: () = assert!(SB_CLUSTER_ITEMS_MAX <= SB_CLUSTER_ADDRS_MAX);
const _: () = assert!(CARD_SWITCHBOARDS_MAX <= SB_LINKS_MAX);

// --- presence for the people you chose (issue 19) ---

/// Most ids a peer may allow to see its presence (`presence_visible_to`). The list travels in
/// the presence CRDT to every node of the cluster (32 bytes an id, so at most 16 KiB per
/// presence); a daemon allowing more ids than this sends the first ones and says so in its log.
/// Generous beside the ~150 stable relationships a person keeps.
pub const PRESENCE_VISIBLE_IDS_MAX: usize = 512;
/// Bytes a status line is padded to before it is sealed (a length byte, then the text), so the
/// ciphertext's length tells nothing of the text's.
pub const STATUS_PADDED_BYTES: usize = STATUS_BYTES_MAX + 1;
/// Largest sealed status line a switchboard accepts: the owner and epoch bound inside (40
/// bytes), the padded text and the 16-byte tag.
pub const SEALED_STATUS_BYTES_MAX: usize = 40 + STATUS_PADDED_BYTES + 16;
/// Status content keys a daemon holds from the peers that gave it one (one each, the newest;
/// the peers it connects to are bounded by its follows and connections anyway).
pub const STATUS_KEYS_HELD_MAX: usize = 10_000;
/// Peers a daemon remembers as following it (learned from the feeds they ask it for), for
/// `presence_visible_to = "followers"`.
pub const FOLLOWERS_KNOWN_MAX: usize = 10_000;

/// Views revoked by clients of other cluster nodes that a node holds until its presence CRDT
/// catches up (an unfollow hides a peer on every node within a round trip, not at the next
/// presence broadcast).
pub const PRESENCE_REVOCATIONS_MAX: usize = 100_000;
/// How long such a revocation is held at most: far past any presence broadcast period (60 s at
/// most), after which the CRDT has carried it or the node is cut off.
pub const PRESENCE_REVOCATION_TTL: std::time::Duration = std::time::Duration::from_secs(120);

const _: () = assert!(PRESENCE_VISIBLE_IDS_MAX <= WATCH_IDS_MAX);

// --- TLS session resumption (issue 18, item 2) ---

/// How long one session-ticket key serves: a ticket opens in the period it was made in and the
/// next (so it lives one to two periods), and its advertised lifetime is one period. Keys are
/// derived from the identity key and the period, so a restarted node with the same key still
/// opens its tickets.
pub const TLS_TICKET_KEY_PERIOD: Duration = Duration::from_secs(6 * 60 * 60);
/// Session tickets a server sends after each handshake (each resumption consumes one and earns
/// a new one, so one is enough for a client that reconnects one connection at a time).
pub const TLS_TICKETS_PER_HANDSHAKE: usize = 1;
/// Client TLS configs a process keeps, one per (own key, peer key) pair it dialled: each holds
/// that peer's session tickets (a few hundred bytes each) and the parsed identity. The oldest is
/// dropped past this, with its tickets (the next dial to that peer is then a full handshake).
/// Sized for a load-test harness or `kith bench relay` holding thousands of simulated clients.
pub const TLS_CLIENT_CONFIGS_MAX: usize = 16_384;

const _: () = assert!(TLS_TICKET_KEY_PERIOD.as_secs() <= u32::MAX as u64);
// rustls refuses ticket lifetimes over 7 days (RFC 8446 §4.6.1).
const _: () = assert!(TLS_TICKET_KEY_PERIOD.as_secs() <= 7 * 24 * 60 * 60);

/// Bidirectional streams a simulated peer's inner connection lets the other peer open (it opens
/// one: the hello's, then round trips or the replication session; two so that a closing stream
/// and its successor may overlap). quinn keeps a table entry per allowed stream for the
/// connection's life (see `loadtest::inner::inner_transport`).
pub const LOADTEST_INNER_STREAMS_BIDI: u32 = 2;

// --- Switchboard idle polling (issue 18, item 3) ---

/// The longest a switchboard worker polls its socket before sleeping (`relay::idle_poll`; the
/// operator's `--idle-poll-us` sets it, 0 turns polling off). As Linux's guest halt polling
/// default (200 µs): a relayed round trip's next packet comes within it when the peers are
/// close, and traffic sparser than that closes the window within a few parks.
pub const SB_IDLE_POLL_MAX: Duration = Duration::from_micros(200);
/// The first window once wake-ups come within [`SB_IDLE_POLL_MAX`] (then doubling).
pub const SB_IDLE_POLL_GROW_START: Duration = Duration::from_micros(50);
/// A yield between two peeks that took this long ran another thread (a yield to nobody takes a
/// microsecond or two): the CPU is wanted, and the polling worker sleeps instead.
pub const SB_IDLE_POLL_CONTENDED: Duration = Duration::from_micros(20);

const _: () = assert!(SB_IDLE_POLL_GROW_START.as_micros() <= SB_IDLE_POLL_MAX.as_micros());
