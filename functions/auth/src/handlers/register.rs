//! `POST /auth/register`: a new account, its first token, and `user.registered`.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use shared::http::{json_body, source_ip};
use shared::publisher::Publish;
use shared::{Problem, Reply};

use super::Session;
use crate::clients::SigningKey;
use crate::domain::{Registration, Throttle, User};
use crate::passwords::Passwords;
use crate::store::{Admission, UserStore};

pub struct Register<S, P> {
    pub store: S,
    pub publisher: P,
    pub passwords: Passwords,
    pub key: SigningKey,
    /// Registrations one client address may make within 15 minutes.
    pub registrations_per_address: usize,
}

/// `RegistrationsPerAddress`' default, as in template.yaml.
pub const REGISTRATIONS_PER_ADDRESS: usize = 10;

impl<S: UserStore, P: Publish + Sync> Register<S, P> {
    pub async fn handle(&self, request: Request) -> Result<Reply, Problem> {
        let account = json_body::<Registration>(&request)?.validate()?;
        // Counted before the argon2 hash it costs, per client address.
        let from_address = Throttle::registrations_from(&source_ip(&request), self.registrations_per_address);
        if let Admission::Locked(wait) = self.store.admit(&from_address, chrono::Utc::now()).await? {
            let what = "too many registrations from this address";
            return Err(super::throttled(wait, "too-many-registrations", "Too many registrations", what));
        }
        let hash = self.passwords.hash(&account.password).map_err(|e| {
            tracing::error!(%e, "hashing failed");
            Problem::internal()
        })?;
        // The signing key first: if it cannot be read, no account is made that the client
        // would find taken when it tries again.
        self.key.signer().await.map_err(super::key_failure)?;
        let user = User::new(&account, chrono::Utc::now());
        let event = user.registered(&shared::http::correlation_id(&request));
        // The account and its event are one write; the event goes out now or via the relay.
        self.store.create(&user, &hash, &event).await?;
        shared::outbox::deliver(self.store.outbox(), &self.publisher, &[event]).await;
        tracing::info!(user_id = %user.user_id, role = ?user.role, "user registered");
        Ok(Reply::json(StatusCode::CREATED, &Session::start(user, &self.key, &self.store).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::tokens::tests::{signer, verifier};
    use shared::Envelope;
    use shared::publisher::{MemoryPublisher, PublishError};
    use testkit::requests::{body, sample, with_body};

    fn service<P>(publisher: P) -> Register<MemoryStore, P> {
        Register {
            store: MemoryStore::default(),
            publisher,
            passwords: Passwords::new().unwrap(),
            key: SigningKey::ready(signer()),
            registrations_per_address: REGISTRATIONS_PER_ADDRESS,
        }
    }

    async fn call<P: Publish + Sync>(
        service: &Register<MemoryStore, P>,
        body_text: &str,
    ) -> lambda_http::Response<lambda_http::Body> {
        let request = with_body(sample("http-post-auth-register.json"), body_text);
        testkit::requests::call(&|request| service.handle(request), request).await
    }

    #[tokio::test]
    async fn an_unreadable_signing_key_makes_no_account_so_the_retry_registers() {
        let mut service = service(MemoryPublisher::default());
        service.key = SigningKey::unreadable();
        let request = sample("http-post-auth-register.json");
        let failed = testkit::requests::call(&|request| service.handle(request), request).await;
        assert_eq!(failed.status(), 503);
        assert!(service.publisher.published().is_empty());
        service.key = SigningKey::ready(signer());
        let request = sample("http-post-auth-register.json");
        let retried = testkit::requests::call(&|request| service.handle(request), request).await;
        assert_eq!(retried.status(), 201, "not 409: the failed attempt left no account");
    }

    #[tokio::test]
    async fn the_sample_registers_and_publishes_user_registered() {
        let service = service(MemoryPublisher::default());
        let request = sample("http-post-auth-register.json");
        let response = testkit::requests::call(&|request| service.handle(request), request).await;
        assert_eq!(response.status(), 201);
        let session = body(&response);
        assert_eq!(session["token_type"], "Bearer");
        assert_eq!(session["expires_in"], 900);
        assert!(session["refresh_token"].as_str().unwrap().starts_with("rt_"), "a refresh token of its own family");
        assert_eq!(session["user"]["email"], "ada@example.com", "lower-cased");
        assert_eq!(session["user"]["role"], "customer");
        let claims = verifier().verify(session["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(claims.sub, session["user"]["user_id"].as_str().unwrap());
        let published = service.publisher.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].event_type(), "user.registered");
        assert_eq!(published[0].correlationid, "c-sample-register");
    }

    #[tokio::test]
    async fn the_same_email_in_another_case_is_a_conflict() {
        let service = service(MemoryPublisher::default());
        let first = call(&service, r#"{"email":"Bob@Example.com","password":"12345678","name":"Bob"}"#).await;
        assert_eq!(first.status(), 201);
        let again = call(&service, r#"{"email":"bob@EXAMPLE.com","password":"other-pass","name":"Bob 2"}"#).await;
        assert_eq!(again.status(), 409);
        assert_eq!(again.headers()["content-type"], "application/problem+json");
        assert_eq!(service.publisher.published().len(), 1, "one event for one account");
    }

    #[tokio::test]
    async fn ten_registrations_from_one_address_then_429_and_other_addresses_go_on() {
        let service = service(MemoryPublisher::default());
        let register_from = |address: &'static str, n: usize| {
            let body_text = format!(r#"{{"email":"u{n}.{address}@example.com","password":"12345678","name":"U"}}"#);
            testkit::requests::from_address(with_body(sample("http-post-auth-register.json"), &body_text), address)
        };
        for n in 0..10 {
            let answer = testkit::requests::call(&|r| service.handle(r), register_from("203.0.113.5", n)).await;
            assert_eq!(answer.status(), 201, "registration {n}");
        }
        let refused = testkit::requests::call(&|r| service.handle(r), register_from("203.0.113.5", 10)).await;
        assert_eq!(refused.status(), 429);
        assert!(refused.headers().contains_key("retry-after"));
        assert!(body(&refused)["type"].as_str().unwrap().ends_with("/too-many-registrations"));
        let elsewhere = testkit::requests::call(&|r| service.handle(r), register_from("203.0.113.6", 10)).await;
        assert_eq!(elsewhere.status(), 201);
    }

    #[tokio::test]
    async fn bad_bodies_are_400() {
        let service = service(MemoryPublisher::default());
        for bad in [
            "",
            "{",
            r#"{"email":"a@example.com","password":"short","name":"A"}"#,
            r#"{"email":"not-an-email","password":"12345678","name":"A"}"#,
            r#"{"email":"a@example.com","password":"12345678","name":""}"#,
            r#"{"email":"a@example.com","password":"12345678","name":"A","role":"admin"}"#,
            r#"{"email":"a@example.com","password":12345678,"name":"A"}"#,
            r#"{"email":"a@example.com","name":"A"}"#,
        ] {
            let response = call(&service, bad).await;
            assert_eq!(response.status(), 400, "{bad}");
            assert!(body(&response)["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
        assert!(service.publisher.published().is_empty());
    }

    struct BrokenPublisher;
    impl Publish for BrokenPublisher {
        async fn publish(&self, _: &Envelope) -> Result<(), PublishError> {
            Err(PublishError::Sns("unreachable".into()))
        }
    }

    #[tokio::test]
    async fn an_event_that_cannot_be_published_now_is_relayed_later() {
        let service = service(BrokenPublisher);
        let body_text = r#"{"email":"c@example.com","password":"12345678","name":"C"}"#;
        assert_eq!(call(&service, body_text).await.status(), 201, "the account exists");
        let pending = shared::outbox::Outbox::pending(&service.store.outbox, 10).await.unwrap();
        assert_eq!(pending.len(), 1, "user.registered waits in the outbox");

        let publisher = MemoryPublisher::default();
        let report = shared::outbox::relay(&service.store.outbox, &publisher).await.unwrap();
        assert_eq!(report.published, 1);
        assert_eq!(publisher.published()[0].event_type(), "user.registered");
    }
}
