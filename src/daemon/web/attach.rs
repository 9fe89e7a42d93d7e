//! Files on the web page: attachments sent with the compose form, and blobs shown back.
//!
//! **Sending.** The compose form posts `multipart/form-data`; [`read_compose`] reads it as a
//! stream. The CSRF token must be the first part (it is the form's first field), so nothing of
//! a forged form is written anywhere. Each file is streamed to a private staging folder
//! (`<data dir>/web-uploads/<random>/<its name>`, 0700/0600) and handed to the same control
//! answer as `kith post --attach FILE` ([`Request::PostAttached`]), which stores it through the
//! blob store (its limits, its budget, its pins) and publishes the post; the staging folder is
//! removed when the request ends. A file over the per-blob limit stops being written at the
//! limit and is refused by name ([`UploadError::TooLarge`], 413), as is a form over the body
//! limit the route sets ([`body_limit`]).
//!
//! **Showing.** `GET /blob/HEX` serves a blob only if the store holds it, checked against its
//! hash on the way out. The content type is sniffed conservatively from the first bytes
//! ([`sniff`]): only PNG, JPEG, GIF and WebP are served as images (what `img-src 'self'` lets
//! the timeline show); anything else, whatever its name says, is `application/octet-stream`
//! with `Content-Disposition: attachment`, and every answer carries `nosniff`, so a blob can
//! never become a page or a script of this origin.
//!
//! [`Request::PostAttached`]: crate::wire::control::Request::PostAttached

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;

use crate::blob::{BlobError, BlobId};
use crate::daemon::web::auth::Session;
use crate::daemon::web::csrf;
use crate::daemon::web::pages::Authed;
use crate::daemon::web::state::WebState;
use crate::limits::{ATTACHMENTS_MAX, BLOB_NAME_BYTES_MAX, WEB_FORM_BYTES_MAX};
use crate::runtime::private_dir::ensure_private_dir;

/// The staging folder in the data directory.
pub const UPLOADS_DIR: &str = "web-uploads";

/// The content type a blob is served with, from its first bytes: an image type for PNG, JPEG,
/// GIF and WebP, `None` (a download) for anything else.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Whether an attachment's name says it is an image the page shows inline (the bytes decide
/// what it is served as; see [`sniff`]).
pub fn named_like_image(name: Option<&str>) -> bool {
    let Some((_, ext)) = name.and_then(|n| n.rsplit_once('.')) else {
        return false;
    };
    ["png", "jpg", "jpeg", "gif", "webp"]
        .iter()
        .any(|e| ext.eq_ignore_ascii_case(e))
}

/// The largest compose form the route reads: every attachment at the per-blob limit, and the
/// text fields.
pub fn body_limit(max_blob_bytes: u64) -> usize {
    let files = max_blob_bytes.saturating_mul(ATTACHMENTS_MAX as u64);
    usize::try_from(files)
        .unwrap_or(usize::MAX)
        .saturating_add(WEB_FORM_BYTES_MAX)
}

/// A file name a browser sent, made a plain file name (no folders, no control characters,
/// bounded), or `attachment` if nothing is left.
pub fn plain_name(sent: &str) -> String {
    let last = sent.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(BLOB_NAME_BYTES_MAX / 4)
        .collect();
    name = name.trim().to_string();
    if name.is_empty() || name == "." || name == ".." {
        name = "attachment".into();
    }
    name
}

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
    Staging(String),
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
            UploadError::Staging(_) | UploadError::NoDataDir => StatusCode::INTERNAL_SERVER_ERROR,
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
                std::fs::create_dir(&sub).map_err(|e| UploadError::Staging(e.to_string()))?;
                std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| UploadError::Staging(e.to_string()))?;
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
    ensure_private_dir(&root).map_err(|e| UploadError::Staging(e.to_string()))?;
    // tempfile makes the folder 0700.
    tempfile::Builder::new()
        .prefix("up-")
        .tempdir_in(&root)
        .map_err(|e| UploadError::Staging(e.to_string()))
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
        .map_err(|e| UploadError::Staging(e.to_string()))?;
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
        file.write_all(&chunk)
            .await
            .map_err(|e| UploadError::Staging(e.to_string()))?;
    }
    if over {
        return Err(UploadError::TooLarge {
            name: name.to_string(),
            max: max_bytes,
        });
    }
    file.flush()
        .await
        .map_err(|e| UploadError::Staging(e.to_string()))
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

/// `/blob/HEX`: where the page shows blob `id` from.
pub fn blob_url(id: &str) -> Option<String> {
    let id: BlobId = id.parse().ok()?;
    Some(format!("/blob/{}", id.hex()))
}

/// `GET /blob/HEX`: a held blob, as an image if its bytes are one, else as a download.
pub async fn blob(
    State(state): State<WebState>,
    Authed(_session): Authed,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let Some(id) = BlobId::from_hex(&id) else {
        return (StatusCode::NOT_FOUND, "not a blob id\n").into_response();
    };
    let store = state.node.blobs.store.clone();
    let read = tokio::task::spawn_blocking(move || store.read(&id)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BlobError::NotHeld(_))) => {
            return (StatusCode::NOT_FOUND, "this blob is not held here\n").into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "web page: a blob could not be served");
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
        }
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "the blob store\n").into_response(),
    };
    // A blob's bytes never change under its id.
    let cache = (CACHE_CONTROL, "private, max-age=3600, immutable");
    match sniff(&bytes) {
        Some(image) => ([(CONTENT_TYPE, image), cache], bytes).into_response(),
        None => (
            [
                (CONTENT_TYPE, "application/octet-stream"),
                (CONTENT_DISPOSITION, "attachment"),
                cache,
            ],
            bytes,
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_four_image_types_are_images_whatever_the_rest_is() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"GIF87a"), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        for not in [
            &b""[..],
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            b"<!DOCTYPE html><script>alert(1)</script>",
            b"\x89PNG",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"RIFFWEBP",
            b"%PDF-1.7",
            b"GIF90a",
        ] {
            assert_eq!(sniff(not), None, "{:?}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn names_are_made_plain_and_images_told_by_extension() {
        assert_eq!(plain_name("cat.png"), "cat.png");
        assert_eq!(plain_name("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(plain_name("../../etc/passwd"), "passwd");
        assert_eq!(plain_name("a\u{0}b\u{7}\nc"), "abc");
        for empty in ["", "/", "..", ".", "dir/", " "] {
            assert_eq!(plain_name(empty), "attachment", "{empty:?}");
        }
        assert!(plain_name(&"x".repeat(1000)).len() <= BLOB_NAME_BYTES_MAX);
        assert!(named_like_image(Some("a.PNG")));
        assert!(named_like_image(Some("a.jpeg")));
        assert!(!named_like_image(Some("a.svg")));
        assert!(!named_like_image(Some("png")));
        assert!(!named_like_image(None));
    }

    #[test]
    fn blob_urls_are_hex_of_a_valid_id_only() {
        let id = BlobId::of(b"x");
        assert_eq!(
            blob_url(&id.to_string()),
            Some(format!("/blob/{}", id.hex()))
        );
        assert_eq!(blob_url("&nope.b3"), None);
        assert!(body_limit(u64::MAX) == usize::MAX);
        assert_eq!(body_limit(10), 10 * ATTACHMENTS_MAX + WEB_FORM_BYTES_MAX);
    }
}
