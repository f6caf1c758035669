//! A bounded protobuf wire-format walker, for ONNX and TensorFlow SavedModel files, where only a
//! few fields matter and no generated code is needed.

/// One field of a message.
pub enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Most fields one message may have before the walker gives up on it.
const MAX_FIELDS: usize = 10_000_000;

/// Fields of one message, in order; `None` if the bytes are not a well-formed message.
pub fn fields(data: &[u8]) -> Option<Vec<(u32, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        if out.len() >= MAX_FIELDS {
            return None;
        }
        let key = varint(data, &mut pos)?;
        let number = u32::try_from(key >> 3).ok().filter(|&n| n > 0)?;
        match key & 7 {
            0 => out.push((number, Field::Varint(varint(data, &mut pos)?))),
            1 => {
                pos = pos.checked_add(8).filter(|&p| p <= data.len())?;
                out.push((number, Field::Fixed));
            }
            2 => {
                let len = usize::try_from(varint(data, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|&e| e <= data.len())?;
                out.push((number, Field::Bytes(&data[pos..end])));
                pos = end;
            }
            5 => {
                pos = pos.checked_add(4).filter(|&p| p <= data.len())?;
                out.push((number, Field::Fixed));
            }
            _ => return None,
        }
    }
    Some(out)
}

fn varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The length-delimited values of field `number`.
pub fn bytes_of<'a>(fields: &[(u32, Field<'a>)], number: u32) -> impl Iterator<Item = &'a [u8]> {
    fields
        .iter()
        .filter(move |(n, _)| *n == number)
        .filter_map(|(_, f)| match f {
            Field::Bytes(b) => Some(*b),
            _ => None,
        })
        .collect::<Vec<_>>()
        .into_iter()
}

pub fn string_of(fields: &[(u32, Field<'_>)], number: u32) -> Option<String> {
    bytes_of(fields, number)
        .next()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

pub fn varint_of(fields: &[(u32, Field<'_>)], number: u32) -> Option<u64> {
    fields.iter().find_map(|(n, f)| match f {
        Field::Varint(v) if *n == number => Some(*v),
        _ => None,
    })
}
