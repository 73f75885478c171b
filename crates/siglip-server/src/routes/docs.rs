//! `GET /openapi.json` and `GET /docs`: the API's document, and a page for reading and trying
//! it (Swagger UI). The page's files are compiled into the binary from `assets/` (Swagger UI
//! vendored in `assets/swagger-ui/`, its README says from where), so it works with no network;
//! its Content-Security-Policy lets it load nothing from anywhere else.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// One file of the page: its name under `/docs/`, media type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $path:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

/// The page's files under `/docs/`.
const ASSETS: &[Asset] = &[
    asset!(
        "swagger-ui-bundle.js",
        "swagger-ui/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "swagger-ui.css",
        "swagger-ui/swagger-ui.css",
        "text/css; charset=utf-8"
    ),
    asset!(
        "favicon-32x32.png",
        "swagger-ui/favicon-32x32.png",
        "image/png"
    ),
    asset!("docs.css", "docs.css", "text/css; charset=utf-8"),
    asset!("docs.js", "docs.js", "text/javascript; charset=utf-8"),
];

/// The page itself.
const PAGE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/docs.html"));

/// Where the page may load from: this server only. Swagger UI sets inline styles, and draws
/// some icons from `data:` URLs.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /openapi.json`: the document, serialized once by `server::app`.
pub async fn openapi_json(document: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

/// `GET /docs`: the page.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /docs/{file}`: one of the page's files, or 404.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == file)
        .ok_or_else(ApiError::not_found_route)?;
    Ok((
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.bytes,
    )
        .into_response())
}
