//! Idempotent consumers: a conditional write on the event id decides who handles an event.
//!
//! A record goes `in_progress` (with a lease and the claimer's token) before the work and
//! `done` (with a TTL) after it. A redelivered event that is `done` is skipped; one still
//! `in_progress` under a live lease is failed back to the queue (another instance is on it);
//! one whose lease expired (its handler crashed) is taken over. If the work fails, the claim
//! is deleted so the retry runs it again. Completing and releasing are conditional on the
//! token, so a claimer that lost its lease cannot finish or drop someone else's claim.
//! Records live in the consuming service's own table, keyed `pk = "idem#{scope}#{event_id}"`,
//! `sk = "idem"`, and expire through the table's TTL attribute `expires_at`.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;

/// How long a finished record is kept: longer than SQS can redeliver (14 days maximum).
pub const DONE_TTL: Duration = Duration::from_secs(15 * 24 * 3600);

/// Proof of a claim: only its holder completes or releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    fn new() -> Self {
        Self(ulid::Ulid::generate().to_string())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours to handle.
    Acquired(Token),
    /// Handled before: skip it.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("event {0} is being handled by another invocation")]
    InProgress(String),
    #[error("the claim on {0} was taken over by another invocation")]
    Lost(String),
    #[error("idempotency store: {0}")]
    Store(String),
}

/// Where claims are kept: [`DynamoIdempotency`] on AWS, [`MemoryIdempotency`] in unit tests.
pub trait IdempotencyStore {
    /// Claims `key` for `lease` (at least the function's timeout).
    fn claim(&self, key: &str, lease: Duration) -> impl Future<Output = Result<Claim, IdempotencyError>> + Send;
    fn complete(&self, key: &str, token: &Token) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
    fn release(&self, key: &str, token: &Token) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
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
/// The claim lasts `lease`, or less in a queue consumer: no longer than its invocation (plus
/// a second), since a claim that outlives a failed attempt only blocks the retries.
pub async fn once<S, F, Fut, E>(store: &S, key: &str, lease: Duration, work: F) -> Result<bool, OnceError<E>>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let lease = crate::batch::invocation_time_left().map_or(lease, |left| lease.min(left + Duration::from_secs(1)));
    let token = match store.claim(key, lease).await? {
        Claim::Acquired(token) => token,
        Claim::AlreadyDone => {
            tracing::info!(key, "duplicate delivery skipped");
            return Ok(false);
        }
    };
    match work().await {
        Ok(()) => {
            // The work is done: try hard to record it, or a redelivery would do it again.
            let backoff =
                ExponentialBuilder::default().with_min_delay(Duration::from_millis(50)).with_max_times(3).with_jitter();
            (|| store.complete(key, &token)).retry(backoff).when(|e| matches!(e, IdempotencyError::Store(_))).await?;
            Ok(true)
        }
        Err(error) => {
            // Best effort: if the release fails too, the lease expires and a retry takes over.
            if let Err(release) = store.release(key, &token).await {
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
        Self { client, table: table.into() }
    }

    fn item_key(key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.to_owned())),
            ("sk".to_owned(), AttributeValue::S("idem".to_owned())),
        ])
    }
}

fn store_error<E: std::error::Error + Send + Sync + 'static>(
    error: aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> IdempotencyError {
    IdempotencyError::Store(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

/// `Lost` when a token condition failed, a store error otherwise.
fn token_error<E>(
    key: &str,
    error: aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    lost: impl Fn(&E) -> bool,
) -> IdempotencyError
where
    E: std::error::Error + Send + Sync + 'static,
{
    if error.as_service_error().is_some_and(lost) { IdempotencyError::Lost(key.to_owned()) } else { store_error(error) }
}

impl IdempotencyStore for DynamoIdempotency {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, IdempotencyError> {
        let now = Utc::now().timestamp();
        let token = Token::new();
        let mut item = Self::item_key(key);
        item.insert("status".into(), AttributeValue::S("in_progress".into()));
        item.insert("token".into(), AttributeValue::S(token.0.clone()));
        item.insert("lease_until".into(), AttributeValue::N((now + lease.as_secs() as i64).to_string()));
        item.insert("expires_at".into(), AttributeValue::N((now + DONE_TTL.as_secs() as i64).to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (#s = :in_progress AND lease_until < :now)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S("in_progress".into()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Acquired(token)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                let existing = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::item_key(key)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(store_error)?;
                let status = existing.item().and_then(|item| item.get("status")).and_then(|s| s.as_s().ok());
                match status.map(String::as_str) {
                    Some("done") => Ok(Claim::AlreadyDone),
                    _ => Err(IdempotencyError::InProgress(key.into())),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn complete(&self, key: &str, token: &Token) -> Result<(), IdempotencyError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(key)))
            .update_expression("SET #s = :done REMOVE lease_until")
            .condition_expression("#t = :token")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":done", AttributeValue::S("done".into()))
            .expression_attribute_values(":token", AttributeValue::S(token.0.clone()))
            .send()
            .await
            .map_err(|e| token_error(key, e, |e| e.is_conditional_check_failed_exception()))?;
        Ok(())
    }

    async fn release(&self, key: &str, token: &Token) -> Result<(), IdempotencyError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(key)))
            .condition_expression("#t = :token")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":token", AttributeValue::S(token.0.clone()))
            .send()
            .await
            .map_err(|e| token_error(key, e, |e| e.is_conditional_check_failed_exception()))?;
        Ok(())
    }
}

/// In-memory claims with the same rules, for unit tests of consumers.
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    /// key -> (done, lease_until as unix seconds, token)
    records: Mutex<HashMap<String, (bool, i64, Token)>>,
}

impl MemoryIdempotency {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, (bool, i64, Token)>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl IdempotencyStore for MemoryIdempotency {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, IdempotencyError> {
        let now = Utc::now().timestamp();
        let mut records = self.records();
        match records.get(key) {
            Some((true, _, _)) => Ok(Claim::AlreadyDone),
            Some((false, lease_until, _)) if *lease_until >= now => Err(IdempotencyError::InProgress(key.into())),
            _ => {
                let token = Token::new();
                records.insert(key.into(), (false, now + lease.as_secs() as i64, token.clone()));
                Ok(Claim::Acquired(token))
            }
        }
    }

    async fn complete(&self, key: &str, token: &Token) -> Result<(), IdempotencyError> {
        match self.records().get_mut(key) {
            Some(record) if &record.2 == token => {
                record.0 = true;
                Ok(())
            }
            _ => Err(IdempotencyError::Lost(key.into())),
        }
    }

    async fn release(&self, key: &str, token: &Token) -> Result<(), IdempotencyError> {
        let mut records = self.records();
        match records.get(key) {
            Some(record) if &record.2 == token => {
                records.remove(key);
                Ok(())
            }
            _ => Err(IdempotencyError::Lost(key.into())),
        }
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
        assert!(once(&store, "k", LEASE, || async { Ok::<_, String>(()) }).await.unwrap());
    }

    #[tokio::test]
    async fn a_live_claim_blocks_an_expired_one_is_taken_over_and_the_loser_cannot_finish() {
        let store = MemoryIdempotency::default();
        let Claim::Acquired(first) = store.claim("k", LEASE).await.unwrap() else { panic!("not acquired") };
        assert!(matches!(store.claim("k", LEASE).await, Err(IdempotencyError::InProgress(_))));
        store.records().get_mut("k").unwrap().1 = 0;
        let Claim::Acquired(second) = store.claim("k", LEASE).await.unwrap() else { panic!("not taken over") };
        assert!(matches!(store.complete("k", &first).await, Err(IdempotencyError::Lost(_))));
        assert!(matches!(store.release("k", &first).await, Err(IdempotencyError::Lost(_))));
        store.complete("k", &second).await.unwrap();
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::AlreadyDone);
    }
}
