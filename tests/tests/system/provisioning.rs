//! `provision` creates what the template declares, and a second run succeeds and changes
//! nothing: every resource reports `unchanged` and the emulator's state is identical.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::QueueAttributeName;
use devstack::provision::{Action, Stack};
use system_tests::{QUEUES, emulator, provision, unique_stack_name};

struct Clients {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
        }
    }

    async fn queue(&self, url: &str) -> BTreeMap<String, String> {
        let found = self.sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All);
        let found = found.send().await.unwrap();
        found.attributes().unwrap().iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect()
    }

    /// The attributes of every subscription of a topic.
    async fn subscriptions(&self, topic_arn: &str) -> Vec<HashMap<String, String>> {
        let listed = self.sns.list_subscriptions_by_topic().topic_arn(topic_arn).send().await.unwrap();
        let mut all = Vec::new();
        for subscription in listed.subscriptions() {
            let arn = subscription.subscription_arn().unwrap();
            let found = self.sns.get_subscription_attributes().subscription_arn(arn).send().await.unwrap();
            all.push(found.attributes().unwrap().clone());
        }
        all
    }

    async fn ttl_attribute(&self, table: &str) -> Option<String> {
        let ttl = self.dynamodb.describe_time_to_live().table_name(table).send().await.unwrap();
        ttl.time_to_live_description()?.attribute_name().map(str::to_owned)
    }

    /// Everything provisioning controls, as the emulator reports it.
    async fn snapshot(&self, stack: &Stack) -> BTreeMap<String, String> {
        let mut state = BTreeMap::new();
        for id in stack.of_type("AWS::SQS::Queue") {
            let mut attributes = self.queue(stack.reference(id).unwrap()).await;
            // What is in a queue is no provisioned state: SES sends its feedback topic a
            // validation notice when the event destination is made, and it may land between
            // the two looks.
            attributes.retain(|name, _| !name.starts_with("ApproximateNumberOfMessages"));
            state.insert(id.to_owned(), format!("{attributes:?}"));
        }
        for id in stack.of_type("AWS::SNS::Topic") {
            let mut lines: Vec<_> = self
                .subscriptions(stack.reference(id).unwrap())
                .await
                .into_iter()
                .map(|a| format!("{:?}", a.into_iter().collect::<BTreeMap<_, _>>()))
                .collect();
            lines.sort();
            state.insert(id.to_owned(), lines.join("\n"));
        }
        for id in stack.of_type("AWS::DynamoDB::Table") {
            let table = self.dynamodb.describe_table().table_name(stack.reference(id).unwrap()).send().await.unwrap();
            let ttl = self.ttl_attribute(stack.reference(id).unwrap()).await;
            state.insert(id.to_owned(), format!("{:?} {ttl:?}", table.table().unwrap().key_schema()));
        }
        state
    }
}

#[tokio::test]
async fn provisioning_twice_succeeds_and_changes_nothing() {
    let config = emulator().await;
    let clients = Clients::new(&config);
    let name = unique_stack_name();
    let first = provision(&config, &name).await.expect("first run");
    assert!(first.actions.values().any(|a| *a == Action::Created));
    let before = clients.snapshot(&first).await;

    let second = provision(&config, &name).await.expect("second run");
    let changed: Vec<_> =
        second.actions.iter().filter(|(_, a)| !matches!(a, Action::Unchanged | Action::Skipped)).collect();
    assert!(changed.is_empty(), "second run changed {changed:?}");
    assert_eq!(first.resources, second.resources, "same physical ids");
    assert_eq!(before, clients.snapshot(&second).await, "same emulator state");
}

/// Defect (`bash .ci/run` on a busy machine, `auth::`: "the local API did not come up"): a
/// stack's devstack exited with "ResourceInUseException: Table already exists" for a table of
/// its own fresh stack: the SDK had retried a CreateTable whose first attempt the emulator
/// carried out but answered too late or with a transient error, and a create refused as
/// existing was taken as a failure. Two provisionings of one stack at once take the same path
/// every time (both find the table missing, both create it).
#[tokio::test]
async fn a_stack_provisioned_twice_at_once_converges() {
    let config = emulator().await;
    let name = unique_stack_name();
    let (first, second) = tokio::join!(provision(&config, &name), provision(&config, &name));
    let (first, second) = (first.expect("first provisioning"), second.expect("second provisioning"));
    // The tables (and every other resource named by the template) are the same ones. Not the
    // subscriptions: LocalStack's Subscribe is not atomic, so two at the same instant may make
    // two (AWS's makes one); the SDK's retry of one Subscribe finds the first and is no case of it.
    for table in first.of_type("AWS::DynamoDB::Table") {
        assert_eq!(first.resources[table], second.resources[table], "{table}");
    }
}

#[tokio::test]
async fn queues_topics_and_tables_match_the_template() {
    let config = emulator().await;
    let clients = Clients::new(&config);
    let stack = provision(&config, &unique_stack_name()).await.expect("provisioned");
    for queue in QUEUES {
        let attributes = clients.queue(stack.reference(queue).unwrap()).await;
        let redrive: serde_json::Value = serde_json::from_str(&attributes["RedrivePolicy"]).unwrap();
        let dlq_arn = &stack.resources[&queue.replace("Queue", "Dlq")].attributes["Arn"];
        assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str(), "{queue}");
        assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "5", "{queue}");
        let policy: serde_json::Value = serde_json::from_str(&attributes["Policy"]).unwrap();
        assert_eq!(policy["Statement"][0]["Principal"]["Service"], "sns.amazonaws.com", "{queue}: only SNS may send");
    }
    let mut subscriptions = 0;
    for topic in stack.of_type("AWS::SNS::Topic") {
        for attributes in clients.subscriptions(stack.reference(topic).unwrap()).await {
            assert_eq!(attributes["RawMessageDelivery"], "true");
            // The event topics' subscriptions filter on the event type (SES's feedback has none).
            if topic != "EmailFeedbackTopic" {
                assert!(attributes["FilterPolicy"].contains("event_type"), "{topic}");
            }
            subscriptions += 1;
        }
    }
    assert_eq!(subscriptions, stack.of_type("AWS::SNS::Subscription").count());
    for table in stack.of_type("AWS::DynamoDB::Table") {
        let ttl = clients.ttl_attribute(stack.reference(table).unwrap()).await;
        assert_eq!(ttl.as_deref(), Some("expires_at"), "{table}");
    }
}

/// Defect (found looping `checkout::` with the other core busy, 2 of 5 runs): stacks started at
/// once on a fresh emulator each found the shared local Stripe secret missing and created it;
/// the later create was refused as existing and that stack's devstack exited ("the local API
/// did not come up").
#[tokio::test]
async fn stacks_provisioned_at_once_share_the_local_stripe_secret() {
    let config = emulator().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let name = format!("ecommerce/stripe-{}", unique_stack_name());
    let stack = |id: &str| Stack {
        stack_name: id.to_owned(),
        parameters: HashMap::from([
            (devstack::stripe::API_BASE_PARAMETER.to_owned(), "http://127.0.0.1:8420".to_owned()),
            (devstack::stripe::SECRET_NAME_PARAMETER.to_owned(), name.clone()),
        ]),
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        resources: BTreeMap::new(),
        types: BTreeMap::new(),
        actions: BTreeMap::new(),
    };
    let mut stacks: Vec<Stack> = (0..4).map(|i| stack(&format!("s{i}"))).collect();
    let results = futures_util::future::join_all(
        stacks.iter_mut().map(|stack| devstack::stripe::provision_secret(&secrets, stack)),
    )
    .await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let arns: std::collections::BTreeSet<_> =
        stacks.iter().map(|s| s.resources.values().next().unwrap().reference.clone()).collect();
    assert_eq!(arns.len(), 1, "one secret for all: {arns:?}");
}
