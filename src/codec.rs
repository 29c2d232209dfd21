//! How a source is stored: raw IDX, gzip or xz, told by the magic bytes (never by a name).

use crate::{gzip, xz};

/// How a source is stored, told by its magic bytes (never by a file name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Raw,
    Gzip,
    Xz,
}

impl Codec {
    pub fn of(data: &[u8]) -> Codec {
        if gzip::is_gzip(data) {
            Codec::Gzip
        } else if xz::is_xz(data) {
            Codec::Xz
        } else {
            Codec::Raw
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Gzip => "gzip",
            Codec::Xz => "xz",
        }
    }

    pub fn is_compressed(self) -> bool {
        self != Codec::Raw
    }
}
