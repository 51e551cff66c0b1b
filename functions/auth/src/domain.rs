//! Accounts: what a valid registration is, the user as the API shows it, and the login
//! throttling rule. Pure rules: no AWS, no HTTP.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
pub use shared::events::Role;

/// Failed logins for one email, within [`THROTTLE_WINDOW`], after which logins are refused.
pub const MAX_FAILED_LOGINS: u32 = 5;
pub const THROTTLE_WINDOW: Duration = Duration::minutes(15);

/// A rule a request broke; the handlers answer it with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// An email address, validated and lower-cased: addresses are unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let valid = trimmed.len() <= 254
            && email_address::EmailAddress::parse_with_options(
                trimmed,
                email_address::Options::default().without_display_text(),
            )
            .is_ok_and(|address| address.domain().contains('.'));
        if valid {
            Ok(Self(trimmed.to_lowercase()))
        } else {
            Err(Invalid(format!("{raw:?} is not a valid email address")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /auth/register`'s body.
#[derive(Debug, Deserialize)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
    #[serde(default)]
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
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            return Err(Invalid("name must not be empty".into()));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid(format!(
                "name must be at most {MAX_NAME_CHARS} characters"
            )));
        }
        Ok(NewAccount {
            email,
            password: self.password,
            name,
            role: self.role.unwrap_or(Role::Customer),
        })
    }
}

/// A user as the API shows it (api.md `user`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl User {
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

/// Failed logins for one email since `started_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLogins {
    pub count: u32,
    pub started_at: DateTime<Utc>,
}

/// How long logins for an email stay refused, if they are.
pub fn locked_for(
    failures: Option<FailedLogins>,
    now: DateTime<Utc>,
) -> Option<std::time::Duration> {
    let failures = failures?;
    let ends = failures.started_at + THROTTLE_WINDOW;
    (failures.count >= MAX_FAILED_LOGINS && now < ends)
        .then(|| (ends - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(email: &str, password: &str, name: &str) -> Registration {
        Registration {
            email: email.into(),
            password: password.into(),
            name: name.into(),
            role: None,
        }
    }

    #[test]
    fn emails_are_validated_and_lower_cased() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "Ada <ada@example.com>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn registrations_follow_the_contract() {
        let ok = registration("a@example.com", "12345678", " Ada ")
            .validate()
            .unwrap();
        assert_eq!((ok.name.as_str(), ok.role), ("Ada", Role::Customer));
        assert!(
            registration("a@example.com", "1234567", "Ada")
                .validate()
                .is_err(),
            "7 chars"
        );
        assert!(
            registration("a@example.com", &"x".repeat(129), "Ada")
                .validate()
                .is_err(),
            "129 chars"
        );
        assert!(
            registration("a@example.com", &"é".repeat(128), "Ada")
                .validate()
                .is_ok(),
            "characters, not bytes"
        );
        assert!(
            registration("a@example.com", "12345678", "  ")
                .validate()
                .is_err(),
            "empty name"
        );
        assert!(registration("nope", "12345678", "Ada").validate().is_err());
        let seller: Registration = serde_json::from_str(
            r#"{"email":"s@example.com","password":"12345678","name":"S","role":"seller"}"#,
        )
        .unwrap();
        assert_eq!(seller.validate().unwrap().role, Role::Seller);
        assert!(
            serde_json::from_str::<Registration>(
                r#"{"email":"s@example.com","password":"12345678","name":"S","role":"admin"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn five_failures_within_the_window_lock_until_it_ends() {
        let start = Utc::now();
        let failures = |count| {
            Some(FailedLogins {
                count,
                started_at: start,
            })
        };
        assert_eq!(locked_for(None, start), None);
        assert_eq!(locked_for(failures(4), start), None);
        let locked = locked_for(failures(5), start + Duration::minutes(5)).unwrap();
        assert_eq!(locked.as_secs(), 10 * 60);
        assert_eq!(
            locked_for(failures(9), start + Duration::minutes(15)),
            None,
            "the window is over"
        );
    }
}
