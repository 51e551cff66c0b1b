//! Access tokens forged with the stack's own private key (read from its key secret, as only
//! the token-issuing Auth functions may), to make tokens wrong in exactly one way.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::LocalApi;

pub struct Forger {
    /// The signing key's PKCS#8 bytes, and as the secret holds it (base64url): no answer may
    /// show it.
    pub private_key: Vec<u8>,
    pub private_text: String,
    pub kid: String,
    /// The signing key's public half (raw 32 bytes).
    pub public_key: Vec<u8>,
    pub issuer: String,
    pub audience: String,
}

impl Forger {
    pub async fn of(api: &LocalApi) -> Self {
        let secrets = aws_sdk_secretsmanager::Client::new(&crate::emulator().await);
        let secret = secrets.get_secret_value().secret_id(api.reference("JwtSigningKeys")).send().await.unwrap();
        let keys: auth::tokens::KeySet = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
        let kid = keys.signing.clone();
        let public = keys.public_keys().unwrap().into_iter().find(|k| k.kid == kid).unwrap();
        let parameter = |name: &str| api.stack["parameters"][name].as_str().unwrap().to_owned();
        Self {
            private_key: B64.decode(&keys.keys[&kid]).unwrap(),
            private_text: keys.keys[&kid].clone(),
            public_key: B64.decode(&public.x).unwrap(),
            kid,
            issuer: parameter("JwtIssuer"),
            audience: parameter("JwtAudience"),
        }
    }

    /// Valid claims for `sub`, with `changes` applied (`null` removes a claim).
    pub fn claims(&self, sub: &str, changes: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"sub": sub, "role": "customer", "iss": self.issuer, "aud": self.audience,
            "iat": now, "exp": now + 600, "jti": ulid::Ulid::generate().to_string()});
        let fields = claims.as_object_mut().unwrap();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                fields.remove(name);
            } else {
                fields.insert(name.clone(), value.clone());
            }
        }
        claims
    }

    /// The header Auth writes: EdDSA and the signing key's `kid`.
    pub fn header(&self) -> Value {
        json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid})
    }

    /// `claims` as Auth would sign them.
    pub fn sign(&self, claims: &Value) -> String {
        forge(&self.header(), claims, Algorithm::EdDSA, &self.private_key)
    }
}

/// A JWT of `header` and `claims` signed by `algorithm` with `key` (PKCS#8 for EdDSA, the HMAC
/// secret for HS*), whatever the header says.
pub fn forge(header: &Value, claims: &Value, algorithm: Algorithm, key: &[u8]) -> String {
    let message = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let key = match algorithm {
        Algorithm::EdDSA => EncodingKey::from_ed_der(key),
        _ => EncodingKey::from_secret(key),
    };
    format!("{message}.{}", jsonwebtoken::crypto::sign(message.as_bytes(), &key, algorithm).unwrap())
}

/// Another key set's signing key: what a stranger signs with (PKCS#8), and its `kid`.
pub fn foreign_key() -> (Vec<u8>, String) {
    let keys = auth::tokens::KeySet::generate().unwrap();
    (B64.decode(&keys.keys[&keys.signing]).unwrap(), keys.signing)
}
