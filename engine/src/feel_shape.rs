//! The shape of a FEEL text, measured without recursion before the text
//! reaches the FEEL parser: bracket nesting and an upper bound of the depth
//! of the syntax tree it parses to.
//!
//! dsntk's parser keeps its stacks on the heap, but the tree it builds is
//! walked recursively (debug printing, evaluation, drop), and both nested
//! brackets and long operator chains (`1+1+1+...`, a left-deep tree) make it
//! deep. The scan tokenises as dsntk's lexer does where it matters: string
//! literals (a backslash escapes the next character) hold no structure, and
//! comments (`// ...` to the end of the line, `/* ... */`) are cut out of
//! the text the parser gets, so the scan and the parser see the same
//! brackets whatever names are in scope.
//!
//! Depth bound: every tree node below a leaf comes from a bracket group, an
//! operator character or a keyword, so a path from the root passes through
//! at most `operators(g) + GROUP_NODES` nodes of each bracket group `g` on
//! its way down; the bound of a group is that plus the largest bound of the
//! groups it contains.

use std::borrow::Cow;

/// Deepest bracket nesting (`(`, `[`, `{`) accepted in an expression.
pub const MAX_FEEL_NESTING: usize = 64;
/// Largest bound of the syntax tree depth accepted: operators and keywords
/// along any chain of nested brackets. Far above a hand-written expression,
/// far below what evaluating or dropping the tree recurses through on a
/// shard's stack.
pub const MAX_FEEL_TREE_DEPTH: usize = 512;
/// Tree nodes one bracket group adds at most (an invocation and its
/// parameter list, a filter, a context and its entry).
const GROUP_NODES: usize = 2;
/// Words that build a tree node around their operands.
const KEYWORDS: [&str; 16] = [
    "and",
    "between",
    "else",
    "every",
    "for",
    "function",
    "if",
    "in",
    "instance",
    "not",
    "of",
    "or",
    "return",
    "satisfies",
    "some",
    "then",
];

/// Why a FEEL text was refused before parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// Brackets nest deeper than [`MAX_FEEL_NESTING`].
    TooNested,
    /// The operator chain bound passes [`MAX_FEEL_TREE_DEPTH`].
    TooDeep {
        /// The bound found.
        depth: usize,
    },
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeError::TooNested => write!(
                f,
                "brackets nest more than {MAX_FEEL_NESTING} levels deep; at most \
                 {MAX_FEEL_NESTING} are accepted"
            ),
            ShapeError::TooDeep { depth } => write!(
                f,
                "operators and brackets chain {depth} levels deep; at most \
                 {MAX_FEEL_TREE_DEPTH} are accepted (split the expression or use lists)"
            ),
        }
    }
}

struct Group {
    operators: usize,
    deepest_child: usize,
}

impl Group {
    fn bound(&self) -> usize {
        self.operators + GROUP_NODES + self.deepest_child
    }
}

/// Checks the shape of `text` and returns it without comments (the text to
/// parse).
pub fn check(text: &str) -> Result<Cow<'_, str>, ShapeError> {
    let bytes = text.as_bytes();
    let mut stripped: Option<String> = None;
    let mut copied_up_to = 0;
    let mut groups = vec![Group {
        operators: 0,
        deepest_child: 0,
    }];
    let mut word = 0usize..0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() || b == b'_' {
            if word.end != i {
                word = i..i;
            }
            word.end = i + 1;
            let next = bytes.get(i + 1).copied().unwrap_or(b' ');
            if !(next.is_ascii_alphanumeric() || next == b'_')
                && KEYWORDS.contains(&&text[word.clone()])
            {
                top(&mut groups).operators += 1;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            b'/' if matches!(bytes.get(i + 1), Some(b'/' | b'*')) => {
                let end = if bytes[i + 1] == b'/' {
                    text[i..].find('\n').map_or(text.len(), |p| i + p)
                } else {
                    text[i + 2..]
                        .find("*/")
                        .map_or(text.len(), |p| i + 2 + p + 2)
                };
                let out = stripped.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(&text[copied_up_to..i]);
                out.push(' ');
                copied_up_to = end;
                i = end;
                continue;
            }
            b'(' | b'[' | b'{' => {
                if groups.len() > MAX_FEEL_NESTING {
                    return Err(ShapeError::TooNested);
                }
                groups.push(Group {
                    operators: 0,
                    deepest_child: 0,
                });
            }
            b')' | b']' | b'}' if groups.len() > 1 => close(&mut groups),
            b'+' | b'-' | b'*' | b'/' | b'=' | b'<' | b'>' | b'!' | b'.' | b'@' => {
                top(&mut groups).operators += 1;
            }
            _ => {}
        }
        if top(&mut groups).bound() > MAX_FEEL_TREE_DEPTH {
            return Err(ShapeError::TooDeep {
                depth: top(&mut groups).bound(),
            });
        }
        i += 1;
    }
    while groups.len() > 1 {
        close(&mut groups);
    }
    let depth = groups[0].bound();
    if depth > MAX_FEEL_TREE_DEPTH {
        return Err(ShapeError::TooDeep { depth });
    }
    Ok(match stripped {
        Some(mut out) => {
            out.push_str(&text[copied_up_to.min(text.len())..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(text),
    })
}

fn top(groups: &mut [Group]) -> &mut Group {
    groups.last_mut().expect("the root group is never closed")
}

fn close(groups: &mut Vec<Group>) {
    let closed = groups.pop().expect("more than the root group").bound();
    let parent = top(groups);
    parent.deepest_child = parent.deepest_child.max(closed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_expressions_pass_unchanged() {
        for text in [
            "x > 5",
            "order.total * 2 + fee(order, \"(((\")",
            "if a and b then [1, 2, 3] else {k: some x in l satisfies x > 1}",
            "for i in 1..10 return i * i",
        ] {
            assert_eq!(check(text), Ok(Cow::Borrowed(text)), "{text}");
        }
    }

    #[test]
    fn comments_are_cut_out() {
        assert_eq!(check("1 + // ((((\n 2").unwrap(), "1 +  \n 2");
        assert_eq!(check("1 /* ) ] } */ + 2").unwrap(), "1   + 2");
        assert_eq!(
            check("\"// not a comment\"").unwrap(),
            "\"// not a comment\""
        );
    }

    #[test]
    fn deep_brackets_are_refused() {
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(check(&deep), Err(ShapeError::TooNested));
        let lists = format!(
            "{}{}",
            "[".repeat(MAX_FEEL_NESTING + 1),
            "]".repeat(MAX_FEEL_NESTING + 1)
        );
        assert_eq!(check(&lists), Err(ShapeError::TooNested));
        let ok = format!(
            "{}1{}",
            "(".repeat(MAX_FEEL_NESTING),
            ")".repeat(MAX_FEEL_NESTING)
        );
        assert!(check(&ok).is_ok());
    }

    #[test]
    fn long_operator_chains_are_refused() {
        let chain = vec!["1"; 100_000].join("+");
        assert!(matches!(check(&chain), Err(ShapeError::TooDeep { .. })));
        let words = vec!["a"; 2_000].join(" or ");
        assert!(matches!(check(&words), Err(ShapeError::TooDeep { .. })));
        // Chains inside nested brackets add up along the nesting.
        let inner = vec!["1"; 100].join("+");
        let nested = format!("{}{inner}{}", "(".repeat(10), ")".repeat(10));
        let chained = format!("{nested}{}", "+1".repeat(100));
        let mut text = chained.clone();
        for _ in 0..5 {
            text = format!("({text}){}", "+1".repeat(100));
        }
        assert!(
            matches!(check(&text), Err(ShapeError::TooDeep { .. })),
            "{text}"
        );
        let short = vec!["1"; 400].join("+");
        assert!(check(&short).is_ok());
    }
}
