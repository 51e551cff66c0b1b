//! Refresh tokens (docs/api.md, Auth): opaque, single use, valid 30 days, stored only as their
//! SHA-256. Each login starts a *family*; `POST /auth/refresh` spends a token and gives the
//! next one of its family; a spent token presented again (a copy someone else holds, or the
//! holder's after a thief used it) revokes the family, and so does logout.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a refresh token is valid.
pub const REFRESH_TTL: Duration = Duration::days(30);
const PREFIX: &str = "rt_";
/// Random bytes in a token: 256 bits, so a plain SHA-256 of it cannot be searched back.
const RANDOM_BYTES: usize = 32;
/// Its length in base64url without padding.
const ENCODED_LEN: usize = 43;

/// A refresh token as its holder has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system's random generator");
        Self(format!("{PREFIX}{}", B64.encode(bytes)))
    }

    /// A token of the shape [`RefreshToken::generate`] makes (`rt_` and 43 base64url
    /// characters, the pattern infra/openapi.yaml gives); `None` for anything else, which then
    /// was never issued.
    pub fn parse(text: &str) -> Option<Self> {
        let random = text.strip_prefix(PREFIX)?;
        let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        (random.len() == ENCODED_LEN && random.bytes().all(base64url)).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps: the SHA-256 of the token, hex.
    pub fn hash(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.0.as_bytes());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A refresh token as stored, by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub hash: String,
    pub user_id: String,
    pub family: String,
    pub issued_at: DateTime<Utc>,
    /// Epoch seconds (the table's TTL attribute).
    pub expires_at: i64,
    pub spent: bool,
}

impl Stored {
    /// A new token of `family` for `user_id`, issued at `now`, and what is stored of it.
    pub fn issue(user_id: &str, family: &str, now: DateTime<Utc>) -> (RefreshToken, Stored) {
        let token = RefreshToken::generate();
        let stored = Stored {
            hash: token.hash(),
            user_id: user_id.to_owned(),
            family: family.to_owned(),
            issued_at: now,
            expires_at: (now + REFRESH_TTL).timestamp(),
            spent: false,
        };
        (token, stored)
    }

    /// The first token of a new family (a login).
    pub fn first(user_id: &str, now: DateTime<Utc>) -> (RefreshToken, Stored) {
        Self::issue(user_id, &format!("fam_{}", ulid::Ulid::generate()), now)
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now.timestamp()
    }
}

/// The tokens descended from one login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub family: String,
    pub user_id: String,
    pub revoked: bool,
    /// Epoch seconds: the newest token's expiry (the table's TTL attribute).
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_own_shape_parses() {
        let (a, b) = (RefreshToken::generate(), RefreshToken::generate());
        assert_ne!(a, b);
        assert_eq!(RefreshToken::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), b.hash());
        let unpadded = &a.as_str()[3..];
        for bad in [
            "",
            "rt_",
            unpadded,
            &format!("rt_{unpadded}="),
            &format!("xx_{unpadded}"),
            &a.as_str()[..40],
            &format!("{}A", a.as_str()),
        ] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_first_token_starts_a_family_of_30_days() {
        let now = Utc::now();
        let (token, stored) = Stored::first("usr_1", now);
        assert_eq!(stored.hash, token.hash());
        assert!(stored.family.starts_with("fam_"));
        assert_eq!(stored.expires_at - now.timestamp(), 30 * 24 * 3600);
        assert!(!stored.expired(now) && stored.expired(now + REFRESH_TTL));
        assert!(!stored.spent);
    }
}
