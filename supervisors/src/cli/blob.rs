//! The blob commands: `kith blob add FILE`, `kith blob get ID [--out FILE]`, `kith blob ls`, and
//! the request behind `kith post --attach FILE`.
//!
//! Files are named to the daemon by absolute path (it runs as the same user; the control socket
//! is the owner's only). `blob get` asks the daemon where the held, verified file is, copies it
//! out, and checks the copy against the id once more before it is put in place (written to a
//! temporary file beside the target and renamed, so a half-written file never carries the
//! name); without `--out` the bytes go to standard output.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kith::blob::BlobId;
use kith::wire::control::Request;
use serde_json::Value;

use crate::cli::args::JsonFlag;
use crate::cli::{client, output};

/// `kith blob …`.
#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Store a file by its BLAKE3 hash (printed as &….b3); `kith post --attach` does this too.
    Add {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Write out a held blob, checked against its hash: to FILE, or to standard output.
    Get {
        /// The blob's id (&….b3, as `kith blob ls` or a post's attachments show it).
        id: String,
        /// Where to write it (it must not exist yet).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The blobs held here (pinned: added here; the others were fetched for followed feeds),
    /// the limits, and any refusals peers sent about blobs served from here.
    Ls(JsonFlag),
}

fn absolute(file: &Path) -> Result<String> {
    let path =
        std::path::absolute(file).with_context(|| format!("cannot resolve {}", file.display()))?;
    let meta =
        std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not a UTF-8 path; rename the file", path.display()))
}

/// The request of `kith post TEXT --attach FILE…`.
pub fn post_attached(
    text: String,
    reply_to: Option<String>,
    attach: &[PathBuf],
) -> Result<Request> {
    let attach = attach
        .iter()
        .map(|f| absolute(f))
        .collect::<Result<Vec<_>>>()?;
    Ok(Request::PostAttached {
        text,
        reply_to,
        attach,
    })
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Run one blob command against the data directory `dir`.
pub fn run(dir: &Path, command: BlobCommand) -> Result<()> {
    match command {
        BlobCommand::Add { file, json } => {
            let data = client::call(
                dir,
                &Request::BlobAdd {
                    path: absolute(&file)?,
                },
            )?;
            output::print(json.json, &data, |d| {
                format!("{} ({} bytes)", s(d, "id"), d["size"].as_u64().unwrap_or(0))
            });
            Ok(())
        }
        BlobCommand::Get { id, out, json } => {
            let parsed: BlobId = id.parse()?;
            let data = client::call(dir, &Request::BlobGet { id })?;
            let held = PathBuf::from(s(&data, "path"));
            let mut bytes = Vec::new();
            std::fs::File::open(&held)
                .and_then(|f| {
                    f.take(kith::limits::BLOB_BYTES_CEILING + 1)
                        .read_to_end(&mut bytes)
                })
                .with_context(|| format!("reading {}", held.display()))?;
            if BlobId::of(&bytes) != parsed {
                bail!("the held copy of {parsed} changed while it was read; try again");
            }
            match out {
                Some(out) => {
                    write_new(&out, &bytes)?;
                    let shown = serde_json::json!({
                        "id": parsed.to_string(),
                        "size": bytes.len(),
                        "out": out.display().to_string(),
                    });
                    output::print(json.json, &shown, |d| {
                        format!("{} bytes written to {}", d["size"], s(d, "out"))
                    });
                }
                None => std::io::stdout()
                    .lock()
                    .write_all(&bytes)
                    .context("writing to standard output")?,
            }
            Ok(())
        }
        BlobCommand::Ls(json) => {
            let data = client::call(dir, &Request::BlobLs)?;
            output::print(json.json, &data, ls_text);
            Ok(())
        }
    }
}

/// Write `bytes` to `out`, which must not exist: a temporary file beside it, fsync'd, then
/// linked into place (so a half-written file never carries the name and nothing is overwritten).
fn write_new(out: &Path, bytes: &[u8]) -> Result<()> {
    if out.exists() {
        bail!("{} exists; give a new file name", out.display());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&parent)
        .with_context(|| format!("creating a file in {}", parent.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    tmp.persist_noclobber(out)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn ls_text(d: &Value) -> String {
    let mut lines: Vec<String> = d["blobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let pinned = if b["pinned"].as_bool() == Some(true) {
                "  (added here)"
            } else {
                ""
            };
            format!(
                "{}  {} bytes{pinned}",
                s(b, "id"),
                b["size"].as_u64().unwrap_or(0)
            )
        })
        .collect();
    lines.push(format!(
        "{} bytes held; budget {} bytes; at most {} bytes a blob",
        d["held_bytes"], d["budget_bytes"], d["max_bytes"]
    ));
    for r in d["refused_by_peers"].as_array().into_iter().flatten() {
        lines.push(format!(
            "refused by {}: {} ({})",
            s(r, "peer"),
            s(r, "blob"),
            s(r, "reason")
        ));
    }
    lines.join("\n")
}
