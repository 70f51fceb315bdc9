//! The embedded web client: `/join` serves the join page; every other built file is served by its
//! path. Built by `build.rs` from `web/`.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// A built file by its path in the bundle.
pub fn asset(path: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

/// Why the web client is not available, if it is not.
pub fn build_error() -> Option<&'static str> {
    embedded::BUILD_ERROR
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map" | "json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str) -> Response {
    match asset(path) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// `GET /join?token=…`: the join page.
pub async fn join_page() -> Response {
    if let Some(error) = build_error() {
        let page = format!(
            "<!doctype html><meta charset=utf-8><title>Dragoman</title>\
             <h1>The web client is not built</h1><p>{}</p>\
             <p>Install Node.js 18+ and npm, then rebuild the server.</p>",
            html_escape(error)
        );
        return (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response();
    }
    serve("join.html")
}

/// `GET /operator`: the operator dashboard (it asks for the API key itself).
pub async fn operator_page() -> Response {
    if build_error().is_some() {
        return join_page().await;
    }
    serve("operator.html")
}

/// `GET /{file}`: any other built file (scripts, styles, source maps).
pub async fn static_file(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
