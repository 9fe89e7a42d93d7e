//! The inbox page: private messages (issue 16, with issue 15's `kith dm` and `kith inbox`).
//!
//! Every read and send goes through the same control answers as the command line
//! ([`Request::Inbox`], [`Request::DmThread`], [`Request::Dm`]), so the page seals, opens and
//! names exactly as `kith` does and no plaintext is kept anywhere new. `GET /inbox` lists the
//! conversations newest first with a send form; `GET /inbox/ID` is the thread with one id;
//! `POST /dm` (CSRF) sends to 1–7 ids and answers with a redirect to the thread, naming the
//! recipients who will not receive it (they do not follow this node). An error (too many
//! recipients, an id that is not one) is shown on the form, with what was typed kept.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::daemon::web::csrf;
use crate::daemon::web::pages::{csrf_refused, framed, problem, Authed};
use crate::daemon::web::state::WebState;
use crate::daemon::web::templates::{self, ConversationRow, DmDraft, DmMessage, Nav, Person};
use crate::limits::DM_RECIPIENTS_MAX;
use crate::wire::control::Request;

/// `?to=ID` prefills the send form.
#[derive(Deserialize)]
pub struct InboxQuery {
    to: Option<String>,
}

/// `GET /inbox`.
pub async fn inbox(
    State(state): State<WebState>,
    Authed(session): Authed,
    Query(q): Query<InboxQuery>,
) -> Response {
    let draft = DmDraft {
        to: q.to.unwrap_or_default(),
        text: String::new(),
    };
    inbox_with(&state, &session, &draft, None, StatusCode::OK).await
}

async fn inbox_with(
    state: &WebState,
    session: &crate::daemon::web::auth::Session,
    draft: &DmDraft,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let data = match state.ask(Request::Inbox { limit: None }).await {
        Ok(data) => data,
        Err(e) => return problem(state, session, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let rows: Vec<ConversationRow> =
        serde_json::from_value(data["conversations"].clone()).unwrap_or_default();
    let partial = data["partial"].as_bool().unwrap_or(false);
    let token = csrf::token(&state.keys, session);
    let body = templates::inbox(&rows, partial, &token, draft, error);
    let mut response = framed(state, session, "Inbox", Nav::Inbox, body);
    *response.status_mut() = status;
    response
}

/// After a send: who will not receive it (`?not=ID,ID`), who may not (`?unknown=…`).
#[derive(Deserialize)]
pub struct ThreadQuery {
    sent: Option<String>,
    not: Option<String>,
    unknown: Option<String>,
}

/// `GET /inbox/ID`.
pub async fn thread(
    State(state): State<WebState>,
    Authed(session): Authed,
    Path(id): Path<String>,
    Query(q): Query<ThreadQuery>,
) -> Response {
    let data = match state
        .ask(Request::DmThread {
            id: id.clone(),
            limit: None,
        })
        .await
    {
        Ok(data) => data,
        Err(e) => return problem(&state, &session, StatusCode::NOT_FOUND, &e),
    };
    let with: Person = serde_json::from_value(data["with"].clone()).unwrap_or_default();
    let messages: Vec<DmMessage> =
        serde_json::from_value(data["messages"].clone()).unwrap_or_default();
    // Names for the notices come from the thread itself: the query only picks which to show.
    let label = |wanted: &str| -> Option<String> {
        messages
            .iter()
            .flat_map(|m| m.to.iter())
            .chain(std::iter::once(&with))
            .find(|p| p.id == wanted)
            .map(|p| p.label.clone())
    };
    let named = |list: Option<&str>| -> Vec<String> {
        list.unwrap_or("")
            .split(',')
            .filter_map(|i| label(i.trim()))
            .take(DM_RECIPIENTS_MAX)
            .collect()
    };
    let mut notices = Vec::new();
    if q.sent.is_some() {
        notices.push("Sent.".to_string());
    }
    let not = named(q.not.as_deref());
    if !not.is_empty() {
        notices.push(format!(
            "{} not follow you, so they will not receive it (a private message reaches only those who replicate your feed).",
            with_verb(&not)
        ));
    }
    let unknown = named(q.unknown.as_deref());
    if !unknown.is_empty() {
        notices.push(format!(
            "Whether {} you is not known here; they receive it only if they do.",
            follow_verb(&unknown)
        ));
    }
    let token = csrf::token(&state.keys, &session);
    let draft = DmDraft {
        to: with.id.clone(),
        text: String::new(),
    };
    let body = templates::dm_thread(&with, &messages, &notices, &token, &draft);
    let title = format!("Messages with {}", with.label);
    framed(&state, &session, &title, Nav::Inbox, body)
}

fn with_verb(names: &[String]) -> String {
    let verb = if names.len() == 1 { "does" } else { "do" };
    format!("{} {verb}", names.join(", "))
}

fn follow_verb(names: &[String]) -> String {
    let verb = if names.len() == 1 {
        "follows"
    } else {
        "follow"
    };
    format!("{} {verb}", names.join(", "))
}

/// The send form.
#[derive(Deserialize)]
pub struct DmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: String,
}

/// The recipients typed in the form: ids separated by spaces or commas.
pub fn recipients(typed: &str) -> Vec<String> {
    typed
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// `POST /dm`: seal and publish, then the thread with the first recipient.
pub async fn send(
    State(state): State<WebState>,
    Authed(session): Authed,
    Form(form): Form<DmForm>,
) -> Response {
    if !csrf::check(&state.keys, &session, &form.csrf) {
        return csrf_refused();
    }
    let to = recipients(&form.to);
    let text = form.text.replace("\r\n", "\n");
    let draft = DmDraft {
        to: form.to.clone(),
        text: text.clone(),
    };
    let Some(first) = to.first().cloned() else {
        let e = "name at least one recipient: their id, @….ed25519";
        return inbox_with(&state, &session, &draft, Some(e), StatusCode::BAD_REQUEST).await;
    };
    if text.trim().is_empty() {
        let e = "write the message first";
        return inbox_with(&state, &session, &draft, Some(e), StatusCode::BAD_REQUEST).await;
    }
    match state.ask(Request::Dm { to, text }).await {
        Ok(data) => {
            let ids = |key: &str| -> String {
                data[key]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|p| p["id"].as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            let (not, unknown) = (ids("not_following"), ids("unknown"));
            let mut url = format!("{}?sent=1", templates::inbox_url(&first));
            for (key, list) in [("not", not), ("unknown", unknown)] {
                if !list.is_empty() {
                    url.push_str(&format!(
                        "&{key}={}",
                        percent_encoding::utf8_percent_encode(
                            &list,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ));
                }
            }
            Redirect::to(&url).into_response()
        }
        Err(e) => {
            inbox_with(
                &state,
                &session,
                &draft,
                Some(&e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_split_on_spaces_and_commas() {
        assert_eq!(
            recipients("  @a.ed25519,@b.ed25519\n@c.ed25519 "),
            ["@a.ed25519", "@b.ed25519", "@c.ed25519"]
        );
        assert!(recipients(" ,, \t").is_empty());
        assert_eq!(with_verb(&["A".into()]), "A does");
        assert_eq!(with_verb(&["A".into(), "B".into()]), "A, B do");
    }
}
