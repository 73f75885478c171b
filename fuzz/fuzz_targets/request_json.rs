//! JSON request bodies: `ClassifyRequest` and `EmbeddingsRequest` parsed as the server parses
//! them (`serde_json::from_slice` under `json_input::with_list_limit`).
//!
//! Checks:
//! - a body parses under the small limit exactly when it parses under the large one, except
//!   that invalid UTF-8 in a skipped string goes unnoticed (serde_json checks only the strings
//!   it builds): then a list must have been cut short (the server refuses such a body);
//! - a list keeps at most the limit's items, counts them all (`count >= items.len()`), and keeps
//!   every item when it has no more than the limit;
//! - the limit changes nothing but the cut: under a larger limit the same body parses the same
//!   way, with the small limit's items a prefix of the large one's and the same count;
//! - what was kept is what the body says: whenever the body is also valid as a
//!   `serde_json::Value`, every list's count is the array's length and each kept item is the
//!   value's shape (a string, the accepted keys of an object, or `Other`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use siglip_server::api::{ClassifyRequest, EmbeddingsRequest};
use siglip_server::json_input::{with_list_limit, Item, List, OneOrMany, Part};

/// Small enough that seeds go past it (the server's is images + labels + 1).
const LIMIT: usize = 3;
const LARGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let value = serde_json::from_slice::<Value>(data).ok();

    let small = with_list_limit(LIMIT, || serde_json::from_slice::<ClassifyRequest>(data));
    let large = with_list_limit(LARGE, || serde_json::from_slice::<ClassifyRequest>(data));
    match (&small, &large) {
        // Items past the limit are skipped unbuilt, and serde_json does not check the UTF-8 of
        // a string it skips: such a body parses only under the smaller limit, always with a
        // list cut short (which the server refuses as over its limit).
        (Ok(s), Err(_)) => assert!(
            [
                s.images.as_ref().is_some_and(cut),
                s.labels.as_ref().is_some_and(cut)
            ]
            .contains(&true),
            "parses under the small limit only, with no list cut: {s:?}"
        ),
        (Err(e), Ok(_)) => panic!("parses under the large limit only: {e}"),
        _ => {}
    }
    if let (Ok(small), Ok(large)) = (small, large) {
        check_list(small.images.as_ref(), large.images.as_ref(), LIMIT);
        check_list(small.labels.as_ref(), large.labels.as_ref(), LIMIT);
        assert_eq!((&small.image, &small.model), (&large.image, &large.model));
        if let Some(value) = value.as_ref().and_then(Value::as_object) {
            if let Some(images) = &large.images {
                check_items(images, &value["images"]);
            }
            if let Some(image) = &large.image {
                check_item(image, &value["image"]);
            }
            if let Some(labels) = &large.labels {
                let array = value
                    .get("labels")
                    .or_else(|| value.get("candidate_labels"))
                    .and_then(Value::as_array)
                    .expect("labels parsed from an array");
                assert_eq!(labels.count, array.len());
                for (label, v) in labels.items.iter().zip(array) {
                    assert_eq!(Some(label.as_str()), v.as_str());
                }
            }
        }
    }

    let small = with_list_limit(LIMIT, || serde_json::from_slice::<EmbeddingsRequest>(data));
    let large = with_list_limit(LARGE, || serde_json::from_slice::<EmbeddingsRequest>(data));
    match (&small, &large) {
        (Ok(s), Err(_)) => assert!(
            matches!(&s.input, OneOrMany::Many(list) if cut(list)),
            "parses under the small limit only, with no list cut: {s:?}"
        ),
        (Err(e), Ok(_)) => panic!("parses under the large limit only: {e}"),
        _ => {}
    }
    if let (Ok(small), Ok(large)) = (small, large) {
        match (&small.input, &large.input) {
            (OneOrMany::Many(s), OneOrMany::Many(l)) => check_list(Some(s), Some(l), LIMIT),
            (OneOrMany::One(s), OneOrMany::One(l)) => assert_eq!(s, l),
            (s, l) => panic!("one body, two shapes: {s:?} / {l:?}"),
        }
        if let Some(value) = value.as_ref().and_then(Value::as_object) {
            match &large.input {
                OneOrMany::Many(list) => check_items(list, &value["input"]),
                OneOrMany::One(item) => {
                    assert!(!value["input"].is_array());
                    check_item(item, &value["input"]);
                }
            }
        }
    }
});

fn cut<T>(list: &List<T>) -> bool {
    list.count > list.items.len()
}

fn check_list<T: PartialEq + std::fmt::Debug>(
    small: Option<&List<T>>,
    large: Option<&List<T>>,
    limit: usize,
) {
    let (small, large) = match (small, large) {
        (Some(s), Some(l)) => (s, l),
        (None, None) => return,
        (s, l) => panic!("present under one limit only: {s:?} / {l:?}"),
    };
    assert!(
        small.items.len() <= limit,
        "{} items kept, limit {limit}",
        small.items.len()
    );
    assert!(small.count >= small.items.len());
    assert_eq!(small.items.len(), small.count.min(limit));
    assert_eq!(small.count, large.count, "the count depends on the limit");
    assert_eq!(large.items.len(), large.count.min(LARGE));
    assert_eq!(small.items[..], large.items[..small.items.len()]);
}

fn check_items(list: &List<Item>, value: &Value) {
    let array = value.as_array().expect("a List parsed from an array");
    assert_eq!(list.count, array.len());
    for (item, v) in list.items.iter().zip(array) {
        check_item(item, v);
    }
}

/// The `Item` the rules in json_input.rs make of `value`, written out independently.
fn check_item(item: &Item, value: &Value) {
    let string = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let expected = match value {
        Value::String(s) => Item::Text(s.clone()),
        Value::Object(map) => Item::Part(Part {
            kind: string(map.get("type")),
            text: string(map.get("text")),
            url: string(map.get("url")),
            image_url: match map.get("image_url") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(inner)) => string(inner.get("url")),
                _ => None,
            },
            has_image_url: map.contains_key("image_url"),
        }),
        _ => Item::Other,
    };
    assert_eq!(item, &expected, "for {value}");
}
