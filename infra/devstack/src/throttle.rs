//! API Gateway's throttling of an HTTP API stage, per route: a token bucket of
//! `ThrottlingBurstLimit` requests refilled at `ThrottlingRateLimit` per second, from the
//! stack's `DefaultRouteSettings` with `RouteSettings` overriding them for one route key. A
//! request that finds the bucket empty gets API Gateway's own 429 before any authorizer or
//! function runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::provision::Stack;
use crate::template::{Resolver, Template, scalar_string};

/// A route's limits. No limits set means API Gateway's account limits, which nothing local
/// comes near: no throttling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub burst: f64,
    pub rate: f64,
}

#[derive(Debug, Default)]
pub struct Throttle {
    default: Option<Limits>,
    routes: HashMap<String, Limits>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Throttle {
    /// The HTTP API's throttling settings in the template, parameters resolved.
    pub fn from_template(template: &Template, stack: &Stack) -> Result<Self> {
        let Some(api) = template.resources.values().find(|r| r.kind == "AWS::Serverless::HttpApi") else {
            return Ok(Self::default());
        };
        let resolver = Resolver { parameters: &stack.parameters, resources: &stack.resources };
        let limits = |settings: &Value| -> Result<Option<Limits>> {
            let number = |name: &str| -> Result<Option<f64>> {
                match settings.get(name) {
                    Some(value) => {
                        let text = scalar_string(&resolver.resolve(value)?);
                        Ok(Some(text.parse().with_context(|| format!("HttpApi {name}: {text}"))?))
                    }
                    None => Ok(None),
                }
            };
            Ok(match (number("ThrottlingBurstLimit")?, number("ThrottlingRateLimit")?) {
                (None, None) => None,
                (burst, rate) => Some(Limits { burst: burst.unwrap_or(f64::MAX), rate: rate.unwrap_or(f64::MAX) }),
            })
        };
        let default = limits(&api.properties["DefaultRouteSettings"])?;
        let mut routes = HashMap::new();
        for (key, settings) in api.properties["RouteSettings"].as_object().into_iter().flatten() {
            if let Some(route) = limits(settings)? {
                routes.insert(key.clone(), route);
            }
        }
        Ok(Self { default, routes, buckets: Mutex::default() })
    }

    /// Takes one request's token from `route_key`'s bucket; false if it is empty.
    pub fn admit(&self, route_key: &str) -> bool {
        self.admit_at(route_key, Instant::now())
    }

    fn admit_at(&self, route_key: &str, now: Instant) -> bool {
        let Some(limits) = self.routes.get(route_key).copied().or(self.default) else { return true };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, since) = buckets.entry(route_key.to_owned()).or_insert((limits.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*since).as_secs_f64() * limits.rate).min(limits.burst);
        *since = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn throttle(default: Option<Limits>, routes: &[(&str, Limits)]) -> Throttle {
        let routes = routes.iter().map(|(k, l)| ((*k).to_owned(), *l)).collect();
        Throttle { default, routes, buckets: Mutex::default() }
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate_refills_the_bucket() {
        let t = throttle(Some(Limits { burst: 3.0, rate: 2.0 }), &[]);
        let start = Instant::now();
        assert!((0..3).all(|_| t.admit_at("GET /a", start)));
        assert!(!t.admit_at("GET /a", start), "the burst is spent");
        assert!(t.admit_at("GET /b", start), "each route has its own bucket");
        assert!(!t.admit_at("GET /a", start + Duration::from_millis(400)), "0.8 of a token");
        assert!(t.admit_at("GET /a", start + Duration::from_millis(500)));
        assert!((0..3).all(|_| t.admit_at("GET /a", start + Duration::from_secs(60))), "never above the burst");
        assert!(!t.admit_at("GET /a", start + Duration::from_secs(60)));
    }

    #[test]
    fn route_settings_override_the_default_and_no_settings_never_throttle() {
        let t = throttle(Some(Limits { burst: 100.0, rate: 100.0 }), &[("POST /x", Limits { burst: 1.0, rate: 0.0 })]);
        let now = Instant::now();
        assert!(t.admit_at("POST /x", now));
        assert!(!t.admit_at("POST /x", now + Duration::from_secs(5)));
        assert!((0..100).all(|_| t.admit_at("GET /y", now)));
        let none = throttle(None, &[]);
        assert!((0..10_000).all(|_| none.admit_at("GET /y", now)));
    }
}
