//! Idle polling for the switchboard's runtime: before a worker thread sleeps, it watches the UDP
//! socket for a bounded, adaptive while, so that a packet arriving soon finds it awake.
//!
//! Why: a relayed packet costs the switchboard one thread wake-up (measured: `kith bench relay`
//! prints wake-ups per round trip). On a VM whose idle vCPUs halt at once (cpuidle driver
//! `haltpoll` with `guest_halt_poll_ns=0`), waking a halted vCPU costs tens of microseconds, and
//! the sender pays an inter-processor interrupt too. Linux's own answer is guest halt polling
//! (poll a while before halting, the window adapted to how soon wake-ups come); where the host
//! turned it off, this does the same in the process, for the one socket that matters.
//!
//! [`IdlePoll`] is the **sans-IO** decision, the kernel's haltpoll governor rules: the window
//! grows (from [`IdlePollConfig::grow_start`], doubling, up to [`IdlePollConfig::max`]) when a
//! wake-up came after the window but within the maximum, and halves when a wake-up came later
//! than the maximum (traffic too sparse to be worth polling for); a wake-up the poll caught
//! leaves it as it is. An idle switchboard's window therefore decays to zero within a few
//! parks, and busy traffic keeps the worker awake between packets at most `max` at a time.
//!
//! [`IdlePoller`] is the I/O: the runtime's park hook polls the socket (a non-blocking
//! `MSG_PEEK`, nothing is consumed) until a datagram is queued or the window ends, yielding the
//! CPU between peeks and sleeping at once when another thread took it (the poll uses only time
//! nothing else wants), one worker at a time (the others sleep at once, so a 2-core machine
//! keeps a core for everyone else), and the unpark hook reports how long the worker was idle.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::limits;

/// The bounds of the adaptive window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePollConfig {
    /// The longest a worker polls before sleeping; zero turns polling off.
    pub max: Duration,
    /// The first window after a wake-up the poll missed by less than `max`.
    pub grow_start: Duration,
}

impl IdlePollConfig {
    /// Polling for at most `max` (zero: never), starting from
    /// [`limits::SB_IDLE_POLL_GROW_START`] or `max` if that is less.
    pub fn with_max(max: Duration) -> Self {
        Self {
            max,
            grow_start: limits::SB_IDLE_POLL_GROW_START.min(max),
        }
    }
}

impl Default for IdlePollConfig {
    fn default() -> Self {
        Self::with_max(limits::SB_IDLE_POLL_MAX)
    }
}

/// The adaptive poll window (sans-IO): idle times in, the next window out.
#[derive(Debug, Clone, Copy)]
pub struct IdlePoll {
    config: IdlePollConfig,
    window: Duration,
}

impl IdlePoll {
    /// Starts at zero: the window opens only once wake-ups come soon after sleeping.
    pub fn new(config: IdlePollConfig) -> Self {
        Self {
            config,
            window: Duration::ZERO,
        }
    }

    /// How long to poll before sleeping now.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// A worker that polled for [`Self::window`] resumed work `idle` after it started to.
    pub fn woke_after(&mut self, idle: Duration) {
        let IdlePollConfig { max, grow_start } = self.config;
        if idle <= self.window {
            // The poll caught the wake-up: the window is right.
        } else if idle <= max {
            // Missed by less than the maximum: a longer window would have caught it.
            self.window = (self.window * 2).max(grow_start).min(max);
        } else {
            // Later than any window would wait: polling was wasted; back off.
            self.window /= 2;
            if self.window < grow_start {
                self.window = Duration::ZERO;
            }
        }
    }
}

/// One worker's poll state: its window (each worker learns its own, as haltpoll's is per CPU:
/// the worker that carries the traffic opens it, one that wakes rarely keeps it closed), and
/// when it parked if it is to report the idle time.
#[derive(Debug, Clone, Copy)]
struct Worker {
    poll: IdlePoll,
    parked_at: Option<Instant>,
}

thread_local! {
    static WORKER: Cell<Option<Worker>> = const { Cell::new(None) };
}

/// The park and unpark hooks' shared state for one runtime and one socket.
#[derive(Debug)]
pub struct IdlePoller {
    config: IdlePollConfig,
    /// The socket to watch (a duplicate of the endpoint's, sharing its queue); polling starts
    /// once it is set.
    socket: OnceLock<UdpSocket>,
    /// A worker is polling; the others sleep at once.
    polling: AtomicBool,
}

impl IdlePoller {
    /// Hooks that poll for at most `config.max`, once [`Self::watch`] gives them a socket.
    pub fn new(config: IdlePollConfig) -> Self {
        Self {
            config,
            socket: OnceLock::new(),
            polling: AtomicBool::new(false),
        }
    }

    /// Watch `socket` (a duplicate of the endpoint's: `try_clone`); a second call is ignored.
    pub fn watch(&self, socket: UdpSocket) -> std::io::Result<()> {
        // The duplicate shares the open file, and so its flags: quinn's socket is non-blocking
        // already; this only makes sure a peek can never wait.
        socket.set_nonblocking(true)?;
        let _ = self.socket.set(socket);
        Ok(())
    }

    /// This worker's current window.
    pub fn window(&self) -> Duration {
        self.worker().poll.window()
    }

    fn worker(&self) -> Worker {
        WORKER.with(Cell::get).unwrap_or(Worker {
            poll: IdlePoll::new(self.config),
            parked_at: None,
        })
    }

    /// The park hook: poll the socket for this worker's window unless it is zero or another
    /// worker is polling. Returns whether a datagram was seen.
    pub fn before_park(&self) -> bool {
        let Some(socket) = self.socket.get() else {
            return false;
        };
        let mut worker = self.worker();
        let started = Instant::now();
        let window = worker.poll.window();
        let polls = !window.is_zero() && !self.polling.swap(true, Ordering::Acquire);
        // A worker that slept because another was polling says nothing about its own window.
        worker.parked_at = (window.is_zero() || polls).then_some(started);
        WORKER.with(|w| w.set(Some(worker)));
        if !polls {
            return false;
        }
        let seen = poll_readable(socket, started + window);
        self.polling.store(false, Ordering::Release);
        seen
    }

    /// The unpark hook: tell this worker's window how long the worker was idle.
    pub fn after_unpark(&self) {
        let mut worker = self.worker();
        if let Some(parked_at) = worker.parked_at.take() {
            worker.poll.woke_after(parked_at.elapsed());
        }
        WORKER.with(|w| w.set(Some(worker)));
    }
}

/// Installs `poller`'s hooks on a runtime builder (the switchboard's).
pub fn install(builder: &mut tokio::runtime::Builder, poller: std::sync::Arc<IdlePoller>) {
    let on_park = std::sync::Arc::clone(&poller);
    builder
        .on_thread_park(move || {
            on_park.before_park();
        })
        .on_thread_unpark(move || poller.after_unpark());
}

/// Peeks at `socket` until a datagram is queued (true), `until` passes or the socket fails
/// (false). Nothing is read: the endpoint's driver takes the datagram once the worker parks and
/// finds the socket ready at once.
fn poll_readable(socket: &UdpSocket, until: Instant) -> bool {
    let socket = socket2::SockRef::from(socket);
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    loop {
        match socket.peek(&mut byte) {
            Ok(_) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // A queued error (an ICMP unreachable) also ends the wait: the driver reads it.
            Err(_) => return true,
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        // Let any thread that wants this CPU run first, and stop polling once one did: the poll
        // takes only time nothing else would use, as the kernel's idle polling does. On a busy
        // machine a polling worker would delay the very peers it waits for, and lose the
        // preference the scheduler gives a thread woken from sleep.
        std::thread::yield_now();
        if now.elapsed() >= limits::SB_IDLE_POLL_CONTENDED {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    fn config() -> IdlePollConfig {
        IdlePollConfig {
            max: 200 * US,
            grow_start: 50 * US,
        }
    }

    #[test]
    fn starts_closed_and_opens_when_wake_ups_come_soon() {
        let mut poll = IdlePoll::new(config());
        assert_eq!(poll.window(), Duration::ZERO);
        poll.woke_after(30 * US);
        assert_eq!(poll.window(), 50 * US);
        poll.woke_after(80 * US);
        assert_eq!(poll.window(), 100 * US);
        poll.woke_after(150 * US);
        assert_eq!(poll.window(), 200 * US);
        poll.woke_after(199 * US);
        assert_eq!(poll.window(), 200 * US, "never past the maximum");
    }

    #[test]
    fn a_caught_wake_up_keeps_the_window() {
        let mut poll = IdlePoll::new(config());
        poll.woke_after(30 * US);
        poll.woke_after(80 * US);
        assert_eq!(poll.window(), 100 * US);
        for _ in 0..10 {
            poll.woke_after(20 * US);
        }
        assert_eq!(poll.window(), 100 * US);
    }

    #[test]
    fn sparse_traffic_closes_it_within_a_few_parks() {
        let mut poll = IdlePoll::new(config());
        for _ in 0..3 {
            poll.woke_after(150 * US);
        }
        assert_eq!(poll.window(), 200 * US);
        poll.woke_after(Duration::from_millis(20));
        assert_eq!(poll.window(), 100 * US);
        poll.woke_after(Duration::from_millis(20));
        assert_eq!(poll.window(), 50 * US);
        poll.woke_after(Duration::from_secs(5));
        assert_eq!(poll.window(), Duration::ZERO, "below the start it closes");
        poll.woke_after(Duration::from_secs(5));
        assert_eq!(poll.window(), Duration::ZERO);
    }

    #[test]
    fn a_zero_maximum_never_polls() {
        let mut poll = IdlePoll::new(IdlePollConfig::with_max(Duration::ZERO));
        for idle in [Duration::ZERO, US, 100 * US, Duration::from_secs(1)] {
            poll.woke_after(idle);
            assert_eq!(poll.window(), Duration::ZERO);
        }
    }

    #[test]
    fn polling_stops_at_a_datagram_or_at_the_deadline() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let poller = IdlePoller::new(config());
        assert!(!poller.before_park(), "no socket yet: no polling");
        poller
            .watch(socket.try_clone().expect("dup"))
            .expect("watch");
        assert!(!poller.before_park(), "a zero window does not poll");
        // A wake-up soon after sleeping opens the window.
        poller.after_unpark();
        assert_eq!(poller.window(), 50 * US);

        // Nothing queued: the poll gives up (at the window's end, or earlier if another thread
        // wanted this CPU).
        assert!(!poller.before_park());
        std::thread::sleep(Duration::from_millis(5));
        poller.after_unpark();
        assert_eq!(
            poller.window(),
            Duration::ZERO,
            "a late wake-up closes a start-sized window"
        );

        // A queued datagram ends the poll at once, and is still there to read.
        poller.before_park();
        poller.after_unpark();
        assert_eq!(poller.window(), 50 * US);
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sender
            .send_to(b"x", socket.local_addr().expect("addr"))
            .expect("send");
        std::thread::sleep(Duration::from_millis(5));
        assert!(poller.before_park());
        poller.after_unpark();
        assert_eq!(poller.window(), 50 * US, "caught: the window stays");
        let mut buf = [0u8; 4];
        socket.set_nonblocking(true).expect("nonblocking");
        assert_eq!(
            socket.recv(&mut buf).expect("the datagram is not consumed"),
            1
        );
    }

    #[test]
    fn only_one_worker_polls_at_a_time() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let poller = IdlePoller::new(IdlePollConfig {
            max: Duration::from_millis(300),
            grow_start: Duration::from_millis(300),
        });
        poller.watch(socket).expect("watch");
        poller.before_park();
        poller.after_unpark();
        assert_eq!(poller.window(), Duration::from_millis(300));
        // Another worker is polling: this one sleeps at once, and does not report the time it
        // slept as its own (it would close its window).
        poller.polling.store(true, Ordering::Release);
        let started = Instant::now();
        assert!(!poller.before_park());
        assert!(started.elapsed() < Duration::from_millis(300));
        std::thread::sleep(Duration::from_millis(400));
        poller.after_unpark();
        assert_eq!(poller.window(), Duration::from_millis(300), "no report");
        assert!(poller.polling.load(Ordering::Acquire), "the other's flag");
        // Once the other is done, this one polls (and nothing came: no datagram seen), and
        // leaves the flag free.
        poller.polling.store(false, Ordering::Release);
        assert!(!poller.before_park());
        assert!(!poller.polling.load(Ordering::Acquire));
    }
}
