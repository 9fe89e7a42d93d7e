//! The web page's HTML, written with maud: templates checked at compile time, and every value
//! put in them escaped (a post holding `<script>` shows as text). Pure functions from the data
//! the pages gathered to markup; nothing here reads the node.
//!
//! The pages work without JavaScript: every action is a form posted to the server (with its
//! CSRF token) and answered with a redirect. `/static/app.js` only adds live updates; it finds
//! what to update by the `data-*` attributes set here.

use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::daemon::control::view::EntryView;
use crate::daemon::web::csrf::FIELD;

/// Which part of the site a page belongs to (its menu item is marked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    /// The timeline.
    Timeline,
    /// Writing a post.
    Compose,
    /// The contacts.
    Contacts,
    /// The node's status.
    Status,
    /// The settings.
    Settings,
    /// Private messages.
    Inbox,
    /// Any other page (a profile, a thread).
    Other,
}

/// What every page's frame needs.
pub struct Frame<'a> {
    /// The page's title.
    pub title: &'a str,
    /// Its menu item.
    pub nav: Nav,
    /// The session's CSRF token (for the log-out form); `None` on the login page.
    pub csrf: Option<&'a str>,
}

/// `/profile/ID`.
pub fn profile_url(id: &str) -> String {
    format!("/profile/{}", utf8_percent_encode(id, NON_ALPHANUMERIC))
}

/// `/thread/MSG`.
pub fn thread_url(id: &str) -> String {
    format!("/thread/{}", utf8_percent_encode(id, NON_ALPHANUMERIC))
}

/// An HTML id for a message or feed id (base64 made safe for `id` and CSS selectors).
pub fn dom_id(prefix: &str, id: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + id.len());
    out.push_str(prefix);
    for c in id.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c),
            '+' => out.push('-'),
            '/' => out.push('_'),
            _ => {}
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM` (UTC) of a time in ms since the epoch.
pub fn when(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rest / 3600,
        (rest % 3600) / 60
    )
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(csrf); }
}

/// The frame of every page: head, menu, main.
pub fn page(frame: &Frame<'_>, body: Markup) -> Markup {
    let item = |nav: Nav, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(frame.nav == nav).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (frame.title) " · kith" }
                link rel="stylesheet" href="/static/style.css";
                @if frame.csrf.is_some() {
                    script src="/static/app.js" defer {}
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                @if let Some(csrf) = frame.csrf {
                    header.top {
                        nav aria-label="Main" {
                            ul {
                                (item(Nav::Timeline, "/", "Timeline"))
                                (item(Nav::Compose, "/compose", "Compose"))
                                (item(Nav::Inbox, "/inbox", "Inbox"))
                                (item(Nav::Contacts, "/contacts", "Contacts"))
                                (item(Nav::Status, "/status", "Status"))
                                (item(Nav::Settings, "/settings", "Settings"))
                            }
                        }
                        form.logout method="post" action="/logout" {
                            (csrf_field(csrf))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (frame.title) }
                    (body)
                }
                p id="live" class="visually-hidden" aria-live="polite" {}
            }
        }
    }
}

/// One entry as an article.
pub fn post(e: &EntryView) -> Markup {
    html! {
        article.post id=(dom_id("m-", &e.id)) data-author=(e.author) {
            header {
                a.author href=(profile_url(&e.author)) { (e.author_name) }
                " "
                a.when href=(thread_url(&e.id)) { time { (when(e.timestamp_ms)) } }
            }
            @if let (Some(to), Some(excerpt)) = (&e.reply_to_author, &e.reply_to_excerpt) {
                p.context { "↳ to " (to) ": " q { (excerpt) } }
            }
            @match e.kind {
                "post" => { p.text { (e.text.as_deref().unwrap_or("")) } }
                "react" => { p.text { "reacted " (e.reaction.as_deref().unwrap_or("")) } }
                "deleted" => { p.text.deleted { "(deleted)" } }
                kind => { p.text.meta { "(" (kind) ")" } }
            }
            @if !e.attachments.is_empty() { (attachments(&e.attachments)) }
            footer {
                @for r in &e.reactions {
                    span.reaction { (r.text) " " (r.count) }
                    " "
                }
                @if e.kind == "post" {
                    a href={ "/compose?reply_to=" (utf8_percent_encode(&e.id, NON_ALPHANUMERIC)) } { "Reply" }
                }
            }
        }
    }
}

/// A post's attachments: images (by name; the server serves only real images as images)
/// shown inline, other files as download links.
pub fn attachments(list: &[crate::daemon::control::view::AttachmentView]) -> Markup {
    use crate::daemon::web::files::{blob_url, named_like_image};
    html! {
        ul.attachments {
            @for a in list {
                @if let Some(url) = blob_url(&a.id) {
                    li {
                        @if named_like_image(a.name.as_deref()) {
                            a href=(url) { img src=(url) alt=(a.name.as_deref().unwrap_or("attached image")) loading="lazy"; }
                        } @else {
                            a href=(url) download { (a.name.as_deref().unwrap_or("attachment")) } " (" (a.size) " bytes)"
                        }
                    }
                }
            }
        }
    }
}

/// One thread of the timeline, as entry views.
pub struct ThreadView {
    /// The root's id.
    pub root_id: String,
    /// The root, if held.
    pub root: Option<EntryView>,
    /// The latest replies, oldest first.
    pub replies: Vec<EntryView>,
    /// Replies not shown here.
    pub more: usize,
}

/// A thread: its root and, under it, its latest replies.
pub fn thread(t: &ThreadView) -> Markup {
    html! {
        li.thread id=(dom_id("t-", &t.root_id)) {
            @match &t.root {
                Some(root) => (post(root)),
                None => p.missing { "A reply to a post not held here." },
            }
            @if !t.replies.is_empty() || t.more > 0 {
                @if t.more > 0 {
                    p.more { a href=(thread_url(&t.root_id)) { (t.more) " earlier " (if t.more == 1 { "reply" } else { "replies" }) } }
                }
                ol.replies {
                    @for r in &t.replies { li { (post(r)) } }
                }
            }
        }
    }
}

/// The timeline: threads newest activity first, and a link to the next page.
pub fn timeline(threads: &[ThreadView], next: Option<&str>, first: bool) -> Markup {
    html! {
        @if first {
            p { a.button href="/compose" { "Write a post" } }
        }
        @if threads.is_empty() {
            p.empty { "Nothing yet: write a post, or follow someone from their profile." }
        }
        ol.timeline id="timeline" data-live=[first.then_some("timeline")] {
            @for t in threads { (thread(t)) }
        }
        @if let Some(next) = next {
            nav aria-label="Pages" {
                a rel="next" href={ "/?before=" (next) } { "Older posts" }
            }
        }
    }
}

/// The compose form (a reply shows what it answers).
pub fn compose(csrf: &str, reply_to: Option<&EntryView>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error { p.error role="alert" { (error) } }
        @if let Some(parent) = reply_to {
            section aria-label="Replying to" { (post(parent)) }
        }
        // The CSRF token is the first field: the server checks it before it reads any file.
        form.compose method="post" action="/post" enctype="multipart/form-data" {
            (csrf_field(csrf))
            @if let Some(parent) = reply_to {
                input type="hidden" name="reply_to" value=(parent.id);
            }
            label for="text" { @if reply_to.is_some() { "Your reply" } @else { "Your post" } }
            textarea id="text" name="text" rows="5" maxlength=(crate::limits::POST_TEXT_BYTES_MAX) {}
            label for="file" { "Attach files (images are shown; at most " (crate::limits::ATTACHMENTS_MAX) ")" }
            input id="file" name="file" type="file" multiple;
            button type="submit" { "Post" }
        }
    }
}

/// A thread's own page: the root and every reply, each indented under what it answers.
pub fn thread_page(root: Option<&EntryView>, replies: &[(EntryView, usize)]) -> Markup {
    html! {
        @match root {
            Some(root) => (post(root)),
            None => p.missing { "The first post of this thread is not held here." },
        }
        ol.replies {
            @for (r, depth) in replies {
                li data-depth=(depth) class={ "depth-" (depth.min(&6)) } { (post(r)) }
            }
        }
    }
}

/// What a profile page shows: `kith profile ID`'s answer, and presence from `kith contacts`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ProfileView {
    /// The id.
    pub id: String,
    /// How it is shown.
    pub label: String,
    /// The published name.
    pub name: Option<String>,
    /// The published description.
    pub description: Option<String>,
    /// Whether it is this node.
    pub own: bool,
    /// Followed.
    pub following: bool,
    /// They follow this node.
    pub follows_you: bool,
    /// Blocked.
    pub blocked: bool,
    /// Posts held.
    pub posts: u64,
    /// Online now (a switchboard says so).
    #[serde(skip)]
    pub online: bool,
    /// Their status line.
    #[serde(skip)]
    pub status: Option<String>,
}

fn presence(id: &str, online: bool, status: Option<&str>) -> Markup {
    html! {
        span.presence.online[online] data-presence=(id) {
            span.dot aria-hidden="true" {}
            span.state { @if online { "online" } @else { "offline" } }
        }
        " "
        span.status data-status=(id) { (status.unwrap_or("")) }
    }
}

/// A profile: name, description, presence, buttons, posts.
pub fn profile(p: &ProfileView, posts: &[EntryView], csrf: &str) -> Markup {
    let button = |action: &str, label: &str| {
        html! {
            form.inline method="post" action={ (profile_url(&p.id)) "/" (action) } {
                (csrf_field(csrf))
                button type="submit" { (label) }
            }
        }
    };
    html! {
        section.card aria-label="Profile" {
            p.id { code { (p.id) } }
            @if let Some(name) = &p.name { @if name != &p.label { p { "Calls themselves " strong { (name) } } } }
            @if let Some(d) = &p.description { p.description { (d) } }
            p { (presence(&p.id, p.online, p.status.as_deref())) }
            p.counts {
                (p.posts) " posts held"
                @if p.follows_you { " · " strong { "follows you" } }
                @if p.blocked { " · " strong { "blocked" } }
            }
            @if !p.own {
                div.actions {
                    @if p.following { (button("unfollow", "Unfollow")) } @else { (button("follow", "Follow")) }
                    @if p.blocked { (button("unblock", "Unblock")) } @else { (button("block", "Block")) }
                }
            } @else {
                p { a href="/settings" { "Edit your profile" } }
            }
        }
        h2 { "Posts" }
        @if posts.is_empty() { p.empty { "No posts held from this feed." } }
        ol.posts id="posts" data-live="posts" data-author=(p.id) {
            @for e in posts { li { (post(e)) } }
        }
    }
}

/// How the last introduction to a contact ended (`kith contacts`' `introduction`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct IntroView {
    /// `direct`, `relay_only`, `refused` or `failed`.
    pub answer: String,
    /// The switchboard's sentence, for a refusal.
    pub reason: Option<String>,
}

/// One contact, as `kith contacts` answers it (and whether they follow back).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ContactRow {
    /// Their id.
    pub id: String,
    /// How they are shown.
    pub label: String,
    /// Followed.
    pub following: bool,
    /// Blocked.
    pub blocked: bool,
    /// Online now.
    pub online: bool,
    /// Their status line.
    pub status: Option<String>,
    /// `direct` or `relayed`, if connected.
    pub connection: Option<String>,
    /// How the last introduction ended.
    pub introduction: Option<IntroView>,
    /// Last connection (ms since the epoch).
    pub last_seen_ms: Option<u64>,
    /// They follow this node (known for the feeds held here).
    #[serde(skip)]
    pub follows_you: bool,
}

fn outcome(o: &IntroView) -> Markup {
    html! {
        @if o.answer == "refused" || o.answer == "failed" {
            span.refused { "introduction " (o.answer) @if let Some(r) = &o.reason { ": " (r) } }
        } @else {
            span { "introduced (" (o.answer.replace('_', " ")) ")" }
        }
    }
}

/// The form that follows someone by id or contact card.
pub fn follow_form(csrf: &str) -> Markup {
    html! {
        form.follow method="post" action="/follow" {
            (csrf_field(csrf))
            label for="who" { "Follow someone: their id (" code { "@….ed25519" } ") or contact card (" code { "kith:…" } ")" }
            input id="who" name="who" required autocomplete="off";
            button type="submit" { "Follow" }
        }
    }
}

/// The rolodex: presence, status lines, who follows back, introductions refused and why.
pub fn contacts(rows: &[ContactRow]) -> Markup {
    html! {
        @if rows.is_empty() { p.empty { "No contacts yet. Follow someone with " code { "kith follow" } " or from their profile." } }
        ul.contacts id="contacts" {
            @for r in rows {
                li.contact id=(dom_id("c-", &r.id)) {
                    a.name href=(profile_url(&r.id)) { (r.label) }
                    " "
                    (presence(&r.id, r.online, r.status.as_deref()))
                    p.facts {
                        @if r.following { "following" } @else if r.blocked { "blocked" } @else { "not followed" }
                        @if r.follows_you { " · follows you" }
                        @if let Some(c) = &r.connection { " · connected " (c) }
                        @if let Some(o) = &r.introduction { " · " (outcome(o)) }
                        @if let Some(ms) = r.last_seen_ms { " · last seen " (when(ms)) }
                    }
                }
            }
        }
    }
}

/// One feed's replication progress.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProgressRow {
    /// The feed.
    pub feed: String,
    /// How it is shown.
    pub label: String,
    /// The latest sequence held.
    pub held: u64,
    /// The highest sequence a peer announced (at least `held`).
    pub target: u64,
    /// Entries received from peers since the replicator started.
    pub received: u64,
}

/// A live connection, as `kith status` answers it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ConnRow {
    /// The peer.
    pub peer: String,
    /// Its address (or the relay's fake one).
    pub addr: String,
    /// Through a switchboard.
    pub relayed: bool,
    /// Round-trip time.
    pub rtt_us: u64,
    /// How the peer is shown (filled in by the page).
    #[serde(skip)]
    pub label: String,
}

/// A switchboard link, as `kith status` answers it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct LinkRow {
    /// The target.
    pub target: String,
    /// `connecting`, `joined`, `refused`.
    pub state: String,
    /// Why not joined.
    pub reason: Option<String>,
    /// This node's address as the switchboard sees it.
    pub observed: Option<String>,
}

/// A supervisor and its children, as `kith status` answers it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct TreeRow {
    /// Its name (a supervisor) or id (a child).
    pub name: String,
    /// A child's id.
    pub id: String,
    /// A supervisor's strategy.
    pub strategy: String,
    /// A supervisor's restarts.
    pub total_restarts: u64,
    /// A child's state.
    pub state: String,
    /// A child's restarts.
    pub restart_count: u64,
    /// A supervisor's children.
    pub children: Vec<TreeRow>,
    /// A child that is a supervisor: its report.
    pub supervisor: Option<Box<TreeRow>>,
}

/// What the status page shows.
#[derive(Clone, Debug, Default)]
pub struct StatusView {
    /// This node's id.
    pub id: String,
    /// Where it listens for peers.
    pub listen: Option<String>,
    /// The supervision tree.
    pub tree: Option<TreeRow>,
    /// Live connections.
    pub connections: Vec<ConnRow>,
    /// Switchboard links.
    pub switchboards: Vec<LinkRow>,
    /// Replication per followed feed.
    pub progress: Vec<ProgressRow>,
}

/// Children of one supervisor drawn at most (a dynamic supervisor may have thousands).
const TREE_CHILDREN_SHOWN: usize = 64;

fn tree_node(r: &TreeRow) -> Markup {
    html! {
        span.sup { (r.name) } " "
        small { (r.strategy.replace('_', " ")) ", " (r.total_restarts) " restarts" }
        @if !r.children.is_empty() {
            ul {
                @for c in r.children.iter().take(TREE_CHILDREN_SHOWN) {
                    li {
                        @match &c.supervisor {
                            Some(s) => (tree_node(s)),
                            None => { span { (c.id) } " " small { (c.state) ", " (c.restart_count) " restarts" } },
                        }
                    }
                }
                @if r.children.len() > TREE_CHILDREN_SHOWN { li { "… " (r.children.len() - TREE_CHILDREN_SHOWN) " more" } }
            }
        }
    }
}

/// How a peer without a contact row is shown: its short id.
pub fn short_label(id: &str) -> String {
    id.parse::<crate::identity::FeedId>()
        .map(|f| f.short())
        .unwrap_or_else(|_| id.to_string())
}

/// The live connections (replaced whole by the `connections` live event).
pub fn connections(list: &[ConnRow]) -> Markup {
    html! {
        div id="connections" data-live="connections" {
            @if list.is_empty() { p.empty { "No peer connected." } }
            ul {
                @for c in list {
                    li data-peer=(c.peer) {
                        a href=(profile_url(&c.peer)) { (c.label) } " · "
                        @if c.relayed { strong { "relayed" } } @else { "direct" }
                        " · " code { (c.addr) } " · rtt " (c.rtt_us / 1000) " ms"
                    }
                }
            }
        }
    }
}

/// The status page: connections, replication, switchboards, supervision tree.
pub fn status(s: &StatusView) -> Markup {
    html! {
        p { "This node: " code { (s.id) } @if let Some(l) = &s.listen { " · listening on " code { (l) } } }
        h2 { "Connections" }
        (connections(&s.connections))
        h2 { "Replication" }
        @if s.progress.is_empty() { p.empty { "No followed feed." } }
        ul.progress {
            @for p in &s.progress {
                li {
                    a href=(profile_url(&p.feed)) { (p.label) } " "
                    progress data-feed=(p.feed) value=(p.held) max=(p.target.max(1)) { (p.held) " of " (p.target) }
                    " " span data-feed-text=(p.feed) { (p.held) " of " (p.target) }
                    " " small { (p.received) " received" }
                }
            }
        }
        h2 { "Switchboards" }
        @if s.switchboards.is_empty() { p.empty { "No switchboard: start the daemon with " code { "--switchboard HOST:PORT" } "." } }
        ul {
            @for l in &s.switchboards {
                li {
                    code { (l.target) } " · " (l.state)
                    @if let Some(r) = &l.reason { " · " (r) }
                    @if let Some(o) = &l.observed { " · seen as " code { (o) } }
                }
            }
        }
        h2 { "Supervision tree" }
        @match &s.tree {
            Some(t) => { div.tree { ul { li { (tree_node(t)) } } } },
            None => p.empty { "The tree is starting." },
        }
    }
}

/// What the settings page shows.
pub struct SettingsView {
    /// The published name.
    pub name: Option<String>,
    /// The published description.
    pub description: Option<String>,
    /// The status line.
    pub status: Option<String>,
    /// Whom the node serves.
    pub serve: String,
    /// How it answers introductions.
    pub introductions: String,
    /// Who sees its presence.
    pub presence_visible_to: String,
    /// What `config.toml` says of the three (from the next start), where it says anything.
    pub configured: [Option<String>; 3],
    /// Why `config.toml` could not be read, if it could not.
    pub config_error: Option<String>,
}

fn choice(name: &str, label: &str, options: &[(&str, &str)], current: &str) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            @for (value, text) in options {
                option value=(value) selected[*value == current] { (text) }
            }
        }
    }
}

/// The settings: profile, status line, policies.
pub fn settings(
    s: &SettingsView,
    csrf: &str,
    notice: Option<&str>,
    policy_notice: Option<&str>,
) -> Markup {
    html! {
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        section aria-labelledby="h-profile" {
            h2 id="h-profile" { "Profile" }
            form method="post" action="/settings/profile" {
                (csrf_field(csrf))
                label for="name" { "Name" }
                input id="name" name="name" value=[s.name.as_deref()] maxlength="64";
                label for="description" { "Description" }
                textarea id="description" name="description" rows="3" { (s.description.as_deref().unwrap_or("")) }
                button type="submit" { "Publish profile" }
            }
        }
        section aria-labelledby="h-status" {
            h2 id="h-status" { "Status line" }
            p { "Shown to those who follow you while you are online." }
            form method="post" action="/settings/status" {
                (csrf_field(csrf))
                label for="status" { "Status" }
                input id="status" name="status" value=[s.status.as_deref()] maxlength="140";
                button type="submit" { "Set status" }
            }
        }
        section aria-labelledby="h-policy" {
            h2 id="h-policy" { "Serving, introductions and presence" }
            @if let Some(n) = policy_notice { p.notice role="status" { (n) } }
            p { "In effect now:" }
            dl {
                dt { "Serve feeds to" } dd data-policy="serve" { (s.serve) }
                dt { "Introductions from strangers" } dd data-policy="introductions" { (s.introductions) }
                dt { "Who sees you online" } dd data-policy="presence_visible_to" { (s.presence_visible_to) }
            }
            @let next = |i: usize, now: &str| s.configured[i].clone().unwrap_or_else(|| now.to_string());
            @let (serve, intro, vis) = (next(0, &s.serve), next(1, &s.introductions), next(2, &s.presence_visible_to));
            @if serve != s.serve || intro != s.introductions || vis != s.presence_visible_to {
                p.notice { "config.toml says " strong { "serve " (serve) ", introductions " (intro) ", presence visible to " (vis) } ": the daemon uses them from its next start." }
            }
            @if let Some(e) = &s.config_error { p.error role="alert" { (e) } }
            form method="post" action="/settings/policy" {
                (csrf_field(csrf))
                (choice("serve", "Serve feeds to", &[("everyone", "everyone (not blocked)"), ("follows", "only those you follow")], &serve))
                (choice("introductions", "Introductions from people you do not follow", &[("relay", "relayed only (your address stays hidden)"), ("follows", "refused"), ("everyone", "direct")], &intro))
                (choice("presence_visible_to", "Who sees you online and your status line", &[("follows", "those you follow"), ("followers", "those who follow you"), ("everyone", "everyone (not blocked)")], &vis))
                button type="submit" { "Save to config.toml" }
            }
            p { "The daemon reads these when it starts, so they take effect when you restart it (" code { "kith daemon" } "); a flag given to it (" code { "--serve" } ", " code { "--introductions" } ", " code { "--presence-visible-to" } ") still wins over config.toml." }
        }
    }
}

/// `/inbox/ID`: the private messages exchanged with one id.
pub fn inbox_url(id: &str) -> String {
    format!("/inbox/{}", utf8_percent_encode(id, NON_ALPHANUMERIC))
}

/// Someone a private message names, as `kith inbox` answers it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Person {
    /// Their id.
    pub id: String,
    /// How they are shown.
    pub label: String,
}

/// One conversation of the inbox (`kith inbox`'s answer).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ConversationRow {
    /// The others in it (not this node).
    pub with: Vec<Person>,
    /// How many messages (unknown for one inserted live).
    pub messages: Option<u64>,
    /// When the latest was written (ms since the epoch).
    pub last_ms: u64,
    /// Who wrote the latest.
    pub last_from: String,
    /// Its first words.
    pub last_text: String,
}

/// The HTML id of the conversation with `with` (ids in the order given).
pub fn conversation_dom_id(with: &[Person]) -> String {
    let ids: String = with.iter().map(|p| p.id.as_str()).collect();
    dom_id("dm-", &ids)
}

/// One conversation row: with whom, the latest message, a link to the thread.
pub fn conversation(c: &ConversationRow) -> Markup {
    let names: Vec<&str> = c.with.iter().map(|p| p.label.as_str()).collect();
    html! {
        li.conversation id=(conversation_dom_id(&c.with)) {
            @match c.with.first() {
                Some(first) => a.name href=(inbox_url(&first.id)) { (names.join(", ")) },
                None => a.name href="#" { "yourself" },
            }
            " · " time { (when(c.last_ms)) }
            @if let Some(n) = c.messages { " · " (n) (if n == 1 { " message" } else { " messages" }) }
            p.text { (c.last_from) ": " (c.last_text) }
        }
    }
}

/// What the send form shows again after an error.
#[derive(Clone, Debug, Default)]
pub struct DmDraft {
    /// The recipients as typed.
    pub to: String,
    /// The text as typed.
    pub text: String,
}

/// The form that sends a private message to 1–7 ids.
pub fn dm_form(csrf: &str, draft: &DmDraft, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.dm method="post" action="/dm" {
            (csrf_field(csrf))
            label for="to" { "To: up to " (crate::limits::DM_RECIPIENTS_MAX) " ids (" code { "@….ed25519" } "), separated by spaces" }
            input id="to" name="to" required autocomplete="off" value=(draft.to);
            label for="dm-text" { "Message (only they and you can read it)" }
            textarea id="dm-text" name="text" rows="4" required maxlength=(crate::limits::DM_TEXT_BYTES_MAX) { (draft.text) }
            button type="submit" { "Send privately" }
        }
    }
}

/// The inbox: conversations newest first, and the send form.
pub fn inbox(
    rows: &[ConversationRow],
    partial: bool,
    csrf: &str,
    draft: &DmDraft,
    error: Option<&str>,
) -> Markup {
    html! {
        (dm_form(csrf, draft, error))
        h2 { "Conversations" }
        @if rows.is_empty() { p.empty id="inbox-empty" { "No private messages yet." } }
        @if partial { p.notice { "Only the latest private messages held were read." } }
        ol.conversations id="conversations" data-live="inbox" {
            @for c in rows { (conversation(c)) }
        }
    }
}

/// One private message of a thread (`kith dm --thread`'s answer).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct DmMessage {
    /// Its message id.
    pub id: String,
    /// Its author.
    pub author: String,
    /// How the author is shown.
    pub author_name: String,
    /// When it was written.
    pub timestamp_ms: u64,
    /// Whom it is for (besides the author).
    pub to: Vec<Person>,
    /// The text.
    pub text: String,
}

/// One private message.
pub fn dm_message(m: &DmMessage) -> Markup {
    let to: Vec<&str> = m.to.iter().map(|p| p.label.as_str()).collect();
    html! {
        li.dm id=(dom_id("m-", &m.id)) {
            header {
                a.author href=(profile_url(&m.author)) { (m.author_name) }
                " → " (to.join(", ")) " · " time { (when(m.timestamp_ms)) }
            }
            p.text { (m.text) }
        }
    }
}

/// The thread with one id: its messages oldest first, and the form to answer.
pub fn dm_thread(
    with: &Person,
    messages: &[DmMessage],
    notices: &[String],
    csrf: &str,
    draft: &DmDraft,
) -> Markup {
    html! {
        p { "Private messages exchanged with " a href=(profile_url(&with.id)) { (with.label) } "." }
        @for n in notices { p.notice role="status" { (n) } }
        @if messages.is_empty() { p.empty { "None held yet." } }
        ol.dms id="dms" data-live="dm-thread" data-with=(with.id) {
            @for m in messages { (dm_message(m)) }
        }
        (dm_form(csrf, draft, None))
    }
}

/// The login page.
pub fn login(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        p { "Run " code { "kith web" } " in a terminal: it prints this page's address with your login token." }
        form method="post" action="/login" {
            label for="token" { "Login token" }
            input id="token" name="token" type="password" autocomplete="off" required;
            button type="submit" { "Log in" }
        }
    }
}

/// A page that says what went wrong.
pub fn problem(text: &str) -> Markup {
    html! { p.error role="alert" { (text) } p { a href="/" { "Back to the timeline" } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real stored post of `text`, as the control socket shows it.
    fn entry(text: &str) -> EntryView {
        use crate::feed::Content;
        use crate::ingest::{run_batch, Op};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let me = crate::identity::Identity::generate();
        let post = Content::Text {
            text: text.into(),
            root: None,
            branch: None,
            mentions: vec![],
        };
        run_batch(&store, &me, vec![Op::Publish(post)], 1_000)
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        let stored = store.read().unwrap().feed(&me.id(), 1).unwrap();
        let mut view = EntryView::from(&stored[0]);
        view.author_name = "<b>x</b>".into();
        view
    }

    #[test]
    fn text_and_names_are_escaped_and_ids_made_safe() {
        let html = post(&entry("<script>alert(1)</script>\"'&")).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"), "{html}");
        assert_eq!(dom_id("m-", "%abc+/=.b3"), "m-abc-_b3");
        assert_eq!(thread_url("%abc+/=.b3"), "/thread/%25abc%2B%2F%3D%2Eb3");
    }

    #[test]
    fn times_are_civil_utc() {
        assert_eq!(when(0), "1970-01-01 00:00");
        assert_eq!(when(1_795_000_000_000), "2026-11-18 11:06");
        assert_eq!(when(951_782_400_000), "2000-02-29 00:00");
    }
}
