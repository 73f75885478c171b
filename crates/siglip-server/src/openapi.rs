//! The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`), derived from the handlers'
//! `#[utoipa::path]` annotations and the request and response types, so that it cannot drift
//! from them. [`document`] adds what the layers in front of the handlers answer (`server::app`):
//! 431 on every route, and 401 with the bearer scheme where API keys guard a route.

pub mod responses;
pub mod shapes;

use utoipa::openapi::path::{Operation, ParameterBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{OpenApi, ToSchema};

use crate::error::ErrorBody;
use crate::routes;
use crate::routes::hf_inference::InferenceError;
use crate::state::AppState;
use responses::AtCapacity;

/// A 4x4 PNG as a data URL: the request examples, so that "Try it out" on `/docs` (and
/// schemathesis's example phase) sends an image that decodes.
pub const EXAMPLE_IMAGE: &str =
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkp\
                                 AAAAEElEQVR42mM4YaMBRwzEcQDxwxLBtO2pWAAAAABJRU5ErkJggg==";

/// The name of the security scheme: `Authorization: Bearer <key>`.
const BEARER: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "siglip-server",
        description = "SigLIP and SigLIP 2 zero-shot image classification and image-text \
            embeddings, OpenAI-compatible. Every error is an OpenAI error object (on `POST /`, \
            the Hugging Face Inference API's); every response carries `x-request-id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::classify::classify,
        routes::embeddings::embeddings,
        routes::models::list,
        routes::models::one,
        routes::hf_inference::zero_shot_image_classification,
        routes::health::health,
        routes::health::ready,
        routes::health::metrics,
    ),
    // The error bodies that only `responses::*` name (they are not collected from the paths).
    components(schemas(ErrorBody, InferenceError, AtCapacity)),
    tags(
        (name = "classification", description = "Zero-shot image classification"),
        (name = "embeddings", description = "Text and image embeddings"),
        (name = "models", description = "The served models"),
        (name = "hugging face", description = "The Hugging Face Inference API's format"),
        (name = "operations", description = "Health, readiness and metrics; never behind API keys"),
    )
)]
struct ApiDoc;

/// The document for this server: the derived one, plus the layers' responses. Routes under
/// `/v1/` and `POST /` require the bearer key when the configuration has API keys.
pub fn document(state: &AppState) -> Document {
    let mut document = ApiDoc::openapi();
    let guarded = !state.config.api_keys.is_empty();
    if guarded {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
    let default_model = state.models.first().map(|m| m.name.as_str());
    for (path, item) in document.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_error(
                operation,
                431,
                "Request headers over `limits.max_headers` or `limits.max_header_bytes`",
            );
            if guarded && (path.starts_with("/v1/") || path == "/") {
                operation.security =
                    Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                add_error(
                    operation,
                    401,
                    "A missing or wrong `Authorization: Bearer` key",
                );
            }
            if let (Some(name), Some(parameters)) = (default_model, &mut operation.parameters) {
                for parameter in parameters.iter_mut().filter(|p| p.name == "id") {
                    *parameter = ParameterBuilder::from(parameter.clone())
                        .example(Some(name.into()))
                        .build();
                }
            }
        }
    }
    document
}

/// Adds `status` with the OpenAI error object to `operation`'s responses.
fn add_error(operation: &mut Operation, status: u16, description: &str) {
    let body = Content::new(Some(Ref::from_schema_name(ErrorBody::name())));
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
        .build();
    operation
        .responses
        .responses
        .insert(status.to_string(), response.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    /// `shapes::CheckpointSummary` describes `siglip::checkpoint::Summary`, which the library
    /// owns: both must list the same fields.
    #[test]
    fn the_checkpoint_summary_schema_has_the_library_fields() {
        let summary = siglip::checkpoint::Summary {
            family: "siglip",
            architecture: "fixed_resolution",
            image_size: Some([224, 224]),
            patch_size: 16,
            max_num_patches: None,
            embedding_size: 768,
            tokenizer: "sentencepiece_unigram",
            text_lowercase: true,
        };
        let serialized = serde_json::to_value(summary).unwrap();
        let sent: Vec<&String> = serialized.as_object().unwrap().keys().collect();
        let schema = serde_json::to_value(shapes::CheckpointSummary::schema()).unwrap();
        let described: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(sent, described);
    }
}
