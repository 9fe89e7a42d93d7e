//! The fetcher's decisions, sans-IO: which referenced blobs to fetch, from which connected
//! peer, when to try again, which held blobs to drop; and the server's: whether to serve one.
//!
//! Events in (a followed feed references a blob, a fetch ended, a peer came or went, the set of
//! wanted feeds changed), time as milliseconds, and [`Fetch`] orders out. The daemon's fetcher
//! actor (`daemon/blob/`) carries them out.
//!
//! Rules:
//! - a reference over the per-blob limit is never fetched ([`Skip::TooLarge`]); one that would
//!   pass the total budget waits ([`Skip::OverBudget`]) until space frees;
//! - a blob is asked first from the author of a post that attaches it (who surely has it), else
//!   from any connected peer; a peer that served bad bytes or said it lacks the blob is not
//!   asked for it again until every other connected peer has been tried;
//! - failures back off from [`BLOB_RETRY_BASE`] doubling to [`BLOB_RETRY_MAX`]; at most
//!   [`BLOB_FETCHES_IN_FLIGHT`] fetches run at once; the table holds at most [`BLOB_REFS_MAX`]
//!   blobs;
//! - a held blob not pinned (fetched, not added here) and no longer referenced by any wanted
//!   feed is dropped ([`to_drop`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::blob::wire::ServeRefusal;
use crate::blob::{BlobId, BlobLimits, BlobRef, HeldBlob};
use crate::identity::FeedId;
use crate::limits::{BLOB_FETCHES_IN_FLIGHT, BLOB_REFS_MAX, BLOB_RETRY_BASE, BLOB_RETRY_MAX};

/// Fetch blob `id` (`size` bytes) from `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The blob.
    pub id: BlobId,
    /// Its size, as the post said.
    pub size: u64,
    /// The peer to ask.
    pub from: FeedId,
}

/// Why a referenced blob is not fetched (now).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Over the per-blob limit: never fetched.
    #[error("blob is {size} bytes, over the {max} this node takes (blobs.max_bytes)")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// It would pass the total budget: waits.
    #[error("blob of {size} bytes waits: {held} of the {budget} budget held (blobs.budget_bytes)")]
    OverBudget {
        /// Its size.
        size: u64,
        /// Bytes held.
        held: u64,
        /// The budget.
        budget: u64,
    },
    /// The table of referenced blobs is full.
    #[error("more than {0} blobs referenced; this one is not tracked")]
    TableFull(usize),
}

/// How a fetch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Verified and stored.
    Stored,
    /// The peer refused.
    Refused(ServeRefusal),
    /// The peer sent bytes that failed verification (or lied about the size).
    Corrupt,
    /// The stream or connection failed, or timed out.
    Failed,
}

#[derive(Clone, Debug)]
struct Tracked {
    size: u64,
    /// Wanted feeds whose posts attach it.
    feeds: BTreeSet<FeedId>,
    held: bool,
    fetching: Option<FeedId>,
    failures: u32,
    not_before_ms: u64,
    /// Peers not to ask again for now.
    shunned: BTreeSet<FeedId>,
    skipped: Option<Skip>,
}

/// The fetcher's table of referenced blobs.
#[derive(Clone, Debug)]
pub struct Planner {
    limits: BlobLimits,
    blobs: BTreeMap<BlobId, Tracked>,
    in_flight: usize,
}

impl Planner {
    /// An empty table.
    pub fn new(limits: BlobLimits) -> Planner {
        Planner {
            limits,
            blobs: BTreeMap::new(),
            in_flight: 0,
        }
    }

    /// A post of wanted feed `feed` attaches `r`; `held` if the file is already here.
    pub fn referenced(&mut self, r: &BlobRef, feed: FeedId, held: bool) -> Result<(), Skip> {
        if r.size > self.limits.max_bytes {
            return Err(Skip::TooLarge {
                size: r.size,
                max: self.limits.max_bytes,
            });
        }
        if !self.blobs.contains_key(&r.id) && self.blobs.len() >= BLOB_REFS_MAX {
            return Err(Skip::TableFull(BLOB_REFS_MAX));
        }
        let t = self.blobs.entry(r.id).or_insert_with(|| Tracked {
            size: r.size,
            feeds: BTreeSet::new(),
            held,
            fetching: None,
            failures: 0,
            not_before_ms: 0,
            shunned: BTreeSet::new(),
            skipped: None,
        });
        t.feeds.insert(feed);
        t.held |= held;
        Ok(())
    }

    /// Whether `id` is referenced by a wanted feed.
    pub fn is_referenced(&self, id: &BlobId) -> bool {
        self.blobs.contains_key(id)
    }

    /// Blobs referenced and held, and referenced and missing.
    pub fn counts(&self) -> (usize, usize) {
        let held = self.blobs.values().filter(|t| t.held).count();
        (held, self.blobs.len() - held)
    }

    /// The wanted feeds are now `wanted`: references by other feeds are forgotten, and so are
    /// blobs no wanted feed references any more.
    pub fn retain_feeds(&mut self, wanted: &BTreeSet<FeedId>) {
        for t in self.blobs.values_mut() {
            t.feeds.retain(|f| wanted.contains(f));
        }
        self.blobs
            .retain(|_, t| !t.feeds.is_empty() || t.fetching.is_some());
    }

    /// `peer` connected: blobs its feed attaches may be tried at once.
    pub fn peer_up(&mut self, peer: &FeedId) {
        for t in self.blobs.values_mut() {
            if !t.held && t.fetching.is_none() && t.feeds.contains(peer) {
                t.not_before_ms = 0;
                t.shunned.remove(peer);
            }
        }
    }

    /// The fetches to start now, given the connected peers and the bytes held. Skips decided
    /// for the first time are returned beside them (to be logged once).
    pub fn next(
        &mut self,
        now_ms: u64,
        connected: &BTreeSet<FeedId>,
        held_bytes: u64,
    ) -> (Vec<Fetch>, Vec<(BlobId, Skip)>) {
        let mut fetches = Vec::new();
        let mut skips = Vec::new();
        let mut reserved: u64 = self
            .blobs
            .values()
            .filter(|t| t.fetching.is_some())
            .map(|t| t.size)
            .sum();
        for (id, t) in self.blobs.iter_mut() {
            if self.in_flight >= BLOB_FETCHES_IN_FLIGHT {
                break;
            }
            if t.held || t.fetching.is_some() || t.not_before_ms > now_ms {
                continue;
            }
            let total = held_bytes.saturating_add(reserved).saturating_add(t.size);
            if total > self.limits.budget_bytes {
                let skip = Skip::OverBudget {
                    size: t.size,
                    held: held_bytes,
                    budget: self.limits.budget_bytes,
                };
                if t.skipped != Some(skip) {
                    t.skipped = Some(skip);
                    skips.push((*id, skip));
                }
                continue;
            }
            let author = t
                .feeds
                .iter()
                .find(|f| connected.contains(f) && !t.shunned.contains(f));
            let other = || connected.iter().find(|p| !t.shunned.contains(p));
            let Some(from) = author.or_else(other).copied() else {
                if !connected.is_empty() && connected.iter().all(|p| t.shunned.contains(p)) {
                    // Every connected peer was tried: start over after a back-off.
                    t.shunned.clear();
                    t.not_before_ms = now_ms + backoff(t.failures).as_millis() as u64;
                }
                continue;
            };
            t.fetching = Some(from);
            t.skipped = None;
            self.in_flight += 1;
            reserved = reserved.saturating_add(t.size);
            fetches.push(Fetch {
                id: *id,
                size: t.size,
                from,
            });
        }
        (fetches, skips)
    }

    /// A fetch ended.
    pub fn finished(&mut self, fetch: &Fetch, outcome: &Outcome, now_ms: u64) {
        let Some(t) = self.blobs.get_mut(&fetch.id) else {
            return;
        };
        if t.fetching.take().is_some() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        match outcome {
            Outcome::Stored => {
                t.held = true;
                t.failures = 0;
                t.shunned.clear();
            }
            Outcome::Refused(ServeRefusal::Busy) | Outcome::Failed => {
                t.failures = t.failures.saturating_add(1);
                t.not_before_ms = now_ms + backoff(t.failures).as_millis() as u64;
            }
            Outcome::Refused(_) | Outcome::Corrupt => {
                t.failures = t.failures.saturating_add(1);
                t.shunned.insert(fetch.from);
            }
        }
        if t.feeds.is_empty() && t.fetching.is_none() {
            self.blobs.remove(&fetch.id);
        }
    }

    /// A referenced blob's file went away (removed by hand): fetch it again.
    pub fn lost(&mut self, id: &BlobId) {
        if let Some(t) = self.blobs.get_mut(id) {
            t.held = false;
        }
    }
}

/// Delay before the next try after `failures` failures.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    BLOB_RETRY_BASE.saturating_mul(factor).min(BLOB_RETRY_MAX)
}

/// Held blobs to drop: neither pinned nor referenced by a wanted feed.
pub fn to_drop(held: &[HeldBlob], planner: &Planner) -> Vec<BlobId> {
    held.iter()
        .filter(|b| !b.pinned && !planner.is_referenced(&b.id))
        .map(|b| b.id)
        .collect()
}

/// Whether to serve a blob of `size` bytes (`None`: not held) to a fetcher that takes at most
/// `fetcher_max` bytes, under this node's limits.
pub fn serve_decision(
    size: Option<u64>,
    fetcher_max: u64,
    limits: &BlobLimits,
) -> Result<u64, ServeRefusal> {
    let size = size.ok_or(ServeRefusal::NotHeld)?;
    // A file over this node's own limit (a limit lowered since) is not served either.
    if size > fetcher_max || size > limits.max_bytes {
        return Err(ServeRefusal::TooLarge {
            size,
            max: fetcher_max.min(limits.max_bytes),
        });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    fn blob(n: u8, size: u64) -> BlobRef {
        BlobRef {
            id: BlobId([n; 32]),
            size,
            name: None,
        }
    }

    fn set(ids: &[u8]) -> BTreeSet<FeedId> {
        ids.iter().map(|n| feed(*n)).collect()
    }

    fn limits() -> BlobLimits {
        BlobLimits {
            max_bytes: 1000,
            budget_bytes: 2500,
        }
    }

    #[test]
    fn a_referenced_blob_is_asked_of_its_author_first_then_of_others() {
        let mut p = Planner::new(limits());
        p.referenced(&blob(1, 10), feed(1), false).unwrap();
        // Nobody connected: nothing to do.
        assert!(p.next(0, &set(&[]), 0).0.is_empty());
        let (f, _) = p.next(0, &set(&[2, 1]), 0);
        assert_eq!(
            f,
            vec![Fetch {
                id: BlobId([1; 32]),
                size: 10,
                from: feed(1)
            }]
        );
        // Not asked twice while in flight.
        assert!(p.next(0, &set(&[2, 1]), 0).0.is_empty());
        // The author served bad bytes: shunned for this blob; the other peer is asked next.
        p.finished(&f[0], &Outcome::Corrupt, 0);
        let (f, _) = p.next(0, &set(&[2, 1]), 0);
        assert_eq!(f[0].from, feed(2));
        p.finished(&f[0], &Outcome::Stored, 0);
        assert!(p.next(0, &set(&[2, 1]), 0).0.is_empty());
        assert_eq!(p.counts(), (1, 0));
    }

    #[test]
    fn over_the_limit_is_never_fetched_and_over_the_budget_waits() {
        let mut p = Planner::new(limits());
        assert_eq!(
            p.referenced(&blob(1, 1001), feed(1), false),
            Err(Skip::TooLarge {
                size: 1001,
                max: 1000
            })
        );
        p.referenced(&blob(2, 1000), feed(1), false).unwrap();
        p.referenced(&blob(3, 1000), feed(1), false).unwrap();
        let (f, skips) = p.next(0, &set(&[1]), 1000);
        // 1000 held + 1000 in flight fits 2500; a third 1000 would not.
        assert_eq!(f.len(), 1);
        assert_eq!(
            skips,
            vec![(
                BlobId([3; 32]),
                Skip::OverBudget {
                    size: 1000,
                    held: 1000,
                    budget: 2500
                }
            )]
        );
        // Said once, not at every tick.
        assert!(p.next(0, &set(&[1]), 1000).1.is_empty());
    }

    #[test]
    fn failures_back_off_and_are_bounded() {
        let mut p = Planner::new(limits());
        p.referenced(&blob(1, 10), feed(1), false).unwrap();
        let mut now = 0;
        for failures in 1..=30u32 {
            let (f, _) = p.next(now, &set(&[1]), 0);
            assert_eq!(f.len(), 1, "try {failures}");
            p.finished(&f[0], &Outcome::Failed, now);
            let wait = backoff(failures).as_millis() as u64;
            assert!(p.next(now + wait - 1, &set(&[1]), 0).0.is_empty());
            now += wait;
        }
        assert_eq!(backoff(30), BLOB_RETRY_MAX);
        assert_eq!(backoff(1), BLOB_RETRY_BASE);
    }

    #[test]
    fn at_most_so_many_fetches_run_at_once() {
        let mut p = Planner::new(BlobLimits {
            max_bytes: 10,
            budget_bytes: 1 << 40,
        });
        for n in 0..(BLOB_FETCHES_IN_FLIGHT as u8 + 3) {
            p.referenced(&blob(n, 10), feed(1), false).unwrap();
        }
        let (f, _) = p.next(0, &set(&[1]), 0);
        assert_eq!(f.len(), BLOB_FETCHES_IN_FLIGHT);
        p.finished(&f[0], &Outcome::Stored, 0);
        assert_eq!(p.next(0, &set(&[1]), 0).0.len(), 1);
    }

    #[test]
    fn when_every_peer_refused_it_starts_over_after_a_back_off() {
        let mut p = Planner::new(limits());
        p.referenced(&blob(1, 10), feed(1), false).unwrap();
        let (f, _) = p.next(0, &set(&[1]), 0);
        p.finished(&f[0], &Outcome::Refused(ServeRefusal::NotHeld), 0);
        assert!(p.next(0, &set(&[1]), 0).0.is_empty());
        assert!(
            p.next(BLOB_RETRY_BASE.as_millis() as u64, &set(&[1]), 0)
                .0
                .len()
                == 1
        );
    }

    #[test]
    fn unfollowed_feeds_blobs_are_dropped_unless_pinned_or_still_referenced() {
        let mut p = Planner::new(limits());
        p.referenced(&blob(1, 10), feed(1), true).unwrap();
        p.referenced(&blob(2, 10), feed(1), true).unwrap();
        p.referenced(&blob(2, 10), feed(2), true).unwrap();
        let held = [
            HeldBlob {
                id: BlobId([1; 32]),
                size: 10,
                pinned: false,
            },
            HeldBlob {
                id: BlobId([2; 32]),
                size: 10,
                pinned: false,
            },
            HeldBlob {
                id: BlobId([3; 32]),
                size: 10,
                pinned: true,
            },
            HeldBlob {
                id: BlobId([4; 32]),
                size: 10,
                pinned: false,
            },
        ];
        assert_eq!(to_drop(&held, &p), vec![BlobId([4; 32])]);
        p.retain_feeds(&set(&[2]));
        assert_eq!(to_drop(&held, &p), vec![BlobId([1; 32]), BlobId([4; 32])]);
        p.retain_feeds(&set(&[]));
        assert_eq!(to_drop(&held, &p).len(), 3);
    }

    #[test]
    fn serving_refuses_what_is_missing_or_too_large() {
        let l = limits();
        assert_eq!(serve_decision(None, 100, &l), Err(ServeRefusal::NotHeld));
        assert_eq!(
            serve_decision(Some(101), 100, &l),
            Err(ServeRefusal::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(
            serve_decision(Some(1001), u64::MAX, &l),
            Err(ServeRefusal::TooLarge {
                size: 1001,
                max: 1000
            })
        );
        assert_eq!(serve_decision(Some(100), 100, &l), Ok(100));
    }
}
