//! `GET /.well-known/jwks.json`: the public keys that verify access tokens, cacheable for
//! [`MAX_AGE_SECONDS`]. The rotation procedure (docs/operations.md) waits at least that long
//! between publishing a key and signing with it, so no cached copy misses a key in use.

use lambda_http::http::header;
use shared::Reply;

use crate::tokens::Verifier;

pub const MAX_AGE_SECONDS: u64 = 300;

pub fn jwks(verifier: &Verifier) -> Reply {
    Reply::ok(&verifier.jwks()).header(header::CACHE_CONTROL, format!("public, max-age={MAX_AGE_SECONDS}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::tests::{keys, verifier};

    #[tokio::test]
    async fn the_published_keys_as_jwks_with_cache_headers() {
        let verifier = verifier();
        let handler = |_| async { Ok(jwks(&verifier)) };
        let response = testkit::requests::call(&handler, testkit::requests::sample("http-get-jwks.json")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "public, max-age=300");
        let body = testkit::requests::body(&response);
        let key = &body["keys"][0];
        assert_eq!(key["kid"], keys().signing.as_str());
        assert_eq!(
            (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
            (&"OKP".into(), &"Ed25519".into(), &"EdDSA".into(), &"sig".into())
        );
        assert_eq!(body["keys"].as_array().unwrap().len(), 1);
        assert!(key.get("d").is_none(), "never the private part");
    }
}
