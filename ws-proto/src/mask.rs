//! Payload masking (RFC 6455 §5.3).
//!
//! Masking XORs every payload byte with one byte of a 4-byte key, cycling
//! through the key. It is applied by clients to every frame they send and
//! removed by servers from every frame they receive, so it sits on the hot
//! path of every message. The loop below works on 32-byte blocks so that the
//! compiler turns it into SIMD XORs without any `unsafe`.

/// Width of one block of the vectorizable loop.
const BLOCK: usize = 32;

/// XORs `data` with the mask `key`, where `data` starts at byte `offset` of
/// the masked payload (so a payload can be unmasked piece by piece as it
/// arrives).
///
/// Masking is its own inverse: applying it twice restores the input.
///
/// ```
/// let mut data = *b"Hello";
/// ws_proto::apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // RFC 6455 §5.7
/// ```
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that index 0 of `data` uses key[offset % 4].
    let key = rotate(key, offset);
    if data.len() < BLOCK {
        // Short payloads (most control frames and small messages): four
        // bytes at a time; the remainder starts at a multiple of 4, so it
        // begins with key[0].
        let k = u32::from_ne_bytes(key);
        let mut words = data.chunks_exact_mut(4);
        for w in &mut words {
            let v = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) ^ k;
            w.copy_from_slice(&v.to_ne_bytes());
        }
        for (b, k) in words.into_remainder().iter_mut().zip(key) {
            *b ^= k;
        }
        return;
    }
    let pattern: [u8; BLOCK] = repeat_key(key);
    let mut chunks = data.chunks_exact_mut(BLOCK);
    for chunk in &mut chunks {
        xor_block(chunk, &pattern);
    }
    // The remainder starts at a multiple of BLOCK (itself a multiple of 4),
    // so the key phase is unchanged.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Appends `src` unmasked to `dst` (`src` starting at byte `offset` of the
/// masked payload): one pass that reads, XORs and writes, instead of a copy
/// followed by [`apply_mask`] over the copy. Below 2 KiB the two passes are
/// as fast (measured), and they stay.
pub(crate) fn extend_unmasked(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    if src.len() < 2048 {
        let start = dst.len();
        dst.extend_from_slice(src);
        apply_mask(&mut dst[start..], key, offset);
        return;
    }
    const FUSED: usize = 2 * BLOCK;
    let key = rotate(key, offset);
    let pattern: [u8; FUSED] = repeat_key(key);
    dst.reserve(src.len());
    let mut chunks = src.chunks_exact(FUSED);
    for chunk in &mut chunks {
        let chunk: &[u8; FUSED] = chunk.try_into().expect("block size");
        let mut out = [0u8; FUSED];
        for ((o, c), p) in out.iter_mut().zip(chunk).zip(&pattern) {
            *o = c ^ p;
        }
        dst.extend_from_slice(&out);
    }
    // The remainder starts at a multiple of FUSED, so with key[0].
    let start = dst.len();
    dst.extend_from_slice(chunks.remainder());
    apply_mask(&mut dst[start..], key, 0);
}

#[inline(always)]
fn xor_block(chunk: &mut [u8], pattern: &[u8; BLOCK]) {
    // A fixed-size array view lets LLVM emit full-width vector XORs.
    let chunk: &mut [u8; BLOCK] = chunk.try_into().expect("block size");
    for (b, p) in chunk.iter_mut().zip(pattern.iter()) {
        *b ^= *p;
    }
}

/// The key repeated over `N` bytes (`N` a multiple of 4).
#[inline]
fn repeat_key<const N: usize>(key: [u8; 4]) -> [u8; N] {
    let mut pattern = [0u8; N];
    for (i, p) in pattern.iter_mut().enumerate() {
        *p = key[i & 3];
    }
    pattern
}

#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let s = offset & 3;
    [key[s], key[(s + 1) & 3], key[(s + 2) & 3], key[(s + 3) & 3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_unmasked_matches_copy_then_mask() {
        let src: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0, 1, 5, 63, 64, 65, 2047, 2048, 2049, 2111, 4096, 9999] {
            for offset in 0..4 {
                let mut want = b"head".to_vec();
                want.extend_from_slice(&src[..len]);
                naive(&mut want[4..], key, offset);
                let mut got = b"head".to_vec();
                extend_unmasked(&mut got, &src[..len], key, offset);
                assert_eq!(got, want, "len {len} offset {offset}");
            }
        }
    }

    fn naive(data: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_naive_for_all_lengths_and_offsets() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..200 {
            for offset in 0..8 {
                let orig: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut a = orig.clone();
                let mut b = orig.clone();
                apply_mask(&mut a, key, offset);
                naive(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
                apply_mask(&mut a, key, offset);
                assert_eq!(a, orig);
            }
        }
    }

    #[test]
    fn piecewise_equals_whole() {
        let key = [1, 2, 3, 4];
        let orig: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut whole = orig.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = orig.clone();
        let mut pos = 0;
        for step in [1usize, 3, 5, 33, 64, 100, 7, 787] {
            let end = (pos + step).min(pieces.len());
            apply_mask(&mut pieces[pos..end], key, pos);
            pos = end;
        }
        assert_eq!(whole, pieces);
    }
}
