//! Deletion rules: which message a delete entry may name, and the proof that lets an entry travel
//! without its payload. Sans-IO.
//!
//! A [`Content::Delete`] entry names one earlier message of the same feed. Every node that holds
//! the message drops its payload and keeps the signed header, so the chain of hashes and
//! signatures still validates. From then on the entry travels without its payload, together with
//! a [`Tombstone`]: the delete entry itself (signed by the same author, with its payload). A node
//! receiving an entry without its payload accepts it only with a tombstone that checks here
//! ([`check_tombstone`]); otherwise the entry is refused with [`FeedError::PayloadMissing`]. So
//! a relaying node can never strip payloads that their author did not take back.

use serde::{Deserialize, Serialize};

use crate::feed::{check_entry, Checked, Content, ContentType, Entry, FeedError, Header, MsgId};

/// The delete entry that covers a payload-less entry, as it travels and is kept beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The delete entry's exact signed bytes.
    pub entry: Entry,
    /// Its payload ([`Content::Delete`]).
    pub payload: Vec<u8>,
}

/// Whether messages of this type may be deleted: posts, reactions and private messages. Follows,
/// unfollows and abouts steer replication and names, and a delete is final.
pub fn deletable(kind: ContentType) -> bool {
    matches!(
        kind,
        ContentType::Post | ContentType::React | ContentType::Private
    )
}

/// Check a delete entry against the message it names, as this node holds it: `target` is that
/// message's header (`None`: not held), `payload_held` whether its payload is still here.
pub fn check_delete(
    delete: &Header,
    msg: MsgId,
    target: Option<&Header>,
    payload_held: bool,
) -> Result<(), FeedError> {
    let refused = |why: &str| FeedError::DeleteRefused {
        msg,
        why: why.to_string(),
    };
    let Some(target) = target else {
        return Err(refused("it is not held here"));
    };
    if target.author != delete.author {
        return Err(FeedError::DeleteNotOwn {
            msg,
            author: target.author,
        });
    }
    if target.seq >= delete.seq {
        return Err(refused("a delete can only name an earlier message"));
    }
    if !deletable(target.content_type) {
        return Err(refused(
            "only posts, reactions and private messages can be deleted",
        ));
    }
    if !payload_held {
        return Err(refused("it is already deleted"));
    }
    Ok(())
}

/// Check that `tombstone` proves `target` (an entry that arrived without its payload) was
/// deleted by its author: a valid, strictly verified entry of the same feed, later in it, whose
/// content deletes exactly `target`.
pub fn check_tombstone(
    target: &Checked,
    tombstone: &Tombstone,
    now_ms: u64,
) -> Result<(), FeedError> {
    let missing = || FeedError::PayloadMissing {
        author: target.header.author,
        seq: target.header.seq,
    };
    let delete = check_entry(
        tombstone.entry.clone(),
        Some(tombstone.payload.clone()),
        Some(target.header.author),
        now_ms,
    )
    .map_err(|_| missing())?;
    delete.verify_signature().map_err(|_| missing())?;
    if delete.header.seq <= target.header.seq || !deletable(target.header.content_type) {
        return Err(missing());
    }
    match Content::decode(&tombstone.payload) {
        Ok(Content::Delete { msg }) if msg == target.id => Ok(()),
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{check_entry, signed_next as append};
    use crate::identity::Identity;

    fn post(text: &str) -> Content {
        Content::Text {
            text: text.into(),
            root: None,
            branch: None,
            mentions: vec![],
        }
    }

    #[test]
    fn a_tombstone_covers_exactly_the_message_its_author_deleted() {
        let a = Identity::generate();
        let mut head = None;
        let (e1, _, _) = append(&a, &mut head, post("regret"));
        let (e2, _, _) = append(&a, &mut head, post("keep"));
        let (d, dp, dh) = append(&a, &mut head, Content::Delete { msg: e1.id() });
        let now = crate::feed::now_ms();
        let t1 = check_entry(e1.clone(), None, Some(a.id()), now).unwrap();
        let t2 = check_entry(e2.clone(), None, Some(a.id()), now).unwrap();
        let tomb = Tombstone {
            entry: d.clone(),
            payload: dp.clone(),
        };
        assert_eq!(check_tombstone(&t1, &tomb, now), Ok(()));
        // The same tombstone does not cover another message of the feed.
        assert!(matches!(
            check_tombstone(&t2, &tomb, now),
            Err(FeedError::PayloadMissing { seq: 2, .. })
        ));
        // A tombstone with a doctored payload, or from another author, covers nothing.
        let doctored = Tombstone {
            entry: d.clone(),
            payload: Content::Delete { msg: e2.id() }.encode().unwrap(),
        };
        assert!(check_tombstone(&t2, &doctored, now).is_err());
        let b = Identity::generate();
        let mut bhead = None;
        let (bd, bdp, _) = append(&b, &mut bhead, post("x"));
        let forged = Tombstone {
            entry: bd,
            payload: bdp,
        };
        assert!(check_tombstone(&t1, &forged, now).is_err());
        // The rules for the delete entry itself.
        let h1 = e1.header().unwrap();
        assert_eq!(check_delete(&dh, e1.id(), Some(&h1), true), Ok(()));
        assert!(matches!(
            check_delete(&dh, e1.id(), Some(&h1), false),
            Err(FeedError::DeleteRefused { .. })
        ));
        assert!(matches!(
            check_delete(&dh, e1.id(), None, true),
            Err(FeedError::DeleteRefused { .. })
        ));
        let bh = Header {
            author: b.id(),
            ..h1.clone()
        };
        assert_eq!(
            check_delete(&dh, e1.id(), Some(&bh), true),
            Err(FeedError::DeleteNotOwn {
                msg: e1.id(),
                author: b.id()
            })
        );
        let later = Header {
            seq: dh.seq + 1,
            ..h1.clone()
        };
        assert!(check_delete(&dh, e1.id(), Some(&later), true).is_err());
        let follow = Header {
            content_type: ContentType::Follow,
            ..h1
        };
        assert!(check_delete(&dh, e1.id(), Some(&follow), true).is_err());
    }
}
