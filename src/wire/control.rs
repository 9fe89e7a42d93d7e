//! The control protocol: newline-delimited JSON, one request and one response per line.

use serde::{Deserialize, Serialize};

/// File name of the control socket inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// This node's id.
    Whoami,
    /// Append a post.
    Post {
        /// The text.
        text: String,
        /// The message replied to.
        reply_to: Option<String>,
    },
    /// One feed, newest first (default: the own feed).
    Feed {
        /// Whose.
        id: Option<String>,
        /// How many.
        limit: Option<usize>,
        /// Start below this message (the next page).
        #[serde(default)]
        before: Option<String>,
    },
    /// Posts of the own and followed feeds, newest first.
    Timeline {
        /// How many.
        limit: Option<usize>,
        /// Start below this message (the next page).
        #[serde(default)]
        before: Option<String>,
    },
    /// Follow someone.
    Follow {
        /// Whom.
        id: String,
        /// Where to dial them.
        addr: Option<String>,
    },
    /// Unfollow someone.
    Unfollow {
        /// Whom.
        id: String,
    },
    /// Block someone.
    Block {
        /// Whom.
        id: String,
    },
    /// Lift a block.
    Unblock {
        /// Whom.
        id: String,
    },
    /// The rolodex.
    Contacts,
    /// Supervision tree, connections, feeds held, rolodex size.
    Status,
    /// Set (or clear, with `None`) this node's status line, shown to those who follow it.
    PresenceSet {
        /// The text.
        text: Option<String>,
    },
    /// On an invite-only switchboard: make an invite code.
    InviteCreate {
        /// Hours it stays valid (default: a week).
        hours: Option<u64>,
    },
    /// On an invite-only switchboard: the outstanding invite codes.
    InviteList,
    /// On an invite-only switchboard: withdraw an outstanding code.
    InviteRevoke {
        /// The code.
        code: String,
    },
    /// On an invite-only switchboard: the members (keys its codes admitted).
    Members,
    /// On an invite-only switchboard: forget a member and close its session.
    MemberRemove {
        /// The member's id.
        id: String,
    },
    /// Dial a peer now: `HOST:PORT`, or `ID@HOST:PORT` to pin its key.
    Connect {
        /// Where.
        target: String,
    },
    /// Publish an about entry for the own feed (the fields given; the others stay).
    ProfileSet {
        /// The display name.
        name: Option<String>,
        /// The description.
        description: Option<String>,
    },
    /// A feed's profile (default: the own one).
    Profile {
        /// Whose.
        id: Option<String>,
    },
    /// Give a contact a local name (never published), or clear it with `None`.
    Petname {
        /// Whom.
        id: String,
        /// The name.
        petname: Option<String>,
    },
    /// The thread a message belongs to: its root and the replies held.
    Thread {
        /// Any message of the thread.
        id: String,
    },
    /// Posts that mention this node, newest first.
    Mentions {
        /// How many.
        limit: Option<usize>,
        /// Start below this message (the next page).
        #[serde(default)]
        before: Option<String>,
    },
    /// Publish a short reaction to a message.
    React {
        /// The message.
        id: String,
        /// The reaction (an emoji or a word).
        text: String,
    },
    /// This node's contact card.
    Card {
        /// More `HOST:PORT` addresses to put in it (e.g. a name or a forwarded port).
        addrs: Vec<String>,
    },
    /// Follow the node a contact card names: its addresses, its switchboards and their keys.
    FollowCard {
        /// The card (`kith:…`).
        card: String,
    },
    /// The switchboards this daemon remembers and links to: pinned key, invite, state.
    Switchboards,
    /// Forget a remembered switchboard (`HOST:PORT`, or `@ID` for its key) and close its link.
    SwitchboardForget {
        /// Which.
        target: String,
    },
    /// Seal a private message to up to 7 recipients (and to this node) and publish it.
    Dm {
        /// The recipients' ids.
        to: Vec<String>,
        /// The text.
        text: String,
    },
    /// The private conversations this node can read, most recent first.
    Inbox {
        /// How many conversations.
        limit: Option<usize>,
    },
    /// The private messages exchanged with one id, oldest first.
    DmThread {
        /// Whose.
        id: String,
        /// How many messages (the latest ones).
        limit: Option<usize>,
    },
    /// Delete one of this node's own messages: followers drop its payload.
    Delete {
        /// The message.
        id: String,
    },
    /// Append a post with files attached (`kith post --attach FILE`): each file is stored as a
    /// blob first, and the post refers to them by hash.
    PostAttached {
        /// The text (may be empty when something is attached).
        text: String,
        /// The message replied to.
        reply_to: Option<String>,
        /// Absolute paths of the files to attach.
        attach: Vec<String>,
    },
    /// Store a file as a blob (`kith blob add FILE`).
    BlobAdd {
        /// Its absolute path.
        path: String,
    },
    /// Where a held blob's verified file is (`kith blob get ID`).
    BlobGet {
        /// The blob's id.
        id: String,
    },
    /// The blobs held, the limits, and refusals peers sent about blobs served from here.
    BlobLs,
}

/// The daemon's answer: `{"ok":true,"data":…}` or `{"ok":false,"error":"…"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// A sentence saying what went wrong and what to do, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A success.
    pub fn ok(data: serde_json::Value) -> Self {
        Response {
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    /// A failure.
    pub fn err(error: impl std::fmt::Display) -> Self {
        Response {
            ok: false,
            data: None,
            error: Some(error.to_string()),
        }
    }
}
