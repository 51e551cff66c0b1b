//! Creates the template's topics, queues (with redrive), queue policies, subscriptions (raw
//! delivery, filter policies) and tables on the emulator at `AWS_ENDPOINT_URL` (and, for a
//! local Stripe, the secret the payment functions read: crate::stripe).
//!
//! Idempotent and convergent: an existing resource is compared with the template and only
//! what differs is changed, so a second run reports every resource `unchanged`. Resources
//! the emulator does not host (functions, the HTTP API, alarms) are skipped here.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::types as ddb;
use serde_json::Value;

use crate::template::{Physical, Resolver, Template, scalar_string};

/// What provisioning did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Skipped,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Skipped => "skipped",
        })
    }
}

/// The provisioned stack: every resource's physical id and attributes, as later steps
/// (function environments, tests) need them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stack {
    pub stack_name: String,
    /// Template parameters and pseudo parameters, as resolved.
    pub parameters: HashMap<String, String>,
    pub region: String,
    pub account_id: String,
    pub resources: BTreeMap<String, Physical>,
    pub types: BTreeMap<String, String>,
    pub actions: BTreeMap<String, Action>,
}

impl Stack {
    /// The physical id (`Ref`) of a logical resource.
    pub fn reference(&self, logical_id: &str) -> Result<&str> {
        self.resources
            .get(logical_id)
            .map(|p| p.reference.as_str())
            .ok_or_else(|| anyhow!("{logical_id} was not provisioned"))
    }

    /// Logical ids of the resources of one CloudFormation type.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.types.iter().filter(move |(_, t)| *t == kind).map(|(id, _)| id.as_str())
    }
}

pub struct Options {
    pub stack_name: String,
    /// Overrides of template parameters (else `StripeApiBase` comes from `STRIPE_API_BASE` if
    /// set: crate::stripe; else a parameter's Default).
    pub parameters: HashMap<String, String>,
    /// The local HTTP API's base URL: it replaces the API Gateway URL in what is stored.
    pub api_url: String,
}

/// The default local API URL (`devstack serve`'s default address).
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:3000";

impl Stack {
    /// `value` with every HTTP API's AWS URL (`https://{api}.execute-api.{region}.amazonaws.com`)
    /// replaced by the local API's.
    pub fn localize(&self, value: &str, api_url: &str) -> String {
        self.of_type("AWS::Serverless::HttpApi").fold(value.to_owned(), |value, id| {
            let reference = self.resources.get(id).map(|p| p.reference.as_str()).unwrap_or(id);
            let prefix = format!("https://{reference}.execute-api.{}.amazonaws.com", self.region);
            value.replace(&prefix, api_url.trim_end_matches('/'))
        })
    }
}

struct Clients {
    secrets: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    ses: aws_sdk_ses::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

/// Provisions `template` on the endpoint `config` points at.
pub async fn provision(template: &Template, config: &aws_config::SdkConfig, options: &Options) -> Result<Stack> {
    let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .context("asking the emulator who we are (is it running at AWS_ENDPOINT_URL?)")?;
    let account_id = identity.account().unwrap_or_default().to_owned();
    let clients = Clients {
        secrets: aws_sdk_secretsmanager::Client::new(config),
        ssm: aws_sdk_ssm::Client::new(config),
        ses: aws_sdk_ses::Client::new(config),
        sns: aws_sdk_sns::Client::new(config),
        sqs: aws_sdk_sqs::Client::new(config),
        dynamodb: aws_sdk_dynamodb::Client::new(config),
    };
    // The signing keys come first: the template's key parameters are taken from them.
    let (keys_action, keys_arn, keys) = crate::jwt::ensure(&clients.secrets, &options.stack_name).await?;
    let parameters = parameter_values(template, options, &crate::jwt::parameters(&keys)?, &region, &account_id)?;
    let mut stack = Stack {
        stack_name: options.stack_name.clone(),
        region,
        account_id,
        parameters: parameters.clone(),
        ..Stack::default()
    };
    let order = creation_order(template)?;
    for id in order {
        let resource = &template.resources[&id];
        let resolver = Resolver { parameters: &parameters, resources: &stack.resources };
        if let Some(condition) = &resource.condition
            && !resolver.condition(&template.conditions, condition).with_context(|| format!("{id}.Condition"))?
        {
            continue; // Not part of this stack, as CloudFormation would leave it out.
        }
        stack.types.insert(id.clone(), resource.kind.clone());
        let props = || resolver.resolve(&resource.properties);
        let (action, result) = match resource.kind.as_str() {
            "AWS::SNS::Topic" => ensure_topic(&clients, &props()?).await,
            "AWS::SQS::Queue" => ensure_queue(&clients, &props()?).await,
            "AWS::SQS::QueuePolicy" => ensure_queue_policy(&clients, &id, &props()?).await,
            "AWS::SNS::Subscription" => ensure_subscription(&clients, &props()?).await,
            "AWS::DynamoDB::Table" => ensure_table(&clients, &props()?).await,
            "AWS::SecretsManager::Secret" => ensure_secret(&clients, &props()?).await,
            "AWS::SES::EmailIdentity" => ensure_email_identity(&clients, &props()?).await,
            "AWS::SES::ConfigurationSet" => ensure_configuration_set(&clients, &props()?).await,
            "AWS::SES::ConfigurationSetEventDestination" => ensure_event_destination(&clients, &props()?).await,
            "AWS::SSM::Parameter" => {
                let mut props = props()?;
                props["Value"] = Value::String(stack.localize(&scalar_string(&props["Value"]), &options.api_url));
                ensure_parameter(&clients, &props).await
            }
            // Run by devstack itself: named by its logical id.
            "AWS::Serverless::Function" => {
                let arn = format!("arn:aws:lambda:{}:{}:function:{id}", stack.region, stack.account_id);
                let attributes = BTreeMap::from([("Arn".to_owned(), arn)]);
                Ok((Action::Skipped, Physical { reference: id.clone(), attributes }))
            }
            // Not hosted by the emulator: its Ref is its logical id, as good as any name locally.
            _ => Ok((Action::Skipped, Physical { reference: id.clone(), attributes: BTreeMap::new() })),
        }
        .with_context(|| format!("provisioning {id} ({})", resource.kind))?;
        stack.actions.insert(id.clone(), action);
        stack.resources.insert(id, result);
    }
    // The push applications the template names by ARN (crate::push).
    let place = crate::push::Place {
        region: stack.region.clone(),
        account_id: stack.account_id.clone(),
        stack_name: options.stack_name.clone(),
    };
    for platform in crate::push::PLATFORMS {
        crate::push::ensure(&clients.sns, &place, platform, &crate::push::placeholder(), false).await?;
    }
    crate::stripe::provision_secret(&clients.secrets, &mut stack).await?;
    crate::jwt::record(&mut stack, keys_action, keys_arn);
    Ok(stack)
}

/// Each parameter's value: given (`options`), from the environment (Stripe's base), derived
/// (`derived`: the signing keys'), or its Default.
fn parameter_values(
    template: &Template,
    options: &Options,
    derived: &HashMap<String, String>,
    region: &str,
    account_id: &str,
) -> Result<HashMap<String, String>> {
    let mut values = HashMap::from([
        ("AWS::StackName".to_owned(), options.stack_name.clone()),
        ("AWS::Region".to_owned(), region.to_owned()),
        ("AWS::AccountId".to_owned(), account_id.to_owned()),
        ("AWS::Partition".to_owned(), "aws".to_owned()),
        ("AWS::URLSuffix".to_owned(), "amazonaws.com".to_owned()),
        (
            "AWS::StackId".to_owned(),
            format!("arn:aws:cloudformation:{region}:{account_id}:stack/{}/local", options.stack_name),
        ),
    ]);
    for (name, spec) in &template.parameters {
        let value = match options
            .parameters
            .get(name)
            .cloned()
            .or_else(|| crate::stripe::parameter_from_environment(name))
            .or_else(|| derived.get(name).cloned())
        {
            Some(value) => value,
            None => spec
                .get("Default")
                .map(scalar_string)
                .ok_or_else(|| anyhow!("parameter {name} has no Default; pass it"))?,
        };
        values.insert(name.clone(), value);
    }
    for name in options.parameters.keys() {
        if !template.parameters.contains_key(name) {
            bail!("unknown parameter {name}");
        }
    }
    Ok(values)
}

/// Resources ordered so that everything a resource refers to comes before it.
fn creation_order(template: &Template) -> Result<Vec<String>> {
    fn visit(id: &str, template: &Template, state: &mut HashMap<String, bool>, order: &mut Vec<String>) -> Result<()> {
        match state.get(id) {
            Some(true) => return Ok(()),
            Some(false) => bail!("circular reference through {id}"),
            None => {}
        }
        state.insert(id.to_owned(), false);
        let resource = template.resources.get(id).ok_or_else(|| anyhow!("unknown resource {id}"))?;
        let mut needs = template.references(&resource.properties);
        needs.extend(resource.depends_on.iter().cloned());
        for need in needs {
            visit(&need, template, state, order)?;
        }
        state.insert(id.to_owned(), true);
        order.push(id.to_owned());
        Ok(())
    }
    let (mut state, mut order) = (HashMap::new(), Vec::new());
    for id in template.resources.keys() {
        visit(id, template, &mut state, &mut order)?;
    }
    Ok(order)
}

fn aws_error(error: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
    anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))
}

fn required_str<'a>(props: &'a Value, name: &str) -> Result<&'a str> {
    props[name].as_str().ok_or_else(|| anyhow!("property {name} is required (devstack needs explicit names)"))
}

/// Template properties as API attributes: scalars as strings, objects as JSON text.
fn attributes(props: &Value, skip: &[&str]) -> BTreeMap<String, String> {
    props
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), scalar_string(value)))
        .collect()
}

/// Whether an attribute the emulator reports equals the template's value: JSON documents are
/// compared as data with scalars as strings, other values as case-insensitive text.
fn same_attribute(current: &str, desired: &str) -> bool {
    fn normalise(value: Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
            Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, normalise(v))).collect()),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Number(n) => Value::String(n.to_string()),
            other => other,
        }
    }
    match (serde_json::from_str::<Value>(current), serde_json::from_str::<Value>(desired)) {
        (Ok(a @ (Value::Object(_) | Value::Array(_))), Ok(b)) => normalise(a) == normalise(b),
        _ => current.eq_ignore_ascii_case(desired),
    }
}

/// The desired attributes that the current ones lack or contradict.
fn differing(current: &HashMap<String, String>, desired: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(name, value)| !current.get(*name).is_some_and(|c| same_attribute(c, value)))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// Sets every attribute of `desired` that `current` does not have, one call each (SNS
/// takes one attribute per call); what it changed.
async fn set_each<F, Fut, T, E>(
    current: Option<&HashMap<String, String>>,
    desired: &BTreeMap<String, String>,
    set: F,
) -> Result<BTreeMap<String, String>>
where
    F: Fn(String, String) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let changes = differing(current.unwrap_or(&HashMap::new()), desired);
    for (attribute, value) in &changes {
        set(attribute.clone(), value.clone()).await.map_err(aws_error)?;
    }
    Ok(changes)
}

async fn ensure_topic(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    let name = required_str(props, "TopicName")?;
    let desired = attributes(props, &["TopicName", "Tags", "Subscription"]);
    if props.get("Subscription").is_some() {
        bail!("inline Subscription on a topic is not supported; use AWS::SNS::Subscription resources");
    }
    let existing = find_topic(clients, name).await?;
    let (action, arn) = match existing {
        None => {
            let created = clients
                .sns
                .create_topic()
                .name(name)
                .set_attributes(Some(desired.into_iter().collect()))
                .send()
                .await
                .map_err(aws_error)?;
            (Action::Created, created.topic_arn().unwrap_or_default().to_owned())
        }
        Some(arn) => {
            let current = clients.sns.get_topic_attributes().topic_arn(&arn).send().await.map_err(aws_error)?;
            let changes = set_each(current.attributes(), &desired, |attribute, value| {
                clients
                    .sns
                    .set_topic_attributes()
                    .topic_arn(&arn)
                    .attribute_name(attribute)
                    .attribute_value(value)
                    .send()
            })
            .await?;
            (Action::converged(&changes), arn)
        }
    };
    let attributes = BTreeMap::from([("TopicArn".into(), arn.clone()), ("TopicName".into(), name.to_owned())]);
    Ok((action, Physical { reference: arn, attributes }))
}

async fn find_topic(clients: &Clients, name: &str) -> Result<Option<String>> {
    let mut pages = clients.sns.list_topics().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error)?;
        if let Some(arn) =
            page.topics().iter().filter_map(|t| t.topic_arn()).find(|arn| arn.rsplit(':').next() == Some(name))
        {
            return Ok(Some(arn.to_owned()));
        }
    }
    Ok(None)
}

async fn ensure_queue(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    let name = required_str(props, "QueueName")?;
    let desired = attributes(props, &["QueueName", "Tags"]);
    let existing = clients.sqs.get_queue_url().queue_name(name).send().await;
    let (action, url) = match existing {
        Ok(found) => {
            let url = found.queue_url().unwrap_or_default().to_owned();
            let changes = differing(&queue_attributes(clients, &url).await?, &desired);
            if !changes.is_empty() {
                clients
                    .sqs
                    .set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(attribute_map(changes.clone())))
                    .send()
                    .await
                    .map_err(aws_error)?;
            }
            (Action::converged(&changes), url)
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => {
            let created = clients
                .sqs
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attribute_map(desired)))
                .send()
                .await
                .map_err(aws_error)?;
            (Action::Created, created.queue_url().unwrap_or_default().to_owned())
        }
        Err(e) => return Err(aws_error(e)),
    };
    let arn = queue_attributes(clients, &url)
        .await?
        .remove("QueueArn")
        .ok_or_else(|| anyhow!("queue {name} has no QueueArn"))?;
    let attributes =
        BTreeMap::from([("Arn".into(), arn), ("QueueName".into(), name.to_owned()), ("QueueUrl".into(), url.clone())]);
    Ok((action, Physical { reference: url, attributes }))
}

fn attribute_map(attributes: BTreeMap<String, String>) -> HashMap<aws_sdk_sqs::types::QueueAttributeName, String> {
    attributes.into_iter().map(|(name, value)| (name.as_str().into(), value)).collect()
}

async fn queue_attributes(clients: &Clients, url: &str) -> Result<HashMap<String, String>> {
    let found = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .map_err(aws_error)?;
    Ok(found.attributes().into_iter().flatten().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
}

async fn ensure_queue_policy(clients: &Clients, id: &str, props: &Value) -> Result<(Action, Physical)> {
    let policy = props.get("PolicyDocument").ok_or_else(|| anyhow!("PolicyDocument is required"))?.to_string();
    let queues = props["Queues"].as_array().ok_or_else(|| anyhow!("Queues must be a list of queue URLs"))?;
    let mut action = Action::Unchanged;
    for url in queues.iter().filter_map(Value::as_str) {
        let current = queue_attributes(clients, url).await?;
        if !current.get("Policy").is_some_and(|c| same_attribute(c, &policy)) {
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(url)
                .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, &policy)
                .send()
                .await
                .map_err(aws_error)?;
            action = if current.contains_key("Policy") { Action::Updated } else { Action::Created };
        }
    }
    Ok((action, Physical { reference: id.to_owned(), attributes: BTreeMap::new() }))
}

async fn ensure_subscription(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    let topic = required_str(props, "TopicArn")?;
    let protocol = required_str(props, "Protocol")?;
    let endpoint = required_str(props, "Endpoint")?;
    let desired = attributes(props, &["TopicArn", "Protocol", "Endpoint", "Region"]);
    let mut existing = None;
    let mut pages = clients.sns.list_subscriptions_by_topic().topic_arn(topic).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error)?;
        existing = existing.or_else(|| {
            page.subscriptions()
                .iter()
                .find(|s| s.protocol() == Some(protocol) && s.endpoint() == Some(endpoint))
                .and_then(|s| s.subscription_arn().map(str::to_owned))
        });
    }
    let (action, arn) = match existing {
        Some(arn) => {
            let current =
                clients.sns.get_subscription_attributes().subscription_arn(&arn).send().await.map_err(aws_error)?;
            let changes = set_each(current.attributes(), &desired, |attribute, value| {
                let set = clients.sns.set_subscription_attributes().subscription_arn(&arn);
                set.attribute_name(attribute).attribute_value(value).send()
            })
            .await?;
            (Action::converged(&changes), arn)
        }
        None => {
            let created = clients
                .sns
                .subscribe()
                .topic_arn(topic)
                .protocol(protocol)
                .endpoint(endpoint)
                .set_attributes(Some(desired.into_iter().collect()))
                .return_subscription_arn(true)
                .send()
                .await
                .map_err(aws_error)?;
            (Action::Created, created.subscription_arn().unwrap_or_default().to_owned())
        }
    };
    Ok((action, Physical { reference: arn, attributes: BTreeMap::new() }))
}

async fn ensure_table(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    let name = required_str(props, "TableName")?;
    let described = clients.dynamodb.describe_table().table_name(name).send().await;
    let mut action = match described {
        Ok(found) => {
            // Indexes the template added since the table was made locally are added to it.
            let existing: Vec<String> = found
                .table()
                .map(|t| {
                    t.global_secondary_indexes().iter().filter_map(|i| i.index_name().map(str::to_owned)).collect()
                })
                .unwrap_or_default();
            if add_missing_indexes(clients, name, props, &existing).await? {
                Action::Updated
            } else {
                Action::Unchanged
            }
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            if create_table(clients, name, props).await? { Action::Created } else { Action::Unchanged }
        }
        Err(e) => return Err(aws_error(e)),
    };
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        let attribute = ttl["AttributeName"].as_str().unwrap_or_default();
        let enabled = scalar_string(&ttl["Enabled"]) == "true";
        let current = clients.dynamodb.describe_time_to_live().table_name(name).send().await.map_err(aws_error)?;
        let current = current.time_to_live_description();
        let is_on = current.and_then(|d| d.time_to_live_status()) == Some(&ddb::TimeToLiveStatus::Enabled);
        if is_on != enabled || (enabled && current.and_then(|d| d.attribute_name()) != Some(attribute)) {
            let spec = ddb::TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(enabled)
                .build()
                .map_err(aws_error)?;
            clients
                .dynamodb
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(aws_error)?;
            action = action.max_with(Action::Updated);
        }
    }
    if let Some(pitr) = props.get("PointInTimeRecoverySpecification") {
        let enabled = scalar_string(&pitr["PointInTimeRecoveryEnabled"]) == "true";
        let current =
            clients.dynamodb.describe_continuous_backups().table_name(name).send().await.map_err(aws_error)?;
        let is_on = current
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|d| d.point_in_time_recovery_status())
            == Some(&ddb::PointInTimeRecoveryStatus::Enabled);
        if is_on != enabled {
            let spec = ddb::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(enabled)
                .build()
                .map_err(aws_error)?;
            clients
                .dynamodb
                .update_continuous_backups()
                .table_name(name)
                .point_in_time_recovery_specification(spec)
                .send()
                .await
                .map_err(aws_error)?;
            action = action.max_with(Action::Updated);
        }
    }
    let table = clients.dynamodb.describe_table().table_name(name).send().await.map_err(aws_error)?;
    let table = table.table().ok_or_else(|| anyhow!("table {name} has no description"))?;
    let mut attributes = BTreeMap::from([("Arn".to_owned(), table.table_arn().unwrap_or_default().to_owned())]);
    if let Some(stream) = table.latest_stream_arn() {
        attributes.insert("StreamArn".into(), stream.to_owned());
    }
    Ok((action, Physical { reference: name.to_owned(), attributes }))
}

/// A secret with a generated value (`GenerateSecretString`) or a given one
/// (`SecretString`). An existing secret keeps its value: tokens signed with it stay valid.
async fn ensure_secret(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    let name = required_str(props, "Name")?;
    let description = props["Description"].as_str();
    let value = || match props.get("SecretString") {
        Some(value) => Ok(scalar_string(value)),
        None => generated_secret(&props["GenerateSecretString"]),
    };
    let (action, arn) = secret_named(&clients.secrets, name, description, value).await?;
    let attributes = BTreeMap::from([("Id".to_owned(), arn.clone())]);
    Ok((action, Physical { reference: arn, attributes }))
}

/// Creates the secret `name` with `value()` unless it exists (an existing one keeps its value);
/// its ARN. Stacks provisioned at once may all find a shared secret missing: one whose create is
/// refused as existing found it made meanwhile.
pub(crate) async fn secret_named(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    description: Option<&str>,
    value: impl FnOnce() -> Result<String>,
) -> Result<(Action, String)> {
    let existing = || async { secrets.describe_secret().secret_id(name).send().await };
    match existing().await {
        Ok(found) => return Ok((Action::Unchanged, found.arn().unwrap_or_default().to_owned())),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(aws_error(e)),
    }
    let created = secrets
        .create_secret()
        .name(name)
        .set_description(description.map(str::to_owned))
        .secret_string(value()?)
        .send()
        .await;
    match created {
        Ok(created) => Ok((Action::Created, created.arn().unwrap_or_default().to_owned())),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
            let found = existing().await.map_err(aws_error)?;
            Ok((Action::Unchanged, found.arn().unwrap_or_default().to_owned()))
        }
        Err(e) => Err(aws_error(e)),
    }
}

/// An SES identity for an address, through SES v1 (what LocalStack emulates), which verifies
/// it at once; on AWS, SES would mail the address a link.
async fn ensure_email_identity(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    let address = required_str(props, "EmailIdentity")?;
    let listed = clients.ses.list_identities().send().await.map_err(aws_error)?;
    let action = if listed.identities().iter().any(|i| i == address) {
        Action::Unchanged
    } else {
        clients.ses.verify_email_identity().email_address(address).send().await.map_err(aws_error)?;
        Action::Created
    };
    Ok((action, Physical { reference: address.to_owned(), attributes: BTreeMap::new() }))
}

/// An SES configuration set (v1), by name.
async fn ensure_configuration_set(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    use aws_sdk_ses::types::ConfigurationSet;
    let name = required_str(props, "Name")?;
    let set = ConfigurationSet::builder().name(name).build().map_err(aws_error)?;
    let action = match clients.ses.create_configuration_set().configuration_set(set).send().await {
        Ok(_) => Action::Created,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_configuration_set_already_exists_exception()) => {
            Action::Unchanged
        }
        Err(e) => return Err(aws_error(e)),
    };
    Ok((action, Physical { reference: name.to_owned(), attributes: BTreeMap::new() }))
}

/// An SNS event destination of a configuration set (v1): where SES publishes its events.
async fn ensure_event_destination(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    use aws_sdk_ses::types::{EventDestination, EventType, SnsDestination};
    let set = required_str(props, "ConfigurationSetName")?;
    let destination = &props["EventDestination"];
    let name = required_str(destination, "Name")?;
    let topic = required_str(&destination["SnsDestination"], "TopicARN")?;
    let types = destination["MatchingEventTypes"].as_array().into_iter().flatten().filter_map(Value::as_str);
    let built = EventDestination::builder()
        .name(name)
        .enabled(destination["Enabled"].as_bool().unwrap_or(false))
        .set_matching_event_types(Some(types.map(EventType::from).collect()))
        .sns_destination(SnsDestination::builder().topic_arn(topic).build().map_err(aws_error)?)
        .build()
        .map_err(aws_error)?;
    let create = clients.ses.create_configuration_set_event_destination().configuration_set_name(set);
    let action = match create.event_destination(built).send().await {
        Ok(_) => Action::Created,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_event_destination_already_exists_exception()) => {
            Action::Unchanged
        }
        Err(e) => return Err(aws_error(e)),
    };
    Ok((action, Physical { reference: name.to_owned(), attributes: BTreeMap::new() }))
}

/// A String parameter, overwritten when its value differs.
async fn ensure_parameter(clients: &Clients, props: &Value) -> Result<(Action, Physical)> {
    let name = required_str(props, "Name")?;
    let value = scalar_string(&props["Value"]);
    let current = clients.ssm.get_parameter().name(name).send().await;
    let action = match current {
        Ok(found) if found.parameter().and_then(|p| p.value()) == Some(value.as_str()) => Action::Unchanged,
        Ok(_) => Action::Updated,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Action::Created,
        Err(e) => return Err(aws_error(e)),
    };
    if action != Action::Unchanged {
        let kind = props.get("Type").map(scalar_string).unwrap_or_else(|| "String".into());
        clients
            .ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind.as_str().into())
            .overwrite(true)
            .send()
            .await
            .map_err(aws_error)?;
    }
    let attributes = BTreeMap::from([
        ("Value".to_owned(), scalar_string(&props["Value"])),
        ("Type".to_owned(), "String".to_owned()),
    ]);
    Ok((action, Physical { reference: name.to_owned(), attributes }))
}

/// Random letters and digits of `PasswordLength` (default 32), from the OS's generator.
pub(crate) fn generated_secret(spec: &Value) -> Result<String> {
    use std::io::Read;
    if spec.get("SecretStringTemplate").is_some() {
        bail!("GenerateSecretString with SecretStringTemplate is not supported by devstack");
    }
    let length: usize = spec.get("PasswordLength").map(scalar_string).unwrap_or_else(|| "32".into()).parse()?;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; length * 2];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut secret: String = bytes
        .iter()
        .filter(|b| (**b as usize) < limit)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    if secret.len() < length {
        bail!("not enough randomness for a {length}-character secret");
    }
    secret.truncate(length);
    Ok(secret)
}

impl Action {
    /// What converging an existing resource did, given the attributes it had to change.
    fn converged(changes: &BTreeMap<String, String>) -> Action {
        if changes.is_empty() { Action::Unchanged } else { Action::Updated }
    }

    /// Created stays created; anything else becomes `other` if that says more.
    fn max_with(self, other: Action) -> Action {
        if self == Action::Created { self } else { other }
    }
}

/// `false` if the table was made meanwhile: by this very create, whose first attempt the
/// emulator carried out but answered late or with a transient error so that the SDK tried
/// again, or by another provisioning of the same stack.
async fn create_table(clients: &Clients, name: &str, props: &Value) -> Result<bool> {
    let list = |key: &str| props[key].as_array().cloned().unwrap_or_default();
    let mut request = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(scalar_string(&props["BillingMode"]).as_str().into())
        .set_key_schema(Some(key_schema(&props["KeySchema"])?));
    for definition in list("AttributeDefinitions") {
        request = request.attribute_definitions(
            ddb::AttributeDefinition::builder()
                .attribute_name(scalar_string(&definition["AttributeName"]))
                .attribute_type(scalar_string(&definition["AttributeType"]).as_str().into())
                .build()
                .map_err(aws_error)?,
        );
    }
    for index in list("GlobalSecondaryIndexes") {
        request = request.global_secondary_indexes(
            ddb::GlobalSecondaryIndex::builder()
                .index_name(scalar_string(&index["IndexName"]))
                .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                .projection(projection(&index["Projection"]))
                .build()
                .map_err(aws_error)?,
        );
    }
    for index in list("LocalSecondaryIndexes") {
        request = request.local_secondary_indexes(
            ddb::LocalSecondaryIndex::builder()
                .index_name(scalar_string(&index["IndexName"]))
                .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                .projection(projection(&index["Projection"]))
                .build()
                .map_err(aws_error)?,
        );
    }
    if let Some(stream) = props.get("StreamSpecification") {
        request = request.stream_specification(
            ddb::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(scalar_string(&stream["StreamViewType"]).as_str().into())
                .build()
                .map_err(aws_error)?,
        );
    }
    if let Some(sse) = props.get("SSESpecification") {
        request = request.sse_specification(
            ddb::SseSpecification::builder().enabled(scalar_string(&sse["SSEEnabled"]) == "true").build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(false),
        Err(e) => Err(aws_error(e)),
    }
}

/// Creates the template's global secondary indexes that `existing` lacks; `true` if any.
async fn add_missing_indexes(clients: &Clients, name: &str, props: &Value, existing: &[String]) -> Result<bool> {
    let mut added = false;
    for index in props["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let index_name = scalar_string(&index["IndexName"]);
        if existing.contains(&index_name) {
            continue;
        }
        let create = ddb::CreateGlobalSecondaryIndexAction::builder()
            .index_name(&index_name)
            .set_key_schema(Some(key_schema(&index["KeySchema"])?))
            .projection(projection(&index["Projection"]))
            .build()
            .map_err(aws_error)?;
        let mut update = clients
            .dynamodb
            .update_table()
            .table_name(name)
            .global_secondary_index_updates(ddb::GlobalSecondaryIndexUpdate::builder().create(create).build());
        for definition in props["AttributeDefinitions"].as_array().into_iter().flatten() {
            update = update.attribute_definitions(
                ddb::AttributeDefinition::builder()
                    .attribute_name(scalar_string(&definition["AttributeName"]))
                    .attribute_type(scalar_string(&definition["AttributeType"]).as_str().into())
                    .build()
                    .map_err(aws_error)?,
            );
        }
        update.send().await.map_err(aws_error)?;
        added = true;
    }
    Ok(added)
}

fn key_schema(value: &Value) -> Result<Vec<ddb::KeySchemaElement>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("KeySchema must be a list"))?
        .iter()
        .map(|key| {
            ddb::KeySchemaElement::builder()
                .attribute_name(scalar_string(&key["AttributeName"]))
                .key_type(scalar_string(&key["KeyType"]).as_str().into())
                .build()
                .map_err(aws_error)
        })
        .collect()
}

fn projection(value: &Value) -> ddb::Projection {
    let non_key: Option<Vec<String>> =
        value["NonKeyAttributes"].as_array().map(|a| a.iter().map(scalar_string).collect());
    ddb::Projection::builder()
        .projection_type(scalar_string(&value["ProjectionType"]).as_str().into())
        .set_non_key_attributes(non_key)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_compare_as_data() {
        assert!(same_attribute(
            r#"{"deadLetterTargetArn":"a","maxReceiveCount":5}"#,
            r#"{"maxReceiveCount":"5","deadLetterTargetArn":"a"}"#
        ));
        assert!(same_attribute("True", "true"));
        assert!(!same_attribute(r#"{"maxReceiveCount":5}"#, r#"{"maxReceiveCount":"6"}"#));
        assert!(!same_attribute("30", "60"));
    }

    #[test]
    fn references_come_first() {
        let template = Template::parse(
            "Resources:\n  Sub: {Type: AWS::SNS::Subscription, Properties: {TopicArn: !Ref T, Endpoint: !GetAtt Q.Arn}}\n  T: {Type: AWS::SNS::Topic}\n  Q: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt D.Arn}}}\n  D: {Type: AWS::SQS::Queue}\n",
        )
        .unwrap();
        let order = creation_order(&template).unwrap();
        let at = |id: &str| order.iter().position(|x| x == id).unwrap();
        assert!(at("D") < at("Q") && at("Q") < at("Sub") && at("T") < at("Sub"));
    }

    #[test]
    fn cycles_are_reported() {
        let template = Template::parse(
            "Resources:\n  A: {Type: X, Properties: {P: !Ref B}}\n  B: {Type: X, Properties: {P: !Ref A}}\n",
        )
        .unwrap();
        assert!(creation_order(&template).unwrap_err().to_string().contains("circular"));
    }
}
