//! The notification-queue consumer: each event that calls for a message gets exactly one,
//! sent through the configured `Sender` and stored for `GET /notifications`. The event id
//! is claimed first (shared::idempotency), so a redelivered event sends nothing again; and
//! the notification's id is the event's, so an attempt whose claim was lost after the work
//! (an outage at the wrong moment) finds it stored and sends nothing either.

use std::future::Future;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use shared::events::Event;
use shared::idempotency::{IdempotencyStore, OnceError, key, once};
use shared::internal::{CallError, InternalClient};
use shared::metrics::{self, Metric};
use shared::{CorrelationId, Envelope};

use crate::domain::{Contact, Notification, message_for};
use crate::sender::Sender;
use crate::store::NotificationStore;

/// At most; in Lambda a claim lasts until its invocation ends (see `shared::idempotency::once`).
const LEASE: Duration = Duration::from_secs(60);

/// Where contacts not seen in `user.registered` are looked up: Auth's internal route.
pub trait Directory: Send + Sync {
    fn user(
        &self,
        user_id: &str,
        cid: &CorrelationId,
    ) -> impl Future<Output = Result<Option<Contact>, CallError>> + Send;
}

pub struct AuthDirectory(pub InternalClient);

impl Directory for AuthDirectory {
    async fn user(&self, user_id: &str, cid: &CorrelationId) -> Result<Option<Contact>, CallError> {
        let answer =
            self.0.call("auth", Method::GET, &format!("/internal/users/{user_id}"), None::<&()>, true, cid).await?;
        match answer.status {
            StatusCode::OK => answer.json("auth").map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(CallError::Unexpected {
                service: "auth".into(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&answer.body).into_owned(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Retry(String);

pub async fn handle<S, I, X, D>(
    store: &S,
    claims: &I,
    sender: &X,
    directory: &D,
    envelope: Envelope,
) -> Result<(), Retry>
where
    S: NotificationStore,
    I: IdempotencyStore,
    X: Sender,
    D: Directory,
{
    let retry = |e: &dyn std::fmt::Display| Retry(e.to_string());
    if let Event::UserRegistered(user) = &envelope.event {
        let contact = Contact { user_id: user.user_id.clone(), email: user.email.clone(), name: user.name.clone() };
        store.save_contact(&contact).await.map_err(|e| retry(&e))?;
    }
    let Some((user_id, template, subject, body)) = message_for(&envelope) else { return Ok(()) };
    let cid = CorrelationId::from_header(Some(&envelope.correlationid));
    let work = || async {
        let contact = match store.contact(&user_id).await.map_err(|e| e.to_string())? {
            Some(contact) => contact,
            None => {
                let found = directory.user(&user_id, &cid).await.map_err(|e| e.to_string())?;
                let contact = found.ok_or_else(|| format!("no user {user_id}"))?;
                store.save_contact(&contact).await.map_err(|e| e.to_string())?;
                contact
            }
        };
        let notification = Notification {
            notification_id: format!("ntf_{}", envelope.id),
            user_id: user_id.clone(),
            channel: sender.channel(),
            template,
            subject,
            body,
            event_id: envelope.id.clone(),
            created_at: chrono::Utc::now(),
        };
        // Stored first, once per event: a later attempt that finds it stored does not send again
        // (the price: a crash between storing and sending loses that one message).
        if !store.save(&notification).await.map_err(|e| e.to_string())? {
            tracing::info!(notification_id = %notification.notification_id, "notification already stored and sent");
            return Ok(());
        }
        if let Err(error) = sender.send(&notification, &contact).await {
            store.remove(&notification).await.map_err(|e| e.to_string())?;
            return Err(error.to_string());
        }
        metrics::count(Metric::NotificationsSent, ("Service", "notification"), 1);
        Ok(())
    };
    match once(claims, &key("notify", &envelope.id), LEASE, work).await {
        Ok(_) => Ok(()),
        Err(OnceError::Work(error)) => Err(Retry(error)),
        Err(OnceError::Idempotency(error)) => Err(retry(&error)),
    }
}
