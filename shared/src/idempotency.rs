//! Idempotent consumers: a conditional write on the event id decides who handles an event.
//!
//! A record goes `in_progress` (with a lease) before the work and `done` (with a TTL) after
//! it. A redelivered event that is `done` is skipped; one still `in_progress` under a live
//! lease is failed back to the queue (another instance is on it); one whose lease expired
//! (its handler crashed) is taken over. If the work fails, the record is deleted so the
//! retry runs it again. Records live in the consuming service's own table, keyed
//! `pk = "idem#{scope}#{event_id}"`, `sk = "idem"`, and expire through the table's TTL
//! attribute `expires_at`.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

/// How long a finished record is kept: longer than SQS can redeliver (14 days maximum).
pub const DONE_TTL: Duration = Duration::from_secs(15 * 24 * 3600);

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours to handle.
    Acquired,
    /// Handled before: skip it.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("event {0} is being handled by another invocation")]
    InProgress(String),
    #[error("idempotency store: {0}")]
    Store(String),
}

/// Where claims are kept: [`DynamoIdempotency`] on AWS, [`MemoryIdempotency`] in unit tests.
pub trait IdempotencyStore {
    /// Claims `key` for `lease` (at least the function's timeout).
    fn claim(
        &self,
        key: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, IdempotencyError>> + Send;
    fn complete(&self, key: &str) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
    fn release(&self, key: &str) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
}

/// Error of [`once`]: the store's, or the work's own.
#[derive(Debug, thiserror::Error)]
pub enum OnceError<E: Display> {
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("{0}")]
    Work(E),
}

/// Runs `work` at most once to completion for `key`; `Ok(false)` if it had already run.
pub async fn once<S, F, Fut, E>(
    store: &S,
    key: &str,
    lease: Duration,
    work: F,
) -> Result<bool, OnceError<E>>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    if store.claim(key, lease).await? == Claim::AlreadyDone {
        tracing::info!(key, "duplicate delivery skipped");
        return Ok(false);
    }
    match work().await {
        Ok(()) => {
            store.complete(key).await?;
            Ok(true)
        }
        Err(error) => {
            // Best effort: if the release fails too, the lease expires and a retry takes over.
            if let Err(release) = store.release(key).await {
                tracing::warn!(key, %release, "could not release the idempotency claim");
            }
            Err(OnceError::Work(error))
        }
    }
}

/// The key of `event_id` as handled by `scope` (a consumer name), so that two consumers
/// sharing a table do not see each other's claims.
pub fn key(scope: &str, event_id: &str) -> String {
    format!("idem#{scope}#{event_id}")
}

#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoIdempotency {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn item_key(key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.to_owned())),
            ("sk".to_owned(), AttributeValue::S("idem".to_owned())),
        ])
    }
}

fn store_error(error: impl std::error::Error + Send + Sync + 'static) -> IdempotencyError {
    IdempotencyError::Store(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

impl IdempotencyStore for DynamoIdempotency {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, IdempotencyError> {
        let now = Utc::now().timestamp();
        let lease_until = now + lease.as_secs() as i64;
        let mut item = Self::item_key(key);
        item.insert("status".into(), AttributeValue::S("in_progress".into()));
        item.insert(
            "lease_until".into(),
            AttributeValue::N(lease_until.to_string()),
        );
        item.insert(
            "expires_at".into(),
            AttributeValue::N((now + DONE_TTL.as_secs() as i64).to_string()),
        );
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (#s = :in_progress AND lease_until < :now)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S("in_progress".into()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Acquired),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let existing = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::item_key(key)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(store_error)?;
                let status = existing
                    .item()
                    .and_then(|item| item.get("status"))
                    .and_then(|s| s.as_s().ok());
                match status.map(String::as_str) {
                    Some("done") => Ok(Claim::AlreadyDone),
                    _ => Err(IdempotencyError::InProgress(key.into())),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn complete(&self, key: &str) -> Result<(), IdempotencyError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(key)))
            .update_expression("SET #s = :done REMOVE lease_until")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":done", AttributeValue::S("done".into()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), IdempotencyError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(key)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// In-memory claims with the same rules, for unit tests of consumers.
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    /// key -> (done, lease_until as unix seconds)
    records: Mutex<HashMap<String, (bool, i64)>>,
}

impl IdempotencyStore for MemoryIdempotency {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, IdempotencyError> {
        let now = Utc::now().timestamp();
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        match records.get(key) {
            Some((true, _)) => Ok(Claim::AlreadyDone),
            Some((false, lease_until)) if *lease_until >= now => {
                Err(IdempotencyError::InProgress(key.into()))
            }
            _ => {
                records.insert(key.into(), (false, now + lease.as_secs() as i64));
                Ok(Claim::Acquired)
            }
        }
    }

    async fn complete(&self, key: &str) -> Result<(), IdempotencyError> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.into(), (true, 0));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), IdempotencyError> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const LEASE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn work_runs_once_per_key() {
        let store = MemoryIdempotency::default();
        let runs = AtomicU32::new(0);
        for _ in 0..3 {
            once(&store, "k", LEASE, || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(())
            })
            .await
            .unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failed_work_is_retried() {
        let store = MemoryIdempotency::default();
        let failed = once(&store, "k", LEASE, || async { Err::<(), _>("boom") }).await;
        assert!(matches!(failed, Err(OnceError::Work("boom"))));
        assert!(
            once(&store, "k", LEASE, || async { Ok::<_, String>(()) })
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_live_claim_blocks_and_an_expired_one_is_taken_over() {
        let store = MemoryIdempotency::default();
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
        assert!(matches!(
            store.claim("k", LEASE).await,
            Err(IdempotencyError::InProgress(_))
        ));
        store.records.lock().unwrap().insert("k".into(), (false, 0));
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
    }
}
