//! The checksums a PKGBUILD pins its sources with (`<algo>sums` arrays): the algorithms
//! makepkg knows, a sum parsed from its text, which of them pin content well enough to take a
//! file from anyone (`strong`), and running hashers for a set of them.
//!
//! makepkg reads `ck`, `md5`, `sha1`, `sha224`, `sha256`, `sha384`, `sha512` and `b2`
//! (BLAKE2b-512). md5, sha1 and the cksum CRC are read and checked, but a file is never looked
//! up in IPFS by them alone: a copy from anywhere must match a sum nobody can forge. The CRC
//! is not computed here at all (makepkg checks it after the download).

use std::fmt;

use blake2::Blake2b512;
use sha2::Digest;

/// A checksum algorithm makepkg knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algo {
    Ck,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    B2,
}

impl Algo {
    /// Every algorithm, in makepkg's order.
    pub const ALL: [Algo; 8] = [
        Algo::Ck,
        Algo::Md5,
        Algo::Sha1,
        Algo::Sha224,
        Algo::Sha256,
        Algo::Sha384,
        Algo::Sha512,
        Algo::B2,
    ];

    /// The name in `<name>sums` and in `sources/<name>/<hex>`.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Ck => "ck",
            Algo::Md5 => "md5",
            Algo::Sha1 => "sha1",
            Algo::Sha224 => "sha224",
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
            Algo::B2 => "b2",
        }
    }

    pub fn from_name(name: &str) -> Option<Algo> {
        Algo::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether a match proves the content: a file found by this sum alone may be used.
    pub fn strong(self) -> bool {
        matches!(
            self,
            Algo::Sha224 | Algo::Sha256 | Algo::Sha384 | Algo::Sha512 | Algo::B2
        )
    }

    /// Whether pacxfer computes it (all but the cksum CRC, which makepkg checks).
    pub fn computed(self) -> bool {
        self != Algo::Ck
    }

    /// The digest's length in bytes (the CRC is a decimal number, not hex).
    fn len(self) -> Option<usize> {
        match self {
            Algo::Ck => None,
            Algo::Md5 => Some(16),
            Algo::Sha1 => Some(20),
            Algo::Sha224 => Some(28),
            Algo::Sha256 => Some(32),
            Algo::Sha384 => Some(48),
            Algo::Sha512 | Algo::B2 => Some(64),
        }
    }
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The strong sums every shared or published build source is linked under, whatever its
/// PKGBUILD pinned: another PKGBUILD may pin the same file by another of them.
pub const SHARED: [Algo; 3] = [Algo::Sha256, Algo::Sha512, Algo::B2];

/// One pinned checksum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sum {
    pub algo: Algo,
    /// The digest (for `ck`, the CRC's decimal text).
    pub digest: Vec<u8>,
}

impl Sum {
    /// A sum from its text in a `<algo>sums` array: lowercase or uppercase hex of the
    /// algorithm's length (decimal for `ck`). `None` for `SKIP` and for anything malformed.
    pub fn parse(algo: Algo, text: &str) -> Option<Sum> {
        let text = text.trim();
        match algo.len() {
            None => {
                (!text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| Sum {
                        algo,
                        digest: text.as_bytes().to_vec(),
                    })
            }
            Some(len) => {
                let digest = hex::decode(text.to_ascii_lowercase()).ok()?;
                (digest.len() == len).then_some(Sum { algo, digest })
            }
        }
    }

    /// The digest in lowercase hex, as file names use it.
    pub fn hex(&self) -> String {
        match self.algo {
            Algo::Ck => String::from_utf8_lossy(&self.digest).into_owned(),
            _ => hex::encode(&self.digest),
        }
    }

    /// `sources/<algo>/<hex>`: where source caches and seeded copies link the file.
    pub fn rel_path(&self) -> String {
        format!("sources/{}/{}", self.algo, self.hex())
    }
}

impl fmt::Display for Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo, self.hex())
    }
}

/// The sums one source entry pins (its `SKIP`s left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums(pub Vec<Sum>);

impl Sums {
    /// The sums a file may be looked up and taken by.
    pub fn strong(&self) -> impl Iterator<Item = &Sum> {
        self.0.iter().filter(|s| s.algo.strong())
    }

    /// Whether a copy from anywhere can be checked (some strong sum).
    pub fn pins_content(&self) -> bool {
        self.strong().next().is_some()
    }

    /// The SHA-256, when pinned.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        sha256_of(&self.0)
    }

    /// The algorithms to hash a file with before it is shared or published: those it pins,
    /// and [`SHARED`].
    pub fn shared_algos(&self) -> Vec<Algo> {
        let mut algos = algos(std::slice::from_ref(self));
        algos.extend(SHARED);
        algos
    }

    /// Whether computed digests match every sum pacxfer computes (and there is one).
    pub fn matched_by(&self, computed: &[Sum]) -> bool {
        let mut checked = 0;
        for sum in self.0.iter().filter(|s| s.algo.computed()) {
            match computed.iter().find(|c| c.algo == sum.algo) {
                Some(c) if c.digest == sum.digest => checked += 1,
                _ => return false,
            }
        }
        checked > 0
    }
}

/// The SHA-256 among `sums`, when there is one.
pub fn sha256_of(sums: &[Sum]) -> Option<[u8; 32]> {
    sums.iter()
        .find(|s| s.algo == Algo::Sha256)
        .and_then(|s| s.digest.as_slice().try_into().ok())
}

/// The algorithms `list` pins, one or more times each (what an output must keep to judge a
/// file by them).
pub fn algos(list: &[Sums]) -> Vec<Algo> {
    list.iter()
        .flat_map(|s| s.0.iter().map(|x| x.algo))
        .collect()
}

/// Running hashers for a set of algorithms.
#[derive(Clone, Default)]
pub struct Hashers(Vec<Hasher>);

#[derive(Clone)]
enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    B2(Blake2b512),
}

impl Hashers {
    /// Hashers for `algos` (duplicates and the CRC left out).
    pub fn new(algos: impl IntoIterator<Item = Algo>) -> Hashers {
        let mut seen: Vec<Algo> = Vec::new();
        let mut out = Vec::new();
        for algo in algos {
            if seen.contains(&algo) {
                continue;
            }
            seen.push(algo);
            out.push(match algo {
                Algo::Ck => continue,
                Algo::Md5 => Hasher::Md5(md5::Md5::new()),
                Algo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
                Algo::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
                Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
                Algo::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
                Algo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
                Algo::B2 => Hasher::B2(Blake2b512::new()),
            });
        }
        Hashers(out)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for h in &mut self.0 {
            match h {
                Hasher::Md5(h) => h.update(bytes),
                Hasher::Sha1(h) => h.update(bytes),
                Hasher::Sha224(h) => h.update(bytes),
                Hasher::Sha256(h) => h.update(bytes),
                Hasher::Sha384(h) => h.update(bytes),
                Hasher::Sha512(h) => h.update(bytes),
                Hasher::B2(h) => h.update(bytes),
            }
        }
    }

    /// The same algorithms, started again.
    pub fn reset(&mut self) {
        let algos: Vec<Algo> = self.0.iter().map(Hasher::algo).collect();
        *self = Hashers::new(algos);
    }

    /// The digests of what was hashed so far.
    pub fn sums(&self) -> Vec<Sum> {
        self.0
            .iter()
            .map(|h| {
                let digest = match h.clone() {
                    Hasher::Md5(h) => h.finalize().to_vec(),
                    Hasher::Sha1(h) => h.finalize().to_vec(),
                    Hasher::Sha224(h) => h.finalize().to_vec(),
                    Hasher::Sha256(h) => h.finalize().to_vec(),
                    Hasher::Sha384(h) => h.finalize().to_vec(),
                    Hasher::Sha512(h) => h.finalize().to_vec(),
                    Hasher::B2(h) => h.finalize().to_vec(),
                };
                Sum {
                    algo: h.algo(),
                    digest,
                }
            })
            .collect()
    }
}

impl Hasher {
    fn algo(&self) -> Algo {
        match self {
            Hasher::Md5(_) => Algo::Md5,
            Hasher::Sha1(_) => Algo::Sha1,
            Hasher::Sha224(_) => Algo::Sha224,
            Hasher::Sha256(_) => Algo::Sha256,
            Hasher::Sha384(_) => Algo::Sha384,
            Hasher::Sha512(_) => Algo::Sha512,
            Hasher::B2(_) => Algo::B2,
        }
    }
}

/// A reader that hashes what passes through it: what was read is exactly what was hashed.
pub struct HashingReader<R> {
    inner: R,
    hashers: Hashers,
    len: u64,
}

impl<R: std::io::Read> HashingReader<R> {
    pub fn new(inner: R, algos: &[Algo]) -> HashingReader<R> {
        HashingReader {
            inner,
            hashers: Hashers::new(algos.iter().copied()),
            len: 0,
        }
    }

    /// The digests and length of what was read so far.
    pub fn sums(&self) -> (Vec<Sum>, u64) {
        (self.hashers.sums(), self.len)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hashers.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Every digest pacxfer computes of a file, read once.
pub fn hash_file(path: &std::path::Path, algos: &[Algo]) -> std::io::Result<(Vec<Sum>, u64)> {
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut reader = HashingReader::new(file, algos);
    std::io::copy(&mut reader, &mut std::io::sink())?;
    Ok(reader.sums())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        let mut h = Hashers::new(Algo::ALL);
        h.update(b"abc");
        let got: Vec<String> = h.sums().iter().map(|s| s.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "md5:900150983cd24fb0d6963f7d28e17f72",
                "sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
                "sha224:23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "sha384:cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
                "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
                "b2:ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
            ]
        );
    }

    #[test]
    fn parsing_and_matching() {
        assert!(Sum::parse(Algo::Sha256, "SKIP").is_none());
        assert!(Sum::parse(Algo::Sha256, "abcd").is_none());
        assert!(Sum::parse(Algo::Ck, "1234567890").is_some());
        assert!(Sum::parse(Algo::Ck, "12a").is_none());
        let mut h = Hashers::new([Algo::Md5, Algo::B2]);
        h.update(b"abc");
        let computed = h.sums();
        let b2 = computed[1].clone();
        let weak = Sums(vec![computed[0].clone()]);
        assert!(!weak.pins_content());
        assert!(weak.matched_by(&computed));
        let both = Sums(vec![computed[0].clone(), b2.clone()]);
        assert!(both.pins_content() && both.matched_by(&computed));
        let mut wrong = b2.clone();
        wrong.digest[0] ^= 1;
        assert!(!Sums(vec![computed[0].clone(), wrong]).matched_by(&computed));
        // A sum whose algorithm was not computed never matches.
        let sha = Sum::parse(Algo::Sha256, &"00".repeat(32)).expect("hex");
        assert!(!Sums(vec![sha]).matched_by(&computed));
        // Only the CRC: nothing pacxfer checks, so nothing matched.
        let ck = Sum::parse(Algo::Ck, "1").expect("ck");
        assert!(!Sums(vec![ck]).matched_by(&computed));
        assert_eq!(b2.rel_path(), format!("sources/b2/{}", b2.hex()));
    }
}
