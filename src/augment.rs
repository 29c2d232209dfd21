//! Augmentation fused into the batch maker: per example, in this order, torchvision's
//! `RandomCrop(size, padding=pad)` (zero padding), `RandomHorizontalFlip(hflip)`, the float32
//! conversion and normalisation, and `RandomErasing(erase, scale, ratio, value)`, all in one pass
//! over the example that writes straight into the batch.
//!
//! Every draw comes from a counter-based generator (Philox4x32-10) keyed by the seed, with the
//! epoch and the example's row index in the counter: an example's augmentation depends on
//! (seed, epoch, index) alone, never on the batch size, the rank, the world size or which thread
//! made it. Each draw has a fixed place in the example's stream of Philox blocks (`block`
//! below), so turning one transform on or off leaves the others' draws as they were.

use std::mem::MaybeUninit;

use crate::element::{Element, ElementType};
use crate::rows::Rows;
use crate::Error;

/// Philox4x32 with 10 rounds (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy
/// as 1, 2, 3", SC 2011): the block of four words at counter `ctr` under `key`.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let (mut c, mut k) = (ctr, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = M0 * c[0] as u64;
        let p1 = M1 * c[2] as u64;
        c = [((p1 >> 32) as u32) ^ c[1] ^ k[0], p1 as u32, ((p0 >> 32) as u32) ^ c[3] ^ k[1], p0 as u32];
    }
    c
}

/// An example's stream of Philox blocks: block b is `philox4x32_10([b, index lo, index hi,
/// epoch], seed)`. Block 0 holds the crop's top and left, the flip and the erasing decision;
/// block k + 1 holds attempt k of RandomErasing's ten (scale, log-ratio, top, left): an example
/// that is not erased costs one block, and each draw has its fixed place.
fn block(seed: u64, epoch: u32, index: u64, b: u32) -> [u32; 4] {
    philox4x32_10([b, index as u32, (index >> 32) as u32, epoch], [seed as u32, (seed >> 32) as u32])
}

/// Uniform in [0, 1) from a word: 32 bits (torch's float32 draws have 24).
fn uniform(word: u32) -> f64 {
    word as f64 * (1.0 / 4_294_967_296.0)
}

/// An integer in [0, k) from a word: the high word of word * k (Lemire's multiply-shift, without
/// the rejection: off uniform by at most k / 2^32).
fn below(word: u32, k: usize) -> usize {
    ((word as u64 * k as u64) >> 32) as usize
}

/// One example's draws: where its crop sits in the padded image, whether it is flipped, and the
/// rectangle erased (height or width 0: nothing erased).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Draw {
    pub top: usize,
    pub left: usize,
    pub flip: bool,
    /// (top, left, height, width) in the augmented image.
    pub erase: [usize; 4],
}

/// An image's spatial shape: height, width, channels (1 for (N, H, W) images).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Geometry {
    /// (H, W) or (H, W, C), else the reason.
    pub fn of(shape: &[usize]) -> Result<Geometry, Error> {
        match *shape {
            [h, w] => Ok(Geometry { h, w, c: 1 }),
            [h, w, c] => Ok(Geometry { h, w, c }),
            _ => Err(Error::Usage(format!(
                "augment needs images of shape (N, H, W) or (N, H, W, C); one image here has shape {shape:?}"
            ))),
        }
    }

    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The largest padding accepted: far past any use (a crop from a padded image that is mostly
/// padding), and small enough that every offset fits the generator's 32-bit draws.
pub const MAX_PAD: usize = 1 << 16;

/// The parameters, as `fmnist.Augment` holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct Augment {
    pub pad: usize,
    pub hflip: f64,
    pub erase: f64,
    pub scale: (f64, f64),
    pub ratio: (f64, f64),
    /// The erasing value: one for every channel, or one per channel.
    pub value: Vec<f64>,
}

impl Augment {
    /// Every parameter in its range, else the one that is not, named.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Usage(format!("Augment.{m}")));
        if self.pad > MAX_PAD {
            return bad(format!("pad must be an int from 0 to {MAX_PAD}, not {}", self.pad));
        }
        for (name, p) in [("hflip", self.hflip), ("erase", self.erase)] {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{name} is a probability, in [0, 1], not {p}"));
            }
        }
        let (s0, s1) = self.scale;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return bad(format!("scale must be (min, max) with 0 < min <= max <= 1, not ({s0}, {s1})"));
        }
        let (r0, r1) = self.ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return bad(format!("ratio must be (min, max) with 0 < min <= max, finite, not ({r0}, {r1})"));
        }
        if self.value.is_empty() || self.value.iter().any(|v| !v.is_finite()) {
            return bad(format!("value must be one finite number, or one per channel, not {:?}", self.value));
        }
        Ok(())
    }

    /// The value for each of `c` channels, else the reason.
    pub fn values_for(&self, c: usize) -> Result<Vec<f64>, Error> {
        match self.value.len() {
            1 => Ok(vec![self.value[0]; c]),
            n if n == c => Ok(self.value.clone()),
            n => Err(Error::Usage(format!("value has {n} numbers but the images have {c} channels"))),
        }
    }

    /// The draws for row `index` in `epoch` under `seed`, for images `h` by `w`: torchvision's
    /// rules (`RandomCrop.get_params`, `RandomHorizontalFlip`, `RandomErasing.get_params`).
    pub fn draw(&self, seed: u64, epoch: u32, index: u64, h: usize, w: usize) -> Draw {
        let mut d = Draw::default();
        if self.pad == 0 && self.hflip == 0.0 && self.erase == 0.0 {
            return d;
        }
        let [top, left, flip, erase] = block(seed, epoch, index, 0);
        if self.pad > 0 {
            d.top = below(top, 2 * self.pad + 1);
            d.left = below(left, 2 * self.pad + 1);
        }
        d.flip = uniform(flip) < self.hflip;
        if uniform(erase) < self.erase {
            let area = (h * w) as f64;
            let (l0, l1) = (self.ratio.0.ln(), self.ratio.1.ln());
            for k in 0..10 {
                let [scale, ratio, top, left] = block(seed, epoch, index, k + 1);
                let target = area * (self.scale.0 + (self.scale.1 - self.scale.0) * uniform(scale));
                let aspect = (l0 + (l1 - l0) * uniform(ratio)).exp();
                // Python's round(), which torchvision uses: halves to even.
                let eh = (target * aspect).sqrt().round_ties_even();
                let ew = (target / aspect).sqrt().round_ties_even();
                if !(eh < h as f64 && ew < w as f64) {
                    continue;
                }
                let (eh, ew) = (eh as usize, ew as usize);
                d.erase = [below(top, h - eh + 1), below(left, w - ew + 1), eh, ew];
                break;
            }
        }
        d
    }
}

/// How the pixels of one image reach the batch: the three kinds of run `place` writes, each a
/// run of output elements starting at element `k` of the image.
pub trait Runs<T> {
    type Out: Copy;
    /// Padding (a zero pixel of the image, as it comes out).
    fn pad(&self, out: &mut [MaybeUninit<Self::Out>], k: usize);
    /// `src` as it is.
    fn copy(&self, out: &mut [MaybeUninit<Self::Out>], src: &[T], k: usize);
    /// `src`'s pixels (`c` elements each) in reverse order.
    fn reversed(&self, out: &mut [MaybeUninit<Self::Out>], src: &[T], k: usize, c: usize);
}

/// Float32, normalised per element as it is placed: `(x.to_f32() - mean[k]) * scale[k]` (or `/
/// scale[k]` when `!reciprocal`) for output element k. Only for statistics that differ across
/// an image; with one mean and one scale, converting the image first and moving floats is faster
/// (`place_prepared`).
pub struct Normalised<'a> {
    pub mean: &'a [f32],
    pub scale: &'a [f32],
    /// The image's zero pixel, normalised, per element: what padding becomes.
    pub zero: &'a [f32],
    pub reciprocal: bool,
}

impl<T: Element> Runs<T> for Normalised<'_> {
    type Out = f32;
    #[inline(always)]
    fn pad(&self, out: &mut [MaybeUninit<f32>], k: usize) {
        out.iter_mut().zip(&self.zero[k..]).for_each(|(o, &z)| {
            o.write(z);
        });
    }
    #[inline(always)]
    fn copy(&self, out: &mut [MaybeUninit<f32>], src: &[T], k: usize) {
        self.run(out, src.iter().copied(), k)
    }
    #[inline(always)]
    fn reversed(&self, out: &mut [MaybeUninit<f32>], src: &[T], k: usize, c: usize) {
        if c == 1 {
            self.run(out, src.iter().rev().copied(), k)
        } else {
            self.run(out, src.chunks_exact(c).rev().flatten().copied(), k)
        }
    }
}

impl Normalised<'_> {
    #[inline(always)]
    fn run<T: Element>(&self, out: &mut [MaybeUninit<f32>], src: impl Iterator<Item = T>, k: usize) {
        let n = out.len();
        let stats = self.mean[k..k + n].iter().zip(&self.scale[k..k + n]);
        if self.reciprocal {
            out.iter_mut().zip(src).zip(stats).for_each(|((o, v), (&m, &r))| {
                o.write((v.to_f32() - m) * r);
            })
        } else {
            out.iter_mut().zip(src).zip(stats).for_each(|((o, v), (&m, &s))| {
                o.write((v.to_f32() - m) / s);
            })
        }
    }
}

/// Writes one augmented image: output pixel (r, x) is source pixel (r + top - pad, x + left -
/// pad), or (r + top - pad, w - 1 - x + left - pad) when flipped, or padding outside the image;
/// then the erased rectangle is `fill` (one value per channel).
#[inline(always)]
pub fn place<T, R: Runs<T>>(
    src: &[T],
    g: Geometry,
    pad: usize,
    d: &Draw,
    fill: &[R::Out],
    out: &mut [MaybeUninit<R::Out>],
    runs: &R,
) {
    let (h, w, c) = (g.h, g.w, g.c);
    let row = w * c;
    let dy = d.top as isize - pad as isize;
    let dx = d.left as isize - pad as isize;
    let clamp = |v: isize| v.clamp(0, w as isize) as usize;
    // The output columns [x0, x1) read the image; the rest read the padding.
    let (x0, x1) = if d.flip { (clamp(dx), clamp(w as isize + dx)) } else { (clamp(-dx), clamp(w as isize - dx)) };
    let x1 = x1.max(x0);
    for (r, o) in out.chunks_exact_mut(row).enumerate() {
        let base = r * row;
        let sr = r as isize + dy;
        if sr < 0 || sr >= h as isize || x1 == x0 {
            runs.pad(o, base);
            continue;
        }
        let s = &src[sr as usize * row..][..row];
        let (left, rest) = o.split_at_mut(x0 * c);
        let (mid, right) = rest.split_at_mut((x1 - x0) * c);
        runs.pad(left, base);
        runs.pad(right, base + x1 * c);
        if !d.flip {
            let from = (x0 as isize + dx) as usize * c;
            runs.copy(mid, &s[from..from + mid.len()], base + x0 * c);
        } else {
            // Output column x reads w - 1 - x + dx: columns [x0, x1) read [w-x1+dx, w-x0+dx) reversed.
            let from = (w as isize - x1 as isize + dx) as usize * c;
            runs.reversed(mid, &s[from..from + mid.len()], base + x0 * c, c);
        }
    }
    erase(g, d, fill, out);
}

/// Reverses the pixels of each row of `img` in place: a horizontal flip.
#[inline(always)]
fn flip_rows<T>(img: &mut [T], g: Geometry) {
    for row in img.chunks_exact_mut(g.w * g.c) {
        row.reverse();
        if g.c > 1 {
            row.chunks_exact_mut(g.c).for_each(|p| p.reverse()); // the channels back in order
        }
    }
}

/// Fills `out` with `v`.
#[inline(always)]
fn fill_with<T: Copy>(out: &mut [MaybeUninit<T>], v: T) {
    out.iter_mut().for_each(|o| {
        o.write(v);
    });
}

/// How `place_prepared` writes a run of the image into the batch: as it is, or converted. It
/// must not depend on where the run is in the image.
pub trait Span<T> {
    type Out: Copy;
    fn span(&self, src: &[T], out: &mut [MaybeUninit<Self::Out>]);
}

/// Runs copied as they are.
pub struct Copies;

impl<T: Copy> Span<T> for Copies {
    type Out = T;
    #[inline(always)]
    fn span(&self, src: &[T], out: &mut [MaybeUninit<T>]) {
        assert_eq!(src.len(), out.len());
        // SAFETY: the same length (just checked), different buffers; writing initialised values
        // into MaybeUninit is always sound.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), out.as_mut_ptr() as *mut T, src.len()) };
    }
}

/// Writes one augmented image, as `place` does, each run of `img` through `span`. The crop
/// moves every pixel by the same offset, so the rows that read the image are one shifted run;
/// the columns that read the padding are then set to `zero`; a flip reverses the rows in place
/// (cheaper than reading them backwards); last, the erased rectangle is set to `fill`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn place_prepared<T, S: Span<T>>(
    img: &[T],
    g: Geometry,
    pad: usize,
    d: &Draw,
    zero: S::Out,
    fill: &[S::Out],
    out: &mut [MaybeUninit<S::Out>],
    span: &S,
) {
    let (h, w, c) = (g.h as isize, g.w as isize, g.c);
    let row = g.w * c;
    let (dy, dx) = (d.top as isize - pad as isize, d.left as isize - pad as isize);
    let (r0, r1) = ((-dy).clamp(0, h) as usize, (h - dy).clamp(0, h) as usize);
    let (x0, x1) = ((-dx).clamp(0, w) as usize, (w - dx).clamp(0, w) as usize);
    if r1 <= r0 || x1 <= x0 {
        fill_with(out, zero);
    } else {
        fill_with(&mut out[..r0 * row], zero);
        fill_with(&mut out[r1 * row..], zero);
        let (start, end) = (r0 * row + x0 * c, (r1 - 1) * row + x1 * c);
        let from = (start as isize + dy * row as isize + dx * c as isize) as usize;
        span.span(&img[from..from + (end - start)], &mut out[start..end]);
        // The run wrapped other rows' pixels into the columns that read the padding: a column
        // at a time down the rows (a few columns, many rows: no per-row loop to set up).
        let rows = &mut out[r0 * row..r1 * row];
        for k in (0..x0 * c).chain(x1 * c..row) {
            rows.iter_mut().skip(k).step_by(row).for_each(|o| {
                o.write(zero);
            });
        }
    }
    if d.flip {
        flip_rows(out, g);
    }
    erase(g, d, fill, out);
}

/// Sets the draw's erased rectangle of `out` to `fill` (one value per channel).
#[inline(always)]
fn erase<T: Copy>(g: Geometry, d: &Draw, fill: &[T], out: &mut [MaybeUninit<T>]) {
    let [et, el, eh, ew] = d.erase;
    let (w, c) = (g.w, g.c);
    for r in et..et + eh {
        let run = &mut out[(r * w + el) * c..(r * w + el + ew) * c];
        if c == 1 {
            fill_with(run, fill[0]); // one loop that vectorises
            continue;
        }
        for p in run.chunks_exact_mut(c) {
            for (e, &v) in p.iter_mut().zip(fill) {
                e.write(v);
            }
        }
    }
}

/// Everything the batch maker needs to augment one epoch.
pub struct Fused {
    pub params: Augment,
    pub seed: u64,
    pub epoch: u32,
    pub geometry: Geometry,
}

impl Fused {
    /// `raw`: the element type of batches in the images' own dtype (erasing then writes a value of
    /// that type, which each value must be), None for float32 batches.
    pub fn new(
        params: Augment,
        seed: u64,
        epoch: u32,
        shape: &[usize],
        raw: Option<ElementType>,
    ) -> Result<Fused, Error> {
        params.validate()?;
        let geometry = Geometry::of(shape)?;
        let values = params.values_for(geometry.c)?;
        if let Some(ty) = raw {
            if let Some(v) = values.iter().find(|&&v| crate::with_element!(ty, T => T::from_f64(v).to_f64()) != v) {
                return Err(Error::Usage(format!(
                    "Augment.value {v:?} is not a {ty} value: batches in the images' own dtype erase with a value \
                     of that dtype (or use dtype='float32')"
                )));
            }
        }
        Ok(Fused { params, seed, epoch, geometry })
    }

    pub fn draw(&self, index: usize) -> Draw {
        self.params.draw(self.seed, self.epoch, index as u64, self.geometry.h, self.geometry.w)
    }

    /// The erasing value per channel, in type `O`.
    pub fn fill<O>(&self, conv: impl Fn(f64) -> O) -> Vec<O> {
        let values = self.params.values_for(self.geometry.c).expect("checked in new");
        values.into_iter().map(conv).collect()
    }

    /// For each row of `idx`: (its image, its draws, its part of `out`), with the images ahead
    /// prefetched (rows come in random order: the hardware cannot guess the next). An iterator,
    /// not a callback, so that the caller's loop body stays in the caller (and its target
    /// features).
    #[inline(always)]
    pub fn each<'a, T: Element, O>(
        &'a self,
        src: &'a Rows,
        idx: &'a [usize],
        out: &'a mut [MaybeUninit<O>],
    ) -> impl Iterator<Item = (&'a [T], Draw, &'a mut [MaybeUninit<O>])> + 'a {
        let len = self.geometry.len();
        if len > 0 {
            src.prefetch_first(idx);
        }
        out.chunks_mut(len.max(1)).take(if len == 0 { 0 } else { idx.len() }).zip(idx).enumerate().map(
            move |(r, (o, &i))| {
                src.ahead(idx, r);
                (src.row::<T>(i), self.draw(i), o)
            },
        )
    }

    /// Augments rows `idx` of `src` into `out`, in their own type.
    #[inline(always)]
    pub fn rows_raw<T: Element>(&self, src: &Rows, idx: &[usize], out: &mut [MaybeUninit<T>]) {
        let (g, pad) = (self.geometry, self.params.pad);
        let fill = &self.fill(T::from_f64);
        for (image, d, o) in self.each::<T, T>(src, idx, out) {
            place_prepared(image, g, pad, &d, T::default(), fill, o, &Copies);
        }
    }

    /// Augments rows `idx` of `src` into `out`, element by element through `runs`.
    #[inline(always)]
    pub fn rows<T: Element, R: Runs<T>>(
        &self,
        src: &Rows,
        idx: &[usize],
        fill: &[R::Out],
        runs: &R,
        out: &mut [MaybeUninit<R::Out>],
    ) {
        for (image, d, o) in self.each::<T, R::Out>(src, idx, out) {
            place(image, self.geometry, self.params.pad, &d, fill, o, runs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_random123s_known_answers() {
        // Random123's kat_vectors for philox4x32_10.
        assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
        assert_eq!(
            philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    fn params() -> Augment {
        Augment { pad: 4, hflip: 0.5, erase: 0.5, scale: (0.02, 0.33), ratio: (0.3, 3.3), value: vec![0.0] }
    }

    #[test]
    fn draws_depend_on_seed_epoch_and_index_only_and_stay_in_range() {
        let a = params();
        let d = a.draw(7, 3, 12345, 28, 28);
        assert_eq!(d, a.draw(7, 3, 12345, 28, 28));
        assert_ne!(
            (0..8).map(|i| a.draw(7, 3, i, 28, 28)).collect::<Vec<_>>(),
            (0..8).map(|i| a.draw(7, 4, i, 28, 28)).collect::<Vec<_>>()
        );
        for i in 0..2000 {
            let d = a.draw(1, 0, i, 28, 28);
            assert!(d.top <= 8 && d.left <= 8);
            let [t, l, h, w] = d.erase;
            assert!(h < 28 && w < 28 && t + h <= 28 && l + w <= 28, "{d:?}");
        }
        // Turning erasing off leaves the crop and flip draws as they were.
        let no_erase = Augment { erase: 0.0, ..a.clone() };
        let d2 = no_erase.draw(7, 3, 12345, 28, 28);
        assert_eq!((d2.top, d2.left, d2.flip, d2.erase), (d.top, d.left, d.flip, [0; 4]));
    }

    fn prepared(src: &[u8], g: Geometry, pad: usize, d: &Draw, fill: u8) -> Vec<u8> {
        let mut out = vec![MaybeUninit::new(99u8); g.len()];
        place_prepared(src, g, pad, d, 0, &vec![fill; g.c], &mut out, &Copies);
        out.iter().map(|e| unsafe { e.assume_init() }).collect()
    }

    #[test]
    fn place_crops_flips_and_erases() {
        // A 2x3 image, padded by 1: the crop at (0, 2) reads source rows -1, 0 and columns 1..4.
        let src: Vec<u8> = vec![1, 2, 3, 4, 5, 6];
        let g = Geometry { h: 2, w: 3, c: 1 };
        assert_eq!(prepared(&src, g, 1, &Draw { top: 0, left: 2, flip: false, erase: [0; 4] }, 0), [0, 0, 0, 2, 3, 0]);
        // Crop at (1, 0): rows 0, 1, columns -1..2 = [0 1 2 | 0 4 5]; flipped: [2 1 0 | 5 4 0].
        assert_eq!(
            prepared(&src, g, 1, &Draw { top: 1, left: 0, flip: true, erase: [1, 1, 1, 2] }, 9),
            [2, 1, 0, 5, 9, 9]
        );
        // Two channels: pixels move whole, channels keep their order.
        let g2 = Geometry { h: 1, w: 3, c: 2 };
        let rgb: Vec<u8> = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(prepared(&rgb, g2, 0, &Draw { flip: true, ..Draw::default() }, 0), [5, 6, 3, 4, 1, 2]);
    }

    #[test]
    fn placing_element_by_element_agrees_with_the_shifted_copy() {
        // Every draw of a 5x4 image with pad 3 (crops past the image too), flipped or not.
        let src: Vec<u8> = (1..=20).collect();
        let g = Geometry { h: 5, w: 4, c: 1 };
        let (mean, scale, zero) = (vec![0f32; 20], vec![1f32; 20], vec![0f32; 20]);
        let runs = Normalised { mean: &mean, scale: &scale, zero: &zero, reciprocal: true };
        for top in 0..7 {
            for left in 0..7 {
                for flip in [false, true] {
                    let d = Draw { top, left, flip, erase: [1, 0, 2, 3] };
                    let mut out = vec![MaybeUninit::new(f32::NAN); 20];
                    place(&src, g, 3, &d, &[0.5], &mut out, &runs);
                    let by_element: Vec<f32> = out.iter().map(|e| unsafe { e.assume_init() }).collect();
                    let img: Vec<f32> = src.iter().map(|v| v.to_f32()).collect();
                    let mut out = vec![MaybeUninit::new(f32::NAN); 20];
                    place_prepared(&img, g, 3, &d, 0.0, &[0.5], &mut out, &Copies);
                    let shifted: Vec<f32> = out.iter().map(|e| unsafe { e.assume_init() }).collect();
                    assert_eq!(by_element, shifted, "{d:?}");
                }
            }
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |a: Augment| a.validate().unwrap_err().to_string();
        assert!(err(Augment { hflip: 1.5, ..params() }).contains("hflip"));
        assert!(err(Augment { erase: f64::NAN, ..params() }).contains("erase"));
        assert!(err(Augment { scale: (0.5, 0.1), ..params() }).contains("scale"));
        assert!(err(Augment { ratio: (0.0, 1.0), ..params() }).contains("ratio"));
        assert!(err(Augment { pad: MAX_PAD + 1, ..params() }).contains("pad"));
        assert!(params().values_for(3).is_ok());
        assert!(Augment { value: vec![1.0, 2.0], ..params() }.values_for(3).is_err());
        assert!(Geometry::of(&[784]).is_err());
    }
}
