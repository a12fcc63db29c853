//! Local development only: the dev server, Vercel-style routing, the
//! embedded S3 and the seeds. Nothing here is linked into a function binary.

pub mod chaos;
pub mod doctor;
pub mod fault_proxy;
pub mod gateway;
pub mod ipc;
pub mod platform;
pub mod router;
pub mod s3;
pub mod s3_cors;
pub mod seeds;
pub mod server;
pub mod services;
pub mod statics;

/// `url` with its password replaced by `***`, for logs and banners.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
