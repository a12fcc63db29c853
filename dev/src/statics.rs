//! The static files of `public/`, served as Vercel serves a project's
//! `outputDirectory` next to its functions: a path that no function and no
//! rewrite claims is looked up there, `/` and directories mean `index.html`.
//!
//! Only plain names are served: every path segment must be `[A-Za-z0-9._-]`
//! and must not start with a dot, so `..`, encoded separators (`%2F`), hidden
//! files and backslashes never reach the filesystem; the resolved file must
//! still lie inside the directory (no symlink out of it).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

/// The repository's `public/`, read at request time so that an edited page
/// shows on reload (the dev server only ever runs from a checkout).
pub fn public_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../public")
}

/// The file for a GET or HEAD of `path` under `root`, or `None` when there
/// is none (the caller answers its usual 404).
pub async fn serve(root: &Path, method: &Method, path: &str) -> Option<Response<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let mut relative = PathBuf::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let plain = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain || segment.starts_with('.') {
            return None;
        }
        relative.push(segment);
    }
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let mut file = tokio::fs::canonicalize(root.join(&relative)).await.ok()?;
    if tokio::fs::metadata(&file).await.ok()?.is_dir() {
        file = tokio::fs::canonicalize(file.join("index.html"))
            .await
            .ok()?;
    }
    if !file.starts_with(&root) {
        return None;
    }
    let body = tokio::fs::read(&file).await.ok()?;
    let mut response = Response::new(if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(body)
    });
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    // Development: always the file as it is on disk now.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(path: &str) -> Option<Response<Bytes>> {
        serve(&public_dir(), &Method::GET, path).await
    }

    #[tokio::test]
    async fn the_page_is_served_at_the_root_and_by_name() {
        let root = get("/").await.expect("/ serves index.html");
        assert_eq!(
            root.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(String::from_utf8_lossy(root.body()).contains("<title>Upload a MOC</title>"));
        let script = get("/app.js").await.expect("app.js");
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(
            serve(&public_dir(), &Method::POST, "/app.js")
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn nothing_outside_public_or_hidden_is_served() {
        for path in [
            "/../Cargo.toml",
            "/..",
            "/%2e%2e/Cargo.toml",
            "/..%2fCargo.toml",
            "/.gitkeep",
            "/..\\Cargo.toml",
            "/missing.js",
        ] {
            assert!(get(path).await.is_none(), "{path} must not be served");
        }
    }
}
