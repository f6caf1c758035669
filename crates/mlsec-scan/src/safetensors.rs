//! safetensors header validation: the format holds no code, but parsers disagree on malformed
//! headers, so offsets, sizes, overlap and dtypes are checked.

/// Largest header accepted (the reference implementation's limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

pub fn looks_like(data: &[u8]) -> bool {
    data.len() >= 10 && {
        let n = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        (2..=MAX_HEADER).contains(&n) && data[8] == b'{'
    }
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

/// Problems found, as (message, offset).
pub fn validate(data: &[u8]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let n = u64::from_le_bytes(data[..8].try_into().expect("checked by looks_like"));
    let Some(header) = usize::try_from(n).ok().and_then(|n| data.get(8..8 + n)) else {
        out.push((
            format!("header length {n} runs past the end of the file"),
            0,
        ));
        return out;
    };
    let value: serde_json::Value = match serde_json::from_slice(header) {
        Ok(v) => v,
        Err(e) => {
            out.push((format!("header is not JSON: {e}"), 8));
            return out;
        }
    };
    let Some(map) = value.as_object() else {
        out.push(("header is not a JSON object".into(), 8));
        return out;
    };
    let body_len = (data.len() - 8 - header.len()) as u64;
    let mut ranges = Vec::new();
    for (name, t) in map {
        if name == "__metadata__" {
            if !t
                .as_object()
                .is_some_and(|m| m.values().all(|v| v.is_string()))
            {
                out.push(("`__metadata__` must map strings to strings".into(), 8));
            }
            continue;
        }
        let dtype = t.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        let shape: Option<Vec<u64>> = t
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let offsets: Option<Vec<u64>> = t
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let (Some(size), Some(shape), Some(offsets)) = (dtype_size(dtype), shape, offsets) else {
            out.push((
                format!("tensor `{name}`: dtype, shape or data_offsets missing or invalid"),
                8,
            ));
            continue;
        };
        if offsets.len() != 2 || offsets[0] > offsets[1] || offsets[1] > body_len {
            out.push((format!("tensor `{name}`: data_offsets {offsets:?} outside the {body_len}-byte data section"), 8));
            continue;
        }
        let numel = shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d));
        if numel.and_then(|n| n.checked_mul(size)) != Some(offsets[1] - offsets[0]) {
            out.push((
                format!(
                    "tensor `{name}`: shape {shape:?} of {dtype} does not match its {} bytes",
                    offsets[1] - offsets[0]
                ),
                8,
            ));
        }
        ranges.push((offsets[0], offsets[1], name.clone()));
    }
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            out.push((format!("tensors `{}` and `{}` overlap", w[0].2, w[1].2), 8));
        }
    }
    out
}
