//! The batch maker against a naive gather: any rows, any order, any batch size, uint8 or
//! float32 with mean/std, with or without augmentation, served one batch ahead on the helper
//! thread, must equal gathering the rows one by one, cropping, flipping and erasing each pixel
//! from its draws, and converting each element as numpy does. The images are read in place, or
//! through a negative row stride (a reversed view).
#![no_main]

use std::sync::Arc;

use fmnist::augment::{Augment, Draw, Fused};
use fmnist::batches::{Augmenting, Normalize, Prefetch, Rows, Spec};
use fmnist::element::ElementType;
use libfuzzer_sys::fuzz_target;

/// Image `img` (h x w) augmented by `d`, one pixel at a time: output (r, x) reads the padded
/// image at (r + top, x' + left), x' = w - 1 - x when flipped, zero outside the image; then the
/// erased rectangle is `fill`.
fn naive<T: Copy>(img: &[u8], (h, w, pad): (usize, usize, usize), d: &Draw, conv: impl Fn(u8) -> T, fill: T) -> Vec<T> {
    let mut out = Vec::with_capacity(h * w);
    for r in 0..h {
        for x in 0..w {
            let sx = if d.flip { w - 1 - x } else { x };
            let (pr, pc) = ((r + d.top) as isize - pad as isize, (sx + d.left) as isize - pad as isize);
            let inside = (0..h as isize).contains(&pr) && (0..w as isize).contains(&pc);
            out.push(conv(if inside { img[pr as usize * w + pc as usize] } else { 0 }));
        }
    }
    let [t, l, eh, ew] = d.erase;
    for r in t..t + eh {
        out[r * w + l..r * w + l + ew].iter_mut().for_each(|o| *o = fill);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [count, row_len, batch, flags, aug, rest @ ..] = data else { return };
    let (count, mut row_len, batch) = (*count as usize % 64, *row_len as usize % 40, 1 + *batch as usize % 17);
    // Augmenting: images of h x w (row_len becomes h * w), pad 0-7, flip and erase with
    // probability 0, 1/3, 2/3 or 1.
    let augment = (aug & 1 == 1).then(|| {
        let (h, w) = (1 + row_len % 5, 1 + row_len / 5 % 7);
        let params = Augment {
            pad: (*aug as usize >> 1) & 7,
            hflip: (aug >> 4 & 3) as f64 / 3.0,
            erase: (aug >> 6) as f64 / 3.0,
            scale: (0.05, 0.6),
            ratio: (0.3, 3.3),
            value: vec![7.0],
        };
        (h, w, params)
    });
    if let Some((h, w, _)) = &augment {
        row_len = h * w;
    }
    let images: Vec<u8> = (0..count * row_len).map(|i| rest.get(i).copied().unwrap_or(i as u8)).collect();
    let labels: Vec<u32> = (0..count as u32).collect();
    let order: Vec<usize> = match count {
        0 => Vec::new(),
        _ => rest.iter().skip(count * row_len).map(|&b| b as usize % count).take(200).collect(),
    };
    let to_f32 = flags & 1 == 1;
    let (mean, std) = (0.25f32 + (flags >> 4) as f32 / 16.0, 0.5f32 + (flags >> 1 & 7) as f32 / 8.0);
    let norm = to_f32.then(|| Normalize::new(Some(vec![mean; row_len]), Some(vec![std; row_len])).expect("positive"));
    // Rows read through a negative stride: the same images stored last row first, row i of the
    // Rows still being images[i].
    let reversed = flags & 0x80 != 0 && count > 0;
    let stored: Vec<u8> = if reversed { images.chunks(row_len.max(1)).rev().flatten().copied().collect() } else { Vec::new() };
    // SAFETY: `images`, `stored` and `labels` outlive the Spec and the Prefetch built on it
    // (dropped below); row i of the reversed Rows is stored row count - 1 - i.
    let (x_rows, y_rows) = unsafe {
        (
            if reversed {
                let last = stored.as_ptr().add((count - 1) * row_len);
                Rows::new(last, count, row_len, -(row_len as isize), ElementType::U8)
            } else {
                Rows::contiguous(images.as_ptr(), count, row_len, ElementType::U8)
            },
            Rows::contiguous(labels.as_ptr() as *const u8, count, 1, ElementType::U32),
        )
    };
    let fused = augment.as_ref().map(|(h, w, p)| Fused::new(p.clone(), *flags as u64, 3, &[*h, *w], (!to_f32).then_some(ElementType::U8)).expect("valid"));
    let draws: Vec<Draw> = match &fused {
        Some(f) => (0..count).map(|i| f.draw(i)).collect(),
        None => vec![Draw::default(); count],
    };
    let geometry = augment.as_ref().map(|(h, w, p)| (*h, *w, p.pad)).unwrap_or((1, row_len, 0));
    let spec = Spec {
        images: x_rows,
        labels: y_rows,
        order: order.clone(),
        batch_size: batch,
        drop_last: flags & 2 == 2,
        augment: fused.map(|f| Augmenting::new(f, norm.as_ref()).expect("small images")),
        to_f32: norm,
    };
    if spec.validate().is_err() {
        return;
    }
    let expected_batches = spec.len();
    let mut served = 0;
    for (k, got) in Prefetch::start(Arc::new(spec)).enumerate() {
        let (x, y, n) = got.expect("no batch fails");
        let idx = &order[k * batch..k * batch + n];
        assert_eq!(y.as_slice::<u32>(), idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), "labels keep their type");
        match x.element_type() {
            ElementType::U8 if !to_f32 => {
                let x = x.as_slice::<u8>();
                let want: Vec<u8> = idx
                    .iter()
                    .flat_map(|&i| naive(&images[i * row_len..(i + 1) * row_len], geometry, &draws[i], |p| p, 7))
                    .collect();
                assert_eq!(x, want);
            }
            ElementType::F32 if to_f32 => {
                let x = x.as_slice::<f32>();
                let want = idx.iter().flat_map(|&i| {
                    let conv = |p: u8| (p as f32 / 255.0 - mean) / std;
                    naive(&images[i * row_len..(i + 1) * row_len], geometry, &draws[i], conv, 7.0)
                });
                for (a, b) in x.iter().zip(want) {
                    // Within 1 ulp: the division by std is a multiplication by 1/std.
                    assert!((a - b).abs() <= b.abs() * f32::EPSILON * 2.0 + f32::MIN_POSITIVE, "{a} vs {b}");
                }
            }
            _ => panic!("wrong output type"),
        }
        served += 1;
    }
    assert_eq!(served, expected_batches);
});
