//! The client side of the WebSocket wire format that loadgen needs:
//! the opening handshake, pre-built masked frames, and an incremental parser
//! that checks every echoed byte against what was sent.

use base64::Engine as _;
use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush};
use sha1::{Digest, Sha1};

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The first `STAMP_LEN` payload bytes of every message carry its sequence
/// number (as ASCII hex), so a server that echoes an older or another
/// message's bytes is caught even though all payloads share one template.
pub const STAMP_LEN: usize = 8;

/// splitmix64: seeds everything random in loadgen (keys, masks, payload).
pub struct Rng(u64);

impl Rng {
    pub fn from_os() -> Rng {
        let mut seed = [0u8; 8];
        if getrandom::getrandom(&mut seed).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x1234_5678);
            seed = (t ^ u64::from(std::process::id())).to_le_bytes();
        }
        Rng(u64::from_le_bytes(seed))
    }

    pub fn with_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// `Sec-WebSocket-Accept` value for a key.
pub fn accept_for(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A fresh random `Sec-WebSocket-Key` (16 random bytes, base64).
pub fn new_key(rng: &mut Rng) -> String {
    let mut raw = [0u8; 16];
    rng.fill(&mut raw);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The permessage-deflate offer of `--deflate`: what browsers send.
pub const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Messages of at least this many bytes are sent compressed with
/// `--deflate` (the default threshold of Node's `ws` and of ours).
pub const DEFLATE_THRESHOLD: usize = 1024;

/// The opening request; `deflate` is the `Sec-WebSocket-Extensions` offer.
pub fn handshake_request(host: &str, path: &str, key: &str, deflate: Option<&str>) -> Vec<u8> {
    let ext = match deflate {
        Some(offer) => format!("Sec-WebSocket-Extensions: {offer}\r\n"),
        None => String::new(),
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    )
    .into_bytes()
}

/// Checks the server's answer to [`DEFLATE_OFFER`]. Our frames are
/// independent DEFLATE streams compressed with a 32 KiB window, valid with
/// or without context takeover; a server that limits our window below 15
/// bits is refused rather than sent back-references it did not allow.
fn check_deflate_answer(ext: &str) -> Result<(), String> {
    let mut parts = ext.split(';').map(str::trim);
    if parts.next() != Some("permessage-deflate") || ext.contains(',') {
        return Err(format!("handshake: unexpected extension answer {ext:?}"));
    }
    for p in parts {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        match (name, value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(v)) if matches!(v.parse::<u8>(), Ok(8..=15)) => {}
            ("client_max_window_bits", Some("15")) => {}
            _ => {
                return Err(format!(
                    "handshake: permessage-deflate parameter {p:?} not supported by loadgen"
                ))
            }
        }
    }
    Ok(())
}

/// Parses the server's handshake response. Returns `Ok(None)` while it is
/// incomplete, otherwise the number of bytes it took and whether
/// permessage-deflate was negotiated (only possible when `offered`).
pub fn check_handshake_response(
    buf: &[u8],
    expected_accept: &str,
    offered: bool,
) -> Result<Option<(usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad handshake response: {e}")),
    };
    if resp.code != Some(101) {
        return Err(format!(
            "handshake: expected status 101, got {} {}",
            resp.code.unwrap_or(0),
            resp.reason.unwrap_or("")
        ));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    match header("upgrade") {
        Some(v) if v.eq_ignore_ascii_case("websocket") => {}
        other => return Err(format!("handshake: bad Upgrade header {other:?}")),
    }
    match header("connection") {
        Some(v)
            if v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade")) => {}
        other => return Err(format!("handshake: bad Connection header {other:?}")),
    }
    match header("sec-websocket-accept") {
        Some(v) if v == expected_accept => {}
        other => {
            return Err(format!(
                "handshake: bad Sec-WebSocket-Accept {other:?}, expected {expected_accept:?}"
            ))
        }
    }
    let mut deflate = false;
    if let Some(ext) = header("sec-websocket-extensions") {
        if !offered {
            return Err(format!(
                "handshake: server chose an extension we did not offer: {ext:?}"
            ));
        }
        check_deflate_answer(&ext)?;
        deflate = true;
    }
    if let Some(p) = header("sec-websocket-protocol") {
        return Err(format!(
            "handshake: server chose a subprotocol we did not offer: {p:?}"
        ));
    }
    Ok(Some((n, deflate)))
}

/// The payload template: printable ASCII (valid UTF-8 for text messages),
/// pseudo-random so that shifted or repeated data does not compare equal.
pub fn payload_template(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = Rng::with_seed(0x5eed_0fec_4000);
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let mut r = rng.next_u64();
        for _ in 0..10 {
            if out.len() == size {
                break;
            }
            out.push(ALPHABET[(r & 63) as usize]);
            r >>= 6;
        }
    }
    out
}

/// Sequence-number stamp (lowercase hex of the low 32 bits).
pub fn stamp(seq: u32) -> [u8; STAMP_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; STAMP_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((seq >> (28 - 4 * i)) & 0xF) as usize];
    }
    out
}

/// Header of a client (masked) frame with FIN set.
pub fn client_header(opcode: u8, len: usize, mask: [u8; 4]) -> Vec<u8> {
    frame_header(opcode, len, Some(mask))
}

/// Header of a server (unmasked) frame with FIN set: what an echo of a
/// `len`-byte message starts with.
pub fn server_header(opcode: u8, len: usize) -> Vec<u8> {
    frame_header(opcode, len, None)
}

fn frame_header(opcode: u8, len: usize, mask: Option<[u8; 4]>) -> Vec<u8> {
    let bit = if mask.is_some() { 0x80 } else { 0 };
    let mut h = Vec::with_capacity(14);
    h.push(0x80 | opcode);
    if len < 126 {
        h.push(bit | len as u8);
    } else if len <= 0xFFFF {
        h.push(bit | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(bit | 127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(m) = mask {
        h.extend_from_slice(&m);
    }
    h
}

/// A masked close frame with status 1000.
pub fn client_close_frame(mask: [u8; 4]) -> Vec<u8> {
    let mut f = client_header(OP_CLOSE, 2, mask);
    f.push(0x03 ^ mask[0]);
    f.push(0xE8 ^ mask[1]);
    f
}

/// `copies` back-to-back pre-built masked frames of one connection, so that
/// several messages in flight go out with a single write.
pub struct TxFrames {
    pub buf: Vec<u8>,
    pub frame_len: usize,
    pub copies: usize,
    header_len: usize,
    mask: [u8; 4],
    stamp_len: usize,
    /// Offset of the stamp in the payload (0, or 5 behind a stored-block
    /// header in a compressed payload).
    stamp_at: usize,
}

/// Raw DEFLATE of `data` (level 6, 32 KiB window), sync-flushed, without
/// the trailing `00 00 ff ff`.
pub fn deflate_sync(data: &[u8]) -> Vec<u8> {
    let flags = create_comp_flags_from_zip_params(6, -15, 0);
    let mut c = Box::new(CompressorOxide::new(flags));
    let mut out = vec![0u8; data.len() + data.len() / 8 + 64];
    let (mut inp, mut written) = (0, 0);
    loop {
        let r = miniz_oxide::deflate::stream::deflate(
            &mut c,
            &data[inp..],
            &mut out[written..],
            MZFlush::Sync,
        );
        inp += r.bytes_consumed;
        written += r.bytes_written;
        r.status.expect("deflate of the template");
        if inp == data.len() && written < out.len() {
            break;
        }
        out.resize(out.len() * 2, 0);
    }
    out.truncate(written);
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush marker");
    out.truncate(written - 4);
    out
}

impl TxFrames {
    pub fn new(opcode: u8, template: &[u8], mask: [u8; 4], copies: usize) -> TxFrames {
        let header = client_header(opcode, template.len(), mask);
        let mut frame = header.clone();
        frame.extend(template.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        let frame_len = frame.len();
        let mut buf = Vec::with_capacity(frame_len * copies);
        for _ in 0..copies {
            buf.extend_from_slice(&frame);
        }
        TxFrames {
            buf,
            frame_len,
            copies,
            header_len: header.len(),
            mask,
            stamp_len: STAMP_LEN.min(template.len()),
            stamp_at: 0,
        }
    }

    /// Like [`TxFrames::new`], with a compressed payload (RSV1 set).
    ///
    /// The message is built once, so the sequence stamp cannot go through
    /// the compressor: the payload is a DEFLATE *stored* block holding the
    /// stamp bytes (at a fixed offset, patched per message like the plain
    /// frames), followed by the rest of the template compressed on its own
    /// and sync-flushed, with the final `00 00 ff ff` removed (RFC 7692
    /// §7.2.1). Back-references of the second part stay inside it, so each
    /// message is a valid stand-alone stream for any context-takeover
    /// setting.
    pub fn new_deflate(opcode: u8, template: &[u8], mask: [u8; 4], copies: usize) -> TxFrames {
        let stamp_len = STAMP_LEN.min(template.len());
        let mut payload = vec![0x00]; // BFINAL 0, BTYPE 00 (stored), padding
        payload.extend_from_slice(&(stamp_len as u16).to_le_bytes());
        payload.extend_from_slice(&(!(stamp_len as u16)).to_le_bytes());
        let stamp_at = payload.len();
        payload.extend_from_slice(&template[..stamp_len]);
        payload.extend_from_slice(&deflate_sync(&template[stamp_len..]));
        let header = client_header(opcode, payload.len(), mask);
        let mut frame = header.clone();
        frame[0] |= 0x40; // RSV1: this message is compressed (RFC 7692 §6)
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        let frame_len = frame.len();
        let mut buf = Vec::with_capacity(frame_len * copies);
        for _ in 0..copies {
            buf.extend_from_slice(&frame);
        }
        TxFrames {
            buf,
            frame_len,
            copies,
            header_len: header.len(),
            mask,
            stamp_len,
            stamp_at,
        }
    }

    /// Writes the (masked) sequence stamp into frame copy `copy`.
    pub fn stamp(&mut self, copy: usize, seq: u32) {
        let s = stamp(seq);
        let base = copy * self.frame_len + self.header_len + self.stamp_at;
        for (j, b) in s.iter().take(self.stamp_len).enumerate() {
            self.buf[base + j] = b ^ self.mask[(self.stamp_at + j) & 3];
        }
    }
}

/// What every echoed message must look like.
pub struct Expect {
    pub opcode: u8,
    pub template: Vec<u8>,
}

/// What `Rx::feed` saw besides data.
#[derive(Default, Debug)]
pub struct FeedResult {
    /// A close frame arrived, with this status code (if any).
    pub close: Option<Option<u16>>,
}

/// Incremental parser and verifier for the server-to-client byte stream.
pub struct Rx {
    hdr: [u8; 14],
    hdr_have: usize,
    in_frame: bool,
    frame_op: u8,
    frame_fin: bool,
    remaining: u64,
    in_msg: bool,
    msg_off: usize,
    /// Sequence number of the message being received.
    pub seq: u32,
    cur_stamp: [u8; STAMP_LEN],
    ctrl: [u8; 125],
    ctrl_len: usize,
    /// permessage-deflate: the inflater (one per connection, kept across
    /// messages, which is right with and without server context takeover).
    inflate: Option<Box<InflateState>>,
    /// The current message is compressed (RSV1 on its first frame).
    msg_compressed: bool,
    /// Compressed bytes of the current message.
    zbuf: Vec<u8>,
    /// Its inflated bytes.
    pbuf: Vec<u8>,
    /// Messages that arrived compressed.
    pub compressed_msgs: u64,
}

impl Rx {
    pub fn new() -> Rx {
        Rx {
            hdr: [0; 14],
            hdr_have: 0,
            in_frame: false,
            frame_op: 0,
            frame_fin: false,
            remaining: 0,
            in_msg: false,
            msg_off: 0,
            seq: 0,
            cur_stamp: stamp(0),
            ctrl: [0; 125],
            ctrl_len: 0,
            inflate: None,
            msg_compressed: false,
            zbuf: Vec::new(),
            pbuf: Vec::new(),
            compressed_msgs: 0,
        }
    }

    /// permessage-deflate was negotiated: accept compressed echoes.
    pub fn enable_deflate(&mut self) {
        self.inflate = Some(InflateState::new_boxed(DataFormat::Raw));
    }

    /// Inflates the finished compressed message and verifies it.
    fn inflate_msg(&mut self, exp: &Expect) -> Result<(), String> {
        let Some(st) = self.inflate.as_mut() else {
            return Err("compressed message without deflate".into());
        };
        // RFC 7692 §7.2.2: append the sync-flush tail, then inflate.
        self.zbuf.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let want = exp.template.len();
        // One spare byte catches an echo that inflates to more than we sent.
        self.pbuf.resize(want + 1, 0);
        let (mut inp, mut out) = (0, 0);
        while inp < self.zbuf.len() {
            let r = miniz_oxide::inflate::stream::inflate(
                st,
                &self.zbuf[inp..],
                &mut self.pbuf[out..],
                MZFlush::Sync,
            );
            inp += r.bytes_consumed;
            out += r.bytes_written;
            if out > want {
                break;
            }
            match r.status {
                Ok(_) if r.bytes_consumed + r.bytes_written > 0 => {}
                other => {
                    return Err(format!(
                        "inflating message {} failed: {other:?} after {inp} of {} bytes",
                        self.seq,
                        self.zbuf.len()
                    ))
                }
            }
        }
        if out != want {
            return Err(format!(
                "echo of message {} inflates to {}{} bytes, sent {want}",
                self.seq,
                out,
                if out > want { "+" } else { "" }
            ));
        }
        let p = std::mem::take(&mut self.pbuf);
        self.msg_off = 0;
        let r = self.verify(&p[..out], exp);
        self.pbuf = p;
        r?;
        self.msg_off = out;
        self.zbuf.clear();
        self.compressed_msgs += 1;
        Ok(())
    }

    fn header_need(&self) -> usize {
        if self.hdr_have < 2 {
            return 2;
        }
        let ext = match self.hdr[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.hdr[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn start_frame(&mut self, exp: &Expect) -> Result<(), String> {
        let b0 = self.hdr[0];
        let b1 = self.hdr[1];
        // RSV1 only on the first frame of a data message, and only with
        // permessage-deflate negotiated (RFC 7692 §6).
        let first_data = matches!(b0 & 0x0F, OP_TEXT | OP_BINARY);
        let rsv1_ok = self.inflate.is_some() && first_data && b0 & 0x70 == 0x40;
        if b0 & 0x70 != 0 && !rsv1_ok {
            return Err(format!(
                "server frame has RSV bits set (byte 0 = {b0:#04x})"
            ));
        }
        if b1 & 0x80 != 0 {
            return Err("server frame is masked".into());
        }
        let len = match b1 & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.hdr[2], self.hdr[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.hdr[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let op = b0 & 0x0F;
        let fin = b0 & 0x80 != 0;
        match op {
            OP_CONT if !self.in_msg => return Err("continuation frame outside a message".into()),
            OP_CONT => {}
            OP_TEXT | OP_BINARY => {
                if self.in_msg {
                    return Err("new data frame inside a fragmented message".into());
                }
                if op != exp.opcode {
                    return Err(format!(
                        "echo has opcode {op:#x}, sent {:#x} (text/binary mixed up)",
                        exp.opcode
                    ));
                }
                self.in_msg = true;
                self.msg_off = 0;
                self.msg_compressed = rsv1_ok;
                self.zbuf.clear();
            }
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > 125 {
                    return Err(format!(
                        "bad control frame (opcode {op:#x}, fin {fin}, len {len})"
                    ));
                }
                self.ctrl_len = 0;
            }
            _ => return Err(format!("reserved opcode {op:#x}")),
        }
        if self.msg_compressed && (op == OP_CONT || op == OP_TEXT || op == OP_BINARY) {
            // Compressed echoes of random-ish text are about as long as the
            // text; this only bounds memory.
            if self.zbuf.len() as u64 + len > 2 * exp.template.len() as u64 + 1024 {
                return Err(format!(
                    "compressed echo of message {} is far longer than the message",
                    self.seq
                ));
            }
        } else if op == OP_CONT || op == OP_TEXT || op == OP_BINARY {
            let room = (exp.template.len() - self.msg_off) as u64;
            if len > room {
                return Err(format!(
                    "echo of message {} is longer than the {} bytes sent",
                    self.seq,
                    exp.template.len()
                ));
            }
        }
        self.frame_op = op;
        self.frame_fin = fin;
        self.remaining = len;
        self.in_frame = true;
        self.hdr_have = 0;
        Ok(())
    }

    fn verify(&self, chunk: &[u8], exp: &Expect) -> Result<(), String> {
        let off = self.msg_off;
        let stamp_len = STAMP_LEN.min(exp.template.len());
        let mut i = 0;
        while i < chunk.len() && off + i < stamp_len {
            if chunk[i] != self.cur_stamp[off + i] {
                return Err(self.mismatch(off + i, self.cur_stamp[off + i], chunk[i]));
            }
            i += 1;
        }
        let rest = &chunk[i..];
        let want = &exp.template[off + i..off + chunk.len()];
        if rest != want {
            let p = rest.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
            return Err(self.mismatch(off + i + p, want[p], rest[p]));
        }
        Ok(())
    }

    fn mismatch(&self, at: usize, want: u8, got: u8) -> String {
        format!(
            "echo mismatch in message #{} at payload byte {at}: expected {want:#04x}, got {got:#04x}",
            self.seq
        )
    }

    /// Ends the current frame; calls `on_msg` when it completed a message.
    fn finish_frame(
        &mut self,
        exp: &Expect,
        res: &mut FeedResult,
        on_msg: &mut impl FnMut() -> Result<(), String>,
    ) -> Result<(), String> {
        self.in_frame = false;
        match self.frame_op {
            OP_CONT | OP_TEXT | OP_BINARY if self.frame_fin => {
                if self.msg_compressed {
                    self.inflate_msg(exp)?;
                }
                if self.msg_off != exp.template.len() {
                    return Err(format!(
                        "echo of message {} has {} bytes, sent {}",
                        self.seq,
                        self.msg_off,
                        exp.template.len()
                    ));
                }
                self.in_msg = false;
                on_msg()?;
                self.next_message();
            }
            OP_CLOSE => {
                let code =
                    (self.ctrl_len >= 2).then(|| u16::from_be_bytes([self.ctrl[0], self.ctrl[1]]));
                res.close = Some(code);
            }
            _ => {} // non-final data frame, ping, pong
        }
        Ok(())
    }

    fn next_message(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.cur_stamp = stamp(self.seq);
    }

    /// The common case, checked without the byte-wise state machine: `data`
    /// starts with a whole uncompressed single-frame echo of the expected
    /// length (and no frame is partly parsed). Returns its length in bytes
    /// after verifying its payload, or `None` when the general path must
    /// look at it (anything else, mismatches included: that path reports
    /// the first wrong byte).
    fn whole_message(&self, data: &[u8], exp: &Expect) -> Option<usize> {
        if self.hdr_have != 0 || self.in_msg || data.len() < 2 {
            return None;
        }
        // FIN, no RSV bits, the expected opcode; unmasked.
        if data[0] != 0x80 | exp.opcode || data[1] & 0x80 != 0 {
            return None;
        }
        let len = exp.template.len();
        let (hlen, flen) = match data[1] {
            126 if data.len() >= 4 => (4, usize::from(u16::from_be_bytes([data[2], data[3]]))),
            n if n < 126 => (2, usize::from(n)),
            _ => return None,
        };
        // The shortest encoding only: anything else goes the long way.
        if flen != len || (hlen == 4) != (126..=0xFFFF).contains(&len) || data.len() < hlen + len {
            return None;
        }
        let payload = &data[hlen..hlen + len];
        let n = STAMP_LEN.min(len);
        (payload[..n] == self.cur_stamp[..n] && payload[n..] == exp.template[n..])
            .then_some(hlen + len)
    }

    /// Consumes bytes from the server. `on_msg` runs once per complete,
    /// verified message.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        exp: &Expect,
        mut on_msg: impl FnMut() -> Result<(), String>,
    ) -> Result<FeedResult, String> {
        let mut res = FeedResult::default();
        while !data.is_empty() {
            if res.close.is_some() {
                return Err("data after a close frame".into());
            }
            if !self.in_frame {
                if let Some(n) = self.whole_message(data, exp) {
                    on_msg()?;
                    self.next_message();
                    data = &data[n..];
                    continue;
                }
                loop {
                    let need = self.header_need();
                    if self.hdr_have >= need {
                        break;
                    }
                    if data.is_empty() {
                        return Ok(res);
                    }
                    let take = (need - self.hdr_have).min(data.len());
                    self.hdr[self.hdr_have..self.hdr_have + take].copy_from_slice(&data[..take]);
                    self.hdr_have += take;
                    data = &data[take..];
                }
                self.start_frame(exp)?;
                if self.remaining == 0 {
                    self.finish_frame(exp, &mut res, &mut on_msg)?;
                }
                continue;
            }
            let n = (self.remaining.min(data.len() as u64)) as usize;
            let (chunk, rest) = data.split_at(n);
            match self.frame_op {
                OP_CONT | OP_TEXT | OP_BINARY if self.msg_compressed => {
                    self.zbuf.extend_from_slice(chunk);
                }
                OP_CONT | OP_TEXT | OP_BINARY => {
                    self.verify(chunk, exp)?;
                    self.msg_off += n;
                }
                _ => {
                    self.ctrl[self.ctrl_len..self.ctrl_len + n].copy_from_slice(chunk);
                    self.ctrl_len += n;
                }
            }
            self.remaining -= n as u64;
            data = rest;
            if self.remaining == 0 {
                self.finish_frame(exp, &mut res, &mut on_msg)?;
            }
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(op: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | op];
        if payload.len() < 126 {
            f.push(payload.len() as u8);
        } else if payload.len() <= 0xFFFF {
            f.push(126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            f.push(127);
            f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    fn message(size: usize, seq: u32) -> Vec<u8> {
        let mut p = payload_template(size);
        let n = STAMP_LEN.min(size);
        p[..n].copy_from_slice(&stamp(seq)[..n]);
        p
    }

    fn unmask(frame: &[u8], header_len: usize) -> Vec<u8> {
        let mask = &frame[header_len - 4..header_len];
        frame[header_len..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i & 3])
            .collect()
    }

    #[test]
    fn accept_matches_rfc_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn stamped_frames_unmask_to_the_expected_message() {
        for size in [0usize, 3, 16, 125, 126, 65535, 65536, 70000] {
            let t = payload_template(size);
            let mut tx = TxFrames::new(OP_BINARY, &t, [1, 2, 3, 4], 2);
            tx.stamp(1, 0xdeadbeef);
            let hl = tx.frame_len - size;
            let second = &tx.buf[tx.frame_len..];
            assert_eq!(unmask(second, hl), message(size, 0xdeadbeef));
        }
    }

    #[test]
    fn parses_split_and_fragmented_echoes() {
        let size = 70_000;
        let exp = Expect {
            opcode: OP_TEXT,
            template: payload_template(size),
        };
        let mut stream = Vec::new();
        stream.extend(server_frame(OP_TEXT, true, &message(size, 0)));
        let m1 = message(size, 1);
        stream.extend(server_frame(OP_PING, true, b"hi"));
        stream.extend(server_frame(OP_TEXT, false, &m1[..5]));
        stream.extend(server_frame(OP_PONG, true, b""));
        stream.extend(server_frame(OP_CONT, false, &m1[5..40_000]));
        stream.extend(server_frame(OP_CONT, true, &m1[40_000..]));
        stream.extend(server_frame(OP_CLOSE, true, &[3, 232]));
        for step in [1usize, 2, 7, 1000, stream.len()] {
            let mut rx = Rx::new();
            let mut got = 0;
            let mut close = None;
            for chunk in stream.chunks(step) {
                let r = rx
                    .feed(chunk, &exp, || {
                        got += 1;
                        Ok(())
                    })
                    .unwrap();
                if r.close.is_some() {
                    close = r.close;
                }
            }
            assert_eq!(got, 2);
            assert_eq!(close, Some(Some(1000)));
        }
    }

    #[test]
    fn many_whole_echoes_in_one_read() {
        for size in [0usize, 5, 16, 125, 126, 1024, 70_000] {
            let exp = Expect {
                opcode: OP_BINARY,
                template: payload_template(size),
            };
            let mut stream = Vec::new();
            for seq in 0..16 {
                stream.extend(server_frame(OP_BINARY, true, &message(size, seq)));
            }
            let mut rx = Rx::new();
            let mut got = 0;
            rx.feed(&stream, &exp, || {
                got += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!((got, rx.seq), (16, 16), "size {size}");
            // The 10th echo repeats the 9th: found, with its number.
            let mut stream = Vec::new();
            for seq in (0..9).chain([8]).chain(10..16) {
                stream.extend(server_frame(OP_BINARY, true, &message(size, seq)));
            }
            let mut rx = Rx::new();
            let r = rx.feed(&stream, &exp, || Ok(()));
            if size < STAMP_LEN {
                // Too short to hold the digit in which 8 and 9 differ.
                assert!(r.is_ok(), "size {size}");
            } else {
                let err = r.unwrap_err();
                assert!(err.contains("message #9 "), "size {size}: {err}");
            }
        }
    }

    #[test]
    fn detects_wrong_data() {
        let exp = Expect {
            opcode: OP_BINARY,
            template: payload_template(32),
        };
        // Stale message (seq 0 echoed where seq 1 is expected).
        let mut rx = Rx::new();
        let mut stream = server_frame(OP_BINARY, true, &message(32, 0));
        stream.extend(server_frame(OP_BINARY, true, &message(32, 0)));
        assert!(rx
            .feed(&stream, &exp, || Ok(()))
            .unwrap_err()
            .contains("mismatch"));
        // One flipped byte in the body.
        let mut m = message(32, 0);
        m[20] ^= 1;
        let mut rx = Rx::new();
        let err = rx
            .feed(&server_frame(OP_BINARY, true, &m), &exp, || Ok(()))
            .unwrap_err();
        assert!(err.contains("byte 20"), "{err}");
        // Wrong opcode, short and long echoes, masked frame.
        let mut rx = Rx::new();
        assert!(rx
            .feed(&server_frame(OP_TEXT, true, &message(32, 0)), &exp, || Ok(
                ()
            ))
            .is_err());
        let mut rx = Rx::new();
        assert!(rx
            .feed(
                &server_frame(OP_BINARY, true, &message(32, 0)[..31]),
                &exp,
                || Ok(())
            )
            .is_err());
        let mut rx = Rx::new();
        assert!(rx
            .feed(&server_frame(OP_BINARY, true, &[b'0'; 33]), &exp, || Ok(()))
            .is_err());
        let mut rx = Rx::new();
        assert!(rx.feed(&[0x82, 0x80, 0, 0, 0, 0], &exp, || Ok(())).is_err());
    }

    #[test]
    fn handshake_response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let acc = accept_for(key);
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {acc}\r\n\r\nXX"
        );
        assert_eq!(
            check_handshake_response(ok.as_bytes(), &acc, false).unwrap(),
            Some((ok.len() - 2, false))
        );
        assert_eq!(
            check_handshake_response(&ok.as_bytes()[..20], &acc, false).unwrap(),
            None
        );
        let bad = ok.replace(&acc, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert!(check_handshake_response(bad.as_bytes(), &acc, false).is_err());
        let bad = ok.replace("101 Switching Protocols", "200 OK");
        assert!(check_handshake_response(bad.as_bytes(), &acc, false).is_err());
    }

    #[test]
    fn deflate_answers() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let acc = accept_for(key);
        let resp = |ext: &str| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {acc}\r\n{ext}\r\n"
            )
        };
        let ok = resp("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=15\r\n");
        assert_eq!(
            check_handshake_response(ok.as_bytes(), &acc, true).unwrap(),
            Some((ok.len(), true))
        );
        // Not offered, or a parameter loadgen cannot honour.
        assert!(check_handshake_response(ok.as_bytes(), &acc, false).is_err());
        let small =
            resp("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n");
        assert!(check_handshake_response(small.as_bytes(), &acc, true).is_err());
        let plain = resp("");
        assert_eq!(
            check_handshake_response(plain.as_bytes(), &acc, true).unwrap(),
            Some((plain.len(), false))
        );
    }

    /// A ws-proto server with permessage-deflate (context takeover both
    /// ways) accepts loadgen's pre-built compressed frames, sees the stamped
    /// messages, and its compressed echoes pass loadgen's verifier however
    /// the bytes are split.
    #[test]
    fn compressed_frames_round_trip_through_ws_proto() {
        use ws_proto::{Config, Connection, DeflateConfig, DeflateParams, Event, Transmit};
        let now = std::time::Instant::now();
        for (size, op) in [
            (1024usize, OP_TEXT),
            (16 * 1024, OP_BINARY),
            (70_000, OP_TEXT),
        ] {
            let config = Config::default().deflate(Some(DeflateConfig::default()));
            let mut server = Connection::server(config).with_deflate(DeflateParams::default());
            let t = payload_template(size);
            let mut tx = TxFrames::new_deflate(op, &t, [9, 8, 7, 6], 3);
            assert!(
                tx.frame_len < size,
                "compressed frame {} >= {size}",
                tx.frame_len
            );
            for (i, seq) in [0u32, 1, 2].into_iter().enumerate() {
                tx.stamp(i, seq);
            }
            server.handle_input(now, &tx.buf);
            let mut out = Vec::new();
            for seq in 0..3u32 {
                let data = match server.poll_event() {
                    Some(Event::Text(t)) => t.into_bytes(),
                    Some(Event::Binary(b)) => b,
                    other => panic!("size {size}: got {other:?}"),
                };
                assert_eq!(&data[..], &message(size, seq)[..]);
                if op == OP_TEXT {
                    server
                        .send_text(String::from_utf8(data.to_vec()).unwrap())
                        .unwrap();
                } else {
                    server.send_binary(data).unwrap();
                }
            }
            while server.poll_transmit(&mut out) == Some(Transmit::Data) {}
            assert_eq!(out[0] & 0x40, 0x40, "the echo is compressed");
            let exp = Expect {
                opcode: op,
                template: t.clone(),
            };
            for step in [1usize, 13, 4096, out.len()] {
                let mut rx = Rx::new();
                rx.enable_deflate();
                let mut got = 0;
                for chunk in out.chunks(step) {
                    rx.feed(chunk, &exp, || {
                        got += 1;
                        Ok(())
                    })
                    .unwrap();
                }
                assert_eq!(got, 3, "size {size} step {step}");
            }
            // A corrupted echo is caught: flip a byte of the last message.
            let mut bad = out.clone();
            let n = bad.len();
            bad[n - 3] ^= 0x20;
            let mut rx = Rx::new();
            rx.enable_deflate();
            assert!(rx.feed(&bad, &exp, || Ok(())).is_err(), "size {size}");
            // Without deflate negotiated, RSV1 is an error.
            assert!(Rx::new().feed(&out, &exp, || Ok(())).is_err());
        }
    }
}
