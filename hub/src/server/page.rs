//! The hub's own trading page (docs/ARCHITECTURE.md, "The trading page"):
//! `GET /` answers `hub/web/index.html`, `GET /assets/{file}` the rest of
//! `hub/web/`, and `GET /client/{file}` the JavaScript client of
//! `clients/js/src/`, which the page imports. The files are compiled into
//! the binary (rust-embed) in release builds, so the page needs no Node,
//! no CDN and no network at run time; debug builds read them from the
//! source tree on each request, so the page can be edited and reloaded
//! without a rebuild.
//!
//! Every answer carries a strict Content-Security-Policy: scripts, styles
//! and connections only from the hub itself (no inline script or style),
//! no framing, no plugins.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "*.md"]
struct Page;

#[derive(RustEmbed)]
#[folder = "../clients/js/src/"]
struct Client;

/// The page's policy: everything from the hub's own origin (`'self'`
/// covers its `ws:`/`wss:` too), nothing inline, nothing framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the trading page.
pub async fn index() -> Response {
    asset::<Page>("index.html")
}

/// `GET /assets/{file}`: the page's scripts, styles and images.
pub async fn page_asset(Path(file): Path<String>) -> Response {
    asset::<Page>(&file)
}

/// `GET /client/{file}`: the JavaScript client (clients/js/src/).
pub async fn client_asset(Path(file): Path<String>) -> Response {
    asset::<Client>(&file)
}

fn asset<E: RustEmbed>(file: &str) -> Response {
    // rust-embed looks names up in its own list (release) or under its
    // folder, refusing any that leads out of it (debug):
    // hub/tests/page.rs `file_names_cannot_leave_the_page_folders`.
    let (Some(found), Some(kind)) = (E::get(file), content_type(file)) else {
        return crate::server::error(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, found.data.into_owned()).into_response()
}

/// The types the page uses; any other extension is not served.
fn content_type(file: &str) -> Option<&'static str> {
    let (_, extension) = file.rsplit_once('.')?;
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => return None,
    })
}
