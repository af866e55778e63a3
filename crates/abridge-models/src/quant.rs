//! GGML storage types and their dequantisation to f32.
//!
//! Block layouts follow ggml's `ggml-common.h`; each decoder is checked against gguf-py's
//! `dequantize` on the fixtures made by `scripts/reference/make_tiny_models.py`.

use half::{bf16, f16};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

const QK: usize = 32;
const QK_K: usize = 256;

impl GgmlType {
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 => (QK, 2 + QK / 2),
            Self::Q4_1 => (QK, 4 + QK / 2),
            Self::Q5_0 => (QK, 2 + 4 + QK / 2),
            Self::Q5_1 => (QK, 4 + 4 + QK / 2),
            Self::Q8_0 => (QK, 2 + QK),
            Self::Q4K => (QK_K, 4 + 12 + QK_K / 2),
            Self::Q5K => (QK_K, 4 + 12 + QK_K / 8 + QK_K / 2),
            Self::Q6K => (QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2),
        }
    }

    /// Bytes needed for `elements` values, or `None` if they are not whole blocks.
    pub fn byte_size(self, elements: usize) -> Option<usize> {
        let (block_elements, block_bytes) = self.block();
        elements
            .is_multiple_of(block_elements)
            .then(|| elements / block_elements * block_bytes)
    }

    /// Decodes `bytes` (whole blocks) into `out`, which must hold exactly their element count.
    pub fn dequantize(self, bytes: &[u8], out: &mut [f32]) {
        let (block_elements, block_bytes) = self.block();
        assert_eq!(bytes.len() / block_bytes * block_elements, out.len());
        let blocks = bytes
            .chunks_exact(block_bytes)
            .zip(out.chunks_exact_mut(block_elements));
        match self {
            Self::F32 => blocks.for_each(|(b, y)| y[0] = f32::from_le_bytes(b.try_into().unwrap())),
            Self::F16 => blocks.for_each(|(b, y)| y[0] = half_at(b, 0)),
            Self::BF16 => blocks.for_each(|(b, y)| {
                y[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
            }),
            Self::Q4_0 => blocks.for_each(|(b, y)| dequantize_q4_0(b, y)),
            Self::Q4_1 => blocks.for_each(|(b, y)| dequantize_q4_1(b, y)),
            Self::Q5_0 => blocks.for_each(|(b, y)| dequantize_q5(b, y, false)),
            Self::Q5_1 => blocks.for_each(|(b, y)| dequantize_q5(b, y, true)),
            Self::Q8_0 => blocks.for_each(|(b, y)| dequantize_q8_0(b, y)),
            Self::Q4K => blocks.for_each(|(b, y)| dequantize_q4_k(b, y)),
            Self::Q5K => blocks.for_each(|(b, y)| dequantize_q5_k(b, y)),
            Self::Q6K => blocks.for_each(|(b, y)| dequantize_q6_k(b, y)),
        }
    }
}

fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

fn dequantize_q4_0(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    for (j, &q) in b[2..].iter().enumerate() {
        y[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
        y[j + QK / 2] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

fn dequantize_q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    for (j, &q) in b[4..].iter().enumerate() {
        y[j] = (q & 0x0f) as f32 * d + m;
        y[j + QK / 2] = (q >> 4) as f32 * d + m;
    }
}

/// Q5_0 (`d`, high bits, nibbles; offset -16) and Q5_1 (`d`, `m`, high bits, nibbles).
fn dequantize_q5(b: &[u8], y: &mut [f32], with_min: bool) {
    let d = half_at(b, 0);
    let (m, rest) = if with_min {
        (half_at(b, 2), &b[4..])
    } else {
        (0.0, &b[2..])
    };
    let qh = u32::from_le_bytes(rest[..4].try_into().unwrap());
    let offset = if with_min { 0 } else { 16 };
    for (j, &q) in rest[4..].iter().enumerate() {
        let high0 = ((qh >> j) << 4) & 0x10;
        let high1 = (qh >> (j + 12)) & 0x10;
        let x0 = ((q as u32 & 0x0f) | high0) as i32 - offset;
        let x1 = ((q as u32 >> 4) | high1) as i32 - offset;
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

fn dequantize_q8_0(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..]) {
        *y = q as i8 as f32 * d;
    }
}

/// The 6-bit scale and min of sub-block `j` in the packed 12-byte K-quant scales.
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((q[j] & 63) as f32, (q[j + 4] & 63) as f32)
    } else {
        (
            ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4)) as f32,
            ((q[j + 4] >> 4) | ((q[j] >> 6) << 4)) as f32,
        )
    }
}

fn dequantize_q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (half_at(b, 0), half_at(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..];
    for (chunk, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        for l in 0..32 {
            y[l] = d * sc1 * (q[l] & 0x0f) as f32 - dmin * m1;
            y[l + 32] = d * sc2 * (q[l] >> 4) as f32 - dmin * m2;
        }
    }
}

fn dequantize_q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (half_at(b, 0), half_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    let ql = &b[48..];
    for (chunk, (q, y)) in ql.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (bit1, bit2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        for l in 0..32 {
            let high1 = if qh[l] & bit1 != 0 { 16 } else { 0 };
            let high2 = if qh[l] & bit2 != 0 { 16 } else { 0 };
            y[l] = d * sc1 * ((q[l] & 0x0f) + high1) as f32 - dmin * m1;
            y[l + 32] = d * sc2 * ((q[l] >> 4) + high2) as f32 - dmin * m2;
        }
    }
}

fn dequantize_q6_k(b: &[u8], y: &mut [f32]) {
    let ql_all = &b[..QK_K / 2];
    let qh_all = &b[QK_K / 2..QK_K / 2 + QK_K / 4];
    let sc_all = &b[QK_K / 2 + QK_K / 4..QK_K / 2 + QK_K / 4 + QK_K / 16];
    let d = half_at(b, QK_K / 2 + QK_K / 4 + QK_K / 16);
    for half in 0..2 {
        let ql = &ql_all[64 * half..];
        let qh = &qh_all[32 * half..];
        let sc = &sc_all[8 * half..];
        let y = &mut y[128 * half..];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_block_decodes_scale_and_min() {
        let mut block = vec![0u8; 20];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        block[2..4].copy_from_slice(&f16::from_f32(-1.0).to_bits().to_le_bytes());
        block[4] = 0x3a; // element 0 = 10, element 16 = 3
        let mut y = [0f32; 32];
        GgmlType::Q4_1.dequantize(&block, &mut y);
        assert_eq!(y[0], 10.0 * 0.5 - 1.0);
        assert_eq!(y[16], 3.0 * 0.5 - 1.0);
        assert_eq!(y[1], -1.0);
    }

    #[test]
    fn q8_0_block_is_signed() {
        let mut block = vec![0u8; 34];
        block[..2].copy_from_slice(&f16::from_f32(0.25).to_bits().to_le_bytes());
        block[2] = 0xff; // -1
        block[3] = 4;
        let mut y = [0f32; 32];
        GgmlType::Q8_0.dequantize(&block, &mut y);
        assert_eq!(&y[..2], &[-0.25, 1.0]);
    }

    #[test]
    fn sizes_must_be_whole_blocks() {
        assert_eq!(GgmlType::Q4_1.byte_size(64), Some(40));
        assert_eq!(GgmlType::Q4_1.byte_size(33), None);
        assert_eq!(GgmlType::Q6K.byte_size(256), Some(210));
        assert_eq!(GgmlType::Q4K.byte_size(256), Some(144));
        assert_eq!(GgmlType::Q5K.byte_size(256), Some(176));
    }
}
