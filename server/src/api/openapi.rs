//! The OpenAPI document, generated from the route table so that it lists
//! exactly the routes the server answers.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{json, Map, Value};

use super::{route_docs, Auth, RouteDoc};

pub async fn document() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(build).clone())
}

fn security(auth: Auth) -> Value {
    match auth {
        Auth::Public => json!([]),
        Auth::Station => json!([{"stationKey": []}]),
        Auth::User => json!([{"bearer": []}, {"consoleCookie": [], "csrfToken": []}]),
        Auth::Console => json!([{"consoleCookie": []}]),
    }
}

fn operation(route: &RouteDoc) -> Value {
    let parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let error = json!({"$ref": "#/components/responses/Error"});
    if route.path.starts_with("/console") && !route.path.ends_with(".json") {
        // The web console's pages and files: HTML (or CSS, JavaScript) for a browser.
        return json!({
            "summary": route.summary,
            "operationId": format!("{} {}", route.method, route.path),
            "parameters": parameters,
            "security": security(route.auth),
            "responses": {
                "200": {"description": "A page", "content": {"text/html": {}}},
                "303": {"description": "On to the next page (the login page when not logged in)"},
                "4XX": {"description": "A page in plain words", "content": {"text/html": {}}},
            },
        });
    }
    json!({
        "summary": route.summary,
        "operationId": format!("{} {}", route.method, route.path),
        "parameters": parameters,
        "security": security(route.auth),
        "responses": {
            "200": {"description": "Done", "content": {"application/json": {}}},
            "4XX": error,
            "5XX": error,
        },
    })
}

fn build() -> Value {
    let mut paths = Map::new();
    for route in route_docs() {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.as_str().to_lowercase(), operation(&route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "TraitorTrack",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Bag tracking: stations link child bags into parent bags; billers group parents into bills.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "consoleCookie": {"type": "apiKey", "in": "cookie", "name": crate::sessions::COOKIE},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
                "stationKey": {"type": "apiKey", "in": "header", "name": "X-Station-Key"},
            },
            "responses": {
                "Error": {
                    "description": "Refused, with a stable code and a message in plain words",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"error": {"type": "object", "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        }}},
                    }}},
                },
            },
        },
    })
}
