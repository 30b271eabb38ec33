//! Keys in JSON: the API writes 64-bit keys as strings (`"2251799813685249"`)
//! and takes them as strings or numbers; path segments are parsed here too,
//! so every bad key gets the same 400 naming the field.

use serde::{Deserialize, Deserializer};

use super::problem::Problem;

/// A key in a response: serialised as a decimal string.
pub fn to_string(key: i64) -> String {
    key.to_string()
}

/// Parses a key from a path segment or a JSON string.
pub fn parse(field: &str, text: &str) -> Result<i64, Problem> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|k| *k > 0)
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "'{field}' must be a positive 64-bit key written as decimal digits, got '{text}'"
            ))
        })
}

/// A key field of a request body: a string of digits or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub i64);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(i64),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(n) => Ok(Key(n)),
            Either::Text(t) => t
                .trim()
                .parse()
                .map(Key)
                .map_err(|_| serde::de::Error::custom(format!("'{t}' is not a key"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_as_strings_or_numbers() {
        let k: Key = serde_json::from_str("\"2251799813685249\"").unwrap();
        assert_eq!(k, Key(2251799813685249));
        let k: Key = serde_json::from_str("17").unwrap();
        assert_eq!(k, Key(17));
        assert!(serde_json::from_str::<Key>("\"x1\"").is_err());
    }

    #[test]
    fn bad_path_keys_name_the_field() {
        let p = parse("jobKey", "abc").unwrap_err();
        assert_eq!(p.status, 400);
        assert!(p.detail.contains("jobKey"));
        assert!(parse("jobKey", "-5").is_err());
    }
}
