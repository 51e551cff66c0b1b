//! What devstack runs, read from the template: every `AWS::Serverless::Function` (merged
//! with `Globals.Function`), its HttpApi routes and SQS event sources, and the HTTP API's
//! authorizers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

use crate::provision::Stack;
use crate::template::{Resolver, Template, scalar_string};

/// One Lambda function as devstack runs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The logical id; also the function's name locally.
    pub name: String,
    /// The binary cargo builds for it (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Template variables, resolved, plus what the Lambda runtime itself sets.
    pub environment: BTreeMap<String, String>,
    pub routes: Vec<RouteSpec>,
    pub queues: Vec<QueueSource>,
    /// `Schedule` events: how often the function is invoked.
    pub schedules: Vec<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    /// Upper case, or `ANY`.
    pub method: String,
    /// The route's path, or [`DEFAULT_ROUTE`].
    pub path: String,
    pub auth: RouteAuth,
}

/// The path of the `$default` route (an `HttpApi` event with neither `Path` nor `Method`,
/// as SAM declares it): API Gateway sends it every request no other route matches.
pub const DEFAULT_ROUTE: &str = "$default";

impl RouteSpec {
    /// The route key, as API Gateway names the route in events (`GET /x`, `$default`).
    pub fn key(&self) -> String {
        if self.path == DEFAULT_ROUTE { DEFAULT_ROUTE.to_owned() } else { format!("{} {}", self.method, self.path) }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAuth {
    None,
    /// SigV4-signed requests only.
    Iam,
    /// A Lambda (REQUEST) authorizer by name.
    Lambda(String),
}

impl std::fmt::Display for RouteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteAuth::None => f.write_str("public"),
            RouteAuth::Iam => f.write_str("IAM (SigV4)"),
            RouteAuth::Lambda(name) => write!(f, "authorizer {name}"),
        }
    }
}

/// A Lambda (REQUEST) authorizer of the HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerSpec {
    pub name: String,
    pub function: String,
    /// Header names (lower case) that must all be present and non-empty.
    pub identity_headers: Vec<String>,
    pub simple_responses: bool,
}

/// An SQS event source mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSource {
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_batch_item_failures: bool,
}

/// Where the local processes find the emulator and the API.
#[derive(Debug, Clone)]
pub struct LocalEnvironment {
    /// Passed to every function: endpoint, region and (dummy) credentials of the emulator.
    pub aws: BTreeMap<String, String>,
    /// The local HTTP API's base URL, which replaces the API Gateway URL in variables.
    pub api_url: String,
}

impl LocalEnvironment {
    /// The emulator settings devstack itself uses, passed on to the functions: endpoint,
    /// region and credentials (which are also what internal calls must be signed with).
    pub async fn for_emulator(config: &aws_config::SdkConfig, api_url: &str) -> Result<Self> {
        use aws_credential_types::provider::ProvideCredentials;
        let mut aws = BTreeMap::new();
        if let Some(endpoint) = config.endpoint_url() {
            aws.insert("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned());
        }
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        aws.insert("AWS_REGION".to_owned(), region.clone());
        aws.insert("AWS_DEFAULT_REGION".to_owned(), region);
        let provider = config.credentials_provider().ok_or_else(|| anyhow!("no AWS credentials configured"))?;
        let credentials = provider.provide_credentials().await.context("loading the local AWS credentials")?;
        aws.insert("AWS_ACCESS_KEY_ID".to_owned(), credentials.access_key_id().to_owned());
        aws.insert("AWS_SECRET_ACCESS_KEY".to_owned(), credentials.secret_access_key().to_owned());
        if let Some(token) = credentials.session_token() {
            aws.insert("AWS_SESSION_TOKEN".to_owned(), token.to_owned());
        }
        aws.insert("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned());
        for name in ["PATH", "RUST_BACKTRACE"] {
            if let Ok(value) = std::env::var(name) {
                aws.insert(name.to_owned(), value);
            }
        }
        Ok(Self { aws, api_url: api_url.trim_end_matches('/').to_owned() })
    }

    /// The credentials SigV4-signed requests must use.
    pub fn credentials(&self) -> crate::sigv4::LocalCredentials {
        let get = |name: &str| self.aws.get(name).cloned().unwrap_or_default();
        crate::sigv4::LocalCredentials {
            access_key: get("AWS_ACCESS_KEY_ID"),
            secret_key: get("AWS_SECRET_ACCESS_KEY"),
        }
    }
}

/// Every function of the template, resolved against the provisioned stack.
pub fn functions(template: &Template, stack: &Stack, local: &LocalEnvironment) -> Result<Vec<FunctionSpec>> {
    let resolver = Resolver { parameters: &stack.parameters, resources: &stack.resources };
    let globals = template.globals.get("Function").cloned().unwrap_or(Value::Object(Map::new()));
    let default_authorizer = http_api_auth(template)?.1;
    let mut found = Vec::new();
    for (id, resource) in template.resources.iter().filter(|(_, r)| r.kind == "AWS::Serverless::Function") {
        let props = Value::Object(merge(&globals, &resource.properties));
        let binary = resource.metadata["BuildProperties"]["Binary"].as_str().map(str::to_owned);
        let binary = binary.ok_or_else(|| anyhow!("{id}: Metadata.BuildProperties.Binary names its binary"))?;
        let number = |name: &str, default: u64| -> Result<u64> {
            match props.get(name) {
                Some(value) => scalar_string(&resolver.resolve(value)?).parse().with_context(|| format!("{id}.{name}")),
                None => Ok(default),
            }
        };
        let timeout = Duration::from_secs(number("Timeout", 3)?);
        let memory_mb = number("MemorySize", 128)? as u32;

        let mut environment = local.aws.clone();
        let variables =
            resolver.resolve(&props["Environment"]["Variables"]).with_context(|| format!("{id}: Environment"))?;
        for (name, value) in variables.as_object().into_iter().flatten() {
            let value = stack.localize(&scalar_string(value), &local.api_url);
            environment.insert(name.clone(), value);
        }
        let log_level = props["LoggingConfig"]["ApplicationLogLevel"].clone();
        let log_level = scalar_string(&resolver.resolve(&log_level)?);
        environment.extend([
            ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), id.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION".to_owned(), "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME".to_owned(), format!("/aws/lambda/{id}")),
            ("_HANDLER".to_owned(), scalar_string(&props["Handler"])),
        ]);
        if props["LoggingConfig"]["LogFormat"] == "JSON" {
            environment.insert("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into());
        }
        if !log_level.is_empty() {
            environment.insert("AWS_LAMBDA_LOG_LEVEL".into(), log_level);
        }

        let (mut routes, mut queues, mut schedules) = (Vec::new(), Vec::new(), Vec::new());
        for (event_name, event) in props["Events"].as_object().into_iter().flatten() {
            let event_props =
                resolver.resolve(&event["Properties"]).with_context(|| format!("{id}.Events.{event_name}"))?;
            match event["Type"].as_str() {
                Some("HttpApi") => routes.push(
                    route(&event_props, default_authorizer.as_deref())
                        .with_context(|| format!("{id}.Events.{event_name}"))?,
                ),
                Some("Schedule") => {
                    let expression = scalar_string(&event_props["Schedule"]);
                    let every = rate(&expression).with_context(|| format!("{id}.Events.{event_name}"))?;
                    schedules.push(every);
                }
                Some("SQS") => {
                    queues.push(queue_source(&event_props, stack).with_context(|| format!("{id}.Events.{event_name}"))?)
                }
                other => bail!("{id}.Events.{event_name}: event type {other:?} is not supported by devstack"),
            }
        }
        found.push(FunctionSpec {
            name: id.clone(),
            binary,
            timeout,
            memory_mb,
            environment,
            routes,
            queues,
            schedules,
        });
    }
    Ok(found)
}

/// The HTTP API's Lambda authorizers, and its default authorizer if any.
pub fn http_api_auth(template: &Template) -> Result<(Vec<AuthorizerSpec>, Option<String>)> {
    let Some(api) = template.resources.values().find(|r| r.kind == "AWS::Serverless::HttpApi") else {
        return Ok((Vec::new(), None));
    };
    let auth = &api.properties["Auth"];
    let default = auth["DefaultAuthorizer"].as_str().map(str::to_owned);
    let mut authorizers = Vec::new();
    for (name, spec) in auth["Authorizers"].as_object().into_iter().flatten() {
        if spec.get("JwtConfiguration").is_some() {
            bail!("authorizer {name}: JWT authorizers are not supported by devstack; use a Lambda authorizer");
        }
        let function = match &spec["FunctionArn"] {
            Value::Object(get_att) => get_att["Fn::GetAtt"][0].as_str().map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| anyhow!("authorizer {name}: FunctionArn must be !GetAtt Function.Arn"))?;
        let identity_headers = spec["Identity"]["Headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(str::to_ascii_lowercase))
            .collect();
        let simple_responses = scalar_string(&spec["EnableSimpleResponses"]) == "true";
        authorizers.push(AuthorizerSpec { name: name.clone(), function, identity_headers, simple_responses });
    }
    Ok((authorizers, default))
}

fn route(props: &Value, default_authorizer: Option<&str>) -> Result<RouteSpec> {
    // As SAM reads them: both left out is the $default route, one left out an error.
    let (method, path) = match (props["Method"].as_str(), props["Path"].as_str()) {
        (None, None) => ("ANY".to_owned(), DEFAULT_ROUTE.to_owned()),
        (Some(method), Some(path)) => (method.to_ascii_uppercase(), path.to_owned()),
        _ => bail!("an HttpApi event has both Path and Method, or neither (the $default route)"),
    };
    let auth = match props["Auth"]["Authorizer"].as_str().or(default_authorizer) {
        None | Some("NONE") => RouteAuth::None,
        Some("AWS_IAM") => RouteAuth::Iam,
        Some(name) => RouteAuth::Lambda(name.to_owned()),
    };
    Ok(RouteSpec { method, path, auth })
}

/// The period of a `rate(N unit)` schedule expression (cron expressions are not supported).
fn rate(expression: &str) -> Result<Duration> {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|e| e.strip_suffix(')'))
        .ok_or_else(|| anyhow!("schedule {expression:?}: devstack runs rate(...) expressions only"))?;
    let (count, unit) =
        inner.split_once(' ').ok_or_else(|| anyhow!("schedule {expression:?}: expected rate(N unit)"))?;
    let count: u64 = count.parse()?;
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        other => bail!("schedule {expression:?}: unknown unit {other}"),
    };
    Ok(Duration::from_secs(count * seconds))
}

fn queue_source(props: &Value, stack: &Stack) -> Result<QueueSource> {
    let queue_arn = props["Queue"].as_str().ok_or_else(|| anyhow!("Queue must be the queue's ARN"))?.to_owned();
    let queue_url = stack
        .resources
        .values()
        .find(|p| p.attributes.get("Arn") == Some(&queue_arn))
        .map(|p| p.reference.clone())
        .ok_or_else(|| anyhow!("no provisioned queue has ARN {queue_arn}"))?;
    let batch_size = props.get("BatchSize").map(scalar_string).unwrap_or_else(|| "10".into()).parse()?;
    let window =
        props.get("MaximumBatchingWindowInSeconds").map(scalar_string).unwrap_or_else(|| "0".into()).parse()?;
    let report_batch_item_failures =
        props["FunctionResponseTypes"].as_array().into_iter().flatten().any(|t| t == "ReportBatchItemFailures");
    Ok(QueueSource {
        queue_url,
        queue_arn,
        batch_size,
        batching_window: Duration::from_secs(window),
        report_batch_item_failures,
    })
}

/// `Globals.Function` under a function's own properties; `Environment.Variables` merge.
fn merge(globals: &Value, own: &Value) -> Map<String, Value> {
    let mut merged = globals.as_object().cloned().unwrap_or_default();
    for (key, value) in own.as_object().into_iter().flatten() {
        let combined = match (merged.get(key), value) {
            (Some(Value::Object(global)), Value::Object(local)) if key == "Environment" || key == "LoggingConfig" => {
                let mut both = global.clone();
                for (k, v) in local {
                    match (both.get_mut(k), v) {
                        (Some(Value::Object(g)), Value::Object(l)) => g.extend(l.clone()),
                        _ => {
                            both.insert(k.clone(), v.clone());
                        }
                    }
                }
                Value::Object(both)
            }
            _ => value.clone(),
        };
        merged.insert(key.clone(), combined);
    }
    merged
}

/// Functions by name, for lookups.
pub fn by_name(functions: &[FunctionSpec]) -> HashMap<&str, &FunctionSpec> {
    functions.iter().map(|f| (f.name.as_str(), f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_without_path_and_method_is_the_default_route() {
        let default = route(&serde_json::json!({"ApiId": "api"}), None).unwrap();
        assert_eq!((default.key(), default.auth), ("$default".to_owned(), RouteAuth::None));
        let get = route(&serde_json::json!({"Path": "/x", "Method": "get"}), Some("Token")).unwrap();
        assert_eq!((get.key(), get.auth), ("GET /x".to_owned(), RouteAuth::Lambda("Token".into())));
        assert!(route(&serde_json::json!({"Path": "/x"}), None).is_err(), "SAM refuses a Path without a Method");
        assert!(route(&serde_json::json!({"Method": "GET"}), None).is_err());
    }

    #[test]
    fn rate_expressions_become_periods() {
        assert_eq!(rate("rate(1 minute)").unwrap(), Duration::from_secs(60));
        assert_eq!(rate("rate(5 minutes)").unwrap(), Duration::from_secs(300));
        assert_eq!(rate("rate(2 hours)").unwrap(), Duration::from_secs(7200));
        assert!(rate("cron(0 12 * * ? *)").is_err());
        assert!(rate("rate(1 fortnight)").is_err());
    }
}
