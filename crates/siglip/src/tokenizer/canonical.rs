//! SigLIP's text canonicalisation, exactly as `SiglipTokenizer.canonicalize_text` in Python:
//! lower-case, drop ASCII `string.punctuation`, collapse `\s+` runs to one space, strip.

/// Python's `str.isspace` (and `re`'s `\s` on str): Unicode White_Space plus the
/// information separators U+001C..U+001F, which Python also counts as whitespace.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Canonicalises `text`; `lower_case` is the tokenizer's `do_lower_case`.
pub fn canonicalize(text: &str, lower_case: bool) -> String {
    let lowered;
    let text = if lower_case {
        lowered = text.to_lowercase();
        &lowered
    } else {
        text
    };
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars().filter(|c| !c.is_ascii_punctuation()) {
        if is_python_space(c) {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_canonicalize_text() {
        assert_eq!(
            canonicalize("This is a photo of A Cat.", true),
            "this is a photo of a cat"
        );
        assert_eq!(
            canonicalize("  a \t\n b\u{3000}c\u{1c}d  ", true),
            "a b c d"
        );
        assert_eq!(canonicalize("!!!...", true), "");
        assert_eq!(canonicalize("don't-stop", true), "dontstop");
        assert_eq!(canonicalize("ΟΔΟΣ Éé", true), "οδος éé");
        assert_eq!(canonicalize("KEEP Case", false), "KEEP Case");
        assert_eq!(canonicalize("a . b", true), "a b");
    }
}
