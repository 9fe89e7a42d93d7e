//! Which requests the web page answers at all: the Host and Origin checks (sans-IO).
//!
//! The page listens on loopback, but a page on another site can still reach it through the
//! browser: by DNS rebinding (a name of theirs that resolves to 127.0.0.1, so the browser sends
//! `Host: evil.example:8807`) or by a cross-site form or fetch (`Origin: https://evil.example`).
//! So every request must name this server exactly in `Host` — address *and port*, since another
//! local service on another port is another origin — and an `Origin`, when sent, must be this
//! server's own. A request that changes anything (POST) must send an `Origin` (every browser
//! does for a form post), so a missing one is refused too.

/// The host names this server answers to: `IP:PORT` as bound, and `localhost:PORT`.
#[derive(Clone, Debug)]
pub struct Allowed {
    hosts: Vec<String>,
    port: u16,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `Host` header.
    #[error("refused: the request names no Host")]
    NoHost,
    /// A `Host` that is not this server (DNS rebinding, or another port).
    #[error("refused: Host `{0}` is not this page's address (open the address `kith web` prints)")]
    Host(String),
    /// An `Origin` that is not this server (a page on another site).
    #[error("refused: a page from `{0}` may not use this one")]
    Origin(String),
    /// A POST without an `Origin`.
    #[error("refused: a form post must come from this page (no Origin was sent)")]
    NoOrigin,
}

impl Allowed {
    /// The names of a server bound at `addr`.
    pub fn for_addr(addr: std::net::SocketAddr) -> Allowed {
        let port = addr.port();
        let ip = match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Allowed {
            hosts: vec![format!("{ip}:{port}"), format!("localhost:{port}")],
            port,
        }
    }

    /// The port the page is served on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The first name (the address printed by `kith web`).
    pub fn primary(&self) -> &str {
        &self.hosts[0]
    }

    fn host_ok(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn origin_ok(&self, origin: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|rest| self.host_ok(rest))
    }

    /// Check one request: its method changes state (`unsafe_method`), its `Host` and `Origin`.
    pub fn check(
        &self,
        unsafe_method: bool,
        host: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(), Refusal> {
        let host = host.ok_or(Refusal::NoHost)?;
        if !self.host_ok(host) {
            return Err(Refusal::Host(host.to_string()));
        }
        match origin {
            Some(origin) if !self.origin_ok(origin) => Err(Refusal::Origin(origin.to_string())),
            None if unsafe_method => Err(Refusal::NoOrigin),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_origin_must_be_this_server_port_included() {
        let ok = Allowed::for_addr("127.0.0.1:8807".parse().unwrap());
        assert_eq!(ok.check(false, Some("127.0.0.1:8807"), None), Ok(()));
        assert_eq!(ok.check(false, Some("LOCALHOST:8807"), None), Ok(()));
        assert_eq!(
            ok.check(true, Some("127.0.0.1:8807"), Some("http://127.0.0.1:8807")),
            Ok(())
        );
        assert_eq!(
            ok.check(true, Some("localhost:8807"), Some("http://localhost:8807")),
            Ok(())
        );
        // DNS rebinding: the browser names the attacker's host.
        assert_eq!(
            ok.check(false, Some("evil.example:8807"), None),
            Err(Refusal::Host("evil.example:8807".into()))
        );
        // Another port is another origin; no port at all is port 80.
        for host in ["127.0.0.1:8808", "127.0.0.1", "localhost"] {
            assert!(ok.check(false, Some(host), None).is_err(), "{host}");
        }
        assert_eq!(ok.check(false, None, None), Err(Refusal::NoHost));
        for origin in [
            "https://evil.example",
            "http://127.0.0.1:9999",
            "https://127.0.0.1:8807",
            "null",
            "http://127.0.0.1:8807.evil.example",
        ] {
            assert_eq!(
                ok.check(true, Some("127.0.0.1:8807"), Some(origin)),
                Err(Refusal::Origin(origin.into()))
            );
            assert!(ok
                .check(false, Some("127.0.0.1:8807"), Some(origin))
                .is_err());
        }
        assert_eq!(
            ok.check(true, Some("127.0.0.1:8807"), None),
            Err(Refusal::NoOrigin)
        );
        let v6 = Allowed::for_addr("[::1]:8807".parse().unwrap());
        assert_eq!(v6.primary(), "[::1]:8807");
        assert_eq!(
            v6.check(true, Some("[::1]:8807"), Some("http://[::1]:8807")),
            Ok(())
        );
    }
}
