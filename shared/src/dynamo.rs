//! The DynamoDB plumbing every service's store repeats: `pk`/`sk` keys, items from serde
//! values (serde_dynamo), typed consistent reads, writes and deletes, readable errors.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pagination::{Page, PageRequest, encode_cursor};

pub type Item = HashMap<String, AttributeValue>;

/// A DynamoDB call or (de)serialisation that failed; stores turn it into their own error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DynamoError(pub String);

/// Why [`Table::page`] gave no page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The cursor is no key a page of this partition ends at: edited, or another list's or
    /// another user's. The client's mistake (a 400, `pagination::bad_cursor`); it never
    /// reaches DynamoDB, which would refuse it as a `ValidationException`.
    #[error("the cursor was not given out for this list")]
    ForeignCursor,
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
}

/// The error's whole chain as text (SDK errors hide their cause in `Display`).
pub fn error(e: impl std::error::Error + Send + Sync + 'static) -> DynamoError {
    DynamoError(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

/// Whether DynamoDB could hold an item at `key`: it refuses a partition key over 2048 bytes
/// or a sort key over 1024 with a ValidationException, so no item is there. Reads check it,
/// and so must a conditional write on an item that must exist: an over-long id (from a path,
/// say) is then not found, rather than a 5xx.
pub fn storable(key: &Item) -> bool {
    let size = |name: &str| key.get(name).and_then(|v| v.as_s().ok()).map_or(0, String::len);
    size("pk") <= 2048 && size("sk") <= 1024
}

/// The key of an item in a `pk`/`sk` table.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk.into())), ("sk".to_owned(), AttributeValue::S(sk.into()))])
}

/// `value`'s fields under `key`.
pub fn item(key: Item, value: &impl Serialize) -> Result<Item, DynamoError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(error)?;
    item.extend(key);
    Ok(item)
}

/// One partition to list: of the table, or of `index`, with its key `attribute = value`
/// and sort key `sort_attribute`; `sort_prefix` keeps only items whose `sk` starts with it.
pub struct Partition<'a> {
    pub index: Option<&'a str>,
    pub attribute: &'a str,
    pub value: String,
    pub sort_attribute: &'a str,
    pub sort_prefix: Option<&'a str>,
}

impl Partition<'_> {
    /// Whether `start` can be where a page of this partition ended: exactly the table's key
    /// and the index's, all strings, in this partition and under `sort_prefix`.
    fn holds(&self, start: &Item) -> bool {
        let text = |name: &str| start.get(name).and_then(|v| v.as_s().ok());
        let keys = std::collections::BTreeSet::from(["pk", "sk", self.attribute, self.sort_attribute]);
        keys.len() == start.len()
            && keys.iter().all(|key| text(key).is_some())
            && text(self.attribute) == Some(&self.value)
            && self.sort_prefix.is_none_or(|prefix| text("sk").is_some_and(|sk| sk.starts_with(prefix)))
    }
}

/// The attribute [`Table::put_versioned`] counts writes in.
const VERSION: &str = "item_version";

/// A service's table.
#[derive(Debug, Clone)]
pub struct Table {
    pub client: Client,
    pub name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self { client, name: name.into() }
    }

    /// The table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(Client::new(sdk), crate::config::required("TABLE_NAME")?))
    }

    /// The item at `key` as `T` (a consistent read).
    pub async fn get<T: DeserializeOwned>(&self, key: Item) -> Result<Option<T>, DynamoError> {
        self.get_item(key).await?.map(|item| serde_dynamo::from_item(item).map_err(error)).transpose()
    }

    /// The item at `key` as `T` and its version, to write it back with [`Table::put_versioned`].
    pub async fn get_versioned<T: DeserializeOwned>(&self, key: Item) -> Result<Option<(T, u64)>, DynamoError> {
        let Some(item) = self.get_item(key).await? else { return Ok(None) };
        let version = item.get(VERSION).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok(Some((serde_dynamo::from_item(item).map_err(error)?, version)))
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, DynamoError> {
        if !storable(&key) {
            return Ok(None);
        }
        let found = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(error)?;
        Ok(found.item)
    }

    /// Writes `value` at `key` if the item there is still at `version`, as
    /// [`Table::get_versioned`] read it (0: no item, or one written without a version); false
    /// if another write came first. A read-modify-write then loses no concurrent change.
    pub async fn put_versioned(&self, key: Item, value: &impl Serialize, version: u64) -> Result<bool, DynamoError> {
        let mut item = item(key, value)?;
        item.insert(VERSION.to_owned(), AttributeValue::N((version + 1).to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .expression_attribute_names("#v", VERSION);
        let put = match version {
            0 => put.condition_expression("attribute_not_exists(#v)"),
            _ => put
                .condition_expression("#v = :v")
                .expression_attribute_values(":v", AttributeValue::N(version.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(error(e)),
        }
    }

    /// The items at `keys` that exist (consistent reads), in any order: one BatchGetItem per
    /// 100 keys; keys DynamoDB leaves unprocessed (throttling) are asked for again a few times,
    /// after a jittered, growing pause (as AWS advises: asking at once meets the same limit).
    pub async fn get_many(&self, keys: Vec<Item>) -> Result<Vec<Item>, DynamoError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        use backon::{BackoffBuilder, ExponentialBuilder};
        let keys: Vec<Item> = keys.into_iter().filter(storable).collect();
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let batch = KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())).consistent_read(true).build();
            let mut request = Some(batch.map_err(error)?);
            let mut pauses = ExponentialBuilder::default()
                .with_min_delay(std::time::Duration::from_millis(20))
                .with_max_delay(std::time::Duration::from_millis(200))
                .with_max_times(4)
                .with_jitter()
                .build();
            for attempt in 0..5 {
                let Some(keys) = request.take() else { break };
                if attempt > 0
                    && let Some(pause) = pauses.next()
                {
                    tokio::time::sleep(pause).await;
                }
                let answer =
                    self.client.batch_get_item().request_items(&self.name, keys).send().await.map_err(error)?;
                found.extend(answer.responses().and_then(|r| r.get(&self.name)).into_iter().flatten().cloned());
                request = answer.unprocessed_keys().and_then(|u| u.get(&self.name)).cloned();
            }
            if request.is_some() {
                return Err(DynamoError(format!("{}: reads still throttled after retries", self.name)));
            }
        }
        Ok(found)
    }

    /// Writes `value` at `key`, unconditionally.
    pub async fn put(&self, key: Item, value: &impl Serialize) -> Result<(), DynamoError> {
        self.client.put_item().table_name(&self.name).set_item(Some(item(key, value)?)).send().await.map_err(error)?;
        Ok(())
    }

    /// Writes `value` at `key` unless an item is there already; false if one was.
    pub async fn put_new(&self, key: Item, value: &impl Serialize) -> Result<bool, DynamoError> {
        let put = self.client.put_item().table_name(&self.name).set_item(Some(item(key, value)?));
        match put.condition_expression("attribute_not_exists(pk)").send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(error(e)),
        }
    }

    pub async fn delete(&self, key: Item) -> Result<(), DynamoError> {
        self.client.delete_item().table_name(&self.name).set_key(Some(key)).send().await.map_err(error)?;
        Ok(())
    }

    /// One page of a partition, newest (greatest sort key) first, as API lists answer.
    pub async fn page<T: DeserializeOwned>(
        &self,
        partition: Partition<'_>,
        page: &PageRequest,
    ) -> Result<Page<T>, PageError> {
        if page.start.as_ref().is_some_and(|start| !partition.holds(start)) {
            return Err(PageError::ForeignCursor);
        }
        // A partition key longer than DynamoDB takes (see `storable`) holds nothing.
        if partition.value.len() > 2048 {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let condition =
            if partition.sort_prefix.is_some() { "#p = :p AND begins_with(sk, :prefix)" } else { "#p = :p" };
        let mut query = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(partition.index.map(str::to_owned))
            .key_condition_expression(condition)
            .expression_attribute_names("#p", partition.attribute)
            .expression_attribute_values(":p", AttributeValue::S(partition.value));
        if let Some(prefix) = partition.sort_prefix {
            query = query.expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()));
        }
        let found = query
            .scan_index_forward(false)
            .limit(page.limit)
            .set_exclusive_start_key(page.start.clone())
            .send()
            .await
            .map_err(error)?;
        let items = found
            .items()
            .iter()
            .map(|item| serde_dynamo::from_item(item.clone()).map_err(error))
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next_cursor: found.last_evaluated_key().map(encode_cursor) })
    }

    /// Runs one transaction. `false` only if a condition failed (`ConditionalCheckFailed`:
    /// someone else moved the state). Contention (`TransactionConflict`, throttling, another
    /// transaction in progress) wrote nothing, so it is tried again a few times, then an error.
    pub async fn transact(&self, items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>) -> Result<bool, DynamoError> {
        use backon::{ExponentialBuilder, Retryable};
        let attempt = || async {
            match self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
                Ok(_) => Ok(true),
                Err(e) => match transact_failure(&e) {
                    TransactFailure::Cancelled { why: Cancelled::ConditionFailed, .. } => Ok(false),
                    failure => Err((failure, error(e))),
                },
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(20))
            .with_max_delay(std::time::Duration::from_millis(200))
            .with_max_times(TRANSACT_TRIES - 1)
            .with_jitter();
        attempt.retry(backoff).when(|(failure, _)| failure.is_transient()).await.map_err(|(_, e)| e)
    }
}

/// Tries of a transaction that meets contention ([`Table::transact`]).
const TRANSACT_TRIES: usize = 4;

/// Why DynamoDB cancelled a transaction ([`cancellation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// A condition failed: someone else moved the state.
    ConditionFailed,
    /// Contention or throttling only: nothing was written, and trying again may go through.
    Contention,
    /// Anything else (`ValidationError`, an item collection too large): trying again will not help.
    Refused,
}

/// Per-item cancellation codes that mean "busy", not "wrong".
const CONTENTION: [&str; 4] =
    ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];

/// What a cancellation's reasons (one per item, in order; `None` or `"None"` for an item that
/// was fine) mean. One `ConditionalCheckFailed` is enough: that item's state moved.
pub fn cancellation(reasons: &[Option<&str>]) -> Cancelled {
    let codes = || reasons.iter().flatten().copied().filter(|code| *code != "None");
    if codes().any(|code| code == "ConditionalCheckFailed") {
        Cancelled::ConditionFailed
    } else if codes().all(|code| CONTENTION.contains(&code)) {
        Cancelled::Contention
    } else {
        Cancelled::Refused
    }
}

/// A failed TransactWriteItems, classified ([`transact_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactFailure {
    /// Cancelled: `why`, and each item's code in order (`"None"` for the items that were fine).
    Cancelled { why: Cancelled, codes: Vec<String> },
    /// Not run: throttled, or another transaction on the same items is in progress.
    Busy,
    /// Anything else, including ambiguous failures (a timeout may have written).
    Other,
}

impl TransactFailure {
    /// Whether the same transaction may be sent again: it wrote nothing and may go through.
    pub fn is_transient(&self) -> bool {
        matches!(self, TransactFailure::Busy | TransactFailure::Cancelled { why: Cancelled::Contention, .. })
    }
}

/// What a TransactWriteItems error means: for stores that send their own transactions.
pub fn transact_failure<R>(
    error: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> TransactFailure {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match error.as_service_error() {
        Some(E::TransactionCanceledException(cancelled)) => {
            let reasons: Vec<Option<&str>> = cancelled.cancellation_reasons().iter().map(|r| r.code()).collect();
            TransactFailure::Cancelled {
                why: cancellation(&reasons),
                codes: reasons.iter().map(|code| code.unwrap_or("None").to_owned()).collect(),
            }
        }
        Some(
            E::TransactionInProgressException(_)
            | E::ThrottlingException(_)
            | E::ProvisionedThroughputExceededException(_)
            | E::RequestLimitExceeded(_),
        ) => TransactFailure::Busy,
        _ => TransactFailure::Other,
    }
}

/// A DynamoDB client for unit tests, whose every call `answer(operation, request)` answers
/// with (status, body), e.g. `("GetItem", {"Key": ...})`.
#[cfg(test)]
pub(crate) async fn fake(
    answer: impl Fn(&str, serde_json::Value) -> (u16, String) + Clone + Send + Sync + 'static,
) -> Client {
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
        let (status, body) = answer(&operation, serde_json::from_str(&body).unwrap_or_default());
        async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn cursor(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned()))).collect()
    }

    #[test]
    fn a_cursor_holds_only_for_the_partition_and_keys_that_made_it() {
        let orders = Partition {
            index: Some("ByUser"),
            attribute: "gsi1pk",
            value: "USER#u1".into(),
            sort_attribute: "gsi1sk",
            sort_prefix: None,
        };
        let mine = [("pk", "ORDER#o1"), ("sk", "ORDER"), ("gsi1pk", "USER#u1"), ("gsi1sk", "o1")];
        assert!(orders.holds(&cursor(&mine)));
        let theirs = [("pk", "ORDER#o2"), ("sk", "ORDER"), ("gsi1pk", "USER#u2"), ("gsi1sk", "o2")];
        assert!(!orders.holds(&cursor(&theirs)), "another user's partition");
        assert!(!orders.holds(&cursor(&mine[..3])), "the index's sort key is missing");
        assert!(!orders.holds(&cursor(&[mine.as_slice(), &[("x", "y")]].concat())), "a key too many");
        let mut number = cursor(&mine);
        number.insert("sk".into(), AttributeValue::N("1".into()));
        assert!(!orders.holds(&number), "keys are strings");

        let notifications = Partition {
            index: None,
            attribute: "pk",
            value: "USER#u1".into(),
            sort_attribute: "sk",
            sort_prefix: Some("N#"),
        };
        assert!(notifications.holds(&cursor(&[("pk", "USER#u1"), ("sk", "N#1")])));
        assert!(!notifications.holds(&cursor(&[("pk", "USER#u1"), ("sk", "CONTACT")])), "outside the prefix");
        assert!(!notifications.holds(&cursor(&[("pk", "USER#u1")])));
    }

    /// A DynamoDB that answers `TransactWriteItems` with `answers` in turn (a 400 with that
    /// error body, or `None` for success), then succeeds; and how often it was called.
    async fn dynamodb(answers: Vec<Option<&'static str>>) -> (Table, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let client = fake(move |operation, _| {
            assert_eq!(operation, "TransactWriteItems");
            match answers.get(counter.fetch_add(1, Ordering::SeqCst)).copied().flatten() {
                Some(body) => (400, body.to_owned()),
                None => (200, "{}".to_owned()),
            }
        })
        .await;
        (Table::new(client, "t"), calls)
    }

    const CONFLICT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"cancelled","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"conflict"}]}"#;
    const CONDITION: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"cancelled","CancellationReasons":[{"Code":"TransactionConflict"},{"Code":"ConditionalCheckFailed","Message":"failed"}]}"#;
    const IN_PROGRESS: &str =
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionInProgressException","message":"in progress"}"#;

    fn write() -> Vec<aws_sdk_dynamodb::types::TransactWriteItem> {
        let put = aws_sdk_dynamodb::types::Put::builder().table_name("t").set_item(Some(key("a", "b"))).build();
        vec![aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put.unwrap()).build()]
    }

    #[test]
    fn only_a_failed_condition_is_someone_elses_change() {
        let cases: [(&[Option<&str>], Cancelled); 7] = [
            (&[Some("None"), Some("ConditionalCheckFailed")], Cancelled::ConditionFailed),
            (&[Some("TransactionConflict"), Some("ConditionalCheckFailed")], Cancelled::ConditionFailed),
            (&[Some("None"), Some("TransactionConflict")], Cancelled::Contention),
            (&[Some("ThrottlingError"), None], Cancelled::Contention),
            (&[None, Some("None")], Cancelled::Contention),
            (&[], Cancelled::Contention),
            (&[Some("None"), Some("ValidationError")], Cancelled::Refused),
        ];
        for (reasons, expected) in cases {
            assert_eq!(cancellation(reasons), expected, "{reasons:?}");
        }
    }

    #[tokio::test]
    async fn only_a_failed_condition_makes_a_transaction_false_and_contention_is_retried() {
        let (table, calls) = dynamodb(vec![Some(CONDITION)]).await;
        assert!(!table.transact(write()).await.unwrap(), "someone else moved the state");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a failed condition is not retried");

        let (table, calls) = dynamodb(vec![Some(CONFLICT), Some(IN_PROGRESS)]).await;
        assert!(table.transact(write()).await.unwrap(), "went through on the third try");
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let (table, calls) = dynamodb(vec![Some(CONFLICT); 10]).await;
        let error = table.transact(write()).await.expect_err("contention that lasts is an error, not false");
        assert!(error.to_string().contains("TransactionConflict"), "{error}");
        assert_eq!(calls.load(Ordering::SeqCst), 4, "four tries");
    }

    #[tokio::test]
    async fn a_versioned_put_writes_only_over_the_version_it_read() {
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let client = fake(move |_, request| {
            let stale = request["ExpressionAttributeValues"][":v"]["N"] == "1";
            seen.lock().unwrap().push(request);
            match stale {
                true => {
                    (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#.into())
                }
                false => (200, "{}".into()),
            }
        })
        .await;
        let table = Table::new(client, "t");
        let value = serde_json::json!({"name": "Ada"});
        assert!(table.put_versioned(key("U", "P"), &value, 0).await.unwrap());
        assert!(!table.put_versioned(key("U", "P"), &value, 1).await.unwrap(), "written since");
        let requests = requests.lock().unwrap();
        assert_eq!(requests[0]["ConditionExpression"], "attribute_not_exists(#v)");
        assert_eq!(requests[0]["Item"]["item_version"]["N"], "1");
        assert_eq!(requests[1]["ConditionExpression"], "#v = :v");
        assert_eq!(requests[1]["Item"]["item_version"]["N"], "2");
    }

    #[test]
    fn keys_longer_than_dynamodb_takes_hold_nothing() {
        assert!(storable(&key("x".repeat(2048), "y".repeat(1024))));
        assert!(!storable(&key("x".repeat(2049), "SK")));
        assert!(!storable(&key("PK", "y".repeat(1025))));
    }
}
