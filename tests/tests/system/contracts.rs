//! Contracts in template.yaml: the OpenAPI document and the template declare the same routes,
//! and the `$default` route's function knows them all; every function has its own binary;
//! alarms reach the alerts topic; the dashboard is complete.

use std::collections::BTreeSet;

fn template_routes() -> BTreeSet<(String, String)> {
    let template = system_tests::template();
    let mut routes = BTreeSet::new();
    for resource in template.resources.values().filter(|r| r.kind == "AWS::Serverless::Function") {
        for event in resource.properties["Events"].as_object().into_iter().flatten().map(|(_, e)| e) {
            // The $default route (neither Path nor Method) is no operation of the document.
            if event["Type"] == "HttpApi" && event["Properties"].get("Path").is_some() {
                let method = event["Properties"]["Method"].as_str().expect("a method").to_lowercase();
                let path = event["Properties"]["Path"].as_str().expect("a path").to_owned();
                routes.insert((method, path));
            }
        }
    }
    routes
}

fn openapi_routes() -> BTreeSet<(String, String)> {
    let path = devstack::repo_root().join("infra/openapi.yaml");
    let document: serde_json::Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(document["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true));
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn openapi_and_template_declare_the_same_routes() {
    let (template, openapi) = (template_routes(), openapi_routes());
    assert!(!template.is_empty());
    assert_eq!(
        template.difference(&openapi).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in template.yaml only"
    );
    assert_eq!(
        openapi.difference(&template).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in openapi.yaml only"
    );
}

/// ops::handlers::default_route::ROUTES_VARIABLE (the tests do not link the function crates).
const ROUTES_VARIABLE: &str = "API_ROUTES";

/// The `$default` route's function tells a wrong method (405) from a wrong path (404) by
/// the route table template.yaml gives it: that table is the template's routes, all of them.
/// The paths the services call each other on (shared::contracts) are the template's
/// internal routes, all of them: a route renamed on one side fails here, not in production.
#[test]
fn the_contracts_name_every_internal_route_of_the_template() {
    use shared::contracts::*;
    let called: BTreeSet<(String, String)> = [
        ("get", user_path("{user_id}")),
        ("post", LOOKUP_PRODUCTS.to_owned()),
        ("post", RESERVATIONS.to_owned()),
        ("delete", reservation_path("{reservation_id}")),
        ("post", AUTHORIZE_PAYMENT.to_owned()),
        ("post", void_path("{payment_id}")),
        ("post", ORDERS.to_owned()),
        ("post", abandon_path("{order_id}")),
    ]
    .into_iter()
    .map(|(method, path)| (method.to_owned(), path))
    .collect();
    let internal: BTreeSet<(String, String)> =
        template_routes().into_iter().filter(|(_, path)| path.starts_with("/internal/")).collect();
    assert_eq!(called, internal);
}

#[test]
fn the_default_route_knows_every_route_of_the_template() {
    let template = system_tests::template();
    let defaults: Vec<_> = template
        .resources
        .iter()
        .filter(|(_, r)| r.kind == "AWS::Serverless::Function")
        .filter(|(_, r)| {
            let events = r.properties["Events"].as_object().into_iter().flatten().map(|(_, e)| e);
            events.into_iter().any(|e| e["Type"] == "HttpApi" && e["Properties"].get("Path").is_none())
        })
        .collect();
    assert_eq!(defaults.len(), 1, "one function serves the $default route");
    let (id, function) = defaults[0];
    let table = function.properties["Environment"]["Variables"][ROUTES_VARIABLE]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no {}", ROUTES_VARIABLE));
    let listed: BTreeSet<(String, String)> = table
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|key| {
            let (method, path) = key.split_once(' ').unwrap_or_else(|| panic!("{key:?} is not METHOD /path"));
            (method.to_lowercase(), path.trim().to_owned())
        })
        .collect();
    let routes = template_routes();
    assert_eq!(
        routes.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes missing from {id}'s {} in template.yaml: add them",
        ROUTES_VARIABLE
    );
    assert_eq!(
        listed.difference(&routes).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "{id}'s {} lists routes template.yaml does not have",
        ROUTES_VARIABLE
    );
}

/// Every function names a binary of its CodeUri crate, and no two functions share one
/// (cargo puts every binary of the workspace in one folder).
#[test]
fn every_function_has_its_own_binary_in_its_crate() {
    let template = system_tests::template();
    let mut seen = BTreeSet::new();
    for (id, resource) in template.resources.iter().filter(|(_, r)| r.kind == "AWS::Serverless::Function") {
        let binary =
            resource.metadata["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{id}: no Binary"));
        let crate_dir = devstack::repo_root()
            .join(resource.properties["CodeUri"].as_str().unwrap_or_else(|| panic!("{id}: no CodeUri")));
        let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{id}: {binary} is not a [[bin]] of {}",
            crate_dir.display()
        );
        assert!(crate_dir.join(format!("src/bin/{binary}.rs")).is_file(), "{id}: src/bin/{binary}.rs is missing");
        assert!(seen.insert(binary.to_owned()), "{id}: binary {binary} is used twice");
    }
}

#[test]
fn every_alarm_notifies_the_alerts_topic_and_the_dashboard_charts_every_queue() {
    let template = system_tests::template();
    let alerts = serde_json::json!({"Ref": "AlertsTopic"});
    let alarms: Vec<_> = template.resources.iter().filter(|(_, r)| r.kind == "AWS::CloudWatch::Alarm").collect();
    assert!(alarms.len() >= 12, "a DLQ-depth and a queue-age alarm per queue");
    for (id, alarm) in alarms {
        for actions in ["AlarmActions", "OKActions"] {
            let listed = alarm.properties[actions].as_array().cloned().unwrap_or_default();
            assert!(listed.contains(&alerts), "{id}.{actions} must include the alerts topic");
        }
    }
    let dashboard = template.resources.values().find(|r| r.kind == "AWS::CloudWatch::Dashboard").expect("a dashboard");
    let body = dashboard.properties["DashboardBody"]["Fn::Sub"].as_str().expect("the body is a !Sub string");
    for (id, _) in template.resources.iter().filter(|(_, r)| r.kind == "AWS::SQS::Queue") {
        assert!(body.contains(&format!("${{{id}.QueueName}}")), "the dashboard charts {id}");
    }
    for metric in ["OrdersPlaced", "PaymentFailures", "NotificationsSent", "DlqRedrives", "Latency", "5xx"] {
        assert!(body.contains(&format!("\"{metric}\"")), "the dashboard charts {metric}");
    }
}

/// `make package` (what `make deploy` uploads): every function's CodeUri is the zip of its
/// binary from the one arm64 workspace build, and nothing is left for `sam build` to do.
#[test]
fn packaging_points_every_function_at_its_binarys_zip() {
    let root = devstack::repo_root();
    let scratch = std::env::temp_dir().join(format!("package-{}", ulid::Ulid::generate()));
    let template = system_tests::template();
    let functions: Vec<_> = template.resources.iter().filter(|(_, r)| r.kind == "AWS::Serverless::Function").collect();
    for (_, function) in &functions {
        let binary = function.metadata["BuildProperties"]["Binary"].as_str().unwrap();
        let dir = scratch.join("lambda").join(binary);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bootstrap.zip"), b"zip").unwrap();
    }
    let venv = std::env::var("VENV").map(std::path::PathBuf::from).unwrap_or_else(|_| root.join(".venv"));
    let venv = if venv.is_absolute() { venv } else { root.join(venv) };
    let output = scratch.join("build/template.yaml");
    let run = std::process::Command::new(venv.join("bin/python"))
        .arg(root.join("infra/scripts/package.py"))
        .arg(root.join("template.yaml"))
        .arg(&scratch)
        .arg(&output)
        .output()
        .expect("the venv's python runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let packaged = devstack::template::Template::load(&output).unwrap();
    for (id, function) in functions {
        let binary = function.metadata["BuildProperties"]["Binary"].as_str().unwrap();
        let code = packaged.resources[id].properties["CodeUri"].as_str().unwrap().to_owned();
        assert!(code.ends_with(&format!("lambda/{binary}/bootstrap.zip")), "{id}: {code}");
        assert!(packaged.resources[id].metadata.is_null(), "{id}: nothing left to build");
    }
    let _ = std::fs::remove_dir_all(scratch);
}

/// `make deploy`'s upload of the web app: index.html names the API's URL (another origin on
/// AWS) and is never cached stale, hashed assets are cached for a year, devstack's console
/// stays home, and the page is uploaded after the assets it names.
#[test]
fn publishing_the_web_app_names_the_api_and_leaves_the_console_home() {
    let root = devstack::repo_root();
    let scratch = std::env::temp_dir().join(format!("publish-{}", ulid::Ulid::generate()));
    let dist = scratch.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), r#"<head><meta name="api-base" content="" /></head>"#).unwrap();
    std::fs::write(dist.join("console.html"), "<p>devstack</p>").unwrap();
    std::fs::write(dist.join("assets/shop-abc.js"), "export {}").unwrap();
    std::fs::write(dist.join("assets/style-def.css"), "a{}").unwrap();
    let venv = std::env::var("VENV").map(std::path::PathBuf::from).unwrap_or_else(|_| root.join(".venv"));
    let venv = if venv.is_absolute() { venv } else { root.join(venv) };
    let publish = |dist: &std::path::Path, out: &std::path::Path| {
        std::process::Command::new(venv.join("bin/python"))
            .arg(root.join("infra/scripts/publish_web.py"))
            .args(["--api-url", "https://api.example.com/", "--plan"])
            .arg(out)
            .arg(dist)
            .output()
            .expect("the venv's python runs")
    };
    let out = scratch.join("out");
    let run = publish(&dist, &out);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains(r#"<meta name="api-base" content="https://api.example.com" />"#), "{page}");
    assert!(!out.join("console.html").exists(), "the console is devstack's only");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let keys: Vec<&str> = manifest.as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["assets/shop-abc.js", "assets/style-def.css", "index.html"], "the page last");
    for object in manifest.as_array().unwrap() {
        let cache = object["cache_control"].as_str().unwrap();
        if object["key"] == "index.html" {
            assert_eq!((cache, object["content_type"].as_str().unwrap()), ("no-cache", "text/html; charset=utf-8"));
        } else {
            assert_eq!(cache, "public, max-age=31536000, immutable", "{object}");
        }
    }
    // A page without the meta cannot be pointed at the API: refused, nothing written.
    std::fs::write(dist.join("index.html"), "<head></head>").unwrap();
    let refused = publish(&dist, &scratch.join("refused"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("api-base"));
    assert!(!scratch.join("refused/index.html").exists());
    let _ = std::fs::remove_dir_all(scratch);
}

/// `shared::http::trim_blank` (which the services use to refuse a blank name or category) calls
/// white space exactly what the schema's `pattern: \S` does, as a JSON Schema validator reads
/// it (ECMA-262 `\s`): one of them refusing what the other accepts is a schema-valid request
/// refused, or a schema-invalid one stored.
#[test]
fn blank_is_what_the_schemas_pattern_calls_white_space() {
    let openapi = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/openapi.yaml")).unwrap();
    assert!(openapi.contains(r"pattern: '\S'"), "openapi.yaml refuses blank texts with pattern \\S");
    let not_blank = jsonschema::validator_for(&serde_json::json!({"type": "string", "pattern": r"\S"})).unwrap();
    let differ: Vec<String> = (0..=0xffff_u32)
        .filter_map(char::from_u32)
        .map(String::from)
        .filter(|text| not_blank.is_valid(&serde_json::json!(text)) == shared::http::trim_blank(text).is_empty())
        .map(|text| format!("U+{:04X}", u32::from(text.chars().next().unwrap())))
        .collect();
    assert!(differ.is_empty(), "the schema and trim_blank disagree on {differ:?}");
}
