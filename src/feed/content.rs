//! What a payload says: posts, follows, unfollows and about records.
//!
//! Blocks are deliberately absent: a block is a local decision kept in the rolodex and never
//! published, so that blocking someone does not tell them, or anyone, that you did.

use serde::{Deserialize, Serialize};

use crate::feed::{FeedError, MsgId};
use crate::identity::FeedId;
use crate::limits::{
    DESCRIPTION_BYTES_MAX, NAME_BYTES_MAX, PAYLOAD_BYTES_MAX, POST_TEXT_BYTES_MAX,
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
}

impl Content {
    /// The content type of this payload.
    pub fn content_type(&self) -> ContentType {
        match self {
            Content::Post { .. } => ContentType::Post,
            Content::Follow { .. } => ContentType::Follow,
            Content::Unfollow { .. } => ContentType::Unfollow,
            Content::About { .. } => ContentType::About,
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
            _ => Ok(()),
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
