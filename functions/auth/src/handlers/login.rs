//! `POST /auth/login`: a token for the right password. Unknown emails and wrong passwords get
//! the same 401 after the same work. Failures are counted per client address (docs/api.md,
//! Auth): after 5 for one email from one address within 15 minutes, that email is refused
//! from that address, and after 20 from one address whatever the emails, that address is
//! refused, each with 429 and `Retry-After` until the window ends. What others do from other
//! addresses never refuses the right password.

use chrono::Utc;
use lambda_http::Request;
use lambda_http::http::StatusCode;
use shared::http::{json_body, source_ip};
use shared::{Problem, Reply};

use super::Session;
use crate::clients::SigningKey;
use crate::domain::{Email, Login, Throttle};
use crate::passwords::Passwords;
use crate::store::{Admission, UserStore};

pub struct LogIn<S> {
    pub store: S,
    pub passwords: Passwords,
    pub key: SigningKey,
}

fn bad_credentials() -> Problem {
    Problem::unauthorized("the email or password is not correct")
}

impl<S: UserStore> LogIn<S> {
    pub async fn handle(&self, request: Request) -> Result<Reply, Problem> {
        let login = json_body::<Login>(&request)?;
        // Each attempt is counted before the password is checked, so parallel guesses are too;
        // a success is then taken back. Every attempt costs a password hash, so the address is
        // counted first, a malformed email included.
        let address = source_ip(&request);
        let from_address = Throttle::logins_from(&address);
        let now = Utc::now();
        if let Admission::Locked(wait) = self.store.admit(&from_address, now).await? {
            return Err(too_many_attempts(wait, "from this address"));
        }
        // A malformed email cannot have an account: the same answer as any unknown one.
        let Ok(email) = Email::parse(&login.email) else {
            self.passwords.verify(&login.password, None);
            return Err(bad_credentials());
        };
        let for_email = Throttle::login(&email, &address);
        if let Admission::Locked(wait) = self.store.admit(&for_email, now).await? {
            return Err(too_many_attempts(wait, "for this email from this address"));
        }
        let credentials = self.store.credentials(&email).await?;
        let hash = credentials.as_ref().map(|c| c.password_hash.as_str());
        let verified = self.passwords.verify(&login.password, hash);
        let Some(credentials) = credentials.filter(|_| verified) else {
            tracing::info!("login failed");
            return Err(bad_credentials());
        };
        let user = self.store.user(&credentials.user_id).await?.ok_or_else(|| {
            tracing::error!(user_id = %credentials.user_id, "credentials without a profile");
            Problem::internal()
        })?;
        self.store.forgive(&for_email, None).await?;
        self.store.forgive(&from_address, Some(now)).await?;
        Ok(Reply::json(StatusCode::OK, &Session::start(user, &self.key, &self.store).await?))
    }
}

fn too_many_attempts(wait: std::time::Duration, whose: &str) -> Problem {
    super::throttled(
        wait,
        "too-many-login-attempts",
        "Too many login attempts",
        &format!("too many failed logins {whose}"),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{NewAccount, Role, User};
    use crate::store::memory::MemoryStore;
    use crate::tokens::tests::{signer, verifier};
    use testkit::requests::{body, from_address, sample, with_body};

    /// A login service that knows Ada (`ada@example.com`, "correct horse").
    pub(crate) async fn service_with_ada() -> LogIn<MemoryStore> {
        let service = LogIn {
            store: MemoryStore::default(),
            passwords: Passwords::new().unwrap(),
            key: SigningKey::ready(signer()),
        };
        let account = NewAccount {
            email: Email::parse("ada@example.com").unwrap(),
            password: "correct horse".into(),
            name: "Ada".into(),
            role: Role::Customer,
        };
        let hash = service.passwords.hash(&account.password).unwrap();
        let user = User::new(&account, Utc::now());
        let event = user.registered(&shared::CorrelationId::generate());
        service.store.create(&user, &hash, &event).await.unwrap();
        service
    }

    async fn login(
        service: &LogIn<MemoryStore>,
        email: &str,
        password: &str,
    ) -> lambda_http::Response<lambda_http::Body> {
        let body_text = serde_json::json!({"email": email, "password": password}).to_string();
        let request = with_body(sample("http-post-auth-login.json"), &body_text);
        testkit::requests::call(&|request| service.handle(request), request).await
    }

    #[tokio::test]
    async fn the_right_password_gets_a_token_in_any_email_case() {
        let service = service_with_ada().await;
        let response =
            testkit::requests::call(&|request| service.handle(request), sample("http-post-auth-login.json")).await;
        assert_eq!(response.status(), 200);
        let session = body(&response);
        assert_eq!(session["user"]["email"], "ada@example.com");
        assert!(verifier().verify(session["access_token"].as_str().unwrap()).is_ok());
        assert!(session["refresh_token"].as_str().unwrap().starts_with("rt_"));
        assert_eq!(session["expires_in"], 900);
    }

    #[tokio::test]
    async fn unknown_emails_and_wrong_passwords_are_indistinguishable() {
        let service = service_with_ada().await;
        let wrong = login(&service, "ada@example.com", "wrong horse").await;
        let unknown = login(&service, "nobody@example.com", "wrong horse").await;
        let malformed = login(&service, "nobody", "wrong horse").await;
        for response in [&wrong, &unknown, &malformed] {
            assert_eq!(response.status(), 401);
        }
        let strip = |r: &lambda_http::Response<lambda_http::Body>| {
            let mut b = body(r);
            b.as_object_mut().unwrap().remove("correlation_id");
            b
        };
        assert_eq!(strip(&wrong), strip(&unknown));
        assert_eq!(strip(&wrong), strip(&malformed));
    }

    #[tokio::test]
    async fn the_sixth_attempt_within_15_minutes_is_429_with_retry_after() {
        let service = service_with_ada().await;
        for attempt in 1..=5 {
            assert_eq!(login(&service, "ada@example.com", "wrong").await.status(), 401, "attempt {attempt}");
        }
        let refused = login(&service, "ADA@example.com", "correct horse").await;
        assert_eq!(refused.status(), 429, "even the right password waits");
        let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((890..=900).contains(&retry_after), "{retry_after}");
        assert_eq!(body(&refused)["status"], 429);
        assert_eq!(login(&service, "other@example.com", "x").await.status(), 401, "other emails are not affected");
    }

    async fn login_from(
        service: &LogIn<MemoryStore>,
        address: &str,
        email: &str,
        password: &str,
    ) -> lambda_http::Response<lambda_http::Body> {
        let body_text = serde_json::json!({"email": email, "password": password}).to_string();
        let request = from_address(with_body(sample("http-post-auth-login.json"), &body_text), address);
        testkit::requests::call(&|request| service.handle(request), request).await
    }

    #[tokio::test]
    async fn failures_from_another_address_never_refuse_the_right_password() {
        let service = service_with_ada().await;
        for _ in 0..10 {
            login_from(&service, "203.0.113.9", "ada@example.com", "guess").await;
        }
        assert_eq!(login_from(&service, "203.0.113.9", "ada@example.com", "correct horse").await.status(), 429);
        let ada = login_from(&service, "198.51.100.7", "ada@example.com", "correct horse").await;
        assert_eq!(ada.status(), 200, "Ada's own address has not failed");
    }

    #[tokio::test]
    async fn twenty_failures_from_one_address_refuse_it_for_every_email_and_successes_are_no_failures() {
        let service = service_with_ada().await;
        // Successes do not count: a shared address (an office) logs in all day.
        for _ in 0..25 {
            assert_eq!(login_from(&service, "192.0.2.1", "ada@example.com", "correct horse").await.status(), 200);
        }
        for i in 0..20 {
            let email = format!("user{i}@example.com");
            assert_eq!(login_from(&service, "192.0.2.1", &email, "guess").await.status(), 401, "{email}");
        }
        let refused = login_from(&service, "192.0.2.1", "ada@example.com", "correct horse").await;
        assert_eq!(refused.status(), 429);
        assert!(body(&refused)["detail"].as_str().unwrap().contains("from this address"), "{}", body(&refused));
        let malformed = login_from(&service, "192.0.2.1", "not an email", "guess").await;
        assert_eq!(malformed.status(), 429, "a malformed email is counted too");
        assert_eq!(login_from(&service, "192.0.2.2", "ada@example.com", "correct horse").await.status(), 200);
    }
}
