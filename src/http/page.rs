//! The live page: `GET /` and its assets, embedded in the binary. The page reads `/status`
//! and the feed (`/api/history`) once a second and steers through the control routes, with
//! their rules; it fetches nothing from elsewhere (its Content-Security-Policy says so too).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const CHART_JS: &str = include_str!("page/chart.js");
const APP_CSS: &str = include_str!("page/app.css");

/// Only this origin: no CDN, no font service, no beacon. Inline scripts are refused too, and
/// no page may frame this one (a framed page's buttons could be clicked through a decoy).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            // The assets change with the binary, and a stale page after an upgrade confuses.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => page("text/javascript; charset=utf-8", APP_JS),
        "chart.js" => page("text/javascript; charset=utf-8", CHART_JS),
        "app.css" => page("text/css; charset=utf-8", APP_CSS),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": format!("no page asset `{name}`: there are app.js, chart.js and app.css")
            })),
        )
            .into_response(),
    }
}
