//! A virtual UDP socket for quinn whose packets ride an outer link's datagrams.
//!
//! A peer runs its own *inner* quinn endpoint on a [`VirtualSocket`], so its session with another
//! peer is end-to-end encrypted even though every packet passes through a switchboard:
//!
//! - **send:** an inner packet to fake address `fake_addr(K)` leaves as one outer datagram
//!   `[K: 32 bytes][packet]`;
//! - **receive:** the switchboard delivers `[source key][packet]`; the receive [`super::pump`]
//!   calls [`VirtualSocket::deliver`], which queues the packet from fake address
//!   `fake_addr(source)` in a bounded queue ([`limits::RELAY_RECEIVE_QUEUE_PACKETS`]) and drops
//!   (and counts) past it, like a full `SO_RCVBUF`.
//!
//! Choices that quinn's driver depends on:
//! - `may_fragment()` is false: quinn disables MTU discovery on sockets that may fragment, and
//!   this one never fragments (an inner packet too large for the outer datagram is dropped).
//! - `try_send` never fails for one bad packet (quinn stops driving a connection on any send
//!   error other than `WouldBlock`): unknown destinations and oversize packets are counted and
//!   dropped. Only a closed outer link is an error, which ends the inner connections at once.
//! - One segment per transmit and per receive (no GSO/GRO); `try_send` still splits segments.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{BufMut, Bytes, BytesMut};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

use super::addr::{fake_addr, AddrBook, AddrError};
use super::link::{DatagramLink, LinkError};
use crate::identity::FeedId;
use crate::limits;

/// Counters of a [`VirtualSocket`]; bytes are inner packet bytes (headers excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VsockStats {
    /// Inner packets handed to the outer link.
    pub sent_packets: u64,
    /// Bytes of those packets.
    pub sent_bytes: u64,
    /// Inner packets queued for the inner endpoint.
    pub received_packets: u64,
    /// Bytes of those packets.
    pub received_bytes: u64,
    /// Received packets dropped because the receive queue was full.
    pub dropped_queue_full: u64,
    /// Outgoing packets dropped because they did not fit in one outer datagram.
    pub dropped_too_large: u64,
    /// Outgoing packets dropped because the outer link's queue was full.
    pub dropped_link_full: u64,
    /// Outgoing packets dropped because their fake address maps to no known key.
    pub dropped_unknown_destination: u64,
    /// Received frames dropped because they were shorter than the key header, or a packet was
    /// larger than the inner endpoint's buffer.
    pub dropped_malformed: u64,
    /// Received frames dropped because their source's fake address belongs to another key.
    pub dropped_collision: u64,
}

impl VsockStats {
    /// Packets dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_too_large
            + self.dropped_link_full
            + self.dropped_unknown_destination
            + self.dropped_malformed
            + self.dropped_collision
    }
}

#[derive(Default)]
struct Counters {
    sent_packets: AtomicU64,
    sent_bytes: AtomicU64,
    received_packets: AtomicU64,
    received_bytes: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_link_full: AtomicU64,
    dropped_too_large: AtomicU64,
    dropped_unknown_destination: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_collision: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

#[derive(Default)]
struct RecvQueue {
    packets: VecDeque<(SocketAddr, Bytes)>,
    waker: Option<Waker>,
}

/// A quinn [`AsyncUdpSocket`] over a [`DatagramLink`]; see the module docs.
pub struct VirtualSocket {
    own: FeedId,
    local: SocketAddr,
    link: Arc<dyn DatagramLink>,
    book: Mutex<AddrBook>,
    queue: Mutex<RecvQueue>,
    queue_capacity: usize,
    closed: AtomicBool,
    counters: Counters,
}

impl fmt::Debug for VirtualSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualSocket")
            .field("own", &self.own.short())
            .field("local", &self.local)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state stays consistent across a panic (plain pushes and pops), so a poisoned
    // lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VirtualSocket {
    /// A socket for the peer with key `own`, sending over `link`, with the default bounds.
    pub fn new(own: FeedId, link: Arc<dyn DatagramLink>) -> Arc<Self> {
        Self::with_bounds(
            own,
            link,
            limits::RELAY_RECEIVE_QUEUE_PACKETS,
            limits::RELAY_ADDR_BOOK_MAX,
        )
    }

    /// As [`VirtualSocket::new`] with an explicit receive queue and address book capacity.
    pub fn with_bounds(
        own: FeedId,
        link: Arc<dyn DatagramLink>,
        queue_capacity: usize,
        book_capacity: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            own,
            local: fake_addr(&own),
            link,
            book: Mutex::new(AddrBook::with_capacity(book_capacity)),
            queue: Mutex::new(RecvQueue::default()),
            queue_capacity,
            closed: AtomicBool::new(false),
            counters: Counters::default(),
        })
    }

    /// Makes `peer` reachable and returns the fake address to dial it at.
    pub fn register_peer(&self, peer: FeedId) -> Result<SocketAddr, AddrError> {
        locked(&self.book).insert(peer)
    }

    /// Takes one frame `[source key][inner packet]` from the outer link. Frames that are too
    /// short, from a colliding key or past a full queue are dropped and counted.
    pub fn deliver(&self, frame: Bytes) {
        let Some(header) = frame
            .get(..limits::RELAY_HEADER_BYTES)
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
        else {
            bump(&self.counters.dropped_malformed, 1);
            return;
        };
        let from = match locked(&self.book).insert(FeedId(header)) {
            Ok(addr) => addr,
            Err(AddrError::Collision { .. }) => {
                bump(&self.counters.dropped_collision, 1);
                return;
            }
        };
        let packet = frame.slice(limits::RELAY_HEADER_BYTES..);
        let len = packet.len() as u64;
        let waker = {
            let mut queue = locked(&self.queue);
            if queue.packets.len() >= self.queue_capacity {
                bump(&self.counters.dropped_queue_full, 1);
                return;
            }
            queue.packets.push_back((from, packet));
            queue.waker.take()
        };
        bump(&self.counters.received_packets, 1);
        bump(&self.counters.received_bytes, len);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Marks the outer link as gone: every later send fails, ending the inner connections.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// True once [`VirtualSocket::close`] was called or the link reported itself closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The key this socket sends as.
    pub fn own_key(&self) -> FeedId {
        self.own
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> VsockStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        VsockStats {
            sent_packets: get(&c.sent_packets),
            sent_bytes: get(&c.sent_bytes),
            received_packets: get(&c.received_packets),
            received_bytes: get(&c.received_bytes),
            dropped_queue_full: get(&c.dropped_queue_full),
            dropped_link_full: get(&c.dropped_link_full),
            dropped_too_large: get(&c.dropped_too_large),
            dropped_unknown_destination: get(&c.dropped_unknown_destination),
            dropped_malformed: get(&c.dropped_malformed),
            dropped_collision: get(&c.dropped_collision),
        }
    }

    fn send_one(&self, to: &FeedId, packet: &[u8]) -> io::Result<()> {
        let Some(max) = self.link.max_size() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                LinkError::Unsupported,
            ));
        };
        if limits::RELAY_HEADER_BYTES + packet.len() > max {
            bump(&self.counters.dropped_too_large, 1);
            return Ok(());
        }
        let mut frame = BytesMut::with_capacity(limits::RELAY_HEADER_BYTES + packet.len());
        frame.put_slice(&to.0);
        frame.put_slice(packet);
        match self.link.send(frame.freeze()) {
            Ok(()) => {
                bump(&self.counters.sent_packets, 1);
                bump(&self.counters.sent_bytes, packet.len() as u64);
                Ok(())
            }
            // The path MTU shrank between the check and the send.
            Err(LinkError::TooLarge) => {
                bump(&self.counters.dropped_too_large, 1);
                Ok(())
            }
            // The link queues and its queue is full: a lost packet, which inner QUIC recovers.
            Err(LinkError::Full) => {
                bump(&self.counters.dropped_link_full, 1);
                Ok(())
            }
            Err(err @ LinkError::Closed) => {
                self.close();
                Err(io::Error::new(io::ErrorKind::NotConnected, err))
            }
            Err(err @ LinkError::Unsupported) => {
                Err(io::Error::new(io::ErrorKind::Unsupported, err))
            }
        }
    }
}

/// Writability of a [`VirtualSocket`]: sends never wait, so it is always writable.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for VirtualSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if self.is_closed() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                LinkError::Closed,
            ));
        }
        let Some(to) = locked(&self.book).lookup(&transmit.destination) else {
            bump(&self.counters.dropped_unknown_destination, 1);
            return Ok(());
        };
        let contents = transmit.contents;
        let segment = transmit.segment_size.unwrap_or(contents.len()).max(1);
        for packet in contents.chunks(segment) {
            self.send_one(&to, packet)?;
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut queue = locked(&self.queue);
        let slots = bufs.len().min(meta.len());
        let mut filled = 0;
        while filled < slots {
            let Some((from, packet)) = queue.packets.pop_front() else {
                break;
            };
            let Some(dst) = bufs[filled].get_mut(..packet.len()) else {
                bump(&self.counters.dropped_malformed, 1);
                continue;
            };
            dst.copy_from_slice(&packet);
            meta[filled] = RecvMeta {
                addr: from,
                len: packet.len(),
                stride: packet.len(),
                ecn: None,
                dst_ip: None,
            };
            filled += 1;
        }
        if filled > 0 {
            return Poll::Ready(Ok(filled));
        }
        queue.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
