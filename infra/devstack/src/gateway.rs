//! The HTTP API, as API Gateway (HTTP API, payload format 2.0) serves it: the template's
//! routes (most specific match wins, else the `$default` route), the declared authorizer or
//! IAM check per route, the request event API Gateway sends, and the function's answer turned
//! back into HTTP. Where API Gateway answers by itself (no route and no `$default`, a refused
//! signature or authorizer) it answers as API Gateway does: `{"message": ...}` JSON. Too
//! large and function failures are problem+json, with devstack's diagnosis.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get_service;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use shared::{CorrelationId, Problem};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::functions::{AuthorizerSpec, DEFAULT_ROUTE, FunctionSpec, RouteAuth};
use crate::runtime::{InvokeError, Runtime};
use crate::sigv4::LocalCredentials;
use crate::throttle::Throttle;

/// API Gateway's payload limit for HTTP APIs.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// One route: `METHOD /path/{param}/{greedy+}` -> function.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    segments: Vec<Segment>,
    pub function: String,
    pub auth: RouteAuth,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Route {
    pub fn new(method: &str, path: &str, function: &str, auth: RouteAuth) -> Result<Self> {
        let mut segments = Vec::new();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if name.ends_with('+') => {
                    if i + 1 != parts.len() {
                        bail!("{path}: a greedy {{{name}}} must be the last segment");
                    }
                    Segment::Greedy(name.trim_end_matches('+').to_owned())
                }
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        Ok(Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            segments,
            function: function.to_owned(),
            auth,
        })
    }

    pub fn key(&self) -> String {
        if self.is_default() { DEFAULT_ROUTE.to_owned() } else { format!("{} {}", self.method, self.path) }
    }

    /// The `$default` route: it takes what no other route matches.
    pub fn is_default(&self) -> bool {
        self.path == DEFAULT_ROUTE
    }

    /// The path parameters if `path` (raw, percent-encoded) matches this route's path.
    fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(i).map(|p| decode(p)) != Some(literal.clone()) {
                        return None;
                    }
                }
                Segment::Param(name) => params.push((name.clone(), decode(parts.get(i)?))),
                Segment::Greedy(name) => {
                    let rest = parts.get(i..).filter(|r| !r.is_empty())?;
                    return Some({
                        params.push((name.clone(), decode(&rest.join("/"))));
                        params
                    });
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }

    /// Higher is more specific: literals beat parameters beat greedy, left to right;
    /// a method beats `ANY`.
    fn specificity(&self) -> (Vec<u8>, u8) {
        let per_segment = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 3,
                Segment::Param(_) => 2,
                Segment::Greedy(_) => 1,
            })
            .collect();
        (per_segment, u8::from(self.method != "ANY"))
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Picks the route for `method` and `path`, as API Gateway does: the most specific match,
/// else the `$default` route; `None` is API Gateway's own 404 (HTTP APIs answer an unknown
/// method on a known path with 404 too: telling it apart is the `$default` function's job).
pub fn find_route<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<(&'a Route, Vec<(String, String)>)> {
    routes
        .iter()
        .filter(|r| !r.is_default() && (r.method == "ANY" || r.method == method))
        .filter_map(|r| r.matches(path).map(|params| (r, params)))
        .max_by(|(a, _), (b, _)| a.specificity().cmp(&b.specificity()))
        .or_else(|| routes.iter().find(|r| r.is_default()).map(|r| (r, Vec::new())))
}

/// The gateway's state.
pub struct Gateway {
    pub routes: Vec<Route>,
    pub authorizers: Vec<AuthorizerSpec>,
    pub runtime: Runtime,
    pub credentials: LocalCredentials,
    pub account_id: String,
    pub region: String,
    pub throttle: Throttle,
    /// The web app's built files (`web/dist`), served at `/` and `/assets/`.
    pub web: Option<PathBuf>,
}

impl Gateway {
    pub fn new(
        functions: &[FunctionSpec],
        authorizers: Vec<AuthorizerSpec>,
        runtime: Runtime,
        credentials: LocalCredentials,
        account_id: &str,
        region: &str,
    ) -> Result<Self> {
        let mut routes = Vec::new();
        for function in functions {
            for route in &function.routes {
                if let RouteAuth::Lambda(name) = &route.auth
                    && !authorizers.iter().any(|a| &a.name == name)
                {
                    bail!("{} {}: no authorizer named {name} on the HTTP API", route.method, route.path);
                }
                routes.push(Route::new(&route.method, &route.path, &function.name, route.auth.clone())?);
            }
        }
        if routes.iter().filter(|r| r.is_default()).count() > 1 {
            bail!("more than one function declares the HTTP API's $default route");
        }
        Ok(Self {
            routes,
            authorizers,
            runtime,
            credentials,
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            throttle: Throttle::default(),
            web: None,
        })
    }

    /// The gateway, throttling its routes as the stage's settings say.
    pub fn with_throttle(self, throttle: Throttle) -> Self {
        Self { throttle, ..self }
    }

    /// The gateway, also serving the web app built into `dist` (`make web`).
    pub fn with_web(self, dist: PathBuf) -> Self {
        Self { web: Some(dist), ..self }
    }

    /// The API as a service to serve: each request knows its TCP peer (`sourceIp`). With a web
    /// app, `GET /` is its page and `GET /assets/...` its files (on AWS they are meant for S3
    /// behind CloudFront: template.yaml's WebDistribution); every other request, and every other
    /// method on those paths, is the API's.
    pub fn service(self: Arc<Self>) -> IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
        let mut router = Router::new();
        if let Some(dist) = &self.web {
            // The page names its assets by content hash: they never change, the page always may.
            let page = SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let assets = SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            let index = ServeFile::new(dist.join("index.html"));
            router = router
                .route("/", get_service(index.clone()).layer(page.clone()).fallback(handle))
                .route("/index.html", get_service(index).layer(page.clone()).fallback(handle))
                .route("/assets/{*file}", get_service(ServeDir::new(dist)).layer(assets).fallback(handle))
                .route(
                    "/__devstack/",
                    get_service(ServeFile::new(dist.join("console.html"))).layer(page).fallback(handle),
                );
        }
        router
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(self)
            .into_make_service_with_connect_info::<SocketAddr>()
    }
}

/// devstack's own controls, beside the API: `POST /__devstack/functions/{name}/down` makes
/// every invocation of a function fail as unavailable (a service outage), `.../up` ends it;
/// `.../event-sources/disable` stops polling its queues (messages wait; it answers once no
/// batch is in flight), `.../enable` resumes;
/// `.../schedule` runs its schedule now (a tick, as EventBridge sends it) and answers 204 once
/// the function succeeded, 502 if it failed. `GET /__devstack/` is the console's page and
/// `/__devstack/api/...` its JSON ([`console_api`]).
pub const ADMIN_PREFIX: &str = "/__devstack/";

async fn admin(gateway: &Gateway, method: &Method, command: &str, query: &str) -> Response {
    let parts: Vec<&str> = command.split('/').collect();
    let runtime = &gateway.runtime;
    if let ["api", rest @ ..] = parts.as_slice() {
        return console_api(gateway, method, rest, query).await;
    }
    if let (&Method::POST, ["functions", name, "schedule"]) = (method, parts.as_slice()) {
        return match runtime
            .invoke(name, crate::serve::schedule_event(&gateway.region, &gateway.account_id, name))
            .await
        {
            Ok(_) => (StatusCode::NO_CONTENT, "").into_response(),
            Err(error) => (StatusCode::BAD_GATEWAY, format!("{name} failed: {error:?}")).into_response(),
        };
    }
    let known = match (method, parts.as_slice()) {
        (&Method::POST, ["functions", name, "down"]) => runtime.set_down(name, true),
        (&Method::POST, ["functions", name, "up"]) => runtime.set_down(name, false),
        (&Method::POST, ["functions", name, "event-sources", "disable"]) => {
            runtime.set_event_sources_enabled(name, false).await
        }
        (&Method::POST, ["functions", name, "event-sources", "enable"]) => {
            runtime.set_event_sources_enabled(name, true).await
        }
        _ => return (StatusCode::NOT_FOUND, "unknown devstack command").into_response(),
    };
    if known {
        (StatusCode::NO_CONTENT, "").into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no function {}", parts[1])).into_response()
    }
}

/// The console's reads and its one write (redrive), as JSON: `GET api/functions`,
/// `api/queues`, `api/queues/{id}/messages`, `api/requests`, `api/trace?correlation_id=`;
/// `POST api/queues/{id}/redrive`.
async fn console_api(gateway: &Gateway, method: &Method, path: &[&str], query: &str) -> Response {
    use crate::console::ConsoleError;
    let console = gateway.runtime.console();
    let answer: Result<Value, ConsoleError> = match (method, path) {
        (&Method::GET, ["functions"]) => Ok(functions_overview(gateway)),
        (&Method::GET, ["queues"]) => console.queues().await.map_err(ConsoleError::Failed),
        (&Method::GET, ["queues", id, "messages"]) => console.messages(id).await,
        (&Method::POST, ["queues", id, "redrive"]) => {
            console.redrive(id).await.map(|task| json!({"task_handle": task}))
        }
        (&Method::GET, ["requests"]) => Ok(json!(console.requests(50))),
        (&Method::GET, ["trace"]) => {
            match form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "correlation_id") {
                Some((_, id)) if !id.trim().is_empty() => Ok(json!(console.trace(id.trim()))),
                _ => Err(ConsoleError::Refused("give a correlation_id".into())),
            }
        }
        _ => Err(ConsoleError::NotFound("unknown console call".into())),
    };
    let (status, body) = match answer {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => {
            let (status, title) = match &error {
                ConsoleError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
                ConsoleError::Refused(_) => (StatusCode::BAD_REQUEST, "Refused"),
                ConsoleError::Failed(_) => (StatusCode::BAD_GATEWAY, "The emulator failed"),
            };
            (
                status,
                json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": error.to_string()}),
            )
        }
    };
    let mut response = (status, body.to_string()).into_response();
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Every function with what triggers it (routes, queues, schedules) and what it did.
fn functions_overview(gateway: &Gateway) -> Value {
    let runtime = &gateway.runtime;
    let counts = runtime.invocation_counts();
    let mut functions: Vec<_> = runtime.functions().collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    let listed: Vec<Value> = functions
        .into_iter()
        .map(|spec| {
            let stats = runtime.console().function_stats(&spec.name);
            let routes: Vec<String> =
                gateway.routes.iter().filter(|r| r.function == spec.name).map(Route::key).collect();
            let queues: Vec<&str> = spec.queues.iter().map(|q| crate::console::queue_name(&q.queue_url)).collect();
            let schedules: Vec<String> =
                spec.schedules.iter().map(|every| format!("every {}s", every.as_secs())).collect();
            let authorizer = gateway.authorizers.iter().any(|a| a.function == spec.name);
            json!({
                "name": spec.name,
                "memory_mb": spec.memory_mb,
                "routes": routes,
                "authorizer": authorizer,
                "queues": queues,
                "schedules": schedules,
                "invocations": counts.get(&spec.name).copied().unwrap_or_default(),
                "cold_starts": stats.cold_starts,
                "errors": stats.errors,
                "last_init_ms": stats.last_init_ms,
                "last_invoked_ms": stats.last_invoked_ms,
                "down": runtime.is_down(&spec.name),
                "event_sources_enabled": runtime.event_sources_enabled(&spec.name),
                "logs": stats.logs,
            })
        })
        .collect();
    Value::Array(listed)
}

/// An answer API Gateway makes by itself: `{"message": ...}` as `application/json`, and none
/// of ours (no problem+json, no correlation id), as clients of the API will get it on AWS.
fn gateway_answer(status: StatusCode, message: &str, request_id: &str) -> Response {
    let mut response = (status, json!({"message": message}).to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("apigw-requestid", value);
    }
    response
}

/// A devstack-made error response: problem+json with the caller's correlation id.
fn problem(problem: Problem, headers: &HeaderMap, request_id: &str) -> Response {
    let correlation_id = CorrelationId::from_header(headers.get("x-correlation-id").and_then(|v| v.to_str().ok()));
    let mut response = (problem.status, problem.to_json(&correlation_id).to_string()).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    if let Ok(value) = HeaderValue::from_str(correlation_id.as_str()) {
        response_headers.insert("x-correlation-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response_headers.insert("apigw-requestid", value);
    }
    response
}

async fn handle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let path = request.uri().path().to_owned();
    if let Some(command) = path.strip_prefix(ADMIN_PREFIX) {
        let (parts, _) = request.into_parts();
        return admin(&gateway, &parts.method, command, parts.uri.query().unwrap_or("")).await;
    }
    // API Gateway passes the trace on in an x-amzn-trace-id header: the client's, if valid.
    let trace_id = request
        .headers()
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::xray::trace_id_of)
        .map_or_else(crate::xray::new_trace_id, str::to_owned);
    if let Ok(value) = HeaderValue::from_str(&format!("Root={trace_id}")) {
        request.headers_mut().insert("x-amzn-trace-id", value);
    }
    let name = format!("{} {path}", request.method());
    let asked = request.headers().get("x-correlation-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let start_ms = crate::console::now_ms();
    let response = route_request(&gateway, peer, request, trace_id.clone()).await;
    // The function's answer names the correlation id its events carry.
    let correlation =
        response.headers().get("x-correlation-id").and_then(|v| v.to_str().ok()).map(str::to_owned).or(asked);
    gateway.runtime.console().record(crate::console::Span {
        trace_id,
        correlation_ids: correlation.into_iter().collect(),
        kind: "request",
        name,
        caller: None,
        target: None,
        start_ms,
        duration_ms: crate::console::now_ms() - start_ms,
        init_ms: None,
        outcome: response.status().as_u16().to_string(),
    });
    response
}

/// One API request, its trace (`x-amzn-trace-id`) already set.
async fn route_request(gateway: &Gateway, peer: SocketAddr, request: Request, trace_id: String) -> Response {
    let request_id = ulid::Ulid::generate().to_string();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let detail = format!("the request body is larger than {MAX_PAYLOAD_BYTES} bytes");
            return problem(
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large", detail),
                &parts.headers,
                &request_id,
            );
        }
    };
    let path = parts.uri.path().to_owned();
    let Some((route, params)) = find_route(&gateway.routes, parts.method.as_str(), &path) else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found", &request_id);
    };
    if !gateway.throttle.admit(&route.key()) {
        return gateway_answer(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", &request_id);
    }
    let incoming = Incoming {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
        request_id: &request_id,
        source_ip: peer.ip().to_string(),
        trace_id,
    };

    let authorizer = match &route.auth {
        RouteAuth::None => Value::Null,
        RouteAuth::Iam => {
            let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            let uri = format!("http://{host}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
            match crate::iam::verify_invoke(gateway, &parts.method, &uri, &parts.headers, &body) {
                Ok(caller) => json!({"iam": crate::iam::caller_context(&gateway.account_id, &caller.access_key)}),
                Err(reason) => {
                    // API Gateway says no more than this to the caller, whatever the reason.
                    eprintln!("[gateway] {} {path}: IAM authorization failed: {reason}", parts.method);
                    return gateway_answer(StatusCode::FORBIDDEN, "Forbidden", &request_id);
                }
            }
        }
        RouteAuth::Lambda(name) => {
            let spec = gateway.authorizers.iter().find(|a| &a.name == name).expect("checked at start");
            match authorize(gateway, spec, route, &params, &incoming).await {
                Ok(context) => json!({"lambda": context}),
                Err(response) => return response,
            }
        }
    };

    let event = request_event(gateway, route, &params, &incoming, authorizer);
    let trace_id = Some(incoming.trace_id.clone());
    match gateway.runtime.invoke_traced(&route.function, Bytes::from(event.to_string()), trace_id).await {
        Ok(invocation) => function_response(&invocation.payload, &request_id),
        Err(error) => invocation_failed(&route.function, &error, &parts.headers, &request_id),
    }
}

/// What API Gateway answers when the function gave no response: 500 (the specifics go to
/// devstack's log, not to the client), or 503 for a function devstack was told is down.
fn invocation_failed(function: &str, error: &InvokeError, headers: &HeaderMap, request_id: &str) -> Response {
    eprintln!("[{function}] invocation failed: {error}");
    let (status, title, what) = match error {
        InvokeError::Function { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error", "returned an error")
        }
        InvokeError::Timeout(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error", "timed out"),
        InvokeError::Crashed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error", "exited"),
        InvokeError::Init(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error", "failed to start"),
        InvokeError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable", "is unavailable"),
    };
    let detail = format!("the integration {what}");
    problem(Problem::new(status, "integration-failure", title, detail), headers, request_id)
}

/// The parts of the request the events are made of.
struct Incoming<'a> {
    method: &'a Method,
    uri: &'a axum::http::Uri,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    request_id: &'a str,
    /// The TCP peer's address, as API Gateway reports the client's.
    source_ip: String,
    /// The X-Ray trace the request is part of (the authorizer's and the function's invocation).
    trace_id: String,
}

/// Headers as API Gateway passes them: lower-case names, repeated values comma-joined,
/// cookies moved out to their own list.
fn headers_and_cookies(headers: &HeaderMap) -> (Map<String, Value>, Vec<String>) {
    let mut joined: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        match joined.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                joined.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    (joined, cookies)
}

/// Query parameters, decoded, repeated values comma-joined.
fn query_parameters(raw: &str) -> Map<String, Value> {
    let mut params: Map<String, Value> = Map::new();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        match params.get_mut(name.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                params.insert(name.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    params
}

/// Whether API Gateway would pass the body as text rather than base64.
fn is_text(headers: &HeaderMap) -> bool {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    content_type.is_empty()
        || content_type.starts_with("text/")
        || content_type.contains("json")
        || content_type.contains("xml")
        || content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("application/javascript")
}

fn request_context(gateway: &Gateway, route: &Route, incoming: &Incoming, authorizer: Value) -> Value {
    let now = chrono::Utc::now();
    let host = incoming.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let user_agent = incoming.headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or("");
    let mut context = json!({
        "accountId": gateway.account_id,
        "apiId": "local",
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or(host),
        "http": {
            "method": incoming.method.as_str(),
            "path": incoming.uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": incoming.source_ip,
            "userAgent": user_agent,
        },
        "requestId": incoming.request_id,
        "routeKey": route.key(),
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if !authorizer.is_null() {
        context["authorizer"] = authorizer;
    }
    context
}

/// The payload format 2.0 event of a request.
fn request_event(
    gateway: &Gateway,
    route: &Route,
    params: &[(String, String)],
    incoming: &Incoming,
    authorizer: Value,
) -> Value {
    let (headers, cookies) = headers_and_cookies(incoming.headers);
    let raw_query = incoming.uri.query().unwrap_or("");
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": incoming.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": request_context(gateway, route, incoming, authorizer),
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !raw_query.is_empty() {
        event["queryStringParameters"] = Value::Object(query_parameters(raw_query));
    }
    if !params.is_empty() {
        event["pathParameters"] =
            Value::Object(params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect());
    }
    if !incoming.body.is_empty() {
        match (is_text(incoming.headers), std::str::from_utf8(incoming.body)) {
            (true, Ok(text)) => event["body"] = Value::String(text.to_owned()),
            _ => {
                event["body"] = Value::String(BASE64.encode(incoming.body));
                event["isBase64Encoded"] = Value::Bool(true);
            }
        }
    }
    event
}

/// Runs a Lambda authorizer: `Ok(context)` to go on, `Err(response)` to answer now.
async fn authorize(
    gateway: &Gateway,
    spec: &AuthorizerSpec,
    route: &Route,
    params: &[(String, String)],
    incoming: &Incoming<'_>,
) -> Result<Value, Response> {
    let unauthorized = || gateway_answer(StatusCode::UNAUTHORIZED, "Unauthorized", incoming.request_id);
    let mut identity = Vec::new();
    for name in &spec.identity_headers {
        match incoming.headers.get(name.as_str()).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
            Some(value) => identity.push(value.to_owned()),
            None => return Err(unauthorized()),
        }
    }
    let mut event = request_event(gateway, route, params, incoming, Value::Null);
    let object = event.as_object_mut().expect("an object");
    object.remove("body");
    object.remove("isBase64Encoded");
    object.insert("type".into(), "REQUEST".into());
    object.insert("identitySource".into(), json!(identity));
    object.insert(
        "routeArn".into(),
        format!(
            "arn:aws:execute-api:{}:{}:local/$default/{}{}",
            gateway.region,
            gateway.account_id,
            route.method,
            incoming.uri.path()
        )
        .into(),
    );
    let trace_id = Some(incoming.trace_id.clone());
    let answer = match gateway.runtime.invoke_traced(&spec.function, Bytes::from(event.to_string()), trace_id).await {
        Ok(invocation) => serde_json::from_slice::<Value>(&invocation.payload).unwrap_or(Value::Null),
        Err(error) => {
            return Err(invocation_failed(&spec.function, &error, incoming.headers, incoming.request_id));
        }
    };
    let allowed = if spec.simple_responses {
        answer["isAuthorized"] == true
    } else {
        let statements = answer["policyDocument"]["Statement"].as_array().cloned().unwrap_or_default();
        statements.iter().any(|s| s["Effect"] == "Allow") && !statements.iter().any(|s| s["Effect"] == "Deny")
    };
    if allowed {
        Ok(answer.get("context").cloned().unwrap_or_else(|| json!({})))
    } else {
        Err(gateway_answer(StatusCode::FORBIDDEN, "Forbidden", incoming.request_id))
    }
}

/// A function's answer as API Gateway turns it into HTTP (payload format 2.0): a response
/// object with `statusCode`, or any other JSON as a 200 `application/json` body.
pub fn function_response(payload: &[u8], request_id: &str) -> Response {
    let parsed: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let mut response = if parsed.get("statusCode").is_some() {
        let status = parsed["statusCode"]
            .as_u64()
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match &parsed["body"] {
            Value::String(text) if parsed["isBase64Encoded"] == true => BASE64.decode(text).unwrap_or_default(),
            Value::String(text) => text.clone().into_bytes(),
            Value::Null => Vec::new(),
            other => other.to_string().into_bytes(),
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        for (name, value) in parsed["headers"].as_object().into_iter().flatten() {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name.as_str()), HeaderValue::from_str(&crate::template::scalar_string(value)))
            {
                headers.append(name, value);
            }
        }
        for (name, values) in parsed["multiValueHeaders"].as_object().into_iter().flatten() {
            for value in values.as_array().into_iter().flatten() {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name.as_str()), HeaderValue::from_str(&crate::template::scalar_string(value)))
                {
                    headers.append(name, value);
                }
            }
        }
        for cookie in parsed["cookies"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        response
    } else {
        let mut response = Response::new(Body::from(payload.to_vec()));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<Route> {
        [
            ("GET", "/products"),
            ("GET", "/products/{product_id}"),
            ("GET", "/products/featured"),
            ("ANY", "/files/{path+}"),
            ("POST", "/files/{path+}"),
            ("DELETE", "/internal/inventory/reservations/{reservation_id}"),
        ]
        .into_iter()
        .map(|(m, p)| Route::new(m, p, "F", RouteAuth::None).unwrap())
        .collect()
    }

    fn key(method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
        let routes = routes();
        find_route(&routes, method, path).map(|(r, p)| (r.key(), p))
    }

    #[test]
    fn literal_routes_beat_parameters_and_parameters_are_decoded() {
        assert_eq!(key("GET", "/products/featured").unwrap().0, "GET /products/featured");
        let (route, params) = key("GET", "/products/p%201").unwrap();
        assert_eq!(route, "GET /products/{product_id}");
        assert_eq!(params, [("product_id".to_owned(), "p 1".to_owned())]);
        assert_eq!(key("GET", "/products/").unwrap().0, "GET /products");
    }

    #[test]
    fn greedy_parameters_take_the_rest_and_methods_beat_any() {
        let (route, params) = key("GET", "/files/a/b/c.txt").unwrap();
        assert_eq!(route, "ANY /files/{path+}");
        assert_eq!(params, [("path".to_owned(), "a/b/c.txt".to_owned())]);
        assert_eq!(key("POST", "/files/a").unwrap().0, "POST /files/{path+}");
        assert!(key("GET", "/files").is_none(), "a greedy parameter needs at least one segment");
    }

    #[test]
    fn unknown_paths_and_methods_are_not_found() {
        assert!(key("GET", "/nothing").is_none());
        assert!(key("DELETE", "/products").is_none(), "HTTP APIs answer a wrong method with 404");
        assert!(key("GET", "/products/a/b").is_none());
    }

    #[test]
    fn what_no_route_matches_goes_to_the_default_route() {
        let mut routes = routes();
        routes.push(Route::new("ANY", DEFAULT_ROUTE, "Default", RouteAuth::None).unwrap());
        let found = |method: &str, path: &str| find_route(&routes, method, path).map(|(r, p)| (r.key(), p));
        assert_eq!(found("GET", "/products/featured").unwrap().0, "GET /products/featured");
        for (method, path) in [("GET", "/nothing"), ("DELETE", "/products"), ("TRACE", "/products/1"), ("GET", "/")] {
            assert_eq!(found(method, path), Some(("$default".to_owned(), Vec::new())), "{method} {path}");
        }
        // Not even a path that spells the route's name matches it as a path.
        assert_eq!(found("ANY", "/$default").unwrap().0, "$default");
    }

    #[test]
    fn the_gateways_own_answers_are_api_gateways() {
        let response = gateway_answer(StatusCode::FORBIDDEN, "Forbidden", "r1");
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["apigw-requestid"], "r1");
        assert!(response.headers().get("x-correlation-id").is_none());
    }

    #[test]
    fn response_objects_and_plain_json_are_translated() {
        let response = function_response(
            br#"{"statusCode":201,"headers":{"x-a":"1"},"cookies":["a=1","b=2"],"isBase64Encoded":true,"body":"AAE="}"#,
            "r1",
        );
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-a"], "1");
        assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(response.headers()["apigw-requestid"], "r1");
        let plain = function_response(br#"{"hello":"world"}"#, "r2");
        assert_eq!(plain.status(), 200);
        assert_eq!(plain.headers()["content-type"], "application/json");
    }
}
