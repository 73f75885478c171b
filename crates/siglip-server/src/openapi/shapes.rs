//! Schemas for what the hand-written parsers accept. The request fields that take images, labels
//! and inputs are read by `json_input`'s bounded parsers (`Item`, `List`, `OneOrMany`,
//! `WholeNumber`) and by the multipart reader, whose Rust types do not say which JSON shapes
//! they accept; the types here do, and the request structs point at them with
//! `#[schema(value_type = ...)]`. They are never built: they exist to be described.
#![allow(dead_code)]

use serde_json::Value;
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, OneOfBuilder, Schema};
use utoipa::openapi::{Object, ObjectBuilder, Ref, RefOr, Type};
use utoipa::{PartialSchema, ToSchema};

/// An image input (`image_input::parse_image`): a string, `{"url": ...}`, or an object whose
/// `image_url` holds one; `anyOf`, since an object may hold both (`url` wins).
pub struct ImageInput;

impl PartialSchema for ImageInput {
    fn schema() -> RefOr<Schema> {
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A data URL, base64, or an http(s) URL"));
        AnyOfBuilder::new()
            .item(text)
            .item(Ref::from_schema_name(ImageUrlField::name()))
            .item(Ref::from_schema_name(ImageContentPart::name()))
            .description(Some(
                "An image: a data URL (`data:image/png;base64,...`), bare base64 (standard or \
                 URL-safe alphabet, padding optional), or an `http(s)://` URL where the server \
                 fetches URLs (`url_fetch.enabled`; otherwise 400 `image_url_disabled`); or \
                 `{\"url\": ...}`; or an OpenAI content part `{\"type\": \"image_url\", \
                 \"image_url\": ...}`. JPEG, PNG, WebP, GIF (first frame) and BMP decode.",
            ))
            .into()
    }
}

impl ToSchema for ImageInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ImageUrlField::name().into(), ImageUrlField::schema()));
        schemas.push((ImageContentPart::name().into(), ImageContentPart::schema()));
        <ImageContentPart as ToSchema>::schemas(schemas);
    }
}

/// An image as `{"url": ...}` (which wins over an `image_url` beside it).
#[derive(ToSchema)]
pub struct ImageUrlField {
    /// A data URL, base64, or an http(s) URL.
    url: String,
}

/// An image as an OpenAI content part; its `type` is not checked here.
#[derive(ToSchema)]
pub struct ImageContentPart {
    /// `image_url`, as OpenAI sends it.
    #[serde(rename = "type")]
    #[schema(value_type = Value, required = false)]
    kind: Option<Value>,
    /// The image: a string, or `{"url": ..., "detail": ...}`.
    image_url: ImageUrl,
}

/// `image_url` of a content part.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ImageUrl {
    /// A data URL, base64, or an http(s) URL.
    Text(String),
    /// OpenAI's shape.
    Object(ImageUrlObject),
}

/// `{"url": ..., "detail": ...}`.
#[derive(ToSchema)]
pub struct ImageUrlObject {
    /// A data URL, base64, or an http(s) URL.
    url: String,
    /// Accepted and ignored (the image is always read whole).
    #[schema(value_type = Value, required = false)]
    detail: Option<Value>,
}

/// A candidate label: any text with at least one character that is not white space.
#[derive(ToSchema)]
#[schema(pattern = r"\S", example = "cat")]
pub struct Label(String);

/// `input` of `/v1/embeddings`: one string, or a non-empty array of strings and content parts.
pub struct EmbeddingInput;

impl PartialSchema for EmbeddingInput {
    fn schema() -> RefOr<Schema> {
        let one = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("One text (an image with `\"modality\": \"image\"`)"));
        let many = ArrayBuilder::new()
            .items(Ref::from_schema_name(EmbeddingInputItem::name()))
            .min_items(Some(1))
            .description(Some("Texts and images, answered in this order"));
        OneOfBuilder::new()
            .item(one)
            .item(many)
            .description(Some(
                "One string, or a non-empty array of strings and content parts",
            ))
            .into()
    }
}

impl ToSchema for EmbeddingInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            EmbeddingInputItem::name().into(),
            EmbeddingInputItem::schema(),
        ));
        <EmbeddingInputItem as ToSchema>::schemas(schemas);
    }
}

/// One entry of an `input` array.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInputItem {
    /// A text (an image input with `"modality": "image"`).
    Text(String),
    /// `{"type": "text", "text": ...}`.
    TextPart(TextPart),
    /// `{"type": "image_url", "image_url": ...}`.
    ImagePart(ImagePart),
}

/// An OpenAI text content part.
#[derive(ToSchema)]
pub struct TextPart {
    /// Always `text`.
    #[serde(rename = "type")]
    #[schema(inline)]
    kind: TextPartType,
    /// The text, embedded as given (no template).
    text: String,
}

/// The `type` of a text part.
#[derive(ToSchema)]
pub enum TextPartType {
    /// `text`.
    #[serde(rename = "text")]
    Text,
}

/// An OpenAI image content part.
#[derive(ToSchema)]
pub struct ImagePart {
    /// Always `image_url`.
    #[serde(rename = "type")]
    #[schema(inline)]
    kind: ImagePartType,
    /// The image.
    image_url: ImageUrl,
}

/// The `type` of an image part.
#[derive(ToSchema)]
pub enum ImagePartType {
    /// `image_url`.
    #[serde(rename = "image_url")]
    ImageUrl,
}

/// How embeddings are returned.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// An array of numbers.
    Float,
    /// Base64 of the little-endian f32 bytes (what the OpenAI SDKs ask for and decode).
    Base64,
}

/// What plain strings in `input` are.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Texts (the default).
    Text,
    /// Image inputs.
    Image,
}

/// `POST /v1/classify` as `multipart/form-data`.
#[derive(ToSchema)]
pub struct ClassifyForm {
    /// One file per image (`images` is accepted too).
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    image: Vec<Vec<u8>>,
    /// One field per label, or one field holding a JSON array of labels (`candidate_labels`
    /// is accepted too).
    #[schema(min_items = 1)]
    labels: Vec<Label>,
    /// Prompt template: exactly one `{}`, which becomes the label, and no other braces.
    #[schema(pattern = r"^[^{}]*\{\}[^{}]*$")]
    hypothesis_template: Option<String>,
    /// Keep the k best labels of each image.
    #[schema(minimum = 1)]
    top_k: Option<u64>,
    /// The served model id; the first served model answers when absent.
    model: Option<String>,
    /// NaFlex models only: most patches per image (up to `limits.max_num_patches`).
    #[schema(minimum = 1)]
    max_num_patches: Option<u64>,
}

/// What a loaded checkpoint is: `siglip::checkpoint::Summary`, described here so that the
/// library stays free of server crates. `openapi::tests` checks that the two list the same
/// fields.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSummary {
    /// `siglip` (SigLIP 1) or `siglip2` (a Gemma tokenizer, or NaFlex).
    #[schema(inline)]
    family: Family,
    /// `fixed_resolution` or `naflex`.
    #[schema(inline)]
    architecture: Architecture,
    /// Fixed resolution: the input's `[height, width]`; null for NaFlex.
    #[schema(required = true, min_items = 2, max_items = 2)]
    image_size: Option<[u64; 2]>,
    /// Side of one patch, pixels.
    patch_size: u64,
    /// NaFlex: patches per image when a request names none; null for fixed resolution.
    #[schema(required = true)]
    max_num_patches: Option<u64>,
    /// Width of both embeddings.
    embedding_size: u64,
    /// The prompt tokenizer.
    #[schema(inline)]
    tokenizer: TokenizerKind,
    /// Whether prompts are lowercased.
    text_lowercase: bool,
}

/// `family` of a checkpoint.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
enum Family {
    Siglip,
    Siglip2,
}

/// `architecture` of a checkpoint.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
enum Architecture {
    FixedResolution,
    Naflex,
}

/// `tokenizer` of a checkpoint.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
enum TokenizerKind {
    SentencepieceUnigram,
    GemmaBpe,
}

/// A string that is always `value`: the `object` fields of the OpenAI shapes.
fn constant(value: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .build()
}

/// `"list"`.
pub fn list() -> Object {
    constant("list")
}

/// `"classification"`.
pub fn classification() -> Object {
    constant("classification")
}

/// `"embedding"`.
pub fn embedding() -> Object {
    constant("embedding")
}

/// `"model"`.
pub fn model() -> Object {
    constant("model")
}

/// `"siglip-server"`.
pub fn owner() -> Object {
    constant("siglip-server")
}

/// `"ok"`.
pub fn ok() -> Object {
    constant("ok")
}

/// `"ready"`.
pub fn ready() -> Object {
    constant("ready")
}
