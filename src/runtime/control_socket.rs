//! The control server: owns the control socket and answers client commands.
//!
//! On start it binds `control.sock` in the data directory (owner-only) and runs an accept loop
//! as a task it owns; each client connection is served by a short task, at most
//! [`CONTROL_CONNECTIONS_MAX`] at once. A client past that bound is answered at once with
//! "daemon busy" (it is never left waiting in the kernel's backlog), a connection that sends no
//! request line within [`CONTROL_READ_TIMEOUT`] is answered an error and closed (idle clients
//! cannot hold the slots), and a line that is not UTF-8 gets an error answer. If accepting fails
//! the loop tells the actor, which fails, so that its supervisor restarts it with a fresh socket.
//! The socket file is removed only by the instance that bound it (a restarted server's new socket
//! survives the old one's late drop). Spawned by the daemon's root supervisor.

use std::future::Future;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::limits::{
    CONTROL_CONNECTIONS_MAX, CONTROL_LINE_BYTES_MAX, CONTROL_READ_TIMEOUT, CONTROL_WRITE_TIMEOUT,
};
use crate::runtime::OwnedTask;
use crate::wire::control::SOCKET_FILE;
use crate::wire::control::{Request, Response};

/// Messages to the control server.
pub enum ControlMsg {
    /// The accept loop failed; the actor fails so that it is restarted.
    AcceptFailed(String),
}

/// The control server actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct ControlServer;

/// What the control server starts with.
#[derive(Clone)]
pub struct ControlArgs {
    /// The data directory holding the socket.
    pub data_dir: PathBuf,
    /// Answers requests (a daemon's node, or a switchboard).
    pub handler: Handler,
}

/// Something that reports the live supervision tree as JSON (provided by whoever built the tree,
/// so that the handlers do not need to know their supervisors).
pub type TreeReporter =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = serde_json::Value> + Send>> + Send + Sync>;

/// Answers one control request.
pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// The control server's state: its accept loop, aborted with it, and the socket file, removed
/// with it (so a stopped daemon leaves no socket for clients to find).
pub struct ControlState {
    _accept: OwnedTask,
    _socket: BoundSocket,
}

/// A socket file this instance bound, known by its device and inode: dropping it removes the
/// file only if the path still names that socket. A restarted server binds a new file at the
/// same path (removing the old one first); the old instance's drop, which may run after that,
/// must not remove the new one.
#[derive(Debug)]
pub(crate) struct BoundSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundSocket {
    fn new(path: &Path) -> std::io::Result<BoundSocket> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(BoundSocket {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                let _ = std::fs::remove_file(&self.path);
            }
            Ok(_) => tracing::debug!(
                path = %self.path.display(),
                "control socket rebound by a newer server; leaving it"
            ),
            Err(_) => {}
        }
    }
}

/// How a control socket serves its clients (the bounds, so that tests can shorten them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Serving {
    /// Connections served at once; past it a client is answered "daemon busy".
    pub(crate) slots: usize,
    /// How long a connection may take to send its next request line.
    pub(crate) read_timeout: Duration,
}

impl Default for Serving {
    fn default() -> Self {
        Serving {
            slots: CONTROL_CONNECTIONS_MAX,
            read_timeout: CONTROL_READ_TIMEOUT,
        }
    }
}

impl Actor for ControlServer {
    type Msg = ControlMsg;
    type State = ControlState;
    type Arguments = ControlArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let path = args.data_dir.join(SOCKET_FILE);
        let (listener, socket) = bind(&path)?;
        let failed = move |reason: String| {
            let _ = myself.cast(ControlMsg::AcceptFailed(reason));
        };
        Ok(ControlState {
            _accept: OwnedTask::spawn(accept_loop(
                listener,
                args.handler,
                Serving::default(),
                failed,
            )),
            _socket: socket,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ControlMsg::AcceptFailed(reason) => {
                Err(format!("control socket accept failed: {reason}").into())
            }
        }
    }
}

fn bind(path: &Path) -> Result<(UnixListener, BoundSocket), ActorProcessingErr> {
    // The data-directory lock is held by this process, so a socket file left here is stale.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("removing stale {}: {e}", path.display()).into()),
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("binding {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let bound = BoundSocket::new(path)?;
    Ok((listener, bound))
}

/// Accept clients until accepting fails (then `failed` is told why). Each client gets a slot and
/// a task; without a free slot it is answered "daemon busy" at once and closed.
pub(crate) async fn accept_loop(
    listener: UnixListener,
    handler: Handler,
    serving: Serving,
    failed: impl FnOnce(String) + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(serving.slots));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                failed(e.to_string());
                return;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            // Answered here, without a task: the line fits in the socket's buffer, so the write
            // does not block, and a flood of clients costs no memory.
            let busy = Response::err(format!(
                "daemon busy: {} commands in progress; try again",
                serving.slots
            ));
            if let Ok(mut out) = serde_json::to_vec(&busy) {
                out.push(b'\n');
                let _ = stream.try_write(&out);
            }
            continue;
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            if let Err(e) = serve(stream, &handler, serving.read_timeout).await {
                tracing::debug!(error = %e, "control client failed");
            }
            drop(permit);
        });
    }
}

/// Why one request line could not be read.
enum LineError {
    /// No full line within the read deadline.
    Timeout,
    /// Longer than [`CONTROL_LINE_BYTES_MAX`].
    TooLong,
    /// Not UTF-8 text.
    NotUtf8,
}

impl LineError {
    fn answer(&self, read_timeout: Duration) -> Response {
        Response::err(match self {
            LineError::Timeout => {
                format!("no complete request line within {read_timeout:?}; closing the connection")
            }
            LineError::TooLong => format!("request longer than {CONTROL_LINE_BYTES_MAX} bytes"),
            LineError::NotUtf8 => {
                "request is not UTF-8 text: send one JSON request per line".into()
            }
        })
    }
}

async fn serve(
    stream: UnixStream,
    handler: &Handler,
    read_timeout: Duration,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(CONTROL_LINE_BYTES_MAX as u64 + 1));
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = tokio::time::timeout(read_timeout, lines.read_until(b'\n', &mut line)).await;
        let outcome = match read {
            Err(_) => Err(LineError::Timeout),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) if line.len() > CONTROL_LINE_BYTES_MAX => Err(LineError::TooLong),
            Ok(Ok(_)) => std::str::from_utf8(&line).map_err(|_| LineError::NotUtf8),
        };
        let (response, close) = match outcome {
            Ok(text) => (
                match serde_json::from_str::<Request>(text) {
                    Ok(request) => handler(request).await,
                    Err(e) => Response::err(format!("malformed request: {e}")),
                },
                false,
            ),
            // A line cut by the size bound or the deadline leaves the stream mid-line: close.
            Err(e) => (e.answer(read_timeout), !matches!(e, LineError::NotUtf8)),
        };
        let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
        out.push(b'\n');
        match tokio::time::timeout(CONTROL_WRITE_TIMEOUT, write.write_all(&out)).await {
            Ok(result) => result?,
            Err(_) => return Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        }
        if close {
            return Ok(());
        }
        lines.get_mut().set_limit(CONTROL_LINE_BYTES_MAX as u64 + 1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::AsyncBufReadExt;

    use super::*;

    fn whoami() -> Vec<u8> {
        let mut line = serde_json::to_vec(&Request::Whoami).unwrap();
        line.push(b'\n');
        line
    }

    fn pong() -> Handler {
        Arc::new(|_request| Box::pin(async { Response::ok(serde_json::json!("pong")) }))
    }

    /// One request line, one answer line.
    async fn ask(stream: &mut UnixStream, line: &[u8]) -> Response {
        stream.write_all(line).await.unwrap();
        read_answer(stream).await
    }

    async fn read_answer(stream: &mut UnixStream) -> Response {
        let mut answer = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(stream).read_line(&mut answer),
        )
        .await
        .expect("an answer in time")
        .unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
    }

    fn listen(serving: Serving) -> (tempfile::TempDir, PathBuf, OwnedTask) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_FILE);
        let (listener, bound) = bind(&path).unwrap();
        let task = OwnedTask::spawn(async move {
            let _bound = bound;
            accept_loop(listener, pong(), serving, |_| {}).await;
        });
        (dir, path, task)
    }

    #[tokio::test]
    async fn a_restarted_servers_socket_survives_the_old_ones_drop() {
        let dir = tempfile::tempdir().unwrap();
        let args = ControlArgs {
            data_dir: dir.path().to_path_buf(),
            handler: pong(),
        };
        let (old, old_handle) = Actor::spawn(None, ControlServer, args.clone())
            .await
            .unwrap();
        // The new instance binds before the old one is gone, as a rest_for_one restart may.
        let (new, new_handle) = Actor::spawn(None, ControlServer, args).await.unwrap();
        old.stop(None);
        old_handle.await.unwrap();
        let path = dir.path().join(SOCKET_FILE);
        assert!(path.exists(), "the old server removed the new one's socket");
        let mut client = UnixStream::connect(&path).await.unwrap();
        let answer = ask(&mut client, &whoami()).await;
        assert!(answer.ok, "{answer:?}");
        new.stop(None);
        new_handle.await.unwrap();
        assert!(
            !path.exists(),
            "the server that bound the socket removes it"
        );
    }

    #[tokio::test]
    async fn a_client_past_the_slots_is_told_the_daemon_is_busy() {
        let (_dir, path, _task) = listen(Serving {
            slots: 2,
            read_timeout: Duration::from_secs(600),
        });
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut idle = UnixStream::connect(&path).await.unwrap();
            // Served once, so this connection surely holds a slot; then it stays idle.
            assert!(ask(&mut idle, &whoami()).await.ok);
            held.push(idle);
        }
        let mut late = UnixStream::connect(&path).await.unwrap();
        let answer = read_answer(&mut late).await;
        assert!(!answer.ok);
        assert_eq!(
            answer.error.as_deref(),
            Some("daemon busy: 2 commands in progress; try again")
        );
        // A slot freed by a client leaving is taken by the next one.
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut next = UnixStream::connect(&path).await.unwrap();
            let answer = ask(&mut next, &whoami()).await;
            if answer.ok {
                break;
            }
            assert!(Instant::now() < deadline, "the freed slot was never reused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn idle_connections_are_closed_at_the_read_deadline_and_free_their_slots() {
        let (_dir, path, _task) = listen(Serving {
            slots: 2,
            read_timeout: Duration::from_millis(300),
        });
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(UnixStream::connect(&path).await.unwrap());
        }
        for stream in &mut idle {
            let answer = read_answer(stream).await;
            let error = answer.error.unwrap_or_default();
            assert!(error.contains("no complete request line"), "{error}");
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "closed after the answer");
        }
        let mut client = UnixStream::connect(&path).await.unwrap();
        assert!(ask(&mut client, &whoami()).await.ok);
    }

    #[tokio::test]
    async fn a_line_that_is_not_utf8_gets_an_error_answer() {
        let (_dir, path, _task) = listen(Serving::default());
        let mut client = UnixStream::connect(&path).await.unwrap();
        let answer = ask(&mut client, b"{\"cmd\":\"who\xff\xfeami\"}\n").await;
        assert!(!answer.ok);
        assert!(
            answer
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("not UTF-8"),
            "{answer:?}"
        );
        // The connection stays usable.
        assert!(ask(&mut client, &whoami()).await.ok);
    }
}
