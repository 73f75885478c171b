//! The fields of SentencePiece's `ModelProto` (sentencepiece_model.proto) that the encoder
//! reads from a `spiece.model` file, decoded with prost.

use prost::Message;

/// `ModelProto`, only the fields the encoder needs (sentencepiece_model.proto).
#[derive(Clone, PartialEq, Message)]
pub(super) struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pub(super) pieces: Vec<SentencePieceProto>,
    #[prost(message, optional, tag = "2")]
    pub(super) trainer_spec: Option<TrainerSpecProto>,
    #[prost(message, optional, tag = "3")]
    pub(super) normalizer_spec: Option<NormalizerSpecProto>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct SentencePieceProto {
    #[prost(string, optional, tag = "1")]
    pub(super) piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    pub(super) score: Option<f32>,
    /// NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6.
    #[prost(int32, optional, tag = "3")]
    pub(super) kind: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct TrainerSpecProto {
    /// UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4.
    #[prost(int32, optional, tag = "3")]
    pub(super) model_type: Option<i32>,
    #[prost(bool, optional, tag = "35")]
    pub(super) byte_fallback: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct NormalizerSpecProto {
    #[prost(bytes = "vec", optional, tag = "2")]
    pub(super) precompiled_charsmap: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3")]
    pub(super) add_dummy_prefix: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    pub(super) remove_extra_whitespaces: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    pub(super) escape_whitespaces: Option<bool>,
}
