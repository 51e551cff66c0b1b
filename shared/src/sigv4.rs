//! SigV4 signing of internal HTTP calls (service `execute-api`), which API Gateway checks
//! on the IAM-authorized `/internal/...` routes.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the request: {0}")]
pub struct SignError(String);

/// The headers (`authorization`, `x-amz-date`, maybe `x-amz-security-token`) that sign a
/// request to `url` with `credentials` in `region`. `headers` are the other headers to
/// sign; `host` is taken from the URL.
pub fn signing_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    let host = url.split('/').nth(2).ok_or_else(|| SignError(format!("{url} has no host")))?;
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let all = std::iter::once(("host", host)).chain(headers.iter().copied());
    let request =
        SignableRequest::new(method, url, all, SignableBody::Bytes(body)).map_err(|e| SignError(e.to_string()))?;
    let (instructions, _) = sign(request, &params).map_err(|e| SignError(e.to_string()))?.into_parts();
    Ok(instructions.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect())
}

/// The function's own credentials (Lambda puts its role's in the environment).
pub fn credentials_from_env() -> Result<Credentials, crate::config::ConfigError> {
    Ok(Credentials::new(
        crate::config::required("AWS_ACCESS_KEY_ID")?,
        crate::config::required("AWS_SECRET_ACCESS_KEY")?,
        std::env::var("AWS_SESSION_TOKEN").ok().filter(|t| !t.is_empty()),
        None,
        "environment",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_the_scope_of_execute_api() {
        let credentials = Credentials::new("AKID", "secret", None, None, "test");
        let headers = signing_headers(
            "POST",
            "http://127.0.0.1:3000/internal/x?a=1",
            &[("content-type", "application/json")],
            b"{}",
            &credentials,
            "eu-west-1",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let authorization = headers.iter().find(|(n, _)| n == "authorization").map(|(_, v)| v.as_str()).unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKID/19700101/eu-west-1/execute-api/aws4_request"),
            "{authorization}"
        );
        assert!(authorization.contains("SignedHeaders=content-type;host;x-amz-date"), "{authorization}");
        assert!(headers.iter().any(|(n, v)| n == "x-amz-date" && v == "19700101T000000Z"));
    }
}
