//! The settings page's policy form: whom this node serves (`serve`), how it answers
//! introductions (`introductions`) and who sees its presence (`presence_visible_to`).
//!
//! The daemon reads these three once, at start (flags, then `config.toml`, then defaults:
//! `kith daemon --serve … --introductions … --presence-visible-to …`); nothing changes them
//! while it runs, and the command line has no command that does. So the page does what the
//! command line's equivalent does: it writes them to `config.toml` in the data directory, and
//! they take effect when the daemon next starts (a flag given to `kith daemon` still wins, as
//! always). This is the only writer of `config.toml`: [`set_keys`] edits the text with
//! `toml_edit`, so the user's comments, layout and other keys (`[blobs]`, `switchboards`, …)
//! stay as they were; [`write_config`] replaces the file atomically (0600).

use std::path::{Path, PathBuf};

use crate::daemon::peer::{IntroPolicy, ServePolicy};
use crate::daemon::uplink::audience::PresenceVisibility;
use crate::runtime::private_dir::write_private_file;

/// The settings file in the data directory (as the command line names it).
pub const CONFIG_FILE: &str = "config.toml";

/// The three policies, as chosen on the form (each already checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policies {
    /// `serve`.
    pub serve: ServePolicy,
    /// `introductions`.
    pub introductions: IntroPolicy,
    /// `presence_visible_to`.
    pub presence_visible_to: PresenceVisibility,
}

/// A policy's word, as `config.toml` and the flags spell it.
pub fn word(policy: impl std::fmt::Debug) -> String {
    format!("{policy:?}").to_lowercase()
}

/// Why the policies could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A value the form should not have sent (a forged or stale form).
    #[error("{0}")]
    Invalid(String),
    /// `config.toml` is not valid TOML: the page does not overwrite what it cannot read.
    #[error("{path} is not valid TOML, so it was left as it is; fix or remove it, then try again ({reason})")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The page runs without a data directory (the benchmark's).
    #[error("this page has no data directory to keep settings in")]
    NoDataDir,
}

impl Policies {
    /// The three words of the form, checked.
    pub fn parse(
        serve: &str,
        introductions: &str,
        presence_visible_to: &str,
    ) -> Result<Policies, PolicyError> {
        Ok(Policies {
            serve: serve.parse().map_err(PolicyError::Invalid)?,
            introductions: introductions.parse().map_err(PolicyError::Invalid)?,
            presence_visible_to: presence_visible_to.parse().map_err(PolicyError::Invalid)?,
        })
    }
}

/// The file's opening comment block (comment lines up to the last blank line before the first
/// other line), and the rest. toml_edit would make it the prefix of whatever follows (e.g. a
/// `[blobs]` table), and keys added at the top level would then land above it.
fn split_header(text: &str) -> (&str, &str) {
    let mut cut = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            cut = at + line.len();
        } else if !trimmed.starts_with('#') {
            break;
        }
        at += line.len();
    }
    text.split_at(cut)
}

/// `text` (a `config.toml`, possibly empty) with the three policies set, everything else kept.
pub fn set_keys(text: &str, p: &Policies, path: &Path) -> Result<String, PolicyError> {
    let (header, text) = split_header(text);
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| PolicyError::Unreadable {
                path: path.to_path_buf(),
                reason: e.message().to_string(),
            })?;
    for (key, value) in [
        ("serve", word(p.serve)),
        ("introductions", word(p.introductions)),
        ("presence_visible_to", word(p.presence_visible_to)),
    ] {
        match doc.get_mut(key).and_then(|item| item.as_value_mut()) {
            // Keep the key where it is, with its comments.
            Some(old) => {
                let decor = old.decor().clone();
                *old = toml_edit::Value::from(value);
                *old.decor_mut() = decor;
            }
            None => {
                doc.insert(key, toml_edit::value(value));
            }
        }
    }
    // Keys added above a first table that had none before it: a blank line between them.
    if let Some((_, toml_edit::Item::Table(table))) = doc.iter_mut().find(|(_, i)| i.is_table()) {
        let bare = table
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .is_none_or(str::is_empty);
        if bare {
            table.decor_mut().set_prefix("\n");
        }
    }
    Ok(format!("{header}{doc}"))
}

/// What `config.toml` in `dir` says of the three policies now (`None` for a key not set), or
/// the reason it cannot be read.
pub fn read_config(dir: &Path) -> Result<[Option<String>; 3], PolicyError> {
    let path = dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(PolicyError::File { path, source }),
    };
    let doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| PolicyError::Unreadable {
                path: path.clone(),
                reason: e.message().to_string(),
            })?;
    let get = |key: &str| doc.get(key).and_then(|i| i.as_str()).map(String::from);
    Ok([
        get("serve"),
        get("introductions"),
        get("presence_visible_to"),
    ])
}

/// Set the three policies in `dir`'s `config.toml` (made if absent), atomically, 0600.
pub fn write_config(dir: &Path, p: &Policies) -> Result<PathBuf, PolicyError> {
    let path = dir.join(CONFIG_FILE);
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PolicyError::File { path, source }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(&path)(e)),
    };
    let new = set_keys(&text, p, &path)?;
    write_private_file(&path, new.as_bytes()).map_err(file_error(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies() -> Policies {
        Policies::parse("follows", "everyone", "followers").unwrap()
    }

    #[test]
    fn the_keys_are_set_and_comments_and_other_keys_kept() {
        let text = "# my node\nlisten = \"0.0.0.0:8009\"\nserve = \"everyone\" # who gets my feed\n\n[blobs]\n# small disk\nmax_bytes = 1000\n";
        let out = set_keys(text, &policies(), Path::new("config.toml")).unwrap();
        assert!(
            out.starts_with("# my node\nlisten = \"0.0.0.0:8009\"\n"),
            "{out}"
        );
        assert!(
            out.contains("serve = \"follows\" # who gets my feed"),
            "{out}"
        );
        assert!(out.contains("# small disk\nmax_bytes = 1000"), "{out}");
        // New keys land at the top level, not inside [blobs].
        let parsed: toml_edit::DocumentMut = out.parse().unwrap();
        assert_eq!(parsed["introductions"].as_str(), Some("everyone"));
        assert_eq!(parsed["presence_visible_to"].as_str(), Some("followers"));
        assert_eq!(parsed["blobs"]["max_bytes"].as_integer(), Some(1000));
        assert!(parsed["blobs"].get("serve").is_none(), "{out}");
        // Applying it again changes nothing.
        assert_eq!(
            set_keys(&out, &policies(), Path::new("config.toml")).unwrap(),
            out
        );
    }

    #[test]
    fn an_opening_comment_stays_at_the_top_above_the_new_keys() {
        let text = "# my node\n# two lines\n\n[blobs]\nmax_bytes = 5\n";
        let out = set_keys(text, &policies(), Path::new("c.toml")).unwrap();
        assert_eq!(
            out,
            "# my node\n# two lines\n\nserve = \"follows\"\nintroductions = \"everyone\"\npresence_visible_to = \"followers\"\n\n[blobs]\nmax_bytes = 5\n"
        );
        // A comment right above a table (no blank line) stays with the table.
        let text = "# the blob limits\n[blobs]\nmax_bytes = 5\n";
        let out = set_keys(text, &policies(), Path::new("c.toml")).unwrap();
        assert!(
            out.ends_with("# the blob limits\n[blobs]\nmax_bytes = 5\n"),
            "{out}"
        );
        assert!(out.starts_with("serve = "), "{out}");
        assert_eq!(split_header("a = 1\n"), ("", "a = 1\n"));
        assert_eq!(split_header("# x\n\n"), ("# x\n\n", ""));
    }

    #[test]
    fn an_empty_file_gets_the_keys_and_a_broken_one_is_left_alone_by_name() {
        let out = set_keys("", &policies(), Path::new("c.toml")).unwrap();
        assert_eq!(
            out,
            "serve = \"follows\"\nintroductions = \"everyone\"\npresence_visible_to = \"followers\"\n"
        );
        let e = set_keys("serve = ", &policies(), Path::new("c.toml")).unwrap_err();
        assert!(matches!(e, PolicyError::Unreadable { .. }), "{e}");
        assert!(e.to_string().contains("left as it is"), "{e}");
    }

    #[test]
    fn words_a_form_should_not_send_are_refused_by_name() {
        for (s, i, v) in [
            ("all", "relay", "follows"),
            ("follows", "nobody", "follows"),
            ("follows", "relay", "\"; x = 1"),
        ] {
            let e = Policies::parse(s, i, v).unwrap_err();
            assert!(matches!(e, PolicyError::Invalid(_)), "{e}");
        }
        let p = Policies::parse("everyone", "relay", "everyone").unwrap();
        assert_eq!(word(p.serve), "everyone");
        assert_eq!(word(p.introductions), "relay");
        assert_eq!(word(p.presence_visible_to), "everyone");
    }

    #[test]
    fn the_file_is_written_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "[blobs]\nmax_bytes = 5\n").unwrap();
        assert_eq!(read_config(dir.path()).unwrap(), [None, None, None]);
        let path = write_config(dir.path(), &policies()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_config(dir.path()).unwrap(),
            [
                Some("follows".into()),
                Some("everyone".into()),
                Some("followers".into())
            ]
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[blobs]\nmax_bytes = 5"), "{text}");
    }
}
