//! A proxy for the AWS calls between the functions and the emulator, for benchmarks and
//! fault tests. It counts calls by operation (`dynamodb.TransactWriteItems`, `sns.Publish`,
//! ...), so a benchmark can say what a checkout costs, and it injects faults: from `cut` to
//! `restore`, chosen operations (or all) find the emulator unreachable, their connection
//! closed without an answer, as when the network path to AWS breaks. Started with the stack's
//! roles ([`AwsProxy::start_checked`]), it is also where IAM is enforced: a call its caller's
//! role does not allow gets the service's AccessDenied, in the service's protocol.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::iam::{Iam, Refusal};

/// Calls per operation.
pub type Counts = BTreeMap<String, u64>;

/// DynamoDB on-demand request units of the forwarded calls, as AWS would bill them, estimated
/// from each call's request and answer (see [`request_units`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RequestUnits {
    pub read: f64,
    pub write: f64,
}

#[derive(Clone)]
pub struct AwsProxy {
    pub url: String,
    state: Arc<State>,
}

struct State {
    upstream: String,
    http: reqwest::Client,
    /// The calls forwarded, by the function that signed them (`""` for unsigned ones).
    by_caller: Mutex<BTreeMap<String, Counts>>,
    units: Mutex<RequestUnits>,
    /// Operation prefixes that are cut ("" cuts every call).
    cut: Mutex<Vec<String>>,
    refused: Mutex<Counts>,
    iam: Option<Arc<Iam>>,
    /// Where each traced call is shown (the console's waterfall), once set.
    console: std::sync::OnceLock<Arc<crate::console::Console>>,
}

/// What a cut call gets: hyper closes the connection instead of answering.
#[derive(Debug)]
struct Unreachable;

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cut by the fault proxy")
    }
}

impl std::error::Error for Unreachable {}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl AwsProxy {
    /// Listens on an ephemeral local port and forwards everything to `upstream`.
    pub async fn start(upstream: &str) -> Result<Self> {
        Self::listen(upstream, None).await
    }

    /// As [`AwsProxy::start`], and every call is checked against its caller's role.
    pub async fn start_checked(upstream: &str, iam: Arc<Iam>) -> Result<Self> {
        Self::listen(upstream, Some(iam)).await
    }

    async fn listen(upstream: &str, iam: Option<Arc<Iam>>) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the proxy")?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            by_caller: Mutex::default(),
            units: Mutex::default(),
            cut: Mutex::default(),
            refused: Mutex::default(),
            iam,
            console: std::sync::OnceLock::new(),
        });
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| forward(state.clone(), request));
                    // An error here is a cut connection or a client gone: nothing to do.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, state })
    }

    /// The calls forwarded so far.
    pub fn counts(&self) -> Counts {
        self.counts_of(|_| true)
    }

    /// The calls forwarded so far made by the functions `caller` keeps (by name; `""` for
    /// unsigned calls).
    pub fn counts_of(&self, caller: impl Fn(&str) -> bool) -> Counts {
        let mut counts = Counts::new();
        for (_, calls) in lock(&self.state.by_caller).iter().filter(|(name, _)| caller(name)) {
            for (operation, n) in calls {
                *counts.entry(operation.clone()).or_default() += n;
            }
        }
        counts
    }

    /// DynamoDB's request units of the calls forwarded so far.
    pub fn request_units(&self) -> RequestUnits {
        *lock(&self.state.units)
    }

    /// The calls refused by a cut so far.
    pub fn refused(&self) -> Counts {
        lock(&self.state.refused).clone()
    }

    /// From now on, every call whose operation starts with `prefix` (e.g. `sns.Publish`, or
    /// `""` for every call) finds the emulator unreachable.
    pub fn cut(&self, prefix: &str) {
        lock(&self.state.cut).push(prefix.to_owned());
    }

    /// From now on, every call made in a trace (a function's, during an invocation), forwarded
    /// or refused, is a span of that trace in `console`.
    pub fn record_into(&self, console: Arc<crate::console::Console>) {
        let _ = self.state.console.set(console);
    }

    /// Lifts every cut.
    pub fn restore(&self) {
        lock(&self.state.cut).clear();
    }
}

/// The calls between two snapshots.
pub fn difference(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(operation, n)| (operation.clone(), n - before.get(operation).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn forward(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Unreachable> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(answer(StatusCode::BAD_REQUEST, HeaderMap::new(), Bytes::from("unreadable body")));
    };
    let operation = operation(&parts.headers, &body);
    // A traced call (a function's, during an invocation) is a span for the console, refused ones too.
    let start_ms = crate::console::now_ms();
    let record = |outcome: String| {
        let Some(console) = state.console.get() else { return };
        let header = parts.headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok());
        let Some(trace_id) = header.and_then(crate::xray::trace_id_of) else { return };
        let caller = signer(&parts.headers).and_then(|(key, _)| key.strip_prefix(crate::iam::KEY_PREFIX));
        console.record(crate::console::Span {
            trace_id: trace_id.to_owned(),
            correlation_ids: Vec::new(),
            kind: "aws",
            name: operation.clone(),
            caller: caller.map(str::to_owned),
            target: crate::console::call_target(&body),
            start_ms,
            duration_ms: crate::console::now_ms() - start_ms,
            init_ms: None,
            outcome,
        });
    };
    if lock(&state.cut).iter().any(|prefix| operation.starts_with(prefix.as_str())) {
        record("cut by the fault proxy".into());
        *lock(&state.refused).entry(operation).or_default() += 1;
        return Err(Unreachable);
    }
    if let Some(iam) = &state.iam {
        let (key, service) = signer(&parts.headers).unwrap_or_default();
        let needs = iam.needs(service, &operation, parts.uri.path(), &body);
        if let Err(refusal) = iam.authorize(key, &needs) {
            if let Refusal::Denied(message) = &refusal {
                eprintln!("[devstack iam] AccessDenied: {message}");
            }
            record("AccessDenied".into());
            return Ok(refused(&parts.headers, service, &refusal));
        }
    }
    let caller = signer(&parts.headers).and_then(|(key, _)| key.strip_prefix(crate::iam::KEY_PREFIX)).unwrap_or("");
    *lock(&state.by_caller).entry(caller.to_owned()).or_default().entry(operation.clone()).or_default() += 1;

    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut headers = parts.headers.clone();
    headers.remove("host");
    let sent = state
        .http
        .request(parts.method.clone(), format!("{}{path}", state.upstream))
        .headers(headers)
        .body(body.clone())
        .send()
        .await;
    let response = match sent {
        Ok(upstream) => {
            let (status, headers) = (upstream.status(), upstream.headers().clone());
            let answered = upstream.bytes().await.unwrap_or_default();
            if status.is_success() && operation.starts_with("dynamodb.") {
                let units = request_units(&operation, &body, &answered);
                let mut total = lock(&state.units);
                total.read += units.read;
                total.write += units.write;
            }
            answer(status, headers, answered)
        }
        Err(error) => answer(StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::from(error.to_string())),
    };
    record(response.status().as_u16().to_string());
    Ok(response)
}

fn answer(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The access key and the service of the request's SigV4 credential scope.
fn signer(headers: &HeaderMap) -> Option<(&str, &str)> {
    let authorization = headers.get("authorization")?.to_str().ok()?;
    let credential = authorization.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let scope: Vec<&str> = credential.split('/').collect();
    Some((scope.first()?, scope.get(3)?))
}

/// A refused call's answer, as the service gives it in its protocol, so that the SDK in the
/// function reports AccessDenied (or an invalid token) as it would on AWS.
fn refused(request: &HeaderMap, service: &str, refusal: &Refusal) -> Response<Full<Bytes>> {
    let (message, json_code, query_code, status) = match refusal {
        Refusal::Denied(message) => {
            let query_code = if service == "sns" { "AuthorizationError" } else { "AccessDenied" };
            (message.as_str(), "AccessDeniedException", query_code, StatusCode::FORBIDDEN)
        }
        Refusal::UnknownKey => (
            "The security token included in the request is invalid.",
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            StatusCode::FORBIDDEN,
        ),
    };
    let mut headers = HeaderMap::new();
    let content_type = request.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body = if content_type.starts_with("application/x-amz-json") {
        // The JSON protocols (DynamoDB, SQS, SSM, Secrets Manager) answer 400 with __type.
        headers.insert("content-type", content_type.parse().expect("it was a header"));
        if service == "sqs" {
            // SQS's JSON protocol also names the error its query protocol would.
            headers.insert("x-amzn-query-error", format!("{query_code};Sender").parse().expect("a header"));
        }
        let body = serde_json::json!({"__type": format!("com.amazon.coral.service#{json_code}"), "message": message});
        return answer(StatusCode::BAD_REQUEST, headers, Bytes::from(body.to_string()));
    } else if content_type.starts_with("application/json") {
        // REST-JSON (SES v2): the code in a header, the message in the body.
        headers.insert("content-type", "application/json".parse().expect("a header"));
        headers.insert("x-amzn-errortype", json_code.parse().expect("a header"));
        serde_json::json!({"message": message}).to_string()
    } else {
        // The query protocols (SNS, SES, STS): an XML ErrorResponse.
        headers.insert("content-type", "text/xml".parse().expect("a header"));
        let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code><Message>{escaped}</Message></Error>\
             <RequestId>{}</RequestId></ErrorResponse>",
            ulid::Ulid::generate()
        )
    };
    answer(status, headers, Bytes::from(body))
}

/// `service.Operation`: JSON protocols name it in `X-Amz-Target`, query protocols (SNS) in
/// the form body's `Action`.
fn operation(headers: &HeaderMap, body: &Bytes) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (service, action) = target.split_once('.').unwrap_or(("", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "dynamodb",
            "AmazonSQS" => "sqs",
            "AmazonSSM" => "ssm",
            "secretsmanager" => "secretsmanager",
            other => other,
        };
        return format!("{service}.{action}");
    }
    let action = form_urlencoded::parse(body)
        .find(|(name, _)| name == "Action")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let service = signer(headers).map(|(_, service)| service).unwrap_or("unknown");
    format!("{service}.{action}")
}

/// What one DynamoDB call costs in on-demand request units, by AWS's rules: a write is one
/// unit per KB of item, a strongly consistent read one per 4 KB read (half when eventually
/// consistent), a transaction twice that per item, a query or scan by the size of what it
/// read. The sizes are those of the items' DynamoDB JSON (an upper bound: the attribute
/// encoding AWS bills by is more compact); an update is taken as one unit per KB of its
/// request, as the call does not show the stored item.
pub fn request_units(operation: &str, request: &[u8], answer: &[u8]) -> RequestUnits {
    use serde_json::Value;
    const KB: f64 = 1024.0;
    let request: Value = serde_json::from_slice(request).unwrap_or_default();
    let answer: Value = serde_json::from_slice(answer).unwrap_or_default();
    let size = |v: &Value| if v.is_null() { 0.0 } else { v.to_string().len() as f64 };
    let write = |bytes: f64| (bytes / KB).ceil().max(1.0);
    let read = |bytes: f64, consistent: bool| (bytes / (4.0 * KB)).ceil().max(1.0) * if consistent { 1.0 } else { 0.5 };
    let consistent = request["ConsistentRead"] == true;
    let action = operation.trim_start_matches("dynamodb.");
    let items = |key: &str| request[key].as_array().cloned().unwrap_or_default();
    match action {
        "PutItem" => RequestUnits { read: 0.0, write: write(size(&request["Item"])) },
        "UpdateItem" | "DeleteItem" => RequestUnits { read: 0.0, write: write(size(&request)) },
        "GetItem" => RequestUnits { read: read(size(&answer["Item"]), consistent), write: 0.0 },
        "Query" | "Scan" => {
            let bytes: f64 = answer["Items"].as_array().into_iter().flatten().map(size).sum();
            RequestUnits { read: read(bytes, consistent), write: 0.0 }
        }
        "TransactWriteItems" => {
            let bytes = |item: &Value| {
                let (_, inner) =
                    item.as_object().and_then(|o| o.iter().next()).unwrap_or((&String::new(), &Value::Null));
                inner.get("Item").map(size).unwrap_or_else(|| size(inner))
            };
            RequestUnits { read: 0.0, write: items("TransactItems").iter().map(|i| 2.0 * write(bytes(i))).sum() }
        }
        "TransactGetItems" => {
            let answers = answer["Responses"].as_array().cloned().unwrap_or_default();
            let read_units = (0..items("TransactItems").len())
                .map(|i| 2.0 * read(answers.get(i).map(|r| size(&r["Item"])).unwrap_or(0.0), true))
                .sum();
            RequestUnits { read: read_units, write: 0.0 }
        }
        "BatchWriteItem" => {
            let requests = request["RequestItems"].as_object().into_iter().flat_map(|t| t.values());
            let write_units = requests
                .flat_map(|r| r.as_array().cloned().unwrap_or_default())
                .map(|r| write(size(&r["PutRequest"]["Item"])))
                .sum();
            RequestUnits { read: 0.0, write: write_units }
        }
        "BatchGetItem" => {
            let tables = answer["Responses"].as_object().into_iter().flat_map(|t| t.values());
            let read_units = tables
                .flat_map(|t| t.as_array().cloned().unwrap_or_default())
                .map(|item| read(size(&item), consistent))
                .sum();
            RequestUnits { read: read_units, write: 0.0 }
        }
        // Control-plane calls (DescribeTable, ...) are not billed per request.
        _ => RequestUnits::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_units_follow_dynamodbs_billing_rules() {
        let units = |op: &str, request: serde_json::Value, answer: serde_json::Value| {
            request_units(op, request.to_string().as_bytes(), answer.to_string().as_bytes())
        };
        let small = serde_json::json!({"pk": {"S": "a"}});
        let big = serde_json::json!({"pk": {"S": "a".repeat(5000)}});
        assert_eq!(units("dynamodb.PutItem", serde_json::json!({"Item": small}), serde_json::json!({})).write, 1.0);
        assert_eq!(units("dynamodb.PutItem", serde_json::json!({"Item": big}), serde_json::json!({})).write, 5.0);
        // Reads: half a unit eventually consistent, one strongly; per 4 KB.
        assert_eq!(units("dynamodb.GetItem", serde_json::json!({}), serde_json::json!({"Item": small})).read, 0.5);
        let strong =
            units("dynamodb.GetItem", serde_json::json!({"ConsistentRead": true}), serde_json::json!({"Item": big}));
        assert_eq!(strong.read, 2.0);
        // A transaction: twice per item, whatever the kind.
        let transaction = serde_json::json!({"TransactItems": [
            {"Put": {"Item": small, "TableName": "t"}},
            {"Update": {"Key": small, "TableName": "t", "UpdateExpression": "SET x = :x"}},
            {"ConditionCheck": {"Key": small, "TableName": "t"}},
        ]});
        assert_eq!(units("dynamodb.TransactWriteItems", transaction, serde_json::json!({})).write, 6.0);
        let query = serde_json::json!({"Items": [small, small, small]});
        assert_eq!(units("dynamodb.Query", serde_json::json!({}), query).read, 0.5);
        assert_eq!(
            units("dynamodb.DescribeTable", serde_json::json!({}), serde_json::json!({})),
            RequestUnits::default()
        );
    }

    #[test]
    fn operations_are_named_from_the_target_header_or_the_action() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", "DynamoDB_20120810.TransactWriteItems".parse().unwrap());
        assert_eq!(operation(&headers, &Bytes::new()), "dynamodb.TransactWriteItems");

        let mut headers = HeaderMap::new();
        let auth = "AWS4-HMAC-SHA256 Credential=test/20261126/us-east-1/sns/aws4_request, SignedHeaders=host";
        headers.insert("authorization", auth.parse().unwrap());
        assert_eq!(operation(&headers, &Bytes::from("Action=Publish&Version=2010-03-31")), "sns.Publish");
    }

    #[test]
    fn a_refusal_is_answered_in_the_callers_protocol() {
        let denied = Refusal::Denied("User: u is not authorized to perform: x:Y on resource: r".into());
        let with = |content_type: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", content_type.parse().unwrap());
            headers
        };
        let json = refused(&with("application/x-amz-json-1.0"), "dynamodb", &denied);
        assert_eq!(json.status(), StatusCode::BAD_REQUEST);
        let rest = refused(&with("application/json"), "ses", &denied);
        assert_eq!(rest.status(), StatusCode::FORBIDDEN);
        assert_eq!(&rest.headers()["x-amzn-errortype"], "AccessDeniedException");
        let query = refused(&with("application/x-www-form-urlencoded"), "ses", &Refusal::UnknownKey);
        assert_eq!(query.status(), StatusCode::FORBIDDEN);
        assert_eq!(&query.headers()["content-type"], "text/xml");
        let sqs = refused(&with("application/x-amz-json-1.0"), "sqs", &denied);
        assert_eq!(&sqs.headers()["x-amzn-query-error"], "AccessDenied;Sender");
    }

    #[test]
    fn differences_keep_only_what_happened_in_between() {
        let before = Counts::from([("a".to_owned(), 2), ("b".to_owned(), 1)]);
        let after = Counts::from([("a".to_owned(), 5), ("b".to_owned(), 1), ("c".to_owned(), 1)]);
        assert_eq!(difference(&before, &after), Counts::from([("a".to_owned(), 3), ("c".to_owned(), 1)]));
    }
}
