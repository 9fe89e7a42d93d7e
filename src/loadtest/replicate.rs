//! The replicate scenario's IO: a simulated peer's replication sessions, one per inner QUIC
//! connection through the relay, each the real sans-IO [`Session`] (EBT-style clocks, serving
//! what the other side wants, live pushes) after the real hello, as between two daemons. The
//! feeds are a [`Replica`] in memory (see there for why), shared by all of the peer's sessions
//! behind a mutex; a new entry (a post, or one replicated in) is announced to the peer's other
//! sessions so they push it on (`Session::local_append`).
//!
//! What is measured: for every stamped post an entry of which reaches a follower, the time from
//! the post to its arrival there ([`Measure::PostArrival`]), and the arrivals (entries per
//! second in the report).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc};

use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::limits::{FRAME_BYTES_MAX, LOADTEST_REPLICATE_FRAMES_QUEUE, REPLICATION_BATCH_MAX};
use crate::loadtest::metrics::{Measure, Metrics};
use crate::loadtest::replica::{Kept, Replica};
use crate::loadtest::LoadtestError;
use crate::net::hello::{
    accept_hello, dial_hello, Admission, Capabilities, Capability, Greeted, Hello, NodeRole,
};
use crate::net::stream;
use crate::replicate::{Action, Msg, PeerMemory, Session};
use crate::runtime::OwnedTask;

/// Entries announced to a peer's sessions and not yet taken, per session (a session that lags
/// behind re-reads its clock instead). The channel's slots are allocated up front, per peer:
/// 64 (about 5 KB) holds several seconds of a busy peer's posts and its follows' entries.
const APPENDED_QUEUE: usize = 64;

/// One simulated peer's feeds and the announcements of new entries.
pub struct Feeds {
    replica: Mutex<Replica>,
    appended: broadcast::Sender<(FeedId, u64)>,
}

impl Feeds {
    /// The feeds of a peer, to be shared by its sessions.
    pub fn new(replica: Replica) -> Arc<Feeds> {
        let (appended, _) = broadcast::channel(APPENDED_QUEUE);
        Arc::new(Feeds {
            replica: Mutex::new(replica),
            appended,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Replica> {
        // A panic elsewhere cannot leave a feed half-appended: each append is one push.
        self.replica.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Post to the own feed, stamped with the harness clock, and announce it.
    pub fn post(&self, metrics: &Metrics, own: FeedId) -> Result<u64, LoadtestError> {
        let seq = self.lock().post(metrics.now_us(), now_ms())?;
        let _ = self.appended.send((own, seq));
        Ok(seq)
    }
}

/// Which side of the inner connection this peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// It dialled (the follower, per the graph).
    Dialled,
    /// It accepted.
    Accepted,
}

/// Run one replication session on `conn` until it ends or `stop` is set.
pub async fn session(
    conn: quinn::Connection,
    side: Side,
    feeds: Arc<Feeds>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<(), LoadtestError> {
    let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Replicate]));
    let Greeted { send, recv, .. } = match side {
        Side::Dialled => dial_hello(&conn, &ours).await?,
        Side::Accepted => accept_hello(&conn, &ours, Admission::Welcome).await?,
    };
    let mut appended = feeds.appended.subscribe();
    let mut session = Session::new(feeds.lock().clock(), PeerMemory::default());
    // Boxed: a tokio channel allocates its slots 32 at a time, up front, for its life, and a
    // simulated peer holds one per session (a replicator several): 32 pointers, not 32 frames.
    let (frames_tx, mut frames) = mpsc::channel::<Box<Msg>>(LOADTEST_REPLICATE_FRAMES_QUEUE);
    // The reader feeds a bounded queue, so the loop below can wait on frames and announcements
    // at once (reading a frame is not cancel-safe); a full queue stops the reading.
    let _reader = OwnedTask::spawn(async move {
        let mut recv = recv;
        while let Ok(Some(msg)) = stream::read_frame::<Msg>(&mut recv, FRAME_BYTES_MAX).await {
            if frames_tx.send(Box::new(msg)).await.is_err() {
                return;
            }
        }
    });
    let mut driver = Driver {
        send,
        feeds: Arc::clone(&feeds),
        metrics,
    };
    let actions = session.start();
    driver.perform(actions).await?;
    while !stop.load(Ordering::Relaxed) {
        let actions = tokio::select! {
            frame = frames.recv() => match frame {
                Some(msg) => {
                    let replica = feeds.lock();
                    session.handle(*msg, &*replica)?
                }
                None => break,
            },
            event = appended.recv() => match event {
                Ok((feed, seq)) => session.local_append(feed, seq, &*feeds.lock()),
                Err(broadcast::error::RecvError::Lagged(_)) => session.set_wants(feeds.lock().clock()),
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        driver.perform(actions).await?;
    }
    conn.close(0u32.into(), b"done");
    Ok(())
}

struct Driver {
    send: quinn::SendStream,
    feeds: Arc<Feeds>,
    metrics: Arc<Metrics>,
}

impl Driver {
    /// Carry out the session's actions (an ingest announces the new entries to every session
    /// of the peer, this one included, whose session skips what its peer already holds).
    async fn perform(&mut self, actions: Vec<Action>) -> Result<(), LoadtestError> {
        for action in actions {
            match action {
                Action::Send(msg) => stream::write_frame(&mut self.send, &msg).await?,
                Action::Serve { feed, after, upto } => self.serve(feed, after, upto).await?,
                Action::Ingest { feed, entries } => self.ingest(feed, entries)?,
                // Memory of the exchange is for reconnects; a simulated peer forgets on restart.
                Action::Remember(_) => {}
            }
        }
        Ok(())
    }

    async fn serve(&mut self, feed: FeedId, after: u64, upto: u64) -> Result<(), LoadtestError> {
        let mut next = after;
        while next < upto {
            let batch = self
                .feeds
                .lock()
                .range(&feed, next, upto, REPLICATION_BATCH_MAX);
            if batch.is_empty() {
                return Ok(());
            }
            next += batch.len() as u64;
            let msg = Msg::Entries {
                feed,
                entries: batch,
            };
            stream::write_frame(&mut self.send, &msg).await?;
        }
        Ok(())
    }

    fn ingest(
        &mut self,
        feed: FeedId,
        entries: Vec<crate::replicate::WireEntry>,
    ) -> Result<(), LoadtestError> {
        let (kept, error) = self.feeds.lock().ingest(feed, entries, now_ms());
        let now = self.metrics.now_us();
        for Kept {
            feed,
            seq,
            stamp_us,
        } in kept
        {
            if let Some(stamp) = stamp_us {
                self.metrics.record(
                    Measure::PostArrival,
                    std::time::Duration::from_micros(now.saturating_sub(stamp)),
                );
                Metrics::bump(&self.metrics.arrivals);
            }
            let _ = self.feeds.appended.send((feed, seq));
        }
        match error {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }
}
