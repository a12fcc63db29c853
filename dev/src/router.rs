//! Routes requests the way Vercel does, so the dev server and the tests see
//! the same paths production sees:
//!
//! 1. the filesystem: a route file without a `[param]` segment is a function
//!    at its own path (`index` dropped);
//! 2. then the `rewrites` of `vercel.json`, in order: `:param` segments bind,
//!    and the destination names a route file;
//! 3. then the route files with `[param]` segments, each matching any one
//!    segment there, longest paths first and, among equals, the one with
//!    fewer parameters first (Vercel's zero-config API routes, which it
//!    appends after the user's rewrites in the same phase).
//!
//! So `/sessions/finalize` reaches finalize through its rewrite even though
//! `sessions/[sessionId]/index.rs` would match it too, and
//! `/sessions/{id}/files/batch` reaches `batch.rs`, not `[fileId]/index.rs`.
//!
//! Either way the function sees the path the client sent, with every bound
//! parameter added as a query parameter — what a Vercel function receives.

use moc_shared::routes::{ROUTES, Route};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

fn parse_segments(path: &str, param: impl Fn(&str) -> Option<&str>) -> Vec<Segment> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| match param(segment) {
            Some(name) => Segment::Param(name.to_owned()),
            None => Segment::Literal(segment.to_owned()),
        })
        .collect()
}

fn bracket_param(segment: &str) -> Option<&str> {
    segment.strip_prefix('[')?.strip_suffix(']')
}

fn colon_param(segment: &str) -> Option<&str> {
    segment.strip_prefix(':')
}

/// Binds `path` to `pattern`, returning the parameters on a match.
fn bind(pattern: &[Segment], path: &[&str]) -> Option<Vec<(String, String)>> {
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (expected, actual) in pattern.iter().zip(path) {
        match expected {
            Segment::Literal(literal) if literal == actual => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => params.push((name.clone(), (*actual).to_owned())),
        }
    }
    Some(params)
}

struct Function {
    route: &'static Route,
    /// The route file's path without `.rs` (and without a final `index`).
    path: Vec<Segment>,
    /// The same, spelt as `vercel.json` destinations spell it.
    destination: String,
}

struct Rewrite {
    source: Vec<Segment>,
    destination: String,
}

pub struct VercelRouter {
    functions: Vec<Function>,
    rewrites: Vec<Rewrite>,
}

#[derive(Deserialize)]
struct VercelJson {
    #[serde(default)]
    rewrites: Vec<RewriteJson>,
}

#[derive(Deserialize)]
struct RewriteJson {
    source: String,
    destination: String,
}

/// A request bound to its function, with the query parameters Vercel adds.
pub struct Resolved {
    pub route: &'static Route,
    pub params: Vec<(String, String)>,
}

impl VercelRouter {
    /// The router of this repository: its route files and its `vercel.json`.
    pub fn for_repo() -> Self {
        Self::new(include_str!("../../vercel.json"))
            .expect("the repository's vercel.json is valid (checked by tests)")
    }

    pub fn new(vercel_json: &str) -> Result<Self, serde_json::Error> {
        let config: VercelJson = serde_json::from_str(vercel_json)?;
        let functions = ROUTES
            .iter()
            .map(|route| {
                let without_ext = route.file.trim_end_matches(".rs");
                let routed = without_ext.trim_end_matches("/index");
                Function {
                    route,
                    path: parse_segments(routed, bracket_param),
                    destination: format!("/{without_ext}"),
                }
            })
            .collect();
        let rewrites = config
            .rewrites
            .into_iter()
            .map(|r| Rewrite {
                source: parse_segments(&r.source, colon_param),
                destination: r.destination,
            })
            .collect();
        Ok(Self {
            functions,
            rewrites,
        })
    }

    pub fn resolve(&self, path: &str) -> Option<Resolved> {
        let segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let is_dynamic = |f: &Function| f.path.iter().any(|s| matches!(s, Segment::Param(_)));
        for function in self.functions.iter().filter(|f| !is_dynamic(f)) {
            if let Some(params) = bind(&function.path, &segments) {
                return Some(Resolved {
                    route: function.route,
                    params,
                });
            }
        }
        for rewrite in &self.rewrites {
            let Some(params) = bind(&rewrite.source, &segments) else {
                continue;
            };
            let destination = rewrite.destination.trim_end_matches('/');
            let function = self.functions.iter().find(|f| {
                f.destination == destination
                    || f.destination.trim_end_matches("/index") == destination
            })?;
            return Some(Resolved {
                route: function.route,
                params,
            });
        }
        for function in self.dynamic_functions() {
            if let Some(params) = bind(&function.path, &segments) {
                return Some(Resolved {
                    route: function.route,
                    params,
                });
            }
        }
        None
    }

    /// The `[param]` route files in Vercel's order: more segments first,
    /// then fewer parameters, then by name.
    fn dynamic_functions(&self) -> Vec<&Function> {
        let params = |f: &Function| {
            f.path
                .iter()
                .filter(|s| matches!(s, Segment::Param(_)))
                .count()
        };
        let mut dynamic: Vec<&Function> = self.functions.iter().filter(|f| params(f) > 0).collect();
        dynamic.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(params(a).cmp(&params(b)))
                .then(a.route.file.cmp(b.route.file))
        });
        dynamic
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moc_shared::routes;

    fn resolve(path: &str) -> (&'static str, Vec<(String, String)>) {
        let resolved = VercelRouter::for_repo()
            .resolve(path)
            .unwrap_or_else(|| panic!("{path} is not routed"));
        (resolved.route.file, resolved.params)
    }

    #[test]
    fn every_story_path_reaches_its_function_with_its_params() {
        let s = "11111111-1111-1111-1111-111111111111";
        let f = "22222222-2222-2222-2222-222222222222";
        let cases: &[(String, &Route, &[&str])] = &[
            ("/api/mocs/uploads/sessions".into(), &routes::SESSIONS, &[]),
            (
                format!("/api/mocs/uploads/sessions/{s}/files"),
                &routes::REGISTER_FILE,
                &["sessionId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/files/batch"),
                &routes::REGISTER_BATCH,
                &["sessionId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/files/{f}/complete"),
                &routes::COMPLETE_FILE,
                &["sessionId", "fileId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/files/{f}/parts"),
                &routes::LIST_PARTS,
                &["sessionId", "fileId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/files/{f}/parts/3"),
                &routes::UPLOAD_PART,
                &["sessionId", "fileId", "partNumber"],
            ),
            ("/api/mocs/uploads/finalize".into(), &routes::FINALIZE, &[]),
            (
                "/api/mocs/uploads/sessions/finalize".into(),
                &routes::FINALIZE,
                &[],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/finalize"),
                &routes::FINALIZE,
                &["sessionId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}"),
                &routes::SESSION,
                &["sessionId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/extend"),
                &routes::EXTEND_SESSION,
                &["sessionId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/files/{f}"),
                &routes::ABORT_FILE,
                &["sessionId", "fileId"],
            ),
            (
                format!("/api/mocs/uploads/sessions/{s}/files/{f}/urls"),
                &routes::FRESH_URLS,
                &["sessionId", "fileId"],
            ),
            (
                "/api/cron/expire-upload-sessions".into(),
                &routes::EXPIRE_SESSIONS,
                &[],
            ),
        ];
        for (path, route, params) in cases {
            let (file, bound) = resolve(path);
            assert_eq!(file, route.file, "{path}");
            let names: Vec<&str> = bound.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(&names, params, "{path}");
        }
    }

    /// Without the rewrites, the dynamic route files alone must still send
    /// the literal paths to their own functions (Vercel's order, step 3).
    #[test]
    fn dynamic_segments_never_swallow_literal_siblings() {
        let bare = VercelRouter::new(r#"{"rewrites": []}"#).unwrap();
        let s = "11111111-1111-1111-1111-111111111111";
        let file_of = |path: &str| bare.resolve(path).map(|r| r.route.file);
        assert_eq!(
            file_of(&format!("/api/mocs/uploads/sessions/{s}/files/batch")),
            Some(routes::REGISTER_BATCH.file)
        );
        assert_eq!(
            file_of(&format!("/api/mocs/uploads/sessions/{s}/files/x")),
            Some(routes::ABORT_FILE.file)
        );
        assert_eq!(
            file_of("/api/mocs/uploads/finalize"),
            Some(routes::FINALIZE.file)
        );
    }

    /// The single source: every route's public path, as `routes.rs`
    /// declares it, reaches that route through `vercel.json` (the finalize
    /// aliases are among the story paths above).
    #[test]
    fn every_declared_path_reaches_its_route() {
        let router = VercelRouter::for_repo();
        for route in ROUTES {
            let path = route
                .pattern
                .split('/')
                .map(|s| if s.starts_with(':') { "x1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let resolved = router
                .resolve(&path)
                .unwrap_or_else(|| panic!("{} is not routed", route.pattern));
            assert_eq!(resolved.route.file, route.file, "{}", route.pattern);
        }
    }

    #[test]
    fn unknown_paths_are_not_routed() {
        let router = VercelRouter::for_repo();
        assert!(router.resolve("/api/mocs/uploads/other").is_none());
        assert!(router.resolve("/Cargo.toml").is_none());
    }
}
