//! The client side of the control socket: one request, one response.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use kith::limits::CONTROL_TIMEOUT;
use kith::wire::control::SOCKET_FILE;
use kith::wire::control::{Request, Response};

/// Why the control socket at `path` could not be reached, by name: nobody listens there, or this
/// user may not reach it (the data directory and the socket are owner-only), or something else.
fn unreachable(data_dir: &Path, path: &Path, e: &std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    let dir = data_dir.display();
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "no kith daemon is running for {dir}; start one with `kith daemon --data-dir {dir}`"
        ),
        ErrorKind::PermissionDenied => anyhow::anyhow!(
            "permission denied on {}: the data directory belongs to another user; run kith as \
             that user, or use a data directory of your own",
            path.display()
        ),
        _ => anyhow::anyhow!("cannot reach the daemon at {}: {e}", path.display()),
    }
}

/// Send `request` to the daemon running on `data_dir`; the data on success.
pub fn call(data_dir: &Path, request: &Request) -> Result<serde_json::Value> {
    let path = data_dir.join(SOCKET_FILE);
    let stream = UnixStream::connect(&path).map_err(|e| unreachable(data_dir, &path, &e))?;
    stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    // A busy daemon answers at once and closes without reading the request, so a failed send
    // is reported only if no answer came either.
    let sent = (&stream).write_all(&line);
    let mut answer = String::new();
    let read = BufReader::new(&stream).read_line(&mut answer);
    if answer.is_empty() {
        sent.context("sending the request to the daemon")?;
        read.context("reading the daemon's answer")?;
        bail!("the daemon closed the connection without answering; check its log");
    }
    let response: Response =
        serde_json::from_str(&answer).context("the daemon's answer is not valid")?;
    match (response.ok, response.data, response.error) {
        (true, Some(data), _) => Ok(data),
        (_, _, Some(error)) => bail!(error),
        _ => bail!("the daemon's answer is empty"),
    }
}
