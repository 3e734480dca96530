//! Request extractors whose errors name the parameter at fault.

use std::future::{Ready, ready};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use serde::de::DeserializeOwned;

use crate::web::problem::Problem;

/// Query-string parameters, deserialised into `T`. Unlike actix's own, a bad value is a 400
/// problem that names the parameter (`seq`: invalid digit), not only what went wrong.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The parameters.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Parses a query string into `T`, naming the parameter at fault on error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Problem> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let detail = if path == "." {
            e.inner().to_string()
        } else {
            format!("query parameter `{path}`: {}", e.inner())
        };
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "Invalid query parameter",
        )
        .detail(detail)
    })
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(req.query_string()).map(Query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        seq: u64,
        size: Option<u64>,
    }

    #[test]
    fn errors_name_the_parameter() {
        let err = parse_query::<Q>("seq=-1").unwrap_err().to_string();
        assert!(err.contains("`seq`"), "{err}");
        let err = parse_query::<Q>("seq=1&sise=2").unwrap_err().to_string();
        assert!(err.contains("sise"), "{err}");
        let err = parse_query::<Q>("size=2").unwrap_err().to_string();
        assert!(err.contains("seq"), "{err}");
        assert_eq!(parse_query::<Q>("seq=3").unwrap().seq, 3);
    }
}
