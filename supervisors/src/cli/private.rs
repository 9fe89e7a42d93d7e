//! The private-message and deletion commands: `kith dm`, `kith inbox`, `kith delete`, and how
//! their answers read as text.
//!
//! `kith dm @ID [@ID…] TEXT` seals TEXT to up to seven recipients (and to you); `kith dm
//! --thread @ID` shows the messages you exchanged with one of them; `kith inbox` lists the
//! conversations. Everything shown came from other people: it is cleaned of control and
//! direction characters before it reaches the terminal.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Subcommand;
use kith::feed::names::clean;
use kith::wire::control::Request;
use serde_json::Value;

use crate::cli::args::JsonFlag;
use crate::cli::social::safe_text;
use crate::cli::{client, output};

/// The private-message and deletion commands (flattened into the top level).
#[derive(Debug, Subcommand)]
pub enum PrivateCommand {
    /// Send a private message: `kith dm @ID [@ID…] TEXT` (at most 7 recipients). Only they and
    /// you can read it; nobody else learns who it is for. A recipient receives it only if they
    /// follow you. `kith dm --thread @ID` shows the messages you exchanged with someone.
    Dm {
        /// The recipients' ids (@….ed25519), then the text (the words after the last id).
        #[arg(value_name = "@ID… TEXT")]
        words: Vec<String>,
        /// Show the private messages exchanged with this id instead of sending one.
        #[arg(long, value_name = "@ID")]
        thread: Option<String>,
        /// With --thread: how many of the latest messages (1 to 10000; default 50).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Your private conversations, most recent first.
    Inbox {
        /// How many conversations (1 to 10000; default 50).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete one of your own messages (%….b3): every node that holds it drops its content and
    /// shows it as deleted by its author. A copy someone already made cannot be taken back.
    Delete {
        /// The message (%….b3, as printed by `post` and `feed`).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn labels(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| safe_text(s(p, "label")))
        .collect()
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

/// Run one private-message or deletion command against the data directory `dir`.
pub fn run(dir: &Path, command: PrivateCommand) -> Result<()> {
    match command {
        PrivateCommand::Dm {
            words,
            thread: Some(id),
            limit,
            json,
        } => {
            if !words.is_empty() {
                bail!("give either --thread @ID or recipients and a text, not both");
            }
            ask(dir, json.json, Request::DmThread { id, limit }, thread_text)
        }
        PrivateCommand::Dm { words, json, .. } => {
            // The leading `@….ed25519` words are the recipients; the rest is the text (quoted or not).
            let split = words
                .iter()
                .position(|w| {
                    !(w.starts_with('@')
                        && w.ends_with(".ed25519")
                        && !w.contains(char::is_whitespace))
                })
                .unwrap_or(words.len());
            let (to, rest) = words.split_at(split);
            if to.is_empty() {
                bail!("give at least one recipient before the text: kith dm @ID [@ID…] TEXT");
            }
            if rest.is_empty() {
                bail!("give the text after the recipients: kith dm @ID [@ID…] TEXT");
            }
            let (to, text) = (to.to_vec(), rest.join(" "));
            let data = client::call(dir, &Request::Dm { to, text })?;
            let not = labels(data.get("not_following"));
            if !not.is_empty() {
                let verb = if not.len() == 1 { "does" } else { "do" };
                eprintln!(
                    "kith: {} {verb} not follow you, so they will not receive it (a private \
                     message reaches only those who replicate your feed)",
                    not.join(", ")
                );
            }
            output::print(json.json, &data, |d| {
                format!(
                    "{} to {}",
                    s(d, "id"),
                    labels(d.get("recipients")).join(", ")
                )
            });
            Ok(())
        }
        PrivateCommand::Inbox { limit, json } => {
            ask(dir, json.json, Request::Inbox { limit }, inbox_text)
        }
        PrivateCommand::Delete { id, json } => ask(dir, json.json, Request::Delete { id }, |d| {
            format!("{} deletes {}", s(d, "id"), s(d, "deletes"))
        }),
    }
}

fn inbox_text(data: &Value) -> String {
    let list: Vec<String> = data
        .get("conversations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let n = c.get("messages").and_then(Value::as_u64).unwrap_or(0);
            format!(
                "{}  ({n})\n    {}: {}",
                labels(c.get("with")).join(", "),
                safe_text(s(c, "last_from")),
                clean(s(c, "last_text")),
            )
        })
        .collect();
    if list.is_empty() {
        return "(no private messages)".into();
    }
    list.join("\n")
}

fn thread_text(data: &Value) -> String {
    let list: Vec<String> = data
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{} → {}\n    {}\n    {}",
                safe_text(s(m, "author_name")),
                labels(m.get("to")).join(", "),
                safe_text(s(m, "text")).replace('\n', "\n    "),
                s(m, "id"),
            )
        })
        .collect();
    if list.is_empty() {
        return "(no private messages with them)".into();
    }
    list.join("\n")
}
