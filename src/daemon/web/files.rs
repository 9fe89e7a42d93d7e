//! What the web page decides about files, without reading any (sans-IO): which bytes are served
//! as an image ([`sniff`]: PNG, JPEG, GIF and WebP only, told by their first bytes), which
//! attachments the timeline shows inline ([`named_like_image`]), the name an uploaded file is
//! kept under ([`plain_name`]), the compose form's body limit ([`body_limit`]) and a blob's URL
//! ([`blob_url`]). The upload itself is [`crate::daemon::web::attach`]; the route that serves a
//! blob is [`crate::daemon::web::pages::blob`].

use crate::blob::BlobId;
use crate::limits::{ATTACHMENTS_MAX, BLOB_NAME_BYTES_MAX, WEB_FORM_BYTES_MAX};

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

/// `/blob/HEX`: where the page shows blob `id` from.
pub fn blob_url(id: &str) -> Option<String> {
    let id: BlobId = id.parse().ok()?;
    Some(format!("/blob/{}", id.hex()))
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
