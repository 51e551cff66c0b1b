//! `make bench` end to end at a tiny scale (debug binaries, a few runs each): every function
//! of the template and the baseline are measured, the report has the shape issue 7 fixed, and
//! a checkout costs as many AWS calls at 25 cart lines as at one, and the functions are
//! measured again under Lambda's CPU share of a memory size. The figures themselves come
//! from `make bench`, with release builds.

use serde_json::Value;
use system_tests::{devstack_command, template};

#[test]
fn the_benchmark_measures_every_function_and_checkout() {
    let debug = std::env::current_exe().unwrap().parent().and_then(|deps| deps.parent()).unwrap().to_owned();
    let out = std::env::temp_dir().join(format!("bench-{}", ulid::Ulid::generate()));
    // devstack's settings (emulator endpoint, credentials), the bench binary instead.
    let settings = devstack_command();
    let run = std::process::Command::new(debug.join("bench"))
        .current_dir(devstack::repo_root())
        .envs(settings.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))))
        .env_remove("AWS_PROFILE")
        .args(["--bin-dir", debug.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--cold-runs", "2", "--warm", "3", "--checkouts", "2", "--paid-runs", "1"])
        .args(["--memory-sizes", "1024", "--model-cold-runs", "1", "--model-warm", "2"])
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    assert!(run.status.success(), "bench failed: {}\n{}", String::from_utf8_lossy(&run.stdout), tail.join("\n"));

    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["baseline"]["init_ms_p50"].as_f64().unwrap() > 0.0);
    let functions: Vec<String> = template()
        .resources
        .iter()
        .filter(|(_, r)| r.kind == "AWS::Serverless::Function")
        .map(|(id, _)| id.clone())
        .collect();
    for name in &functions {
        let figures = &report["functions"][name];
        for field in ["init_ms_p50", "init_ratio", "first_ms_p50", "warm_ms_p50", "rss_kb_peak"] {
            assert!(figures[field].as_f64().is_some_and(|v| v > 0.0), "{name}.{field}: {figures}");
        }
        let answers = figures["outcomes"].as_object().unwrap();
        assert!(
            !answers.keys().any(|k| k.starts_with("5") || k.contains("error") || k.contains("crash")),
            "{name}: {answers:?}"
        );
    }
    // Under the CPU share of 1,024 MB, where this machine can set a quota.
    let model = &report["memory_model"];
    match model["unavailable"].as_str() {
        None => {
            for name in functions.iter().map(String::as_str).chain(["Baseline"]) {
                let figures = &model["functions"][name]["1024"];
                for field in ["init_ms_p50", "first_ms_p50", "warm_ms_p50"] {
                    assert!(figures[field].as_f64().is_some_and(|v| v > 0.0), "{name} at 1024 MB: {field}: {figures}");
                }
            }
        }
        Some(reason) => {
            let probe = std::path::Path::new("/sys/fs/cgroup/cpu").join(format!("probe-{}", std::process::id()));
            assert!(
                std::fs::create_dir(&probe).is_err(),
                "the bench found no CPU quota ({reason}) where one can be set"
            );
        }
    }
    // No init opens a connection, nor fails without the network.
    let offline = report["init_connections"].as_object().unwrap();
    for name in functions.iter().map(String::as_str).chain(["Baseline"]) {
        assert_eq!(offline[name], serde_json::json!({"Ok": 0}), "{name}'s init and the network: {}", offline[name]);
    }
    // One order's life, priced: the chain and its consumers ran, DynamoDB was written.
    let cost = &report["cost"];
    let invoked = &cost["one_order"]["invocations"];
    for function in ["CheckoutFunction", "SettlePaymentsFunction", "NotifyFunction", "DeliverShipmentFunction"] {
        assert!(invoked[function].as_u64().is_some_and(|n| n > 0), "{function} not in one order's life: {invoked}");
    }
    assert!(cost["one_order"]["api_requests"].as_u64().unwrap() >= 5, "{cost}");
    assert!(cost["one_order"]["dynamodb_units"]["write"].as_f64().unwrap() > 0.0, "{cost}");
    let total: f64 = cost["per_1000_orders"].as_array().unwrap().iter().map(|l| l["usd"].as_f64().unwrap()).sum();
    assert!(total > 0.0 && (total - cost["total_usd"].as_f64().unwrap()).abs() < 1e-9, "{cost}");
    let calls = |lines: u32| report["checkout"][format!("lines_{lines}")]["aws_calls"].as_u64().unwrap();
    assert!(calls(1) > 0);
    assert_eq!(calls(25), calls(1), "a checkout's AWS calls must not grow with its lines: {}", report["checkout"]);
    assert!(report["paid_after_ms_p50"].as_f64().unwrap() > 0.0);
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("| CheckoutFunction |"));
    let _ = std::fs::remove_dir_all(out);
}
