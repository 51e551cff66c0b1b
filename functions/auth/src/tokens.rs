//! Access tokens: HS256 JWTs with `sub`, `role`, `iss`, `aud`, `iat`, `exp`. Verification
//! pins the algorithm, so `alg: none` and tokens signed with anything else are refused.

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{Role, User};

/// How long an access token is valid (docs/api.md, Auth: 1 h; the contract asks for 15 min).
pub const TOKEN_TTL_SECONDS: i64 = 3600;
/// The shortest signing key accepted: HS256 wants at least 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a request's token was refused; the text becomes the 401's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the Authorization header is missing")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    WrongScheme,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token is not signed with the expected algorithm")]
    WrongAlgorithm,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key is {0} bytes; at least {MIN_KEY_BYTES} are needed")]
    TooShort(usize),
    #[error("signing failed: {0}")]
    Signing(String),
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl Tokens {
    pub fn new(key: &[u8], issuer: &str, audience: &str) -> Result<Self, KeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(key.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["sub", "iss", "aud", "iat", "exp"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Ok(Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A token for `user`, valid from `now` for [`TOKEN_TTL_SECONDS`].
    pub fn issue(&self, user: &User, now: DateTime<Utc>) -> Result<String, KeyError> {
        let claims = Claims {
            sub: user.user_id.clone(),
            role: user.role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            exp: now.timestamp() + TOKEN_TTL_SECONDS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| KeyError::Signing(e.to_string()))
    }

    /// The claims of a valid token from an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Claims, Rejection> {
        let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(Rejection::Missing)?;
        let (scheme, token) = header.split_once(' ').ok_or(Rejection::WrongScheme)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Rejection::WrongScheme);
        }
        self.verify(token.trim())
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        // The algorithm is checked first, so `alg: none` (which jsonwebtoken cannot even
        // parse) is named for what it is.
        match header_algorithm(token) {
            Some(alg) if alg == "HS256" => {}
            Some(_) => return Err(Rejection::WrongAlgorithm),
            None => return Err(Rejection::Malformed),
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => Rejection::BadSignature,
                ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::MissingAlgorithm
                | ErrorKind::UnsupportedAlgorithm => Rejection::WrongAlgorithm,
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                ErrorKind::InvalidAudience => Rejection::WrongAudience,
                _ => Rejection::Malformed,
            })?;
        Ok(data.claims)
    }
}

/// The `alg` of a JWT's header, if the header is readable.
fn header_algorithm(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    header["alg"].as_str().map(str::to_owned)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    pub const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-key";

    pub fn tokens() -> Tokens {
        Tokens::new(KEY, "https://auth.test", "ecommerce").unwrap()
    }

    pub fn user(role: Role) -> User {
        User {
            user_id: "usr_1".into(),
            email: crate::domain::Email::parse("a@example.com").unwrap(),
            name: "A".into(),
            role,
            created_at: Utc::now(),
        }
    }

    /// A token with hand-made claims, signed with `algorithm` and `key`.
    pub fn forge(algorithm: Algorithm, claims: serde_json::Value, key: &[u8]) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), &claims, &EncodingKey::from_secret(key)).unwrap()
    }

    fn claims(now: i64) -> serde_json::Value {
        serde_json::json!({"sub": "usr_1", "role": "customer", "iss": "https://auth.test", "aud": "ecommerce", "iat": now, "exp": now + 600})
    }

    #[test]
    fn issued_tokens_verify_with_every_claim() {
        let tokens = tokens();
        let token = tokens.issue(&user(Role::Seller), Utc::now()).unwrap();
        let claims = tokens.verify_header(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("usr_1", Role::Seller));
        assert_eq!(claims.exp - claims.iat, TOKEN_TTL_SECONDS);
        assert_eq!(claims.iss, "https://auth.test");
        assert_eq!(claims.aud, "ecommerce");
    }

    #[test]
    fn every_forgery_is_refused_for_its_reason() {
        let tokens = tokens();
        let now = Utc::now().timestamp();
        let hs256 = Algorithm::HS256;
        let good = forge(hs256, claims(now), KEY);
        assert!(tokens.verify(&good).is_ok(), "the forging helper itself is right");
        let mut expired = claims(now - 7200);
        expired["exp"] = (now - 3600).into();
        let mut future = claims(now);
        future["nbf"] = (now + 3600).into();
        let mut other_issuer = claims(now);
        other_issuer["iss"] = "https://evil.test".into();
        let mut other_audience = claims(now);
        other_audience["aud"] = "someone-else".into();
        let unsigned =
            format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#), B64.encode(claims(now).to_string()));
        let hs512 = forge(Algorithm::HS512, claims(now), KEY);
        let cases = [
            (None, Rejection::Missing),
            (Some("".to_owned()), Rejection::Missing),
            (Some(format!("Basic {good}")), Rejection::WrongScheme),
            (Some(good.clone()), Rejection::WrongScheme),
            (Some("Bearer not.a.jwt".into()), Rejection::Malformed),
            (
                Some("Bearer ".to_owned() + &forge(hs256, claims(now), b"another-key-another-key-another-key")),
                Rejection::BadSignature,
            ),
            (Some(format!("Bearer {unsigned}")), Rejection::WrongAlgorithm),
            (Some(format!("Bearer {hs512}")), Rejection::WrongAlgorithm),
            (Some(format!("Bearer {}", forge(hs256, expired, KEY))), Rejection::Expired),
            (Some(format!("Bearer {}", forge(hs256, future, KEY))), Rejection::NotYetValid),
            (Some(format!("Bearer {}", forge(hs256, other_issuer, KEY))), Rejection::WrongIssuer),
            (Some(format!("Bearer {}", forge(hs256, other_audience, KEY))), Rejection::WrongAudience),
        ];
        for (header, expected) in cases {
            assert_eq!(tokens.verify_header(header.as_deref()), Err(expected.clone()), "{header:?}");
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(matches!(Tokens::new(b"short", "i", "a"), Err(KeyError::TooShort(5))));
    }
}
