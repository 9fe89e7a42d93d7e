//! What a payload says: posts, follows, unfollows, about records and reactions.
//!
//! Postcard encodes an enum by variant index, so variants are only ever appended: an entry signed
//! before a variant existed still decodes to what it said. [`Content::Post`] is the first form of
//! a post (text and the message it answers); [`Content::Text`] is the form written now, with the
//! thread's root and branch (as SSB's `root` and `branch`) and the feeds it mentions. Both have
//! [`ContentType::Post`].
//!
//! Blocks are deliberately absent: a block is a local decision kept in the rolodex and never
//! published, so that blocking someone does not tell them, or anyone, that you did.

use serde::{Deserialize, Serialize};

use crate::blob::BlobRef;
use crate::feed::{FeedError, MsgId};
use crate::identity::FeedId;
use crate::limits::{ATTACHMENTS_MAX, BLOB_BYTES_CEILING};
use crate::limits::{
    DESCRIPTION_BYTES_MAX, MENTIONS_MAX, NAME_BYTES_MAX, PAYLOAD_BYTES_MAX, POST_TEXT_BYTES_MAX,
    REACTION_BYTES_MAX,
};

/// The kind of payload, signed in the header so a reader can filter without the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentType {
    /// A post.
    Post,
    /// Start replicating someone.
    Follow,
    /// Stop replicating someone.
    Unfollow,
    /// A name and description for a feed.
    About,
    /// A short reaction (an emoji or a word) to a message.
    React,
    /// A private message: sealed to its recipients and its author ([`crate::feed::private`]).
    Private,
    /// The author takes back one of their earlier messages: its payload is dropped everywhere.
    Delete,
}

/// A payload, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A post, optionally a reply to another message.
    Post {
        /// The text.
        text: String,
        /// The message replied to.
        reply_to: Option<MsgId>,
    },
    /// Follow a feed.
    Follow {
        /// Whom.
        id: FeedId,
    },
    /// Unfollow a feed.
    Unfollow {
        /// Whom.
        id: FeedId,
    },
    /// Describe a feed (usually one's own).
    About {
        /// The feed described.
        id: FeedId,
        /// A display name.
        name: Option<String>,
        /// A description.
        description: Option<String>,
    },
    /// A post, as written now: text, its place in a thread, and the feeds it mentions.
    Text {
        /// The text.
        text: String,
        /// The first message of the thread this post answers; `None` for a new thread.
        root: Option<MsgId>,
        /// The message this post answers directly (the root itself, or a reply in its thread).
        branch: Option<MsgId>,
        /// The feeds the text mentions (`@name` or `@id`, resolved to ids when posting).
        mentions: Vec<FeedId>,
    },
    /// A short reaction to a message.
    React {
        /// The message reacted to.
        msg: MsgId,
        /// The reaction: an emoji or a word.
        text: String,
    },
    /// A private message: key slots and a sealed body, opaque to all but its recipients and its
    /// author (the layout and its checks are in [`crate::feed::private`]).
    Private {
        /// The sealed bytes.
        sealed: Vec<u8>,
    },
    /// Delete an earlier message of the same feed: nodes drop its payload and keep its signed
    /// header, so the feed still validates.
    Delete {
        /// The message taken back.
        msg: MsgId,
    },
    /// A post with attached blobs (images, files) by hash: a [`Content::Text`] plus the blobs,
    /// which followers fetch from the peers that hold them (see [`crate::blob`]). The text may
    /// be empty when something is attached.
    Attached {
        /// The text.
        text: String,
        /// The thread's first message, as in [`Content::Text`].
        root: Option<MsgId>,
        /// The message answered, as in [`Content::Text`].
        branch: Option<MsgId>,
        /// The feeds the text mentions.
        mentions: Vec<FeedId>,
        /// The attached blobs (at least one, at most [`ATTACHMENTS_MAX`]).
        blobs: Vec<BlobRef>,
    },
}

impl Content {
    /// The content type of this payload.
    pub fn content_type(&self) -> ContentType {
        match self {
            Content::Post { .. } => ContentType::Post,
            Content::Follow { .. } => ContentType::Follow,
            Content::Unfollow { .. } => ContentType::Unfollow,
            Content::About { .. } => ContentType::About,
            Content::Text { .. } => ContentType::Post,
            Content::React { .. } => ContentType::React,
            Content::Private { .. } => ContentType::Private,
            Content::Delete { .. } => ContentType::Delete,
            Content::Attached { .. } => ContentType::Post,
        }
    }

    /// Check field bounds; a post must say something.
    pub fn validate(&self) -> Result<(), FeedError> {
        let too_long = |what: &str, len: usize, max: usize| {
            FeedError::ContentInvalid(format!("{what} is {len} bytes; the most allowed is {max}"))
        };
        match self {
            Content::Post { text, .. } if text.trim().is_empty() => {
                Err(FeedError::ContentInvalid("a post needs some text".into()))
            }
            Content::Post { text, .. } if text.len() > POST_TEXT_BYTES_MAX => {
                Err(too_long("post text", text.len(), POST_TEXT_BYTES_MAX))
            }
            Content::About { name: Some(n), .. } if n.len() > NAME_BYTES_MAX => {
                Err(too_long("name", n.len(), NAME_BYTES_MAX))
            }
            Content::About {
                description: Some(d),
                ..
            } if d.len() > DESCRIPTION_BYTES_MAX => {
                Err(too_long("description", d.len(), DESCRIPTION_BYTES_MAX))
            }
            Content::Text {
                text,
                root,
                branch,
                mentions,
            } => {
                if text.trim().is_empty() {
                    return Err(FeedError::ContentInvalid("a post needs some text".into()));
                }
                if text.len() > POST_TEXT_BYTES_MAX {
                    return Err(too_long("post text", text.len(), POST_TEXT_BYTES_MAX));
                }
                if root.is_some() != branch.is_some() {
                    return Err(FeedError::ReplyIncomplete);
                }
                if mentions.len() > MENTIONS_MAX {
                    return Err(FeedError::TooManyMentions {
                        len: mentions.len(),
                        max: MENTIONS_MAX,
                    });
                }
                let mut seen = std::collections::BTreeSet::new();
                if let Some(twice) = mentions.iter().find(|m| !seen.insert(**m)) {
                    return Err(FeedError::MentionRepeated(*twice));
                }
                Ok(())
            }
            Content::React { text, .. } => check_reaction(text),
            Content::Private { sealed } => crate::feed::private::check_shape(sealed),
            Content::Attached {
                text,
                root,
                branch,
                mentions,
                blobs,
            } => check_attached(text, root, branch, mentions, blobs),
            _ => Ok(()),
        }
    }

    /// The message this content answers or reacts to, if any (a post's branch, a first-form
    /// post's `reply_to`, a reaction's message).
    pub fn refers_to(&self) -> Option<MsgId> {
        match self {
            Content::Post { reply_to, .. } => *reply_to,
            Content::Text { branch, .. } => *branch,
            Content::Attached { branch, .. } => *branch,
            Content::React { msg, .. } => Some(*msg),
            _ => None,
        }
    }

    /// A post's text, in either form.
    pub fn post_text(&self) -> Option<&str> {
        match self {
            Content::Post { text, .. } | Content::Text { text, .. } => Some(text),
            Content::Attached { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Encode as a payload.
    pub fn encode(&self) -> Result<Vec<u8>, FeedError> {
        self.validate()?;
        let bytes =
            postcard::to_stdvec(self).map_err(|e| FeedError::PayloadMalformed(e.to_string()))?;
        if bytes.len() > PAYLOAD_BYTES_MAX {
            return Err(FeedError::PayloadTooLarge {
                len: bytes.len(),
                max: PAYLOAD_BYTES_MAX,
            });
        }
        Ok(bytes)
    }

    /// Decode a payload, refusing trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Content, FeedError> {
        let (content, rest) = postcard::take_from_bytes::<Content>(bytes)
            .map_err(|e| FeedError::PayloadMalformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FeedError::PayloadMalformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(content)
    }
}

/// Check a reaction: some visible text, at most [`REACTION_BYTES_MAX`] bytes, one line, no
/// control characters (it is shown as a count label under a post).
pub fn check_reaction(text: &str) -> Result<(), FeedError> {
    let bad = |why: &str| FeedError::ReactionInvalid(why.to_string());
    if text.trim().is_empty() {
        return Err(bad("a reaction needs some text, e.g. 👍"));
    }
    if text.len() > REACTION_BYTES_MAX {
        return Err(bad(&format!(
            "a reaction is {} bytes; the most allowed is {REACTION_BYTES_MAX}",
            text.len()
        )));
    }
    if text.chars().any(crate::feed::names::is_hidden) {
        return Err(bad(
            "a reaction may not hold control or direction characters",
        ));
    }
    Ok(())
}

/// Check an [`Content::Attached`] post: the bounds of a [`Content::Text`] (the text may be empty
/// when something is attached), one to [`ATTACHMENTS_MAX`] blobs, each named plainly and no
/// larger than any node accepts ([`BLOB_BYTES_CEILING`]).
fn check_attached(
    text: &str,
    root: &Option<MsgId>,
    branch: &Option<MsgId>,
    mentions: &[FeedId],
    blobs: &[BlobRef],
) -> Result<(), FeedError> {
    if blobs.is_empty() || blobs.len() > ATTACHMENTS_MAX {
        return Err(FeedError::ContentInvalid(format!(
            "a post attaches 1 to {ATTACHMENTS_MAX} files, not {}",
            blobs.len()
        )));
    }
    for blob in blobs {
        blob.validate()
            .map_err(|e| FeedError::ContentInvalid(e.to_string()))?;
        if blob.size > BLOB_BYTES_CEILING {
            return Err(FeedError::ContentInvalid(format!(
                "an attachment of {} bytes is over the {BLOB_BYTES_CEILING} any node accepts",
                blob.size
            )));
        }
    }
    let text = if text.trim().is_empty() { "-" } else { text };
    Content::Text {
        text: text.to_string(),
        root: *root,
        branch: *branch,
        mentions: mentions.to_vec(),
    }
    .validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(root: Option<MsgId>, branch: Option<MsgId>, mentions: Vec<FeedId>) -> Content {
        Content::Text {
            text: "hello".into(),
            root,
            branch,
            mentions,
        }
    }

    #[test]
    fn first_form_entries_still_decode_as_they_were_signed() {
        // Bytes as a node before `Text` and `React` existed wrote them.
        let old = Content::Post {
            text: "hi".into(),
            reply_to: Some(MsgId([7; 32])),
        };
        let bytes = postcard::to_stdvec(&old).unwrap();
        assert_eq!(bytes[0], 0, "Post keeps variant index 0");
        assert_eq!(Content::decode(&bytes).unwrap(), old);
        let about = Content::About {
            id: FeedId([1; 32]),
            name: Some("a".into()),
            description: None,
        };
        let bytes = about.encode().unwrap();
        assert_eq!(bytes[0], 3, "About keeps variant index 3");
        assert_eq!(Content::decode(&bytes).unwrap(), about);
    }

    #[test]
    fn new_content_round_trips_and_keeps_its_type() {
        let m = MsgId([3; 32]);
        for c in [
            text(None, None, vec![FeedId([2; 32])]),
            text(Some(m), Some(m), vec![]),
            Content::React {
                msg: m,
                text: "👍".into(),
            },
        ] {
            let bytes = c.encode().unwrap();
            assert_eq!(Content::decode(&bytes).unwrap(), c);
        }
        assert_eq!(text(None, None, vec![]).content_type(), ContentType::Post);
    }

    #[test]
    fn malformed_new_content_is_refused_by_name() {
        let m = MsgId([3; 32]);
        assert_eq!(
            text(Some(m), None, vec![]).validate(),
            Err(FeedError::ReplyIncomplete)
        );
        assert_eq!(
            text(None, Some(m), vec![]).validate(),
            Err(FeedError::ReplyIncomplete)
        );
        let many: Vec<FeedId> = (0..=MENTIONS_MAX as u8).map(|i| FeedId([i; 32])).collect();
        assert!(matches!(
            text(None, None, many).validate(),
            Err(FeedError::TooManyMentions { .. })
        ));
        let twice = vec![FeedId([5; 32]), FeedId([5; 32])];
        assert_eq!(
            text(None, None, twice).validate(),
            Err(FeedError::MentionRepeated(FeedId([5; 32])))
        );
        for bad in [
            "",
            "   ",
            "a\nb",
            "\u{202e}olleh",
            &"x".repeat(REACTION_BYTES_MAX + 1),
        ] {
            let c = Content::React {
                msg: m,
                text: bad.to_string(),
            };
            assert!(
                matches!(c.validate(), Err(FeedError::ReactionInvalid(_))),
                "{bad:?}"
            );
            assert!(c.encode().is_err());
        }
    }
}
