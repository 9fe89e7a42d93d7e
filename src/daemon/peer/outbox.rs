//! What a connection still has to send, so that deciding to send never waits on the network.
//!
//! The connection actor puts messages and ranges to serve here; the sender task takes them out
//! and writes them. Ranges of one feed merge (`after` of the first, `upto` of the last), so the
//! outbox holds at most one range per served feed however many entries arrive; messages (clocks)
//! are few and bounded, and overflowing them is a protocol failure. Because the actor never
//! blocks on a full queue, two nodes that both stop reading can not wait on each other forever.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::identity::FeedId;
use crate::limits::OUTBOX_MESSAGES_MAX;
use crate::replicate::Msg;

/// One unit of sending work.
#[derive(Debug, PartialEq, Eq)]
pub enum Job {
    /// Send this message.
    Send(Msg),
    /// Send entries `after + 1 ..= upto` of `feed`.
    Serve {
        /// The feed.
        feed: FeedId,
        /// Last entry the peer holds.
        after: u64,
        /// Last entry to send.
        upto: u64,
    },
}

#[derive(Default)]
struct Queues {
    messages: VecDeque<Msg>,
    ranges: BTreeMap<FeedId, (u64, u64)>,
    closed: bool,
}

/// The outbox of one connection. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct Outbox {
    queues: Arc<Mutex<Queues>>,
    ready: Arc<Notify>,
}

/// The outbox holds too many messages: the peer is not reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer is not reading: {OUTBOX_MESSAGES_MAX} messages are waiting")]
pub struct OutboxFull;

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        // The queues stay consistent even if a holder panicked (every update is one step).
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a message.
    pub fn send(&self, msg: Msg) -> Result<(), OutboxFull> {
        let mut q = self.lock();
        if q.messages.len() >= OUTBOX_MESSAGES_MAX {
            return Err(OutboxFull);
        }
        q.messages.push_back(msg);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// Queue a range to serve, merging with one already queued for the feed.
    pub fn serve(&self, feed: FeedId, after: u64, upto: u64) {
        let mut q = self.lock();
        let range = q.ranges.entry(feed).or_insert((after, upto));
        range.0 = range.0.min(after);
        range.1 = range.1.max(upto);
        drop(q);
        self.ready.notify_one();
    }

    /// Stop: the sender's next `next` returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The next job, messages first; waits while there is none. `None` once closed.
    pub async fn next(&self) -> Option<Job> {
        loop {
            if let Some(job) = self.take() {
                return job;
            }
            self.ready.notified().await;
        }
    }

    fn take(&self) -> Option<Option<Job>> {
        let mut q = self.lock();
        if q.closed {
            return Some(None);
        }
        if let Some(msg) = q.messages.pop_front() {
            return Some(Some(Job::Send(msg)));
        }
        let feed = *q.ranges.keys().next()?;
        let (after, upto) = q.ranges.remove(&feed)?;
        Some(Some(Job::Serve { feed, after, upto }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ranges_merge_and_messages_go_first() {
        let outbox = Outbox::default();
        let feed = FeedId([3; 32]);
        outbox.serve(feed, 0, 10);
        outbox.serve(feed, 10, 25);
        outbox.send(Msg::ResendFull).unwrap();
        assert_eq!(outbox.next().await, Some(Job::Send(Msg::ResendFull)));
        assert_eq!(
            outbox.next().await,
            Some(Job::Serve {
                feed,
                after: 0,
                upto: 25
            })
        );
        outbox.close();
        assert_eq!(outbox.next().await, None);
    }

    #[test]
    fn too_many_messages_is_an_error() {
        let outbox = Outbox::default();
        for _ in 0..OUTBOX_MESSAGES_MAX {
            outbox.send(Msg::ResendFull).unwrap();
        }
        assert_eq!(outbox.send(Msg::ResendFull), Err(OutboxFull));
    }
}
