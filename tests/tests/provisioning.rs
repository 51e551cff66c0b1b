//! `provision` creates what the template declares, and a second run succeeds and changes
//! nothing: every resource reports `unchanged` and the emulator's state is identical.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use devstack::provision::{Action, Stack};
use system_tests::{QUEUES, emulator, provision, unique_stack_name};

/// Everything provisioning controls, as the emulator reports it.
async fn snapshot(config: &aws_config::SdkConfig, stack: &Stack) -> BTreeMap<String, String> {
    let (sqs, sns, dynamodb) = (
        aws_sdk_sqs::Client::new(config),
        aws_sdk_sns::Client::new(config),
        aws_sdk_dynamodb::Client::new(config),
    );
    let mut state = BTreeMap::new();
    for id in stack.of_type("AWS::SQS::Queue") {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(stack.reference(id).unwrap())
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let mut attributes: Vec<_> = attributes
            .attributes()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{}={v}", k.as_str()))
            .collect();
        attributes.sort();
        state.insert(id.to_owned(), attributes.join(";"));
    }
    for id in stack.of_type("AWS::SNS::Topic") {
        let subscriptions = sns
            .list_subscriptions_by_topic()
            .topic_arn(stack.reference(id).unwrap())
            .send()
            .await
            .unwrap();
        let mut lines = Vec::new();
        for subscription in subscriptions.subscriptions() {
            let arn = subscription.subscription_arn().unwrap();
            let attributes = sns
                .get_subscription_attributes()
                .subscription_arn(arn)
                .send()
                .await
                .unwrap();
            let mut attributes: Vec<_> = attributes
                .attributes()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            attributes.sort();
            lines.push(attributes.join(";"));
        }
        lines.sort();
        state.insert(id.to_owned(), lines.join("\n"));
    }
    for id in stack.of_type("AWS::DynamoDB::Table") {
        let table = dynamodb
            .describe_table()
            .table_name(stack.reference(id).unwrap())
            .send()
            .await
            .unwrap();
        let ttl = dynamodb
            .describe_time_to_live()
            .table_name(stack.reference(id).unwrap())
            .send()
            .await
            .unwrap();
        state.insert(
            id.to_owned(),
            format!(
                "{:?} {:?}",
                table.table().unwrap().key_schema(),
                ttl.time_to_live_description()
            ),
        );
    }
    state
}

#[tokio::test]
async fn provisioning_twice_succeeds_and_changes_nothing() {
    let config = emulator().await;
    let name = unique_stack_name();
    let first = provision(&config, &name).await.expect("first run");
    assert!(first.actions.values().any(|a| *a == Action::Created));
    let before = snapshot(&config, &first).await;

    let second = provision(&config, &name).await.expect("second run");
    let changed: Vec<_> = second
        .actions
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Unchanged | Action::Skipped))
        .collect();
    assert!(changed.is_empty(), "second run changed {changed:?}");
    assert_eq!(first.resources, second.resources, "same physical ids");
    assert_eq!(
        before,
        snapshot(&config, &second).await,
        "same emulator state"
    );
}

#[tokio::test]
async fn queues_topics_and_tables_match_the_template() {
    let config = emulator().await;
    let stack = provision(&config, &unique_stack_name())
        .await
        .expect("provisioned");
    let sqs = aws_sdk_sqs::Client::new(&config);
    for queue in QUEUES {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(stack.reference(queue).unwrap())
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let redrive: serde_json::Value = serde_json::from_str(
            &attributes.attributes().unwrap()[&QueueAttributeName::RedrivePolicy],
        )
        .unwrap();
        let dlq_arn = &stack.resources[&queue.replace("Queue", "Dlq")].attributes["Arn"];
        assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str(), "{queue}");
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            "5",
            "{queue}"
        );
        let policy: serde_json::Value =
            serde_json::from_str(&attributes.attributes().unwrap()[&QueueAttributeName::Policy])
                .unwrap();
        assert_eq!(
            policy["Statement"][0]["Principal"]["Service"], "sns.amazonaws.com",
            "{queue}: only SNS may send"
        );
    }
    let sns = aws_sdk_sns::Client::new(&config);
    let mut subscriptions = 0;
    for topic in stack.of_type("AWS::SNS::Topic") {
        let listed = sns
            .list_subscriptions_by_topic()
            .topic_arn(stack.reference(topic).unwrap())
            .send()
            .await
            .unwrap();
        for subscription in listed.subscriptions() {
            let attributes = sns
                .get_subscription_attributes()
                .subscription_arn(subscription.subscription_arn().unwrap())
                .send()
                .await
                .unwrap();
            let attributes = attributes.attributes().unwrap();
            assert_eq!(attributes["RawMessageDelivery"], "true");
            assert!(attributes["FilterPolicy"].contains("event_type"));
            subscriptions += 1;
        }
    }
    assert_eq!(
        subscriptions,
        stack.of_type("AWS::SNS::Subscription").count()
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    for table in stack.of_type("AWS::DynamoDB::Table") {
        let ttl = dynamodb
            .describe_time_to_live()
            .table_name(stack.reference(table).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            ttl.time_to_live_description().unwrap().attribute_name(),
            Some("expires_at"),
            "{table}"
        );
    }
}
