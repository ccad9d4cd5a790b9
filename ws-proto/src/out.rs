//! The outgoing byte queue: small frames coalesced, large payloads shared.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;

/// Payloads at least this large are queued by reference instead of copied.
const SHARE_THRESHOLD: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    /// Queued by reference, before `tail`: large payloads (and the
    /// handshake response). Boxed and dropped when empty: most connections
    /// only ever use the tail, and keep 8 bytes for this instead of 40.
    chunks: Option<Box<Chunks>>,
    tail: BytesMut,
}

/// The payloads queued by reference, with their byte count (the queue's
/// length is the tail's plus this, without a count in every connection).
#[derive(Debug, Default)]
struct Chunks {
    queue: VecDeque<Bytes>,
    bytes: usize,
}

impl OutQueue {
    pub(crate) fn len(&self) -> usize {
        self.tail.len() + self.chunks.as_ref().map_or(0, |c| c.bytes)
    }

    /// Chunks are never empty and their deque is dropped with the last
    /// one, so this does not walk them.
    pub(crate) fn is_empty(&self) -> bool {
        self.tail.is_empty() && self.chunks.is_none()
    }

    /// Appends bytes by copy, returning the offset in the tail where they
    /// start (so the caller can mask them in place).
    pub(crate) fn extend(&mut self, b: &[u8]) -> usize {
        let start = self.tail.len();
        self.tail.extend_from_slice(b);
        start
    }

    pub(crate) fn tail_mut(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Appends a payload, by reference when it is large.
    pub(crate) fn push(&mut self, b: Bytes) {
        if b.len() < SHARE_THRESHOLD {
            self.extend(&b);
            return;
        }
        self.push_chunk(b);
    }

    /// Appends bytes by reference, whatever their size (the handshake
    /// response: its buffer is freed once written, instead of becoming
    /// the tail that an idle connection would keep).
    pub(crate) fn push_chunk(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        let chunks = self.chunks.get_or_insert_with(Default::default);
        if !self.tail.is_empty() {
            let head = self.tail.split().freeze();
            chunks.bytes += head.len();
            chunks.queue.push_back(head);
        }
        chunks.bytes += b.len();
        chunks.queue.push_back(b);
    }

    /// Moves everything into `buf`.
    pub(crate) fn drain_into(&mut self, buf: &mut Vec<u8>) {
        buf.reserve(self.len());
        for c in self.chunks.take().into_iter().flat_map(|c| c.queue) {
            buf.extend_from_slice(&c);
        }
        buf.extend_from_slice(&self.tail);
        self.tail.clear();
    }

    /// Fills `dst` with the queued chunks in order; returns how many slices
    /// were filled.
    pub(crate) fn chunks<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        for c in self
            .chunks
            .iter()
            .flat_map(|c| c.queue.iter())
            .map(|c| &c[..])
            .chain(std::iter::once(&self.tail[..]))
        {
            if n == dst.len() {
                break;
            }
            if !c.is_empty() {
                dst[n] = std::io::IoSlice::new(c);
                n += 1;
            }
        }
        n
    }

    /// Drops the first `n` queued bytes (they were written).
    pub(crate) fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len(), "advance past the queued bytes");
        while n > 0 {
            let Some(c) = self.chunks.as_mut() else {
                self.tail.advance(n);
                break;
            };
            match c.queue.front_mut() {
                Some(front) if front.len() > n => {
                    front.advance(n);
                    c.bytes -= n;
                    n = 0;
                }
                Some(front) => {
                    n -= front.len();
                    c.bytes -= front.len();
                    c.queue.pop_front();
                }
                None => {}
            }
            if c.queue.is_empty() {
                // Chunks are large payloads (or the handshake response):
                // freeing the deque costs nothing next to them, and idle
                // connections do not keep it.
                self.chunks = None;
            }
        }
        if self.is_empty() && self.tail.capacity() > 64 * 1024 {
            // Do not keep a burst's buffer around on an idle connection.
            self.tail = BytesMut::new();
        }
    }
}
