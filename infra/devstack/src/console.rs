//! The console of the local stack (`/__devstack/`, page web/console.html): what each function
//! did (invocations, cold starts, errors, its last log lines), each queue's depth and age, a
//! DLQ's messages and their redrive (SQS's `StartMessageMoveTask`, as `make redrive` does),
//! and one request as a waterfall across the functions, AWS calls and queues it crossed.
//!
//! Recorded in memory as the stack runs, bounded: spans are linked by their X-Ray trace id
//! (the gateway, Lambda and the SDK pass it on) and by the correlation id the gateway's answer
//! and every event carry, which joins a queue's consumer to the request that caused it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;
use serde_json::{Value, json};

/// Spans kept (the oldest go first): a few hundred checkouts' worth.
const MAX_SPANS: usize = 20_000;
/// Log lines kept per function.
const MAX_LOG_LINES: usize = 50;

/// One step of a request: `kind` is `request` (the gateway), `invocation` (a function),
/// `aws` (a call a function made) or `queue` (a message's wait from sending to delivery).
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    pub trace_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub correlation_ids: Vec<String>,
    pub kind: &'static str,
    /// `POST /checkout`, `CheckoutFunction`, `dynamodb.TransactWriteItems`, a queue's name.
    pub name: String,
    /// The function that made an AWS call; the table, topic or queue it was about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub start_ms: f64,
    pub duration_ms: f64,
    /// A cold start's init, within the invocation's duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<f64>,
    /// An HTTP status, `ok`, or what went wrong.
    pub outcome: String,
}

/// What one function has done so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionStats {
    pub invocations: u64,
    pub cold_starts: u64,
    pub errors: u64,
    pub last_init_ms: Option<f64>,
    pub last_invoked_ms: Option<f64>,
    pub logs: VecDeque<String>,
}

/// A queue of the stack, as the console lists it.
#[derive(Debug, Clone)]
pub struct QueueRef {
    pub logical_id: String,
    pub url: String,
}

#[derive(Default)]
struct State {
    functions: BTreeMap<String, FunctionStats>,
    spans: VecDeque<Span>,
}

#[derive(Default)]
pub struct Console {
    state: Mutex<State>,
    /// The emulator and the stack's queues, once provisioned.
    queues: OnceLock<(aws_sdk_sqs::Client, Vec<QueueRef>)>,
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1e3
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

impl Console {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, span: Span) {
        let mut state = self.state();
        if state.spans.len() == MAX_SPANS {
            state.spans.pop_front();
        }
        state.spans.push_back(span);
    }

    /// One invocation of `function` that started at `start_ms` in `trace_id`, for the requests
    /// `correlation_ids` (a queue batch's; none for a request's, whose trace names it).
    pub fn invoked(
        &self,
        function: &str,
        (trace_id, correlation_ids): (&str, Vec<String>),
        start_ms: f64,
        init: Option<Duration>,
        outcome: Result<(), String>,
    ) {
        let duration_ms = now_ms() - start_ms;
        {
            let mut state = self.state();
            let stats = state.functions.entry(function.to_owned()).or_default();
            stats.invocations += 1;
            stats.cold_starts += u64::from(init.is_some());
            stats.errors += u64::from(outcome.is_err());
            stats.last_init_ms = init.map(ms).or(stats.last_init_ms);
            stats.last_invoked_ms = Some(start_ms);
        }
        self.record(Span {
            trace_id: trace_id.to_owned(),
            correlation_ids,
            kind: "invocation",
            name: function.to_owned(),
            caller: None,
            target: None,
            start_ms,
            duration_ms,
            init_ms: init.map(ms),
            outcome: outcome.map_or_else(|e| e, |()| "ok".to_owned()),
        });
    }

    /// A line `function` wrote (stdout or stderr).
    pub fn log(&self, function: &str, line: &str) {
        let mut state = self.state();
        let logs = &mut state.functions.entry(function.to_owned()).or_default().logs;
        if logs.len() == MAX_LOG_LINES {
            logs.pop_front();
        }
        logs.push_back(line.to_owned());
    }

    pub fn function_stats(&self, function: &str) -> FunctionStats {
        self.state().functions.get(function).cloned().unwrap_or_default()
    }

    /// The latest requests through the gateway, newest first.
    pub fn requests(&self, limit: usize) -> Vec<Span> {
        self.state().spans.iter().rev().filter(|s| s.kind == "request").take(limit).cloned().collect()
    }

    /// Every span of the request `correlation_id`, in order of start: the requests, queue
    /// waits and consumer invocations that carry it; every invocation and AWS call in the
    /// trace of such a request; and the AWS calls a consumer made during its invocation. A
    /// consumer's trace is its message's sender's, which may be shared (an outbox relay's run
    /// publishes many requests' events), so within it only the consumer's own calls count.
    pub fn trace(&self, correlation_id: &str) -> Vec<Span> {
        let state = self.state();
        let carries = |s: &Span| s.correlation_ids.iter().any(|c| c == correlation_id);
        let requests: HashSet<&str> =
            state.spans.iter().filter(|s| s.kind == "request" && carries(s)).map(|s| s.trace_id.as_str()).collect();
        let consumers: Vec<&Span> = state.spans.iter().filter(|s| s.kind == "invocation" && carries(s)).collect();
        let during = |call: &Span| {
            consumers.iter().any(|c| {
                c.trace_id == call.trace_id
                    && call.caller.as_deref() == Some(c.name.as_str())
                    && (c.start_ms..=c.start_ms + c.duration_ms).contains(&call.start_ms)
            })
        };
        let mut spans: Vec<Span> = state
            .spans
            .iter()
            .filter(|s| match s.kind {
                "request" | "queue" => carries(s),
                "invocation" => carries(s) || (s.correlation_ids.is_empty() && requests.contains(s.trace_id.as_str())),
                _ => requests.contains(s.trace_id.as_str()) || during(s),
            })
            .cloned()
            .collect();
        spans.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        spans
    }

    /// The latest wait a poller saw on `queue` (a message's age when it was delivered).
    fn last_wait_ms(&self, queue: &str) -> Option<f64> {
        self.state().spans.iter().rev().find(|s| s.kind == "queue" && s.name == queue).map(|s| s.duration_ms)
    }

    pub fn attach_queues(&self, sqs: aws_sdk_sqs::Client, queues: Vec<QueueRef>) {
        let _ = self.queues.set((sqs, queues));
    }

    fn queue(&self, logical_id: &str) -> Result<(&aws_sdk_sqs::Client, &QueueRef), ConsoleError> {
        let (sqs, queues) = self.queues.get().ok_or(ConsoleError::NotFound("no queues yet".into()))?;
        let queue = queues
            .iter()
            .find(|q| q.logical_id == logical_id)
            .ok_or_else(|| ConsoleError::NotFound(format!("no queue {logical_id}")))?;
        Ok((sqs, queue))
    }

    /// Every queue with its depth; a DLQ (the target of another's redrive policy, or named
    /// `-dlq`) also with the age of its oldest message, a source queue with its last wait.
    pub async fn queues(&self) -> Result<Value> {
        let Some((sqs, queues)) = self.queues.get() else { return Ok(json!([])) };
        let mut attributes = BTreeMap::new();
        for queue in queues {
            attributes
                .insert(queue.logical_id.as_str(), queue_attributes(sqs, &queue.url, QueueAttributeName::All).await?);
        }
        let number = |id: &str, name: QueueAttributeName| {
            attributes[id].get(&name).and_then(|v| v.parse::<u64>().ok()).unwrap_or_default()
        };
        // Each DLQ's ARN -> the queues whose redrive policy names it.
        let mut sources_of: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (id, found) in &attributes {
            let policy =
                found.get(&QueueAttributeName::RedrivePolicy).and_then(|p| serde_json::from_str::<Value>(p).ok());
            if let Some(target) = policy.as_ref().and_then(|p| p["deadLetterTargetArn"].as_str()) {
                sources_of.entry(target.to_owned()).or_default().push(id);
            }
        }
        let mut listed = Vec::new();
        for queue in queues {
            let name = queue_name(&queue.url).to_owned();
            let arn = attributes[queue.logical_id.as_str()].get(&QueueAttributeName::QueueArn);
            let sources = arn.and_then(|arn| sources_of.get(arn)).cloned().unwrap_or_default();
            // Only a queue without a redrive policy of its own is read: a receive from one with
            // a policy would count towards its maxReceiveCount.
            let own_policy = attributes[queue.logical_id.as_str()].contains_key(&QueueAttributeName::RedrivePolicy);
            let is_dlq = !own_policy && (!sources.is_empty() || name.ends_with("-dlq"));
            let oldest_age_ms = if is_dlq {
                peek(sqs, &queue.url)
                    .await?
                    .iter()
                    .filter_map(|m| m["sent_ms"].as_f64())
                    .reduce(f64::min)
                    .map(|t| now_ms() - t)
            } else {
                None
            };
            listed.push(json!({
                "logical_id": queue.logical_id,
                "name": name,
                "dlq": is_dlq,
                "redrive_to": sources,
                "visible": number(&queue.logical_id, QueueAttributeName::ApproximateNumberOfMessages),
                "in_flight": number(&queue.logical_id, QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                "delayed": number(&queue.logical_id, QueueAttributeName::ApproximateNumberOfMessagesDelayed),
                "oldest_age_ms": oldest_age_ms,
                "last_wait_ms": self.last_wait_ms(&name),
            }));
        }
        Ok(Value::Array(listed))
    }

    /// Up to 10 messages of a DLQ (a queue without a redrive policy), left where they are.
    pub async fn messages(&self, logical_id: &str) -> Result<Value, ConsoleError> {
        let (sqs, queue) = self.queue(logical_id)?;
        let policy = queue_attributes(sqs, &queue.url, QueueAttributeName::RedrivePolicy).await?;
        if policy.contains_key(&QueueAttributeName::RedrivePolicy) {
            return Err(ConsoleError::Refused(format!(
                "{logical_id} is a consumer's queue: reading it would count towards its maxReceiveCount (read its DLQ)"
            )));
        }
        Ok(Value::Array(peek(sqs, &queue.url).await?))
    }

    /// Moves a DLQ's messages back to the queue they failed from.
    pub async fn redrive(&self, logical_id: &str) -> Result<String, ConsoleError> {
        let (sqs, queue) = self.queue(logical_id)?;
        let arn = queue_arn(sqs, &queue.url).await?;
        redrive(sqs, &arn).await
    }
}

/// Why a console command failed: the caller's mistake (4xx) or the emulator's (502).
#[derive(Debug)]
pub enum ConsoleError {
    NotFound(String),
    Refused(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for ConsoleError {
    fn from(error: anyhow::Error) -> Self {
        Self::Failed(error)
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(message) | Self::Refused(message) => f.write_str(message),
            Self::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

/// Receives up to 10 messages with a visibility timeout of 0, so nothing is hidden from the
/// queue's consumer. (A receive counts towards `maxReceiveCount`: call it on DLQs, which have
/// no redrive policy of their own, or knowingly.)
async fn peek(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<Value>> {
    let answer = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(0)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .with_context(|| format!("reading {url}"))?;
    Ok(answer
        .messages()
        .iter()
        .map(|m| {
            let attribute = |name| m.attributes().and_then(|a| a.get(&name)).cloned();
            use aws_sdk_sqs::types::MessageSystemAttributeName as Name;
            json!({
                "message_id": m.message_id(),
                "body": m.body(),
                "sent_ms": attribute(Name::SentTimestamp).and_then(|t| t.parse::<f64>().ok()),
                "receive_count": attribute(Name::ApproximateReceiveCount).and_then(|t| t.parse::<u64>().ok()),
            })
        })
        .collect())
}

/// A queue's name: the last segment of its URL (what the console and the pollers call it).
pub fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The attributes `name` (or `All`) of the queue at `url`.
async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
) -> Result<std::collections::HashMap<QueueAttributeName, String>> {
    let answer = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name)
        .send()
        .await
        .with_context(|| format!("attributes of {url}"))?;
    Ok(answer.attributes.unwrap_or_default())
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    let mut attributes = queue_attributes(sqs, url, QueueAttributeName::QueueArn).await?;
    attributes.remove(&QueueAttributeName::QueueArn).ok_or_else(|| anyhow!("{url} has no ARN"))
}

/// SQS's own redrive: `StartMessageMoveTask` from the DLQ `dlq_arn` back to the queues whose
/// messages it holds (SQS keeps each message's source). Refused, and said why, for a queue no
/// redrive policy names (an SNS subscription's DLQ) or one with a move already running.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, dlq_arn: &str) -> Result<String, ConsoleError> {
    match sqs.start_message_move_task().source_arn(dlq_arn).send().await {
        Ok(task) => Ok(task.task_handle.unwrap_or_default()),
        Err(error) => {
            use aws_sdk_sqs::error::ProvideErrorMetadata;
            let service = error.as_service_error();
            // SQS's refusals of this request (not a DLQ, a move already running, no such queue)
            // are the caller's; anything else (throttling, a failure) is the emulator's.
            let refusal = ["InvalidParameterValue", "UnsupportedOperation", "ResourceNotFoundException"];
            match (service.and_then(|e| e.code()), service.and_then(|e| e.message())) {
                (Some(code), message) if refusal.iter().any(|r| code.ends_with(r)) => {
                    Err(ConsoleError::Refused(format!("{code}: {}", message.unwrap_or_default())))
                }
                _ => Err(ConsoleError::Failed(anyhow!(aws_sdk_sqs::error::DisplayErrorContext(error).to_string()))),
            }
        }
    }
}

/// `make redrive QUEUE=...`: the DLQ `name` (or `{stack_name}-{name}`) redriven, and how
/// many messages moved once the task is done.
pub async fn redrive_named(sqs: &aws_sdk_sqs::Client, stack_name: &str, name: &str) -> Result<String> {
    let mut url = None;
    for candidate in [name.to_owned(), format!("{stack_name}-{name}")] {
        if let Ok(found) = sqs.get_queue_url().queue_name(&candidate).send().await {
            url = found.queue_url;
            break;
        }
    }
    let url = url.ok_or_else(|| anyhow!("no queue {name} or {stack_name}-{name}"))?;
    let arn = queue_arn(sqs, &url).await?;
    // A second of slack for clocks: the task this call starts began after `asked`.
    let asked = now_ms() as i64 - 1000;
    let handle = redrive(sqs, &arn).await.map_err(|e| anyhow!("{e}"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = sqs.list_message_move_tasks().source_arn(&arn).send().await?;
        // The newest first. SQS drops the handle of a task that is no longer running, so a
        // finished one is ours if it started after we asked.
        let ours = tasks.results().first().filter(|t| match t.task_handle() {
            Some(h) => h == handle,
            None => t.started_timestamp() >= asked,
        });
        match ours {
            Some(task) if task.status() != Some("RUNNING") => {
                let moved = task.approximate_number_of_messages_moved();
                let said = format!("{url}: {moved} messages moved back, task {}", task.status().unwrap_or("unknown"));
                return match task.failure_reason() {
                    None if task.status() == Some("COMPLETED") => Ok(said),
                    reason => Err(anyhow!("{said}: {}", reason.unwrap_or("no reason given"))),
                };
            }
            // Running, or not listed yet.
            _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => bail!(
                "the move task {handle} of {url} is still not done after 60 s (see `aws sqs list-message-move-tasks`)"
            ),
        }
    }
}

/// The target of an AWS call, from its body: the table, queue or topic it names.
pub fn call_target(body: &[u8]) -> Option<String> {
    let last = |text: &str| text.rsplit([':', '/']).next().unwrap_or(text).to_owned();
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let named = ["TableName", "QueueUrl", "TopicArn", "SecretId", "Name"].iter().find_map(|f| json[*f].as_str());
        if let Some(name) = named {
            return Some(last(name));
        }
        // A transaction or a batch: the tables it touches.
        let mut tables: Vec<&str> = json["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object()?.values().find_map(|op| op["TableName"].as_str()))
            .chain(json["RequestItems"].as_object().into_iter().flat_map(|items| items.keys().map(String::as_str)))
            .collect();
        tables.sort_unstable();
        tables.dedup();
        return (!tables.is_empty()).then(|| tables.join(", "));
    }
    form_urlencoded::parse(body)
        .find(|(name, _)| ["TopicArn", "QueueUrl", "TargetArn"].contains(&name.as_ref()))
        .map(|(_, value)| last(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: &'static str, trace: &str, correlation: &[&str], start_ms: f64) -> Span {
        Span {
            trace_id: trace.into(),
            correlation_ids: correlation.iter().map(|c| c.to_string()).collect(),
            kind,
            name: kind.into(),
            caller: None,
            target: None,
            start_ms,
            duration_ms: 1.0,
            init_ms: None,
            outcome: "ok".into(),
        }
    }

    fn call(trace: &str, caller: &str, start_ms: f64) -> Span {
        Span { caller: Some(caller.into()), name: format!("call by {caller}"), ..span("aws", trace, &[], start_ms) }
    }

    fn consumer(name: &str, trace: &str, correlation: &[&str], start_ms: f64) -> Span {
        Span { name: name.into(), duration_ms: 10.0, ..span("invocation", trace, correlation, start_ms) }
    }

    #[test]
    fn a_trace_is_the_requests_own_trace_and_its_consumers_own_calls() {
        let console = Console::default();
        // Request c1: the gateway, its function and its call.
        console.record(span("request", "t1", &["c1"], 1.0));
        console.record(span("invocation", "t1", &[], 2.0));
        console.record(call("t1", "Checkout", 3.0));
        // Request c9, meanwhile.
        console.record(span("request", "t3", &["c9"], 2.5));
        console.record(span("invocation", "t3", &[], 2.6));
        // An outbox relay's run (trace t2) publishes both requests' events; its consumers
        // continue t2: one batch holds both messages, another only c9's.
        console.record(call("t2", "Relay", 3.5));
        console.record(span("queue", "t2", &["c1"], 4.0));
        console.record(span("queue", "t2", &["c9"], 4.5));
        console.record(consumer("Notify", "t2", &["c1", "c9"], 20.0));
        console.record(call("t2", "Notify", 25.0));
        console.record(consumer("Learn", "t2", &["c9"], 20.0));
        console.record(call("t2", "Learn", 25.0));
        console.record(call("t2", "Notify", 40.0));

        let trace = console.trace("c1");
        let seen: Vec<(&str, &str, f64)> = trace.iter().map(|s| (s.kind, s.name.as_str(), s.start_ms)).collect();
        assert_eq!(
            seen,
            [
                ("request", "request", 1.0),
                ("invocation", "invocation", 2.0),
                ("aws", "call by Checkout", 3.0),
                ("queue", "queue", 4.0),
                ("invocation", "Notify", 20.0),
                ("aws", "call by Notify", 25.0),
            ],
            "not the relay's calls, not c9's consumer, not Notify's call of a later invocation"
        );
        assert_eq!(console.trace("c9").iter().filter(|s| s.kind == "invocation").count(), 3);
        assert!(console.trace("nothing").is_empty());
        assert_eq!(console.requests(10).len(), 2);
    }

    #[test]
    fn stats_count_cold_starts_and_errors_and_keep_the_last_log_lines() {
        let console = Console::default();
        console.invoked("F", ("t", vec![]), now_ms(), Some(Duration::from_millis(3)), Ok(()));
        console.invoked("F", ("t", vec![]), now_ms(), None, Err("timed out".into()));
        for i in 0..(MAX_LOG_LINES + 5) {
            console.log("F", &format!("line {i}"));
        }
        let stats = console.function_stats("F");
        assert_eq!((stats.invocations, stats.cold_starts, stats.errors), (2, 1, 1));
        assert_eq!(stats.last_init_ms, Some(3.0));
        assert_eq!(stats.logs.len(), MAX_LOG_LINES);
        assert_eq!(stats.logs.back().map(String::as_str), Some("line 54"));
        assert_eq!(console.trace("x").len(), 0);
    }

    #[test]
    fn a_calls_target_is_the_table_topic_or_queue_it_names() {
        assert_eq!(call_target(br#"{"TableName":"s-order","Key":{}}"#).as_deref(), Some("s-order"));
        assert_eq!(
            call_target(b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A0%3As-order-events&Message=x")
                .as_deref(),
            Some("s-order-events")
        );
        assert_eq!(call_target(br#"{"QueueUrl":"http://h/000/s-q"}"#).as_deref(), Some("s-q"));
        assert_eq!(call_target(br#"{"TransactItems":[]}"#), None);
        let transaction = br#"{"TransactItems":[{"Put":{"TableName":"s-order"}},{"Update":{"TableName":"s-cart"}},{"Put":{"TableName":"s-order"}}]}"#;
        assert_eq!(call_target(transaction).as_deref(), Some("s-cart, s-order"));
        assert_eq!(call_target(br#"{"RequestItems":{"s-seller":{}}}"#).as_deref(), Some("s-seller"));
    }
}
