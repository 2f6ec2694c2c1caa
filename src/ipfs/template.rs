//! Gateway path templates: `/ipfs/{cid}`, `/ipns/<name>/{sha256}`, `/ipns/<name>/{repo}/{filename}`.
//!
//! A template is checked once when the configuration is read (unknown placeholders, unbalanced
//! braces); expanding it for one file either gives a path or says that a placeholder has no
//! value for that file, in which case the template is skipped for it.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// The placeholders a template may use.
///
/// `algo` and `hex` are a build source's pinned checksum (`sha256`, `sha512`, `b2`, ...): a
/// source cache's `/ipns/<name>/sources/{algo}/{hex}`. Packages skip templates that use them,
/// and build sources skip templates that use anything but them and `sha256`.
pub const PLACEHOLDERS: &[&str] = &[
    "cid", "sha256", "filename", "name", "version", "repo", "arch", "algo", "hex",
];

/// Bytes that must be escaped inside one path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Why a template is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `{name}` that is not one of [`PLACEHOLDERS`].
    Unknown(String),
    /// A `{` without its `}` or the reverse.
    Unbalanced,
    /// A template must be an absolute path.
    NotAbsolute,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unknown(p) => write!(
                f,
                "unknown placeholder {{{p}}} (known: {})",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            TemplateError::Unbalanced => write!(f, "unbalanced braces"),
            TemplateError::NotAbsolute => write!(f, "must start with /"),
        }
    }
}

/// One piece of a parsed template.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                out.push(Piece::Text(rest));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => return Err(TemplateError::Unbalanced),
            Some(i) => {
                out.push(Piece::Text(&rest[..i]));
                let after = &rest[i + 1..];
                let end = after.find('}').ok_or(TemplateError::Unbalanced)?;
                let var = &after[..end];
                if var.contains('{') {
                    return Err(TemplateError::Unbalanced);
                }
                if !PLACEHOLDERS.contains(&var) {
                    return Err(TemplateError::Unknown(var.to_string()));
                }
                out.push(Piece::Var(var));
                rest = &after[end + 1..];
            }
        }
    }
    Ok(out)
}

/// Checks a template as the configuration gives it.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    if !template.starts_with('/') {
        return Err(TemplateError::NotAbsolute);
    }
    pieces(template).map(|_| ())
}

/// Expands a template; `value` gives a placeholder's value for this file or `None` when it
/// has none. Values are escaped as one path segment each. `None` when any value is missing,
/// or is only dots: a database entry could otherwise make a `.` or `..` segment and move the
/// request elsewhere on the gateway.
pub fn expand(template: &str, value: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 64);
    for piece in pieces(template).ok()? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => {
                let val = value(v)?;
                if val.is_empty() || val.bytes().all(|b| b == b'.') {
                    return None;
                }
                out.extend(utf8_percent_encode(&val, SEGMENT));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "sha256" => Some("ab12".into()),
            "filename" => Some("gtk+foo-1:2.0-1-any.pkg.tar.zst".into()),
            "repo" => Some("extra".into()),
            "name" => Some("we ird#name".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_known_values() {
        assert_eq!(
            expand("/ipns/k51/{sha256}", vars).as_deref(),
            Some("/ipns/k51/ab12")
        );
        assert_eq!(
            expand("/ipns/k51/{repo}/{filename}", vars).as_deref(),
            Some("/ipns/k51/extra/gtk+foo-1:2.0-1-any.pkg.tar.zst")
        );
    }

    #[test]
    fn escapes_values_as_one_segment() {
        assert_eq!(
            expand("/x/{name}", vars).as_deref(),
            Some("/x/we%20ird%23name")
        );
    }

    #[test]
    fn regression_a_dot_value_cannot_make_a_dot_segment() {
        // Found by fuzzing: a `%NAME%` of `..` expanded to `/x/..`.
        for dots in [".", "..", "..."] {
            assert_eq!(expand("/x/{name}", |_| Some(dots.to_string())), None);
            assert_eq!(expand("/x/{name}{repo}", |_| Some(dots.to_string())), None);
        }
        assert_eq!(
            expand("/x/{name}", |_| Some("a..b".to_string())).as_deref(),
            Some("/x/a..b")
        );
    }

    #[test]
    fn missing_value_skips_the_template() {
        assert_eq!(expand("/ipfs/{cid}", vars), None);
    }

    #[test]
    fn validation() {
        assert_eq!(validate("/ipfs/{cid}"), Ok(()));
        assert_eq!(validate("/ipfs/{cid"), Err(TemplateError::Unbalanced));
        assert_eq!(validate("/ipfs/cid}"), Err(TemplateError::Unbalanced));
        assert_eq!(
            validate("/ipfs/{hash}"),
            Err(TemplateError::Unknown("hash".into()))
        );
        assert_eq!(validate("ipfs/{cid}"), Err(TemplateError::NotAbsolute));
    }
}
