//! What keeps a web page from driving the daemon. A page the operator happens to have open
//! can make the browser send requests to `127.0.0.1`; the daemon must tell those apart from
//! its own page, `curl` and Prometheus:
//!
//! - DNS rebinding: a page at `evil.example` whose name is made to resolve to 127.0.0.1 is,
//!   to the browser, same-origin with the daemon, so it could read `/status` and drive the
//!   control routes. Its requests still carry `Host: evil.example`. On a loopback listener
//!   every route refuses a `Host` that is not a loopback name ([`host`]), reads included:
//!   `/status` names the spec file and the workload, and nothing legitimate reaches a
//!   loopback listener by another name (Prometheus and `curl` send the address they dial; an
//!   SSH tunnel sends `localhost:PORT`, which passes, since the port is not compared).
//! - Cross-site requests: a page elsewhere can send a "simple" POST (a form, or `fetch` with
//!   `text/plain`) without the browser asking first. Browsers send `Origin` on every
//!   cross-origin POST and PUT, so a mutating request whose `Origin` is not the daemon's own
//!   (`http://` + its `Host`) is refused ([`same_origin`]), and a body must be declared
//!   `application/json` ([`json_body`]), which no form can do and which makes `fetch` ask
//!   first (a preflight this server never approves).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;

pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// Middleware for every route: on a loopback listener, a request naming a `Host` that is not
/// a loopback name gets a 403 (a request without `Host`, HTTP/1.0, comes from no browser).
pub async fn host(State(app): State<App>, request: Request, next: Next) -> Response {
    if app.loopback
        && let Some(given) = request.headers().get(header::HOST)
    {
        let name = given.to_str().ok().and_then(host_name);
        if !name.is_some_and(is_loopback_name) {
            let shown = String::from_utf8_lossy(given.as_bytes()).into_owned();
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "Host `{shown}` is not a loopback name: this daemon listens on loopback and \
                     answers only to 127.0.0.1, [::1] or localhost (a guard against DNS rebinding)"
                ),
            );
        }
    }
    next.run(request).await
}

/// The name part of a `Host` value: `127.0.0.1:9464` -> `127.0.0.1`, `[::1]:80` -> `::1`.
fn host_name(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        return (after.is_empty() || after.starts_with(':')).then_some(name);
    }
    let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
    (!name.is_empty()).then_some(name)
}

fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `None` when a mutating request may come from where it comes from; otherwise its 403.
/// No `Origin`: not a browser's cross-origin request (curl, scripts). Otherwise it must be
/// `http://` followed by the request's own `Host`, which the page's requests always are.
pub fn same_origin(headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let ok = match (origin.to_str(), host) {
        (Ok(origin), Some(host)) => is_own_origin(origin, host),
        _ => false,
    };
    (!ok).then(|| {
        let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        error(
            StatusCode::FORBIDDEN,
            format!(
                "Origin `{shown}` is not this daemon's own: control requests from other web \
                 pages are refused"
            ),
        )
    })
}

fn is_own_origin(origin: &str, host: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    // A browser leaves the default port out of an origin; a client may still write it in Host.
    let host = host.strip_suffix(":80").unwrap_or(&host);
    origin.strip_prefix("http://") == Some(host)
}

/// `None` when the request's body is declared JSON (`application/json`, parameters allowed);
/// otherwise its 415. `required`: the route takes a body; a route that takes none still
/// refuses a declared non-JSON body, which is what an HTML form sends.
pub fn json_body(headers: &HeaderMap, required: bool) -> Option<Response> {
    let declared = headers.get(header::CONTENT_TYPE);
    let is_json = declared
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if is_json || (declared.is_none() && !required) {
        return None;
    }
    let shown = declared.map_or("none".to_string(), |v| {
        format!("`{}`", String::from_utf8_lossy(v.as_bytes()))
    });
    Some(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("the body must be sent with `Content-Type: application/json` (given: {shown})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_loopback_only_by_address_or_localhost() {
        for ok in [
            "127.0.0.1:9464",
            "127.0.6.3",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:9464",
            "[::1]",
        ] {
            assert!(host_name(ok).is_some_and(is_loopback_name), "{ok}");
        }
        for bad in [
            "evil.example:9464",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example:9464",
            "10.0.0.1:9464",
            "[::2]:80",
            "[::1]x",
            ":9464",
            "",
        ] {
            assert!(!host_name(bad).is_some_and(is_loopback_name), "{bad}");
        }
    }

    #[test]
    fn an_origin_is_own_only_with_the_same_host_and_port() {
        assert!(is_own_origin("http://127.0.0.1:9464", "127.0.0.1:9464"));
        assert!(is_own_origin("http://LocalHost:9464", "localhost:9464"));
        assert!(is_own_origin("http://127.0.0.1", "127.0.0.1:80"));
        assert!(!is_own_origin("http://127.0.0.1:9465", "127.0.0.1:9464"));
        assert!(!is_own_origin("https://127.0.0.1:9464", "127.0.0.1:9464"));
        assert!(!is_own_origin("http://evil.example", "127.0.0.1:9464"));
        assert!(!is_own_origin("null", "127.0.0.1:9464"));
    }
}
