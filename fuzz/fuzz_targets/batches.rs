//! The batch maker against a naive gather: any rows, any order, any batch size, uint8 or
//! float32 with mean/std, served one batch ahead on the helper thread, must equal gathering
//! the rows one by one and converting each element as numpy does.
#![no_main]

use std::sync::Arc;

use fmnist::batches::{Normalize, Prefetch, Rows, Spec};
use fmnist::element::ElementType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [count, row_len, batch, flags, rest @ ..] = data else { return };
    let (count, row_len, batch) = (*count as usize % 64, *row_len as usize % 40, 1 + *batch as usize % 17);
    let images: Vec<u8> = (0..count * row_len).map(|i| rest.get(i).copied().unwrap_or(i as u8)).collect();
    let labels: Vec<u32> = (0..count as u32).collect();
    let order: Vec<usize> = match count {
        0 => Vec::new(),
        _ => rest.iter().skip(count * row_len).map(|&b| b as usize % count).take(200).collect(),
    };
    let to_f32 = flags & 1 == 1;
    let (mean, std) = (0.25f32 + (flags >> 4) as f32 / 16.0, 0.5f32 + (flags >> 1 & 7) as f32 / 8.0);
    let norm = to_f32.then(|| Normalize::new(Some(vec![mean; row_len]), Some(vec![std; row_len])));
    // SAFETY: `images` and `labels` outlive the Spec and the Prefetch built on it (dropped below).
    let (x_rows, y_rows) = unsafe {
        (
            Rows::new(images.as_ptr(), count, row_len, ElementType::U8),
            Rows::new(labels.as_ptr() as *const u8, count, 1, ElementType::U32),
        )
    };
    let spec = Spec {
        images: x_rows,
        labels: y_rows,
        order: order.clone(),
        batch_size: batch,
        drop_last: flags & 2 == 2,
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
                let want: Vec<u8> = idx.iter().flat_map(|&i| images[i * row_len..(i + 1) * row_len].to_vec()).collect();
                assert_eq!(x, want);
            }
            ElementType::F32 if to_f32 => {
                let x = x.as_slice::<f32>();
                let want = idx.iter().flat_map(|&i| {
                    images[i * row_len..(i + 1) * row_len].iter().map(|&p| (p as f32 / 255.0 - mean) / std)
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
