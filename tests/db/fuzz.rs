//! Fuzzing on stable Rust: each parser that reads untrusted input gets mutated and generated
//! inputs from a seeded generator, a fixed number of executions per run, and properties that
//! must hold for every input besides "no panic".
//!
//! `PACXFER_FUZZ_ITERS=N` runs N executions per target instead of the default, and
//! `PACXFER_FUZZ_SEED=S` starts from another seed; a failure prints the input and the seed.

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use pacxfer::config::Config;
use pacxfer::db::desc::parse_desc;
use pacxfer::db::entry::Query;
use pacxfer::db::syncdb::{self, SyncDb};
use pacxfer::db::tar::{for_each_file, TarError, LONG_NAME_MAX, PAX_MAX};
use pacxfer::ipfs::template;
use pacxfer::pacman::names::is_plain_filename;
use pacxfer::pacman::target::Target;

use crate::harness::util::{show, TestDir};

/// splitmix64: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn iterations(default: usize) -> usize {
    std::env::var("PACXFER_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("PACXFER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0070_6163_7866_6572)
}

/// Changes `data` in 1 to 8 ways: bit flips, bytes set, inserted or removed, ranges repeated,
/// dictionary words put in, the end cut off.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, dictionary: &[&[u8]]) {
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(&[0u8, 0xff, b'%', b'\n', b'/', b'.', b'{', b'}', b'"']);
            }
            2 => {
                let i = rng.below(len + 1);
                data.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let piece: Vec<u8> = data[i..i + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, piece);
            }
            5 if !dictionary.is_empty() => {
                let word = rng.pick(dictionary);
                let at = rng.below(len + 1);
                data.splice(at..at, word.iter().copied());
            }
            6 if len > 0 => data.truncate(rng.below(len)),
            _ => {
                let n = rng.below(16);
                for _ in 0..n {
                    data.push(rng.next() as u8);
                }
            }
        }
    }
}

/// Runs `check` on `count` inputs made by `make`; a panic or a broken property fails the test
/// with the input that caused it. `check` says whether the target accepted the input (so that
/// the properties of accepted inputs were checked); a run in which it accepted none proves
/// nothing about them and fails. Prints the totals.
fn fuzz(
    target: &str,
    default_count: usize,
    mut make: impl FnMut(&mut Rng) -> Vec<u8>,
    mut check: impl FnMut(&[u8]) -> Result<bool, String>,
) {
    let count = iterations(default_count);
    let seed = seed();
    let mut rng = Rng(seed
        ^ target
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(5) ^ b as u64));
    let mut accepted = 0usize;
    for i in 0..count {
        let input = make(&mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let why = match outcome {
            Ok(Ok(taken)) => {
                accepted += usize::from(taken);
                continue;
            }
            Ok(Err(why)) => why,
            Err(_) => "panicked".to_string(),
        };
        panic!(
            "fuzz {target}: execution {i} (PACXFER_FUZZ_SEED={seed}): {why}\ninput: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
    assert!(
        count == 0 || accepted > 0,
        "fuzz {target}: none of {count} inputs was accepted (PACXFER_FUZZ_SEED={seed}): the \
         properties of accepted inputs were never checked"
    );
    show(&format!(
        "fuzz {target}: {count} executions ({accepted} accepted), seed {seed}, no crash\n"
    ));
}

const DESC: &str = "%FILENAME%\nzstd-1.5.6-1-x86_64.pkg.tar.zst\n\n%NAME%\nzstd\n\n\
%VERSION%\n1:1.5.6-1\n\n%ARCH%\nx86_64\n\n%CSIZE%\n504123\n\n%SHA256SUM%\n\
a8a7b8f14a2b8cca7fb2b4e32c0c5d57e2e8e0f6c1b8c5d8b2e9c7d6e5f4a3b2\n\n\
%PGPSIG%\niHUEABYKAB0WIQQ=\n\n%CID%\nbafkreiabc\n\n%DEPENDS%\nglibc\nzlib\n\n";

const DESC_WORDS: &[&[u8]] = &[
    b"%FILENAME%\n",
    b"%NAME%\n",
    b"%CSIZE%\n",
    b"%SHA256SUM%\n",
    b"%PGPSIG%\n",
    b"%CID%\n",
    b"\n\n",
    b"\r\n",
    b"../../etc/passwd",
    b"..",
    b"18446744073709551616",
    b"-1",
    b"\xff\xfe",
    b"a/b",
];

/// Mutated `desc` entries: never a panic; an accepted entry has a plain file name and keeps
/// its repository. The unmutated entry is accepted with its file name.
#[test]
fn fuzz_desc_parsing() {
    let seed = parse_desc(DESC, "core").expect("the unmutated desc parses");
    assert_eq!(seed.filename, "zstd-1.5.6-1-x86_64.pkg.tar.zst");
    fuzz(
        "syncdb::parse_desc",
        30_000,
        |rng| {
            let mut d = DESC.as_bytes().to_vec();
            mutate(rng, &mut d, DESC_WORDS);
            d
        },
        |input| {
            let text = String::from_utf8_lossy(input);
            match parse_desc(&text, "core") {
                Ok(e) if !is_plain_filename(&e.filename) => {
                    Err(format!("accepted the file name {:?}", e.filename))
                }
                Ok(e) if e.repo != "core" => Err("lost the repository".into()),
                Ok(_) => Ok(true),
                Err(_) => Ok(false),
            }
        },
    );
}

/// A sync database holding `descs`, as a tar archive.
fn tar_of(descs: &[(&str, String)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (dir, text) in descs {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("{dir}/desc"), text.as_bytes())
            .expect("tar member");
    }
    b.into_inner().expect("tar")
}

/// `data` compressed with each method a sync database may use.
fn compressed(data: &[u8]) -> Vec<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip");
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(data).expect("bzip2");
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(data).expect("xz");
    vec![
        gz.finish().expect("gzip"),
        zstd::encode_all(data, 1).expect("zstd"),
        xz.finish().expect("xz"),
        bz.finish().expect("bzip2"),
        data.to_vec(),
    ]
}

/// Mutated databases in every compression a sync database may use: never a panic; every
/// entry found has a plain file name, and every problem reported is one line. Unmutated, each
/// finds both entries.
#[test]
fn fuzz_database_reader() {
    let dir = TestDir::new("fuzz-db");
    let path = dir.join("sync/core.db");
    std::fs::create_dir_all(dir.join("sync")).expect("mkdir");
    let other = DESC.replace("zstd", "zlib");
    let seeds = compressed(&tar_of(&[
        ("zstd-1:1.5.6-1", DESC.to_string()),
        ("zlib-1:1.5.6-1", other),
    ]));
    let db = SyncDb {
        repo: "core".into(),
        path: path.clone(),
    };
    for seed in &seeds {
        std::fs::write(&path, seed).expect("write db");
        for (query, want) in [
            (
                Query::Filename("zstd-1.5.6-1-x86_64.pkg.tar.zst"),
                "zstd-1.5.6-1-x86_64.pkg.tar.zst",
            ),
            (Query::Name("zlib"), "zlib-1.5.6-1-x86_64.pkg.tar.zst"),
        ] {
            let found = syncdb::search(&db, query, &mut |_| {}).expect("the unmutated db reads");
            assert_eq!(
                found
                    .iter()
                    .map(|e| e.filename.as_str())
                    .collect::<Vec<_>>(),
                [want]
            );
        }
    }
    fuzz(
        "syncdb::search",
        3_000,
        |rng| {
            let mut d = rng.pick(&seeds).clone();
            // Mostly small changes, so the decoders get past their headers.
            if rng.below(4) > 0 {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            } else {
                mutate(rng, &mut d, DESC_WORDS);
            }
            d
        },
        |input| {
            std::fs::write(&path, input).expect("write db");
            let mut accepted = false;
            for query in [
                Query::Filename("zstd-1.5.6-1-x86_64.pkg.tar.zst"),
                Query::Name("zlib"),
            ] {
                let mut problems = Vec::new();
                if let Ok(found) = syncdb::search(&db, query, &mut |e| problems.push(e)) {
                    if let Some(e) = found.iter().find(|e| !is_plain_filename(&e.filename)) {
                        return Err(format!("found the file name {:?}", e.filename));
                    }
                    accepted |= !found.is_empty();
                }
                for p in problems {
                    let line = p.to_string();
                    if line.contains('\n') {
                        return Err(format!("a problem that is not one line: {line:?}"));
                    }
                }
            }
            Ok(accepted)
        },
    );
}

/// Header fields, extension types and pax records that reach the tar reader's limits.
const TAR_WORDS: &[&[u8]] = &[
    b"L",
    b"K",
    b"x",
    b"g",
    b"S",
    b"5",
    b"\0",
    b"77777777777",
    b"00000001000",
    b"00000010001",
    b"\x80\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00",
    b"\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    b"99999999 path=",
    b"20 size=99999999999\n",
    b"12 path=abc\n",
    b"9 size=0\n",
    b"0 path=\n",
    b"ustar\x0000",
    b"ustar  \x00",
    b"\0\0\0\0\0\0\0\0",
];

/// Where a dictionary word is written over a block: the name, the size field, the typeflag,
/// the magic, the ustar prefix, and the start of a block (a pax record or a long name).
const TAR_FIELDS: &[usize] = &[0, 124, 156, 257, 345, 0, 3];

/// Sets the checksum of every block that has a ustar or GNU magic, so that mutations reach past
/// the checksum check.
fn reseal(data: &mut [u8]) {
    for block in data.chunks_exact_mut(512) {
        if &block[257..262] != b"ustar" {
            continue;
        }
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }
}

/// The archives the tar reader starts from: GNU long names and long links, pax headers (with
/// `path` and `size`), a global pax header, ustar prefixes, base-256 sizes and old v7 headers.
fn tar_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![tar_of(&[
        ("zstd-1:1.5.6-1", DESC.to_string()),
        ("zlib-1:1.5.6-1", DESC.replace("zstd", "zlib")),
    ])];

    // GNU: a long name (the crate writes an 'L' member), a long link target ('K'), a directory.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, "zstd-1:1.5.6-1/", &[][..])
        .expect("tar dir");
    let long = format!("{}-1:1.5.6-1/desc", "zstd".repeat(40));
    let mut h = tar::Header::new_gnu();
    h.set_size(DESC.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, DESC.as_bytes())
        .expect("tar long name");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, format!("{}/link", "l".repeat(120)), "t".repeat(150))
        .expect("tar long link");
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_entry_type(tar::EntryType::Continuous);
    b.append_data(&mut h, "contiguous/desc", &b"seven"[..])
        .expect("tar contiguous");
    seeds.push(b.into_inner().expect("tar"));

    // Pax: a global header, then extended headers giving a long path and overriding the size.
    let record = |key: &str, value: &str| {
        let body = format!("{key}={value}\n");
        let mut len = body.len() + 2;
        while format!("{len} ").len() + body.len() != len {
            len += 1;
        }
        format!("{len} {body}").into_bytes()
    };
    let mut b = tar::Builder::new(Vec::new());
    let pax = |b: &mut tar::Builder<Vec<u8>>, kind, records: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path("PaxHeaders.0/desc").expect("pax name");
        h.set_size(records.len() as u64);
        h.set_cksum();
        b.append(&h, records).expect("pax header");
    };
    pax(
        &mut b,
        tar::EntryType::XGlobalHeader,
        &record("comment", "made by pacxfer's fuzz test"),
    );
    let long = format!("{}/desc", "pax-path".repeat(30));
    let records = [record("path", &long), record("mtime", "1700000000.5")].concat();
    pax(&mut b, tar::EntryType::XHeader, &records);
    let mut h = tar::Header::new_ustar();
    h.set_path("short/desc").expect("path");
    h.set_size(DESC.len() as u64);
    h.set_cksum();
    b.append(&h, DESC.as_bytes()).expect("tar");
    pax(&mut b, tar::EntryType::XHeader, &record("size", "5"));
    let mut h = tar::Header::new_ustar();
    h.set_path("sized/desc").expect("path");
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &b"12345"[..]).expect("tar");
    seeds.push(b.into_inner().expect("tar"));

    // Ustar with a prefix, base-256 size, and an old v7 header.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(DESC.len() as u64);
    h.set_mode(0o644);
    let prefixed = format!("{}/zstd-1:1.5.6-1/desc", "prefix".repeat(12));
    b.append_data(&mut h, &prefixed, DESC.as_bytes())
        .expect("tar prefix");
    let mut h = tar::Header::new_gnu();
    h.set_path("base256/desc").expect("path");
    h.as_mut_bytes()[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6]);
    h.set_cksum();
    b.append(&h, &b"base\n\n"[..]).expect("tar");
    let mut h = tar::Header::new_old();
    h.set_path("old/desc").expect("path");
    h.set_size(3);
    h.set_cksum();
    b.append(&h, &b"v7\n"[..]).expect("tar");
    seeds.push(b.into_inner().expect("tar"));
    seeds
}

type TarFiles = Vec<(Vec<u8>, u64, Vec<u8>)>;

/// The regular files of an archive as the `tar` crate reads them.
fn tar_crate_files(input: &[u8]) -> std::io::Result<TarFiles> {
    let mut archive = tar::Archive::new(input);
    let mut found = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let path = entry.path_bytes().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        found.push((path, entry.size(), data));
    }
    Ok(found)
}

/// Mutated archives (GNU, pax, ustar, v7 headers): the reader never hands out more data than
/// the input holds, nor paths over its limits, nor more of a member than its size; errors are
/// one line at a header boundary; unmutated, it reads what the `tar` crate reads.
#[test]
fn fuzz_tar_reader() {
    let seeds = tar_seeds();
    // Unmutated, the reader finds what the `tar` crate finds.
    for seed in &seeds {
        let mut ours = Vec::new();
        for_each_file(&seed[..], |path, size, data| {
            let mut bytes = Vec::new();
            data.read_to_end(&mut bytes)?;
            ours.push((path.to_vec(), size, bytes));
            Ok(())
        })
        .expect("our reader");
        let theirs = tar_crate_files(seed).expect("tar crate");
        assert!(theirs.len() >= 2);
        assert_eq!(ours, theirs);
    }
    fuzz(
        "tar::for_each_file",
        20_000,
        |rng| {
            let mut d = rng.pick(&seeds).clone();
            match rng.below(8) {
                // Sometimes a seed as it is.
                0 => return d,
                // Words written over a header field, or over the start of a block.
                1..=4 => {
                    for _ in 0..1 + rng.below(3) {
                        let word = rng.pick(TAR_WORDS);
                        let at = rng.below(d.len() / 512) * 512 + rng.pick(TAR_FIELDS);
                        let end = (at + word.len()).min(d.len());
                        d[at..end].copy_from_slice(&word[..end - at]);
                    }
                }
                _ => mutate(rng, &mut d, TAR_WORDS),
            }
            if rng.below(4) > 0 {
                reseal(&mut d);
            }
            d
        },
        |input| {
            // Some members are read whole, some not at all, some in part.
            let mode = input.len() % 3;
            let mut handed = 0u64;
            let mut members = Vec::new();
            let result = for_each_file(input, |path, size, data| {
                let max = match mode {
                    0 => u64::MAX,
                    1 => 0,
                    _ => 100,
                };
                let mut bytes = Vec::new();
                let read = data.take(max).read_to_end(&mut bytes)?;
                handed += read as u64;
                members.push((path.to_vec(), size, read as u64));
                Ok(())
            });
            if handed > input.len() as u64 {
                return Err(format!(
                    "{handed} bytes of data from {} bytes of input",
                    input.len()
                ));
            }
            for (path, size, read) in &members {
                let cap = if path.len() as u64 > LONG_NAME_MAX
                    && input.windows(5).any(|w| w == b"path=")
                {
                    PAX_MAX
                } else {
                    LONG_NAME_MAX
                };
                if path.len() as u64 > cap {
                    return Err(format!("a path of {} bytes", path.len()));
                }
                if read > size {
                    return Err(format!("{read} bytes of a {size}-byte member"));
                }
                if result.is_ok() && mode == 0 && read != size {
                    return Err(format!(
                        "{read} bytes of a {size}-byte member, and no error"
                    ));
                }
            }
            match &result {
                Err(e) if e.to_string().contains('\n') => {
                    return Err(format!("an error that is not one line: {e}"));
                }
                Err(TarError::Corrupt { offset, .. }) if offset % 512 != 0 => {
                    return Err(format!("a header at byte {offset}"));
                }
                _ => {}
            }
            if mode == 0 && seeds.iter().any(|s| s == input) {
                let ours: Vec<_> = members.iter().map(|(p, s, _)| (p.clone(), *s)).collect();
                let theirs: Vec<_> = tar_crate_files(input)
                    .map_err(|e| format!("the tar crate: {e}"))?
                    .into_iter()
                    .map(|(p, s, _)| (p, s))
                    .collect();
                if result.is_err() || ours != theirs {
                    return Err(format!(
                        "{result:?}: {ours:?} but the tar crate reads {theirs:?}"
                    ));
                }
            }
            Ok(result.is_ok() && !members.is_empty())
        },
    );
}

const URL_WORDS: &[&[u8]] = &[
    b"http://",
    b"https://",
    b"file://",
    b"%2F",
    b"%2e%2e",
    b"..",
    b"/",
    b"?x=1",
    b"#frag",
    b".sig",
    b"@",
    b":",
    b"%00",
    b"%",
    b"[::1]",
];

/// Mutated URLs: an accepted one yields a plain file name, and a `.sig` of exactly the file it
/// names. The unmutated URLs are accepted.
#[test]
fn fuzz_url_and_file_name_parsing() {
    let seeds = [
        "https://mirror.example/core/os/x86_64/zstd-1.5.6-1-x86_64.pkg.tar.zst",
        "http://m/extra/os/x86_64/gtk+foo-1:2.0-1-any.pkg.tar.zst.sig",
        "file:///srv/repo/core.db",
        "http://user@[::1]:8080/a%2Bb-1-1-any.pkg.tar.zst?x=1#y",
    ];
    for url in seeds {
        assert!(Target::parse(url).is_ok(), "{url}");
    }
    fuzz(
        "target::Target::parse",
        30_000,
        |rng| {
            let mut d = rng.pick(&seeds).as_bytes().to_vec();
            mutate(rng, &mut d, URL_WORDS);
            d
        },
        |input| {
            let url = String::from_utf8_lossy(input);
            let Ok(t) = Target::parse(&url) else {
                return Ok(false);
            };
            if !is_plain_filename(&t.filename) || t.listed_name.is_empty() {
                return Err(format!("file name {:?} from {url:?}", t.filename));
            }
            let sig_of = t.filename.strip_suffix(".sig").filter(|b| !b.is_empty());
            if t.is_sig != sig_of.is_some() || (t.is_sig && sig_of != Some(&t.listed_name)) {
                return Err(format!("{url:?}: .sig of {:?}?", t.listed_name));
            }
            let _ = t.file_path();
            Ok(true)
        },
    );
}

/// Mutated templates and values: a value never adds a path segment, a dot segment, a query,
/// a fragment or a space to the gateway path. The unmutated templates expand.
#[test]
fn fuzz_template_expansion() {
    let templates = [
        "/ipfs/{cid}",
        "/ipns/k51/{sha256}",
        "/ipns/k51/{repo}/{filename}",
        "/x/{name}-{version}-{arch}",
    ];
    let values: &[&[u8]] = &[
        b"..",
        b".",
        b"a/b",
        b"%2e",
        b"core",
        b"",
        b"{cid}",
        b"?",
        b"#",
        b" ",
        b"\xc3\xa9",
    ];
    for t in templates {
        assert!(template::validate(t).is_ok(), "{t}");
        assert!(
            template::expand(t, |_| Some("core".to_string())).is_some(),
            "{t}"
        );
    }
    fuzz(
        "template::expand",
        30_000,
        |rng| {
            let mut t = rng.pick(&templates).as_bytes().to_vec();
            if rng.below(2) == 0 {
                mutate(rng, &mut t, &[b"{", b"}", b"{repo}", b"{cid}", b"/"]);
            }
            // The template, a NUL, then the value every placeholder gets.
            t.push(0);
            let mut v = rng.pick(values).to_vec();
            if rng.below(2) == 0 {
                mutate(rng, &mut v, values);
            }
            t.extend(v);
            t
        },
        |input| {
            let text = String::from_utf8_lossy(input);
            let (t, value) = text.split_once('\0').unwrap_or((&text, ""));
            let valid = template::validate(t).is_ok();
            let Some(path) = template::expand(t, |_| Some(value.to_string())) else {
                return Ok(false);
            };
            if !valid {
                return Ok(false);
            }
            // Each value stays inside its one path segment: no new segment, no dot segment.
            let own = t.split('/').count();
            if path.split('/').count() != own {
                return Err(format!("{value:?} changed the segments: {path:?}"));
            }
            if path.split('/').any(|s| s == "." || s == "..")
                && !t.split('/').any(|s| s == "." || s == "..")
            {
                return Err(format!("{value:?} made a dot segment: {path:?}"));
            }
            if path.contains(['?', '#', ' ']) && !t.contains(['?', '#', ' ']) {
                return Err(format!(
                    "{value:?} left a query, fragment or space: {path:?}"
                ));
            }
            Ok(true)
        },
    );
}

const CONFIG: &str = "dbpath = \"/var/lib/pacman\"\npacman_conf = \"/etc/pacman.conf\"\n\n\
[gateway]\nenabled = true\nurl = \"http://127.0.0.1:8080\"\n\
paths = [\"/ipfs/{cid}\", \"/ipns/k51/{sha256}\"]\nconnect_timeout = \"500ms\"\n\
stall_timeout = \"5s\"\nnetwork_timeout = \"0\"\nraw_block_max = 1048576\n\n\
[mirror]\nconnect_timeout = \"10s\"\nstall_timeout = \"10s\"\nmax_redirects = 10\n";

/// Mutated configurations: an accepted one has an `http(s)://` gateway, non-zero stall
/// timeouts and valid templates; an error is one line naming the file. The unmutated one is
/// accepted.
#[test]
fn fuzz_config_parsing() {
    let words: &[&[u8]] = &[
        b"[gateway]\n",
        b"[mirror]\n",
        b" = ",
        b"\"",
        b"'''",
        b"0",
        b"\"0\"",
        b"-1",
        b"99999999999999999999",
        b"\"1ms\"",
        b"\"584942417355y\"",
        b"ipfs://",
        b"https://",
        b"{",
        b"[[",
        b"\n",
        b"#",
        b"\\u0000",
    ];
    let file = Path::new("/etc/pacxfer.conf");
    Config::parse(CONFIG, file).expect("the unmutated config parses");
    fuzz(
        "config::Config::parse",
        10_000,
        |rng| {
            let mut d = CONFIG.as_bytes().to_vec();
            mutate(rng, &mut d, words);
            d
        },
        |input| {
            let text = String::from_utf8_lossy(input);
            match Config::parse(&text, file) {
                Ok(c) => {
                    let url = &c.gateway.url;
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(format!("accepted the gateway URL {url:?}"));
                    }
                    if c.gateway.stall_timeout.is_zero() || c.mirror.stall_timeout.is_zero() {
                        return Err("accepted a zero stall timeout".into());
                    }
                    if c.gateway
                        .paths
                        .iter()
                        .any(|p| template::validate(p).is_err())
                    {
                        return Err("accepted a bad template".into());
                    }
                    Ok(true)
                }
                Err(e) => {
                    let line = e.to_string();
                    if line.contains('\n') || !line.contains("/etc/pacxfer.conf") {
                        Err(format!("error not one line naming the file: {line:?}"))
                    } else {
                        Ok(false)
                    }
                }
            }
        },
    );
}
