//! MD5 and SHA-256: the digests datasets publish, as lowercase hex.

use md5::Md5;
use sha2::{Digest, Sha256};

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
    fn run<D: Digest>(data: &[u8]) -> Vec<u8> {
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
