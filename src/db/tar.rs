//! A small tar reader with hard caps, for the sync databases.
//!
//! It reads a stream of 512-byte headers and member data (POSIX ustar, GNU and pax as `bsdtar`
//! and GNU tar write them, and old v7 headers) and hands each regular file's path, size and data
//! to a callback. It applies GNU long names (`L`) and the `path` and `size` keys of pax extended
//! headers (`x`); long link names (`K`) and global pax headers (`g`) are read past and ignored.
//!
//! Every header checksum is checked, and malformed numbers, pax records, orphaned or repeated
//! long names and pax headers are refused ([`TarError::Corrupt`]). The input is never trusted
//! with memory: a long name may declare at most [`LONG_NAME_MAX`] bytes and a pax header at most
//! [`PAX_MAX`], checked before anything is read or allocated, and member data is skipped through
//! a fixed buffer, never seeked (the input is a decompression stream).
//!
//! It is not an extractor, nor a general tar reader: it creates no files, ignores modes, owners,
//! times and link targets, skips GNU sparse members (`S`) and hands pax sparse files (the
//! `GNU.sparse.*` keys) over as their stored bytes. Every member, whatever its type, is followed
//! by `size` bytes of data, as the `tar` crate reads it. It reads what pacman's databases hold:
//! directories and small regular files.

use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::ops::Range;

/// The largest GNU long name (`L`) or long link name (`K`) member read, in bytes.
pub const LONG_NAME_MAX: u64 = 4096;
/// The largest pax extended header member (`x` or `g`) read, in bytes.
pub const PAX_MAX: u64 = 64 * 1024;

const BLOCK: usize = 512;

/// Why an archive could not be read to its end.
#[derive(Debug)]
pub enum TarError {
    /// Reading the underlying stream failed (including a truncated archive: UnexpectedEof).
    Io(io::Error),
    /// The archive is malformed or exceeds a cap; `offset` is the byte offset of the 512-byte
    /// header concerned.
    Corrupt { offset: u64, why: String },
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TarError::Io(err) => write!(f, "{err}"),
            TarError::Corrupt { offset, why } => write!(f, "tar header at byte {offset}: {why}"),
        }
    }
}

impl std::error::Error for TarError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Display already shows the I/O error itself, so only its own cause is the source.
            TarError::Io(err) => err.source(),
            TarError::Corrupt { .. } => None,
        }
    }
}

fn corrupt(offset: u64, why: impl Into<String>) -> TarError {
    TarError::Corrupt {
        offset,
        why: why.into(),
    }
}

fn truncated(what: &str) -> TarError {
    TarError::Io(io::Error::new(
        ErrorKind::UnexpectedEof,
        format!("the tar archive ends inside {what}"),
    ))
}

/// Calls `f` for every regular-file member (typeflag '0', '\0', '7'), in archive order, with its
/// path (after GNU long names / pax `path=` are applied; raw bytes, not necessarily UTF-8), its
/// size (pax `size=` overrides the header), and a reader limited to exactly that member's data.
/// Whatever `f` leaves unread is skipped afterwards (plus the padding to 512). Other members
/// (directories, links, devices, FIFOs, 'S' sparse, unknown types) are skipped without calling
/// `f`. `f` returning Err stops the walk with that error as TarError::Io.
pub fn for_each_file<R: Read>(
    reader: R,
    mut f: impl FnMut(&[u8], u64, &mut dyn Read) -> io::Result<()>,
) -> Result<(), TarError> {
    let mut src = Source {
        inner: reader,
        offset: 0,
    };
    let mut block = [0u8; BLOCK];
    // The extension headers read since the last member, each with its header's offset.
    let mut long_name: Option<(Vec<u8>, u64)> = None;
    let mut long_link: Option<u64> = None;
    let mut pax: Option<(Pax, u64)> = None;
    // The data of the pending pax header (`Pax::path` points into it), and the path handed to `f`.
    let mut pax_data = Vec::new();
    let mut path = Vec::new();
    loop {
        let at = src.offset;
        if !src.header(&mut block)? || block.iter().all(|&b| b == 0) {
            // The end of the archive: nothing may still be waiting for its member.
            if let Some((_, offset)) = long_name {
                return Err(corrupt(offset, "long name with no member after it"));
            }
            if let Some(offset) = long_link {
                return Err(corrupt(offset, "long link name with no member after it"));
            }
            if let Some((_, offset)) = pax {
                return Err(corrupt(offset, "pax header with no member after it"));
            }
            return Ok(());
        }
        check_sum(&block, at)?;
        let size = header_size(&block, at)?;
        match block[156] {
            b'L' => {
                if long_name.is_some() {
                    return Err(corrupt(at, "a second long name for the same member"));
                }
                let mut name = src.capped(size, LONG_NAME_MAX, at, "long name")?;
                while name.last() == Some(&0) {
                    name.pop();
                }
                long_name = Some((name, at));
            }
            b'K' => {
                if long_link.is_some() {
                    return Err(corrupt(at, "a second long link name for the same member"));
                }
                if size > LONG_NAME_MAX {
                    return Err(corrupt(
                        at,
                        format!("long link name of {size} bytes exceeds {LONG_NAME_MAX}"),
                    ));
                }
                src.skip(size, "a long link name")?;
                src.skip(padding(size), "a long link name")?;
                long_link = Some(at);
            }
            b'x' => {
                if pax.is_some() {
                    return Err(corrupt(at, "a second pax header for the same member"));
                }
                pax_data = src.capped(size, PAX_MAX, at, "pax header")?;
                pax = Some((parse_pax(&pax_data, at)?, at));
            }
            b'g' => {
                if size > PAX_MAX {
                    return Err(corrupt(
                        at,
                        format!("global pax header of {size} bytes exceeds {PAX_MAX}"),
                    ));
                }
                src.skip(size, "a global pax header")?;
                src.skip(padding(size), "a global pax header")?;
            }
            typeflag => {
                let size = match &pax {
                    Some((Pax { size: Some(s), .. }, _)) => *s,
                    _ => size,
                };
                if typeflag == b'S' && is_gnu(&block) && block[482] != 0 {
                    src.sparse_extensions(&mut block)?;
                }
                if matches!(typeflag, b'0' | b'\0' | b'7') {
                    path.clear();
                    match (&pax, &long_name) {
                        (Some((Pax { path: Some(r), .. }, _)), _) => {
                            path.extend_from_slice(&pax_data[r.clone()]);
                        }
                        (_, Some((name, _))) => path.extend_from_slice(name),
                        _ => header_path(&block, &mut path),
                    }
                    let mut data = Data {
                        src: &mut src,
                        left: size,
                    };
                    f(&path, size, &mut data).map_err(TarError::Io)?;
                    let left = data.left;
                    src.skip(left, "member data")?;
                } else {
                    src.skip(size, "member data")?;
                }
                src.skip(padding(size), "member data")?;
                long_name = None;
                long_link = None;
                pax = None;
            }
        }
    }
}

/// The input, and how many bytes of it were consumed.
struct Source<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> Source<R> {
    /// Reads into `buf` until it is full or the input ends; returns how much was read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(TarError::Io(e)),
            }
        }
        Ok(got)
    }

    /// Reads the next header block: false when the input ends exactly where it would start.
    fn header(&mut self, block: &mut [u8; BLOCK]) -> Result<bool, TarError> {
        match self.fill(block)? {
            0 => Ok(false),
            BLOCK => Ok(true),
            _ => Err(truncated("a header")),
        }
    }

    /// Reads and drops `n` bytes.
    fn skip(&mut self, mut n: u64, what: &str) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.fill(&mut buf[..want])?;
            if got < want {
                return Err(truncated(what));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// The data of an extension member of `size` bytes (and its padding), refused before
    /// anything is read or allocated when larger than `cap`.
    fn capped(&mut self, size: u64, cap: u64, at: u64, what: &str) -> Result<Vec<u8>, TarError> {
        if size > cap {
            return Err(corrupt(at, format!("{what} of {size} bytes exceeds {cap}")));
        }
        // At most `cap` bytes, so this fits in a usize.
        let mut data = vec![0u8; size as usize];
        if self.fill(&mut data)? < data.len() {
            return Err(truncated(what));
        }
        self.skip(padding(size), what)?;
        Ok(data)
    }

    /// Reads past the extension blocks of an old GNU sparse header: each holds more sparse
    /// entries and says at byte 504 whether another follows.
    fn sparse_extensions(&mut self, block: &mut [u8; BLOCK]) -> Result<(), TarError> {
        loop {
            if !self.header(block)? {
                return Err(truncated("a sparse header"));
            }
            if block[504] == 0 {
                return Ok(());
            }
        }
    }
}

/// One member's data: at most `left` more bytes of the input, and an error when the input ends
/// before them.
struct Data<'a, R> {
    src: &'a mut Source<R>,
    left: u64,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = self.left.min(buf.len() as u64) as usize;
        let got = self.src.inner.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the tar archive ends inside member data",
            ));
        }
        self.src.offset += got as u64;
        self.left -= got as u64;
        Ok(got)
    }
}

/// What a pax extended header says about the next member.
#[derive(Debug, Default)]
struct Pax {
    /// Where the `path` value lies in the header's data.
    path: Option<Range<usize>>,
    size: Option<u64>,
}

/// Parses pax records, `"<len> <key>=<value>\n"` with `len` counting the whole record. An empty
/// value undoes the key, as in POSIX: the header's own field is used.
fn parse_pax(data: &[u8], at: u64) -> Result<Pax, TarError> {
    let mut pax = Pax::default();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let bad =
            |why: String| corrupt(at, format!("pax record at byte {pos} of the header {why}"));
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("does not start with its length".into()));
        }
        if rest.get(digits) != Some(&b' ') {
            return Err(bad("has no space after its length".into()));
        }
        let len = decimal(&rest[..digits])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= rest.len())
            .ok_or_else(|| bad(format!("is longer than the {} bytes left", rest.len())))?;
        // The shortest record is the length, a space, a one-byte key, '=' and the newline.
        if len < digits + 4 {
            return Err(bad(format!("has the impossible length {len}")));
        }
        let record = &rest[digits + 1..len];
        let Some(body) = record.strip_suffix(b"\n") else {
            return Err(bad("does not end with a newline".into()));
        };
        let Some(eq) = body.iter().position(|&b| b == b'=') else {
            return Err(bad("has no '='".into()));
        };
        if eq == 0 {
            return Err(bad("has an empty key".into()));
        }
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        let start = pos + digits + 1 + eq + 1;
        match key {
            b"path" if value.is_empty() => pax.path = None,
            b"path" => pax.path = Some(start..start + value.len()),
            b"size" if value.is_empty() => pax.size = None,
            b"size" => {
                let size = decimal(value).ok_or_else(|| {
                    bad(format!(
                        "has the size {:?}, not a decimal number",
                        value.escape_ascii().to_string()
                    ))
                })?;
                pax.size = Some(size);
            }
            _ => {}
        }
        pos += len;
    }
    Ok(pax)
}

/// A non-empty string of ASCII digits that fits in a u64.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// An octal number field: digits with spaces or NULs around them (none at all reads as 0).
fn octal(field: &[u8]) -> Option<u64> {
    let start = field
        .iter()
        .position(|&b| b != b' ' && b != 0)
        .unwrap_or(field.len());
    let digits = field[start..]
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .count();
    let end = start + digits;
    if field[end..].iter().any(|&b| b != b' ' && b != 0) {
        return None;
    }
    field[start..end].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

/// Checks the header checksum: the sum of the header's bytes with the checksum field counted as
/// spaces, as unsigned bytes or (some old tars) signed ones.
fn check_sum(block: &[u8; BLOCK], at: u64) -> Result<(), TarError> {
    let field = &block[148..156];
    let Some(stored) = octal(field) else {
        return Err(corrupt(
            at,
            format!(
                "checksum field \"{}\" is not an octal number",
                field.escape_ascii()
            ),
        ));
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(corrupt(
            at,
            format!("checksum {stored:o} does not match the header's sum {unsigned:o}"),
        ))
    }
}

/// The size field: octal, or GNU base-256 when the first byte has its top bit set.
fn header_size(block: &[u8; BLOCK], at: u64) -> Result<u64, TarError> {
    let field = &block[124..136];
    if field[0] & 0x80 == 0 {
        return octal(field).ok_or_else(|| {
            corrupt(
                at,
                format!(
                    "size field \"{}\" is not an octal number",
                    field.escape_ascii()
                ),
            )
        });
    }
    // Base-256: the bits after the marker are a big-endian two's complement number.
    if field[0] & 0x40 != 0 {
        return Err(corrupt(at, "negative size"));
    }
    let mut n = u64::from(field[0] & 0x3f);
    for &b in &field[1..] {
        if n >> 56 != 0 {
            return Err(corrupt(at, "size does not fit in 64 bits"));
        }
        n = n << 8 | u64::from(b);
    }
    Ok(n)
}

fn is_gnu(block: &[u8; BLOCK]) -> bool {
    &block[257..265] == b"ustar  \0"
}

fn is_ustar(block: &[u8; BLOCK]) -> bool {
    &block[257..263] == b"ustar\0" && &block[263..265] == b"00"
}

/// A field up to its first NUL.
fn until_nul(field: &[u8]) -> &[u8] {
    field
        .iter()
        .position(|&b| b == 0)
        .map_or(field, |end| &field[..end])
}

/// The header's own path: the name, after the ustar prefix and a slash when there is one.
fn header_path(block: &[u8; BLOCK], path: &mut Vec<u8>) {
    if is_ustar(block) {
        let prefix = until_nul(&block[345..500]);
        if !prefix.is_empty() {
            path.extend_from_slice(prefix);
            path.push(b'/');
        }
    }
    path.extend_from_slice(until_nul(&block[..100]));
}

/// The zeros after `size` bytes of data, up to the next block.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header block: `name` in the name field, ustar magic, mode and owner fields filled in
    /// like real tars do, and a correct checksum (set again by `seal` after changes).
    fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name);
        b[100..108].copy_from_slice(b"0000644\0");
        b[108..116].copy_from_slice(b"0000000\0");
        b[116..124].copy_from_slice(b"0000000\0");
        b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        b[136..148].copy_from_slice(b"14723573210\0");
        b[156] = typeflag;
        b[257..265].copy_from_slice(b"ustar\x0000");
        seal(b)
    }

    /// The same header with GNU magic.
    fn gnu(mut b: [u8; BLOCK]) -> [u8; BLOCK] {
        b[257..265].copy_from_slice(b"ustar  \0");
        seal(b)
    }

    /// Writes the checksum for the header as it is now.
    fn seal(mut b: [u8; BLOCK]) -> [u8; BLOCK] {
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }

    /// A header followed by its data and the padding.
    fn member(h: [u8; BLOCK], data: &[u8]) -> Vec<u8> {
        let mut v = h.to_vec();
        v.extend_from_slice(data);
        v.resize(v.len() + padding(data.len() as u64) as usize, 0);
        v
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        member(header(name.as_bytes(), b'0', data.len() as u64), data)
    }

    /// A pax record with its length worked out.
    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let body = [key.as_bytes(), b"=", value, b"\n"].concat();
        let mut len = body.len() + 2;
        while format!("{len} ").len() + body.len() != len {
            len += 1;
        }
        [format!("{len} ").as_bytes(), &body].concat()
    }

    fn end() -> Vec<u8> {
        vec![0; 2 * BLOCK]
    }

    type Files = Vec<(String, u64, Vec<u8>)>;

    /// Every file with all its data.
    fn files(archive: &[u8]) -> Result<Files, TarError> {
        let mut found = Vec::new();
        for_each_file(archive, |path, size, data| {
            let mut bytes = Vec::new();
            data.read_to_end(&mut bytes)?;
            found.push((String::from_utf8_lossy(path).into_owned(), size, bytes));
            Ok(())
        })
        .map(|()| found)
    }

    fn names(archive: &[u8]) -> Vec<String> {
        match files(archive) {
            Ok(found) => found.into_iter().map(|(p, _, _)| p).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    fn corrupt_at(archive: &[u8]) -> (u64, String) {
        match files(archive) {
            Err(TarError::Corrupt { offset, why }) => (offset, why),
            other => panic!("not refused as corrupt: {other:?}"),
        }
    }

    fn eof(archive: &[u8]) {
        match files(archive) {
            Err(TarError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {}
            other => panic!("not a truncated archive: {other:?}"),
        }
    }

    #[test]
    fn plain_ustar_files() {
        let desc = b"%NAME%\nzstd\n";
        let mut a = file("zstd-1.5.6-1/desc", desc);
        a.extend(file("empty", b""));
        a.extend(member(header(b"old", b'\0', 3), b"abc"));
        a.extend(member(header(b"contiguous", b'7', 512), &[7; 512]));
        a.extend(end());
        let found = files(&a).expect("read");
        assert_eq!(
            found,
            vec![
                ("zstd-1.5.6-1/desc".into(), desc.len() as u64, desc.to_vec()),
                ("empty".into(), 0, vec![]),
                ("old".into(), 3, b"abc".to_vec()),
                ("contiguous".into(), 512, vec![7; 512]),
            ]
        );
    }

    #[test]
    fn full_length_name_field_has_no_nul() {
        let name = [b'n'; 100];
        let mut a = member(header(&name, b'0', 1), b"x");
        a.extend(end());
        assert_eq!(names(&a), vec!["n".repeat(100)]);
    }

    #[test]
    fn ustar_prefix_is_joined() {
        let mut h = header(b"desc", b'0', 2);
        h[345..353].copy_from_slice(b"some/dir");
        let mut a = member(seal(h), b"hi");
        a.extend(end());
        assert_eq!(names(&a), vec!["some/dir/desc"]);
    }

    #[test]
    fn gnu_headers_have_no_prefix() {
        // In a GNU header bytes 345.. are the access time and more, never part of the name.
        let mut h = header(b"desc", b'0', 2);
        h[345..357].copy_from_slice(b"14723573210\0");
        let mut a = member(gnu(h), b"hi");
        // Nor does an old (v7) header, which has no magic at all.
        let mut h = header(b"v7", b'0', 0);
        h[257..265].fill(0);
        h[345..348].copy_from_slice(b"pre");
        a.extend(member(seal(h), b""));
        a.extend(end());
        assert_eq!(names(&a), vec!["desc", "v7"]);
    }

    #[test]
    fn gnu_long_name_and_link() {
        let long = format!("{}/desc", "d".repeat(300));
        let mut name = long.as_bytes().to_vec();
        name.push(0);
        let mut a = member(
            gnu(header(b"././@LongLink", b'L', name.len() as u64)),
            &name,
        );
        a.extend(member(gnu(header(&long.as_bytes()[..100], b'0', 2)), b"ok"));
        // A symlink with a long target: skipped, and its names do not leak onto the next file.
        let target = vec![b't'; 200];
        a.extend(member(gnu(header(b"././@LongLink", b'K', 200)), &target));
        a.extend(member(
            gnu(header(b"././@LongLink", b'L', 7)),
            b"link\0\0\0",
        ));
        a.extend(member(gnu(header(b"link", b'2', 0)), b""));
        a.extend(file("after", b"z"));
        a.extend(end());
        let found = files(&a).expect("read");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], (long, 2, b"ok".to_vec()));
        assert_eq!(found[1].0, "after");
    }

    #[test]
    fn long_name_exactly_at_the_cap() {
        let name = vec![b'a'; LONG_NAME_MAX as usize];
        let mut a = member(gnu(header(b"././@LongLink", b'L', LONG_NAME_MAX)), &name);
        a.extend(file("short", b""));
        a.extend(end());
        assert_eq!(names(&a), vec!["a".repeat(LONG_NAME_MAX as usize)]);
    }

    #[test]
    fn pax_path_and_size() {
        let long = "p".repeat(200);
        let pax = [
            record("path", long.as_bytes()),
            record("size", b"5"),
            record("mtime", b"1.5"),
        ]
        .concat();
        // The header says 0 bytes, pax says 5: the 5 bytes are the data.
        let mut a = member(header(b"PaxHeaders/x", b'x', pax.len() as u64), &pax);
        a.extend(member(header(b"short", b'0', 0), b"12345"));
        a.extend(file("next", b"n"));
        a.extend(end());
        let found = files(&a).expect("read");
        assert_eq!(
            found,
            vec![
                (long, 5, b"12345".to_vec()),
                ("next".into(), 1, b"n".to_vec())
            ]
        );
    }

    #[test]
    fn pax_path_wins_over_long_name_which_wins_over_the_header() {
        let pax = record("path", b"from/pax");
        let mut a = member(gnu(header(b"././@LongLink", b'L', 9)), b"from/gnu\0");
        a.extend(member(
            header(b"PaxHeaders/x", b'x', pax.len() as u64),
            &pax,
        ));
        a.extend(file("from/header", b""));
        a.extend(member(
            gnu(header(b"././@LongLink", b'L', 9)),
            b"from/gnu\0",
        ));
        a.extend(file("from/header", b""));
        a.extend(end());
        assert_eq!(names(&a), vec!["from/pax", "from/gnu"]);
    }

    #[test]
    fn pax_empty_values_and_global_headers() {
        // An empty value undoes the key; a global header is read past and changes nothing.
        let global = record("path", b"global");
        let pax = [
            record("path", b"x"),
            record("path", b""),
            record("size", b""),
        ]
        .concat();
        let mut a = member(header(b"g", b'g', global.len() as u64), &global);
        a.extend(member(header(b"x", b'x', pax.len() as u64), &pax));
        a.extend(file("own", b"abc"));
        a.extend(end());
        assert_eq!(
            files(&a).expect("read"),
            vec![("own".into(), 3, b"abc".to_vec())]
        );
    }

    #[test]
    fn pax_values_may_hold_newlines_and_equals() {
        let pax = record("path", b"a=b\nc");
        let mut a = member(header(b"x", b'x', pax.len() as u64), &pax);
        a.extend(file("own", b""));
        a.extend(end());
        assert_eq!(names(&a), vec!["a=b\nc"]);
    }

    #[test]
    fn base256_size() {
        let mut h = gnu(header(b"big", b'0', 0));
        h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x01]);
        let data = vec![1u8; 513];
        let mut a = member(seal(h), &data);
        a.extend(file("next", b""));
        a.extend(end());
        let found = files(&a).expect("read");
        assert_eq!(found[0], ("big".into(), 513, data));
        assert_eq!(found[1].0, "next");
    }

    #[test]
    fn bad_size_fields() {
        for (field, why) in [
            (&[0xff; 12][..], "negative"),
            (&[0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1][..], "negative"),
            (&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0][..], "64 bits"),
            (b"0000000008\0\0", "octal"),
            (b"00000 0001\0\0", "octal"),
            (b"0x1234\0\0\0\0\0\0", "octal"),
            (b"7777777777 7", "octal"),
        ] {
            let mut h = header(b"f", b'0', 0);
            h[124..136].copy_from_slice(field);
            let mut a = file("first", b"1");
            a.extend(seal(h));
            let (offset, text) = corrupt_at(&a);
            assert_eq!(offset, 1024, "{field:?}");
            assert!(text.contains(why), "{field:?}: {text}");
        }
        // The largest base-256 size that fits is read, and then the data is missing.
        let mut h = header(b"f", b'0', 0);
        h[124..136].copy_from_slice(&[
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        eof(&seal(h));
    }

    #[test]
    fn size_fields_with_spaces_and_nuls() {
        for field in [
            b"         12 ",
            b"\x00\x00000000012\x00",
            b"12          ",
            b"000000000012",
        ] {
            let mut h = header(b"f", b'0', 0);
            h[124..136].copy_from_slice(field);
            let mut a = member(seal(h), b"0123456789");
            a.extend(end());
            assert_eq!(files(&a).expect("read")[0].1, 10, "{field:?}");
        }
    }

    #[test]
    fn other_members_are_skipped() {
        let mut a = member(header(b"dir/", b'5', 0), b"");
        a.extend(member(header(b"hard", b'1', 0), b""));
        a.extend(member(header(b"sym", b'2', 0), b""));
        a.extend(member(header(b"chr", b'3', 0), b""));
        a.extend(member(header(b"fifo", b'6', 0), b""));
        // Unknown types and a GNU dump directory, with data to skip.
        a.extend(member(header(b"what", b'Z', 700), &[b'Z'; 700]));
        a.extend(member(gnu(header(b"dump", b'D', 5)), b"Ya\0\0\0"));
        // A GNU sparse file with two extension blocks of sparse entries before its data.
        let mut s = gnu(header(b"sparse", b'S', 600));
        s[482] = 1;
        a.extend(seal(s));
        let mut ext = [0u8; BLOCK];
        ext[504] = 1;
        a.extend(ext);
        ext[504] = 0;
        a.extend(ext);
        a.extend(vec![b'S'; 600]);
        a.resize(a.len() + padding(600) as usize, 0);
        a.extend(file("last", b"!"));
        a.extend(end());
        assert_eq!(names(&a), vec!["last"]);
    }

    #[test]
    fn unread_data_is_skipped() {
        let mut a = file("a", &[b'a'; 1000]);
        a.extend(file("b", &[b'b'; 512]));
        a.extend(file("c", b"c"));
        a.extend(end());
        let mut seen = Vec::new();
        for_each_file(&a[..], |path, size, data| {
            // Read nothing of "a", 10 bytes of "b", all of "c".
            let want = match path {
                b"a" => 0,
                b"b" => 10,
                _ => size as usize,
            };
            let mut buf = vec![0; want];
            data.read_exact(&mut buf)?;
            seen.push((path.to_vec(), buf));
            Ok(())
        })
        .expect("read");
        assert_eq!(
            seen,
            vec![
                (b"a".to_vec(), vec![]),
                (b"b".to_vec(), vec![b'b'; 10]),
                (b"c".to_vec(), b"c".to_vec())
            ]
        );
    }

    #[test]
    fn reader_stops_at_the_member_end() {
        let mut a = file("a", b"abc");
        a.extend(file("b", b"def"));
        a.extend(end());
        for_each_file(&a[..], |_, _, data| {
            let mut buf = [0u8; 100];
            assert_eq!(data.read(&mut buf)?, 3);
            assert_eq!(data.read(&mut buf)?, 0);
            Ok(())
        })
        .expect("read");
    }

    #[test]
    fn one_zero_block_ends_the_archive() {
        let mut a = file("a", b"1");
        a.extend([0u8; BLOCK]);
        // Whatever follows is not read.
        a.extend(b"garbage that is not a header");
        assert_eq!(names(&a), vec!["a"]);
    }

    #[test]
    fn eof_at_a_block_boundary_ends_the_archive() {
        let a = file("a", b"1");
        assert_eq!(names(&a), vec!["a"]);
        assert_eq!(names(b""), Vec::<String>::new());
    }

    #[test]
    fn eof_inside_a_member_or_header_is_unexpected() {
        let a = file("a", &[1; 600]);
        // Inside the data, inside the padding, inside the next header.
        eof(&a[..BLOCK + 300]);
        eof(&a[..BLOCK + 700]);
        let mut b = a.clone();
        b.extend(&file("b", b"")[..100]);
        eof(&b);
        eof(&a[..100]);
        // The callback's reader says so too, and its error ends the walk.
        let result = for_each_file(&a[..BLOCK + 300], |_, _, data| {
            let mut buf = Vec::new();
            data.read_to_end(&mut buf).map(drop)
        });
        match result {
            Err(TarError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {}
            other => panic!("{other:?}"),
        }
        // Inside a long name's data, inside a pax header's data.
        let l = member(gnu(header(b"L", b'L', 300)), &[b'l'; 300]);
        eof(&l[..BLOCK + 100]);
        let pax = record("path", b"p");
        let x = member(header(b"x", b'x', pax.len() as u64), &pax);
        eof(&x[..BLOCK + 3]);
    }

    #[test]
    fn callback_errors_stop_the_walk() {
        let mut a = file("a", b"1");
        a.extend(file("b", b"2"));
        a.extend(end());
        let mut calls = 0;
        let result = for_each_file(&a[..], |_, _, _| {
            calls += 1;
            Err(io::Error::other("stop here"))
        });
        assert_eq!(calls, 1);
        match result {
            Err(TarError::Io(e)) => assert_eq!(e.to_string(), "stop here"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn checksums() {
        let mut a = file("a", b"1");
        let mut h = header(b"b", b'0', 0);
        h[0] = b'c';
        a.extend(h);
        let (offset, why) = corrupt_at(&a);
        assert_eq!(offset, 1024);
        assert!(why.contains("checksum"), "{why}");
        // A checksum field that is not a number.
        let mut h = header(b"b", b'0', 0);
        h[148..156].copy_from_slice(b"12345x\0 ");
        assert!(corrupt_at(&h).1.contains("checksum"));
        // A header with only its typeflag set is not an end block.
        let mut h = [0u8; BLOCK];
        h[156] = b'0';
        assert_eq!(corrupt_at(&h).0, 0);
    }

    #[test]
    fn signed_checksums_are_accepted() {
        let mut h = header("é-ü".as_bytes(), b'0', 0);
        h[148..156].copy_from_slice(b"        ");
        let signed: i64 = h.iter().map(|&b| i64::from(b as i8)).sum();
        h[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
        let mut a = h.to_vec();
        a.extend(end());
        assert_eq!(names(&a), vec!["é-ü"]);
    }

    /// Data that never ends, and how much of it was read.
    struct Endless {
        header: Vec<u8>,
        read: u64,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let at = self.read as usize;
            let n = if at < self.header.len() {
                let n = buf.len().min(self.header.len() - at);
                buf[..n].copy_from_slice(&self.header[at..at + n]);
                n
            } else {
                buf.fill(b'a');
                buf.len()
            };
            self.read += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn huge_extension_headers_are_refused_before_reading() {
        const GIB: u64 = 1 << 30;
        let mut base256 = gnu(header(b"././@LongLink", b'L', 0));
        base256[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        for (block, what) in [
            (
                gnu(header(b"././@LongLink", b'L', GIB)),
                "long name of 1073741824 bytes exceeds 4096",
            ),
            (
                seal(base256),
                "long name of 1152921504606846976 bytes exceeds 4096",
            ),
            (
                gnu(header(b"././@LongLink", b'K', GIB)),
                "long link name of 1073741824 bytes",
            ),
            (
                header(b"PaxHeaders/x", b'x', GIB),
                "pax header of 1073741824 bytes exceeds 65536",
            ),
            (
                header(b"PaxHeaders/g", b'g', GIB),
                "global pax header of 1073741824 bytes",
            ),
            (header(b"x", b'x', PAX_MAX + 1), "pax header of 65537 bytes"),
            (
                header(b"L", b'L', LONG_NAME_MAX + 1),
                "long name of 4097 bytes",
            ),
        ] {
            // Three files first, so the header is at byte 1536; the input goes on forever, so
            // reading the declared size (or allocating it) before checking would not end soon.
            let mut a = file("a", b"");
            a.extend(file("b", b""));
            a.extend(file("c", b""));
            a.extend(block);
            let mut input = Endless { header: a, read: 0 };
            let err = match for_each_file(&mut input, |_, _, _| Ok(())) {
                Err(e @ TarError::Corrupt { .. }) => e,
                other => panic!("{what}: {other:?}"),
            };
            assert_eq!(input.read, 2048, "{what}: read past the header");
            let text = err.to_string();
            assert!(text.starts_with("tar header at byte 1536: "), "{text}");
            assert!(text.contains(what), "{text}");
        }
    }

    #[test]
    fn display() {
        let e = corrupt(
            1536,
            format!("long name of {} bytes exceeds {LONG_NAME_MAX}", 1u64 << 30),
        );
        assert_eq!(
            e.to_string(),
            "tar header at byte 1536: long name of 1073741824 bytes exceeds 4096"
        );
        assert_eq!(
            truncated("a header").to_string(),
            "the tar archive ends inside a header"
        );
    }

    #[test]
    fn repeated_or_orphaned_extensions() {
        let l = |name: &[u8]| member(gnu(header(b"././@LongLink", b'L', name.len() as u64)), name);
        // Two long names in a row: the second is the one refused.
        let mut a = l(b"one\0");
        a.extend(l(b"two\0"));
        a.extend(file("f", b""));
        a.extend(end());
        let (offset, why) = corrupt_at(&a);
        assert_eq!(
            (offset, why.contains("second long name")),
            (1024, true),
            "{why}"
        );
        // Also with a pax header between them.
        let pax = record("size", b"0");
        let mut a = l(b"one\0");
        a.extend(member(header(b"x", b'x', pax.len() as u64), &pax));
        a.extend(l(b"two\0"));
        assert_eq!(corrupt_at(&a).0, 2048);
        // Two pax headers, two long link names.
        let mut a = member(header(b"x", b'x', pax.len() as u64), &pax);
        a.extend(member(header(b"x", b'x', pax.len() as u64), &pax));
        assert_eq!(corrupt_at(&a).0, 1024);
        let mut a = member(gnu(header(b"K", b'K', 2)), b"k\0");
        a.extend(member(gnu(header(b"K", b'K', 2)), b"k\0"));
        assert_eq!(corrupt_at(&a).0, 1024);
        // A long name, long link or pax header then the end (a zero block or the input's end).
        let mut a = file("f", b"");
        a.extend(l(b"one\0"));
        let (offset, why) = corrupt_at(&a);
        assert_eq!(offset, 512);
        assert!(why.contains("no member after it"), "{why}");
        a.extend(end());
        assert_eq!(corrupt_at(&a).0, 512);
        let mut a = member(gnu(header(b"K", b'K', 2)), b"k\0");
        a.extend(end());
        assert_eq!(corrupt_at(&a).0, 0);
        let a = member(header(b"x", b'x', pax.len() as u64), &pax);
        assert_eq!(corrupt_at(&a).0, 0);
    }

    #[test]
    fn malformed_pax_records() {
        for (pax, why) in [
            (&b"0 path=x\n"[..], "impossible length 0"),
            (b"3 a=\n", "impossible length 3"),
            (b"99 path=x\n", "longer than the 10 bytes left"),
            (b"99999999999999999999999 path=x\n", "longer than"),
            (b"ab path=x\n", "does not start with its length"),
            (b" 10 path=x\n", "does not start with its length"),
            (b"10path=xy\n", "no space"),
            (b"+9 path=x\n", "does not start with its length"),
            (b"10 path=xy\0", "newline"),
            (b"10 pathxy\n", "no '='"),
            (b"10 =pathx\n", "empty key"),
            (&record("size", b"12a"), "not a decimal number"),
            (&record("size", b"+5"), "not a decimal number"),
            (&record("size", b"-5"), "not a decimal number"),
            (&record("size", b" 5"), "not a decimal number"),
            (
                &record("size", b"18446744073709551616"),
                "not a decimal number",
            ),
            (b"9 path=x\n\0\0\0", "does not start with its length"),
            (b"9 path=x\n9 path=x", "longer than the 8 bytes left"),
        ] {
            let mut a = file("first", b"");
            a.extend(member(header(b"x", b'x', pax.len() as u64), pax));
            a.extend(file("f", b""));
            a.extend(end());
            let (offset, text) = corrupt_at(&a);
            assert_eq!(offset, 512, "{pax:?}");
            assert!(
                text.contains(why),
                "{:?}: {text}",
                pax.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn pax_record_lengths_count_the_whole_record() {
        // 99 bytes with a two-digit length, 101 with a three-digit one (100 cannot be written).
        let pax = [record("path", &[b'a'; 90]), record("path", &[b'b'; 91])].concat();
        assert_eq!(&pax[..3], b"99 ");
        assert_eq!(&pax[99..103], b"101 ");
        let mut a = member(header(b"x", b'x', pax.len() as u64), &pax);
        a.extend(file("f", b""));
        a.extend(end());
        assert_eq!(names(&a), vec!["b".repeat(91)]);
    }

    /// Hands out one byte at a time, and is interrupted before every other read.
    struct Trickle<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(ErrorKind::Interrupted.into());
            }
            let Some((&first, rest)) = self.data.split_first() else {
                return Ok(0);
            };
            match buf.first_mut() {
                Some(b) => *b = first,
                None => return Ok(0),
            }
            self.data = rest;
            Ok(1)
        }
    }

    #[test]
    fn short_and_interrupted_reads() {
        let pax = record("path", b"pax/path");
        let mut a = member(header(b"x", b'x', pax.len() as u64), &pax);
        a.extend(file("a", &[1; 700]));
        a.extend(member(gnu(header(b"L", b'L', 5)), b"long\0"));
        a.extend(file("b", b"2"));
        a.extend(end());
        let mut found = Vec::new();
        let input = Trickle {
            data: &a,
            interrupt: false,
        };
        for_each_file(input, |path, _, data| {
            let mut bytes = Vec::new();
            data.read_to_end(&mut bytes)?;
            found.push((String::from_utf8_lossy(path).into_owned(), bytes.len()));
            Ok(())
        })
        .expect("read");
        assert_eq!(found, vec![("pax/path".into(), 700), ("long".into(), 1)]);
    }
}
