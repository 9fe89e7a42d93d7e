//! What entries and contacts look like to clients (JSON), separate from how they are stored.

use serde::Serialize;

use crate::daemon::peer::Via;
use crate::daemon::uplink::{Outcome, Seen};
use crate::feed::{Content, MsgId};
use crate::identity::FeedId;
use crate::rolodex::RolodexEntry;
use crate::store::StoredEntry;

/// One entry, for `feed` and `timeline`.
#[derive(Clone, Debug, Serialize)]
pub struct EntryView {
    /// Message id.
    pub id: String,
    /// Author id.
    pub author: String,
    /// How the author is shown: petname, published name (with the short id beside it when it
    /// collides with another), or the short id.
    pub author_name: String,
    /// Sequence in the author's feed.
    pub seq: u64,
    /// Author's timestamp (ms since the epoch).
    pub timestamp_ms: u64,
    /// `post`, `follow`, `unfollow`, `about`, `react`, `private` (sealed), `delete`, or
    /// `deleted` when its author deleted it (the payload is gone; the signed header stays).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Post text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The message a post replies to (its branch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The first message of the thread a reply belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// How the author of the message replied to is shown, when it is held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to_author: Option<String>,
    /// The first words of the message replied to, when it is held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to_excerpt: Option<String>,
    /// The feeds a post mentions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// The message a reaction is to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reacts_to: Option<String>,
    /// A reaction's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    /// The reactions to this message, most given first (each counted once per feed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionCount>,
    /// The id a follow, unfollow or about names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// About name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// About description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The message a delete entry takes back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes: Option<String>,
    /// The blobs a post attaches (`kith blob get ID` writes one out once it is held).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentView>,
}

/// One blob a post attaches.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AttachmentView {
    /// The blob's id (`&…b3`).
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
    /// The attached file's name, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One reaction and how many feeds gave it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReactionCount {
    /// The reaction.
    pub text: String,
    /// How many feeds gave it.
    pub count: u32,
}

impl EntryView {
    /// The fields a post shows, with or without attachments.
    fn post(
        &mut self,
        text: &str,
        root: &Option<MsgId>,
        branch: &Option<MsgId>,
        mentions: &[FeedId],
    ) {
        self.kind = "post";
        self.text = Some(text.to_string());
        self.reply_to = branch.map(|r| r.to_string());
        self.root = root.map(|r| r.to_string());
        self.mentions = mentions.iter().map(ToString::to_string).collect();
    }
}

impl From<&StoredEntry> for EntryView {
    fn from(e: &StoredEntry) -> Self {
        let mut view = EntryView {
            id: e.id.to_string(),
            author: e.header.author.to_string(),
            author_name: e.header.author.short(),
            seq: e.header.seq,
            timestamp_ms: e.header.timestamp_ms,
            kind: "deleted",
            text: None,
            reply_to: None,
            root: None,
            reply_to_author: None,
            reply_to_excerpt: None,
            mentions: Vec::new(),
            reacts_to: None,
            reaction: None,
            reactions: Vec::new(),
            contact: None,
            name: None,
            description: None,
            deletes: None,
            attachments: Vec::new(),
        };
        match &e.content {
            Some(Content::Post { text, reply_to }) => {
                view.kind = "post";
                view.text = Some(text.clone());
                view.reply_to = reply_to.map(|r| r.to_string());
            }
            Some(Content::Follow { id }) => {
                (view.kind, view.contact) = ("follow", Some(id.to_string()))
            }
            Some(Content::Unfollow { id }) => {
                (view.kind, view.contact) = ("unfollow", Some(id.to_string()))
            }
            Some(Content::About {
                id,
                name,
                description,
            }) => {
                view.kind = "about";
                view.contact = Some(id.to_string());
                view.name = name.clone();
                view.description = description.clone();
            }
            Some(Content::Text {
                text,
                root,
                branch,
                mentions,
            }) => view.post(text, root, branch, mentions),
            Some(Content::React { msg, text }) => {
                view.kind = "react";
                view.reacts_to = Some(msg.to_string());
                view.reaction = Some(text.clone());
            }
            // Opaque here: `kith inbox` and `kith dm --thread` open it for its readers.
            Some(Content::Private { .. }) => view.kind = "private",
            Some(Content::Delete { msg }) => {
                view.kind = "delete";
                view.deletes = Some(msg.to_string());
            }
            Some(Content::Attached {
                text,
                root,
                branch,
                mentions,
                blobs,
            }) => {
                view.post(text, root, branch, mentions);
                view.attachments = blobs
                    .iter()
                    .map(|b| AttachmentView {
                        id: b.id.to_string(),
                        size: b.size,
                        name: b.name.clone(),
                    })
                    .collect();
            }
            None => {}
        }
        view
    }
}

/// One rolodex entry, for `contacts`.
#[derive(Clone, Debug, Serialize)]
pub struct ContactView {
    /// Their id.
    pub id: String,
    /// Local name.
    pub petname: Option<String>,
    /// Their own name.
    pub name: Option<String>,
    /// How they are shown (petname, name, `name (@short)` when it collides, or the short id).
    pub label: String,
    /// Address hints.
    pub addrs: Vec<String>,
    /// Switchboards they use.
    pub switchboards: Vec<String>,
    /// Followed.
    pub following: bool,
    /// Blocked.
    pub blocked: bool,
    /// Last connection (ms since the epoch).
    pub last_seen_ms: Option<u64>,
    /// Latest sequence held.
    pub latest_seq: u64,
    /// Whether a switchboard says they are online now.
    pub online: bool,
    /// Their status line, if online and set.
    pub status: Option<String>,
    /// Online since (ms since the epoch), as the switchboard says.
    pub online_since_ms: Option<u64>,
    /// The connection with them, if one is up: `direct` or `relayed` (through a switchboard).
    pub connection: Option<&'static str>,
    /// How the last introduction this node asked for them ended, if one was asked.
    pub introduction: Option<Outcome>,
}

impl ContactView {
    /// Add what the switchboards say about this contact.
    pub fn with_presence(mut self, seen: Option<Seen>) -> Self {
        self.online = seen.is_some();
        self.online_since_ms = seen.as_ref().map(|m| m.since_ms);
        self.status = seen.and_then(|m| m.status);
        self
    }

    /// Add how this node reaches them: the live connection's path, and the last introduction.
    pub fn with_reach(mut self, via: Option<Via>, introduction: Option<Outcome>) -> Self {
        self.connection = via.map(|v| if v.relayed { "relayed" } else { "direct" });
        self.introduction = introduction;
        self
    }
}

impl From<&RolodexEntry> for ContactView {
    fn from(e: &RolodexEntry) -> Self {
        ContactView {
            id: e.id.to_string(),
            petname: e.petname.clone(),
            name: e.name.clone(),
            label: e.id.short(),
            addrs: e.addrs.clone(),
            switchboards: e.switchboards.clone(),
            following: e.following,
            blocked: e.blocked,
            last_seen_ms: e.last_seen_ms,
            latest_seq: e.latest_seq,
            online: false,
            status: None,
            online_since_ms: None,
            connection: None,
            introduction: None,
        }
    }
}
