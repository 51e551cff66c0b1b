//! Access tokens: EdDSA (Ed25519) JWTs with `kid` in the header and claims `sub`, `role`,
//! `iss`, `aud`, `iat`, `exp` (15 minutes) and `jti` (docs/api.md, Auth).
//!
//! Two halves, held by different functions (docs/architecture.md, Access tokens):
//! - [`Verifier`]: the public keys only (`JWT_PUBLIC_KEYS`, handed to the function by the
//!   template as `kid:x,kid:x`), so the Authorizer and the JWKS route need no secret and no
//!   network call to start. Verification pins EdDSA and the published `kid`s: `alg: none`,
//!   HS256 and any key not published are refused.
//! - [`Signer`]: one private key of the stack's [`KeySet`] (a Secrets Manager secret only the
//!   token-issuing functions may read), the one `JWT_SIGNING_KEY_ID` names.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{Role, User};

/// How long an access token is valid (docs/api.md, Auth: 15 minutes).
pub const TOKEN_TTL_SECONDS: i64 = 900;
/// The one algorithm tokens are signed with and verified by.
pub const ALGORITHM: Algorithm = Algorithm::EdDSA;
/// Clock skew allowed between the signer and a verifier, in seconds.
pub const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
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
    #[error("the token is signed with a key this API does not publish")]
    UnknownKey,
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
    #[error("the key list is not `kid:x,kid:x` with base64url Ed25519 public keys: {0}")]
    BadPublicKeys(String),
    #[error("the key set has no key {0}")]
    NoSuchKey(String),
    #[error("key {0} is no Ed25519 PKCS#8 key")]
    BadPrivateKey(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("the signing key cannot be read: {0}")]
    Unavailable(String),
}

/// One published key: its id and its Ed25519 public key (32 bytes, base64url), as in a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub x: String,
}

impl PublicKey {
    /// `kid:x,kid:x` (the template parameter `JwtPublicKeys`): no quoting needed anywhere.
    pub fn parse_list(text: &str) -> Result<Vec<PublicKey>, KeyError> {
        let keys = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let bad = || KeyError::BadPublicKeys(part.to_owned());
                let (kid, x) = part.split_once(':').ok_or_else(bad)?;
                let decoded = B64.decode(x).map_err(|_| bad())?;
                if !valid_kid(kid) || decoded.len() != 32 {
                    return Err(bad());
                }
                Ok(PublicKey { kid: kid.to_owned(), x: x.to_owned() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::BadPublicKeys("no key".into()));
        }
        Ok(keys)
    }

    pub fn list(keys: &[PublicKey]) -> String {
        keys.iter().map(|k| format!("{}:{}", k.kid, k.x)).collect::<Vec<_>>().join(",")
    }

    /// The key as a JWK (RFC 8037: `kty` OKP, `crv` Ed25519).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid, "x": self.x})
    }
}

/// Key ids travel in a comma-separated `kid:x` list and in JWT headers: letters, digits, `-`, `_`.
fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks tokens against the published public keys.
pub struct Verifier {
    published: Vec<PublicKey>,
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl Verifier {
    pub fn new(public_keys: &str, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let published = PublicKey::parse_list(public_keys)?;
        let keys = published
            .iter()
            .map(|k| {
                Ok((
                    k.kid.clone(),
                    DecodingKey::from_ed_components(&k.x).map_err(|_| KeyError::BadPublicKeys(k.kid.clone()))?,
                ))
            })
            .collect::<Result<_, KeyError>>()?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["sub", "iss", "aud", "iat", "exp"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Ok(Self { published, keys, validation })
    }

    /// `GET /.well-known/jwks.json`'s body: every published key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.published.iter().map(PublicKey::jwk).collect::<Vec<_>>()})
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
        // The header is read first, so `alg: none` (which jsonwebtoken cannot even parse) and
        // an unpublished key are named for what they are.
        let (alg, kid) = header_of(token).ok_or(Rejection::Malformed)?;
        if alg != "EdDSA" {
            return Err(Rejection::WrongAlgorithm);
        }
        let key = kid.and_then(|kid| self.keys.get(&kid)).ok_or(Rejection::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| match e.kind() {
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

/// The `alg` and `kid` of a JWT's header, if the header is readable.
fn header_of(token: &str) -> Option<(String, Option<String>)> {
    let header = token.split('.').next()?;
    let json = B64.decode(header.trim_end_matches('=')).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let alg = header["alg"].as_str()?.to_owned();
    Some((alg, header["kid"].as_str().map(str::to_owned)))
}

/// Issues tokens with one private key.
pub struct Signer {
    kid: String,
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl Signer {
    pub fn kid(&self) -> &str {
        &self.kid
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
            jti: ulid::Ulid::generate().to_string(),
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| KeyError::Signing(e.to_string()))
    }
}

/// The stack's private keys: the JSON of the Secrets Manager secret `{stack}/jwt-signing-keys`
/// (`{"signing": kid, "keys": {kid: PKCS#8 DER, base64url}}`). Every key in it is published;
/// `signing` is the one deploys hand to the signers (rotation: docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    pub signing: String,
    pub keys: BTreeMap<String, String>,
}

impl KeySet {
    /// A set of one new key, which signs.
    pub fn generate() -> Result<Self, KeyError> {
        let mut set = KeySet { signing: String::new(), keys: BTreeMap::new() };
        set.signing = set.add()?;
        Ok(set)
    }

    /// Adds a new key (published from the next deploy, not signing); its id.
    pub fn add(&mut self) -> Result<String, KeyError> {
        use aws_lc_rs::signature::Ed25519KeyPair;
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| KeyError::Signing("cannot generate a key".into()))?;
        // Ids sort by creation (ULIDs), so the newest key is the last.
        let kid = format!("ed25519-{}", ulid::Ulid::generate().to_string().to_lowercase());
        self.keys.insert(kid.clone(), B64.encode(pkcs8.as_ref()));
        Ok(kid)
    }

    /// Every key's public half, oldest first.
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, KeyError> {
        use aws_lc_rs::signature::KeyPair;
        self.keys
            .keys()
            .map(|kid| {
                let (_, pair) = self.pair(kid)?;
                Ok(PublicKey { kid: kid.clone(), x: B64.encode(pair.public_key().as_ref()) })
            })
            .collect()
    }

    /// Key `kid`'s PKCS#8 bytes, checked to be an Ed25519 key, and the key pair.
    fn pair(&self, kid: &str) -> Result<(Vec<u8>, aws_lc_rs::signature::Ed25519KeyPair), KeyError> {
        let encoded = self.keys.get(kid).ok_or_else(|| KeyError::NoSuchKey(kid.to_owned()))?;
        let der = B64.decode(encoded).map_err(|_| KeyError::BadPrivateKey(kid.to_owned()))?;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|_| KeyError::BadPrivateKey(kid.to_owned()))?;
        Ok((der, pair))
    }

    /// A signer with the key `kid`.
    pub fn signer(&self, kid: &str, issuer: &str, audience: &str) -> Result<Signer, KeyError> {
        let (der, _) = self.pair(kid)?;
        Ok(Signer {
            kid: kid.to_owned(),
            key: EncodingKey::from_ed_der(&der),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const ISSUER: &str = "https://auth.test";
    pub const AUDIENCE: &str = "ecommerce";

    /// The test key set (one key, made once per test process).
    pub fn keys() -> &'static KeySet {
        static KEYS: std::sync::OnceLock<KeySet> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| KeySet::generate().unwrap())
    }

    pub fn signer() -> Signer {
        keys().signer(&keys().signing, ISSUER, AUDIENCE).unwrap()
    }

    pub fn verifier() -> Verifier {
        Verifier::new(&PublicKey::list(&keys().public_keys().unwrap()), ISSUER, AUDIENCE).unwrap()
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

    /// A JWT of `header` and `claims` signed with `key` (PKCS#8 Ed25519, or an HMAC secret
    /// when `algorithm` is HS*), whatever the header says.
    pub fn forge(header: &serde_json::Value, claims: &serde_json::Value, algorithm: Algorithm, key: &[u8]) -> String {
        let message = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_der(key),
            _ => EncodingKey::from_secret(key),
        };
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, algorithm).unwrap();
        format!("{message}.{signature}")
    }

    /// The test signing key's PKCS#8 bytes.
    pub fn private_key() -> Vec<u8> {
        B64.decode(&keys().keys[&keys().signing]).unwrap()
    }

    fn claims(now: i64) -> serde_json::Value {
        serde_json::json!({"sub": "usr_1", "role": "customer", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "jti": "j1"})
    }

    fn ours() -> serde_json::Value {
        serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": keys().signing})
    }

    #[test]
    fn issued_tokens_verify_with_every_claim() {
        let token = signer().issue(&user(Role::Seller), Utc::now()).unwrap();
        let claims = verifier().verify_header(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("usr_1", Role::Seller));
        assert_eq!(claims.exp - claims.iat, TOKEN_TTL_SECONDS);
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (ISSUER, AUDIENCE));
        let other = signer().issue(&user(Role::Seller), Utc::now()).unwrap();
        assert_ne!(claims.jti, verifier().verify(&other).unwrap().jti, "every token has its own jti");
        let (alg, kid) = header_of(&token).unwrap();
        assert_eq!((alg.as_str(), kid.as_deref()), ("EdDSA", Some(keys().signing.as_str())));
    }

    #[test]
    fn every_forgery_is_refused_for_its_reason() {
        let verifier = verifier();
        let now = Utc::now().timestamp();
        let key = private_key();
        let good = forge(&ours(), &claims(now), ALGORITHM, &key);
        assert!(verifier.verify(&good).is_ok(), "the forging helper itself is right");
        let mut expired = claims(now - 7200);
        expired["exp"] = (now - 3600).into();
        let mut future = claims(now);
        future["nbf"] = (now + 3600).into();
        let mut other_issuer = claims(now);
        other_issuer["iss"] = "https://evil.test".into();
        let mut other_audience = claims(now);
        other_audience["aud"] = "someone-else".into();
        let mut no_jti = claims(now);
        no_jti.as_object_mut().unwrap().remove("jti");
        let unsigned =
            format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#), B64.encode(claims(now).to_string()));
        let foreign = KeySet::generate().unwrap();
        let foreign_key = B64.decode(&foreign.keys[&foreign.signing]).unwrap();
        let foreign_kid = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": foreign.signing});
        let no_kid = serde_json::json!({"alg": "EdDSA", "typ": "JWT"});
        let hs256 = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": keys().signing});
        // An HS256 token whose HMAC key is the public key: the classic algorithm confusion.
        let public = B64.decode(&keys().public_keys().unwrap()[0].x).unwrap();
        let ed = |claims: serde_json::Value| format!("Bearer {}", forge(&ours(), &claims, ALGORITHM, &key));
        let cases = [
            (None, Rejection::Missing),
            (Some("".to_owned()), Rejection::Missing),
            (Some(format!("Basic {good}")), Rejection::WrongScheme),
            (Some(good.clone()), Rejection::WrongScheme),
            (Some("Bearer not.a.jwt".into()), Rejection::Malformed),
            (
                Some(format!("Bearer {}", forge(&ours(), &claims(now), ALGORITHM, &foreign_key))),
                Rejection::BadSignature,
            ),
            (
                Some(format!("Bearer {}", forge(&foreign_kid, &claims(now), ALGORITHM, &foreign_key))),
                Rejection::UnknownKey,
            ),
            (Some(format!("Bearer {}", forge(&no_kid, &claims(now), ALGORITHM, &key))), Rejection::UnknownKey),
            (Some(format!("Bearer {unsigned}")), Rejection::WrongAlgorithm),
            (
                Some(format!("Bearer {}", forge(&hs256, &claims(now), Algorithm::HS256, &public))),
                Rejection::WrongAlgorithm,
            ),
            (Some(ed(expired)), Rejection::Expired),
            (Some(ed(future)), Rejection::NotYetValid),
            (Some(ed(other_issuer)), Rejection::WrongIssuer),
            (Some(ed(other_audience)), Rejection::WrongAudience),
            (Some(ed(no_jti)), Rejection::Malformed),
        ];
        for (header, expected) in cases {
            assert_eq!(verifier.verify_header(header.as_deref()), Err(expected.clone()), "{header:?}");
        }
    }

    #[test]
    fn a_key_is_published_before_it_signs_and_verifies_after_it_stops_signing() {
        let mut set = keys().clone();
        let old = set.signing.clone();
        let new = set.add().unwrap();
        let both = Verifier::new(&PublicKey::list(&set.public_keys().unwrap()), ISSUER, AUDIENCE).unwrap();
        let kids: Vec<_> = both.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
        assert_eq!(kids, [serde_json::json!(old), serde_json::json!(new)], "oldest first");
        let by_old = set.signer(&old, ISSUER, AUDIENCE).unwrap().issue(&user(Role::Customer), Utc::now()).unwrap();
        let by_new = set.signer(&new, ISSUER, AUDIENCE).unwrap().issue(&user(Role::Customer), Utc::now()).unwrap();
        assert!(both.verify(&by_old).is_ok() && both.verify(&by_new).is_ok());
        assert_eq!(verifier().verify(&by_new), Err(Rejection::UnknownKey), "not before it is published");
        set.keys.remove(&old);
        let retired = Verifier::new(&PublicKey::list(&set.public_keys().unwrap()), ISSUER, AUDIENCE).unwrap();
        assert_eq!(retired.verify(&by_old), Err(Rejection::UnknownKey));
    }

    #[test]
    fn public_key_lists_are_checked() {
        let good = PublicKey::list(&keys().public_keys().unwrap());
        assert_eq!(PublicKey::list(&PublicKey::parse_list(&good).unwrap()), good);
        for bad in ["", "nokid", "k:short", "k,x:AAAA", &format!("bad kid:{}", &good[good.find(':').unwrap() + 1..])] {
            assert!(PublicKey::parse_list(bad).is_err(), "{bad}");
        }
    }
}
