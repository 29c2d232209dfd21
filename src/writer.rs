//! Writing IDX: header + big-endian payload in C order, optionally as one gzip member or one
//! xz stream.

use crate::element::Element;
use crate::gzip;
use crate::idx::Header;
use crate::xz;
use crate::Error;

/// How to store the encoded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    /// One gzip member at libdeflate's level 0-12.
    Gzip(i32),
    /// One xz stream (CRC64 check) at preset 0-9.
    Xz(u32),
}

/// Encodes `items` (in C order, `product(dims)` of them) as an IDX file, stored as `compress` says.
pub fn encode<'a, T: Element + 'a>(
    dims: Vec<usize>,
    items: impl IntoIterator<Item = &'a T>,
    compress: Compress,
) -> Result<Vec<u8>, Error> {
    let header = Header::new(T::TYPE, dims)?;
    let mut content = header.encode();
    let hlen = content.len();
    content.resize(header.total_len(), 0);
    let size = std::mem::size_of::<T>();
    let mut written = 0;
    for (out, &x) in content[hlen..].chunks_exact_mut(size).zip(items) {
        x.write_be(out);
        written += 1;
    }
    if written != header.count {
        return Err(Error::Usage(format!("{} elements for shape {:?}, found {written}", header.count, header.dims)));
    }
    Ok(match compress {
        Compress::Gzip(level) => gzip::compress(&content, level),
        Compress::Xz(preset) => xz::compress(&content, preset)?,
        Compress::None => content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{read, Data, Expect, Source};

    #[test]
    fn round_trips_through_the_reader() {
        let xs = [1.5f64, -0.0, f64::INFINITY, f64::MIN_POSITIVE, 7.0, -3.25];
        for compress in [Compress::None, Compress::Gzip(0), Compress::Gzip(6), Compress::Xz(0), Compress::Xz(6)] {
            let bytes = encode(vec![2, 3], &xs, compress).unwrap();
            let idx = read(Source::Bytes(&bytes), &Expect::default()).unwrap();
            assert_eq!(idx.header.dims, vec![2, 3]);
            let Data::F64(t) = idx.data else { panic!("wrong dtype") };
            let got = t.as_slice();
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn even_ndim_float64_payload_is_aligned() {
        // A header of 12 bytes: the payload must still start on an 8-byte boundary.
        let bytes = encode(vec![1, 2], &[1.0f64, 2.0], Compress::None).unwrap();
        let idx = read(Source::Bytes(&bytes), &Expect::default()).unwrap();
        let Data::F64(t) = idx.data else { panic!("wrong dtype") };
        assert_eq!(t.as_slice(), &[1.0, 2.0]);
        assert_eq!(t.as_slice().as_ptr() as usize % 8, 0);
    }

    #[test]
    fn count_must_match_shape() {
        assert!(encode(vec![3], &[1u8, 2], Compress::None).is_err());
    }
}
