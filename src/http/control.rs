//! Control routes. Every mutation needs `Authorization: Bearer <token>` when a token is set;
//! with no token they are served only on a loopback listener (403 elsewhere). A request from
//! another web page (an `Origin` that is not the daemon's own) is refused, whatever its token
//! (see `guard`). Bodies are strict JSON declared as such: another `Content-Type` gets a 415;
//! malformed JSON, unknown fields and out-of-range values get a 400 with a JSON error, and
//! change nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::guard::{self, error};
use super::{App, status_json};
use crate::engine::{Control, Refused};

/// `None` when the caller may mutate with a body (`takes_body`) or without one; otherwise
/// the response refusing it: another page's origin, then the token, then the content type.
fn admit(app: &App, headers: &HeaderMap, takes_body: bool) -> Option<Response> {
    guard::same_origin(headers)
        .or_else(|| authorize(app, headers))
        .or_else(|| guard::json_body(headers, takes_body))
}

/// `None` when the caller may mutate; otherwise the response refusing it.
fn authorize(app: &App, headers: &HeaderMap) -> Option<Response> {
    let token = app.handle.shared.plan().control_token.clone();
    let Some(token) = token else {
        return (!app.loopback).then(|| {
            error(
                StatusCode::FORBIDDEN,
                "control is disabled on a non-loopback listener without a token: set CQLPULSE_CONTROL_TOKEN or control.token",
            )
        });
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.expose().as_bytes()) => None,
        Some(_) => Some(error(StatusCode::UNAUTHORIZED, "wrong bearer token")),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>` header",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A strict JSON body, or the message of a 400.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    if body.is_empty() {
        return Err("a JSON body is required".into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    // serde would also take `[10]` for `{"rate": 10}`; only an object is a valid body.
    if !value.is_object() {
        return Err("invalid JSON body: expected an object such as {\"rate\": 1000}".into());
    }
    serde_json::from_value(value).map_err(|e| format!("invalid JSON body: {e}"))
}

/// 200 with the status once a snapshot shows the change (the snapshot is what every reader,
/// this answer included, renders).
async fn applied(app: &App) -> Response {
    app.handle.refresh().await;
    (StatusCode::OK, axum::Json(status_json(app))).into_response()
}

pub async fn pause(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(refused) = admit(&app, &headers, false) {
        return refused;
    }
    app.handle.shared.control.pause();
    applied(&app).await
}

pub async fn resume(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(refused) = admit(&app, &headers, false) {
        return refused;
    }
    app.handle.shared.control.resume();
    applied(&app).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    rate: f64,
}

pub async fn rate(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    apply(&app, &headers, &body, |control, b: RateBody| {
        control.set_rate(b.rate)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConcurrencyBody {
    concurrency: u32,
}

pub async fn concurrency(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    apply(&app, &headers, &body, |control, b: ConcurrencyBody| {
        control.set_concurrency(b.concurrency)
    })
    .await
}

/// Authorises, parses the body as `T` and applies it: 200 with the new status, or the error.
async fn apply<T: DeserializeOwned>(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    change: impl FnOnce(&Control, T) -> Result<(), Refused>,
) -> Response {
    if let Some(refused) = admit(app, headers, true) {
        return refused;
    }
    let body: T = match parse(body) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match change(&app.handle.shared.control, body) {
        Ok(()) => applied(app).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

pub async fn reload(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(refused) = admit(&app, &headers, false) {
        return refused;
    }
    // Reading and parsing a file: off the async workers.
    let shared = app.handle.shared.clone();
    let result = tokio::task::spawn_blocking(move || shared.reload()).await;
    app.handle.refresh().await;
    match result {
        Ok(Ok(reloaded)) => (
            StatusCode::OK,
            axum::Json(json!({"result": reloaded.result(), "message": reloaded.to_string()})),
        )
            .into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
