//! Accounts: what a valid registration is, the user as the API shows it, and the login
//! throttling rule. Pure rules: no AWS, no HTTP.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shared::Invalid;
pub use shared::events::Role;

/// The window every throttle counts attempts in (docs/api.md, Auth).
pub const THROTTLE_WINDOW: Duration = Duration::minutes(15);

/// A sliding-window count of attempts, keyed by what it throttles, with its limit within
/// [`THROTTLE_WINDOW`]. Every key names the client address (API Gateway's `sourceIp`), so
/// what one client does never refuses another: nobody locks a customer out by knowing their
/// email.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Throttle {
    pub key: String,
    pub limit: usize,
}

impl Throttle {
    /// Failed logins for one email from one address: 5.
    pub fn login(email: &Email, address: &str) -> Self {
        Self { key: format!("LOGIN#{}#{address}", email.as_str()), limit: 5 }
    }

    /// Failed logins from one address, whatever the emails: 20.
    pub fn logins_from(address: &str) -> Self {
        Self { key: format!("ADDRESS#{address}"), limit: 20 }
    }

    /// Registrations from one address (each costs an argon2 hash): `limit`, the template's
    /// `RegistrationsPerAddress` (10 by default).
    pub fn registrations_from(address: &str, limit: usize) -> Self {
        Self { key: format!("REGISTER#{address}"), limit }
    }
}

/// An email address in its canonical form, so that one mailbox cannot hold two accounts:
/// Unicode NFKC, lower case, the domain in IDNA ASCII (`bücher.example` is
/// `xn--bcher-kva.example`). Quoted local parts, and local parts that mix scripts (a Cyrillic
/// `а` among Latin letters) are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid(format!("{raw:?} is not a valid email address"));
        let normalized: String = unicode_normalization::UnicodeNormalization::nfkc(raw.trim()).collect();
        let (local, domain) = normalized.rsplit_once('@').ok_or_else(invalid)?;
        if local.contains('"') || !one_script(local) {
            return Err(invalid());
        }
        let domain = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
        let canonical = format!("{}@{domain}", local.to_lowercase());
        let valid = canonical.len() <= 254
            && email_address::EmailAddress::parse_with_options(
                &canonical,
                email_address::Options::default().without_display_text(),
            )
            .is_ok_and(|address| address.domain().contains('.'));
        if valid { Ok(Self(canonical)) } else { Err(invalid()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `text`'s letters are of one script, or of one of the mixes a single writing
/// system uses (UTS #39's "highly restrictive" level: Latin with Han and Japanese kana, with
/// Han and Bopomofo, or with Han and Hangul). Digits and punctuation belong to every script.
fn one_script(text: &str) -> bool {
    use unicode_script::{Script, UnicodeScript};
    let scripts: std::collections::HashSet<Script> = text
        .chars()
        .map(|c| c.script())
        .filter(|s| !matches!(s, Script::Common | Script::Inherited | Script::Unknown))
        .collect();
    let within = |allowed: &[Script]| scripts.iter().all(|s| allowed.contains(s));
    scripts.len() <= 1
        || within(&[Script::Latin, Script::Han, Script::Hiragana, Script::Katakana])
        || within(&[Script::Latin, Script::Han, Script::Bopomofo])
        || within(&[Script::Latin, Script::Han, Script::Hangul])
}

/// `POST /auth/register`'s body.
#[derive(Debug, Deserialize)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
    #[serde(default, deserialize_with = "shared::http::not_null")]
    pub role: Option<Role>,
}

/// `POST /auth/login`'s body.
#[derive(Debug, Deserialize)]
pub struct Login {
    pub email: String,
    pub password: String,
}

/// A registration that passed every rule.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub password: String,
    pub name: String,
    pub role: Role,
}

pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
pub const MAX_NAME_CHARS: usize = 200;

impl Registration {
    pub fn validate(self) -> Result<NewAccount, Invalid> {
        let email = Email::parse(&self.email)?;
        let length = self.password.chars().count();
        if !PASSWORD_CHARS.contains(&length) {
            return Err(Invalid(format!(
                "password must be {} to {} characters long (got {length})",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            )));
        }
        // At most MAX_NAME_CHARS as sent (the schema's maxLength), not blank (its `\S`).
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid(format!("name must be at most {MAX_NAME_CHARS} characters")));
        }
        let name = shared::http::trim_blank(&self.name).to_owned();
        if name.is_empty() {
            return Err(Invalid("name must not be blank".into()));
        }
        let role = self.role.unwrap_or(Role::Customer);
        if role == Role::Admin {
            return Err(Invalid("role must be customer or seller: admin accounts are never self-registered".into()));
        }
        Ok(NewAccount { email, password: self.password, name, role })
    }
}

/// A user as the API shows it (docs/api.md, Auth: `user`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// `user.registered`, as this user's registration publishes it.
    pub fn registered(&self, correlation_id: &shared::CorrelationId) -> shared::Envelope {
        let event = shared::events::UserRegistered {
            user_id: self.user_id.clone(),
            email: self.email.as_str().to_owned(),
            name: self.name.clone(),
            role: self.role,
        };
        shared::Envelope::new(shared::Event::UserRegistered(event), correlation_id)
    }

    pub fn new(account: &NewAccount, now: DateTime<Utc>) -> Self {
        Self {
            user_id: format!("usr_{}", ulid::Ulid::generate()),
            email: account.email.clone(),
            name: account.name.clone(),
            role: account.role,
            created_at: now,
        }
    }
}

/// The user as other services see one (`GET /internal/users/{id}`): the same JSON.
impl From<User> for shared::contracts::User {
    fn from(user: User) -> Self {
        Self {
            user_id: user.user_id,
            email: user.email.0,
            name: user.name,
            role: user.role,
            created_at: user.created_at,
        }
    }
}

/// Whether an attempt may go ahead, given the times (epoch seconds) of the recent attempts
/// `limit` allows: `Ok(attempts to store)` with this one added, or how long attempts stay
/// refused. A sliding window: `limit` attempts within any 15 minutes lock.
pub fn admit(previous: &[i64], limit: usize, now: DateTime<Utc>) -> Result<Vec<i64>, std::time::Duration> {
    let now = now.timestamp();
    let window = THROTTLE_WINDOW.num_seconds();
    let mut recent: Vec<i64> = previous.iter().copied().filter(|t| now - t < window).collect();
    recent.sort_unstable();
    if recent.len() >= limit {
        let unlocks_at = recent[recent.len() - limit] + window;
        return Err(std::time::Duration::from_secs((unlocks_at - now).max(1) as u64));
    }
    recent.push(now);
    Ok(recent)
}

/// `previous` without one attempt made at `at` (an attempt taken back), if it is there.
pub fn forgiven(previous: &[i64], at: DateTime<Utc>) -> Vec<i64> {
    let mut kept = previous.to_vec();
    if let Some(i) = kept.iter().position(|t| *t == at.timestamp()) {
        kept.remove(i);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(email: &str, password: &str, name: &str) -> Registration {
        Registration { email: email.into(), password: password.into(), name: name.into(), role: None }
    }

    #[test]
    fn one_mailbox_has_one_canonical_form() {
        let canonical = |raw: &str| Email::parse(raw).map(|e| e.as_str().to_owned());
        // Full-width letters and a ligature are their NFKC forms; the domain is IDNA ASCII.
        assert_eq!(canonical("ＡＤＡ@example.com").unwrap(), "ada@example.com");
        assert_eq!(canonical("ﬁona@example.com").unwrap(), "fiona@example.com");
        assert_eq!(canonical("ada@BÜCHER.example").unwrap(), "ada@xn--bcher-kva.example");
        assert_eq!(canonical("ada@xn--bcher-kva.example").unwrap(), "ada@xn--bcher-kva.example");
        assert_eq!(canonical("ada@ｅｘａｍｐｌｅ.com").unwrap(), "ada@example.com");
        // One script per local part: a Cyrillic "а" (U+0430) among Latin letters is refused,
        // all-Cyrillic and Latin with Japanese are not.
        assert!(canonical("\u{430}da@example.com").is_err());
        assert_eq!(canonical("иван@example.com").unwrap(), "иван@example.com");
        assert!(canonical("tanaka.たなか@example.jp").is_ok());
        // Quoted local parts are refused, whatever they hold.
        for quoted in [r#""ada"@example.com"#, r#""a b"@example.com"#, r#""ada@x"@example.com"#] {
            assert!(canonical(quoted).is_err(), "{quoted}");
        }
    }

    #[test]
    fn emails_are_validated_and_lower_cased() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "Ada <ada@example.com>"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn registrations_follow_the_contract() {
        let ok = registration("a@example.com", "12345678", " Ada ").validate().unwrap();
        assert_eq!((ok.name.as_str(), ok.role), ("Ada", Role::Customer));
        assert!(registration("a@example.com", "1234567", "Ada").validate().is_err(), "7 chars");
        assert!(registration("a@example.com", &"x".repeat(129), "Ada").validate().is_err(), "129 chars");
        assert!(registration("a@example.com", &"é".repeat(128), "Ada").validate().is_ok(), "characters, not bytes");
        assert!(registration("a@example.com", "12345678", "  ").validate().is_err(), "empty name");
        assert!(registration("nope", "12345678", "Ada").validate().is_err());
        let seller: Registration =
            serde_json::from_str(r#"{"email":"s@example.com","password":"12345678","name":"S","role":"seller"}"#)
                .unwrap();
        assert_eq!(seller.validate().unwrap().role, Role::Seller);
        let admin: Registration =
            serde_json::from_str(r#"{"email":"s@example.com","password":"12345678","name":"S","role":"admin"}"#)
                .unwrap();
        assert!(admin.validate().is_err(), "admin is never self-registered");
        let unsaid: Registration =
            serde_json::from_str(r#"{"email":"s@example.com","password":"12345678","name":"S"}"#).unwrap();
        assert_eq!(unsaid.validate().unwrap().role, Role::Customer, "customer by default");
        assert!(
            serde_json::from_str::<Registration>(
                r#"{"email":"s@example.com","password":"12345678","name":"S","role":null}"#
            )
            .is_err(),
            "null is a wrong type, not the default"
        );
    }

    #[test]
    fn five_failures_within_any_15_minutes_lock_until_the_oldest_leaves_the_window() {
        let start = Utc::now();
        let at = |minutes: i64| start + Duration::minutes(minutes);
        let mut attempts = Vec::new();
        for minute in [0, 1, 2, 3, 4] {
            attempts = admit(&attempts, 5, at(minute)).unwrap();
        }
        let locked = admit(&attempts, 5, at(5)).unwrap_err();
        assert_eq!(locked.as_secs(), 10 * 60, "until the first failure is 15 minutes old");
        assert!(admit(&attempts, 5, at(15)).is_ok(), "the oldest has left the window");
        // Sliding, not fixed: 4 failures just before a boundary and 1 after still lock.
        let straddling: Vec<i64> = [14, 14, 14, 14].iter().map(|m| at(*m).timestamp()).collect();
        let straddling = admit(&straddling, 5, at(16)).unwrap();
        assert!(admit(&straddling, 5, at(17)).is_err());
    }
}
