//! The HTTP API as an OpenAPI 3.1 document, served at `/openapi.json`. Each handler carries
//! its own description (`#[utoipa::path]`), so the document is written beside the code it
//! describes; a test holds it to the routes.

use utoipa::OpenApi;

/// The body of every error answer. Label Studio shows `detail`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// The HTTP status.
    status: u16,
    /// What went wrong, in words.
    detail: String,
    /// A fixed word a script can branch on: `no_model`, `busy`, `bad_settings`, `forbidden`, ...
    error_type: String,
    /// `bad_settings`: what is wrong with each setting.
    errors: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ls-ml-backend",
        description = "A Label Studio ML backend serving ONNX models through adapter plugins. \
                       Every route but /health and /webhook needs Basic auth when it is on."
    ),
    paths(
        super::health::handle,
        super::setup::handle,
        super::predict::handle,
        super::webhook::handle,
        super::info::versions,
        super::info::models,
        super::info::reload,
        super::info::plugins,
        super::manage::upload,
        super::manage::download,
        super::manage::delete,
        super::manage::settings,
        super::manage::set_settings,
        super::manage::try_model,
        super::jobs::submit,
        super::jobs::list,
        super::jobs::show,
        super::jobs::cancel,
        super::jobs::legacy_train,
        super::jobs::rollback,
        super::metrics::handle,
        super::ui::page,
        document,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "label-studio", description = "What Label Studio calls"),
        (name = "models", description = "The models folder over HTTP"),
        (name = "jobs", description = "Trainings and project prediction jobs"),
        (name = "server", description = "The server itself"),
    )
)]
struct ApiDoc;

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "server",
    description = "This document.",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub fn document() -> warp::reply::Response {
    use warp::Reply as _;
    warp::reply::json(&ApiDoc::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(METHOD, /path/{})` of every route in the route table (http/mod.rs), read from its
    /// source: each `warp::path!(...)` with the method filter that follows it.
    fn routes_in_source() -> BTreeSet<(String, String)> {
        let source = include_str!("mod.rs");
        let mut found = BTreeSet::new();
        for (at, _) in source.match_indices("warp::path!(") {
            let rest = &source[at + "warp::path!(".len()..];
            let Some(end) = rest.find(')') else { continue };
            let path: Vec<String> = rest[..end]
                .split('/')
                .map(|segment| {
                    let segment = segment.trim();
                    if segment == "String" || segment == "u64" {
                        "{}".to_string()
                    } else {
                        segment.trim_matches('"').to_string()
                    }
                })
                .collect();
            let after = &rest[end..];
            let method = ["get", "post", "put", "delete"]
                .into_iter()
                .filter_map(|m| after.find(&format!("warp::{m}()")).map(|i| (i, m)))
                .min()
                .map(|(_, m)| m.to_uppercase())
                .expect("a method filter after the path");
            found.insert((method, format!("/{}", path.join("/"))));
        }
        found
    }

    fn routes_in_document() -> BTreeSet<(String, String)> {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("document");
        let mut found = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            let generic: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            for method in item.as_object().expect("path item").keys() {
                found.insert((method.to_uppercase(), generic.clone()));
            }
        }
        found
    }

    #[test]
    fn every_route_is_in_the_document_and_nothing_else() {
        let source = routes_in_source();
        assert!(source.len() > 20, "the route table was not read: {source:?}");
        let document = routes_in_document();
        let missing: Vec<_> = source.difference(&document).collect();
        let extra: Vec<_> = document.difference(&source).collect();
        assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
        assert!(extra.is_empty(), "documented routes that do not exist: {extra:?}");
    }

    #[test]
    fn errors_have_their_schema() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("document");
        let error = &document["components"]["schemas"]["ErrorBody"]["properties"];
        for field in ["status", "detail", "error_type"] {
            assert!(error.get(field).is_some(), "{field} in {error}");
        }
        let predict = &document["paths"]["/predict"]["post"]["responses"]["400"];
        assert!(predict.to_string().contains("ErrorBody"), "{predict}");
    }
}
