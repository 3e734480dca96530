//! The answer to a request no route took: 405 with an `Allow` header when the path is one the
//! API describes but the method is not (RFC 9110 section 15.5.6), else the 404 problem.
//!
//! Routes are declared with actix's method macros (`#[get(..)]`), whose guards make a request
//! with another method fall through to the default service as if the path were unknown. The
//! methods each path serves are taken from the OpenAPI document, which is generated from the
//! same handlers, so the two cannot drift apart: a path added to the document answers 405 for
//! the methods it does not list, with no table to keep by hand.

use actix_web::dev::ResourceDef;
use actix_web::http::StatusCode;
use actix_web::http::header::ALLOW;
use actix_web::{HttpRequest, HttpResponse, web};

use super::problem::{self, Problem};

/// The paths of the API document, each with the methods it serves.
#[derive(Debug, Default)]
pub struct KnownPaths(Vec<(ResourceDef, Vec<&'static str>)>);

impl KnownPaths {
    /// The paths and methods of an OpenAPI document (path templates such as
    /// `/api/v1/orders/{id}` are actix patterns too).
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let paths = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let declared = [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.head.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("OPTIONS", item.options.is_some()),
                    ("TRACE", item.trace.is_some()),
                ];
                let methods = declared
                    .into_iter()
                    .filter_map(|(method, present)| present.then_some(method))
                    .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self(paths)
    }

    /// The methods `path` serves, if it is a path of the document.
    pub fn allowed(&self, path: &str) -> Option<&[&'static str]> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }
}

/// The default service: 405 with `Allow` for a known path, 404 otherwise.
pub async fn unrouted(req: HttpRequest, known: web::Data<KnownPaths>) -> HttpResponse {
    let Some(methods) = known.allowed(req.path()).filter(|m| !m.is_empty()) else {
        return problem::not_found_response();
    };
    let allow = methods.join(", ");
    let mut response = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    )
    .detail(format!(
        "this path does not serve {}; it serves {allow}",
        req.method()
    ))
    .response();
    if let Ok(value) = allow.parse() {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    #[test]
    fn the_api_document_gives_each_path_its_methods() {
        let known = KnownPaths::from_openapi(&super::super::openapi::ApiDoc::openapi());
        assert_eq!(known.allowed("/api/v1/orders"), Some(&["POST"][..]));
        assert_eq!(
            known.allowed("/api/v1/orders/abc/messages"),
            Some(&["GET", "POST"][..])
        );
        assert_eq!(known.allowed("/api/v1/orders/abc"), Some(&["GET"][..]));
        assert_eq!(known.allowed("/api/v1/orders/abc/nothing"), None);
        assert_eq!(known.allowed("/no/such/path"), None);
    }
}
