//! The reader, three ways, against a model: the same bytes read from memory, from a file and
//! through `read_many_to_vec` must give the same result (the same payload, or the same kind of
//! error), never a panic; and whenever both the engine and an independent model (flate2's gzip
//! decoder plus a plain IDX parse) accept the bytes, they must give the same content. Inputs
//! run up to 2 MiB (scripts/test's -max_len), past the 1 MiB first read of a file.
#![no_main]

use std::io::Read;

use fmnist::reader::{self, Mode, Outcome, Request, Source};
use fmnist::Error;
use libfuzzer_sys::fuzz_target;

type Got = Result<(Outcome, Vec<u8>), Error>;

fn summary(r: &Got) -> Result<(Vec<usize>, Vec<u8>), std::mem::Discriminant<Error>> {
    match r {
        Ok((outcome, payload)) => Ok((outcome.header.as_ref().expect("an array read").dims.clone(), payload.clone())),
        Err(e) => Err(std::mem::discriminant(e)),
    }
}

/// The content (decompressed IDX bytes) as an independent gzip decoder sees it.
fn model_content(data: &[u8]) -> Option<Vec<u8>> {
    if !data.starts_with(&[0x1f, 0x8b]) {
        return Some(data.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).take(64 << 20).read_to_end(&mut out).ok()?;
    Some(out)
}

/// The native-order payload of IDX `content`, as the format's definition gives it.
fn model_payload(content: &[u8]) -> Option<(Vec<usize>, Vec<u8>)> {
    let (&[0, 0, code, ndim], rest) = content.split_first_chunk::<4>()? else { return None };
    let size = match code {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        _ => return None,
    };
    let ndim = ndim as usize;
    if rest.len() < 4 * ndim || ndim > 64 {
        return None;
    }
    let dims: Vec<usize> =
        rest[..4 * ndim].chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let payload = &rest[4 * ndim..];
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if payload.len() != count.checked_mul(size)? {
        return None;
    }
    let native = payload.chunks(size).flat_map(|c| c.iter().rev().copied().collect::<Vec<_>>());
    Some((dims, if cfg!(target_endian = "little") { native.collect() } else { payload.to_vec() }))
}

fuzz_target!(|data: &[u8]| {
    let request = |source| Request { max_bytes: Some(64 << 20), ..Request::new(source, Mode::Array) };
    let from_bytes = reader::read_to_vec(&request(Source::Bytes(data)));

    let dir = std::env::temp_dir().join(format!("fmnist-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input");
    std::fs::write(&path, data).unwrap();
    let from_file = reader::read_to_vec(&request(Source::Path(&path)));
    let mut many = reader::read_many_to_vec(&[request(Source::Path(&path)), request(Source::Bytes(data))]);
    let many_bytes = many.pop().unwrap();
    let many_file = many.pop().unwrap();

    let want = summary(&from_bytes);
    assert_eq!(summary(&from_file), want, "file vs bytes");
    assert_eq!(summary(&many_file), want, "read_many(file) vs bytes");
    assert_eq!(summary(&many_bytes), want, "read_many(bytes) vs bytes");

    if let (Ok(ours), Some(theirs)) = (&want, model_content(data).as_deref().and_then(model_payload)) {
        assert_eq!(ours, &theirs, "engine vs model");
    }
});
