//! A minimal GGUF writer for the tests: header, metadata, tensor table, aligned data.

#![allow(dead_code)] // each test file uses part of it

use rewarm_interop::gguf::GgufFile;
use rewarm_interop::quant::GgmlType;
use std::io::Cursor;

pub enum Meta {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(&'static str),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    F32s(Vec<f32>),
}

pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: u32,
    pub data: Vec<u8>,
}

pub fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A GGUF v3 file; tensors are laid out in order, each aligned to 32 bytes. `offsets` overrides them.
pub fn gguf(meta: &[(&str, Meta)], tensors: &[Tensor], offsets: Option<&[u64]>) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in meta {
        string(&mut out, key);
        match value {
            Meta::U32(v) => out.extend(4u32.to_le_bytes().into_iter().chain(v.to_le_bytes())),
            Meta::F32(v) => out.extend(6u32.to_le_bytes().into_iter().chain(v.to_le_bytes())),
            Meta::Bool(v) => out.extend(7u32.to_le_bytes().into_iter().chain([*v as u8])),
            Meta::Str(s) => {
                out.extend(8u32.to_le_bytes());
                string(&mut out, s);
            }
            Meta::Strs(items) => {
                out.extend(9u32.to_le_bytes().into_iter().chain(8u32.to_le_bytes()));
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|s| string(&mut out, s));
            }
            Meta::I32s(items) => {
                out.extend(9u32.to_le_bytes().into_iter().chain(5u32.to_le_bytes()));
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|v| out.extend(v.to_le_bytes()));
            }
            Meta::F32s(items) => {
                out.extend(9u32.to_le_bytes().into_iter().chain(6u32.to_le_bytes()));
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|v| out.extend(v.to_le_bytes()));
            }
        }
    }
    let mut offset = 0u64;
    let mut placed = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        string(&mut out, &t.name);
        out.extend((t.dims.len() as u32).to_le_bytes());
        t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
        out.extend(t.ty.to_le_bytes());
        let at = offsets.map_or(offset, |o| o[i]);
        out.extend(at.to_le_bytes());
        placed.push(at);
        offset = (offset + t.data.len() as u64).div_ceil(32) * 32;
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    let data_start = out.len();
    for (t, at) in tensors.iter().zip(placed) {
        let end = data_start + at as usize + t.data.len();
        if out.len() < end {
            out.resize(end, 0);
        }
        out[data_start + at as usize..end].copy_from_slice(&t.data);
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    out
}

pub fn open(bytes: Vec<u8>) -> Result<GgufFile<Cursor<Vec<u8>>>, String> {
    GgufFile::from_reader(Cursor::new(bytes), "test.gguf").map_err(|e| e.to_string())
}

pub fn f16(v: f32) -> [u8; 2] {
    // Only for values exactly representable as normal halves (the scales below).
    let bits = v.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    assert!(
        (1..31).contains(&exponent) && bits & 0x1fff == 0,
        "{v} is not an exact half"
    );
    (((bits >> 16) & 0x8000) as u16 | (exponent as u16) << 10 | ((bits >> 13) & 0x3ff) as u16)
        .to_le_bytes()
}

pub fn read_one(ty: GgmlType, numel: u64, data: Vec<u8>) -> Vec<f32> {
    let t = Tensor {
        name: "t".into(),
        dims: vec![numel],
        ty: ty.id(),
        data,
    };
    let mut g = open(gguf(&[], &[t], None)).unwrap();
    let info = g.tensors[0].clone();
    g.read_f32(&info).unwrap()
}
