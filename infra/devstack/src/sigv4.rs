//! IAM authorization of internal routes, as API Gateway does it: the request must carry a
//! valid SigV4 signature (service `execute-api`) made with the local credentials. The
//! signature is recomputed with `aws-sigv4` over the headers the caller signed and compared.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::http::{HeaderMap, Method};

/// How far a request's `X-Amz-Date` may be from now (AWS allows 15 minutes).
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub access_key: String,
}

/// The credentials requests must be signed with.
#[derive(Debug, Clone)]
pub struct LocalCredentials {
    pub access_key: String,
    pub secret_key: String,
}

/// Checks the request's SigV4 `Authorization` header; `Err` says why it is refused.
pub fn verify(
    credentials: &LocalCredentials,
    expected_region: &str,
    method: &Method,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, String> {
    verify_with(credentials, |key| key == credentials.access_key, expected_region, method, uri, headers, body)
}

/// As [`verify`], for every access key `known` accepts (the functions' own, each signing
/// with the local secret key).
pub fn verify_with(
    credentials: &LocalCredentials,
    known: impl Fn(&str) -> bool,
    expected_region: &str,
    method: &Method,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization").ok_or("missing Authorization header")?;
    let fields = authorization.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("not a SigV4 (AWS4-HMAC-SHA256) signature")?;
    let field = |name: &str| {
        fields
            .split(',')
            .map(str::trim)
            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .ok_or(format!("Authorization has no {name}"))
    };
    let credential = field("Credential")?;
    let signed_headers = field("SignedHeaders")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, _date, region, service, "aws4_request"] = scope[..] else {
        return Err("malformed credential scope".into());
    };
    if region != expected_region {
        return Err(format!("signed for region {region}, the API is in {expected_region}"));
    }
    if service != "execute-api" {
        return Err(format!("signed for service {service}, not execute-api"));
    }
    if !known(access_key) {
        return Err("the access key is not valid here".into());
    }
    let amz_date = header("x-amz-date").ok_or("missing X-Amz-Date")?;
    let time = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ").map_err(|_| "malformed X-Amz-Date")?;
    let time: SystemTime = time.and_utc().into();
    let skew = SystemTime::now().duration_since(time).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err("signature expired".into());
    }

    // Re-sign what the caller signed (minus what the signer adds itself) and compare.
    let added_by_signer = ["x-amz-date", "x-amz-security-token", "authorization"];
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in signed_headers.split(';').filter(|n| !added_by_signer.contains(n)) {
        let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is missing"));
        }
        signed.extend(values.into_iter().map(|value| (name, value)));
    }
    let session_token = header("x-amz-security-token").map(str::to_owned);
    let identity: Identity =
        Credentials::new(access_key, &credentials.secret_key, session_token, None, "devstack").into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(method.as_str(), uri, signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    let expected = instructions.headers().find(|(name, _)| name.eq_ignore_ascii_case("authorization")).map(|(_, v)| v);
    if expected == Some(authorization) {
        Ok(Caller { access_key: access_key.to_owned() })
    } else {
        Err("the request signature does not match".into())
    }
}
