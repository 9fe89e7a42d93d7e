//! The daemon's web page in a real browser (issue 16): headless Chromium driven through
//! chromedriver (WebDriver, with fantoccini) against real `kith daemon` processes and a real
//! switchboard.
//!
//! One browser session walks what a newcomer does: log in with the link `kith web` prints,
//! post through the form and see it, follow a second local daemon from its profile page's
//! button and see its post arrive without a reload, set a status line on the second daemon's
//! settings page and see it live on the first one's contacts page; and what an attacker
//! tries: a post holding HTML and script (shown as text), a form posted from another site, a
//! request with a foreign Origin, and a DNS-rebinding Host (a name of the attacker's mapped to
//! 127.0.0.1). Screenshots of each page are written to `docs/screenshots/` for the README.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use support::{free_port, kith, kith_json, Daemon, Home, Switchboard};

/// How long a live change may take to show (replication through a switchboard included).
const LIVE_WAIT: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(100);

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run does)");
        let port = free_tcp_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            port,
            profile: tempfile::tempdir().expect("profile dir"),
        }
    }

    async fn browser(&self) -> Client {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("chromium is not installed: apt-get install chromium (.ci/run does)");
        let args = serde_json::json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1000,1000",
            // DNS rebinding: a name of the attacker's that resolves to loopback.
            "--host-resolver-rules=MAP rebind.test 127.0.0.1",
            format!("--user-data-dir={}", self.profile.path().display()),
        ]);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon's flags: any UDP port, the switchboard at `sb`, and its page on a free loopback port.
fn web_daemon_flags(sb: &str) -> Vec<String> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--switchboard".into(),
        sb.into(),
        "--web".into(),
        format!("127.0.0.1:{}", free_tcp_port()),
    ]
}

/// Starts a daemon in `dir` with `flags`.
fn start_daemon(dir: &Path, flags: &[String]) -> Daemon {
    Daemon::start(dir, &flags.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The login link `kith web` prints, and the page's address.
fn web(dir: &Path) -> (String, String) {
    let data = kith_json(dir, &["web", "--json"]);
    (
        data["url"].as_str().unwrap().to_string(),
        data["addr"].as_str().unwrap().to_string(),
    )
}

async fn wait_for_text(c: &Client, what: &str, text: &str) -> String {
    let start = Instant::now();
    let deadline = start + LIVE_WAIT;
    loop {
        let source = c.source().await.expect("page source");
        if source.contains(text) {
            eprintln!("{what}: seen after {:?}", start.elapsed());
            return source;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `{text}` did not appear within {LIVE_WAIT:?}; the page holds:\n{source}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A marker on the window: gone if the page was reloaded or left.
async fn mark(c: &Client) {
    c.execute("window.kithMarker = 'still here'; return true;", vec![])
        .await
        .expect("set marker");
}

async fn not_reloaded(c: &Client) -> bool {
    c.execute("return window.kithMarker === 'still here';", vec![])
        .await
        .expect("read marker")
        .as_bool()
        .unwrap_or(false)
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn submit_form(c: &Client, action: &str) {
    c.find(Locator::Css(&format!(
        "form[action='{action}'] button[type=submit]"
    )))
    .await
    .unwrap_or_else(|e| panic!("the form posting to {action}: {e}"))
    .click()
    .await
    .expect("submit");
}

/// A raw HTTP/1.1 request; the status code and the body.
fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the page");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// A page of another site: a form that posts to `target` (as a cross-site attack would),
/// served once per request by a thread, for as long as the test runs.
fn attacker_site(target: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!DOCTYPE html><html><body><form method=post action='http://{target}/post'>\
         <input name=text value='posted by another site'><input name=csrf value='guess'>\
         <button type=submit id=go>win a prize</button></form></body></html>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_posts_follows_and_sees_posts_and_status_live_and_attacks_fail() {
    let sb_home = tempfile::tempdir().unwrap();
    let sb_port = free_port();
    let _sb = Switchboard::start(sb_home.path(), sb_port);
    let sb = format!("127.0.0.1:{sb_port}");
    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let (fa, fb) = (web_daemon_flags(&sb), web_daemon_flags(&sb));
    let _da = start_daemon(&a.dir, &fa);
    let _db = start_daemon(&b.dir, &fb);
    // B shows its presence to those it follows (the default), so it follows A.
    assert!(kith(&b.dir, &["follow", &a_id]).status.success());
    assert!(kith(&b.dir, &["post", "hello from B, before the follow"])
        .status
        .success());
    assert!(kith(&b.dir, &["profile", "set", "--name", "Bea"])
        .status
        .success());

    let driver = Driver::start();
    let c = driver.browser().await;
    let (a_login, a_addr) = web(&a.dir);
    let (b_login, b_addr) = web(&b.dir);

    // Not logged in: the login page, which says how to get in.
    c.goto(&format!("http://{a_addr}/")).await.unwrap();
    wait_for_text(&c, "login page", "kith web").await;
    shot(&c, "login").await;
    // A wrong token is refused.
    c.goto(&format!("http://{a_addr}/login?token=wrong"))
        .await
        .unwrap();
    wait_for_text(&c, "wrong token", "not this daemon").await;

    // Log in with the link `kith web` prints: the timeline.
    c.goto(&a_login).await.unwrap();
    wait_for_text(&c, "timeline after login", "<h1>Timeline</h1>").await;
    assert!(!c.current_url().await.unwrap().as_str().contains("token"));

    // Post through the form and see it on the timeline.
    c.goto(&format!("http://{a_addr}/compose")).await.unwrap();
    c.find(Locator::Css("#text"))
        .await
        .unwrap()
        .send_keys("my first post from the browser")
        .await
        .unwrap();
    shot(&c, "compose").await;
    submit_form(&c, "/post").await;
    wait_for_text(&c, "own post", "my first post from the browser").await;

    // HTML and script in a post are shown as text, never run or rendered.
    c.goto(&format!("http://{a_addr}/compose")).await.unwrap();
    c.find(Locator::Css("#text"))
        .await
        .unwrap()
        .send_keys("<script>window.pwned = 1</script><b id=injected>bold</b>")
        .await
        .unwrap();
    submit_form(&c, "/post").await;
    wait_for_text(
        &c,
        "escaped post",
        "&lt;script&gt;window.pwned = 1&lt;/script&gt;",
    )
    .await;
    let pwned = c
        .execute("return typeof window.pwned;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, "undefined", "a posted script ran");
    assert!(
        c.find(Locator::Css("#injected")).await.is_err(),
        "posted HTML became an element"
    );
    let text = c
        .find(Locator::Css(".post .text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("<b id=injected>bold</b>"), "{text}");

    // Follow B from its profile page's button.
    let b_profile = format!("http://{a_addr}/profile/{}", urlencode(&b_id));
    c.goto(&b_profile).await.unwrap();
    wait_for_text(&c, "B's profile", "Follow</button>").await;
    c.find(Locator::XPath("//form[contains(@action,'/follow')]/button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "after following", "Unfollow</button>").await;
    // B's earlier post arrives by replication (on the profile page, live or on a later look).
    c.goto(&format!("http://{a_addr}/")).await.unwrap();
    mark(&c).await;
    wait_for_text(&c, "B's earlier post", "hello from B, before the follow").await;
    // A new post of B's arrives on the open timeline without a reload.
    assert!(kith(&b.dir, &["post", "B posts while A watches"])
        .status
        .success());
    wait_for_text(&c, "B's live post", "B posts while A watches").await;
    assert!(not_reloaded(&c).await, "the timeline was reloaded");
    shot(&c, "timeline").await;
    c.goto(&b_profile).await.unwrap();
    wait_for_text(&c, "B's profile after follow", "B posts while A watches").await;
    shot(&c, "profile").await;

    // A's contacts page stays open; B sets a status line on its own settings page, in another
    // window (B's page is another origin: its own login).
    c.goto(&format!("http://{a_addr}/contacts")).await.unwrap();
    mark(&c).await;
    let a_window = c.window().await.unwrap();
    let b_window = c.new_window(false).await.unwrap();
    c.switch_to_window(b_window.handle).await.unwrap();
    c.goto(&b_login).await.unwrap();
    c.goto(&format!("http://{b_addr}/settings")).await.unwrap();
    c.find(Locator::Css("#status"))
        .await
        .unwrap()
        .send_keys("reading in the garden")
        .await
        .unwrap();
    submit_form(&c, "/settings/status").await;
    wait_for_text(&c, "B's settings", "Status line set.").await;
    shot(&c, "settings").await;
    c.close_window().await.unwrap();
    c.switch_to_window(a_window).await.unwrap();
    wait_for_text(&c, "B's status on A's contacts", "reading in the garden").await;
    assert!(not_reloaded(&c).await, "the contacts page was reloaded");
    shot(&c, "contacts").await;
    c.goto(&format!("http://{a_addr}/status")).await.unwrap();
    wait_for_text(&c, "status page", "Supervision tree").await;
    shot(&c, "status").await;
    // A phone's width.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("http://{a_addr}/")).await.unwrap();
    shot(&c, "timeline-phone").await;
    c.set_window_size(1000, 1000).await.unwrap();

    // A form posted from another site is refused (its Origin is not this page's), and
    // nothing is posted.
    let evil = attacker_site(&a_addr);
    c.goto(&format!("http://127.0.0.1:{evil}/")).await.unwrap();
    c.find(Locator::Css("#go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "cross-site post", "refused").await;
    let timeline = kith_json(&a.dir, &["timeline", "--json"]).to_string();
    assert!(!timeline.contains("posted by another site"), "{timeline}");

    // DNS rebinding: the browser reaches the page under another name; refused by its Host.
    let port = a_addr.rsplit(':').next().unwrap();
    c.goto(&format!("http://rebind.test:{port}/"))
        .await
        .unwrap();
    let source = wait_for_text(&c, "rebinding host", "refused").await;
    assert!(source.contains("rebind.test"), "{source}");
    c.close().await.unwrap();

    // A foreign Origin is refused even with a valid session cookie and CSRF token, and the
    // same request from this page's origin goes through.
    let (login, cookie) = log_in(&a_addr, &a_login);
    assert!(
        login.to_lowercase().contains("httponly; samesite=strict"),
        "{login}"
    );
    let (_, compose) = raw(
        &a_addr,
        &format!("GET /compose HTTP/1.1\r\nHost: {a_addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    );
    let csrf = compose
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token in the form");
    let post = |origin: &str, text: &str| {
        let body = format!("csrf={csrf}&text={text}");
        raw(
            &a_addr,
            &format!(
                "POST /post HTTP/1.1\r\nHost: {a_addr}\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let (code, body) = post("https://evil.example", "foreign+origin");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    let (code, body) = post(&format!("http://{a_addr}"), "same+origin");
    assert_eq!(code, 303, "{body}");
    // A rebinding Host with everything else right is refused too, and so is a wrong port.
    for host in ["rebind.test", "127.0.0.1:1"] {
        let (code, body) = raw(
            &a_addr,
            &format!(
                "GET / HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(code, 403, "{host}: {body}");
    }
    let timeline = kith_json(&a.dir, &["timeline", "--json"]).to_string();
    assert!(timeline.contains("same origin"), "{timeline}");
    assert!(!timeline.contains("foreign origin"), "{timeline}");
}

/// A raw HTTP/1.1 request with a binary-safe answer: status, head, body.
fn raw_bytes(addr: &str, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect to the page");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head, out[split + 4..].to_vec())
}

/// Follows `addr`'s login link `login` (a redirect is expected): the answer, and its session
/// cookie.
fn log_in(addr: &str, login: &str) -> (String, String) {
    let (code, answer) = raw(
        addr,
        &format!(
            "GET /login?{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
            login.split('?').nth(1).unwrap()
        ),
    );
    assert_eq!(code, 303, "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    (answer, cookie)
}

/// A session of `addr`'s page from its login link: the cookie and the forms' CSRF token.
fn session(addr: &str, login: &str) -> (String, String) {
    let (_, cookie) = log_in(addr, login);
    let (_, page) = raw(
        addr,
        &format!(
            "GET /inbox HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token in the form")
        .to_string();
    (cookie, csrf)
}

/// A url-encoded form posted from the page's own origin with the session's cookie.
fn form_post(addr: &str, cookie: &str, path: &str, body: &str) -> (u16, String) {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A multipart form (`parts`: name, file name, bytes) posted like the compose form.
fn multipart_post(
    addr: &str,
    cookie: &str,
    path: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> (u16, String, Vec<u8>) {
    let boundary = "----kithtestboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    raw_bytes(addr, &request)
}

fn get_bytes(addr: &str, cookie: &str, path: &str) -> (u16, String, Vec<u8>) {
    raw_bytes(
        addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut c = kind.to_vec();
    c.extend_from_slice(data);
    out.extend_from_slice(&c);
    out.extend(crc32(&c).to_be_bytes());
}

/// A real `w`×`h` RGB PNG (a gradient; deflate's stored blocks, so no compressor is needed).
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.extend([(x * 255 / w) as u8, (y * 255 / h) as u8, 160]);
        }
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// The largest attachment A's config.toml allows in the test below.
const A_MAX_BLOB: usize = 200_000;

/// The parts of the page built after the first test: the status page's connection list
/// updates live; a private message sent in the browser arrives live on the other daemon's
/// inbox page, and the send form names its errors; an image attached in the compose form shows
/// on the timeline with the very bytes of the file, a non-image is only ever a download, and a
/// file over the limit gets a named error; the policies set on the settings page are written
/// to config.toml (its comment and other keys kept) and are in effect after a restart; a
/// forged or missing CSRF token is refused on every new form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sends_private_messages_attaches_an_image_sets_policies_and_sees_connections_live(
) {
    let sb_home = tempfile::tempdir().unwrap();
    let sb_port = free_port();
    let _sb = Switchboard::start(sb_home.path(), sb_port);
    let sb = format!("127.0.0.1:{sb_port}");
    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let config = format!("# kept by the web page\n\n[blobs]\nmax_bytes = {A_MAX_BLOB}\n");
    std::fs::write(a.dir.join("config.toml"), &config).unwrap();
    let (fa, fb) = (web_daemon_flags(&sb), web_daemon_flags(&sb));
    let da = start_daemon(&a.dir, &fa);
    let _db = start_daemon(&b.dir, &fb);
    assert!(kith(&b.dir, &["profile", "set", "--name", "Bea"])
        .status
        .success());

    let driver = Driver::start();
    let c = driver.browser().await;
    let (a_login, a_addr) = web(&a.dir);
    let (b_login, b_addr) = web(&b.dir);
    c.goto(&a_login).await.unwrap();
    wait_for_text(&c, "A's timeline", "<h1>Timeline</h1>").await;

    // The connection list: A's status page is open when B starts following A (and so
    // connects); B's connection appears without a reload.
    c.goto(&format!("http://{a_addr}/status")).await.unwrap();
    let source = wait_for_text(&c, "A's status page", "Supervision tree").await;
    let b_conn = format!("data-peer=\"{b_id}\"");
    assert!(
        !source.contains(&b_conn),
        "B is connected before it follows"
    );
    mark(&c).await;
    assert!(kith(&b.dir, &["follow", &a_id]).status.success());
    wait_for_text(&c, "B's connection, live", &b_conn).await;
    assert!(not_reloaded(&c).await, "the status page was reloaded");
    shot(&c, "status-connections").await;
    assert!(kith(&a.dir, &["follow", &b_id]).status.success());

    // A private message: B's inbox page is open in a window of its own; A writes to B.
    let a_window = c.window().await.unwrap();
    let b_window = c.new_window(false).await.unwrap();
    c.switch_to_window(b_window.handle.clone()).await.unwrap();
    c.goto(&b_login).await.unwrap();
    c.goto(&format!("http://{b_addr}/inbox")).await.unwrap();
    wait_for_text(&c, "B's inbox", "<h1>Inbox</h1>").await;
    mark(&c).await;
    c.switch_to_window(a_window.clone()).await.unwrap();
    c.goto(&format!("http://{a_addr}/inbox")).await.unwrap();
    c.find(Locator::Css("#to"))
        .await
        .unwrap()
        .send_keys(&b_id)
        .await
        .unwrap();
    c.find(Locator::Css("#dm-text"))
        .await
        .unwrap()
        .send_keys("a private hello from A <i>not markup</i>")
        .await
        .unwrap();
    submit_form(&c, "/dm").await;
    wait_for_text(&c, "A's thread with B", "Sent.").await;
    wait_for_text(
        &c,
        "A's message on its thread",
        "a private hello from A &lt;i&gt;",
    )
    .await;
    shot(&c, "dm-thread").await;
    c.switch_to_window(b_window.handle).await.unwrap();
    wait_for_text(
        &c,
        "A's message on B's inbox, live",
        "a private hello from A &lt;i&gt;",
    )
    .await;
    assert!(not_reloaded(&c).await, "B's inbox page was reloaded");
    shot(&c, "inbox").await;
    c.close_window().await.unwrap();
    c.switch_to_window(a_window).await.unwrap();

    // The send form names its errors, keeps what was typed, and sends nothing.
    let (cookie, csrf) = session(&a_addr, &a_login);
    let b_enc = urlencode(&b_id);
    let many = [b_enc.as_str(); kith::limits::DM_RECIPIENTS_MAX + 1].join("+");
    let (code, page) = form_post(
        &a_addr,
        &cookie,
        "/dm",
        &format!("csrf={csrf}&to={many}&text=hi"),
    );
    assert_eq!(code, 400, "{page}");
    assert!(page.contains("at most 7 recipients"), "{page}");
    let (code, page) = form_post(
        &a_addr,
        &cookie,
        "/dm",
        &format!("csrf={csrf}&to=%40nobody.ed25519&text=kept+text"),
    );
    assert_eq!(code, 400, "{page}");
    assert!(page.contains("is not a kith id"), "{page}");
    assert!(
        page.contains("kept text"),
        "the text typed was lost: {page}"
    );
    // A well-formed id nobody here knows: sent (as `kith dm` does), and the thread page says
    // that whether they follow A (and so receive it) is not known.
    let stranger = Home::init().id();
    let (code, answer) = form_post(
        &a_addr,
        &cookie,
        "/dm",
        &format!(
            "csrf={csrf}&to={b_enc}+{}&text=to+two",
            urlencode(&stranger)
        ),
    );
    assert_eq!(code, 303, "{answer}");
    let location = answer
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .expect("a redirect to the thread")
        .trim()
        .to_string();
    let (code, page) = raw(
        &a_addr,
        &format!("GET {location} HTTP/1.1\r\nHost: {a_addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("is not known here"), "{page}");
    // A forged or missing CSRF token: refused, nothing sent.
    for body in [
        format!("csrf=forged&to={b_enc}&text=forged+dm"),
        format!("to={b_enc}&text=forged+dm"),
    ] {
        let (code, page) = form_post(&a_addr, &cookie, "/dm", &body);
        assert_eq!(code, 403, "{page}");
    }
    let inbox = kith_json(&a.dir, &["inbox", "--json"]).to_string();
    assert!(!inbox.contains("forged dm"), "{inbox}");
    assert!(inbox.contains("a private hello from A"), "{inbox}");

    // An image attached in the compose form shows on the timeline, with the file's bytes.
    let files = tempfile::tempdir().unwrap();
    let picture = png(120, 80);
    let picture_path = files.path().join("gradient.png");
    std::fs::write(&picture_path, &picture).unwrap();
    c.goto(&format!("http://{a_addr}/compose")).await.unwrap();
    c.find(Locator::Css("#text"))
        .await
        .unwrap()
        .send_keys("a gradient, attached")
        .await
        .unwrap();
    c.find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&picture_path.display().to_string())
        .await
        .unwrap();
    shot(&c, "compose-attachment").await;
    submit_form(&c, "/post").await;
    wait_for_text(&c, "the attached post", "a gradient, attached").await;
    let img = c
        .find(Locator::Css(".attachments img"))
        .await
        .expect("an image on the timeline");
    let src = img.attr("src").await.unwrap().expect("src");
    assert!(src.starts_with("/blob/"), "{src}");
    // The browser loaded and decoded it (the CSP allows img-src 'self').
    let deadline = Instant::now() + LIVE_WAIT;
    loop {
        let width = c
            .execute(
                "var i = document.querySelector('.attachments img'); return i.complete ? i.naturalWidth : -1;",
                vec![],
            )
            .await
            .unwrap();
        if width.as_i64() == Some(120) {
            break;
        }
        assert!(
            width.as_i64() == Some(-1) && Instant::now() < deadline,
            "the image did not load: {width}"
        );
        tokio::time::sleep(POLL).await;
    }
    shot(&c, "timeline-image").await;
    let (code, head, bytes) = get_bytes(&a_addr, &cookie, &src);
    assert_eq!(code, 200, "{head}");
    assert!(bytes == picture, "the served image is not the file");
    let head = head.to_lowercase();
    assert!(head.contains("content-type: image/png"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("img-src 'self'"), "{head}");
    // Not logged in: no blob. Not held: 404.
    let (code, head, _) = get_bytes(&a_addr, "x=y", &src);
    assert_eq!(code, 303, "{head}");
    let (code, head, _) = get_bytes(&a_addr, &cookie, &format!("/blob/{}", "0".repeat(64)));
    assert_eq!(code, 404, "{head}");

    // A page (HTML with a script) named like an image is still only a download.
    let evil = b"<!DOCTYPE html><script>window.pwned = 1</script>";
    let (code, head, _) = multipart_post(
        &a_addr,
        &cookie,
        "/post",
        &[
            ("csrf", None, csrf.as_bytes()),
            ("text", None, b"not a picture"),
            ("file", Some("cat.png"), evil),
        ],
    );
    assert_eq!(code, 303, "{head}");
    let (_, page) = raw(
        &a_addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {a_addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    );
    let at = page
        .find("not a picture")
        .expect("the post on the timeline");
    let url = page[at..]
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("its attachment")
        .to_string();
    let (code, head, bytes) = get_bytes(&a_addr, &cookie, &url);
    assert_eq!(code, 200, "{head}");
    assert_eq!(bytes, evil);
    let head = head.to_lowercase();
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert!(head.contains("content-disposition: attachment"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    // Too large: a named error (413), nothing stored; a forged, missing or late CSRF token on
    // the compose form: refused before any file is read.
    let big = vec![7u8; A_MAX_BLOB + 1];
    let (code, head, body) = multipart_post(
        &a_addr,
        &cookie,
        "/post",
        &[
            ("csrf", None, csrf.as_bytes()),
            ("text", None, b"too big"),
            ("file", Some("big.bin"), &big),
        ],
    );
    assert_eq!(code, 413, "{head}");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("larger than the largest attachment"),
        "{body}"
    );
    for parts in [
        vec![
            ("csrf", None, &b"forged"[..]),
            ("text", None, &b"forged post"[..]),
            ("file", Some("x.png"), &picture[..]),
        ],
        vec![
            ("text", None, &b"forged post"[..]),
            ("file", Some("x.png"), &picture[..]),
        ],
        vec![
            ("text", None, &b"forged post"[..]),
            ("csrf", None, csrf.as_bytes()),
        ],
    ] {
        let (code, head, _) = multipart_post(&a_addr, &cookie, "/post", &parts);
        assert_eq!(code, 403, "{head}");
    }
    let timeline = kith_json(&a.dir, &["timeline", "--json"]).to_string();
    assert!(!timeline.contains("too big"), "{timeline}");
    assert!(!timeline.contains("forged post"), "{timeline}");
    let held = kith_json(&a.dir, &["blob", "ls", "--json"]);
    assert_eq!(held["blobs"].as_array().unwrap().len(), 2, "{held}");
    let uploads = a.dir.join("web-uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staged uploads were left behind: {left:?}");

    // The policies: set on the settings page, written to config.toml (its comment and
    // [blobs] kept), in effect from the next start.
    let policy = |dir: &Path| kith_json(dir, &["status", "--json"])["policy"].clone();
    assert_eq!(
        policy(&a.dir),
        serde_json::json!({"serve": "everyone", "introductions": "relay", "presence_visible_to": "follows"})
    );
    c.goto(&format!("http://{a_addr}/settings")).await.unwrap();
    for (select, value) in [
        ("#serve", "follows"),
        ("#introductions", "follows"),
        ("#presence_visible_to", "everyone"),
    ] {
        c.find(Locator::Css(select))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }
    submit_form(&c, "/settings/policy").await;
    wait_for_text(&c, "policies saved", "Saved to config.toml").await;
    shot(&c, "settings-policy").await;
    let written = std::fs::read_to_string(a.dir.join("config.toml")).unwrap();
    assert!(written.starts_with("# kept by the web page\n"), "{written}");
    assert!(
        written.contains(&format!("[blobs]\nmax_bytes = {A_MAX_BLOB}")),
        "{written}"
    );
    for line in [
        "serve = \"follows\"",
        "introductions = \"follows\"",
        "presence_visible_to = \"everyone\"",
    ] {
        assert!(written.contains(line), "{line}: {written}");
    }
    // A forged or missing token changes nothing.
    for body in [
        "csrf=forged&serve=everyone&introductions=everyone&presence_visible_to=follows",
        "serve=everyone&introductions=everyone&presence_visible_to=follows",
    ] {
        let (code, page) = form_post(&a_addr, &cookie, "/settings/policy", body);
        assert_eq!(code, 403, "{page}");
    }
    // A value no form offers is refused by name.
    let (code, page) = form_post(
        &a_addr,
        &cookie,
        "/settings/policy",
        &format!("csrf={csrf}&serve=all&introductions=relay&presence_visible_to=follows"),
    );
    assert_eq!(code, 400, "{page}");
    assert!(page.contains("`all`"), "{page}");
    assert_eq!(
        std::fs::read_to_string(a.dir.join("config.toml")).unwrap(),
        written
    );
    // The daemon read them at start: the same until it restarts, then in effect.
    assert_eq!(policy(&a.dir)["serve"], "everyone");
    assert!(da.stop(), "A did not stop cleanly");
    let _da = start_daemon(&a.dir, &fa);
    assert_eq!(
        policy(&a.dir),
        serde_json::json!({"serve": "follows", "introductions": "follows", "presence_visible_to": "everyone"})
    );
    // The session survives the restart; the page shows them in effect.
    c.goto(&format!("http://{a_addr}/settings")).await.unwrap();
    let source = wait_for_text(
        &c,
        "settings after restart",
        "data-policy=\"serve\">follows<",
    )
    .await;
    assert!(
        source.contains("data-policy=\"presence_visible_to\">everyone<"),
        "{source}"
    );
    c.close().await.unwrap();
}

/// `kith web` says when no page is running, and `--web` refuses an address off loopback.
#[test]
fn kith_web_without_a_page_and_a_public_address_are_refused_by_name() {
    let a = Home::init();
    let out = kith(&a.dir, &["web"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the web page is not running"), "{err}");
    let out = Command::new(support::kith_bin())
        .arg("--data-dir")
        .arg(&a.dir)
        .args(["daemon", "--listen", "127.0.0.1:0", "--web", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback only"), "{err}");
    // --web off: no page, and `kith web` says so.
    let _d = Daemon::start(&a.dir, &["--listen", "127.0.0.1:0", "--web", "off"]);
    let out = kith(&a.dir, &["web"]);
    assert!(!out.status.success());
    assert!(!a.dir.join("web.addr").exists());
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
