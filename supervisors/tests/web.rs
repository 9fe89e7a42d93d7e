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
    let flags = |port: u16| -> Vec<String> {
        vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--switchboard".into(),
            sb.clone(),
            "--web".into(),
            format!("127.0.0.1:{port}"),
        ]
    };
    let fa = flags(free_tcp_port());
    let fb = flags(free_tcp_port());
    let _da = Daemon::start(&a.dir, &fa.iter().map(String::as_str).collect::<Vec<_>>());
    let _db = Daemon::start(&b.dir, &fb.iter().map(String::as_str).collect::<Vec<_>>());
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
    let (login_code, login) = raw(
        &a_addr,
        &format!(
            "GET /login?{} HTTP/1.1\r\nHost: {a_addr}\r\nConnection: close\r\n\r\n",
            a_login.split('?').nth(1).unwrap()
        ),
    );
    assert_eq!(login_code, 303, "{login}");
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
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
