//! The static files of `public/`, served as Vercel serves a project's
//! `outputDirectory` next to its functions: a path that no function and no
//! rewrite claims is looked up there, `/` and directories mean `index.html`.
//!
//! Only plain names are served: every path segment must be `[A-Za-z0-9._-]`
//! and must not start with a dot, so `..`, encoded separators (`%2F`), hidden
//! files and backslashes never reach the filesystem; the resolved file must
//! still lie inside the directory (no symlink out of it).
//!
//! One difference from Vercel, for tests only: while `MOC_PAGE_TEST_HOOKS`
//! is set, the served `index.html` carries it as a `<meta
//! name="moc-test-hooks">` tag, the page's only source of test hooks
//! (public/upload.js, `TEST_HOOKS`; scripts/browser-check sets it).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

/// The environment setting the dev server passes to the page as its test
/// hooks (JSON, e.g. `{"flipByte": {"file": "a.pdf", "part": 2}}`).
pub const TEST_HOOKS_ENV: &str = "MOC_PAGE_TEST_HOOKS";

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
    let mut body = tokio::fs::read(&file).await.ok()?;
    if file.file_name().is_some_and(|name| name == "index.html") {
        let hooks = std::env::var(TEST_HOOKS_ENV).ok().filter(|v| !v.is_empty());
        body = with_test_hooks(body, hooks.as_deref());
    }
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

/// `html` with `hooks` as `<meta name="moc-test-hooks" content="…">` before
/// `</head>`, or unchanged without hooks. This is the only way a hook reaches
/// the page: only the dev server calls it, and only while `TEST_HOOKS_ENV` is
/// set; a deployment serves `public/` as the files are, and the committed page
/// has no such tag (tested below), so no production page can turn one on.
fn with_test_hooks(html: Vec<u8>, hooks: Option<&str>) -> Vec<u8> {
    let Some(hooks) = hooks else {
        return html;
    };
    let mut text = match String::from_utf8(html) {
        Ok(text) => text,
        Err(not_text) => return not_text.into_bytes(),
    };
    if let Some(at) = text.find("</head>") {
        let content = hooks
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        text.insert_str(
            at,
            &format!("  <meta name=\"moc-test-hooks\" content=\"{content}\">\n"),
        );
    }
    text.into_bytes()
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

    #[test]
    fn test_hooks_reach_the_page_only_when_set_and_escaped() {
        let page = b"<html><head><title>t</title></head><body></body></html>".to_vec();
        assert_eq!(with_test_hooks(page.clone(), None), page);
        let hooked = String::from_utf8(with_test_hooks(
            page,
            Some(r#"{"flipByte":{"file":"a\"<b>.pdf","part":2}}"#),
        ))
        .unwrap();
        assert!(
            hooked.contains(
                r#"<meta name="moc-test-hooks" content="{&quot;flipByte&quot;:{&quot;file&quot;:&quot;a\&quot;&lt;b&gt;.pdf&quot;,&quot;part&quot;:2}}">"#
            ),
            "{hooked}"
        );
        assert!(hooked.find("moc-test-hooks") < hooked.find("</head>"));
    }

    #[test]
    fn the_committed_page_has_no_test_hooks() {
        // What Vercel deploys is public/ as committed: a hook written into
        // the page itself would ship.
        let page = std::fs::read_to_string(public_dir().join("index.html")).unwrap();
        assert!(!page.contains("moc-test-hooks"));
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
