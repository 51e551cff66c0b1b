//! Static checks of template.yaml: internal routes are IAM-only with the documented guards,
//! and no grant is broader than the allow list says.

use super::*;

// ---------------------------------------------------------------- static: routes and IAM

#[test]
fn internal_routes_are_iam_only_and_every_guard_is_the_documented_one() {
    let document: Value = serde_norway::from_str(
        &std::fs::read_to_string(devstack::repo_root().join("infra/openapi.yaml")).expect("infra/openapi.yaml"),
    )
    .expect("OpenAPI parses");
    let schemes = &document["components"]["securitySchemes"];
    for route in routes() {
        assert_eq!(
            route.path.starts_with("/internal/"),
            route.guard == Guard::Iam,
            "{}: /internal/ routes, and only they, take SigV4 (AWS_IAM)",
            route.key()
        );
        let operation = &document["paths"][&route.path][route.method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{} is not in infra/openapi.yaml", route.key());
        let security = operation.get("security").or(document.get("security")).cloned().unwrap_or(json!([]));
        let documented: BTreeSet<&str> = security
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|requirement| requirement.as_object().unwrap().keys())
            .map(|name| match (&schemes[name]["type"], &schemes[name]["scheme"], &schemes[name]["name"]) {
                (t, s, _) if t == "http" && s == "bearer" => "token",
                (t, _, n) if t == "apiKey" && n == "Authorization" => "sigv4",
                _ => panic!("{}: unknown security scheme {name}", route.key()),
            })
            .collect();
        let deployed = match route.guard {
            Guard::Public => BTreeSet::new(),
            Guard::Token(_) => BTreeSet::from(["token"]),
            Guard::Iam => BTreeSet::from(["sigv4"]),
        };
        assert_eq!(
            deployed,
            documented,
            "{}: template.yaml and the OpenAPI document disagree on its guard",
            route.key()
        );
    }
}

/// A grant broader than one action on named resources: a wildcard action, `*` as the
/// resource, `NotAction`/`NotResource`, `Principal: *`, or an AWS managed policy (whose
/// statements are not in the template; SAM attaches some by itself).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    owner: String,
    source: String,
    what: String,
}

/// A broad grant we accept, and why. `owner` "*" = any function.
struct Allowed {
    owner: &'static str,
    source: &'static str,
    what: &'static str,
    reason: &'static str,
}

const ALLOWED: &[Allowed] = &[
    Allowed {
        owner: "*",
        source: "managed AWSLambdaBasicExecutionRole",
        what: "managed policy",
        reason: "SAM attaches it to every function role it generates (logs:CreateLogGroup, CreateLogStream, \
                 PutLogEvents on *); only hand-written roles, one per function, would avoid it",
    },
    Allowed {
        owner: "*",
        source: "managed AWSXrayWriteOnlyAccess",
        what: "managed policy",
        reason: "Tracing: Active; xray:PutTraceSegments, PutTelemetryRecords and GetSampling* have no \
                 resource-level permissions (Service Authorization Reference), so * is their only form",
    },
    Allowed {
        owner: "*",
        source: "managed AWSLambdaSQSQueueExecutionRole",
        what: "managed policy",
        reason: "SAM attaches it for every SQS event source (Lambda's poller reads with the function's role); \
                 only hand-written roles would scope it to the one queue",
    },
    Allowed {
        owner: "NotifyFunction",
        source: "inline",
        what: "sns:Publish on *",
        reason: "SMS publishes to phone numbers, which have no ARN: IAM only \
                 accepts * for them; a Deny beside it takes every SNS ARN (topics, endpoints) away, so * is \
                 phone numbers only (tests/tests/system/iam.rs shows a topic refused)",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "action kms:*",
        reason: "the default key policy statement: the account (root) administers its key and delegates use to \
                 IAM; without it the key cannot be managed",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "kms:* on *",
        reason: "in a key policy, Resource * means this key (the documented form)",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "action kms:GenerateDataKey*",
        reason: "what AWS documents for CloudWatch alarms publishing to an SSE-KMS encrypted topic",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "kms:Decrypt on *",
        reason: "in a key policy, Resource * means this key (the documented form)",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "kms:GenerateDataKey* on *",
        reason: "in a key policy, Resource * means this key (the documented form)",
    },
];

/// The statements of the SAM policy templates we use, as aws-sam-translator's
/// `policy_templates.json` defines them: (actions, whether the resource is `*`). A template
/// not listed here fails the test until its definition is read and added.
fn sam_policy_template(name: &str) -> Vec<(Vec<&'static str>, bool)> {
    match name {
        "SNSPublishMessagePolicy" => vec![(vec!["sns:Publish"], false)],
        "AWSSecretsManagerGetSecretValuePolicy" => vec![(vec!["secretsmanager:GetSecretValue"], false)],
        "SSMParameterReadPolicy" => vec![
            (vec!["ssm:DescribeParameters"], true),
            (vec!["ssm:GetParameters", "ssm:GetParameter", "ssm:GetParametersByPath"], false),
        ],
        other => panic!("SAM policy template {other}: read its definition and add it to sam_policy_template"),
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// A resource as written: a string, or the text of a `!Sub`.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        _ => match &value["Fn::Sub"] {
            Value::String(s) => Some(s.clone()),
            Value::Array(parts) => parts.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        },
    }
}

/// The broad grants of one policy statement (Deny statements only take away).
fn broad(owner: &str, source: &str, statement: &Value, found: &mut BTreeSet<Grant>) {
    if statement["Effect"] != "Allow" {
        return;
    }
    let mut grant = |what: String| {
        found.insert(Grant { owner: owner.into(), source: source.into(), what });
    };
    let actions: Vec<String> = as_list(&statement["Action"]).iter().filter_map(text).collect();
    for action in &actions {
        if action.contains('*') {
            grant(format!("action {action}"));
        }
    }
    for negated in ["NotAction", "NotResource"] {
        if statement.get(negated).is_some() {
            grant(negated.to_owned());
        }
    }
    if as_list(&statement["Resource"]).iter().any(|r| text(r).as_deref() == Some("*")) {
        for action in &actions {
            grant(format!("{action} on *"));
        }
    }
    let principal = &statement["Principal"];
    let anyone = principal == "*" || as_list(&principal["AWS"]).iter().any(|p| p == "*");
    if anyone && statement.get("Condition").is_none() {
        grant("Principal * without a condition".into());
    }
}

fn broad_in_document(owner: &str, source: &str, document: &Value, found: &mut BTreeSet<Grant>) -> usize {
    let statements = as_list(&document["Statement"]);
    for statement in &statements {
        broad(owner, source, statement, found);
    }
    statements.len()
}

/// The AWS managed policies SAM attaches to a function's generated role by itself, as
/// aws-sam-translator does: the basic execution role always, X-Ray's for `Tracing: Active`,
/// the VPC one for `VpcConfig`, and one per polled event source.
fn sam_managed_policies(properties: &Value, tracing_default: &Value) -> Vec<String> {
    let mut policies = vec!["AWSLambdaBasicExecutionRole"];
    if properties.get("Tracing").unwrap_or(tracing_default) == "Active" {
        policies.push("AWSXrayWriteOnlyAccess");
    }
    if properties.get("VpcConfig").is_some() {
        policies.push("AWSLambdaVPCAccessExecutionRole");
    }
    for event in properties["Events"].as_object().into_iter().flatten().map(|(_, e)| e) {
        policies.extend(match event["Type"].as_str() {
            Some("SQS") => Some("AWSLambdaSQSQueueExecutionRole"),
            Some("Kinesis") => Some("AWSLambdaKinesisExecutionRole"),
            Some("DynamoDB") => Some("AWSLambdaDynamoDBExecutionRole"),
            Some("MSK") => Some("AWSLambdaMSKExecutionRole"),
            _ => None,
        });
    }
    policies.into_iter().map(|name| format!("managed {name}")).collect()
}

/// The managed policy name of an ARN or a name.
fn managed(name: &Value) -> String {
    let name = text(name).unwrap_or_else(|| panic!("a managed policy named by an intrinsic: {name}"));
    format!("managed {}", name.rsplit('/').next().unwrap())
}

#[test]
fn iam_grants_nothing_broad_beyond_the_allow_list() {
    let template = system_tests::template();
    let tracing_default = template.globals.get("Function").map(|f| f["Tracing"].clone()).unwrap_or_default();
    let mut found = BTreeSet::new();
    // Kinds that carry no policy; a new kind must be classified here before the test passes.
    let policy_free = [
        "AWS::Serverless::HttpApi",
        "AWS::Logs::LogGroup",
        "AWS::SSM::Parameter",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::SES::EmailIdentity",
        "AWS::SES::ConfigurationSet",
        "AWS::SES::ConfigurationSetEventDestination",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::S3::Bucket",
        "AWS::CloudFront::OriginAccessControl",
        "AWS::CloudFront::Distribution",
    ];
    for (id, resource) in &template.resources {
        let properties = &resource.properties;
        match resource.kind.as_str() {
            "AWS::Serverless::Function" => {
                if let Some(role) = properties.get("Role") {
                    let local = role["Fn::GetAtt"][0].as_str().or(role["Ref"].as_str());
                    let kind = local.and_then(|r| template.resources.get(r)).map(|r| r.kind.as_str());
                    assert_eq!(kind, Some("AWS::IAM::Role"), "{id}: a role this test cannot see");
                    continue;
                }
                for policy in sam_managed_policies(properties, &tracing_default) {
                    found.insert(Grant { owner: id.clone(), source: policy, what: "managed policy".into() });
                }
                let mut statements = 0;
                for policy in as_list(&properties["Policies"]) {
                    if policy.is_string() {
                        found.insert(Grant {
                            owner: id.clone(),
                            source: managed(&policy),
                            what: "managed policy".into(),
                        });
                        statements += 1;
                    } else if policy.get("Statement").is_some() {
                        statements += broad_in_document(id, "inline", &policy, &mut found);
                    } else {
                        let (name, _) =
                            policy.as_object().and_then(|o| o.iter().next()).expect("a SAM policy template");
                        for (actions, everything) in sam_policy_template(name) {
                            // The template's statement, its scoped resource stood in for.
                            let resource = if everything { "*" } else { "arn:scoped" };
                            let statement = json!({"Effect": "Allow", "Action": actions, "Resource": resource});
                            broad(id, name, &statement, &mut found);
                            statements += 1;
                        }
                    }
                }
                assert!(statements > 0 || properties.get("Policies").is_none(), "{id}: Policies not understood");
            }
            "AWS::IAM::Role" => {
                for policy in as_list(&properties["Policies"]) {
                    broad_in_document(id, "inline", &policy["PolicyDocument"], &mut found);
                }
                for arn in as_list(&properties["ManagedPolicyArns"]) {
                    found.insert(Grant { owner: id.clone(), source: managed(&arn), what: "managed policy".into() });
                }
            }
            "AWS::IAM::Policy"
            | "AWS::IAM::ManagedPolicy"
            | "AWS::SQS::QueuePolicy"
            | "AWS::SNS::TopicPolicy"
            | "AWS::S3::BucketPolicy" => {
                let source = resource.kind.rsplit("::").next().unwrap();
                assert!(
                    broad_in_document(id, source, &properties["PolicyDocument"], &mut found) > 0,
                    "{id}: no statements"
                );
            }
            "AWS::KMS::Key" => {
                assert!(
                    broad_in_document(id, "KeyPolicy", &properties["KeyPolicy"], &mut found) > 0,
                    "{id}: no key policy"
                );
            }
            kind => assert!(policy_free.contains(&kind), "{id}: {kind} may carry a policy: teach this test to read it"),
        }
    }

    let allowed = |grant: &Grant| {
        ALLOWED.iter().any(|a| {
            let owner = a.owner == grant.owner
                || (a.owner == "*" && template.resources[&grant.owner].kind == "AWS::Serverless::Function");
            owner && a.source == grant.source && a.what == grant.what
        })
    };
    let refused: Vec<String> =
        found.iter().filter(|g| !allowed(g)).map(|g| format!("{}: {} grants {}", g.owner, g.source, g.what)).collect();
    assert!(
        refused.is_empty(),
        "broad IAM grants; scope them or allow-list them with a reason:\n{}",
        refused.join("\n")
    );
    let stale: Vec<&str> = ALLOWED
        .iter()
        .filter(|a| {
            !found.iter().any(|g| (a.owner == "*" || a.owner == g.owner) && a.source == g.source && a.what == g.what)
        })
        .map(|a| a.reason)
        .collect();
    assert!(stale.is_empty(), "allow-list entries nothing needs any more (remove them): {stale:#?}");
}
