//! MD5 and SHA-256: the digests datasets publish, as lowercase hex; the kinds of digest a
//! source can be asked for (an algorithm over the stored bytes or the content), and the verdict
//! on an expected one.

use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::codec::Codec;
use crate::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha256,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "MD5",
            Algo::Sha256 => "SHA-256",
        }
    }

    /// The lowercase key Python uses: "md5", "sha256" (`hashlib`'s names).
    pub fn key(self) -> &'static str {
        match self {
            Algo::Md5 => "md5",
            Algo::Sha256 => "sha256",
        }
    }

    pub fn hex_len(self) -> usize {
        match self {
            Algo::Md5 => 32,
            Algo::Sha256 => 64,
        }
    }
}

/// Streaming hashing in 1 MiB steps keeps the working set in cache; the result is the same as
/// hashing the slice in one call.
pub fn hex(algo: Algo, data: &[u8]) -> String {
    const STEP: usize = 1 << 20;
    fn run<D: sha2::Digest>(data: &[u8]) -> Vec<u8> {
        let mut h = D::new();
        for chunk in data.chunks(STEP) {
            h.update(chunk);
        }
        h.finalize().to_vec()
    }
    let bytes = match algo {
        Algo::Md5 => run::<Md5>(data),
        Algo::Sha256 => run::<Sha256>(data),
    };
    to_hex(&bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 and/or SHA-256 over bytes fed as they stream past (a file read in steps, an inflated
/// stream), for when the data is never held whole.
pub struct Hasher {
    md5: Option<Md5>,
    sha256: Option<Sha256>,
}

impl Hasher {
    /// Computes the algorithms in `algos` (an empty set computes nothing).
    pub fn new(algos: &[Algo]) -> Hasher {
        Hasher {
            md5: algos.contains(&Algo::Md5).then(Md5::new),
            sha256: algos.contains(&Algo::Sha256).then(Sha256::new),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha256.is_none()
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
    }

    /// The hex digests, for each algorithm asked for.
    pub fn finish(self) -> Vec<(Algo, String)> {
        let mut out = Vec::new();
        if let Some(h) = self.md5 {
            out.push((Algo::Md5, to_hex(&h.finalize())));
        }
        if let Some(h) = self.sha256 {
            out.push((Algo::Sha256, to_hex(&h.finalize())));
        }
        out
    }
}

/// Normalises an expected digest given by a user: hex of the right length, any case.
pub fn parse_expected(algo: Algo, given: &str) -> Result<String, Error> {
    let s = given.trim().to_ascii_lowercase();
    if s.len() != algo.hex_len() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!(
            "expected {} digest must be {} hex digits, got {given:?}",
            algo.name(),
            algo.hex_len()
        )));
    }
    Ok(s)
}

/// What was hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covers {
    /// The bytes as stored (the .gz file itself when compressed).
    Stored,
    /// The decompressed IDX bytes.
    Content,
}

impl Covers {
    pub fn name(self) -> &'static str {
        match self {
            Covers::Stored => "stored",
            Covers::Content => "content",
        }
    }

    pub(crate) fn describe(self, codec: Codec) -> &'static str {
        match (self, codec) {
            (Covers::Stored, Codec::Gzip) => "the stored (gzip-compressed) bytes",
            (Covers::Stored, Codec::Xz) => "the stored (xz-compressed) bytes",
            (Covers::Content, Codec::Gzip | Codec::Xz) => "the decompressed IDX content",
            (_, Codec::Raw) => "the file's bytes (uncompressed: stored = content)",
        }
    }

    /// What a digest of this kind covers in a source of `codec`: in an uncompressed source the
    /// stored bytes are the content.
    pub fn of(self, codec: Codec) -> Covers {
        if codec.is_compressed() {
            self
        } else {
            Covers::Stored
        }
    }
}

/// A kind of digest: an algorithm over what it covers, named as the Python API names it
/// (`md5`, `sha256`, `content_md5`, `content_sha256`). The one encoding of digest kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestKind {
    pub algo: Algo,
    pub covers: Covers,
}

impl DigestKind {
    pub const MD5: DigestKind = DigestKind { algo: Algo::Md5, covers: Covers::Stored };
    pub const SHA256: DigestKind = DigestKind { algo: Algo::Sha256, covers: Covers::Stored };
    pub const CONTENT_MD5: DigestKind = DigestKind { algo: Algo::Md5, covers: Covers::Content };
    pub const CONTENT_SHA256: DigestKind = DigestKind { algo: Algo::Sha256, covers: Covers::Content };
}

impl std::fmt::Display for DigestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = if self.covers == Covers::Content { "content_" } else { "" };
        write!(f, "{prefix}{}", self.algo.key())
    }
}

/// A digest a source is expected to have, and (for messages) whose value it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub kind: DigestKind,
    /// Lowercase hex.
    pub hex: String,
    /// Where the value comes from ("the registry", "the verified copy at ..."), if not the caller.
    pub from: Option<String>,
}

impl Expected {
    /// An expected digest as a user gave it, its form checked (hex of the algorithm's length).
    pub fn new(kind: DigestKind, given: &str, from: Option<String>) -> Result<Expected, Error> {
        Ok(Expected { kind, hex: parse_expected(kind.algo, given)?, from })
    }
}

/// A digest as computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub kind: DigestKind,
    pub hex: String,
}

/// The judgement on one expected digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub expected: Expected,
    pub actual: String,
    pub codec: Codec,
}

impl Verdict {
    pub fn matched(&self) -> bool {
        self.expected.hex == self.actual
    }

    /// "MD5 of the stored (gzip-compressed) bytes matches the registry's value", or the mismatch.
    pub fn message(&self) -> String {
        let what = self.expected.kind.covers.of(self.codec).describe(self.codec);
        let whose = self.expected.from.as_deref().unwrap_or("the expected value");
        if self.matched() {
            format!("{} of {what} matches {whose}", self.expected.kind.algo.name())
        } else {
            self.mismatch().to_string()
        }
    }

    pub fn mismatch(&self) -> Mismatch {
        Mismatch {
            kind: self.expected.kind,
            codec: self.codec,
            expected: self.expected.hex.clone(),
            actual: self.actual.clone(),
            from: self.expected.from.clone(),
        }
    }
}

/// A digest that did not match: `Error::Checksum`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub kind: DigestKind,
    pub codec: Codec,
    pub expected: String,
    pub actual: String,
    pub from: Option<String>,
}

impl Mismatch {
    /// What the digest covered: stored (for an uncompressed source, always) or content.
    pub fn covers(&self) -> Covers {
        self.kind.covers.of(self.codec)
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whose = self.from.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
        write!(
            f,
            "{} mismatch over {}: expected {}{whose}, found {}",
            self.kind.algo.name(),
            self.covers().describe(self.codec),
            self.expected,
            self.actual
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(hex(Algo::Md5, b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(Algo::Md5, b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(Algo::Sha256, b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let big = vec![0x61u8; 3 << 20];
        assert_eq!(hex(Algo::Md5, &big), {
            let mut h = Md5::new();
            h.update(&big);
            h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
    }

    #[test]
    fn expected_digests_are_validated() {
        assert_eq!(parse_expected(Algo::Md5, " D41D8CD98F00B204E9800998ECF8427E").unwrap(), hex(Algo::Md5, b""));
        assert!(parse_expected(Algo::Md5, "abc").is_err());
        let mut streamed = Hasher::new(&[Algo::Md5, Algo::Sha256]);
        streamed.update(b"a");
        streamed.update(b"bc");
        assert_eq!(
            streamed.finish(),
            vec![(Algo::Md5, hex(Algo::Md5, b"abc")), (Algo::Sha256, hex(Algo::Sha256, b"abc"))]
        );
        assert!(parse_expected(Algo::Sha256, &"g".repeat(64)).is_err());
    }
}
