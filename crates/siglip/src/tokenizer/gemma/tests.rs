//! The Gemma tokenizer's rules on the committed fixture (tests/fixtures/siglip2/gemma-tokenizer:
//! a small Gemma-shaped vocabulary with `<EOS>` as an extra literal token, id 20).
//! `tests/gemma_tokenizer_parity.rs` compares it with transformers on a thousand strings.

use std::path::PathBuf;

use super::*;

const EOS: u32 = 1;
const PAD: u32 = 0;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/siglip2/gemma-tokenizer")
}

fn tokenizer(lowercase: TextLowercase) -> GemmaTokenizer {
    let dir = fixture();
    GemmaTokenizer::load(
        &dir.join("tokenizer.json"),
        Some(&dir.join("tokenizer_config.json")),
        64,
        lowercase,
    )
    .unwrap()
}

/// The ids before `<eos>` and the padding.
fn content(ids: &[u32]) -> &[u32] {
    let end = ids.iter().rposition(|&id| id == EOS).unwrap();
    &ids[..end]
}

/// The ids of the whole text, with no truncation, no post-processor and no padding.
fn all_ids(tokenizer: &GemmaTokenizer, text: &str) -> Vec<u32> {
    let mut bare = tokenizer.tokenizer.clone();
    bare.with_truncation(None).unwrap();
    bare.with_padding(None);
    bare.encode_fast(text, false).unwrap().get_ids().to_vec()
}

#[test]
fn auto_follows_do_lower_case() {
    assert!(tokenizer(TextLowercase::Auto).lowercases());
    assert!(tokenizer(TextLowercase::On).lowercases());
    assert!(!tokenizer(TextLowercase::Off).lowercases());
    let bare = GemmaTokenizer::load(
        &fixture().join("tokenizer.json"),
        None,
        64,
        TextLowercase::Auto,
    );
    assert!(
        !bare.unwrap().lowercases(),
        "no do_lower_case: as transformers, no lowercasing"
    );
}

/// transformers 5.24's ids, `GemmaTokenizer.from_pretrained(dir)(text, padding="max_length",
/// max_length=12, truncation=True)`, for the fixture's tokenizer.json (or one whose
/// post_processor is null) beside various configs: the post-processor is the file's whatever
/// add_bos_token / add_eos_token say, and padding is on the left unless the config says right.
#[test]
fn post_processor_and_padding_side_as_transformers_reads_them() {
    let file = std::fs::read_to_string(fixture().join("tokenizer.json")).unwrap();
    let mut no_post_processor: serde_json::Value = serde_json::from_str(&file).unwrap();
    no_post_processor["post_processor"] = serde_json::Value::Null;
    let no_post_processor = no_post_processor.to_string();
    let dir = std::env::temp_dir().join(format!("siglip-gemma-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = "A cat <EOS>";
    let long = short.to_string() + &" A cat <EOS>".repeat(4) + " ";
    let truncated = [1766, 353, 1750, 20, 303, 353, 1750, 20, 303, 353, 1750];
    #[rustfmt::skip]
    let cases = [
        (&file, None, [0, 0, 0, 0, 0, 0, 0, 1766, 353, 1750, 20, 1], [&truncated[..], &[1]].concat()),
        (&file, Some(r#"{"add_bos_token": true, "padding_side": "right"}"#),
         [1766, 353, 1750, 20, 1, 0, 0, 0, 0, 0, 0, 0], [&truncated[..], &[1]].concat()),
        (&file, Some(r#"{"add_eos_token": false, "padding_side": "right"}"#),
         [1766, 353, 1750, 20, 1, 0, 0, 0, 0, 0, 0, 0], [&truncated[..], &[1]].concat()),
        (&no_post_processor, Some(r#"{"add_eos_token": true, "padding_side": "right"}"#),
         [1766, 353, 1750, 20, 0, 0, 0, 0, 0, 0, 0, 0], [&truncated[..], &[20]].concat()),
    ];
    for (json, config, expected_short, expected_long) in cases {
        let config = config.map(|text| {
            let path = dir.join("tokenizer_config.json");
            std::fs::write(&path, text).unwrap();
            path
        });
        let t =
            GemmaTokenizer::from_json(json, config.as_deref(), 12, TextLowercase::Auto).unwrap();
        assert_eq!(t.encode(short), expected_short, "{config:?}");
        assert_eq!(t.encode(&long), expected_long, "{config:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_final_capital_sigma_lowercases_to_sigma_not_final_sigma() {
    let lower = tokenizer(TextLowercase::On);
    let as_is = tokenizer(TextLowercase::Off);
    // The vocabulary has both, so the two lowercasings differ.
    assert_ne!(lower.encode("οδοσ"), lower.encode("οδος"));
    assert_eq!(lower.encode("ΟΔΟΣ"), lower.encode("οδοσ"));
    assert_eq!(lower.encode("ΟΔΟΣ ΣΟΦΙΑΣ."), lower.encode("οδοσ σοφιασ."));
    assert_ne!(as_is.encode("ΟΔΟΣ"), as_is.encode("οδοσ"));
}

#[test]
fn literal_added_tokens_match_before_lowercasing() {
    let lower = tokenizer(TextLowercase::On);
    let start_of_turn = lower.tokenizer.token_to_id("<start_of_turn>").unwrap();
    let literal_eos = lower.tokenizer.token_to_id("<EOS>").unwrap();
    assert_eq!(content(&lower.encode("<start_of_turn>")), [start_of_turn]);
    assert_eq!(content(&lower.encode("<eos>")), [EOS]);
    // Matched as written, then left alone by the normalizer.
    assert_eq!(content(&lower.encode("<EOS>")), [literal_eos]);
    // Not matched as written: lowercased to the text of a token, which is no longer matched.
    for text in ["<START_OF_TURN>", "<Start_Of_Turn>", "<Eos>"] {
        let ids = lower.encode(text);
        let lowered = content(&ids);
        assert!(lowered.len() > 1, "{text}: {lowered:?}");
        assert!(!lowered.contains(&start_of_turn) && !lowered.contains(&EOS));
    }
    let as_is = tokenizer(TextLowercase::Off);
    assert_ne!(
        as_is.encode("<Start_Of_Turn>"),
        lower.encode("<Start_Of_Turn>")
    );
}

#[test]
fn truncation_keeps_eos_last_and_padding_fills_with_pad() {
    let t = tokenizer(TextLowercase::Off);
    let short = t.encode("a cat");
    assert_eq!(short.len(), 64);
    let eos_at = short.iter().position(|&id| id == EOS).unwrap();
    assert!(short[eos_at + 1..].iter().all(|&id| id == PAD));
    assert_eq!(t.encode(""), [[EOS].as_slice(), &[PAD; 63]].concat());
    // Texts with 62 to 66 ids before eos: at most 63 are kept, and eos is always there.
    let word = all_ids(&t, " cat");
    assert_eq!(word.len(), 1, "\" cat\" is one piece");
    for n in 62..=66 {
        let text = "cat".to_string() + &" cat".repeat(n - 1);
        let ids = t.encode(&text);
        assert_eq!(ids.len(), 64);
        let kept = n.min(63);
        assert_eq!(ids[kept], EOS, "{n} ids");
        assert_eq!(&ids[..kept], &all_ids(&t, &text)[..kept]);
        assert!(ids[kept + 1..].iter().all(|&id| id == PAD));
    }
}

/// Texts from pieces of every kind (cased words, accents, Greek, CJK in and out of the
/// vocabulary, emoji, added tokens, runs of spaces, tabs and newlines).
const PARTS: &[&str] = &[
    "A photo of",
    "the CAT",
    "ΟΔΟΣ",
    "Σίσυφος",
    "café",
    "cafe\u{301}",
    "猫",
    "象",
    "龍猫",
    "🐱",
    "👍🏽",
    "<start_of_turn>",
    "<EOS>",
    "<eos>",
    "<Eos>",
    "<table>",
    "x²",
    "İstanbul",
    "ﬁsh",
    "12345",
    "...",
    "\n",
    "\n\n",
    "\t",
    "  ",
    "   ",
    "▁",
    "▁▁",
    "a▁b",
    "-",
    "don't",
    "Zürich",
    "ǅemal",
    "ẞ",
    "",
];

fn mixed_text(seed: usize, length: usize, separators: &[&str]) -> String {
    let mut text = String::new();
    let mut i = seed;
    while text.len() < length {
        text.push_str(PARTS[i % PARTS.len()]);
        text.push_str(separators[i % separators.len()]);
        i = i.wrapping_mul(31).wrapping_add(7) % 1_000_003;
    }
    text
}

/// Every cut the rule calls safe splits the ids: those of the text before it come first.
#[test]
fn every_safe_cut_keeps_the_first_ids() {
    for lowercase in [TextLowercase::On, TextLowercase::Off] {
        let t = tokenizer(lowercase);
        let mut safe = 0;
        for (seed, separators) in [(1, &[" "][..]), (2, &[""]), (3, &["", " ", "\t", "  "])] {
            let text = mixed_text(seed, 600, separators);
            let whole = all_ids(&t, &text);
            for cut in (1..text.len()).filter(|&c| text.is_char_boundary(c)) {
                if t.cuts.last_cut(&text, cut - 1, cut) != Some(cut) {
                    continue;
                }
                safe += 1;
                let before = all_ids(&t, &text[..cut]);
                assert_eq!(
                    before,
                    whole[..before.len()],
                    "{lowercase}: {:?}|{:?}",
                    &text[..cut],
                    &text[cut..]
                );
            }
        }
        assert!(safe > 100, "{lowercase}: only {safe} safe cuts");
    }
}

/// Long texts, with spaces and without: `encode`, which stops at the first long enough
/// prefix, gives the whole text's ids.
#[test]
fn long_texts_give_the_whole_texts_ids() {
    for lowercase in [TextLowercase::On, TextLowercase::Off] {
        let t = tokenizer(lowercase);
        for length in [1_000, 3_000, 60_000] {
            for separators in [&[" "][..], &[""], &[". "], &["", "\n", "  "]] {
                let text = mixed_text(length, length, separators);
                assert_eq!(
                    t.encode(&text),
                    t.encode_whole(&text),
                    "{lowercase}, {length} bytes joined by {separators:?}"
                );
            }
        }
    }
}

/// A 10 MB text costs what its first kilobytes cost.
#[test]
fn a_ten_megabyte_text_is_cheap() {
    let t = tokenizer(TextLowercase::On);
    let text = mixed_text(5, 10_000_000, &[" ", "", "  "]);
    let start = std::time::Instant::now();
    let ids = t.encode(&text);
    let took = start.elapsed();
    assert_eq!(ids[63], EOS);
    assert_eq!(ids[..63], all_ids(&t, &text[..100_000])[..63]);
    assert!(took < std::time::Duration::from_millis(200), "{took:?}");
}
