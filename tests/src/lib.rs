//! Helpers for the system tests: an SDK configuration for the emulator and a freshly
//! provisioned copy of template.yaml under a unique stack name, so tests never share state.

pub mod shop;
pub mod tokens;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use devstack::provision::{self, Options, Stack};
use devstack::template::Template;

/// The queues of docs/events.md, by logical id in template.yaml.
pub const QUEUES: [&str; 6] = [
    "NotificationQueue",
    "AiEventsQueue",
    "SellerUpdatesQueue",
    "PaymentSettlementQueue",
    "CartEventsQueue",
    "OrderUpdatesQueue",
];

/// SDK configuration for the emulator at `AWS_ENDPOINT_URL` (default 127.0.0.1:4566) with
/// dummy credentials, so a test can never reach AWS.
pub async fn emulator() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "system-tests"))
        .load()
        .await
}

/// A new stack name: short (queue names stay under 80 characters) and unique per call.
/// Template parameters for a stage whose route buckets no test empties. For the tests that send
/// more requests to one route than a polite client (the stage's burst is 200): how fast they
/// go depends on the machine, and a 429 would only hide the answer they are there to check.
/// Throttling itself is tested with the template's own figures (security::inputs, devstack).
pub const UNTHROTTLED: [(&str, &str); 2] =
    [("ApiThrottlingBurstLimit", "1000000"), ("ApiThrottlingRateLimit", "1000000")];

pub fn unique_stack_name() -> String {
    format!("t{}", ulid::Ulid::generate().to_string().to_lowercase().split_off(16))
}

pub fn template() -> Template {
    Template::load(&devstack::repo_root().join("template.yaml")).expect("template.yaml parses")
}

/// template.yaml provisioned under `stack_name`.
pub async fn provision(config: &aws_config::SdkConfig, stack_name: &str) -> Result<Stack> {
    let options = Options {
        stack_name: stack_name.to_owned(),
        parameters: HashMap::new(),
        api_url: provision::DEFAULT_API_URL.to_owned(),
    };
    provision::provision(&template(), config, &options).await
}

/// Receives everything visible in a queue (deleting it), until a receive comes back empty.
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<Vec<Message>> {
    let mut all = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages().to_vec();
        if messages.is_empty() {
            return Ok(all);
        }
        for message in &messages {
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await?;
            }
        }
        all.extend(messages);
    }
}

/// The approximate number of visible messages in a queue.
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?;
    let value = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .cloned()
        .unwrap_or_default();
    Ok(value.parse()?)
}

/// Messages in a queue, visible or in flight.
pub async fn in_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> u64 {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    attributes.attributes().into_iter().flatten().filter_map(|(_, v)| v.parse::<u64>().ok()).sum()
}

/// Waits until the consumer queues of `api`'s stack have stayed empty for three looks in a
/// row (half a second apart): the background work has finished.
pub async fn wait_for_quiet(sqs: &aws_sdk_sqs::Client, api: &LocalApi, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut empty_looks = 0;
    while empty_looks < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the queues did not drain in {timeout:?}");
        let mut pending = 0;
        for queue in QUEUES {
            pending += in_queue(sqs, &api.reference(queue)).await;
        }
        empty_looks = if pending == 0 { empty_looks + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Messages in each consumer queue's DLQ.
pub async fn dead_letters(sqs: &aws_sdk_sqs::Client, api: &LocalApi) -> std::collections::BTreeMap<&'static str, u64> {
    let mut found = std::collections::BTreeMap::new();
    for queue in QUEUES {
        found.insert(queue, in_queue(sqs, &api.reference(&queue.replace("Queue", "Dlq"))).await);
    }
    found
}

/// `(pk, status)` of every item of a table whose `pk` starts with `prefix` (e.g. every
/// `RESERVATION#` of the Seller table, every `PAYMENT#` of the Payment table).
pub async fn statuses(dynamo: &aws_sdk_dynamodb::Client, table: &str, prefix: &str) -> Vec<(String, String)> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let text = |item: &HashMap<String, AttributeValue>, name: &str| {
        item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
    };
    let items = items_under(dynamo, table, prefix).await;
    items.iter().map(|item| (text(item, "pk"), text(item, "status"))).collect()
}

/// Every item of a table whose `pk` starts with `prefix` (a scan: for tests' small tables).
pub async fn items_under(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    prefix: &str,
) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    dynamo
        .scan()
        .table_name(table)
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("scan")
}

/// How many of `statuses` are `status`.
pub fn count(statuses: &[(String, String)], status: &str) -> usize {
    statuses.iter().filter(|(_, s)| s == status).count()
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The envelopes of every SQS sample in `events/`.
pub fn sample_envelopes() -> Vec<shared::Envelope> {
    let samples = devstack::asyncapi::samples(&devstack::repo_root().join("events")).expect("events/ has SQS samples");
    samples.into_iter().map(|(_, envelope)| envelope).collect()
}

/// The event topics, with their logical ids in template.yaml.
pub const TOPICS: [(shared::Topic, &str); 5] = [
    (shared::Topic::UserEvents, "UserEventsTopic"),
    (shared::Topic::OrderEvents, "OrderEventsTopic"),
    (shared::Topic::PaymentEvents, "PaymentEventsTopic"),
    (shared::Topic::InventoryEvents, "InventoryEventsTopic"),
    (shared::Topic::SellerEvents, "SellerEventsTopic"),
];

/// A new queue subscribed (raw delivery, as the services' queues) to `topics` of the served
/// stack (logical ids): it records every event they carry. Its URL.
pub async fn recorder(config: &aws_config::SdkConfig, api: &LocalApi, topics: &[&str]) -> String {
    let sqs = aws_sdk_sqs::Client::new(config);
    let sns = aws_sdk_sns::Client::new(config);
    let name = format!("recorder-{}", ulid::Ulid::generate().to_string().to_lowercase());
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap();
    let attributes =
        sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await.unwrap();
    let arn = attributes.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
    for topic in topics {
        sns.subscribe()
            .topic_arn(api.reference(topic))
            .protocol("sqs")
            .endpoint(&arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();
    }
    url
}

/// A publisher for the topics of a stack; `arn` gives a topic's ARN from its logical id
/// (`Stack::reference` after `provision`, `LocalApi::reference` for a served stack).
pub fn publisher(config: &aws_config::SdkConfig, arn: impl Fn(&str) -> String) -> shared::publisher::SnsPublisher {
    let topics = TOPICS.into_iter().map(|(topic, id)| (topic, arn(id))).collect();
    shared::publisher::SnsPublisher::new(aws_sdk_sns::Client::new(config), topics)
}

/// `devstack serve` on template.yaml as `make dev` runs it, under a unique stack name and a
/// free port; stopped (SIGTERM, as Ctrl-C) when dropped.
pub struct LocalApi {
    pub url: String,
    pub stack: serde_json::Value,
    /// devstack's output: its own lines and every function's logs (read by tests, and kept
    /// in the temp dir for a look after a failure).
    pub log: std::path::PathBuf,
    process: std::process::Child,
}

impl LocalApi {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts the stack with template parameter overrides.
    pub async fn start_with(parameters: &[(&str, &str)]) -> Self {
        Self::start_through(None, parameters).await
    }

    /// Starts the stack reaching the emulator at `endpoint` (e.g. a fault proxy's URL), not at
    /// `AWS_ENDPOINT_URL`: devstack and every function it runs.
    pub async fn start_through(endpoint: Option<&str>, parameters: &[(&str, &str)]) -> Self {
        Self::start_stack(&unique_stack_name(), endpoint, parameters).await
    }

    /// Starts (another instance of) the stack `stack_name`: what a deploy brings up beside the
    /// instances of the version before it, which serve until the deploy is done.
    pub async fn start_named(stack_name: &str) -> Self {
        Self::start_stack(stack_name, None, &[]).await
    }

    async fn start_stack(stack_name: &str, endpoint: Option<&str>, parameters: &[(&str, &str)]) -> Self {
        // devstack takes the port (0: the kernel picks one) and says which in its output: a
        // port picked here and freed could be taken by any outgoing connection before it binds.
        let id = ulid::Ulid::generate().to_string().to_lowercase();
        let state = std::env::temp_dir().join(format!("devstack-{stack_name}-{id}.json"));
        let log = std::env::temp_dir().join(format!("devstack-{stack_name}-{id}.log"));
        let output = std::fs::File::create(&log).expect("a log file");
        let mut command = devstack_command();
        if let Some(endpoint) = endpoint {
            command.env("AWS_ENDPOINT_URL", endpoint);
        }
        let process = command
            .args(["--stack-name", stack_name, "serve", "--listen", "127.0.0.1:0"])
            .args(parameters.iter().flat_map(|(k, v)| ["--parameter".to_owned(), format!("{k}={v}")]))
            .arg("--output")
            .arg(&state)
            .stdout(output.try_clone().expect("a log file"))
            .stderr(output)
            .spawn()
            .expect("devstack starts");
        let mut api = Self { url: String::new(), stack: serde_json::Value::Null, log, process };
        let ready = eventually(Duration::from_secs(60), || {
            let state = std::fs::read_to_string(&state).ok();
            let exited = api.process.try_wait().ok().flatten();
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                state.map(|text| Ok(serde_json::from_str::<serde_json::Value>(&text).expect("devstack's output")))
            }
        })
        .await;
        let tail = || api.log_lines().iter().rev().take(30).rev().cloned().collect::<Vec<_>>().join("\n");
        match ready {
            Some(Ok(stack)) => api.stack = stack,
            Some(Err(status)) => panic!("devstack exited ({status}) before it was ready:\n{}", tail()),
            None => panic!("devstack was not ready after 60 s:\n{}", tail()),
        }
        let _ = std::fs::remove_file(state);
        api.url = api.stack["api_url"].as_str().expect("devstack's output names its URL").to_owned();
        api
    }

    /// Takes a function away (every call 503) or gives it back: an outage, on demand.
    pub async fn set_down(&self, function: &str, down: bool) {
        let state = if down { "down" } else { "up" };
        let url = format!("{}/__devstack/functions/{function}/{state}", self.url);
        let answer = reqwest::Client::new().post(url).send().await.expect("devstack answers");
        assert_eq!(answer.status(), 204, "{function} {state}");
    }

    /// Stops (or resumes) polling `function`'s queues, as disabling its event source mapping
    /// would: messages wait in the queue meanwhile.
    pub async fn set_event_sources(&self, function: &str, enabled: bool) {
        let state = if enabled { "enable" } else { "disable" };
        let url = format!("{}/__devstack/functions/{function}/event-sources/{state}", self.url);
        let answer = reqwest::Client::new().post(url).send().await.expect("devstack answers");
        assert_eq!(answer.status(), 204, "{function} event sources {state}");
    }

    /// Runs `function`'s schedule now instead of at its next tick (e.g. an outbox relay).
    pub async fn run_schedule(&self, function: &str) {
        let url = format!("{}/__devstack/functions/{function}/schedule", self.url);
        let answer = reqwest::Client::new().post(url).send().await.expect("devstack answers");
        assert_eq!(answer.status(), 204, "{function}'s scheduled run: {}", answer.text().await.unwrap_or_default());
    }

    /// Every line devstack and the functions have written so far.
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The physical id of a provisioned resource (queue URL, table name, ARN, ...).
    pub fn reference(&self, logical_id: &str) -> String {
        self.stack["resources"][logical_id]["Ref"].as_str().unwrap_or_else(|| panic!("no {logical_id}")).to_owned()
    }

    /// Stops devstack as Ctrl-C would and waits for it.
    pub fn stop(&mut self) {
        if self.process.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.process.id().to_string()).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.process.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        self.stop();
        // Kept when the test failed: the functions' logs explain most failures.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The devstack binary cargo built next to the running test, with emulator settings.
pub fn devstack_command() -> std::process::Command {
    let exe = std::env::current_exe().expect("the test binary");
    let bin_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/debug");
    let mut command = std::process::Command::new(bin_dir.join("devstack"));
    command
        .current_dir(devstack::repo_root())
        .env("AWS_ENDPOINT_URL", std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into()))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    command
}
