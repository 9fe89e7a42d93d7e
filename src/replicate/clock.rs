//! Clocks (feed → latest sequence held, for the feeds wanted) and what each side remembers of
//! the last exchange with a peer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::FeedId;
use crate::replicate::Note;

/// A clock: the wanted feeds and the latest sequence held of each.
pub type Clock = BTreeMap<FeedId, u64>;

/// What one side remembers of its last exchange with a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMemory {
    /// The clock we last sent them.
    pub sent: Clock,
    /// The clock they last sent us.
    pub received: Clock,
}

/// BLAKE3 over the clock in feed order.
pub fn digest(clock: &Clock) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for (feed, seq) in clock {
        hasher.update(&feed.0);
        hasher.update(&seq.to_be_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// The notes that turn `old` into `new`: changed or added feeds, and withdrawn ones.
pub(super) fn delta(old: &Clock, new: &Clock) -> Vec<Note> {
    let mut notes: Vec<Note> = new
        .iter()
        .filter(|(feed, seq)| old.get(feed) != Some(seq))
        .map(|(feed, seq)| Note {
            feed: *feed,
            seq: *seq,
            want: true,
        })
        .collect();
    notes.extend(
        old.keys()
            .filter(|feed| !new.contains_key(feed))
            .map(|feed| Note {
                feed: *feed,
                seq: 0,
                want: false,
            }),
    );
    notes
}

/// Every note of a clock.
pub(super) fn full(clock: &Clock) -> Vec<Note> {
    clock
        .iter()
        .map(|(feed, seq)| Note {
            feed: *feed,
            seq: *seq,
            want: true,
        })
        .collect()
}

/// Apply notes to a view of the sender's clock.
pub(super) fn apply(view: &mut Clock, notes: &[Note]) {
    for note in notes {
        if note.want {
            view.insert(note.feed, note.seq);
        } else {
            view.remove(&note.feed);
        }
    }
}
