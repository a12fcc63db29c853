//! Local development only: the dev server, Vercel-style routing, the
//! embedded S3 and the seeds. Nothing here is linked into a function binary.

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
