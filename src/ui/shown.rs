//! Text on its way to a terminal or a file: everything pacxfer prints or keeps passes through
//! here, because much of it comes from outside (URLs pacman passes, Server lines, file names
//! in databases, what servers answer). Passwords in URLs are masked (`user:***@host`), and
//! control characters are escaped so that no name can move the cursor, clear a line or
//! forge a `pacxfer:` line of its own.

use std::borrow::Cow;

/// `text` with the password (or the token, when there is no user name) of every URL masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // RFC 3986 lets userinfo hold any sub-delimiter (`;`, `,`, `'`...): the authority
        // ends only where a path, query or fragment starts, or at a space.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c.is_control())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str("***"),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Characters that change how the rest of a line looks: C0 and C1 controls, DEL, and the
/// bidirectional overrides.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with unsafe characters written as escapes (`\n`, `\u{1b}`).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as it may be shown: redacted, then escaped.
pub fn shown(text: &str) -> String {
    escape(&redact(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            redact("could not download x: http://user:pa55@host:8080/r/x: HTTP 404"),
            "could not download x: http://user:***@host:8080/r/x: HTTP 404"
        );
        assert_eq!(
            redact("https://TOKEN@git.example/repo and https://a:b@c"),
            "https://***@git.example/repo and https://a:***@c"
        );
        assert_eq!(
            redact("mail me@example.com, see http://h/@x"),
            "mail me@example.com, see http://h/@x"
        );
        assert_eq!(redact("http://u:p@[::1]:80/x"), "http://u:***@[::1]:80/x");
        assert_eq!(redact("\"http://u:p@h\""), "\"http://u:***@h\"");
        // Sub-delimiters are legal in a password.
        assert_eq!(
            redact("http://user:pa;s,s'@127.0.0.1:9/x"),
            "http://user:***@127.0.0.1:9/x"
        );
        // A password holding '@' is masked whole.
        assert_eq!(redact("http://u:p@ss@h/x"), "http://u:***@h/x");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\r\npacxfer: fake"), "a\\r\\npacxfer: fake");
        assert_eq!(escape("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(escape("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(escape("plain é ü"), "plain é ü");
        assert_eq!(shown("http://u:p@h/\u{7}"), "http://u:***@h/\\u{7}");
    }
}
