//! The web page's handlers: one per page and per form.
//!
//! Every page needs a session ([`Authed`]: without one the browser is sent to `/login`), every
//! form is checked against the session's CSRF token, and every change is made through the
//! same answers as the command line ([`WebState::ask`]) and answered with a redirect (303),
//! so the pages work with JavaScript off and a reload never posts twice.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::Markup;
use serde::Deserialize;

use crate::daemon::web::auth::{clear_cookie, session_of, set_cookie, Session};
use crate::daemon::web::csrf;
use crate::daemon::web::error::WebError;
use crate::daemon::web::state::{cursor_text, parse_cursor, WebState};
use crate::daemon::web::templates::{self, Frame, Nav, ProfileView, SettingsView, StatusView};
use crate::daemon::web::{attach, files, policy};
use crate::feed::{now_ms, MsgId};
use crate::identity::FeedId;
use crate::limits::{WEB_PROFILE_POSTS, WEB_SESSION_TTL};
use crate::wire::control::Request;

/// A request from a logged-in browser.
pub struct Authed(pub Session);

impl FromRequestParts<WebState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let cookies = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        match session_of(&state.keys, &state.cookie, cookies, now_ms()) {
            Some(session) => Ok(Authed(session)),
            None if parts.uri.path() == "/events" => {
                Err((StatusCode::UNAUTHORIZED, "log in first\n").into_response())
            }
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

pub(crate) fn framed(
    state: &WebState,
    session: &Session,
    title: &str,
    nav: Nav,
    body: Markup,
) -> Response {
    let token = csrf::token(&state.keys, session);
    let frame = Frame {
        title,
        nav,
        csrf: Some(&token),
    };
    html(StatusCode::OK, templates::page(&frame, body))
}

/// A page that says what went wrong, with the status that fits.
pub(crate) fn problem(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    e: &WebError,
) -> Response {
    let mut response = framed(
        state,
        session,
        "Something went wrong",
        Nav::Other,
        templates::problem(&e.to_string()),
    );
    *response.status_mut() = status;
    response
}

fn forbidden(text: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

pub(crate) fn csrf_refused() -> Response {
    forbidden("refused: this form did not come from this page (its CSRF token is missing or stale); reload the page and try again")
}

/// `?before=CURSOR`.
#[derive(Deserialize)]
pub struct TimelineQuery {
    before: Option<String>,
}

/// `GET /`: the timeline.
pub async fn timeline(
    State(state): State<WebState>,
    Authed(session): Authed,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let before = q.before.as_deref().and_then(parse_cursor);
    match timeline_body(&state, before.is_none(), before) {
        Ok(body) => framed(&state, &session, "Timeline", Nav::Timeline, body),
        Err(e) => problem(&state, &session, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// The timeline's content (what `kith bench web` renders).
pub fn timeline_body(
    state: &WebState,
    first: bool,
    before: Option<crate::store::TimelineCursor>,
) -> Result<Markup, WebError> {
    let (threads, next) = state.timeline(before)?;
    let next = next.map(|c| cursor_text(&c));
    Ok(templates::timeline(&threads, next.as_deref(), first))
}

/// The whole timeline page for a session, as a string (the benchmark's unit of work).
pub fn timeline_page(state: &WebState, session: &Session) -> Result<String, WebError> {
    let body = timeline_body(state, true, None)?;
    let token = csrf::token(&state.keys, session);
    let frame = Frame {
        title: "Timeline",
        nav: Nav::Timeline,
        csrf: Some(&token),
    };
    Ok(templates::page(&frame, body).into_string())
}

/// `GET /thread/MSG`: a thread, every reply under what it answers.
pub async fn thread(
    State(state): State<WebState>,
    Authed(session): Authed,
    Path(id): Path<String>,
) -> Response {
    match state.ask(Request::Thread { id }).await {
        Ok(data) => {
            let body = thread_body(&state, &data);
            framed(&state, &session, "Thread", Nav::Other, body)
        }
        Err(e) => problem(&state, &session, StatusCode::NOT_FOUND, &e),
    }
}

/// The thread page from `kith thread`'s answer: its entries are re-read so that they are
/// shown by the same template as everywhere else.
fn thread_body(state: &WebState, data: &serde_json::Value) -> Markup {
    let ids = |v: &serde_json::Value| -> Option<MsgId> { v["id"].as_str()?.parse().ok() };
    let root_id = data["root"].as_object().and(ids(&data["root"]));
    let replies: Vec<(MsgId, usize)> = data["replies"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|r| Some((ids(r)?, r["depth"].as_u64()? as usize)))
                .collect()
        })
        .unwrap_or_default();
    let read = || -> Result<_, WebError> {
        let reader = state.node.store.read()?;
        let mut list = Vec::new();
        for id in root_id.iter().chain(replies.iter().map(|(id, _)| id)) {
            list.extend(reader.message(id)?);
        }
        drop(reader);
        state.views(&list)
    };
    match read() {
        Ok(views) => {
            let mut views = views.into_iter();
            let root = root_id.and_then(|_| views.next());
            let replies: Vec<_> = views.zip(replies.iter().map(|(_, d)| *d)).collect();
            templates::thread_page(root.as_ref(), &replies)
        }
        Err(e) => templates::problem(&e.to_string()),
    }
}

/// `?reply_to=MSG`.
#[derive(Deserialize)]
pub struct ComposeQuery {
    reply_to: Option<String>,
}

/// `GET /compose`: the form (for a reply, with the post it answers).
pub async fn compose(
    State(state): State<WebState>,
    Authed(session): Authed,
    Query(q): Query<ComposeQuery>,
) -> Response {
    compose_with(
        &state,
        &session,
        q.reply_to.as_deref(),
        None,
        StatusCode::OK,
    )
}

fn compose_with(
    state: &WebState,
    session: &Session,
    reply_to: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let parent = reply_to
        .and_then(|r| r.parse::<MsgId>().ok())
        .and_then(|id| {
            let entry = state.node.store.read().ok()?.message(&id).ok()??;
            state.views(&[entry]).ok()?.pop()
        });
    let token = csrf::token(&state.keys, session);
    let title = if parent.is_some() { "Reply" } else { "Compose" };
    let frame = Frame {
        title,
        nav: Nav::Compose,
        csrf: Some(&token),
    };
    let body = templates::compose(&token, parent.as_ref(), error);
    html(status, templates::page(&frame, body))
}

/// The compose form, sent without files (`application/x-www-form-urlencoded`).
#[derive(Deserialize)]
pub struct PostForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
    reply_to: Option<String>,
}

/// `POST /post`: publish, then back to the timeline (or the thread of a reply). The form
/// comes as `multipart/form-data` when it may carry files ([`attach::read_compose`]), or
/// url-encoded (a browser without the file input, a script).
pub async fn post(
    State(state): State<WebState>,
    Authed(session): Authed,
    request: axum::extract::Request,
) -> Response {
    let multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    // Held to the end of the handler: the staged files are removed when it drops.
    let (text, reply_to, files, _staged) = if multipart {
        let form = match axum::extract::Multipart::from_request(request, &state).await {
            Ok(form) => form,
            Err(rejection) => return rejection.into_response(),
        };
        match attach::read_compose(&state, &session, form).await {
            Ok(mut c) => {
                let files = std::mem::take(&mut c.files);
                (c.text.clone(), c.reply_to.clone(), files, Some(c))
            }
            Err(attach::UploadError::Csrf) => return csrf_refused(),
            Err(e) => {
                tracing::info!(error = %e, "web page: a compose form was refused");
                return compose_with(&state, &session, None, Some(&e.to_string()), e.status());
            }
        }
    } else {
        let Form(form) = match Form::<PostForm>::from_request(request, &state).await {
            Ok(form) => form,
            Err(rejection) => return rejection.into_response(),
        };
        if !csrf::check(&state.keys, &session, &form.csrf) {
            return csrf_refused();
        }
        let reply_to = form.reply_to.filter(|r| !r.is_empty());
        (form.text, reply_to, Vec::new(), None)
    };
    let text = text.replace("\r\n", "\n");
    let request = if files.is_empty() {
        Request::Post {
            text,
            reply_to: reply_to.clone(),
        }
    } else {
        Request::PostAttached {
            text,
            reply_to: reply_to.clone(),
            attach: files.iter().map(|p| p.display().to_string()).collect(),
        }
    };
    let answer = state.ask(request).await;
    drop(_staged);
    match answer {
        Ok(_) => match reply_to {
            Some(r) => Redirect::to(&templates::thread_url(&r)).into_response(),
            None => Redirect::to("/").into_response(),
        },
        Err(e) => compose_with(
            &state,
            &session,
            reply_to.as_deref(),
            Some(&e.to_string()),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// `GET /profile/ID`.
pub async fn profile(
    State(state): State<WebState>,
    Authed(session): Authed,
    Path(id): Path<String>,
) -> Response {
    match profile_view(&state, &id).await {
        Ok((view, posts)) => {
            let token = csrf::token(&state.keys, &session);
            let body = templates::profile(&view, &posts, &token);
            let title = view.label.clone();
            framed(&state, &session, &title, Nav::Other, body)
        }
        Err(e) => problem(&state, &session, StatusCode::NOT_FOUND, &e),
    }
}

async fn profile_view(
    state: &WebState,
    id: &str,
) -> Result<(ProfileView, Vec<crate::daemon::control::view::EntryView>), WebError> {
    let feed: FeedId = id
        .parse()
        .map_err(|e: crate::identity::IdentityError| WebError::Answer(e.to_string()))?;
    let data = state
        .ask(Request::Profile {
            id: Some(id.to_string()),
        })
        .await?;
    let mut view: ProfileView = serde_json::from_value(data)
        .map_err(|e| WebError::Answer(format!("the profile could not be read: {e}")))?;
    if let Some(c) = state
        .contacts()
        .await?
        .into_iter()
        .find(|c| c.id == view.id)
    {
        view.online = c.online;
        view.status = c.status;
    }
    let list: Vec<_> = state
        .node
        .feed(&feed, WEB_PROFILE_POSTS * 2)?
        .into_iter()
        .filter(|e| e.content.as_ref().is_some_and(|c| c.post_text().is_some()))
        .take(WEB_PROFILE_POSTS)
        .collect();
    Ok((view, state.views(&list)?))
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /profile/ID/ACTION`: follow, unfollow, block, unblock.
pub async fn profile_action(
    State(state): State<WebState>,
    Authed(session): Authed,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf::check(&state.keys, &session, &form.csrf) {
        return csrf_refused();
    }
    let request = match action.as_str() {
        "follow" => Request::Follow {
            id: id.clone(),
            addr: None,
        },
        "unfollow" => Request::Unfollow { id: id.clone() },
        "block" => Request::Block { id: id.clone() },
        "unblock" => Request::Unblock { id: id.clone() },
        _ => return (StatusCode::NOT_FOUND, "no such action\n").into_response(),
    };
    match state.ask(request).await {
        Ok(_) => Redirect::to(&templates::profile_url(&id)).into_response(),
        Err(e) => problem(&state, &session, StatusCode::BAD_REQUEST, &e),
    }
}

/// The contacts page's follow form: an id or a contact card.
#[derive(Deserialize)]
pub struct FollowForm {
    #[serde(default)]
    csrf: String,
    who: String,
}

/// `POST /follow`: follow an id (`@….ed25519`) or a card (`kith:…`), then open their profile.
pub async fn follow(
    State(state): State<WebState>,
    Authed(session): Authed,
    Form(form): Form<FollowForm>,
) -> Response {
    if !csrf::check(&state.keys, &session, &form.csrf) {
        return csrf_refused();
    }
    let who = form.who.trim().to_string();
    let request = if who.starts_with("kith:") {
        Request::FollowCard { card: who }
    } else {
        Request::Follow {
            id: who,
            addr: None,
        }
    };
    match state.ask(request).await {
        Ok(data) => match data["contact"]["id"].as_str() {
            Some(id) => Redirect::to(&templates::profile_url(id)).into_response(),
            None => Redirect::to("/contacts").into_response(),
        },
        Err(e) => problem(&state, &session, StatusCode::BAD_REQUEST, &e),
    }
}

/// `GET /contacts`.
pub async fn contacts(State(state): State<WebState>, Authed(session): Authed) -> Response {
    match state.contacts().await {
        Ok(rows) => {
            let token = csrf::token(&state.keys, &session);
            let body = maud::html! {
                (templates::follow_form(&token))
                (templates::contacts(&rows))
            };
            framed(&state, &session, "Contacts", Nav::Contacts, body)
        }
        Err(e) => problem(&state, &session, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `GET /status`.
pub async fn status(State(state): State<WebState>, Authed(session): Authed) -> Response {
    match status_view(&state).await {
        Ok(view) => framed(
            &state,
            &session,
            "Status",
            Nav::Status,
            templates::status(&view),
        ),
        Err(e) => problem(&state, &session, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

async fn status_view(state: &WebState) -> Result<StatusView, WebError> {
    let data = state.ask(Request::Status).await?;
    let labels: std::collections::BTreeMap<String, String> = state
        .contacts()
        .await?
        .into_iter()
        .map(|c| (c.id, c.label))
        .collect();
    let mut connections: Vec<templates::ConnRow> =
        serde_json::from_value(data["connections"].clone()).unwrap_or_default();
    for c in &mut connections {
        c.label = labels
            .get(&c.peer)
            .cloned()
            .unwrap_or_else(|| templates::short_label(&c.peer));
    }
    Ok(StatusView {
        id: data["id"].as_str().unwrap_or_default().to_string(),
        listen: data["listen"].as_str().map(String::from),
        tree: serde_json::from_value(data["supervision"].clone()).ok(),
        connections,
        switchboards: serde_json::from_value(data["switchboards"].clone()).unwrap_or_default(),
        progress: state.progress()?,
    })
}

/// `?done=…` after a settings form.
#[derive(Deserialize)]
pub struct SettingsQuery {
    done: Option<String>,
}

/// `GET /settings`.
pub async fn settings(
    State(state): State<WebState>,
    Authed(session): Authed,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let profile = match state.ask(Request::Profile { id: None }).await {
        Ok(p) => p,
        Err(e) => return problem(&state, &session, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let policy = |v: Option<String>| v.unwrap_or_else(|| "not serving (no network)".into());
    let (configured, config_error) = match state.data_dir.as_deref().map(policy::read_config) {
        Some(Ok(configured)) => (configured, None),
        Some(Err(e)) => (Default::default(), Some(e.to_string())),
        None => (Default::default(), None),
    };
    let view = SettingsView {
        name: profile["name"].as_str().map(String::from),
        description: profile["description"].as_str().map(String::from),
        status: state.node.online.status(),
        serve: policy(
            state
                .peers
                .as_ref()
                .map(|p| format!("{:?}", p.serve).to_lowercase()),
        ),
        introductions: policy(
            state
                .peers
                .as_ref()
                .map(|p| format!("{:?}", p.introductions).to_lowercase()),
        ),
        presence_visible_to: policy::word(state.node.online.visibility()),
        configured,
        config_error,
    };
    let notice = match q.done.as_deref() {
        Some("profile") => Some("Profile published."),
        Some("status") => Some("Status line set."),
        _ => None,
    };
    let policy_notice = (q.done.as_deref() == Some("policy"))
        .then_some("Saved to config.toml: the daemon uses these from its next start.");
    let token = csrf::token(&state.keys, &session);
    let body = templates::settings(&view, &token, notice, policy_notice);
    framed(&state, &session, "Settings", Nav::Settings, body)
}

/// The profile form.
#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /settings/profile`: publish an about entry.
pub async fn settings_profile(
    State(state): State<WebState>,
    Authed(session): Authed,
    Form(form): Form<ProfileForm>,
) -> Response {
    if !csrf::check(&state.keys, &session, &form.csrf) {
        return csrf_refused();
    }
    let nonempty = |s: String| {
        let s = s.trim().replace("\r\n", "\n");
        (!s.is_empty()).then_some(s)
    };
    let request = Request::ProfileSet {
        name: nonempty(form.name),
        description: nonempty(form.description),
    };
    match state.ask(request).await {
        Ok(_) => Redirect::to("/settings?done=profile").into_response(),
        Err(e) => problem(&state, &session, StatusCode::BAD_REQUEST, &e),
    }
}

/// The status line form.
#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

/// `POST /settings/status`: set (or, empty, clear) the status line.
pub async fn settings_status(
    State(state): State<WebState>,
    Authed(session): Authed,
    Form(form): Form<StatusForm>,
) -> Response {
    if !csrf::check(&state.keys, &session, &form.csrf) {
        return csrf_refused();
    }
    let text = form.status.trim().to_string();
    let text = (!text.is_empty()).then_some(text);
    match state.ask(Request::PresenceSet { text }).await {
        Ok(_) => Redirect::to("/settings?done=status").into_response(),
        Err(e) => problem(&state, &session, StatusCode::BAD_REQUEST, &e),
    }
}

/// The policy form.
#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    serve: String,
    #[serde(default)]
    introductions: String,
    #[serde(default)]
    presence_visible_to: String,
}

/// `POST /settings/policy`: write the three policies to config.toml (see [`policy`]).
pub async fn settings_policy(
    State(state): State<WebState>,
    Authed(session): Authed,
    Form(form): Form<PolicyForm>,
) -> Response {
    if !csrf::check(&state.keys, &session, &form.csrf) {
        return csrf_refused();
    }
    let saved =
        policy::Policies::parse(&form.serve, &form.introductions, &form.presence_visible_to)
            .and_then(|p| {
                let dir = state
                    .data_dir
                    .as_deref()
                    .ok_or(policy::PolicyError::NoDataDir)?;
                policy::write_config(dir, &p)
            });
    match saved {
        Ok(path) => {
            tracing::info!(path = %path.display(), serve = %form.serve, introductions = %form.introductions, presence_visible_to = %form.presence_visible_to, "policies saved from the web page; they take effect at the next start");
            Redirect::to("/settings?done=policy#h-policy").into_response()
        }
        Err(e) => {
            let status = match e {
                policy::PolicyError::Invalid(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            problem(&state, &session, status, &WebError::Answer(e.to_string()))
        }
    }
}

/// `?token=…` on the login page (the link `kith web` prints).
#[derive(Deserialize)]
pub struct LoginQuery {
    token: Option<String>,
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let frame = Frame {
        title: "Log in",
        nav: Nav::Other,
        csrf: None,
    };
    html(status, templates::page(&frame, templates::login(error)))
}

fn logged_in(state: &WebState) -> Response {
    let expires = now_ms().saturating_add(WEB_SESSION_TTL.as_millis() as u64);
    let cookie = set_cookie(
        &state.cookie,
        &state.keys.new_session(expires),
        WEB_SESSION_TTL.as_secs(),
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

const WRONG_TOKEN: &str =
    "That is not this daemon's login token: run `kith web` again and use the token it prints.";

/// `GET /login`: the form, or (with the right `?token=`) a session and the timeline.
pub async fn login(State(state): State<WebState>, Query(q): Query<LoginQuery>) -> Response {
    match q.token {
        Some(token) if state.keys.token_matches(&token) => logged_in(&state),
        Some(_) => login_page(StatusCode::FORBIDDEN, Some(WRONG_TOKEN)),
        None => login_page(StatusCode::OK, None),
    }
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /login`.
pub async fn login_post(State(state): State<WebState>, Form(form): Form<LoginForm>) -> Response {
    if state.keys.token_matches(&form.token) {
        logged_in(&state)
    } else {
        login_page(StatusCode::FORBIDDEN, Some(WRONG_TOKEN))
    }
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<WebState>,
    Authed(session): Authed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf::check(&state.keys, &session, &form.csrf) {
        return csrf_refused();
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = clear_cookie(&state.cookie).parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// `GET /blob/HEX`: a held blob, as an image if its bytes are one, else as a download.
pub async fn blob(
    State(state): State<WebState>,
    Authed(_session): Authed,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = crate::blob::BlobId::from_hex(&id) else {
        return (StatusCode::NOT_FOUND, "not a blob id\n").into_response();
    };
    let store = state.node.blobs.store.clone();
    let read = tokio::task::spawn_blocking(move || store.read(&id)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(crate::blob::BlobError::NotHeld(_))) => {
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
    match files::sniff(&bytes) {
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
