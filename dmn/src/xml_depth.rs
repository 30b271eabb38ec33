//! Element nesting depth of an XML text, measured without recursion before
//! the text reaches the XML parser.
//!
//! roxmltree parses an element's content by calling itself once per nesting
//! level, so a resource of a few kilobytes nesting thousands of elements deep
//! overflows the thread's stack. This scan walks the bytes once with a
//! counter instead: `<name ...>` opens a level, `</name>` closes one, and
//! `<name .../>`, comments, CDATA sections, processing instructions and
//! declarations leave the depth alone. Attribute values are skipped by their
//! quotes, so a `>` or `/>` inside one is not markup. Text content never
//! holds a `<` that is not markup, and with document type definitions
//! refused no entity expands into elements, so the count is never below the
//! depth the parser would reach before it stops on an error.

/// Deepest element nesting accepted in a BPMN or DMN resource. Real models
/// nest a few dozen levels (definitions, process, sub-processes, boxed
/// expressions, extension elements); the limit is far above that and far
/// below what the parser and the model builder can recurse through on a
/// shard's stack.
pub const MAX_XML_DEPTH: usize = 256;

/// Where a text first nests deeper than the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based line of the start tag that passes the limit.
    pub line: usize,
    /// The limit.
    pub limit: usize,
}

/// Checks that no element of `xml` nests deeper than `limit` levels.
pub fn check_depth(xml: &[u8], limit: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(lt) = find(xml, i, b"<") {
        let rest = &xml[lt..];
        i = if rest.starts_with(b"<!--") {
            skip_past(xml, lt + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_past(xml, lt + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_past(xml, lt + 2, b"?>")
        } else if rest.starts_with(b"<!") {
            skip_past(xml, lt + 2, b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_past(xml, lt + 2, b">")
        } else {
            let (end, empty) = start_tag_end(xml, lt + 1);
            if !empty {
                depth += 1;
                if depth > limit {
                    let line = 1 + xml[..lt].iter().filter(|&&b| b == b'\n').count();
                    return Err(TooDeep { line, limit });
                }
            }
            end
        };
    }
    Ok(())
}

/// Index of the first `needle` at or after `from`.
fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Index just past the first `needle` at or after `from` (the end when none).
fn skip_past(hay: &[u8], from: usize, needle: &[u8]) -> usize {
    find(hay, from, needle).map_or(hay.len(), |p| p + needle.len())
}

/// Index just past the `>` ending the start tag whose name begins at
/// `from`, and whether the tag is empty (`/>`).
fn start_tag_end(xml: &[u8], from: usize) -> (usize, bool) {
    let mut i = from;
    let mut previous = 0u8;
    while i < xml.len() {
        match xml[i] {
            quote @ (b'"' | b'\'') => {
                i = skip_past(xml, i + 1, &[quote]);
                previous = quote;
                continue;
            }
            b'>' => return (i + 1, previous == b'/'),
            b => previous = b,
        }
        i += 1;
    }
    (xml.len(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        let mut s = String::from("<?xml version=\"1.0\"?>\n");
        for _ in 0..levels {
            s.push_str("<a x=\"1\">");
        }
        for _ in 0..levels {
            s.push_str("</a>");
        }
        s
    }

    #[test]
    fn counts_open_elements_only() {
        assert_eq!(check_depth(nested(3).as_bytes(), 3), Ok(()));
        assert_eq!(
            check_depth(nested(4).as_bytes(), 3),
            Err(TooDeep { line: 2, limit: 3 })
        );
        // Empty elements, siblings, comments, CDATA and attribute values
        // holding markup characters do not nest.
        let flat = "<r><a/><b k='/>' v=\"<x>\"/><!-- <c><c><c> --><![CDATA[<d><d>]]>\
                    <?pi <e><e>?><f></f><g></g></r>";
        assert_eq!(check_depth(flat.as_bytes(), 2), Ok(()));
        assert!(check_depth(flat.as_bytes(), 1).is_err());
    }

    #[test]
    fn a_deep_document_is_measured_without_recursion() {
        let deep = nested(100_000);
        let err = check_depth(deep.as_bytes(), MAX_XML_DEPTH).unwrap_err();
        assert_eq!(err.limit, MAX_XML_DEPTH);
        assert_eq!(err.line, 2);
    }
}
