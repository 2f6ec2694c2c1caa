//! Answers from outside, read with bounded memory: what the IPFS node, an ipfs-cluster, a log
//! or standard input says is parsed only when its shape cannot cost more than a fixed amount
//! of memory, line by line with a cap on each line and on their number, and any text from it
//! that reaches a message is cut to one short line. Also the other way: JSON that pacxfer
//! prints escapes what its text output escapes.
//!
//! Bytes read are bounded by the callers (their own size caps); what this module bounds is the
//! memory parsing takes: a 16 MiB answer of tiny JSON values would otherwise become millions
//! of `serde_json::Value`s (about 90 times its size). Before a JSON text is parsed, its values
//! are counted in one pass over the bytes (each value but the first follows a `[`, `:` or `,`
//! outside strings), and a text with more than the caller's limit is refused unparsed.

use std::fmt;
use std::io::{self, BufRead, Read};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The most JSON values (objects, arrays, strings, numbers, keys...) one answer may hold by
/// default: about 10 MB of parsed values at most, far more than any answer pacxfer asks for
/// (a cluster's status of one pin has about 15 per peer).
pub const VALUES_MAX: usize = 200_000;

/// The longest piece of remote text put into a message.
pub const SHOWN_MAX: usize = 200;

/// Why an answer was not parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// More values than the caller allows.
    TooManyValues { limit: usize },
    /// A line longer than the caller allows.
    LineTooLong { limit: usize },
    /// More lines than the caller allows.
    TooManyLines { limit: usize },
    /// Not JSON, or not the JSON expected (serde's reason, cut short).
    NotJson(String),
    /// The reader failed.
    Read(io::ErrorKind, String),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::TooManyValues { limit } => {
                write!(f, "more than {limit} JSON values in one answer")
            }
            AnswerError::LineTooLong { limit } => write!(f, "a line longer than {limit} bytes"),
            AnswerError::TooManyLines { limit } => write!(f, "more than {limit} lines"),
            AnswerError::NotJson(why) => write!(f, "not JSON: {why}"),
            AnswerError::Read(_, why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for AnswerError {}

/// An upper bound on the number of JSON values (and object keys) in `text`, counting no
/// further than `limit + 1`: 1 for the first value, plus each `[`, `{`, `,` and `:` outside
/// strings.
pub fn count_values(text: &[u8], limit: usize) -> usize {
    let mut n = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' | b':' => {
                n += 1;
                if n > limit {
                    return n;
                }
            }
            _ => {}
        }
    }
    n
}

/// Parses `text` as a `T` when it holds at most `max_values` JSON values.
pub fn parse<T: DeserializeOwned>(text: &[u8], max_values: usize) -> Result<T, AnswerError> {
    if count_values(text, max_values) > max_values {
        return Err(AnswerError::TooManyValues { limit: max_values });
    }
    serde_json::from_slice(text).map_err(|e| AnswerError::NotJson(one_line(&e.to_string())))
}

/// Reads lines of at most `max_line` bytes (without the newline) from `reader`, at most
/// `max_lines` of them, handing each that is not blank to `each`. A longer line is an error,
/// or with `skip_long` is passed over (read to its end, never held) and counted.
pub struct Lines {
    pub max_line: usize,
    pub max_lines: usize,
    pub skip_long: bool,
}

/// What [`Lines::read`] saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinesRead {
    pub lines: usize,
    /// Lines passed over for their length (with `skip_long`).
    pub too_long: usize,
}

impl Lines {
    pub fn read<E: From<AnswerError>>(
        &self,
        reader: &mut impl BufRead,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<LinesRead, E> {
        let mut seen = LinesRead::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .take(self.max_line as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| AnswerError::Read(e.kind(), e.to_string()))?;
            if n == 0 {
                return Ok(seen);
            }
            let ended = line.last() == Some(&b'\n');
            if ended {
                line.pop();
            }
            if !ended && line.len() > self.max_line {
                if !self.skip_long {
                    return Err(AnswerError::LineTooLong {
                        limit: self.max_line,
                    }
                    .into());
                }
                skip_line(reader).map_err(|e| AnswerError::Read(e.kind(), e.to_string()))?;
                seen.too_long += 1;
                continue;
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            seen.lines += 1;
            if seen.lines > self.max_lines {
                return Err(AnswerError::TooManyLines {
                    limit: self.max_lines,
                }
                .into());
            }
            each(&line)?;
        }
    }
}

/// Reads to the end of the current line (or of the input), keeping nothing.
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Remote text as one short line for a message: its first non-blank line, passwords in URLs
/// masked, unsafe characters escaped, cut to [`SHOWN_MAX`] characters, with `…` and the
/// whole text's length when anything was left out.
pub fn one_line(text: &str) -> String {
    let all = text.trim();
    let first = all.lines().next().unwrap_or("").trim();
    // Never look at more than a bounded prefix: the rest is only counted.
    let mut cut = first.len().min(SHOWN_MAX * 4);
    while !first.is_char_boundary(cut) {
        cut -= 1;
    }
    let shown = crate::ui::shown::shown(&first[..cut]);
    let mut out: String = shown.chars().take(SHOWN_MAX).collect();
    if out.len() < shown.len() || cut < first.len() || first.len() < all.len() {
        out.push_str(&format!("… ({} bytes in all)", all.len()));
    }
    out
}

/// Counts warnings of one kind, keeping the first few for display: "a, b, c and 12 more".
#[derive(Debug, Clone, Default)]
pub struct FirstFew {
    pub shown: Vec<String>,
    pub total: usize,
}

impl FirstFew {
    /// How many are kept for display.
    pub const KEPT: usize = 5;

    pub fn push(&mut self, item: impl FnOnce() -> String) {
        self.total += 1;
        if self.shown.len() < Self::KEPT {
            self.shown.push(item());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The kept items, and how many more there were.
    pub fn summary(&self) -> String {
        let mut s = self.shown.join("; ");
        if self.total > self.shown.len() {
            s.push_str(&format!(" (and {} more)", self.total - self.shown.len()));
        }
        s
    }
}

/// `value` as one line of JSON in which every string (keys too) is as pacxfer shows text:
/// passwords in URLs masked, and control and bidirectional characters escaped (as `\uXXXX`,
/// which a JSON reader turns back into the same character, so nothing is lost for a program
/// while a terminal shows it inert).
pub fn json_line(value: &impl Serialize) -> serde_json::Result<String> {
    let value = masked(serde_json::to_value(value)?);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping);
    value.serialize(&mut ser)?;
    // The formatter writes only UTF-8 (the input's, or ASCII escapes).
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The same, pretty-printed over several lines.
pub fn json_pretty(value: &impl Serialize) -> serde_json::Result<String> {
    let value = masked(serde_json::to_value(value)?);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, EscapingPretty::default());
    value.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn masked(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(crate::ui::shown::redact(&s).into_owned()),
        Value::Array(a) => Value::Array(a.into_iter().map(masked).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (crate::ui::shown::redact(&k).into_owned(), masked(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Writes a string fragment with the characters [`crate::ui::shown::is_unsafe`] names as
/// `\uXXXX` (serde_json itself escapes only C0 controls, `"` and `\`).
fn write_fragment<W: ?Sized + io::Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if crate::ui::shown::is_unsafe(c) {
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
    }
    writer.write_all(&fragment.as_bytes()[start..])
}

struct Escaping;

impl serde_json::ser::Formatter for Escaping {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_fragment(writer, fragment)
    }
}

#[derive(Default)]
struct EscapingPretty<'a>(serde_json::ser::PrettyFormatter<'a>);

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name<W: ?Sized + io::Write>(&mut self, writer: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.0.$name(writer $(, $arg)*)
        })*
    };
}

impl serde_json::ser::Formatter for EscapingPretty<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_fragment(writer, fragment)
    }

    forward! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        begin_object_value();
        end_object_value();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings_only() {
        assert_eq!(count_values(b"{}", 10), 2);
        assert_eq!(count_values(br#"{"a":[1,2,3]}"#, 100), 6);
        // An array of two strings: the array, and one `,` between them; what the strings
        // hold is not counted.
        assert_eq!(count_values(br#"["[,{:","\",:"]"#, 100), 3);
        assert!(count_values(&b"[0,".repeat(1000), 50) > 50);
    }

    #[test]
    fn an_answer_of_many_tiny_values_is_refused_unparsed() {
        let mut text = b"[".to_vec();
        text.extend(b"{},".repeat(VALUES_MAX));
        text.extend(b"{}]");
        assert_eq!(
            parse::<serde_json::Value>(&text, VALUES_MAX),
            Err(AnswerError::TooManyValues { limit: VALUES_MAX })
        );
        let ok: serde_json::Value = parse(br#"{"Message":"x"}"#, 10).expect("parses");
        assert_eq!(ok["Message"], "x");
    }

    #[test]
    fn lines_are_capped_in_length_and_number() {
        let lines = Lines {
            max_line: 8,
            max_lines: 3,
            skip_long: false,
        };
        let mut got = Vec::new();
        let seen = lines
            .read::<AnswerError>(&mut &b"a\n\n  \nbb\r\nccc"[..], |l| {
                got.push(l.to_vec());
                Ok(())
            })
            .expect("reads");
        assert_eq!(got, vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
        assert_eq!(seen.lines, 3);
        let err = lines.read::<AnswerError>(&mut &b"123456789\n"[..], |_| Ok(()));
        assert_eq!(err, Err(AnswerError::LineTooLong { limit: 8 }));
        let err = lines.read::<AnswerError>(&mut &b"1\n2\n3\n4\n"[..], |_| Ok(()));
        assert_eq!(err, Err(AnswerError::TooManyLines { limit: 3 }));
        // Exactly the limit, with or without the newline, is a line.
        let ok = lines.read::<AnswerError>(&mut &b"12345678\n12345678"[..], |_| Ok(()));
        assert_eq!(ok.map(|s| s.lines), Ok(2));
        let skipping = Lines {
            skip_long: true,
            ..lines
        };
        let mut got = Vec::new();
        let long = format!("a\n{}\nb\n", "x".repeat(100_000));
        let seen = skipping
            .read::<AnswerError>(&mut io::BufReader::new(long.as_bytes()), |l| {
                got.push(l.to_vec());
                Ok(())
            })
            .expect("reads");
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(seen.too_long, 1);
    }

    #[test]
    fn remote_text_becomes_one_short_line() {
        assert_eq!(one_line("  file does not exist \n"), "file does not exist");
        let long = "x".repeat(15 << 20);
        let shown = one_line(&long);
        assert!(shown.chars().count() < SHOWN_MAX + 40, "{}", shown.len());
        assert!(
            shown.ends_with(&format!("({} bytes in all)", 15 << 20)),
            "{shown}"
        );
        let two = one_line("first\nsecond\u{1b}[2J");
        assert!(two.starts_with("first… ("), "{two}");
        assert_eq!(one_line("a\u{1b}[31m\u{202e}b"), "a\\u{1b}[31m\\u{202e}b");
    }

    #[test]
    fn warnings_are_summarised() {
        let mut few = FirstFew::default();
        for i in 0..300_000 {
            few.push(|| format!("peer{i}"));
        }
        assert_eq!(few.shown.len(), FirstFew::KEPT);
        assert_eq!(
            few.summary(),
            "peer0; peer1; peer2; peer3; peer4 (and 299995 more)"
        );
    }

    #[test]
    fn json_output_escapes_what_text_output_escapes() {
        let v = serde_json::json!({
            "file": "a\u{1b}[2Jb\u{7f}\u{85}\u{202e}c\u{2066}",
            "url": "http://user:secret@host/x",
            "key\u{1b}": ["\n"],
        });
        let line = json_line(&v).expect("json");
        assert!(!line.chars().any(crate::ui::shown::is_unsafe), "{line}");
        assert!(!line.contains("secret"), "{line}");
        assert!(
            line.contains(r"a\u001b[2Jb\u007f\u0085\u202ec\u2066"),
            "{line}"
        );
        // Read back, the characters are the same (only the password is masked).
        let back: serde_json::Value = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back["file"], v["file"]);
        assert_eq!(back["url"], "http://user:***@host/x");
        let pretty = json_pretty(&v).expect("json");
        assert!(
            !pretty.contains('\u{1b}') && !pretty.contains('\u{202e}'),
            "{pretty}"
        );
        assert!(pretty.contains(r"\u202e"), "{pretty}");
        let back: serde_json::Value = serde_json::from_str(&pretty).expect("reads back");
        assert_eq!(back["file"], v["file"]);
    }
}
