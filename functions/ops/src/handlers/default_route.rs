//! The HTTP API's `$default` route: API Gateway sends it every request that matches no route.
//! It answers 404, or 405 with `Allow` when the path is a route's with other methods, so that
//! a wrong method is told apart from a wrong path (HTTP APIs alone answer both 404). A CORS
//! preflight (OPTIONS with `Access-Control-Request-Method`) of a route's path is 204: the
//! `$default` route also catches OPTIONS, and API Gateway adds the stage's CORS headers to it.
//!
//! The function knows the routes from `API_ROUTES`, which template.yaml sets; a contract test
//! (tests/tests/system/contracts.rs) holds it equal to the template's routes.

use lambda_http::Request;
use lambda_http::http::{StatusCode, header};
use shared::config::ConfigError;
use shared::{Problem, Reply};

pub const ROUTES_VARIABLE: &str = "API_ROUTES";

/// The API's routes: `METHOD /path/{param}/{greedy+}`, as API Gateway matches them.
#[derive(Debug, Clone, PartialEq)]
pub struct Routes(Vec<Route>);

#[derive(Debug, Clone, PartialEq)]
struct Route {
    method: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param,
    Greedy,
}

impl Routes {
    /// From `API_ROUTES`; a missing or malformed table fails the function's init.
    pub fn from_env() -> Result<Self, ConfigError> {
        let text = shared::config::required(ROUTES_VARIABLE)?;
        Self::parse(&text).map_err(|problem| ConfigError { name: ROUTES_VARIABLE.into(), problem })
    }

    /// Comma-separated `METHOD /path` route keys.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut routes = Vec::new();
        for key in text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            let (method, path) = key.split_once(' ').ok_or_else(|| format!("{key:?} is not `METHOD /path`"))?;
            let path = path.trim();
            // ANY would have matched every method: such a path never reaches this function.
            if method == "ANY" || !method.bytes().all(|b| b.is_ascii_uppercase()) || !path.starts_with('/') {
                return Err(format!("{key:?} is not `METHOD /path` with an upper-case method"));
            }
            let parts: Vec<&str> = split(path).collect();
            let mut segments = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                segments.push(match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) if name.ends_with('+') && i + 1 == parts.len() => Segment::Greedy,
                    Some(name) if name.ends_with('+') => return Err(format!("{key:?}: a greedy parameter is last")),
                    Some(_) => Segment::Param,
                    None => Segment::Literal((*part).to_owned()),
                });
            }
            routes.push(Route { method: method.to_owned(), segments });
        }
        if routes.is_empty() {
            return Err("lists no route".into());
        }
        Ok(Self(routes))
    }

    /// The methods of the routes whose path matches `path` (raw, percent-encoded), sorted.
    pub fn allowed(&self, path: &str) -> Vec<&str> {
        let parts: Vec<String> = split(path).map(decode).collect();
        let mut methods: Vec<&str> = self.0.iter().filter(|r| r.matches(&parts)).map(|r| r.method.as_str()).collect();
        methods.sort_unstable();
        methods.dedup();
        methods
    }
}

impl Route {
    fn matches(&self, parts: &[String]) -> bool {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) if parts.get(i) != Some(literal) => return false,
                Segment::Literal(_) => {}
                Segment::Param if i >= parts.len() => return false,
                Segment::Param => {}
                Segment::Greedy => return i < parts.len(),
            }
        }
        parts.len() == self.segments.len()
    }
}

/// Path segments as API Gateway matches them: empty ones (a trailing or doubled `/`) ignored.
fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Every request that matched no route: 405 with `Allow` if its path has routes, else 404.
pub async fn unmatched(routes: &Routes, request: Request) -> Result<Reply, Problem> {
    let (method, path) = (request.method().as_str(), request.uri().path());
    let allowed = routes.allowed(path);
    if allowed.is_empty() {
        return Err(Problem::not_found(format!("no route for {method} {path}")));
    }
    let allow = allowed.join(", ");
    if method == "OPTIONS" && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return Ok(Reply::no_content().header(header::ALLOW, allow));
    }
    let detail = format!("{path} answers {allow}, not {method}");
    Err(Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", detail)
        .header(header::ALLOW, allow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;
    use lambda_http::http::Method;

    fn routes() -> Routes {
        Routes::parse(
            "GET /health, GET /products,POST /products, GET /products/{product_id}, PATCH /products/{product_id},
             GET /products/featured, GET /files/{path+}",
        )
        .unwrap()
    }

    #[test]
    fn a_path_is_allowed_the_methods_of_every_route_it_matches() {
        let routes = routes();
        assert_eq!(routes.allowed("/products"), ["GET", "POST"]);
        assert_eq!(routes.allowed("/products/"), ["GET", "POST"], "a trailing slash is the same path");
        assert_eq!(routes.allowed("/products/p%201"), ["GET", "PATCH"]);
        assert_eq!(routes.allowed("/products/featured"), ["GET", "PATCH"], "the literal and the parameter");
        assert_eq!(routes.allowed("/files/a/b"), ["GET"]);
        assert!(routes.allowed("/files").is_empty(), "a greedy parameter takes at least one segment");
        assert!(routes.allowed("/products/a/b").is_empty());
        assert!(routes.allowed("/").is_empty());
        assert!(routes.allowed("/nothing").is_empty());
    }

    #[test]
    fn a_malformed_route_table_is_refused() {
        for bad in ["", " , ", "GET", "get /x", "GET x", "ANY /x", "GET /{a+}/b"] {
            assert!(Routes::parse(bad).is_err(), "{bad:?}");
        }
    }

    async fn answer(method: Method, path: &str) -> lambda_http::Response<Body> {
        let mut request = Request::new(Body::Empty);
        *request.method_mut() = method;
        *request.uri_mut() = format!("https://api.example.com{path}").parse().unwrap();
        let routes = routes();
        testkit::requests::call(&|request| unmatched(&routes, request), request).await
    }

    #[tokio::test]
    async fn a_known_path_with_another_method_is_405_with_allow() {
        for method in [Method::DELETE, Method::TRACE, Method::OPTIONS, Method::HEAD] {
            let response = answer(method.clone(), "/products").await;
            assert_eq!(response.status(), 405, "{method}");
            assert_eq!(response.headers()["allow"], "GET, POST");
            assert_eq!(response.headers()["content-type"], "application/problem+json");
            let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
            assert_eq!(body["status"], 405);
            assert_eq!(body["type"], "/problems/method-not-allowed");
        }
    }

    #[tokio::test]
    async fn a_cors_preflight_of_a_known_path_is_204_and_of_an_unknown_one_404() {
        let preflight = |path: &str| {
            let mut request = Request::new(Body::Empty);
            *request.method_mut() = Method::OPTIONS;
            *request.uri_mut() = format!("https://api.example.com{path}").parse().unwrap();
            request.headers_mut().insert(header::ACCESS_CONTROL_REQUEST_METHOD, "POST".parse().unwrap());
            request.headers_mut().insert(header::ORIGIN, "https://d111.cloudfront.net".parse().unwrap());
            request
        };
        let routes = routes();
        let known = testkit::requests::call(&|request| unmatched(&routes, request), preflight("/products")).await;
        assert_eq!(known.status(), 204);
        assert_eq!(known.headers()["allow"], "GET, POST");
        let unknown = testkit::requests::call(&|request| unmatched(&routes, request), preflight("/nothing")).await;
        assert_eq!(unknown.status(), 404);
    }

    #[tokio::test]
    async fn an_unknown_path_is_404_whatever_the_method() {
        for method in [Method::GET, Method::TRACE] {
            let response = answer(method, "/nothing/here").await;
            assert_eq!(response.status(), 404);
            assert!(response.headers().get("allow").is_none());
            assert_eq!(response.headers()["content-type"], "application/problem+json");
        }
    }
}
