//! Why a DMN resource was refused.

/// A DMN resource that cannot be used; each variant names the element.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Nested deeper than the XML depth limit.
    #[error("DMN resource nests elements deeper than {limit} levels (line {line})")]
    TooDeep {
        /// Line of the start tag passing the limit.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// Not well-formed XML.
    #[error("DMN resource is not well-formed XML: {0}")]
    Xml(String),
    /// The root is not a DMN `definitions` element.
    #[error("expected a DMN 1.1-1.5 'definitions' root element, found '{element}' in namespace '{namespace}'")]
    NotDmn {
        /// Root element name.
        element: String,
        /// Its namespace.
        namespace: String,
    },
    /// FEEL text that does not compile.
    #[error("failed to parse FEEL expression '{expression}' of element '{element}': {message}")]
    Feel {
        /// Id of the nearest element with an id.
        element: String,
        /// The text.
        expression: String,
        /// The FEEL parser's message.
        message: String,
    },
    /// A requirement pointing to no element of the model.
    #[error("element '{element}' refers to '{href}', which is not in the model")]
    UnknownReference {
        /// The requiring element's id.
        element: String,
        /// The `href`.
        href: String,
    },
    /// A required part is missing.
    #[error("element '{element}' lacks {what}")]
    Missing {
        /// The element's id.
        element: String,
        /// What is missing.
        what: String,
    },
    /// A malformed element.
    #[error("element '{element}': {message}")]
    Invalid {
        /// The element's id.
        element: String,
        /// What is wrong.
        message: String,
    },
    /// Decisions or knowledge models that require each other.
    #[error("requirement cycle: {0}")]
    Cycle(String),
    /// A requirement chain longer than the limit.
    #[error("requirement chain from '{element}' is longer than {limit}")]
    ChainTooLong {
        /// Where the chain starts.
        element: String,
        /// The limit.
        limit: usize,
    },
}
