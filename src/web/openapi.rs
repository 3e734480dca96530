//! The OpenAPI 3.1 description of the authorities' API, generated from the handlers and types
//! (utoipa), served at `/api/openapi.json`, with a browsable page at `/api/docs/` whose assets
//! (Swagger UI) are vendored in `templates/vendor/swagger-ui/`.

use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};

use super::api;

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Writ order-intake API",
        description = "The API through which public authorities' systems submit lawful-disclosure orders to the provider, follow them, answer clarification questions and download released data.\n\nEvery request (except `GET /api/v1`) carries `Authorization: Bearer <token>`: a JWT signed with a key registered for the authority (EdDSA, ES256 or RS256, as pinned at registration), with claims `iss` (the authority's registry id), `aud` (see `GET /api/v1`), `iat`, `exp` (at most the configured lifetime after `iat`), optional `nbf`, a single-use `jti`, and three claims binding it to the request: `htm` (the method), `htu` (the path with query) and `bsh` (the SHA-256 of the exact body, base64url without padding; the empty body for GET). A token is accepted once; a client retries with a fresh token (and the same `Idempotency-Key`).\n\nErrors are `application/problem+json` (RFC 9457) with a stable `type`, a `detail`, and for submissions an `errors` list naming every field at fault. A path served with another method than the one asked answers 405 with an `Allow` header.\n\nText in orders and messages must not contain NUL characters (`\\u0000`); such a request is refused (422).",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        api::info,
        api::submit,
        api::order,
        api::withdraw,
        api::messages,
        api::post_message,
        api::disclosure,
        api::rejection,
        crate::web::etsi::hi1,
        crate::web::eevidence::receive,
        crate::web::eevidence::package,
    ),
    components(schemas(crate::web::problem::Problem, crate::orders::FieldError)),
    modifiers(&RequestToken, &AmendmentNeedsDocument),
    tags(
        (name = "orders", description = "Orders and their clarification"),
        (name = "api", description = "About the API")
    )
)]
pub struct ApiDoc;

struct RequestToken;

impl Modify for RequestToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some(
            "A body-bound request token signed with the authority's registered key; see the API description.".into(),
        );
        components.add_security_scheme("request_token", SecurityScheme::Http(scheme));
        components.add_security_scheme(
            "mutual_tls",
            SecurityScheme::MutualTls {
                description: Some(
                    "A client certificate from the configured client CA whose pin an active authority holds (`writ authority pin`); on the mutual-TLS prefixes (`server.tls.client_auth_prefixes`).".into(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
    }
}

/// A message that carries an amended `order` must carry its `document` too, not `null` (JSON
/// Schema's `if`/`then`, which utoipa has no attribute for).
struct AmendmentNeedsDocument;

impl Modify for AmendmentNeedsDocument {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(message))) = components.schemas.get_mut("NewMessage") {
            // One key: the extensions are a hash map, whose order would vary between runs.
            message
                .extensions
                .get_or_insert_with(Default::default)
                .insert(
                    "allOf".into(),
                    serde_json::json!([{
                        "if": {
                            "properties": { "order": { "type": "object" } },
                            "required": ["order"]
                        },
                        "then": {
                            "properties": {
                                "document": { "$ref": "#/components/schemas/DocumentUpload" }
                            },
                            "required": ["document"]
                        }
                    }]),
                );
        }
    }
}

/// The OpenAPI document as pretty JSON (what `/api/openapi.json` serves and the snapshot test
/// compares).
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the OpenAPI document: {e}\"}}"))
}

/// `GET /api/openapi.json`.
#[get("/api/openapi.json")]
pub async fn openapi_json(doc: web::Data<OpenApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-cache"))
        .body(doc.0.clone())
}

/// The rendered document, built once at start.
pub struct OpenApiDocument(pub String);

const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", DOCS_CSP))
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}

/// `GET /api/docs/`: the browsable API documentation.
#[get("/api/docs/")]
pub async fn docs_page() -> HttpResponse {
    asset(
        "text/html; charset=utf-8",
        include_bytes!("../../templates/api-docs.html"),
    )
}

/// `GET /api/docs`: to the page.
#[get("/api/docs")]
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/api/docs/"))
        .finish()
}

/// `GET /api/docs/{asset}`: the vendored Swagger UI files.
#[get("/api/docs/{asset}")]
pub async fn docs_asset(name: web::Path<String>) -> HttpResponse {
    match name.as_str() {
        "swagger-ui-bundle.js" => asset(
            "text/javascript; charset=utf-8",
            include_bytes!("../../templates/vendor/swagger-ui/swagger-ui-bundle.js"),
        ),
        "swagger-ui.css" => asset(
            "text/css; charset=utf-8",
            include_bytes!("../../templates/vendor/swagger-ui/swagger-ui.css"),
        ),
        "init.js" => asset(
            "text/javascript; charset=utf-8",
            include_bytes!("../../templates/vendor/swagger-ui/init.js"),
        ),
        _ => super::problem::not_found_response(),
    }
}
