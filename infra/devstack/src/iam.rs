//! IAM as AWS enforces it, for the local stack: every function has its own identity (an
//! access key naming it, given to its process), and each AWS call it makes and each
//! `execute-api:Invoke` it signs is allowed only if its role's policies in template.yaml
//! allow it, so that a missing or excessive grant shows locally, not after a deploy.
//!
//! A role is what SAM would make of the function's `Policies`: inline statements, the SAM
//! policy templates the template uses (expanded from AWS's published definitions), and every
//! `AWS::IAM::Policy` or `AWS::IAM::ManagedPolicy` of the template attached to
//! `<Function>Role` (the role SAM creates). Evaluation is IAM's for identity policies without
//! conditions: an explicit Deny wins, else an Allow is needed, `*` and `?` are wildcards.
//!
//! What SAM adds for an SQS event source (AWSLambdaSQSQueueExecutionRole: ReceiveMessage,
//! DeleteMessage, GetQueueAttributes) is used on AWS by the event source mapping, with the
//! function's role; locally devstack's pollers make those calls, with devstack's own
//! credentials (as every call of devstack itself: provisioning, pollers), which are not
//! checked. The same goes for the logs and X-Ray grants SAM adds: nothing calls them locally.
//!
//! Every grant a request matched is recorded, so that [`Iam::unused`] lists the grants no
//! request used: candidates for removal, or grants no local test exercises.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use wildmatch::WildMatch;

use crate::provision::Stack;
use crate::template::{Resolver, Template};

/// The SAM policy templates template.yaml uses, as AWS publishes them (samtranslator's
/// policy_templates.json). A template not listed here fails loudly: add its definition.
const SAM_POLICY_TEMPLATES: &str = r#"{
  "SNSPublishMessagePolicy": {"Statement": [{"Action": ["sns:Publish"], "Effect": "Allow",
    "Resource": {"Fn::Sub": ["arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${topicName}",
      {"topicName": {"Ref": "TopicName"}}]}}]},
  "AWSSecretsManagerGetSecretValuePolicy": {"Statement": [{"Action": ["secretsmanager:GetSecretValue"],
    "Effect": "Allow", "Resource": {"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "SecretArn"}}]}}]}
}"#;

/// What a function's access key id is made of: this, then the function's name.
pub const KEY_PREFIX: &str = "devstack-";

/// The access key id a function's process signs with.
pub fn access_key(function: &str) -> String {
    format!("{KEY_PREFIX}{function}")
}

/// One action and resource a request needs, as IAM names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub action: String,
    pub resource: String,
}

impl Need {
    fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self { action: action.into(), resource: resource.into() }
    }
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// An allowed (action, resource) pair of a role, as the template writes it (resolved).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub function: String,
    pub action: String,
    pub resource: String,
}

#[derive(Debug)]
struct Role {
    statements: Vec<Statement>,
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Not a key of this stack.
    UnknownKey,
    /// The role does not allow it: AWS's message.
    Denied(String),
}

/// The roles of every function of a stack, and what was used of them.
#[derive(Debug)]
pub struct Iam {
    pub account_id: String,
    pub region: String,
    stack_name: String,
    /// The HTTP API's id, as `${HttpApi}` resolves locally.
    api_id: String,
    /// devstack's own key (provisioning, pollers, tests): not a function's, not checked.
    admin_key: String,
    roles: BTreeMap<String, Role>,
    /// Secret names to their ARNs: a call may name a secret by either.
    secrets: HashMap<String, String>,
    used: Mutex<BTreeSet<Grant>>,
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// IAM's wildcards: `*` any run of characters (`/` and `:` too), `?` one; actions ignore case.
fn matches(pattern: &str, value: &str) -> bool {
    WildMatch::new(pattern).matches(value)
}

fn action_matches(pattern: &str, action: &str) -> bool {
    matches(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

impl Iam {
    /// The roles the template gives its functions, resolved against the provisioned stack.
    pub fn from_template(template: &Template, stack: &Stack, admin_key: &str) -> Result<Self> {
        let resolver = Resolver { parameters: &stack.parameters, resources: &stack.resources };
        let sam_templates: Map<String, Value> = serde_json::from_str(SAM_POLICY_TEMPLATES)?;
        let mut roles = BTreeMap::new();
        for (id, resource) in template.resources.iter().filter(|(_, r)| r.kind == "AWS::Serverless::Function") {
            let mut statements = Vec::new();
            let policies = match &resource.properties["Policies"] {
                Value::Array(items) => items.clone(),
                Value::Null => Vec::new(),
                other => vec![other.clone()],
            };
            for policy in &policies {
                let document = match policy {
                    Value::Object(map) if map.contains_key("Statement") => policy.clone(),
                    Value::Object(map) if map.len() == 1 => {
                        let (name, arguments) = map.iter().next().expect("one entry");
                        let definition = sam_templates
                            .get(name)
                            .ok_or_else(|| anyhow!("{id}: SAM policy template {name} is not known to devstack"))?;
                        substitute(definition, &arguments.as_object().cloned().unwrap_or_default())
                    }
                    other => bail!("{id}: policy {other} is not supported by devstack (a managed policy?)"),
                };
                let resolved = resolver.resolve(&document).with_context(|| format!("{id}: Policies"))?;
                statements.extend(parse_statements(&resolved).with_context(|| format!("{id}: Policies"))?);
            }
            roles.insert(id.clone(), Role { statements });
        }
        for (id, resource) in &template.resources {
            if !matches!(resource.kind.as_str(), "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") {
                continue;
            }
            let document = resolver.resolve(&resource.properties["PolicyDocument"]).with_context(|| id.clone())?;
            let statements = parse_statements(&document).with_context(|| id.clone())?;
            for attached in resource.properties["Roles"].as_array().into_iter().flatten() {
                let role = attached["Ref"].as_str().unwrap_or_default();
                let function = role.strip_suffix("Role").filter(|f| roles.contains_key(*f));
                let function = function.ok_or_else(|| anyhow!("{id}: {attached} is not a function's role"))?;
                roles.get_mut(function).expect("checked").statements.extend(statements.iter().cloned());
            }
        }
        let secrets = stack
            .types
            .iter()
            .filter(|(_, kind)| *kind == "AWS::SecretsManager::Secret")
            .filter_map(|(id, _)| stack.resources.get(id))
            .filter_map(|physical| {
                let name = physical.reference.split(":secret:").nth(1)?;
                // The ARN ends in the name and "-" plus six random characters.
                let name = name.rsplit_once('-').map(|(name, _)| name).unwrap_or(name);
                Some((name.to_owned(), physical.reference.clone()))
            })
            .collect();
        let api_id = stack.of_type("AWS::Serverless::HttpApi").next().map(|id| stack.reference(id)).transpose()?;
        Ok(Self {
            account_id: stack.account_id.clone(),
            region: stack.region.clone(),
            stack_name: stack.stack_name.clone(),
            api_id: api_id.unwrap_or("HttpApi").to_owned(),
            admin_key: admin_key.to_owned(),
            roles,
            secrets,
            used: Mutex::default(),
        })
    }

    /// The function an access key belongs to; `Ok(None)` for devstack's own key.
    fn caller(&self, key: &str) -> Result<Option<&str>, Refusal> {
        if key == self.admin_key {
            return Ok(None);
        }
        let function = key.strip_prefix(KEY_PREFIX).filter(|f| self.roles.contains_key(*f));
        function.map(|f| Some(self.roles.get_key_value(f).expect("checked").0.as_str())).ok_or(Refusal::UnknownKey)
    }

    /// Whether `key` is one of this stack's keys (devstack's or a function's).
    pub fn knows(&self, key: &str) -> bool {
        self.caller(key).is_ok()
    }

    /// Checks what a call signed with `key` needs against its role, and records the grants
    /// that allowed it.
    pub fn authorize(&self, key: &str, needs: &[Need]) -> Result<(), Refusal> {
        let Some(function) = self.caller(key)? else { return Ok(()) };
        let role = &self.roles[function];
        let mut used = Vec::new();
        for need in needs {
            let applies = |s: &&Statement| {
                s.actions.iter().any(|a| action_matches(a, &need.action))
                    && s.resources.iter().any(|r| matches(r, &need.resource))
            };
            let why = if role.statements.iter().filter(|s| !s.allow).any(|s| applies(&s)) {
                "with an explicit deny in an identity-based policy"
            } else if let Some(allowing) = role.statements.iter().filter(|s| s.allow).find(applies) {
                for action in allowing.actions.iter().filter(|a| action_matches(a, &need.action)) {
                    for resource in allowing.resources.iter().filter(|r| matches(r, &need.resource)) {
                        used.push(Grant {
                            function: function.to_owned(),
                            action: action.clone(),
                            resource: resource.clone(),
                        });
                    }
                }
                continue;
            } else {
                "because no identity-based policy allows the action"
            };
            return Err(Refusal::Denied(format!(
                "User: {} is not authorized to perform: {} on resource: {} {why}",
                self.assumed_role(function),
                need.action,
                need.resource
            )));
        }
        self.used.lock().unwrap_or_else(|e| e.into_inner()).extend(used);
        Ok(())
    }

    /// The caller's ARN in AWS's messages: the session of the function's role.
    fn assumed_role(&self, function: &str) -> String {
        format!("arn:aws:sts::{}:assumed-role/{}-{function}Role/{function}", self.account_id, self.stack_name)
    }

    /// The ARN of a route of the HTTP API's `$default` stage, as execute-api:Invoke names it.
    pub fn route_arn(&self, method: &str, path: &str) -> String {
        format!("arn:aws:execute-api:{}:{}:{}/$default/{method}{path}", self.region, self.account_id, self.api_id)
    }

    /// Every grant of every role.
    pub fn grants(&self) -> BTreeSet<Grant> {
        let mut all = BTreeSet::new();
        for (function, role) in &self.roles {
            for statement in role.statements.iter().filter(|s| s.allow) {
                for action in &statement.actions {
                    for resource in &statement.resources {
                        all.insert(Grant {
                            function: function.clone(),
                            action: action.clone(),
                            resource: resource.clone(),
                        });
                    }
                }
            }
        }
        all
    }

    /// The grants no call has used so far.
    pub fn unused(&self) -> BTreeSet<Grant> {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        self.grants().difference(&used).cloned().collect()
    }

    /// What an AWS API call needs: `service` from the signature's scope, `operation` as the
    /// proxy names it (`dynamodb.PutItem`), the request's path and body.
    pub fn needs(&self, service: &str, operation: &str, path: &str, body: &[u8]) -> Vec<Need> {
        let action = operation.split_once('.').map(|(_, a)| a).unwrap_or(operation);
        let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{}:{}:{rest}", self.region, self.account_id);
        let json: Value = serde_json::from_slice(body).unwrap_or_default();
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| json[name].as_str().map(str::to_owned).or_else(|| form.get(name).cloned());
        match service {
            "dynamodb" => {
                let table = |name: &str| {
                    if name.starts_with("arn:") { name.to_owned() } else { arn("dynamodb", &format!("table/{name}")) }
                };
                let per_item = |list: &str, kinds: &[(&str, &str)]| -> Vec<Need> {
                    let items = json[list].as_array().cloned().unwrap_or_default();
                    items
                        .iter()
                        .flat_map(|item| {
                            kinds.iter().filter_map(|(key, action)| {
                                let name = item[*key]["TableName"].as_str()?;
                                Some(Need::new(format!("dynamodb:{action}"), table(name)))
                            })
                        })
                        .collect()
                };
                match action {
                    "TransactWriteItems" => per_item(
                        "TransactItems",
                        &[
                            ("Put", "PutItem"),
                            ("Update", "UpdateItem"),
                            ("Delete", "DeleteItem"),
                            ("ConditionCheck", "ConditionCheckItem"),
                        ],
                    ),
                    "TransactGetItems" => per_item("TransactItems", &[("Get", "GetItem")]),
                    "BatchGetItem" | "BatchWriteItem" => json["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, _)| Need::new(format!("dynamodb:{action}"), table(name)))
                        .collect(),
                    _ => {
                        let resource = match (field("TableName"), field("IndexName")) {
                            (Some(name), Some(index)) => format!("{}/index/{index}", table(&name)),
                            (Some(name), None) => table(&name),
                            (None, _) => "*".to_owned(),
                        };
                        vec![Need::new(format!("dynamodb:{action}"), resource)]
                    }
                }
            }
            "sqs" => {
                let queue = field("QueueUrl").and_then(|url| url.rsplit('/').next().map(|q| arn("sqs", q)));
                vec![Need::new(format!("sqs:{action}"), queue.unwrap_or_else(|| "*".into()))]
            }
            "sns" => {
                // A message to a phone number has no resource: IAM sees "*".
                let target =
                    ["TopicArn", "TargetArn", "PlatformApplicationArn", "EndpointArn"].into_iter().find_map(field);
                vec![Need::new(format!("sns:{action}"), target.unwrap_or_else(|| "*".into()))]
            }
            "ssm" => {
                let names = match json["Names"].as_array() {
                    Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
                    None => field("Name").or_else(|| field("Path")).into_iter().collect::<Vec<_>>(),
                };
                let parameter = |name: &str| arn("ssm", &format!("parameter/{}", name.trim_start_matches('/')));
                names.iter().map(|n| Need::new(format!("ssm:{action}"), parameter(n))).collect()
            }
            "secretsmanager" => {
                let secret = field("SecretId").map(|id| match self.secrets.get(&id) {
                    Some(arn) => arn.clone(),
                    None if id.starts_with("arn:") => id,
                    None => arn("secretsmanager", &format!("secret:{id}")),
                });
                vec![Need::new(format!("secretsmanager:{action}"), secret.unwrap_or_else(|| "*".into()))]
            }
            "ses" => {
                // SES v2 is REST: the operation is in the path, the sender in the body.
                let (action, sender) = if path.starts_with("/v2/email/outbound-emails") {
                    ("SendEmail", field("FromEmailAddress"))
                } else {
                    (action, field("Source"))
                };
                let identity = sender.map(|s| arn("ses", &format!("identity/{}", address(&s))));
                let mut needs = vec![Need::new(format!("ses:{action}"), identity.unwrap_or_else(|| "*".into()))];
                // A message sent with a configuration set needs the set too, as on AWS.
                if let Some(set) = field("ConfigurationSetName") {
                    needs.push(Need::new(format!("ses:{action}"), arn("ses", &format!("configuration-set/{set}"))));
                }
                needs
            }
            // Who am I needs no permission.
            "sts" if action == "GetCallerIdentity" => Vec::new(),
            other => vec![Need::new(format!("{other}:{action}"), "*")],
        }
    }
}

/// API Gateway's IAM authorization of a route: a valid signature of a key of this stack,
/// and, for a function's key, a role that allows `execute-api:Invoke` on the route's ARN.
pub fn verify_invoke(
    gateway: &crate::gateway::Gateway,
    method: &axum::http::Method,
    uri: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<crate::sigv4::Caller, String> {
    use crate::sigv4;
    let Some(iam) = gateway.runtime.iam() else {
        return sigv4::verify(&gateway.credentials, &gateway.region, method, uri, headers, body);
    };
    let caller =
        sigv4::verify_with(&gateway.credentials, |key| iam.knows(key), &gateway.region, method, uri, headers, body)?;
    let path = uri.parse::<axum::http::Uri>().map_err(|e| e.to_string())?.path().to_owned();
    let invoke = Need::new("execute-api:Invoke", iam.route_arn(method.as_str(), &path));
    match iam.authorize(&caller.access_key, &[invoke]) {
        Ok(()) => Ok(caller),
        Err(Refusal::Denied(message)) => {
            eprintln!("[devstack iam] AccessDenied: {message}");
            Err(message)
        }
        Err(Refusal::UnknownKey) => Err("the access key is not valid here".into()),
    }
}

/// The `iam` block of a route's event for a verified caller, as API Gateway writes it: a
/// function calls with its role's temporary credentials, so it is that assumed role (session
/// named after the function, as Lambda names it); devstack's own key is an IAM user.
pub fn caller_context(account_id: &str, access_key: &str) -> Value {
    let arn = match access_key.strip_prefix(KEY_PREFIX) {
        Some(function) => format!("arn:aws:sts::{account_id}:assumed-role/{function}Role/{function}"),
        None => format!("arn:aws:iam::{account_id}:user/devstack"),
    };
    serde_json::json!({
        "accessKey": access_key,
        "accountId": account_id,
        "callerId": access_key,
        "cognitoIdentity": null,
        "principalOrgId": null,
        "userArn": arn,
        "userId": access_key,
    })
}

/// The address of `Name <address>` or of a bare address.
fn address(sender: &str) -> &str {
    match (sender.rfind('<'), sender.rfind('>')) {
        (Some(start), Some(end)) if start < end => &sender[start + 1..end],
        _ => sender.trim(),
    }
}

/// A SAM policy template's definition with its parameters (`{"Ref": "TopicName"}`) replaced
/// by the values the template gives them.
fn substitute(definition: &Value, arguments: &Map<String, Value>) -> Value {
    match definition {
        Value::Object(map) if map.len() == 1 && map.get("Ref").and_then(Value::as_str).is_some() => {
            let name = map["Ref"].as_str().expect("checked");
            arguments.get(name).cloned().unwrap_or_else(|| definition.clone())
        }
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute(v, arguments))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, arguments)).collect()),
        other => other.clone(),
    }
}

fn parse_statements(document: &Value) -> Result<Vec<Statement>> {
    let statements = match &document["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![document["Statement"].clone()],
        _ => bail!("a policy document has a Statement"),
    };
    statements
        .iter()
        .map(|s| {
            for unsupported in ["Condition", "NotAction", "NotResource", "Principal", "NotPrincipal"] {
                if s.get(unsupported).is_some() {
                    bail!("{unsupported} in identity policies is not supported by devstack's IAM check");
                }
            }
            let allow = match s["Effect"].as_str() {
                Some("Allow") => true,
                Some("Deny") => false,
                other => bail!("Effect {other:?}"),
            };
            let (actions, resources) = (strings(&s["Action"]), strings(&s["Resource"]));
            if actions.is_empty() || resources.is_empty() {
                bail!("a statement has Action and Resource: {s}");
            }
            Ok(Statement { allow, actions, resources })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Physical;

    const TEMPLATE: &str = r#"
Resources:
  Table: { Type: AWS::DynamoDB::Table }
  Topic: { Type: AWS::SNS::Topic }
  Api: { Type: AWS::Serverless::HttpApi }
  Writer:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:PutItem, dynamodb:GetItem]
              Resource: !GetAtt Table.Arn
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !Sub "${Table.Arn}/index/*"
            - Effect: Allow
              Action: sns:Publish
              Resource: "*"
            - Effect: Deny
              Action: sns:Publish
              Resource: !Sub "arn:${AWS::Partition}:sns:*:*:*"
        - SNSPublishMessagePolicy:
            TopicName: !GetAtt Topic.TopicName
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: dynamodb:GetItem
              Resource: !GetAtt Table.Arn
  ReaderInvokes:
    Type: AWS::IAM::Policy
    Properties:
      Roles: [!Ref ReaderRole]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: execute-api:Invoke
            Resource: !Sub "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*/GET/internal/users/*"
"#;

    fn iam() -> Iam {
        let template = Template::parse(TEMPLATE).unwrap();
        let physical = |reference: &str, attributes: &[(&str, &str)]| Physical {
            reference: reference.into(),
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let stack = Stack {
            stack_name: "st".into(),
            parameters: HashMap::from([
                ("AWS::Partition".into(), "aws".into()),
                ("AWS::Region".into(), "r".into()),
                ("AWS::AccountId".into(), "1".into()),
            ]),
            region: "r".into(),
            account_id: "1".into(),
            resources: BTreeMap::from([
                ("Table".into(), physical("t", &[("Arn", "arn:aws:dynamodb:r:1:table/t")])),
                ("Topic".into(), physical("arn:aws:sns:r:1:topic", &[("TopicName", "topic")])),
                ("Api".into(), physical("Api", &[])),
            ]),
            types: BTreeMap::from([("Api".into(), "AWS::Serverless::HttpApi".into())]),
            actions: BTreeMap::new(),
        };
        Iam::from_template(&template, &stack, "admin").unwrap()
    }

    fn denied(result: Result<(), Refusal>) -> String {
        match result {
            Err(Refusal::Denied(message)) => message,
            other => panic!("not denied: {other:?}"),
        }
    }

    #[test]
    fn a_function_calls_an_iam_route_as_its_assumed_role() {
        let function = caller_context("000000000000", &access_key("CheckoutFunction"));
        assert_eq!(function["userArn"], "arn:aws:sts::000000000000:assumed-role/CheckoutFunctionRole/CheckoutFunction");
        assert_eq!(caller_context("000000000000", "test")["userArn"], "arn:aws:iam::000000000000:user/devstack");
    }

    #[test]
    fn a_role_allows_what_its_statements_allow_and_nothing_else() {
        let iam = iam();
        let writer = access_key("Writer");
        let put = iam.needs("dynamodb", "dynamodb.PutItem", "/", br#"{"TableName":"t","Item":{}}"#);
        assert_eq!(put, [Need::new("dynamodb:PutItem", "arn:aws:dynamodb:r:1:table/t")]);
        assert_eq!(iam.authorize(&writer, &put), Ok(()));
        let message = denied(iam.authorize(&access_key("Reader"), &put));
        assert_eq!(
            message,
            "User: arn:aws:sts::1:assumed-role/st-ReaderRole/Reader is not authorized to perform: \
             dynamodb:PutItem on resource: arn:aws:dynamodb:r:1:table/t because no identity-based policy allows \
             the action"
        );
        let query = iam.needs("dynamodb", "dynamodb.Query", "/", br#"{"TableName":"t","IndexName":"ByUser"}"#);
        assert_eq!(iam.authorize(&writer, &query), Ok(()));
        let on_table = iam.needs("dynamodb", "dynamodb.Query", "/", br#"{"TableName":"t"}"#);
        denied(iam.authorize(&writer, &on_table));
        assert_eq!(iam.authorize("admin", &on_table), Ok(()), "devstack's own calls are not checked");
        assert_eq!(iam.authorize("someone", &on_table), Err(Refusal::UnknownKey));
    }

    #[test]
    fn a_transaction_needs_each_items_action_on_each_table() {
        let iam = iam();
        let body = br#"{"TransactItems":[{"Put":{"TableName":"t"}},{"ConditionCheck":{"TableName":"t"}}]}"#;
        let needs = iam.needs("dynamodb", "dynamodb.TransactWriteItems", "/", body);
        let table = "arn:aws:dynamodb:r:1:table/t";
        assert_eq!(needs, [Need::new("dynamodb:PutItem", table), Need::new("dynamodb:ConditionCheckItem", table)]);
        let message = denied(iam.authorize(&access_key("Writer"), &needs));
        assert!(message.contains("dynamodb:ConditionCheckItem"), "{message}");
    }

    #[test]
    fn an_explicit_deny_wins_and_sms_has_no_resource() {
        let iam = iam();
        let writer = access_key("Writer");
        let sms = iam.needs("sns", "sns.Publish", "/", b"Action=Publish&PhoneNumber=%2B15550100&Message=hi");
        assert_eq!(sms, [Need::new("sns:Publish", "*")]);
        assert_eq!(iam.authorize(&writer, &sms), Ok(()));
        let topic = iam.needs("sns", "sns.Publish", "/", b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Ar%3A1%3Atopic");
        let message = denied(iam.authorize(&writer, &topic));
        assert!(message.ends_with("with an explicit deny in an identity-based policy"), "{message}");
    }

    #[test]
    fn routes_are_invoked_as_their_arns_and_unused_grants_are_listed() {
        let iam = iam();
        let reader = access_key("Reader");
        let user = Need::new("execute-api:Invoke", iam.route_arn("GET", "/internal/users/u1"));
        assert_eq!(user.resource, "arn:aws:execute-api:r:1:Api/$default/GET/internal/users/u1");
        assert_eq!(iam.authorize(&reader, std::slice::from_ref(&user)), Ok(()));
        let other = Need::new("execute-api:Invoke", iam.route_arn("POST", "/internal/orders"));
        denied(iam.authorize(&reader, &[other]));
        let unused: Vec<String> = iam.unused().iter().map(|g| format!("{} {}", g.function, g.action)).collect();
        assert_eq!(
            unused,
            ["Reader dynamodb:GetItem", "Writer dynamodb:GetItem", "Writer dynamodb:PutItem", "Writer dynamodb:Query"]
                .into_iter()
                .chain(["Writer sns:Publish"; 2])
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn sam_policy_templates_expand_as_aws_defines_them() {
        let grants = iam().grants();
        let publish =
            Grant { function: "Writer".into(), action: "sns:Publish".into(), resource: "arn:aws:sns:r:1:topic".into() };
        assert!(grants.contains(&publish), "{grants:?}");
        let unknown = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Policies:\n        - S3CrudPolicy: {BucketName: b}\n";
        let error = Iam::from_template(&Template::parse(unknown).unwrap(), &Stack::default(), "admin").unwrap_err();
        assert!(error.to_string().contains("S3CrudPolicy"), "{error}");
    }
}
