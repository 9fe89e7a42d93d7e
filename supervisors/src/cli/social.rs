//! The social commands: `profile`, `thread`, `mentions`, `react`, `card`, `identity export`,
//! and how their answers (and feeds and timelines) read as text.
//!
//! Everything shown here came from other people's feeds: names, posts and reactions are cleaned
//! of control and direction characters before they reach the terminal
//! ([`kith::feed::names`]), so a post cannot rewrite the screen or pass for someone else.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kith::feed::names::{clean, is_hidden};
use kith::identity::Identity;
use kith::wire::control::Request;
use serde_json::Value;

use crate::cli::args::JsonFlag;
use crate::cli::{client, output};

/// Indentation shown at most in a thread (deeper replies stay at this depth, marked).
const THREAD_INDENT_MAX: usize = 8;
/// Bytes of a recovery phrase read at most from standard input.
const PHRASE_BYTES_MAX: u64 = 1024;

/// The social commands (flattened into the top level).
#[derive(Debug, Subcommand)]
pub enum SocialCommand {
    /// Show a profile (default: yours): name, description, posts, follows, whether you follow
    /// each other. `kith profile set --name NAME --description TEXT` publishes yours.
    #[command(args_conflicts_with_subcommands = true)]
    Profile(ProfileArgs),
    /// A thread: its first message and every reply held, in order, indented by depth. Replies
    /// come only from feeds you follow; a reply whose parent is not held says so.
    Thread {
        /// Any message of the thread (%….b3, as printed by `timeline`, `feed`, `post`).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Posts that mention you (`@yourname` or your id), newest first.
    Mentions {
        /// How many posts (1 to 10000; default 50).
        #[arg(long)]
        limit: Option<usize>,
        /// Start below this post: the next page (a listing prints the id to give).
        #[arg(long, value_name = "MSGID")]
        before: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// React to a message with a short text, e.g. `kith react %….b3 👍` (at most 32 bytes).
    React {
        /// The message (%….b3).
        id: String,
        /// The reaction: an emoji or a word.
        text: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Your contact card: one `kith:` string with your id, the addresses you are reachable at
    /// and your switchboards. A friend runs `kith follow CARD`.
    Card {
        /// Also print it as a QR code.
        #[arg(long)]
        qr: bool,
        /// An address to add (HOST:PORT, e.g. a DNS name or a forwarded port; repeatable).
        #[arg(long = "addr", value_name = "HOST:PORT")]
        addrs: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Your identity: back it up as a recovery phrase.
    Identity {
        /// What to do.
        #[command(subcommand)]
        action: IdentityAction,
    },
}

/// `kith profile [ID] | kith profile set …`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Publish your profile instead.
    #[command(subcommand)]
    pub action: Option<ProfileAction>,
    /// Whose profile (@….ed25519; default: yours).
    pub id: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `kith profile set`.
#[derive(Debug, Subcommand)]
pub enum ProfileAction {
    /// Publish your name and/or description (an `about` entry in your feed: public).
    Set {
        /// Your display name (at most 128 bytes, one line).
        #[arg(long)]
        name: Option<String>,
        /// A few words about you (at most 2 KiB).
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `kith identity …`.
#[derive(Debug, Subcommand)]
pub enum IdentityAction {
    /// Print the recovery phrase (24 words) that rebuilds this identity with
    /// `kith init --restore`. Anyone who reads it can post as you: write it down, keep it
    /// offline, never share it.
    Export {
        #[command(flatten)]
        json: JsonFlag,
    },
}

fn ask(
    dir: &Path,
    json: bool,
    request: Request,
    text: impl FnOnce(&Value) -> String,
) -> Result<()> {
    let data = client::call(dir, &request)?;
    output::print(json, &data, text);
    Ok(())
}

/// Run one social command against the data directory `dir`.
pub fn run(dir: &Path, command: SocialCommand) -> Result<()> {
    match command {
        SocialCommand::Profile(ProfileArgs {
            action:
                Some(ProfileAction::Set {
                    name,
                    description,
                    json,
                }),
            ..
        }) => ask(
            dir,
            json.json,
            Request::ProfileSet { name, description },
            profile_text,
        ),
        SocialCommand::Profile(ProfileArgs { id, json, .. }) => {
            ask(dir, json.json, Request::Profile { id }, profile_text)
        }
        SocialCommand::Thread { id, json } => {
            ask(dir, json.json, Request::Thread { id }, thread_text)
        }
        SocialCommand::Mentions {
            limit,
            before,
            json,
        } => ask(
            dir,
            json.json,
            Request::Mentions { limit, before },
            entries_text,
        ),
        SocialCommand::React { id, text, json } => {
            ask(dir, json.json, Request::React { id, text }, |d| {
                format!("{} {}", s(d, "reaction"), s(d, "id"))
            })
        }
        SocialCommand::Card { qr, addrs, json } => {
            let data = client::call(dir, &Request::Card { addrs })?;
            output::print(json.json, &data, |d| {
                let card = s(d, "card");
                if qr {
                    format!("{}\n{card}", qr_text(card))
                } else {
                    card.to_string()
                }
            });
            Ok(())
        }
        SocialCommand::Identity {
            action: IdentityAction::Export { json },
        } => {
            let identity = Identity::load(dir)?;
            let phrase = identity.recovery_phrase();
            eprintln!(
                "kith: this phrase IS your identity: anyone who reads it can post as you. Write it \
                 down, keep it offline, and never type it anywhere but `kith init --restore`."
            );
            output::print(
                json.json,
                &serde_json::json!({ "id": identity.id().to_string(), "phrase": phrase }),
                |_| phrase.clone(),
            );
            Ok(())
        }
    }
}

/// Read a recovery phrase: from standard input (a prompt on a terminal), bounded.
pub fn read_phrase() -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("type your 24-word recovery phrase, then Enter:");
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .context("reading the recovery phrase")?;
        return Ok(line);
    }
    let mut text = String::new();
    stdin
        .lock()
        .take(PHRASE_BYTES_MAX)
        .read_to_string(&mut text)
        .context("reading the recovery phrase from standard input")?;
    Ok(text)
}

/// The card as a QR code of Unicode half blocks (two modules a character cell).
fn qr_text(card: &str) -> String {
    match qrcode::QrCode::new(card.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Text from someone else's feed, safe for the terminal: hidden characters dropped except
/// newlines and tabs.
pub fn safe_text(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, '\n' | '\t') || !is_hidden(*c))
        .collect()
}

fn reactions_text(e: &Value) -> String {
    match e.get("reactions").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            let parts: Vec<String> = list
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        clean(s(r, "text")),
                        r.get("count").and_then(Value::as_u64).unwrap_or(0)
                    )
                })
                .collect();
            format!("  [{}]", parts.join("  "))
        }
        _ => String::new(),
    }
}

/// One entry as a line (or a few): who, what, what it answers, its reactions.
pub fn entry_text(e: &Value) -> String {
    let seq = e.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let who = safe_text(s(e, "author_name"));
    let body = match s(e, "type") {
        "post" => {
            let mut body = String::new();
            if e.get("reply_to").is_some_and(|r| !r.is_null()) {
                match e.get("reply_to_author").and_then(Value::as_str) {
                    Some(author) => body.push_str(&format!(
                        "↳ re {}: \"{}\"\n    ",
                        safe_text(author),
                        safe_text(s(e, "reply_to_excerpt"))
                    )),
                    None => body.push_str("↳ re a message not held here\n    "),
                }
            }
            body.push_str(&safe_text(s(e, "text")));
            body
        }
        "react" => format!(
            "reacted {} to {}",
            clean(s(e, "reaction")),
            s(e, "reacts_to")
        ),
        "about" => format!(
            "[about] {} {}",
            clean(e.get("name").and_then(Value::as_str).unwrap_or("")),
            s(e, "contact")
        ),
        "deleted" => "(deleted by its author)".to_string(),
        "delete" => format!("[deleted {}]", s(e, "deletes")),
        "private" => "[a private message]".to_string(),
        kind => format!("[{kind}] {}", s(e, "contact")),
    };
    format!(
        "{who} #{seq:<5} {body}{}\n    {}",
        reactions_text(e),
        s(e, "id")
    )
}

/// Entries of a feed, timeline or mentions.
pub fn entries_text(data: &Value) -> String {
    let Some(list) = data.get("entries").and_then(Value::as_array) else {
        return String::new();
    };
    if list.is_empty() {
        return "(nothing yet)".into();
    }
    let mut out = list.iter().map(entry_text).collect::<Vec<_>>().join("\n");
    if let Some(next) = data.get("next_before").and_then(Value::as_str) {
        out.push_str(&format!("\n(more: --before {next})"));
    }
    out
}

fn thread_text(data: &Value) -> String {
    let mut out = match data.get("root").filter(|r| !r.is_null()) {
        Some(root) => entry_text(root),
        None => format!(
            "(the first message, {}, is not held here)",
            s(data, "root_id")
        ),
    };
    for reply in data
        .get("replies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let depth = reply.get("depth").and_then(Value::as_u64).unwrap_or(1) as usize;
        let pad = "  ".repeat(depth.min(THREAD_INDENT_MAX));
        let missing = if reply.get("parent_missing").and_then(Value::as_bool) == Some(true) {
            format!("{pad}(answers a message not held here)\n")
        } else {
            String::new()
        };
        let text = entry_text(reply)
            .lines()
            .map(|l| format!("{pad}{l}"))
            .collect::<Vec<_>>()
            .join("\n");
        out.push_str(&format!("\n{missing}{text}"));
    }
    let missing = data.get("missing").and_then(Value::as_u64).unwrap_or(0);
    if missing > 0 {
        out.push_str(&format!(
            "\n({missing} message(s) this thread answers are not held here: from feeds you do not follow)"
        ));
    }
    if data.get("truncated").and_then(Value::as_bool) == Some(true) {
        out.push_str("\n(more replies are held than one thread view shows)");
    }
    out
}

fn profile_text(d: &Value) -> String {
    let flag = |k: &str| d.get(k).and_then(Value::as_bool).unwrap_or(false);
    let n = |k: &str| d.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut out = format!("{}  {}", safe_text(s(d, "label")), s(d, "id"));
    if let Some(name) = d.get("name").and_then(Value::as_str) {
        out.push_str(&format!("\nname: {}", clean(name)));
    }
    if let Some(pet) = d.get("petname").and_then(Value::as_str) {
        out.push_str(&format!("\nyour name for them: {}", clean(pet)));
    }
    if let Some(desc) = d.get("description").and_then(Value::as_str) {
        out.push_str(&format!("\n{}", safe_text(desc)));
    }
    out.push_str(&format!("\n{} posts, follows {}", n("posts"), n("follows")));
    if !flag("own") {
        let rel = match (flag("following"), flag("follows_you")) {
            (true, true) => "you follow each other",
            (true, false) => "you follow them",
            (false, true) => "they follow you",
            (false, false) => "you do not follow each other",
        };
        out.push_str(&format!("; {rel}"));
    }
    out
}
