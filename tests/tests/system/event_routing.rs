//! Against the emulator, after `provision`: each event type published through the shared
//! publisher lands in exactly the queues docs/events.md routes it to, once, as a raw envelope.

use std::collections::{BTreeMap, BTreeSet};

use shared::Envelope;
use shared::publisher::Publish;
use system_tests::{QUEUES, drain, emulator, provision, publisher, sample_envelopes, unique_stack_name};

/// docs/events.md, "Queues and subscriptions": which event types each queue receives.
fn expected_routes() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let order = ["order.created", "order.completed", "order.cancelled", "order.shipped", "order.delivered"];
    let payment = ["payment.completed", "payment.failed", "payment.refunded"];
    let user = ["user.registered"];
    let seller = ["seller.approved", "seller.suspended"];
    let learned: BTreeSet<_> = order.iter().chain(&payment).chain(&user).copied().collect();
    BTreeMap::from([
        ("NotificationQueue", learned.iter().chain(&seller).copied().collect()),
        ("AiEventsQueue", learned),
        ("SellerUpdatesQueue", BTreeSet::from(["order.created", "order.cancelled", "user.registered"])),
        ("PaymentSettlementQueue", BTreeSet::from(["order.created", "order.cancelled"])),
        ("CartEventsQueue", BTreeSet::from(["user.registered", "order.completed"])),
        ("OrderUpdatesQueue", BTreeSet::from(["payment.completed", "payment.failed", "inventory.updated"])),
    ])
}

#[tokio::test]
async fn every_event_type_reaches_exactly_its_queues() {
    every_event_type_reaches_exactly_its_queues_in(&emulator().await).await;
}

/// Nothing in devstack or the template assumes an account, a region or a queue URL format
/// (moto's and LocalStack's differ): the same stack in another account (an assumed role's
/// credentials) and another region routes the same way, with ARNs and URLs of that account.
#[tokio::test]
async fn another_account_and_region_route_the_same_way() {
    let account = "210987654321";
    let home = emulator().await;
    let assumed = aws_sdk_sts::Client::new(&home)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/routing-test"))
        .role_session_name("routing-test")
        .send()
        .await
        .expect("the emulator hands out another account's credentials");
    let credentials = assumed.credentials().expect("credentials");
    let config = home
        .into_builder()
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_owned()),
                None,
                "assumed-role",
            ),
        ))
        .build();
    let stack = every_event_type_reaches_exactly_its_queues_in(&config).await;
    assert_eq!((stack.account_id.as_str(), stack.region.as_str()), (account, "eu-west-1"));
    for queue in QUEUES {
        let arn = &stack.resources[queue].attributes["Arn"];
        assert!(arn.starts_with(&format!("arn:aws:sqs:eu-west-1:{account}:")), "{queue}: {arn}");
        assert!(stack.reference(queue).unwrap().contains(account), "{queue}'s URL names the account");
    }
}

async fn every_event_type_reaches_exactly_its_queues_in(config: &aws_config::SdkConfig) -> devstack::provision::Stack {
    let stack = provision(config, &unique_stack_name()).await.expect("provisioned");
    let publisher = publisher(config, |id| stack.reference(id).expect("topic provisioned").to_owned());
    let samples = sample_envelopes();
    for envelope in &samples {
        publisher.publish(envelope).await.expect("published");
    }

    let sqs = aws_sdk_sqs::Client::new(config);
    let mut routed = BTreeMap::new();
    for queue in QUEUES {
        let messages = drain(&sqs, stack.reference(queue).unwrap()).await.unwrap();
        let mut types = BTreeSet::new();
        for message in messages {
            // Raw delivery: the body is the envelope itself, not an SNS notification.
            let envelope: Envelope = serde_json::from_str(message.body().unwrap())
                .unwrap_or_else(|e| panic!("{queue}: body is not an envelope ({e}): {:?}", message.body()));
            let original = samples.iter().find(|s| s.id == envelope.id).expect("one of ours");
            assert_eq!(&envelope, original, "{queue}: delivered unchanged");
            let attributes = message.message_attributes().expect("message attributes");
            assert_eq!(attributes["event_type"].string_value(), Some(envelope.event_type()));
            assert_eq!(attributes["correlation_id"].string_value(), Some(envelope.correlationid.as_str()));
            assert!(types.insert(envelope.event_type()), "{queue}: {} delivered twice", envelope.event_type());
        }
        routed.insert(queue, types);
    }
    assert_eq!(routed, expected_routes());
    stack
}
