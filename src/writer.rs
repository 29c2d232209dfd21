//! Writing IDX: header + big-endian payload in C order, optionally as one gzip member.

use crate::element::Element;
use crate::gzip;
use crate::idx::Header;
use crate::Error;

/// Encodes `items` (in C order, `product(dims)` of them) as an IDX file; gzip-compressed at
/// `level` (libdeflate's 0-12) when given.
pub fn encode<'a, T: Element + 'a>(
    dims: Vec<usize>,
    items: impl IntoIterator<Item = &'a T>,
    level: Option<i32>,
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
    Ok(match level {
        Some(level) => gzip::compress(&content, level),
        None => content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{read, Data, Expect, Source};

    #[test]
    fn round_trips_through_the_reader() {
        let xs = [1.5f64, -0.0, f64::INFINITY, f64::MIN_POSITIVE, 7.0, -3.25];
        for level in [None, Some(0), Some(6)] {
            let bytes = encode(vec![2, 3], &xs, level).unwrap();
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
        let bytes = encode(vec![1, 2], &[1.0f64, 2.0], None).unwrap();
        let idx = read(Source::Bytes(&bytes), &Expect::default()).unwrap();
        let Data::F64(t) = idx.data else { panic!("wrong dtype") };
        assert_eq!(t.as_slice(), &[1.0, 2.0]);
        assert_eq!(t.as_slice().as_ptr() as usize % 8, 0);
    }

    #[test]
    fn count_must_match_shape() {
        assert!(encode(vec![3], &[1u8, 2], None).is_err());
    }
}
