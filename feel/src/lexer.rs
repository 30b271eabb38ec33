//! Lexer: FEEL text to tokens with byte positions. Built-in function names
//! that contain spaces (`string length`, `date and time`) become one name
//! token when they are followed by `(`.

use crate::error::ParseError;

/// Longest expression text accepted.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Built-in names made of several words, longest first where one is a prefix of another.
const MULTI_WORD_NAMES: &[&str] = &[
    "years and months duration",
    "date and time",
    "string length",
    "upper case",
    "lower case",
    "substring before",
    "substring after",
    "starts with",
    "ends with",
    "list contains",
    "list replace",
    "insert before",
    "index of",
    "distinct values",
    "duplicate values",
    "string join",
    "is empty",
    "is blank",
    "is defined",
    "get or else",
    "get value",
    "get entries",
    "context put",
    "context merge",
    "put all",
    "round up",
    "round down",
    "round half up",
    "round half down",
    "round half even",
    "day of year",
    "day of week",
    "month of year",
    "week of year",
    "last day of month",
    "to base64",
    "from base64",
    "from json",
    "to json",
    "met by",
    "overlaps before",
    "overlaps after",
    "finished by",
    "started by",
    "random number",
];

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A name or keyword (keywords are names the parser recognises).
    Name(String),
    /// A name in backticks: never a keyword.
    Quoted(String),
    /// Number text.
    Number(String),
    /// String literal (escapes resolved).
    Str(String),
    /// `@"..."` temporal literal text.
    At(String),
    /// Punctuation or operator.
    Sym(&'static str),
    /// End of input.
    End,
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug)]
pub struct Token {
    /// Kind and text.
    pub tok: Tok,
    /// Byte offset in the source.
    pub pos: usize,
}

const SYMBOLS: &[&str] = &[
    "..", "**", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "+", "-", "*", "/",
    "=", "<", ">", "?",
];

/// DMN's NameStartChar also admits every supplementary-plane character
/// (`#x10000-#xEFFFF`), such as emoji.
fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$' || ('\u{10000}'..='\u{EFFFF}').contains(&c)
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_alphanumeric()
}

/// Splits `src` into tokens. `known` holds names that contain spaces or
/// operator characters (longest first): where a token would start with one
/// of them, it is read as that one name (as if in backticks).
pub fn lex(src: &str, known: &[String]) -> Result<Vec<Token>, ParseError> {
    if src.len() > MAX_SOURCE_BYTES {
        return Err(ParseError::new(
            0,
            format!(
                "expression of {} bytes exceeds the limit of {MAX_SOURCE_BYTES}",
                src.len()
            ),
        ));
    }
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < src.len() {
        let c = src[i..].chars().next().expect("i is on a char boundary");
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(src.len(), |n| i + n);
            continue;
        }
        if src[i..].starts_with("/*") {
            match src[i + 2..].find("*/") {
                Some(n) => i += n + 4,
                None => return Err(ParseError::new(i, "unterminated comment: expected '*/'")),
            }
            continue;
        }
        let start = i;
        if let Some(k) = known_at(src, i, known) {
            i += k.len();
            out.push(Token {
                tok: Tok::Quoted(k.to_string()),
                pos: start,
            });
        } else if c.is_ascii_digit()
            || (c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i = number_end(bytes, i);
            out.push(Token {
                tok: Tok::Number(src[start..i].to_string()),
                pos: start,
            });
        } else if c == '"' {
            let (s, end) = string(src, i)?;
            i = end;
            out.push(Token {
                tok: Tok::Str(s),
                pos: start,
            });
        } else if c == '@' && bytes.get(i + 1) == Some(&b'"') {
            let (s, end) = string(src, i + 1)?;
            i = end;
            out.push(Token {
                tok: Tok::At(s),
                pos: start,
            });
        } else if c == '`' {
            let end = src[i + 1..]
                .find('`')
                .ok_or_else(|| ParseError::new(i, "unterminated name: expected a closing '`'"))?;
            out.push(Token {
                tok: Tok::Quoted(src[i + 1..i + 1 + end].to_string()),
                pos: start,
            });
            i += end + 2;
        } else if is_name_start(c) {
            let (name, end) = name(src, i);
            i = end;
            out.push(Token {
                tok: Tok::Name(name),
                pos: start,
            });
        } else if let Some(sym) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            i += sym.len();
            out.push(Token {
                tok: Tok::Sym(sym),
                pos: start,
            });
        } else {
            return Err(ParseError::new(i, format!("unexpected character '{c}'")));
        }
    }
    out.push(Token {
        tok: Tok::End,
        pos: src.len(),
    });
    Ok(out)
}

/// The longest known name that starts at `i` and ends at a word boundary.
fn known_at<'k>(src: &str, i: usize, known: &'k [String]) -> Option<&'k str> {
    let preceded_by_name = src[..i].chars().next_back().is_some_and(is_name_char);
    if preceded_by_name {
        return None;
    }
    known
        .iter()
        .find(|k| {
            src[i..].starts_with(k.as_str())
                && !(k.ends_with(is_name_char)
                    && src[i + k.len()..].chars().next().is_some_and(is_name_char))
        })
        .map(|k| k.as_str())
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            return j;
        }
    }
    i
}

fn word_end(src: &str, i: usize) -> usize {
    src[i..]
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map_or(src.len(), |(n, _)| i + n)
}

/// A name, merged with following words when they spell a multi-word built-in called with `(`.
fn name(src: &str, i: usize) -> (String, usize) {
    let first_end = word_end(src, i);
    let first = &src[i..first_end];
    let could_be_multi_word = |c: &&&str| {
        c.strip_prefix(first)
            .is_some_and(|rest| rest.starts_with(' '))
    };
    for candidate in MULTI_WORD_NAMES.iter().filter(could_be_multi_word) {
        let mut pos = i;
        let mut ok = true;
        for (n, word) in candidate.split(' ').enumerate() {
            if n > 0 {
                let ws = src[pos..].len() - src[pos..].trim_start().len();
                if ws == 0 {
                    ok = false;
                    break;
                }
                pos += ws;
            }
            let end = word_end(src, pos);
            if &src[pos..end] != word {
                ok = false;
                break;
            }
            pos = end;
        }
        if ok && src[pos..].trim_start().starts_with('(') {
            return (candidate.to_string(), pos);
        }
    }
    (src[i..first_end].to_string(), first_end)
}

fn string(src: &str, open: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = src[open + 1..].char_indices();
    while let Some((n, c)) = chars.next() {
        let at = open + 1 + n;
        match c {
            '"' => return Ok((out, at + 1)),
            '\\' => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| ParseError::new(at, "unterminated string: expected '\"'"))?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    '\\' => out.push('\\'),
                    'u' | 'U' => {
                        let width = if e == 'U' { 6 } else { 4 };
                        let hex: String = chars.by_ref().take(width).map(|(_, h)| h).collect();
                        let bad = || {
                            ParseError::new(
                                at,
                                "invalid escape: expected \\u and 4 or \\U and 6 hex digits",
                            )
                        };
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == width)
                            .ok_or_else(bad)?;
                        // A UTF-16 surrogate pair written as two escapes is one character.
                        if (0xD800..0xDC00).contains(&code) {
                            let rest = chars.as_str();
                            let low = rest
                                .strip_prefix("\\u")
                                .or_else(|| rest.strip_prefix("\\U"))
                                .and_then(|r| r.get(..4))
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .filter(|l| (0xDC00..0xE000).contains(l));
                            if let Some(low) = low {
                                chars.by_ref().take(6).for_each(drop);
                                let c = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                                continue;
                            }
                        }
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    }
                    // Regex escapes such as `\d` pass through for the regex functions.
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(ParseError::new(open, "unterminated string: expected '\"'"))
}
