//! Attachments sent with the compose form: read, checked and staged for the blob store.
//!
//! **Sending.** The compose form posts `multipart/form-data`; [`read_compose`] reads it as a
//! stream. The CSRF token must be the first part (it is the form's first field), so nothing of
//! a forged form is written anywhere. Each file is streamed to a private staging folder
//! (`<data dir>/web-uploads/<random>/<its name>`, 0700/0600) and handed to the same control
//! answer as `kith post --attach FILE` ([`Request::PostAttached`]), which stores it through the
//! blob store (its limits, its budget, its pins) and publishes the post; the staging folder is
//! removed when the request ends. A file over the per-blob limit stops being written at the
//! limit and is refused by name ([`UploadError::TooLarge`], 413), as is a form over the body
//! limit the route sets ([`crate::daemon::web::files::body_limit`]).
//!
//! Showing them back (`GET /blob/HEX`) is [`crate::daemon::web::pages::blob`], with the
//! content type decided by [`crate::daemon::web::files::sniff`].
//!
//! [`Request::PostAttached`]: crate::wire::control::Request::PostAttached

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::Multipart;
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::daemon::web::auth::Session;
use crate::daemon::web::csrf;
use crate::daemon::web::files::plain_name;
use crate::daemon::web::state::WebState;
use crate::limits::{ATTACHMENTS_MAX, WEB_FORM_BYTES_MAX};
use crate::runtime::private_dir::{ensure_private_dir, PrivateDirError};

/// The staging folder in the data directory.
pub const UPLOADS_DIR: &str = "web-uploads";

/// Why a compose form with files was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The first part was not this session's CSRF token.
    #[error("refused: this form did not come from this page (its CSRF token is missing or stale)")]
    Csrf,
    /// A file over the per-blob limit.
    #[error("`{name}` is larger than the largest attachment this node stores ({max} bytes; blobs.max_bytes in config.toml)")]
    TooLarge {
        /// The file's name.
        name: String,
        /// The limit.
        max: u64,
    },
    /// More files than a post attaches.
    #[error("a post attaches at most {ATTACHMENTS_MAX} files")]
    TooMany,
    /// A text field over [`WEB_FORM_BYTES_MAX`].
    #[error("the field `{0}` is too long")]
    FieldTooLong(String),
    /// The form could not be read (cut off, malformed, or over the route's body limit).
    #[error("the form could not be read: {0}")]
    Multipart(#[from] MultipartError),
    /// The staging folder could not be written.
    #[error("keeping the attachment for a moment failed: {0}")]
    Staging(#[source] std::io::Error),
    /// The staging folder could not be made private.
    #[error("the attachments' staging folder: {0}")]
    StagingDir(#[from] PrivateDirError),
    /// The page runs without a data directory (the benchmark's).
    #[error("this page has no data directory to keep attachments in")]
    NoDataDir,
}

impl UploadError {
    /// The HTTP status that fits.
    pub fn status(&self) -> StatusCode {
        match self {
            UploadError::Csrf => StatusCode::FORBIDDEN,
            UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::Multipart(e) => e.status(),
            UploadError::Staging(_) | UploadError::StagingDir(_) | UploadError::NoDataDir => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            UploadError::TooMany | UploadError::FieldTooLong(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// A compose form read: its fields, and its files staged on disk (removed on drop).
pub struct Compose {
    /// The text.
    pub text: String,
    /// The message replied to.
    pub reply_to: Option<String>,
    /// The staged files, in order.
    pub files: Vec<PathBuf>,
    _staging: Option<tempfile::TempDir>,
}

async fn small_field(field: &mut Field<'_>, name: &str) -> Result<String, UploadError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if bytes.len() + chunk.len() > WEB_FORM_BYTES_MAX {
            return Err(UploadError::FieldTooLong(name.into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Read the compose form: the CSRF token first, then the text, the reply and the files (each
/// streamed to the staging folder, refused past `max_bytes`).
pub async fn read_compose(
    state: &WebState,
    session: &Session,
    mut form: Multipart,
) -> Result<Compose, UploadError> {
    let max_bytes = state.node.blobs.store.limits().max_bytes;
    let mut out = Compose {
        text: String::new(),
        reply_to: None,
        files: Vec::new(),
        _staging: None,
    };
    let mut first = true;
    while let Some(mut field) = form.next_field().await? {
        let name = field.name().unwrap_or("").to_string();
        if first {
            first = false;
            let token = if name == csrf::FIELD {
                small_field(&mut field, &name).await?
            } else {
                String::new()
            };
            if !csrf::check(&state.keys, session, &token) {
                return Err(UploadError::Csrf);
            }
            continue;
        }
        match name.as_str() {
            "text" => out.text = small_field(&mut field, &name).await?,
            "reply_to" => {
                let r = small_field(&mut field, &name).await?;
                out.reply_to = Some(r.trim().to_string()).filter(|r| !r.is_empty());
            }
            "file" => {
                let sent = field.file_name().unwrap_or("").to_string();
                if sent.is_empty() {
                    // An empty file input: the browser sends a part with no name and no bytes.
                    while field.chunk().await?.is_some() {}
                    continue;
                }
                if out.files.len() >= ATTACHMENTS_MAX {
                    return Err(UploadError::TooMany);
                }
                let dir = match &out._staging {
                    Some(dir) => dir.path().to_path_buf(),
                    None => {
                        let dir = staging(state)?;
                        let path = dir.path().to_path_buf();
                        out._staging = Some(dir);
                        path
                    }
                };
                // Each file in a folder of its own, so two of one name do not collide.
                let sub = dir.join(out.files.len().to_string());
                std::fs::create_dir(&sub).map_err(UploadError::Staging)?;
                std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700))
                    .map_err(UploadError::Staging)?;
                let name = plain_name(&sent);
                let path = sub.join(&name);
                stage_file(&mut field, &path, &name, max_bytes).await?;
                out.files.push(path);
            }
            // Unknown parts are read and dropped (bounded by the route's body limit).
            _ => while field.chunk().await?.is_some() {},
        }
    }
    if first {
        return Err(UploadError::Csrf);
    }
    Ok(out)
}

fn staging(state: &WebState) -> Result<tempfile::TempDir, UploadError> {
    let data_dir = state.data_dir.as_deref().ok_or(UploadError::NoDataDir)?;
    let root = data_dir.join(UPLOADS_DIR);
    ensure_private_dir(&root)?;
    // tempfile makes the folder 0700.
    tempfile::Builder::new()
        .prefix("up-")
        .tempdir_in(&root)
        .map_err(UploadError::Staging)
}

async fn stage_file(
    field: &mut Field<'_>,
    path: &Path,
    name: &str,
    max_bytes: u64,
) -> Result<(), UploadError> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(UploadError::Staging)?;
    let mut written: u64 = 0;
    let mut over = false;
    while let Some(chunk) = field.chunk().await? {
        written = written.saturating_add(chunk.len() as u64);
        if written > max_bytes {
            // Keep reading (the route's body limit bounds it) so that the browser gets this
            // answer rather than a reset connection, but write nothing more.
            over = true;
            continue;
        }
        file.write_all(&chunk).await.map_err(UploadError::Staging)?;
    }
    if over {
        return Err(UploadError::TooLarge {
            name: name.to_string(),
            max: max_bytes,
        });
    }
    file.flush().await.map_err(UploadError::Staging)
}

/// Remove what a stopped web worker may have left in the staging folder.
pub fn clear_staging(data_dir: &Path) {
    let root = data_dir.join(UPLOADS_DIR);
    if root.exists() {
        if let Err(e) = std::fs::remove_dir_all(&root) {
            tracing::warn!(error = %e, path = %root.display(), "old web uploads not removed");
        }
    }
}
