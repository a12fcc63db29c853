//! The IAM policies the README's deploy section hands to AWS
//! (docs/aws/): they parse, the trust policy trusts Vercel's OIDC issuer for
//! one project and environment, and the S3 policy grants every S3 action the
//! code sends and nothing else. The operations are read from the code
//! itself, so a new S3 call without its permission fails here.

#![allow(clippy::unwrap_used, reason = "in a test an unwrap is an assertion")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn json(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Where S3 is called: the functions' adapter and the doctor's checks.
const S3_CALLERS: [&str; 2] = ["shared/src/s3.rs", "dev/src/doctor/storage.rs"];

/// The S3 operations `source` sends. Each call names its operation once, as
/// `const OP: &str = "Name";` or as the name argument of `send!(store,
/// method, "Name", …)`.
fn operations(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for rest in source.split("const OP: &str = \"").skip(1) {
        found.insert(rest.split('"').next().unwrap().to_owned());
    }
    for call in source.split("send!(").skip(1) {
        let name = call.split(',').nth(2).unwrap_or_default().trim();
        if let Some(literal) = name.strip_prefix('"') {
            found.insert(literal.split('"').next().unwrap().to_owned());
        }
    }
    found
}

fn operations_in_code() -> BTreeSet<String> {
    S3_CALLERS
        .iter()
        .flat_map(|path| operations(&std::fs::read_to_string(repo().join(path)).unwrap()))
        .collect()
}

/// On what an IAM action is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// The objects under the stage's prefix.
    Objects,
    Bucket,
}

/// What IAM requires of each S3 API operation (AWS, "Actions, resources,
/// and condition keys for Amazon S3").
fn permissions(operation: &str) -> Option<&'static [(&'static str, On)]> {
    use On::{Bucket, Objects};
    Some(match operation {
        // A part is an object write, however it is sent.
        "CreateMultipartUpload"
        | "UploadPart"
        | "PresignUploadPart"
        | "CompleteMultipartUpload" => &[("s3:PutObject", Objects)],
        "AbortMultipartUpload" => &[("s3:AbortMultipartUpload", Objects)],
        "ListParts" => &[("s3:ListMultipartUploadParts", Objects)],
        "ListMultipartUploads" => &[("s3:ListBucketMultipartUploads", Bucket)],
        "DeleteObject" => &[("s3:DeleteObject", Objects)],
        "GetObject" => &[("s3:GetObject", Objects)],
        // Without s3:ListBucket, S3 answers 403 for a missing key instead of
        // the 404 the code reads as "no object".
        "HeadObject" => &[("s3:GetObject", Objects), ("s3:ListBucket", Bucket)],
        "HeadBucket" => &[("s3:ListBucket", Bucket)],
        "GetBucketCors" => &[("s3:GetBucketCORS", Bucket)],
        _ => return None,
    })
}

/// The policy's grants: each allowed action with the resources it covers.
fn grants(policy: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let strings = |value: &Value| -> Vec<String> {
        match value {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            other => panic!("not a string or a list: {other}"),
        }
    };
    let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for statement in policy["Statement"].as_array().expect("Statement") {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        for action in strings(&statement["Action"]) {
            grants
                .entry(action)
                .or_default()
                .extend(strings(&statement["Resource"]));
        }
    }
    grants
}

#[test]
fn the_s3_policy_grants_every_action_the_code_sends_and_nothing_else() {
    let policy = json("docs/aws/s3-policy.json");
    assert_eq!(policy["Version"], "2012-10-17");
    let grants = grants(&policy);
    let operations = operations_in_code();
    for expected in [
        "CreateMultipartUpload",
        "PresignUploadPart",
        "DeleteObject",
        "HeadBucket",
    ] {
        assert!(
            operations.contains(expected),
            "the scan finds {expected}: {operations:?}"
        );
    }
    let resource = |on: On| match on {
        On::Objects => "arn:aws:s3:::[BUCKET]/[STAGE]/*",
        On::Bucket => "arn:aws:s3:::[BUCKET]",
    };
    let mut needed = BTreeSet::new();
    for operation in &operations {
        let required = permissions(operation)
            .unwrap_or_else(|| panic!("the code sends S3 {operation}: name its IAM action here and grant it in docs/aws/s3-policy.json"));
        for (action, on) in required {
            let granted = grants
                .get(*action)
                .is_some_and(|r| r.contains(resource(*on)));
            assert!(
                granted,
                "{operation} needs {action} on {}: {grants:?}",
                resource(*on)
            );
            needed.insert((*action).to_owned());
        }
    }
    let extra: Vec<&String> = grants.keys().filter(|a| !needed.contains(*a)).collect();
    assert!(
        extra.is_empty(),
        "granted but never used (least privilege): {extra:?}"
    );
    assert!(
        grants.keys().all(|a| !a.contains('*')) && grants.values().flatten().all(|r| r != "*"),
        "no wildcard actions or resources: {grants:?}"
    );
}

#[test]
fn the_trust_policy_trusts_vercels_issuer_for_one_project_and_environment() {
    let policy = json("docs/aws/iam-trust-policy.json");
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().expect("Statement");
    assert_eq!(statements.len(), 1, "{policy}");
    let statement = &statements[0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    // Team issuer mode: https://oidc.vercel.com/[TEAM_SLUG], audience
    // https://vercel.com/[TEAM_SLUG] (Vercel, "Connect to Amazon Web Services").
    let issuer = "oidc.vercel.com/[TEAM_SLUG]";
    assert_eq!(
        statement["Principal"]["Federated"],
        format!("arn:aws:iam::[AWS_ACCOUNT_ID]:oidc-provider/{issuer}")
    );
    let equals = &statement["Condition"]["StringEquals"];
    assert_eq!(
        equals[format!("{issuer}:aud")],
        "https://vercel.com/[TEAM_SLUG]"
    );
    assert_eq!(
        equals[format!("{issuer}:sub")],
        "owner:[TEAM_SLUG]:project:[PROJECT_NAME]:environment:production"
    );
}

#[test]
fn the_operation_scan_reads_both_ways_an_operation_is_named() {
    let source = r#"
        const OP: &str = "ListParts";
        match send!(self, delete_object, "DeleteObject", key(key)) {}
        send!(
            self,
            abort_multipart_upload,
            OP,
            key(key),
        )?;
    "#;
    let found: Vec<String> = operations(source).into_iter().collect();
    assert_eq!(found, ["DeleteObject", "ListParts"]);
}
