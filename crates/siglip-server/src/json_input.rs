//! The JSON request fields that take lists and image inputs, parsed straight into small types
//! so that a body never costs much more memory than its own bytes.
//!
//! Parsed into `serde_json::Value`, a 20 MB body of `[0, 0, …]` became ten million values
//! (about 23x its size) before any limit was checked. Here a list keeps at most
//! [`with_list_limit`]'s items and only counts the rest, and anything that is not one of the
//! accepted shapes is skipped without being built (`IgnoredAny`) and reported as `Other`.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

thread_local! {
    /// Items a [`List`] keeps; set by [`with_list_limit`] around one synchronous parse.
    static LIST_LIMIT: Cell<usize> = const { Cell::new(DEFAULT_LIST_LIMIT) };
}

/// Items kept outside [`with_list_limit`] (tests, tools).
const DEFAULT_LIST_LIMIT: usize = 4096;

/// Runs `parse` (one synchronous deserialization) with lists keeping at most `limit` items.
pub fn with_list_limit<R>(limit: usize, parse: impl FnOnce() -> R) -> R {
    let previous = LIST_LIMIT.with(|cell| cell.replace(limit));
    let result = parse();
    LIST_LIMIT.with(|cell| cell.set(previous));
    result
}

/// A JSON array: its first items (up to the limit) and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List<T> {
    /// The first items, at most the limit.
    pub items: Vec<T>,
    /// Items in the array, kept or not.
    pub count: usize,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let limit = LIST_LIMIT.with(Cell::get);
                let mut list = List {
                    items: Vec::new(),
                    count: 0,
                };
                while list.count < limit {
                    match seq.next_element()? {
                        Some(item) => list.items.push(item),
                        None => return Ok(list),
                    }
                    list.count += 1;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    list.count += 1;
                }
                Ok(list)
            }
        }
        deserializer.deserialize_seq(ListVisitor(std::marker::PhantomData))
    }
}

/// One input item: a string, an object of the accepted keys (a content part, or an image
/// given as `{"url": …}`), or anything else (skipped unbuilt; the handler names it).
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A JSON string.
    Text(String),
    /// A JSON object, its known keys read and the rest skipped.
    Part(Part),
    /// A number, array, boolean or null.
    Other,
}

/// The keys of an object input that mean something.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    /// `type`: `text` or `image_url`.
    pub kind: Option<String>,
    /// `text` of a text part.
    pub text: Option<String>,
    /// `url` of an image object.
    pub url: Option<String>,
    /// `image_url` as a string, or its `url`; `Some("")`-free: `None` when it had no string.
    pub image_url: Option<String>,
    /// Whether `image_url` was present at all (it may have had no usable `url`).
    pub has_image_url: bool,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an object")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Item, E> {
        Ok(Item::Text(text.to_string()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Item, E> {
        Ok(Item::Text(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut part = Part::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => part.kind = map.next_value::<Text>()?.0,
                "text" => part.text = map.next_value::<Text>()?.0,
                "url" => part.url = map.next_value::<Text>()?.0,
                "image_url" => {
                    part.has_image_url = true;
                    part.image_url = map.next_value::<ImageUrl>()?.0;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Item::Part(part))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Item::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Item, E> {
        Ok(Item::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Item, E> {
        Ok(Item::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item, E> {
        Ok(Item::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Item, E> {
        Ok(Item::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Item, E> {
        Ok(Item::Other)
    }
}

/// A string, or `None` for any other value (skipped unbuilt).
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(ItemVisitor)? {
            Item::Text(text) => Ok(Text(Some(text))),
            _ => Ok(Text(None)),
        }
    }
}

/// `image_url`: a string, or an object whose `url` is one.
struct ImageUrl(Option<String>);

impl<'de> Deserialize<'de> for ImageUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(ItemVisitor)? {
            Item::Text(text) => Ok(ImageUrl(Some(text))),
            Item::Part(part) => Ok(ImageUrl(part.url)),
            Item::Other => Ok(ImageUrl(None)),
        }
    }
}

/// `input` of `/v1/embeddings`: one item, or a list of them.
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany {
    /// A single string or object.
    One(Item),
    /// An array.
    Many(List<Item>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;
        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an object or an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OneOrMany, A::Error> {
                List::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneOrMany, A::Error> {
                ItemVisitor.visit_map(map).map(OneOrMany::One)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(Item::Text(text.to_string())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(Item::Text(text)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(Item::Other))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(Item::Other))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(Item::Other))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(Item::Other))
            }
            fn visit_unit<E: de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(Item::Other))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

/// A field that must be a whole number (e.g. `max_num_patches`): the number, or what was sent
/// instead, in a few words for the error message. Arrays and objects are skipped unbuilt.
#[derive(Debug, Clone, PartialEq)]
pub enum WholeNumber {
    /// A non-negative integer.
    Value(u64),
    /// Anything else, described.
    Other(String),
}

impl WholeNumber {
    /// A multipart field's text: a whole number, or the text, shortened.
    pub fn from_text(text: &str) -> Self {
        match text.trim().parse() {
            Ok(n) => Self::Value(n),
            Err(_) => Self::Other(described_text(text)),
        }
    }
}

/// `text` as an error message quotes it: at most 20 characters.
fn described_text(text: &str) -> String {
    let short: String = text.chars().take(20).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("the string {short:?}{ellipsis}")
}

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WholeNumberVisitor;
        impl<'de> Visitor<'de> for WholeNumberVisitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<WholeNumber, E> {
                Ok(WholeNumber::Value(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<WholeNumber, E> {
                Ok(u64::try_from(n)
                    .map_or_else(|_| WholeNumber::Other(n.to_string()), WholeNumber::Value))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<WholeNumber, E> {
                Ok(WholeNumber::Other(x.to_string()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<WholeNumber, E> {
                Ok(WholeNumber::Other(b.to_string()))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<WholeNumber, E> {
                Ok(WholeNumber::Other(described_text(text)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<WholeNumber, E> {
                Ok(WholeNumber::Other("null".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WholeNumber, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WholeNumber::Other("an array".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WholeNumber, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WholeNumber::Other("an object".into()))
            }
        }
        deserializer.deserialize_any(WholeNumberVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_and_what_else_was_sent() {
        let parse = |json: &str| serde_json::from_str::<WholeNumber>(json).unwrap();
        assert_eq!(parse("16"), WholeNumber::Value(16));
        assert_eq!(parse("-1"), WholeNumber::Other("-1".into()));
        assert_eq!(parse("1.5"), WholeNumber::Other("1.5".into()));
        assert_eq!(parse("[16, [1, 2]]"), WholeNumber::Other("an array".into()));
        assert_eq!(
            parse(r#"{"a": [1]}"#),
            WholeNumber::Other("an object".into())
        );
        let long = format!("\"{}\"", "x".repeat(1000));
        let WholeNumber::Other(text) = parse(&long) else {
            panic!("a string is not a number")
        };
        assert!(text.len() < 60, "{text}");
        assert_eq!(WholeNumber::from_text(" 9 "), WholeNumber::Value(9));
    }

    #[test]
    fn lists_keep_the_limit_and_count_the_rest() {
        let body = format!("[{}\"x\"]", "0,".repeat(100_000));
        let list: List<Item> = with_list_limit(3, || serde_json::from_str(&body)).unwrap();
        assert_eq!(list.count, 100_001);
        assert_eq!(list.items, vec![Item::Other; 3]);
    }

    #[test]
    fn items_read_the_accepted_shapes() {
        let parse = |json: &str| serde_json::from_str::<Item>(json).unwrap();
        assert_eq!(parse("\"a\""), Item::Text("a".into()));
        assert_eq!(parse("[1, [2]]"), Item::Other);
        let part = |json: &str| match parse(json) {
            Item::Part(part) => part,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            part(r#"{"url": "u", "x": [1, 2]}"#).url.as_deref(),
            Some("u")
        );
        let image = part(r#"{"type": "image_url", "image_url": {"url": "d", "detail": "low"}}"#);
        assert_eq!(
            (image.kind.as_deref(), image.image_url.as_deref()),
            (Some("image_url"), Some("d"))
        );
        assert_eq!(
            part(r#"{"image_url": "s"}"#).image_url.as_deref(),
            Some("s")
        );
        let broken = part(r#"{"image_url": {"uri": "d"}}"#);
        assert!(broken.has_image_url && broken.image_url.is_none());
    }
}
