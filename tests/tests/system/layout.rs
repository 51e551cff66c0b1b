//! Every service crate has one shape, so a newcomer who knows one knows all seven:
//!
//! - `lib.rs`: the service in a paragraph, then its modules and nothing else;
//! - `domain.rs`: the service's rules, pure (time is passed in);
//! - `handlers/`: what API Gateway calls, `mod.rs` with what the handlers share and one file
//!   per group of routes;
//! - `consumer.rs`: what its queue calls (if it has one);
//! - `clients.rs`: what it calls outside itself: other services, providers, secrets (if any);
//!   a directory `clients/` instead, `mod.rs` with the ports and one file per outside party,
//!   when a crate has more than one or one too big to sit beside its port (payment: Stripe);
//! - `store/`: the port in `mod.rs`, `dynamo.rs` for the functions, `memory.rs` for the
//!   handler tests and the money-path simulation;
//! - `fuzz.rs`: its property tests (if any); every other test sits beside the code it tests;
//! - `src/bin/<function>.rs`: one Lambda function each, a few lines.
//!
//! A module of its own is listed here with why it is not one of those. This test fails when a
//! crate's files differ from what is listed, so the list (and README's layout section) is
//! kept true.

use std::collections::BTreeSet;
use std::path::Path;

/// The files every service crate has (under `src/`, without `bin/`).
const EVERY_SERVICE: &[&str] =
    &["lib.rs", "domain.rs", "handlers/mod.rs", "store/mod.rs", "store/dynamo.rs", "store/memory.rs"];

/// Each service crate: its route groups, and which of the optional roles and own modules it has.
const SERVICES: &[(&str, &[&str])] = &[
    (
        "auth",
        &[
            "handlers/authorizer.rs",
            "handlers/get_user.rs",
            "handlers/jwks.rs",
            "handlers/login.rs",
            "handlers/logout.rs",
            "handlers/me.rs",
            "handlers/refresh.rs",
            "handlers/register.rs",
            "clients.rs",
            "fuzz.rs",
            // Its own: argon2id hashing, JWTs and refresh tokens are rules, but with their own
            // keys and costs.
            "passwords.rs",
            "refresh.rs",
            "tokens.rs",
            // Its own: the one admin account, made by an operator's tool (devstack), not a route.
            "admin.rs",
        ],
    ),
    (
        "cart",
        &[
            "handlers/cart.rs",
            "handlers/checkout.rs",
            "consumer.rs",
            "clients.rs",
            "fuzz.rs",
            // Its own: the scheduled job that undoes what a crashed checkout left behind.
            "reconcile.rs",
        ],
    ),
    ("order", &["handlers/orders.rs", "handlers/internal.rs", "handlers/shipments.rs", "consumer.rs", "fuzz.rs"]),
    (
        "payment",
        &[
            "handlers/payments.rs",
            "handlers/internal.rs",
            "handlers/webhooks.rs",
            "consumer.rs",
            "clients/mod.rs",
            "clients/stripe.rs",
            "fuzz.rs",
            // Its own: the claimed money moves (capture, void, refund) that both the handlers
            // and the consumer make.
            "moves.rs",
        ],
    ),
    ("seller", &["handlers/products.rs", "handlers/inventory.rs", "handlers/sellers.rs", "consumer.rs", "fuzz.rs"]),
    (
        "notification",
        &[
            "handlers/notifications.rs",
            "handlers/preferences.rs",
            "handlers/devices.rs",
            "consumer.rs",
            "clients.rs",
            // Its own: what a message says (templates/), and the second consumer, of SES's
            // bounces and complaints.
            "messages.rs",
            "feedback.rs",
        ],
    ),
    (
        "ai-buddy",
        &["handlers/recommendations.rs", "handlers/assistant.rs", "handlers/analytics.rs", "consumer.rs", "clients.rs"],
    ),
];

/// `ops` is no service (no state, no rules): only the edge, in the same style.
const OPS: &[&str] = &["lib.rs", "handlers/mod.rs", "handlers/health.rs", "handlers/default_route.rs"];

/// The `.rs` files under `dir`, relative to it, without `bin/`.
fn modules(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if relative != "bin" {
                    walk(root, &path, found);
                }
            } else if relative.ends_with(".rs") {
                found.insert(relative);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(dir, dir, &mut found);
    found
}

/// What is wrong with one crate's `src/` against the files it should have.
fn differences(krate: &str, expected: &BTreeSet<String>) -> Vec<String> {
    let src = devstack::repo_root().join("functions").join(krate).join("src");
    let found = modules(&src);
    let mut wrong = Vec::new();
    for missing in expected.difference(&found) {
        wrong.push(format!("{krate}: missing src/{missing}"));
    }
    for extra in found.difference(expected) {
        wrong.push(format!("{krate}: src/{extra} is not in the layout (tests/tests/system/layout.rs)"));
    }
    // lib.rs: the crate's doc, then exactly its top-level modules (fuzz.rs only under test).
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let mut declared = BTreeSet::new();
    for line in lib.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")) {
        match line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod ")) {
            Some(name) => {
                declared.insert(name.trim_end_matches(';').to_owned());
            }
            None if line == "#[cfg(test)]" => {}
            None => wrong.push(format!("{krate}: lib.rs holds more than its modules: `{line}`")),
        }
    }
    let top: BTreeSet<String> = expected
        .iter()
        .map(|file| file.split('/').next().unwrap().trim_end_matches(".rs").to_owned())
        .filter(|name| name != "lib")
        .collect();
    if declared != top {
        wrong.push(format!("{krate}: lib.rs declares {declared:?}, the layout has {top:?}"));
    }
    if lib.contains("mod fuzz;") && !lib.contains("#[cfg(test)]\nmod fuzz;") {
        wrong.push(format!("{krate}: fuzz is a test module: `#[cfg(test)]` before `mod fuzz;`"));
    }
    wrong
}

#[test]
fn every_service_crate_has_the_same_files_in_the_same_module_style() {
    let mut wrong = Vec::new();
    for (krate, own) in SERVICES {
        let expected: BTreeSet<String> = EVERY_SERVICE.iter().chain(own.iter()).map(|s| s.to_string()).collect();
        wrong.extend(differences(krate, &expected));
    }
    wrong.extend(differences("ops", &OPS.iter().map(|s| s.to_string()).collect()));
    let listed: BTreeSet<&str> = SERVICES.iter().map(|(name, _)| *name).chain(["ops"]).collect();
    for entry in std::fs::read_dir(devstack::repo_root().join("functions")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !listed.contains(name.as_str()) {
            wrong.push(format!("functions/{name} is a crate the layout does not list"));
        }
    }
    assert!(wrong.is_empty(), "the crates differ from the layout:\n{}", wrong.join("\n"));
}

#[test]
fn no_source_file_is_included_by_path() {
    let root = devstack::repo_root();
    let mut included = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Written in two pieces, so this file does not find itself.
                if text.contains(concat!("#[pa", "th")) {
                    included.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
    }
    assert!(included.is_empty(), "modules included by path (use a crate instead): {included:?}");
}
