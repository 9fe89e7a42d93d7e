//! Who may use the web page: a login token kept in the data directory, exchanged for a session
//! cookie.
//!
//! `web.token` (0600, in the 0700 data directory) holds 32 random bytes, printed by `kith web`.
//! Only a user who can read the data directory can log in, so another local user (or a page on
//! another site, which cannot read files) cannot act as you. A correct token earns a session
//! cookie (HttpOnly, SameSite=Strict) that is stateless: a random nonce, an expiry and a keyed
//! BLAKE3 MAC under a key derived from the token. Nothing is kept per session, so a restarted
//! web worker or daemon keeps its users logged in; replacing the token (delete the file and
//! restart) logs everyone out. The CSRF token of a session ([`crate::daemon::web::csrf`]) is
//! derived from the same key and the session's nonce.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::daemon::web::error::WebError;

/// The login token's file in the data directory.
pub const TOKEN_FILE: &str = "web.token";
/// The file the running web page writes its address to, for `kith web`.
pub const ADDR_FILE: &str = "web.addr";
/// The session cookie's name for a page served on `port`. Browsers keep cookies per host, not
/// per port: two daemons on one machine (127.0.0.1:8807 and :8808) would overwrite each other's
/// session under one name.
pub fn cookie_name(port: u16) -> String {
    format!("kith_session_{port}")
}

/// The login token and the keys derived from it.
pub struct Keys {
    token: String,
    mac: [u8; 32],
}

/// A logged-in browser: the nonce its cookie carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub(crate) nonce: [u8; 16],
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> WebError + '_ {
    move |source| WebError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// The token file of a data directory.
pub fn token_path(dir: &Path) -> PathBuf {
    dir.join(TOKEN_FILE)
}

/// Read the token of `dir` (for `kith web`), without making one.
pub fn read_token(dir: &Path) -> Result<String, WebError> {
    let path = token_path(dir);
    let text = std::fs::read_to_string(&path).map_err(file_error(&path))?;
    let token = text.trim().to_string();
    match URL_SAFE_NO_PAD.decode(&token) {
        Ok(bytes) if bytes.len() == 32 => Ok(token),
        _ => Err(WebError::TokenDamaged(path)),
    }
}

impl Keys {
    /// The keys of `dir`'s token, made (0600) on first use. A token file others may read is
    /// tightened to 0600 with a warning.
    pub fn load_or_create(dir: &Path) -> Result<Keys, WebError> {
        let path = token_path(dir);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let token = URL_SAFE_NO_PAD.encode(bytes);
                file.write_all(format!("{token}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(file_error(&path))?;
                Ok(Keys::from_token(token))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::metadata(&path).map_err(file_error(&path))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "the web login token was readable by others; made it 0600");
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(file_error(&path))?;
                }
                Ok(Keys::from_token(read_token(dir)?))
            }
            Err(e) => Err(file_error(&path)(e)),
        }
    }

    /// Keys for a given token.
    pub fn from_token(token: String) -> Keys {
        let mac = blake3::derive_key("kith web session v1", token.as_bytes());
        Keys { token, mac }
    }

    /// The token (for `kith web` and the tests).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `given` is the token (compared in constant time, as BLAKE3 hashes).
    pub fn token_matches(&self, given: &str) -> bool {
        blake3::hash(given.trim().as_bytes()) == blake3::hash(self.token.as_bytes())
    }

    pub(crate) fn mac(&self, parts: &[&[u8]]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.mac);
        for part in parts {
            hasher.update(&(part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.finalize()
    }

    /// A new session's cookie value, valid until `expires_ms`.
    pub fn new_session(&self, expires_ms: u64) -> String {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mac = self.mac(&[b"session", &nonce, &expires_ms.to_be_bytes()]);
        format!(
            "{}.{expires_ms}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(mac.as_bytes())
        )
    }

    /// The session a cookie value stands for, if it was made with this token and has not
    /// expired at `now_ms`.
    pub fn check_session(&self, value: &str, now_ms: u64) -> Option<Session> {
        let mut parts = value.split('.');
        let (nonce, expires, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let nonce: [u8; 16] = URL_SAFE_NO_PAD.decode(nonce).ok()?.try_into().ok()?;
        let expires_ms: u64 = expires.parse().ok()?;
        let mac: [u8; 32] = URL_SAFE_NO_PAD.decode(mac).ok()?.try_into().ok()?;
        let expected = self.mac(&[b"session", &nonce, &expires_ms.to_be_bytes()]);
        // blake3::Hash compares in constant time.
        (expected == blake3::Hash::from(mac) && now_ms < expires_ms).then_some(Session { nonce })
    }
}

/// The session cookie `name` among a request's `Cookie` header values, if one is valid.
pub fn session_of<'a>(
    keys: &Keys,
    name: &str,
    cookie_headers: impl Iterator<Item = &'a str>,
    now_ms: u64,
) -> Option<Session> {
    cookie_headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .find_map(|(_, value)| keys.check_session(value, now_ms))
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64) -> String {
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}")
}

/// The `Set-Cookie` value that ends one.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_0600_and_sessions_verify_only_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(token_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Keys::load_or_create(dir.path()).unwrap();
        assert_eq!(keys.token(), again.token());
        assert!(keys.token_matches(again.token()));
        assert!(!keys.token_matches("nope"));

        let cookie = keys.new_session(2_000);
        assert!(keys.check_session(&cookie, 1_000).is_some());
        assert!(again.check_session(&cookie, 1_000).is_some());
        // Expired, forged, or made under another token: refused.
        assert!(keys.check_session(&cookie, 2_000).is_none());
        let other = Keys::from_token("other".into());
        assert!(other.check_session(&cookie, 1_000).is_none());
        let mut parts: Vec<&str> = cookie.split('.').collect();
        parts[1] = "9999999";
        assert!(keys.check_session(&parts.join("."), 1_000).is_none());
        assert!(keys.check_session("", 1_000).is_none());
        assert!(keys.check_session("a.b.c.d", 1_000).is_none());
        let name = cookie_name(8807);
        let header = format!("x=1; {name}=garbage; kith_session_1={cookie}");
        assert!(session_of(&keys, &name, [header.as_str()].into_iter(), 1_000).is_none());
        let header = format!("x=1; {name}=garbage; {name}={cookie}");
        assert!(session_of(&keys, &name, [header.as_str()].into_iter(), 1_000).is_some());
    }

    #[test]
    fn a_damaged_token_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(token_path(dir.path()), "short\n").unwrap();
        assert!(matches!(
            Keys::load_or_create(dir.path()),
            Err(WebError::TokenDamaged(_))
        ));
    }
}
