//! The wire of the S3 calls the API sends itself (`crate::s3`): one signed
//! attempt over the pooled HTTP client, and the pause between attempts.
//!
//! Why not the SDK for these: its operation pipeline (interceptors, the
//! endpoint rules, a signing key per request, the user agent) was half of
//! the API's instructions in a small-file flow, for requests that are a
//! signature and a few bytes of XML (docs/adr/0015-s3-calls.md). The
//! behaviour is the SDK's standard retry mode as the S3 client is
//! configured: [`MAX_ATTEMPTS`] attempts, each within [`ATTEMPT_TIMEOUT`],
//! with exponential backoff and full jitter ([`backoff`]), and connection
//! errors sorted by the one classification the SDK's calls use
//! (`crate::s3_http::classify`).

use std::time::Duration;

use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use bytes::Bytes;
use http_body_util::BodyExt;

use aws_smithy_xml::decode::{Document, ScopedDecoder, XmlDecodeError, try_data};

use crate::box_error::BoxError;
use crate::domain::{PartNumber, StoredPart};
use crate::s3_http::{HyperClient, classify};
use crate::s3_sign::SignedCall;
use crate::xml::leaf_values;

/// Attempts per call, the first included.
pub(crate) const MAX_ATTEMPTS: u32 = 3;
/// How long a connection may take to open.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one attempt may take, from sending to the last byte read.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// A 2xx answer, read whole (the calls sent here answer a few hundred
/// bytes at most).
#[derive(Debug)]
pub(crate) struct Answer {
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No whole answer: the connection failed, dropped or timed out;
    /// `retryable` unless the request itself was at fault.
    Transport { retryable: bool, source: BoxError },
    /// S3 answered, refusing the call.
    Refused(Refusal),
}

/// S3's refusal: a status other than 2xx, or an error document in a 200
/// (which CompleteMultipartUpload may send after it started answering).
#[derive(Debug, thiserror::Error)]
#[error("S3 answered {status} {code}: {message}")]
pub(crate) struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Refusal {
    /// The refusal an error document states, if `body` is one.
    fn in_document(status: u16, body: &str) -> Option<Self> {
        let [code, message] = leaf_values(body, &["Code", "Message"]);
        Some(Self {
            status,
            code: code?,
            message: message.unwrap_or_default(),
        })
    }

    /// A non-2xx answer: its error document's code, or for an answer
    /// without one (HEAD) the status's name (`NotFound`, `Forbidden`).
    fn of_status(status: http::StatusCode, body: &[u8]) -> Self {
        let body = std::str::from_utf8(body).unwrap_or("");
        Self::in_document(status.as_u16(), body).unwrap_or_else(|| Self {
            status: status.as_u16(),
            code: status
                .canonical_reason()
                .unwrap_or("Unknown")
                .replace(' ', ""),
            message: String::new(),
        })
    }
}

/// Sends one attempt of `signed` with `body`, within [`ATTEMPT_TIMEOUT`].
pub(crate) async fn attempt(
    http: &HyperClient,
    method: http::Method,
    signed: SignedCall,
    body: Bytes,
) -> Result<Answer, Failure> {
    let request = request(&method, signed, body).map_err(|error| Failure::Transport {
        retryable: false,
        source: error.into(),
    })?;
    let exchange = async {
        let response = http.request(request).await.map_err(|error| {
            let error = classify(error);
            Failure::Transport {
                retryable: error.is_io()
                    || error.is_timeout()
                    || error.as_other() == Some(ErrorKind::TransientError),
                source: error.into(),
            }
        })?;
        let (parts, body) = response.into_parts();
        // An answer that came apart on the way is no answer: retried.
        let body = body
            .collect()
            .await
            .map_err(|error| Failure::Transport {
                retryable: true,
                source: error.into(),
            })?
            .to_bytes();
        answer(&method, parts, body)
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|elapsed| {
            Err(Failure::Transport {
                retryable: true,
                source: elapsed.into(),
            })
        })
}

/// The HTTP request of a signed call.
fn request(
    method: &http::Method,
    signed: SignedCall,
    body: Bytes,
) -> Result<http::Request<SdkBody>, http::Error> {
    let mut request = http::Request::builder().method(method).uri(signed.url);
    for (name, value) in signed.headers {
        request = request.header(name, value);
    }
    // hyper writes no Content-Length for an empty body; S3 wants one on
    // every POST (411 MissingContentLength otherwise), as the SDK sends it.
    if method == http::Method::POST {
        request = request.header(http::header::CONTENT_LENGTH, body.len());
    }
    request.body(SdkBody::from(body))
}

/// What a whole answer means: a 2xx is an [`Answer`], unless it is a POST's
/// 200 carrying an error document; anything else is S3's refusal.
fn answer(
    method: &http::Method,
    parts: http::response::Parts,
    body: Bytes,
) -> Result<Answer, Failure> {
    if !parts.status.is_success() {
        return Err(Failure::Refused(Refusal::of_status(parts.status, &body)));
    }
    // S3 may answer a POST (CompleteMultipartUpload) 200 and then write an
    // error document, once it has started answering: a refusal like any
    // other, retried when it is an InternalError.
    if method == http::Method::POST
        && let Some(refusal) = Refusal::in_document(200, std::str::from_utf8(&body).unwrap_or(""))
    {
        return Err(Failure::Refused(refusal));
    }
    Ok(Answer {
        headers: parts.headers,
        body,
    })
}

/// The pause before attempt `next` (2 for the first retry): a random
/// fraction of 1 s doubled per retry, at most 20 s (the SDK's standard
/// mode).
pub(crate) fn backoff(next: u32) -> Duration {
    let doublings = next.saturating_sub(2).min(8);
    let ceiling = INITIAL_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF);
    ceiling.mul_f64(fastrand::f64())
}

/// One page of a ListParts answer.
#[derive(Debug, Default)]
pub(crate) struct PartsPage {
    pub parts: Vec<StoredPart>,
    pub truncated: bool,
    pub next_marker: Option<String>,
}

/// The fields of a listed part the API reads.
enum PartField {
    Number,
    ETag,
    Size,
    LastModified,
    Crc32c,
}

impl PartsPage {
    /// Reads a `ListPartsResult`. A part without a valid number or an ETag
    /// is left out, as the SDK-based listing left it out.
    pub(crate) fn read(body: &str) -> Result<Self, XmlDecodeError> {
        let mut document = Document::new(body.trim_start());
        let mut root = document.root_element()?;
        let mut page = PartsPage::default();
        while let Some(mut tag) = root.next_tag() {
            match tag.start_el().local() {
                "Part" => page.parts.extend(read_part(&mut tag)?),
                "IsTruncated" => page.truncated = try_data(&mut tag)? == "true",
                "NextPartNumberMarker" => {
                    page.next_marker = Some(try_data(&mut tag)?.into_owned());
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

fn read_part(part: &mut ScopedDecoder<'_, '_>) -> Result<Option<StoredPart>, XmlDecodeError> {
    let (mut number, mut etag, mut size, mut last_modified, mut crc32c) =
        (None, None, 0, None, None);
    while let Some(mut field) = part.next_tag() {
        let which = match field.start_el().local() {
            "PartNumber" => PartField::Number,
            "ETag" => PartField::ETag,
            "Size" => PartField::Size,
            "LastModified" => PartField::LastModified,
            "ChecksumCRC32C" => PartField::Crc32c,
            _ => continue,
        };
        let text = try_data(&mut field)?;
        match which {
            PartField::Number => number = text.parse().ok().and_then(PartNumber::new),
            PartField::ETag => etag = Some(text.into_owned()),
            PartField::Size => size = text.parse().unwrap_or(0),
            PartField::LastModified => {
                last_modified = chrono::DateTime::parse_from_rfc3339(&text)
                    .ok()
                    .map(|at| at.to_utc());
            }
            PartField::Crc32c => crc32c = text.parse().ok(),
        }
    }
    Ok(number.zip(etag).map(|(part_number, etag)| StoredPart {
        part_number,
        etag,
        size,
        last_modified,
        crc32c,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_from_a_second_to_at_most_twenty() {
        for _ in 0..200 {
            assert!(backoff(2) <= Duration::from_secs(1));
            assert!(backoff(3) <= Duration::from_secs(2));
            assert!(backoff(30) <= MAX_BACKOFF);
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(3)).collect();
        assert!(spread.len() > 1, "jittered");
    }

    #[test]
    fn a_parts_page_is_read_as_s3_writes_it() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2026-12-06T20:00:00.000Z</LastModified>
    <ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>5242880</Size>
    <ChecksumCRC32C>yZRlqg==</ChecksumCRC32C></Part>
  <Part><PartNumber>2</PartNumber><ETag>"opaque-etag"</ETag><Size>7</Size></Part>
  <Part><PartNumber>0</PartNumber><ETag>"no such part number"</ETag><Size>1</Size></Part>
</ListPartsResult>"#;
        let page = PartsPage::read(body).unwrap();
        assert!(page.truncated);
        assert_eq!(page.next_marker.as_deref(), Some("2"));
        assert_eq!(page.parts.len(), 2, "{page:?}");
        let first = &page.parts[0];
        assert_eq!(first.part_number.get(), 1);
        assert_eq!(first.etag, "\"7778aef83f66abc1fa1e8477f296d394\"");
        assert_eq!(first.size, 5_242_880);
        assert_eq!(first.crc32c, Some("yZRlqg==".parse().unwrap()));
        assert_eq!(
            first.last_modified.map(|at| at.to_rfc3339()),
            Some("2026-12-06T20:00:00+00:00".to_owned())
        );
        assert_eq!(
            (page.parts[1].etag.as_str(), page.parts[1].crc32c),
            ("\"opaque-etag\"", None)
        );
    }

    #[test]
    fn a_refusal_is_read_from_its_error_document_or_named_by_its_status() {
        let document = b"<?xml version=\"1.0\"?><Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>";
        let refusal = Refusal::of_status(http::StatusCode::NOT_FOUND, document);
        assert_eq!(
            (refusal.code.as_str(), refusal.message.as_str()),
            ("NoSuchUpload", "gone")
        );
        let bare = Refusal::of_status(http::StatusCode::NOT_FOUND, b"");
        assert_eq!((bare.status, bare.code.as_str()), (404, "NotFound"));
        let unavailable = Refusal::of_status(http::StatusCode::SERVICE_UNAVAILABLE, b"<html>");
        assert_eq!(unavailable.code, "ServiceUnavailable");
        assert!(
            Refusal::in_document(
                200,
                "<CompleteMultipartUploadResult><ETag>\"e\"</ETag></CompleteMultipartUploadResult>"
            )
            .is_none()
        );
    }
}
