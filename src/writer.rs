//! Writing IDX: header + big-endian payload in C order, optionally as one gzip member or one
//! xz stream.

use crate::element::{self, ElementType};
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

/// Encodes `payload` (the native-order bytes of `product(dims)` elements of `ty`, in C order) as
/// an IDX file, stored as `compress` says.
pub fn encode(ty: ElementType, dims: Vec<usize>, payload: &[u8], compress: Compress) -> Result<Vec<u8>, Error> {
    let header = Header::new(ty, dims)?;
    if payload.len() != header.payload_len {
        return Err(Error::Usage(format!(
            "{} bytes of payload for {header} ({} bytes)",
            payload.len(),
            header.payload_len
        )));
    }
    let hlen = header.header_len();
    let mut content = crate::with_room(hlen + payload.len(), || format!("the IDX file of {header}"))?;
    content.extend_from_slice(&header.encode());
    content.extend_from_slice(payload);
    element::swap_in_place(&mut content[hlen..], ty.size()); // native to big-endian
    Ok(match compress {
        Compress::Gzip(level) => gzip::compress(&content, level)?,
        Compress::Xz(preset) => xz::compress(&content, preset)?,
        Compress::None => content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{read_to_vec, Mode, Request, Source};

    fn bytes_of(xs: &[f64]) -> Vec<u8> {
        xs.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    #[test]
    fn round_trips_through_the_reader() {
        let xs = [1.5f64, -0.0, f64::INFINITY, f64::MIN_POSITIVE, 7.0, -3.25];
        for compress in [Compress::None, Compress::Gzip(0), Compress::Gzip(6), Compress::Xz(0), Compress::Xz(6)] {
            let file = encode(ElementType::F64, vec![2, 3], &bytes_of(&xs), compress).unwrap();
            let (outcome, payload) = read_to_vec(&Request::new(Source::Bytes(&file), Mode::Array)).unwrap();
            let header = outcome.header.unwrap();
            assert_eq!((header.dims, header.dtype), (vec![2, 3], ElementType::F64));
            assert_eq!(payload, bytes_of(&xs), "{compress:?}");
        }
    }

    #[test]
    fn big_endian_on_disk() {
        let file = encode(ElementType::I16, vec![2], &[1, 0, 0, 1], Compress::None).unwrap();
        assert_eq!(file, [0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 0]);
    }

    #[test]
    fn payload_must_match_shape_and_type() {
        assert!(encode(ElementType::U8, vec![3], &[1, 2], Compress::None).is_err());
        assert!(encode(ElementType::I64, vec![1], &[0; 8], Compress::None).is_err());
    }
}
