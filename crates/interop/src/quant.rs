//! GGML tensor types and their dequantization to f32, following ggml's reference C code
//! (`ggml-quants.c`, `dequantize_row_*`).
//!
//! A quantized row is a sequence of blocks; each block holds `block_size` values in `type_size` bytes:
//!
//! | type | block | bytes | layout                                   | value                         |
//! |------|-------|-------|------------------------------------------|-------------------------------|
//! | Q4_0 | 32    | 18    | d: f16, qs: [u8; 16]                     | (q − 8)·d                     |
//! | Q4_1 | 32    | 20    | d: f16, m: f16, qs: [u8; 16]             | q·d + m                       |
//! | Q5_0 | 32    | 22    | d: f16, qh: [u8; 4], qs: [u8; 16]        | (q − 16)·d, q = 4 low + 1 high bit |
//! | Q5_1 | 32    | 24    | d: f16, m: f16, qh: [u8; 4], qs: [u8; 16]| q·d + m                       |
//! | Q8_0 | 32    | 34    | d: f16, qs: [i8; 32]                     | q·d                           |
//! | Q2_K | 256   | 84    | scales: [u8; 16], qs: [u8; 64], d, dmin: f16 | d·(scale & 15)·q − dmin·(scale >> 4), 2-bit q |
//! | Q3_K | 256   | 110   | hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16 | d·(scale − 32)·(q − 4·!high bit) |
//! | Q4_K | 256   | 144   | d, dmin: f16, scales: [u8; 12], qs: [u8; 128] | sub-block scale·q − sub-block min |
//! | Q5_K | 256   | 176   | d, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128] | as Q4_K, q = 4 low + 1 high bit |
//! | Q6_K | 256   | 210   | ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16 | d·scale·(q − 32) |
//!
//! In the 32-value types, the low nibble of `qs[j]` is value j and the high nibble is value j + 16.

use std::fmt;

/// The element types rewarm can read from a GGUF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
}

/// Names of GGML type ids rewarm knows but cannot dequantize, for error messages.
const UNSUPPORTED: &[(u32, &str)] = &[
    (9, "Q8_1"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (39, "MXFP4"),
];

impl GgmlType {
    /// The type with GGML id `id`; `Err` holds a description of an id rewarm cannot read.
    pub fn from_id(id: u32) -> Result<Self, String> {
        Ok(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            30 => GgmlType::BF16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            other => {
                return Err(match UNSUPPORTED.iter().find(|(i, _)| *i == other) {
                    Some((_, name)) => format!("type {name} (id {other}) is not supported"),
                    None => format!("type id {other} is unknown"),
                })
            }
        })
    }

    /// The GGML id stored in files.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::BF16 => 30,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
        }
    }

    /// Values per block (1 for the float types).
    pub fn block_size(self) -> u64 {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => {
                32
            }
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => {
                256
            }
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q2_K => 84,
            GgmlType::Q3_K => 110,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
        }
    }

    /// Bytes taken by `n` values, `None` if `n` is not a whole number of blocks or the size overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        if n % self.block_size() != 0 {
            return None;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// IEEE half → f32, exactly (subnormals, infinities and NaN included).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits as u32) & 0x8000) << 16;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        // Subnormal: mantissa · 2⁻²⁴, exact in f32.
        (0, m) => (m as f32 * f32::from_bits(0x3380_0000)).to_bits(), // 2^-24
        (0x1f, m) => 0x7f80_0000 | (m << 13),
        (e, m) => ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// bfloat16 → f32: the top half of an f32.
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

fn half(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// Dequantizes `bytes`, a whole number of `ty` blocks, appending the values to `out`. `Err` names the
/// problem when `bytes` is not a whole number of blocks.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), String> {
    let size = ty.type_size() as usize;
    if bytes.len() % size != 0 {
        return Err(format!(
            "{} bytes are not a whole number of {ty} blocks of {size} bytes",
            bytes.len()
        ));
    }
    out.reserve(bytes.len() / size * ty.block_size() as usize);
    for block in bytes.chunks_exact(size) {
        match ty {
            GgmlType::F32 => out.push(f32::from_le_bytes([block[0], block[1], block[2], block[3]])),
            GgmlType::F16 => out.push(half(block, 0)),
            GgmlType::BF16 => out.push(bf16_to_f32(u16::from_le_bytes([block[0], block[1]]))),
            GgmlType::Q4_0 => {
                let (d, qs) = (half(block, 0), &block[2..18]);
                out.extend(qs.iter().map(|&q| ((q & 0xf) as i32 - 8) as f32 * d));
                out.extend(qs.iter().map(|&q| ((q >> 4) as i32 - 8) as f32 * d));
            }
            GgmlType::Q4_1 => {
                let (d, m, qs) = (half(block, 0), half(block, 2), &block[4..20]);
                out.extend(qs.iter().map(|&q| (q & 0xf) as f32 * d + m));
                out.extend(qs.iter().map(|&q| (q >> 4) as f32 * d + m));
            }
            GgmlType::Q5_0 => {
                let d = half(block, 0);
                let values = q5_values(&block[2..6], &block[6..22]);
                out.extend(values.iter().map(|&q| (q as i32 - 16) as f32 * d));
            }
            GgmlType::Q5_1 => {
                let (d, m) = (half(block, 0), half(block, 2));
                let values = q5_values(&block[4..8], &block[8..24]);
                out.extend(values.iter().map(|&q| q as f32 * d + m));
            }
            GgmlType::Q8_0 => {
                let d = half(block, 0);
                out.extend(block[2..34].iter().map(|&q| q as i8 as f32 * d));
            }
            GgmlType::Q2_K => dequantize_q2_k(block, out),
            GgmlType::Q3_K => dequantize_q3_k(block, out),
            GgmlType::Q4_K => dequantize_q4_k(block, out),
            GgmlType::Q5_K => dequantize_q5_k(block, out),
            GgmlType::Q6_K => dequantize_q6_k(block, out),
        }
    }
    Ok(())
}

/// The 32 five-bit values of a Q5 block: low nibbles from `qs`, fifth bits from the 32-bit `qh`
/// (bit j for value j, bit j + 16 for value j + 16).
fn q5_values(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut values = [0u8; 32];
    for j in 0..16 {
        let high_0 = (((qh >> j) << 4) & 0x10) as u8;
        let high_1 = ((qh >> (j + 12)) & 0x10) as u8;
        values[j] = (qs[j] & 0x0f) | high_0;
        values[j + 16] = (qs[j] >> 4) | high_1;
    }
    values
}

/// Scale and min of sub-block `j` (0..8) of a K-quant block: six bits each, packed in 12 bytes
/// (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// One Q4_K block: 8 sub-blocks of 32 values, each with a 6-bit scale and min.
fn dequantize_q4_k(block: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (half(block, 0), half(block, 2));
    let scales = &block[4..16];
    let qs = &block[16..144];
    for (chunk, q) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        out.extend(q.iter().map(|&v| d1 * (v & 0x0f) as f32 - min1));
        out.extend(q.iter().map(|&v| d2 * (v >> 4) as f32 - min2));
    }
}

/// One Q2_K block: 16 sub-blocks of 16 two-bit values, each with a 4-bit scale and a 4-bit min. A byte
/// of `qs` holds four values, of four sub-blocks 32 values apart, at bit shifts 0, 2, 4, 6.
fn dequantize_q2_k(block: &[u8], out: &mut Vec<f32>) {
    let (scales, qs) = (&block[0..16], &block[16..80]);
    let (d, dmin) = (half(block, 80), half(block, 82));
    let mut sub = scales.iter();
    for q in qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for part in q.chunks_exact(16) {
                let sc = sub.next().expect("16 scales for 16 sub-blocks");
                let (dl, ml) = (d * (sc & 0x0f) as f32, dmin * (sc >> 4) as f32);
                out.extend(part.iter().map(|&v| dl * ((v >> shift) & 3) as f32 - ml));
            }
        }
    }
}

/// The 16 six-bit scales of a Q3_K block, packed in 12 bytes: low four bits in bytes 0..8 (two per
/// byte), high two bits in bytes 8..12 (four per byte); stored with an offset of 32.
fn q3_k_scales(packed: &[u8]) -> [i32; 16] {
    let mut scales = [0i32; 16];
    for (j, s) in scales.iter_mut().enumerate() {
        let low = (packed[j % 8] >> (4 * (j / 8))) & 0x0f;
        let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        *s = (low | high << 4) as i32 - 32;
    }
    scales
}

/// One Q3_K block: 16 sub-blocks of 16 three-bit values. Two low bits come from `qs` as in Q2_K; the
/// third from `hmask`, one bit plane per 32 values: a clear bit subtracts 4.
fn dequantize_q3_k(block: &[u8], out: &mut Vec<f32>) {
    let (hmask, qs) = (&block[0..32], &block[32..96]);
    let scales = q3_k_scales(&block[96..108]);
    let d = half(block, 108);
    let mut sub = scales.iter();
    let mut plane = 0;
    for q in qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for (part, hm) in q.chunks_exact(16).zip(hmask.chunks_exact(16)) {
                let dl = d * *sub.next().expect("16 scales for 16 sub-blocks") as f32;
                out.extend(part.iter().zip(hm).map(|(&v, &h)| {
                    let high = if h >> plane & 1 == 1 { 0 } else { 4 };
                    dl * (((v >> shift) & 3) as i32 - high) as f32
                }));
            }
            plane += 1;
        }
    }
}

/// One Q5_K block: as Q4_K, with a fifth bit per value from `qh` (bit plane 2·chunk for the low nibbles,
/// 2·chunk + 1 for the high ones).
fn dequantize_q5_k(block: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (half(block, 0), half(block, 2));
    let (scales, qh, qs) = (&block[4..16], &block[16..48], &block[48..176]);
    for (chunk, q) in qs.chunks_exact(32).enumerate() {
        for (nibble, shift) in [(0, 0), (1, 4)] {
            let (sc, m) = scale_min_k4(2 * chunk + nibble, scales);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            let plane = 2 * chunk + nibble;
            out.extend(q.iter().zip(qh).map(|(&v, &h)| {
                let value = ((v >> shift) & 0x0f) | ((h >> plane) & 1) << 4;
                dl * value as f32 - ml
            }));
        }
    }
}

/// One Q6_K block: 16 sub-blocks of 16 values, 6-bit values (4 low bits in `ql`, 2 high in `qh`).
fn dequantize_q6_k(block: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, scales) = (&block[0..128], &block[128..192], &block[192..208]);
    let d = half(block, 208);
    for half_block in 0..2 {
        let (ql, qh) = (&ql[64 * half_block..], &qh[32 * half_block..]);
        let sc = &scales[8 * half_block..];
        let mut y = [0f32; 128];
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
        out.extend_from_slice(&y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_by_hand() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3800), 0.5);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24)); // smallest subnormal
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000); // −0
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }

    #[test]
    fn ids_round_trip_and_unsupported_types_are_named() {
        for ty in [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::BF16,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q2_K,
            GgmlType::Q3_K,
            GgmlType::Q4_K,
            GgmlType::Q5_K,
            GgmlType::Q6_K,
        ] {
            assert_eq!(GgmlType::from_id(ty.id()), Ok(ty));
        }
        assert!(GgmlType::from_id(15).unwrap_err().contains("Q8_K"));
        assert!(GgmlType::from_id(999).unwrap_err().contains("999"));
        assert_eq!(GgmlType::Q4_1.bytes_for(64), Some(40));
        assert_eq!(GgmlType::Q4_1.bytes_for(33), None);
        assert_eq!(GgmlType::Q8_0.bytes_for(u64::MAX - 31), None);
    }

    #[test]
    fn partial_blocks_are_refused() {
        let mut out = Vec::new();
        assert!(dequantize(GgmlType::Q8_0, &[0; 35], &mut out).is_err());
    }
}
