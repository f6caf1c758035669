//! ZIP read the way model loaders read it, not the way Python's `zipfile` does.
//!
//! PyTorch's reader (miniz) ignores CRCs and most flag bits and finds members through the central
//! directory, while other tools walk local headers. An attacker can make the two views disagree
//! (a member present in one and not the other, different names, overlapping data) so that a
//! scanner inspects one file and the loader another. We read both views, report every
//! disagreement, and scan the content of every member found either way.

/// One member as found through either view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub method: u16,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Offset of the member's data (after its local header).
    pub data_offset: u64,
    pub local_header_offset: u64,
}

#[derive(Debug, Default)]
pub struct ZipListing {
    /// Members, from the central directory first, then any found only by local headers.
    pub members: Vec<Member>,
    /// Disagreements and structural problems, as (rule, message).
    pub problems: Vec<(&'static str, String)>,
}

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const EOCD: u32 = 0x0605_4b50;
const EOCD64: u32 = 0x0606_4b50;
const EOCD64_LOCATOR: u32 = 0x0706_4b50;
/// Members listed beyond this are not examined (a finding says so).
pub const MAX_MEMBERS: usize = 100_000;

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}
fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

pub fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// Values in a ZIP64 extra field replace those that were 0xFFFFFFFF in the header.
fn zip64_extra(extra: &[u8], usize_: &mut u64, csize: &mut u64, offset: &mut u64) {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = u16_at(extra, i).unwrap_or(0);
        let len = usize::from(u16_at(extra, i + 2).unwrap_or(0));
        let body = extra.get(i + 4..i + 4 + len).unwrap_or(&[]);
        if id == 0x0001 {
            let mut j = 0;
            for field in [usize_ as &mut u64, csize, offset] {
                if *field == 0xFFFF_FFFF {
                    if let Some(v) = u64_at(body, j) {
                        *field = v;
                    }
                    j += 8;
                }
            }
        }
        i += 4 + len;
    }
}

fn local_header(data: &[u8], at: usize) -> Option<(String, u16, u64, u64, u64, u16)> {
    if u32_at(data, at)? != LOCAL {
        return None;
    }
    let flags = u16_at(data, at + 6)?;
    let method = u16_at(data, at + 8)?;
    let mut csize = u64::from(u32_at(data, at + 18)?);
    let mut usize_ = u64::from(u32_at(data, at + 22)?);
    let name_len = usize::from(u16_at(data, at + 26)?);
    let extra_len = usize::from(u16_at(data, at + 28)?);
    let name = data.get(at + 30..at + 30 + name_len)?;
    let extra = data.get(at + 30 + name_len..at + 30 + name_len + extra_len)?;
    let mut unused = 0;
    zip64_extra(extra, &mut usize_, &mut csize, &mut unused);
    let data_offset = (at + 30 + name_len + extra_len) as u64;
    Some((
        String::from_utf8_lossy(name).into_owned(),
        method,
        csize,
        usize_,
        data_offset,
        flags,
    ))
}

/// Whether an end-of-central-directory record sits in the last 64 KiB: loaders that open ZIPs from
/// the end (PyTorch, `zipfile`) accept such a file whatever comes first.
pub fn has_central_directory(data: &[u8]) -> bool {
    find_eocd(data).is_some_and(|eocd| {
        let cd_offset = u32_at(data, eocd + 16).map(u64::from).unwrap_or(u64::MAX);
        let shift = prepended_bytes(data, eocd) as u64;
        usize::try_from(cd_offset.saturating_add(shift))
            .ok()
            .is_some_and(|o| u32_at(data, o) == Some(CENTRAL))
    })
}

/// Bytes before the archive proper (data prepended to a ZIP), found as `zipfile` finds them: the
/// central directory ends where the EOCD record starts, whatever offset the record claims.
fn prepended_bytes(data: &[u8], eocd: usize) -> usize {
    let cd_size = u32_at(data, eocd + 12).map(|v| v as usize).unwrap_or(0);
    let cd_offset = u32_at(data, eocd + 16).map(|v| v as usize).unwrap_or(0);
    eocd.saturating_sub(cd_size).saturating_sub(cd_offset)
}

fn find_eocd(data: &[u8]) -> Option<usize> {
    let start = data.len().saturating_sub(22 + 65_535);
    (start..=data.len().saturating_sub(22))
        .rev()
        .find(|&i| u32_at(data, i) == Some(EOCD))
}

pub fn list(data: &[u8]) -> ZipListing {
    let mut out = ZipListing::default();
    // --- central directory view ---
    let mut central: Vec<Member> = Vec::new();
    let eocd_found = find_eocd(data);
    match eocd_found {
        None => out.problems.push((
            "ZIP001",
            "no end-of-central-directory record: members found by local headers only".into(),
        )),
        Some(eocd) => {
            let mut count = u64::from(u16_at(data, eocd + 10).unwrap_or(0));
            let mut cd_offset = u64::from(u32_at(data, eocd + 16).unwrap_or(0));
            if (count == 0xFFFF || cd_offset == 0xFFFF_FFFF)
                && eocd >= 20
                && u32_at(data, eocd - 20) == Some(EOCD64_LOCATOR)
                && let Some(rec) = u64_at(data, eocd - 12).and_then(|o| usize::try_from(o).ok())
                && u32_at(data, rec) == Some(EOCD64)
            {
                count = u64_at(data, rec + 32).unwrap_or(count);
                cd_offset = u64_at(data, rec + 48).unwrap_or(cd_offset);
            }
            let shift = prepended_bytes(data, eocd) as u64;
            let mut at = usize::try_from(cd_offset.saturating_add(shift)).unwrap_or(usize::MAX);
            for _ in 0..count.min(MAX_MEMBERS as u64) {
                if u32_at(data, at) != Some(CENTRAL) {
                    out.problems.push(("ZIP001", format!("central directory entry at byte {at} is damaged; the rest of the directory was not read")));
                    break;
                }
                let method = u16_at(data, at + 10).unwrap_or(0);
                let mut csize = u64::from(u32_at(data, at + 20).unwrap_or(0));
                let mut usize_ = u64::from(u32_at(data, at + 24).unwrap_or(0));
                let name_len = usize::from(u16_at(data, at + 28).unwrap_or(0));
                let extra_len = usize::from(u16_at(data, at + 30).unwrap_or(0));
                let comment_len = usize::from(u16_at(data, at + 32).unwrap_or(0));
                let mut offset = u64::from(u32_at(data, at + 42).unwrap_or(0));
                let name = data
                    .get(at + 46..at + 46 + name_len)
                    .map(|n| String::from_utf8_lossy(n).into_owned());
                let extra = data
                    .get(at + 46 + name_len..at + 46 + name_len + extra_len)
                    .unwrap_or(&[]);
                zip64_extra(extra, &mut usize_, &mut csize, &mut offset);
                let offset = offset.saturating_add(shift);
                let Some(name) = name else {
                    out.problems.push((
                        "ZIP001",
                        "central directory runs past the end of the file".into(),
                    ));
                    break;
                };
                match usize::try_from(offset).ok().and_then(|o| local_header(data, o)) {
                    Some((local_name, _, _, _, data_offset, _)) => {
                        if local_name != name {
                            out.problems.push((
                                "ZIP002",
                                format!("member `{name}` is called `{local_name}` in its local header: tools disagree on what it is"),
                            ));
                        }
                        central.push(Member {
                            name,
                            method,
                            compressed_size: csize,
                            uncompressed_size: usize_,
                            data_offset,
                            local_header_offset: offset,
                        });
                    }
                    None => out.problems.push(("ZIP001", format!("member `{name}` points at byte {offset}, where there is no local header"))),
                }
                at += 46 + name_len + extra_len + comment_len;
            }
            if count > MAX_MEMBERS as u64 {
                out.problems.push((
                    "ZIP003",
                    format!(
                        "archive lists {count} members; only the first {MAX_MEMBERS} were examined"
                    ),
                ));
            }
        }
    }
    // --- local header view: walk every local header from the start ---
    let mut local_offsets = Vec::new();
    let mut at = 0usize;
    while let Some((name, method, csize, usize_, data_offset, flags)) = local_header(data, at) {
        let size_known = flags & 0x08 == 0 || csize != 0;
        let size = if size_known {
            csize
        } else {
            central
                .iter()
                .find(|m| m.local_header_offset == at as u64)
                .map(|m| m.compressed_size)
                .unwrap_or(0)
        };
        local_offsets.push((at as u64, name, method, size, usize_, data_offset));
        let next = data_offset.saturating_add(size);
        let Ok(next) = usize::try_from(next) else {
            break;
        };
        // Skip a data descriptor if present.
        let next = if flags & 0x08 != 0 {
            if u32_at(data, next) == Some(0x0807_4b50) {
                next + 16
            } else {
                next + 12
            }
        } else {
            next
        };
        if next <= at || local_offsets.len() >= MAX_MEMBERS {
            break;
        }
        at = next;
    }
    for (offset, name, method, csize, usize_, data_offset) in local_offsets {
        if !central.iter().any(|m| m.local_header_offset == offset) {
            if eocd_found.is_some() {
                out.problems.push((
                    "ZIP004",
                    format!("member `{name}` at byte {offset} is not in the central directory: hidden from loaders that read the directory, seen by those that walk local headers"),
                ));
            }
            central.push(Member {
                name,
                method,
                compressed_size: csize,
                uncompressed_size: usize_,
                data_offset,
                local_header_offset: offset,
            });
        }
    }
    // Overlapping members: one byte range read as two files.
    let mut ranges: Vec<(u64, u64, &str)> = central
        .iter()
        .map(|m| {
            (
                m.data_offset,
                m.data_offset.saturating_add(m.compressed_size),
                m.name.as_str(),
            )
        })
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 && w[0].1 > w[0].0 {
            out.problems.push((
                "ZIP005",
                format!("members `{}` and `{}` overlap", w[0].2, w[1].2),
            ));
        }
    }
    let mut names: Vec<&str> = central.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    for w in names.windows(2) {
        if w[0] == w[1] {
            out.problems.push((
                "ZIP006",
                format!(
                    "member name `{}` appears more than once: loaders pick different copies",
                    w[0]
                ),
            ));
        }
    }
    out.members = central;
    out
}

/// The member's bytes (borrowed when stored, decompressed up to `limit` when deflated); `Err`
/// names why not.
pub fn read<'a>(
    data: &'a [u8],
    member: &Member,
    limit: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    let start = usize::try_from(member.data_offset).map_err(|_| "offset out of range")?;
    let end = start
        .checked_add(usize::try_from(member.compressed_size).map_err(|_| "size out of range")?)
        .filter(|&e| e <= data.len())
        .ok_or("member data runs past the end of the archive")?;
    let raw = &data[start..end];
    match member.method {
        0 => Ok(std::borrow::Cow::Borrowed(raw)),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(
            raw,
            usize::try_from(limit).unwrap_or(usize::MAX),
        )
        .map_err(|e| match e.status {
            miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
                format!("decompresses to more than {limit} bytes (zip bomb?)")
            }
            other => format!("deflate data is damaged ({other:?})"),
        })
        .map(std::borrow::Cow::Owned),
        other => Err(format!("compression method {other} is not supported")),
    }
}
