//! Incremental UTF-8 validation for fragmented text.

/// Validates a byte stream piece by piece, failing as soon as an invalid
/// sequence is seen and carrying an incomplete sequence across pieces.
#[derive(Debug, Default, Clone)]
pub(crate) struct Utf8Stream {
    /// The bytes of an incomplete sequence at the end of the last piece.
    pending: [u8; 4],
    pending_len: u8,
}

/// Length of the sequence started by `lead`, or 0 if it cannot start one.
fn seq_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

impl Utf8Stream {
    /// Feeds the next piece. Returns `false` if the stream can no longer be
    /// valid UTF-8.
    pub(crate) fn feed(&mut self, mut piece: &[u8]) -> bool {
        if self.pending_len > 0 {
            let need = seq_len(self.pending[0]);
            while usize::from(self.pending_len) < need && !piece.is_empty() {
                self.pending[usize::from(self.pending_len)] = piece[0];
                self.pending_len += 1;
                piece = &piece[1..];
            }
            match simdutf8::compat::from_utf8(&self.pending[..usize::from(self.pending_len)]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return false,
                Err(_) => return true, // still incomplete; piece is exhausted
            }
        }
        match simdutf8::compat::from_utf8(piece) {
            Ok(_) => true,
            Err(e) => {
                if e.error_len().is_some() {
                    return false;
                }
                let rest = &piece[e.valid_up_to()..];
                self.pending[..rest.len()].copy_from_slice(rest);
                // An incomplete sequence: at most 3 bytes.
                self.pending_len = rest.len() as u8;
                true
            }
        }
    }

    /// Whether the stream ends on a character boundary.
    pub(crate) fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    pub(crate) fn reset(&mut self) {
        self.pending_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_everywhere() {
        let s = "aé€𝄞z κόσμε".as_bytes();
        for i in 0..=s.len() {
            for j in i..=s.len() {
                let mut v = Utf8Stream::default();
                assert!(v.feed(&s[..i]));
                assert!(v.feed(&s[i..j]));
                assert!(v.feed(&s[j..]));
                assert!(v.is_complete());
            }
        }
    }

    #[test]
    fn fails_fast() {
        let mut v = Utf8Stream::default();
        assert!(v.feed(&[0xce, 0xba]));
        assert!(v.feed(&[0xe1]));
        assert!(!v.feed(&[0xff]));
        let mut v = Utf8Stream::default();
        assert!(v.feed(&[0xf4]));
        assert!(!v.feed(&[0x90])); // > U+10FFFF
        let mut v = Utf8Stream::default();
        assert!(v.feed(&[0xe2, 0x82]));
        assert!(!v.is_complete());
    }
}
