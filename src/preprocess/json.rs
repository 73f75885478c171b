//! Just enough JSON for `preprocessor_config.json`: a recursive-descent reader into [`Json`].
//!
//! The crate's `image_decode` and `preprocess` modules depend only on `image` and `thiserror`, so
//! this small reader stands in for `serde_json`; numbers are parsed with Rust's correctly
//! rounded `f64` parser, which gives the same values as Python's `json`.

/// A parsed JSON value.
#[derive(Debug, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    /// Keys in file order; a repeated key's last value wins, as in Python.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document.
    pub(super) fn parse(text: &str) -> Result<Json, String> {
        Parser::parse(text)
    }

    /// The value of a number, `None` for anything else.
    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(v) => Some(*v),
            _ => None,
        }
    }
}

/// A recursive-descent JSON reader over `text`; `pos` is always on a char boundary.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn parse(text: &str) -> Result<Json, String> {
        let mut parser = Parser { text, pos: 0 };
        let value = parser.value(0)?;
        parser.skip_whitespace();
        match parser.pos == text.len() {
            true => Ok(value),
            false => Err(format!("unexpected text at byte {}", parser.pos)),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 64 {
            return Err("nested too deeply".into());
        }
        self.skip_whitespace();
        match self.text.as_bytes().get(self.pos) {
            Some(b'{') => {
                let mut fields = Vec::new();
                self.list(b'}', |p| {
                    p.skip_whitespace();
                    let key = p.string()?;
                    p.skip_whitespace();
                    p.expect(b':')?;
                    fields.push((key, p.value(depth + 1)?));
                    Ok(())
                })?;
                Ok(Json::Object(fields))
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.list(b']', |p| Ok(items.push(p.value(depth + 1)?)))?;
                Ok(Json::Array(items))
            }
            Some(b'"') => self.string().map(Json::String),
            _ => {
                let rest = &self.text[self.pos..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
                    .unwrap_or(rest.len());
                self.pos += len;
                match &rest[..len] {
                    "null" => Ok(Json::Null),
                    "true" => Ok(Json::Bool(true)),
                    "false" => Ok(Json::Bool(false)),
                    token => token
                        .parse()
                        .ok()
                        .filter(|v: &f64| v.is_finite())
                        .map(Json::Number)
                        .ok_or_else(|| format!("unexpected {token:?} at byte {}", self.pos - len)),
                }
            }
        }
    }

    /// The comma-separated items of an object or array whose opening bracket is at `pos`.
    fn list(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        self.pos += 1;
        self.skip_whitespace();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            item(self)?;
            self.skip_whitespace();
            if !self.eat(b',') {
                return self.expect(close);
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let end = rest.find(['"', '\\']).ok_or("unterminated string")?;
            out.push_str(&rest[..end]);
            self.pos += end + 1;
            if rest.as_bytes()[end] == b'"' {
                return Ok(out);
            }
            let escape = self.text[self.pos..].chars().next().ok_or("unterminated string")?;
            self.pos += escape.len_utf8();
            out.push(match escape {
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => self.unicode_escape()?,
                other => other,
            });
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already read), joining surrogate pairs.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let hex4 = |p: &mut Self| {
            let digits = p.text.get(p.pos..p.pos + 4).ok_or("truncated \\u escape")?;
            p.pos += 4;
            u32::from_str_radix(digits, 16).map_err(|_| "invalid \\u escape".to_string())
        };
        let mut code = hex4(self)?;
        if (0xD800..0xDC00).contains(&code) && self.text[self.pos..].starts_with("\\u") {
            self.pos += 2;
            code = 0x10000 + ((code - 0xD800) << 10) + (hex4(self)?.wrapping_sub(0xDC00) & 0x3FF);
        }
        Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn skip_whitespace(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len();
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.text.as_bytes().get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        match self.eat(byte) {
            true => Ok(()),
            false => Err(format!("expected '{}' at byte {}", byte as char, self.pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_escapes() {
        let text = r#" {"a": [1, -2.5e-1, true, false, null], "s": "\u00e9\ud83d\ude00\n\"x\"", "o": {}} "#;
        let Json::Object(fields) = Json::parse(text).unwrap() else { panic!("not an object") };
        assert_eq!(fields[0].0, "a");
        let numbers = [Json::Number(1.0), Json::Number(-0.25), Json::Bool(true)];
        let Json::Array(items) = &fields[0].1 else { panic!("not an array") };
        assert_eq!(&items[..3], &numbers);
        assert_eq!(items[4], Json::Null);
        assert_eq!(fields[1].1, Json::String("é😀\n\"x\"".into()));
        assert_eq!(fields[2].1, Json::Object(vec![]));
        assert_eq!(Json::parse("0.00392156862745098").unwrap().as_f64(), Some(1.0 / 255.0));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"open", "{} x", "nul", "1e999", "\"\\u12\""] {
            assert!(Json::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Json::parse(&"[".repeat(100)).is_err());
    }
}
