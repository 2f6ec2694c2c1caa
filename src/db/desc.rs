//! A package's `desc` member as a sync database holds it: `%KEY%` lines, each followed by
//! value lines up to a blank line, read into an [`Entry`] and held to the entry rules.

use super::entry::{check_entry, parse_sha256, DescError, Entry};

/// Reads one `desc` text: `%KEY%` lines, each followed by value lines up to a blank line.
/// Unknown keys are ignored; `%FILENAME%` and `%NAME%` are required.
pub fn parse_desc(text: &str, repo: &str) -> Result<Entry, DescError> {
    let mut filename = None;
    let mut name = None;
    let mut version = String::new();
    let mut arch = String::new();
    let mut sha256 = None;
    let mut csize = None;
    let mut pgpsig = None;
    let mut cid = None;

    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches('\r');
        if !(line.len() > 2 && line.starts_with('%') && line.ends_with('%')) {
            continue;
        }
        // The first value line of the block; multi-value keys are not needed here.
        let mut value = None;
        for v in lines.by_ref() {
            let v = v.trim_end_matches('\r');
            if v.is_empty() {
                break;
            }
            if value.is_none() {
                value = Some(v.trim().to_string());
            }
        }
        let Some(value) = value else { continue };
        match line {
            "%FILENAME%" => filename = Some(value),
            "%NAME%" => name = Some(value),
            "%VERSION%" => version = value,
            "%ARCH%" => arch = value,
            "%SHA256SUM%" => sha256 = Some(parse_sha256(&value)?),
            "%CSIZE%" => {
                csize = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| DescError::BadSize(value.clone()))?,
                )
            }
            "%PGPSIG%" => pgpsig = Some(value),
            "%CID%" => cid = Some(value),
            _ => {}
        }
    }

    let entry = Entry {
        repo: repo.to_string(),
        filename: filename.ok_or(DescError::Missing("%FILENAME%"))?,
        name: name.ok_or(DescError::Missing("%NAME%"))?,
        version,
        arch,
        sha256,
        csize,
        pgpsig,
        cid,
    };
    check_entry(&entry)?;
    Ok(entry)
}
