//! The OpenAPI document and template.yaml describe the same routes: no route in one and not
//! the other.

use std::collections::BTreeSet;

fn template_routes() -> BTreeSet<(String, String)> {
    let template = system_tests::template();
    let mut routes = BTreeSet::new();
    for resource in template.resources.values().filter(|r| r.kind == "AWS::Serverless::Function") {
        for event in resource.properties["Events"].as_object().into_iter().flatten().map(|(_, e)| e) {
            if event["Type"] == "HttpApi" {
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
