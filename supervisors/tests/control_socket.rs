//! The control socket under idle clients and bad input, with a real `kith daemon` (hardening
//! issue, item 7): connections that hold every slot and send nothing do not leave other clients
//! hanging in the backlog (they are told the daemon is busy at once, and served once the read
//! deadline frees the slots), and a line that is not UTF-8 gets an error answer.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use kith::limits::{CONTROL_CONNECTIONS_MAX, CONTROL_READ_TIMEOUT};
use kith::testing::eventually_blocking;
use kith::wire::control::SOCKET_FILE;
use support::{kith, Daemon, Home, POLL};

const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];

fn answer(stream: &UnixStream) -> serde_json::Value {
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("an answer line");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn idle_clients_holding_every_slot_get_others_a_busy_answer_not_eagain() {
    let home = Home::init();
    let _daemon = Daemon::start(&home.dir, LOOPBACK);
    let socket = home.dir.join(SOCKET_FILE);
    // The start-up readiness check's own connection may still hold its slot for a moment after
    // it was answered; then one idle client is turned away and `status` finds a free slot. A
    // few bounded tries get a moment when the idle clients hold every slot; a server that never
    // turns anyone away fails every try.
    let (idle, out) = (0..5)
        .find_map(|_| {
            let idle: Vec<UnixStream> = (0..CONTROL_CONNECTIONS_MAX)
                .map(|_| UnixStream::connect(&socket).expect("connect"))
                .collect();
            let out = kith(&home.dir, &["status"]);
            (!out.status.success()).then_some((idle, out))
        })
        .expect("every slot is held by idle clients in one of 5 tries");
    for stream in &idle {
        stream
            .set_read_timeout(Some(CONTROL_READ_TIMEOUT * 3))
            .expect("timeout");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "daemon busy: {CONTROL_CONNECTIONS_MAX} commands in progress; try again"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("os error 11"), "{stderr}");

    // The read deadline answers and closes the idle connections, freeing their slots.
    eventually_blocking(
        "status is served once the deadline frees the slots",
        CONTROL_READ_TIMEOUT * 3,
        POLL * 10,
        || kith(&home.dir, &["status"]).status.success(),
    );
    for stream in &idle {
        let said = answer(stream);
        assert_eq!(said["ok"], false);
        assert!(
            said["error"]
                .as_str()
                .is_some_and(|e| e.contains("no complete request line")),
            "{said}"
        );
    }
}

#[test]
fn a_line_that_is_not_utf8_is_answered_with_an_error() {
    let home = Home::init();
    let _daemon = Daemon::start(&home.dir, LOOPBACK);
    let mut stream = UnixStream::connect(home.dir.join(SOCKET_FILE)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(b"{\"cmd\":\"whoami\xff\xfe\"}\n")
        .expect("send");
    let said = answer(&stream);
    assert_eq!(said["ok"], false, "{said}");
    assert!(
        said["error"]
            .as_str()
            .is_some_and(|e| e.contains("not UTF-8")),
        "{said}"
    );
}
