//! A simulated peer's feeds, in memory: its own feed (it posts) and the feeds it follows
//! (replicated to it), with the real feed rules — every entry arriving from another peer is
//! checked ([`check_entry`]), its signature verified strictly and placed against the feed's head
//! ([`check_sequence`]) before it is kept. The replication sessions of the peer read their
//! clock, the local view ([`Local`]) and the entries to serve from here.
//!
//! Why in memory and not LMDB: the harness runs hundreds of replicating peers in one process;
//! one LMDB environment each would cost a memory map and a writer per peer and measure the
//! harness's disk rather than the switchboards' relay, which is what the replicate scenario is
//! for (the store's own speed is `kith bench ingest`). Shared storage would not do either: each
//! peer must hold only what it chose, as a daemon does. The cost is that a simulated peer forgets
//! everything when it restarts (it re-replicates from its peers), and that a feed is bounded to
//! [`LOADTEST_FEED_ENTRIES_MAX`] entries (past it the peer stops posting and counts it).
//!
//! No IO: a mutex around it is the driver's business.

use std::collections::BTreeMap;

use crate::feed::{
    check_entry, check_sequence, next_entry, Content, FeedError, FeedHead, Placement,
};
use crate::identity::{FeedId, Identity};
use crate::limits::LOADTEST_FEED_ENTRIES_MAX;
use crate::replicate::{Clock, Local, WireEntry};

/// A post's text carries when it was made (µs on the harness's clock), so the follower it
/// reaches can time it.
const STAMP_PREFIX: &str = "lt post ";

/// One feed held: its entries in order (from sequence 1) and its head.
#[derive(Default)]
struct Log {
    entries: Vec<WireEntry>,
    head: Option<FeedHead>,
}

/// Why an entry from a peer was not kept.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// It breaks a feed rule (signature, sequence, backlink, payload…).
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// It is for a feed this peer does not follow.
    #[error("an entry of {0}, which this peer does not follow")]
    Unwanted(FeedId),
    /// The feed holds its bound already.
    #[error("the feed holds {LOADTEST_FEED_ENTRIES_MAX} entries already")]
    Full,
}

/// An entry kept: where it went and, for a stamped post, when it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The feed.
    pub feed: FeedId,
    /// Its sequence.
    pub seq: u64,
    /// The stamp of a harness post (µs on the harness's clock), if it is one.
    pub stamp_us: Option<u64>,
}

/// The feeds of one simulated peer.
pub struct Replica {
    identity: Identity,
    logs: BTreeMap<FeedId, Log>,
}

impl Replica {
    /// A peer `identity` that follows `follows` (and holds nothing yet).
    pub fn new(identity: Identity, follows: &[FeedId]) -> Replica {
        let mut logs = BTreeMap::new();
        logs.insert(identity.id(), Log::default());
        for f in follows {
            logs.insert(*f, Log::default());
        }
        Replica { identity, logs }
    }

    /// The clock: every feed wanted (own and followed) and the latest sequence held.
    pub fn clock(&self) -> Clock {
        self.logs
            .iter()
            .map(|(feed, log)| (*feed, log.head.map_or(0, |h| h.seq)))
            .collect()
    }

    /// Post a stamped text to the own feed; its sequence.
    pub fn post(&mut self, stamp_us: u64, now_ms: u64) -> Result<u64, ReplicaError> {
        let own = self.identity.id();
        let log = self.logs.entry(own).or_default();
        if log.entries.len() >= LOADTEST_FEED_ENTRIES_MAX {
            return Err(ReplicaError::Full);
        }
        let content = Content::Post {
            text: format!("{STAMP_PREFIX}{stamp_us}"),
            reply_to: None,
        };
        let (entry, payload, header) =
            next_entry(&self.identity, log.head.as_ref(), &content, now_ms)?;
        log.head = Some(FeedHead {
            seq: header.seq,
            id: entry.id(),
            timestamp_ms: header.timestamp_ms,
        });
        log.entries.push(WireEntry {
            entry,
            payload: Some(payload),
            tombstone: None,
        });
        Ok(header.seq)
    }

    /// Check and keep entries of `feed` from a peer, in order. Entries already held are
    /// skipped; the first that breaks a rule stops the batch (those before it are kept).
    pub fn ingest(
        &mut self,
        feed: FeedId,
        entries: Vec<WireEntry>,
        now_ms: u64,
    ) -> (Vec<Kept>, Option<ReplicaError>) {
        let mut kept = Vec::new();
        let Some(log) = self.logs.get_mut(&feed) else {
            return (kept, Some(ReplicaError::Unwanted(feed)));
        };
        for wire in entries {
            let checked = match check_entry(wire.entry, wire.payload, Some(feed), now_ms)
                .and_then(|c| c.verify_signature().map(|()| c))
            {
                Ok(c) => c,
                Err(e) => return (kept, Some(e.into())),
            };
            match check_sequence(log.head.as_ref(), &checked) {
                Ok(Placement::Held) => continue,
                Ok(Placement::Next) => {}
                Err(e) => return (kept, Some(e.into())),
            }
            if log.entries.len() >= LOADTEST_FEED_ENTRIES_MAX {
                return (kept, Some(ReplicaError::Full));
            }
            let stamp_us = checked
                .content()
                .and_then(|c| c.ok())
                .and_then(|c| stamp(&c));
            log.head = Some(FeedHead {
                seq: checked.header.seq,
                id: checked.id,
                timestamp_ms: checked.header.timestamp_ms,
            });
            log.entries.push(WireEntry {
                entry: checked.entry,
                payload: checked.payload,
                tombstone: None,
            });
            kept.push(Kept {
                feed,
                seq: checked.header.seq,
                stamp_us,
            });
        }
        (kept, None)
    }

    /// Entries `after + 1 ..= upto` of `feed`, at most `most`.
    pub fn range(&self, feed: &FeedId, after: u64, upto: u64, most: usize) -> Vec<WireEntry> {
        let Some(log) = self.logs.get(feed) else {
            return Vec::new();
        };
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        let end = usize::try_from(upto)
            .unwrap_or(usize::MAX)
            .min(log.entries.len());
        log.entries
            .get(start..end.max(start))
            .map(|s| s.iter().take(most).cloned().collect())
            .unwrap_or_default()
    }
}

fn stamp(content: &Content) -> Option<u64> {
    match content {
        Content::Post { text, .. } => text.strip_prefix(STAMP_PREFIX)?.parse().ok(),
        _ => None,
    }
}

impl Local for Replica {
    fn seq(&self, feed: &FeedId) -> u64 {
        self.logs
            .get(feed)
            .and_then(|l| l.head)
            .map_or(0, |h| h.seq)
    }

    /// A simulated peer serves every feed it holds to whoever asks: the scenario measures the
    /// relay, and its follow graph already decides who connects to whom.
    fn may_serve(&self, feed: &FeedId) -> bool {
        self.logs.contains_key(feed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::now_ms;

    fn identity(n: u8) -> Identity {
        Identity::from_seed([n; 32])
    }

    #[test]
    fn posts_replicate_in_order_and_carry_their_stamp() {
        let (alice, bob) = (identity(1), identity(2));
        let a_id = alice.id();
        let mut a = Replica::new(alice, &[]);
        let mut b = Replica::new(bob, &[a_id]);
        let now = now_ms();
        assert_eq!(a.post(17, now).ok(), Some(1));
        assert_eq!(a.post(18, now).ok(), Some(2));
        assert_eq!(b.clock().get(&a_id), Some(&0));
        let (kept, err) = b.ingest(a_id, a.range(&a_id, 0, 2, 100), now);
        assert!(err.is_none());
        assert_eq!(
            kept.iter().map(|k| k.stamp_us).collect::<Vec<_>>(),
            vec![Some(17), Some(18)]
        );
        assert_eq!(b.seq(&a_id), 2);
        // Again: already held, nothing new, no error.
        let (kept, err) = b.ingest(a_id, a.range(&a_id, 0, 2, 100), now);
        assert!(kept.is_empty() && err.is_none());
        assert_eq!(a.range(&a_id, 1, 2, 100).len(), 1);
        assert_eq!(a.range(&a_id, 0, 2, 1).len(), 1);
    }

    #[test]
    fn forged_gapped_and_unwanted_entries_are_refused() {
        let (alice, bob, mallory) = (identity(1), identity(2), identity(3));
        let (a_id, m_id) = (alice.id(), mallory.id());
        let mut a = Replica::new(alice, &[]);
        let mut b = Replica::new(bob, &[a_id]);
        let now = now_ms();
        for stamp in 0..3 {
            assert!(a.post(stamp, now).is_ok());
        }
        // A gap: entry 2 without entry 1.
        let (kept, err) = b.ingest(a_id, a.range(&a_id, 1, 2, 100), now);
        assert!(kept.is_empty());
        assert!(matches!(
            err,
            Some(ReplicaError::Feed(FeedError::WrongSequence { .. }))
        ));
        // A flipped signature byte.
        let mut forged = a.range(&a_id, 0, 1, 100);
        forged[0].entry.0[0] ^= 1;
        let (kept, err) = b.ingest(a_id, forged, now);
        assert!(kept.is_empty() && matches!(err, Some(ReplicaError::Feed(_))));
        // Entries claimed to be another feed's.
        let (_, err) = b.ingest(
            a_id,
            {
                let mut m = Replica::new(mallory, &[]);
                assert!(m.post(1, now).is_ok());
                m.range(&m_id, 0, 1, 100)
            },
            now,
        );
        assert!(matches!(
            err,
            Some(ReplicaError::Feed(FeedError::WrongAuthor { .. }))
        ));
        // A feed not followed.
        let (_, err) = b.ingest(m_id, Vec::new(), now);
        assert!(matches!(err, Some(ReplicaError::Unwanted(_))));
        assert_eq!(b.seq(&a_id), 0);
    }
}
