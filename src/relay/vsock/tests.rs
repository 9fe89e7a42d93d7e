//! Virtual socket tests over an in-memory link: framing both ways, every drop reason counted,
//! the receive waker, and a closed link failing sends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

use super::*;

#[derive(Default)]
struct MemLink {
    sent: Mutex<Vec<Bytes>>,
    max: AtomicUsize,
    closed: AtomicBool,
}

impl MemLink {
    fn new(max: usize) -> Arc<Self> {
        let link = Self::default();
        link.max.store(max, Ordering::Relaxed);
        Arc::new(link)
    }
    fn sent(&self) -> Vec<Bytes> {
        self.sent.lock().expect("lock").clone()
    }
}

impl DatagramLink for MemLink {
    fn send(&self, datagram: Bytes) -> Result<(), LinkError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(LinkError::Closed);
        }
        if datagram.len() > self.max.load(Ordering::Relaxed) {
            return Err(LinkError::TooLarge);
        }
        self.sent.lock().expect("lock").push(datagram);
        Ok(())
    }
    fn max_size(&self) -> Option<usize> {
        Some(self.max.load(Ordering::Relaxed))
    }
    // The in-memory link keeps everything it is given.
    fn room(&self) -> usize {
        usize::MAX
    }
}

#[derive(Default)]
struct Flag(AtomicUsize);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn key(n: u8) -> FeedId {
    FeedId([n; 32])
}

fn transmit(to: SocketAddr, contents: &[u8], segment_size: Option<usize>) -> Transmit<'_> {
    Transmit {
        destination: to,
        ecn: None,
        contents,
        segment_size,
        src_ip: None,
    }
}

fn frame(from: FeedId, body: &[u8]) -> Bytes {
    Bytes::from([from.0.as_slice(), body].concat())
}

/// Polls once with a counting waker; returns the packets received and the waker's flag.
fn poll_once(sock: &VirtualSocket, flag: &Arc<Flag>) -> Poll<Vec<(SocketAddr, Vec<u8>)>> {
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut storage = [[0u8; 64]; 3];
    let mut bufs: Vec<IoSliceMut> = storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
    let mut meta = vec![RecvMeta::default(); 3];
    match sock.poll_recv(&mut cx, &mut bufs, &mut meta) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(e)) => panic!("recv error {e}"),
        Poll::Ready(Ok(n)) => Poll::Ready(
            (0..n)
                .map(|i| (meta[i].addr, bufs[i][..meta[i].len].to_vec()))
                .collect(),
        ),
    }
}

#[test]
fn sends_one_datagram_per_packet_headed_by_the_destination_key() {
    let link = MemLink::new(100);
    let sock = VirtualSocket::new(key(1), link.clone());
    assert_eq!(sock.local_addr().expect("addr"), fake_addr(&key(1)));
    assert!(!sock.may_fragment());
    let to = sock.register_peer(key(2)).expect("register");
    sock.try_send(&transmit(to, b"hello", None)).expect("send");
    // A GSO-style batch is split into segments.
    sock.try_send(&transmit(to, b"aaabbbc", Some(3)))
        .expect("send");
    let expected: Vec<Bytes> = [&b"hello"[..], b"aaa", b"bbb", b"c"]
        .iter()
        .map(|p| frame(key(2), p))
        .collect();
    assert_eq!(link.sent(), expected);
    let stats = sock.stats();
    assert_eq!((stats.sent_packets, stats.sent_bytes), (4, 12));
    assert_eq!(stats.dropped(), 0);
}

#[test]
fn unknown_destinations_and_oversize_packets_are_dropped_not_errors() {
    let link = MemLink::new(32 + 10);
    let sock = VirtualSocket::new(key(1), link.clone());
    sock.try_send(&transmit(fake_addr(&key(9)), b"x", None))
        .expect("unknown destination is not an error");
    let to = sock.register_peer(key(2)).expect("register");
    sock.try_send(&transmit(to, &[0; 11], None))
        .expect("too large is not an error");
    sock.try_send(&transmit(to, &[0; 10], None))
        .expect("fits exactly");
    let stats = sock.stats();
    assert_eq!(stats.dropped_unknown_destination, 1);
    assert_eq!(stats.dropped_too_large, 1);
    assert_eq!(stats.sent_packets, 1);
    assert_eq!(link.sent().len(), 1);
}

#[test]
fn a_closed_link_fails_sends() {
    let link = MemLink::new(100);
    let sock = VirtualSocket::new(key(1), link.clone());
    let to = sock.register_peer(key(2)).expect("register");
    link.closed.store(true, Ordering::Relaxed);
    let err = sock
        .try_send(&transmit(to, b"x", None))
        .expect_err("closed");
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    assert!(sock.is_closed());
    let err = sock
        .try_send(&transmit(to, b"x", None))
        .expect_err("stays closed");
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
}

#[test]
fn delivered_frames_come_out_from_the_senders_fake_address_and_wake_the_reader() {
    let sock = VirtualSocket::new(key(1), MemLink::new(100));
    let flag = Arc::new(Flag::default());
    assert_eq!(poll_once(&sock, &flag), Poll::Pending);
    sock.deliver(frame(key(2), b"one"));
    assert_eq!(
        flag.0.load(Ordering::Relaxed),
        1,
        "the parked reader is woken"
    );
    sock.deliver(frame(key(3), b"two"));
    let got = poll_once(&sock, &flag);
    assert_eq!(
        got,
        Poll::Ready(vec![
            (fake_addr(&key(2)), b"one".to_vec()),
            (fake_addr(&key(3)), b"two".to_vec())
        ])
    );
    // The sender is now reachable at the address it came from: the answer path.
    let link = MemLink::new(100);
    let sock = VirtualSocket::new(key(1), link.clone());
    sock.deliver(frame(key(2), b"hi"));
    sock.try_send(&transmit(fake_addr(&key(2)), b"re", None))
        .expect("send");
    assert_eq!(link.sent(), vec![frame(key(2), b"re")]);
}

#[test]
fn receive_drops_are_counted_by_reason() {
    let sock = VirtualSocket::with_bounds(key(1), MemLink::new(100), 2, 8);
    sock.deliver(Bytes::from_static(&[1; 31]));
    for _ in 0..3 {
        sock.deliver(frame(key(2), b"p"));
    }
    let mut twin = key(2);
    twin.0[31] = 0; // same fake address as key(2), other key
    sock.deliver(frame(twin, b"spoof"));
    // A packet larger than the reader's 64-byte buffer is dropped, the next one still arrives
    // in the first slot.
    let sock2 = VirtualSocket::new(key(1), MemLink::new(1000));
    sock2.deliver(frame(key(2), &[7; 65]));
    sock2.deliver(frame(key(2), b"ok"));
    let flag = Arc::new(Flag::default());
    assert_eq!(
        poll_once(&sock2, &flag),
        Poll::Ready(vec![(fake_addr(&key(2)), b"ok".to_vec())])
    );
    let stats = sock.stats();
    assert_eq!(stats.dropped_malformed, 1);
    assert_eq!(stats.dropped_queue_full, 1);
    assert_eq!(stats.dropped_collision, 1);
    assert_eq!((stats.received_packets, stats.received_bytes), (2, 2));
    assert_eq!(sock2.stats().dropped_malformed, 1);
}
