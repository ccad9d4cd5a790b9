//! permessage-deflate (RFC 7692): configuration, negotiation in both roles,
//! and the compressor and decompressor a [`Connection`](crate::Connection)
//! uses once it was negotiated. The memory it costs is documented on
//! [`DeflateConfig`].

use crate::mask::apply_mask;
use bytes::Bytes;
use http::header::{HeaderMap, SEC_WEBSOCKET_EXTENSIONS};
use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use std::fmt;

/// The extension token (RFC 7692 §7).
const NAME: &str = "permessage-deflate";

/// The decompressor's window: always the largest a peer may use, so any
/// negotiated `*_max_window_bits` inflates correctly.
const INFLATE_WINDOW: usize = 1 << 15;

/// The bytes a sender strips from the end of every compressed message and
/// a receiver appends before inflating (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// How masked payload is unmasked before inflating: in stack pieces of
/// this size, so no scratch buffer lives on the heap.
const UNMASK_PIECE: usize = 4096;

/// Settings of permessage-deflate (RFC 7692), in [`Config::deflate`](crate::Config::deflate)
/// (`None` there means off).
///
/// | field | default | meaning |
/// |---|---|---|
/// | `level` | 6 | miniz_oxide level, 0 (store only) to 10 (slowest) |
/// | `client_max_window_bits` | 15 | largest LZ77 window of the client's compressor, 8–15 |
/// | `server_max_window_bits` | 15 | largest LZ77 window of the server's compressor, 8–15 |
/// | `client_no_context_takeover` | false | the client resets its compressor after every message |
/// | `server_no_context_takeover` | false | the server resets its compressor after every message |
/// | `threshold` | 1024 | messages shorter than this are sent uncompressed |
///
/// As a **client**, these are what the offer asks for: the client always
/// offers `client_max_window_bits` (so the server may limit it), with a
/// value when it is below 15; `server_max_window_bits` when below 15; each
/// `*_no_context_takeover` that is set. The server's answer is checked
/// against the offer and the handshake fails on anything not offered.
///
/// As a **server**, the first acceptable offer of the client wins; the
/// answer carries `server_no_context_takeover` if either side asked for
/// it, `client_no_context_takeover` if either side asked for it,
/// `server_max_window_bits` (the smaller of ours and the offer's) when it
/// is below 15 or was offered, and `client_max_window_bits` when the client
/// allows it and ours is below 15. Offers with unknown or repeated
/// parameters or bad values are skipped; when none is acceptable the
/// connection runs uncompressed.
///
/// Window bits outside 8–15 are clamped. Incoming messages are always
/// inflated with a 32 KiB window, so the peer's window costs nothing.
///
/// # Memory
///
/// miniz_oxide has no `memLevel`-style knob: its state has a fixed size
/// whatever the window or level. Per connection, while allocated:
///
/// - the decompressor: about 43 KiB (a 32 KiB window plus ~11 KiB of
///   Huffman tables), allocated at the first compressed message received;
/// - the compressor: about 312 KiB (64 KiB of LZ codes, an 83 KiB output
///   buffer, a 32 KiB dictionary, 128 KiB of hash chains, 4 KiB of Huffman
///   tables), allocated at the first message we compress.
///
/// With context takeover (the default) each is kept until the connection
/// closes. When the matching `*_no_context_takeover` was negotiated it is
/// freed at the end of every message and allocated again for the next
/// one: nothing held between messages, one allocation per message. A
/// connection that never sends a message of at least `threshold` bytes
/// never allocates a compressor, so `threshold = usize::MAX` keeps a
/// connection at the decompressor's 43 KiB while still accepting
/// compressed messages. Masked input is unmasked in 4 KiB pieces on the
/// stack; inflated bytes go straight into the message buffer, which
/// `Config::max_message_size` bounds as for uncompressed messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Compression level, 0 (stored blocks only) to 10; default 6.
    pub level: u8,
    /// Largest window (in bits, 8–15) of the client's compressor.
    pub client_max_window_bits: u8,
    /// Largest window (in bits, 8–15) of the server's compressor.
    pub server_max_window_bits: u8,
    /// The client does not keep its compression context between messages.
    pub client_no_context_takeover: bool,
    /// The server does not keep its compression context between messages.
    pub server_no_context_takeover: bool,
    /// Messages (and fragmented messages whose first fragment is) shorter
    /// than this many bytes are sent uncompressed; default 1024, like `ws`.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            level: 6,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            threshold: 1024,
        }
    }
}

impl DeflateConfig {
    /// Sets [`DeflateConfig::level`].
    pub fn level(mut self, v: u8) -> Self {
        self.level = v;
        self
    }
    /// Sets [`DeflateConfig::client_max_window_bits`].
    pub fn client_max_window_bits(mut self, v: u8) -> Self {
        self.client_max_window_bits = v;
        self
    }
    /// Sets [`DeflateConfig::server_max_window_bits`].
    pub fn server_max_window_bits(mut self, v: u8) -> Self {
        self.server_max_window_bits = v;
        self
    }
    /// Sets [`DeflateConfig::client_no_context_takeover`].
    pub fn client_no_context_takeover(mut self, v: bool) -> Self {
        self.client_no_context_takeover = v;
        self
    }
    /// Sets [`DeflateConfig::server_no_context_takeover`].
    pub fn server_no_context_takeover(mut self, v: bool) -> Self {
        self.server_no_context_takeover = v;
        self
    }
    /// Sets [`DeflateConfig::threshold`].
    pub fn threshold(mut self, v: usize) -> Self {
        self.threshold = v;
        self
    }

    fn client_bits(&self) -> u8 {
        self.client_max_window_bits.clamp(8, 15)
    }

    fn server_bits(&self) -> u8 {
        self.server_max_window_bits.clamp(8, 15)
    }

    /// The parameters a client offers.
    fn offer_params(&self) -> PmdParams {
        let c = self.client_bits();
        let s = self.server_bits();
        PmdParams {
            client_max_window_bits: Some((c < 15).then_some(c)),
            server_max_window_bits: (s < 15).then_some(s),
            client_no_context_takeover: self.client_no_context_takeover,
            server_no_context_takeover: self.server_no_context_takeover,
        }
    }

    /// The value of the `Sec-WebSocket-Extensions` header a client sends
    /// (RFC 7692 §5), e.g. `permessage-deflate; client_max_window_bits`.
    /// [`ClientHandshake`](crate::ClientHandshake) sends it when
    /// [`Config::deflate`](crate::Config::deflate) is set; this is for handshakes done elsewhere.
    pub fn client_offer(&self) -> String {
        self.offer_params().to_header(NAME)
    }

    /// Client side: checks the server's 101 response against
    /// [`client_offer`](Self::client_offer) (RFC 7692 §5, §7.1). `Ok(None)`
    /// when the server declined compression; an error (the handshake must
    /// fail) when it answered with an extension or parameter that was not
    /// offered, a repeated or malformed one, or a value outside the offer.
    pub fn check_response(&self, headers: &HeaderMap) -> Result<Option<DeflateParams>, String> {
        check_response(&self.offer_params(), headers)
    }

    /// Server side: picks the first permessage-deflate offer in the
    /// request's `Sec-WebSocket-Extensions` headers that can be honoured
    /// (RFC 7692 §5, §7.1) and returns the response header value and the
    /// negotiated parameters, or `None` to decline. Offers with unknown or
    /// repeated parameters or bad values are skipped; other extensions are
    /// ignored. [`ServerHandshake`](crate::ServerHandshake) does this when
    /// [`Config::deflate`](crate::Config::deflate) is set; this is for upgrades done elsewhere
    /// (then pass the parameters to
    /// [`Connection::with_deflate`](crate::Connection::with_deflate)).
    pub fn accept_offers(&self, headers: &HeaderMap) -> Option<(String, DeflateParams)> {
        for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
            let Ok(value) = value.to_str() else { continue };
            for ext in parse_extensions(value) {
                let Ok(ext) = ext else { continue };
                if !ext.name.eq_ignore_ascii_case(NAME) {
                    continue;
                }
                if let Ok(offer) = PmdParams::parse(&ext.params, false) {
                    return Some(self.accept(&offer));
                }
            }
        }
        None
    }

    /// The answer to one valid offer.
    fn accept(&self, offer: &PmdParams) -> (String, DeflateParams) {
        let our_client_bits = self.client_bits();
        let our_server_bits = self.server_bits();
        // RFC 7692 §7.1.1: either side may ask for no context takeover, and
        // what the response says binds the peer. A client that announced
        // `client_no_context_takeover` gets it echoed, so we may free our
        // decompressor between its messages.
        let server_nct = self.server_no_context_takeover || offer.server_no_context_takeover;
        let client_nct = self.client_no_context_takeover || offer.client_no_context_takeover;
        // RFC 7692 §7.1.2.1: answer with the offered value or smaller; we
        // may also limit our own window unasked.
        let server_bits = match offer.server_max_window_bits {
            Some(v) => v.min(our_server_bits),
            None => our_server_bits,
        };
        // RFC 7692 §7.1.2.2: only if the client allowed it. Without that we
        // accept anyway: we always inflate with a 32 KiB window.
        let (client_bits, send_client_bits) = match offer.client_max_window_bits {
            Some(v) => {
                let offered = v.unwrap_or(15);
                (offered.min(our_client_bits), our_client_bits < offered)
            }
            None => (15, false),
        };
        let answer = PmdParams {
            client_max_window_bits: send_client_bits.then_some(Some(client_bits)),
            server_max_window_bits: (server_bits < 15 || offer.server_max_window_bits.is_some())
                .then_some(server_bits),
            client_no_context_takeover: client_nct,
            server_no_context_takeover: server_nct,
        };
        let params = DeflateParams {
            local_max_window_bits: server_bits,
            local_no_context_takeover: server_nct,
            remote_max_window_bits: client_bits,
            remote_no_context_takeover: client_nct,
        };
        (answer.to_header(NAME), params)
    }
}

/// The outcome of a permessage-deflate negotiation, from our side:
/// "local" is our compressor, "remote" the peer's. Negotiation produces it
/// ([`DeflateConfig::accept_offers`], [`DeflateConfig::check_response`]);
/// to build one by hand, start from `DeflateParams::default()` and set the
/// fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The largest window (bits) our compressor may use.
    pub local_max_window_bits: u8,
    /// We reset our compressor after every message.
    pub local_no_context_takeover: bool,
    /// The largest window the peer's compressor uses (informational: we
    /// always inflate with a 32 KiB window).
    pub remote_max_window_bits: u8,
    /// The peer resets its compressor after every message, so we may
    /// forget its context too.
    pub remote_no_context_takeover: bool,
}

impl Default for DeflateParams {
    /// permessage-deflate without parameters: 15-bit windows, context
    /// takeover both ways.
    fn default() -> Self {
        DeflateParams {
            local_max_window_bits: 15,
            local_no_context_takeover: false,
            remote_max_window_bits: 15,
            remote_no_context_takeover: false,
        }
    }
}

// ------------------------------------------------------------- negotiation --

/// One element of a `Sec-WebSocket-Extensions` header (RFC 6455 §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Extension {
    name: String,
    /// Parameter names (lower-cased) and values (unquoted).
    params: Vec<(String, Option<String>)>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Splits `s` on `sep` outside quoted strings; `None` on an unterminated
/// quote.
fn split_unquoted(s: &str, sep: u8) -> Option<Vec<&str>> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &c) in b.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && c == b'\\' {
            escaped = true;
        } else if c == b'"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    if quoted || escaped {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// A parameter value: a token or a quoted string (unescaped).
fn param_value(v: &str) -> Option<String> {
    if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return None,
                c => out.push(c),
            }
        }
        // RFC 6455 §9.1: after unquoting, the value must be a token.
        return is_token(&out).then_some(out);
    }
    is_token(v).then(|| v.to_string())
}

/// Parses one header value into its extensions; a malformed element is an
/// `Err` in its place (an unterminated quote spoils the whole value).
fn parse_extensions(value: &str) -> Vec<Result<Extension, ()>> {
    let Some(elements) = split_unquoted(value, b',') else {
        return vec![Err(())];
    };
    elements
        .into_iter()
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let parts = split_unquoted(e, b';').ok_or(())?;
            let name = parts[0].trim();
            if !is_token(name) {
                return Err(());
            }
            let mut params = Vec::new();
            for p in &parts[1..] {
                let (k, v) = match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(param_value(v.trim()).ok_or(())?)),
                    None => (p.trim(), None),
                };
                if !is_token(k) {
                    return Err(());
                }
                params.push((k.to_ascii_lowercase(), v));
            }
            Ok(Extension {
                name: name.to_string(),
                params,
            })
        })
        .collect()
}

/// A window-bits value: `8` to `15`, decimal without a leading zero
/// (RFC 7692 §7.1.2.1).
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| (8..=15).contains(n))
}

/// The parameters of one permessage-deflate offer or response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PmdParams {
    /// `Some(None)`: present without a value (offers only).
    client_max_window_bits: Option<Option<u8>>,
    server_max_window_bits: Option<u8>,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
}

impl PmdParams {
    /// RFC 7692 §7.1: every parameter at most once, known, with a valid
    /// value; `client_max_window_bits` needs a value in a response only.
    fn parse(params: &[(String, Option<String>)], response: bool) -> Result<Self, String> {
        let mut p = PmdParams::default();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in params {
            if seen.contains(&k.as_str()) {
                return Err(format!("repeated parameter {k}"));
            }
            seen.push(k);
            let bad = || format!("bad value for {k}");
            match (k.as_str(), v) {
                ("server_no_context_takeover", None) => p.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => p.client_no_context_takeover = true,
                ("server_max_window_bits", Some(v)) => {
                    p.server_max_window_bits = Some(window_bits(v).ok_or_else(bad)?)
                }
                ("client_max_window_bits", Some(v)) => {
                    p.client_max_window_bits = Some(Some(window_bits(v).ok_or_else(bad)?))
                }
                ("client_max_window_bits", None) if !response => {
                    p.client_max_window_bits = Some(None)
                }
                (
                    "server_no_context_takeover"
                    | "client_no_context_takeover"
                    | "server_max_window_bits"
                    | "client_max_window_bits",
                    _,
                ) => return Err(bad()),
                _ => return Err(format!("unknown parameter {k}")),
            }
        }
        Ok(p)
    }

    fn to_header(&self, name: &str) -> String {
        let mut s = String::from(name);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(v) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={v}"));
        }
        match self.client_max_window_bits {
            Some(Some(v)) => s.push_str(&format!("; client_max_window_bits={v}")),
            Some(None) => s.push_str("; client_max_window_bits"),
            None => {}
        }
        s
    }
}

/// Client side: checks a 101 response against what was offered.
fn check_response(
    offered: &PmdParams,
    headers: &HeaderMap,
) -> Result<Option<DeflateParams>, String> {
    let mut accepted: Option<PmdParams> = None;
    for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
        let value = value
            .to_str()
            .map_err(|_| "malformed Sec-WebSocket-Extensions".to_string())?;
        for ext in parse_extensions(value) {
            let ext = ext.map_err(|_| "malformed Sec-WebSocket-Extensions".to_string())?;
            // RFC 6455 §9.1: only extensions the client offered.
            if !ext.name.eq_ignore_ascii_case(NAME) {
                return Err(format!("extension that was not offered: {}", ext.name));
            }
            if accepted.is_some() {
                return Err("permessage-deflate accepted twice".into());
            }
            accepted = Some(PmdParams::parse(&ext.params, true)?);
        }
    }
    let Some(r) = accepted else { return Ok(None) };
    // RFC 7692 §7.1.2.1: at most the offered value, and present if offered.
    if let Some(offer) = offered.server_max_window_bits {
        match r.server_max_window_bits {
            Some(v) if v <= offer => {}
            Some(_) => return Err("server_max_window_bits larger than offered".into()),
            None => return Err("server_max_window_bits offered but not answered".into()),
        }
    }
    // RFC 7692 §7.1.1.1: a request the server accepts is echoed.
    if offered.server_no_context_takeover && !r.server_no_context_takeover {
        return Err("server_no_context_takeover offered but not answered".into());
    }
    // RFC 7692 §7.1.2.2: only if offered, and at most the offered value.
    let local_bits = match (offered.client_max_window_bits, r.client_max_window_bits) {
        (_, None) => offered.client_max_window_bits.flatten().unwrap_or(15),
        (None, Some(_)) => return Err("client_max_window_bits that was not offered".into()),
        (Some(o), Some(v)) => {
            let v = v.unwrap_or(15);
            if v > o.unwrap_or(15) {
                return Err("client_max_window_bits larger than offered".into());
            }
            v
        }
    };
    Ok(Some(DeflateParams {
        local_max_window_bits: local_bits,
        local_no_context_takeover: offered.client_no_context_takeover
            || r.client_no_context_takeover,
        remote_max_window_bits: r.server_max_window_bits.unwrap_or(15),
        remote_no_context_takeover: r.server_no_context_takeover,
    }))
}

// -------------------------------------------------------------- data path --

/// Why inflating failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// Not a valid DEFLATE stream.
    Corrupt,
    /// The inflated message would exceed the limit.
    TooLarge,
}

/// A streaming raw-DEFLATE decompressor with its own 32 KiB window.
struct Inflater {
    d: DecompressorOxide,
    /// The LZ77 window, written as a ring.
    ring: Box<[u8]>,
    /// Where the next inflated byte goes in `ring`.
    pos: usize,
    /// A block with BFINAL set ended the stream: the rest of the message
    /// is ignored (RFC 7692 §7.2.3.4).
    ended: bool,
}

impl Inflater {
    fn new() -> Box<Self> {
        Box::new(Inflater {
            d: DecompressorOxide::new(),
            ring: vec![0; INFLATE_WINDOW].into_boxed_slice(),
            pos: 0,
            ended: false,
        })
    }

    /// Inflates `input`, appending to `out`; fails before `out` would grow
    /// past `limit` bytes, so memory stays bounded whatever the ratio.
    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        while !self.ended {
            let (status, used, written) = decompress(
                &mut self.d,
                input,
                &mut self.ring,
                self.pos,
                inflate_flags::TINFL_FLAG_HAS_MORE_INPUT,
            );
            input = &input[used..];
            if written > 0 {
                let room = limit.saturating_sub(out.len());
                if written > room {
                    // Keep what fits, so that the caller checks it (UTF-8)
                    // as if it had arrived in smaller pieces: the outcome
                    // must not depend on how the input was split.
                    out.extend_from_slice(&self.ring[self.pos..self.pos + room]);
                    return Err(InflateError::TooLarge);
                }
                out.extend_from_slice(&self.ring[self.pos..self.pos + written]);
                self.pos = (self.pos + written) % INFLATE_WINDOW;
            }
            match status {
                TINFLStatus::Done => self.ended = true,
                TINFLStatus::HasMoreOutput => {}
                TINFLStatus::NeedsMoreInput if input.is_empty() => return Ok(()),
                TINFLStatus::NeedsMoreInput if used > 0 || written > 0 => {}
                _ => return Err(InflateError::Corrupt),
            }
        }
        Ok(())
    }

    /// Ends a message: inflates the stripped tail (RFC 7692 §7.2.2).
    fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        self.inflate(&TAIL, out, limit)?;
        if self.ended {
            // The next message starts a new DEFLATE stream; the window is
            // kept, so a peer that takes its context over still works.
            self.d.init();
            self.ended = false;
        }
        Ok(())
    }
}

/// A raw-DEFLATE compressor whose back-references never reach farther
/// than the negotiated window.
struct Deflater {
    c: Box<CompressorOxide>,
    window_bits: u8,
}

impl Deflater {
    fn new(level: u8, window_bits: u8) -> Box<Self> {
        // Negative window bits: raw DEFLATE, no zlib header.
        let flags = create_comp_flags_from_zip_params(i32::from(level.min(10)), -15, 0);
        Box::new(Deflater {
            c: Box::new(CompressorOxide::new(flags)),
            window_bits,
        })
    }

    /// Compresses `input` and flushes to a byte boundary, appending to
    /// `out`; the output ends with an empty stored block (`TAIL`).
    ///
    /// miniz_oxide's compressor always searches a 32 KiB window (its
    /// `with_params` window bits only lower the level, and its fast level
    /// still matches across 32 KiB). For a smaller negotiated window the
    /// input goes in pieces of at most 2^bits bytes, each ended with a full
    /// flush, which empties the dictionary: a match can then only point
    /// into its own piece, less than 2^bits bytes back (RFC 7692 §7.1.2).
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.window_bits >= 15 {
            self.run(input, TDEFLFlush::Sync, out);
        } else if input.is_empty() {
            self.run(input, TDEFLFlush::Full, out);
        } else {
            for piece in input.chunks(1 << self.window_bits) {
                self.run(piece, TDEFLFlush::Full, out);
            }
        }
    }

    fn run(&mut self, mut input: &[u8], flush: TDEFLFlush, out: &mut Vec<u8>) {
        loop {
            let (status, used) = compress_to_output(&mut self.c, input, flush, |b| {
                out.extend_from_slice(b);
                true
            });
            input = &input[used..];
            // Neither error can happen: we never finish the stream and the
            // callback never refuses output.
            debug_assert_eq!(status, TDEFLStatus::Okay);
            if input.is_empty() || status != TDEFLStatus::Okay || used == 0 {
                return;
            }
        }
    }
}

/// The permessage-deflate state of a connection.
pub(crate) struct Deflate {
    pub(crate) params: DeflateParams,
    level: u8,
    pub(crate) threshold: usize,
    inflater: Option<Box<Inflater>>,
    deflater: Option<Box<Deflater>>,
}

impl fmt::Debug for Deflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflate")
            .field("params", &self.params)
            .field("level", &self.level)
            .field("threshold", &self.threshold)
            .field("inflater", &self.inflater.is_some())
            .field("deflater", &self.deflater.is_some())
            .finish()
    }
}

impl Deflate {
    pub(crate) fn new(params: DeflateParams, config: &DeflateConfig) -> Self {
        Deflate {
            params,
            level: config.level,
            threshold: config.threshold,
            inflater: None,
            deflater: None,
        }
    }

    /// Inflates a piece of a compressed message's payload into `out`;
    /// `mask` and `offset` unmask it on the way (in stack pieces).
    pub(crate) fn inflate(
        &mut self,
        chunk: &[u8],
        mask: Option<[u8; 4]>,
        offset: usize,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let inf = self.inflater.get_or_insert_with(Inflater::new);
        match mask {
            None => inf.inflate(chunk, out, limit),
            Some(key) => {
                let mut tmp = [0u8; UNMASK_PIECE];
                for (i, piece) in chunk.chunks(UNMASK_PIECE).enumerate() {
                    let t = &mut tmp[..piece.len()];
                    t.copy_from_slice(piece);
                    apply_mask(t, key, offset + i * UNMASK_PIECE);
                    inf.inflate(t, out, limit)?;
                }
                Ok(())
            }
        }
    }

    /// Ends a compressed message (RFC 7692 §7.2.2); forgets the peer's
    /// context when it promised not to use it.
    pub(crate) fn finish_inflate(
        &mut self,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let inf = self.inflater.get_or_insert_with(Inflater::new);
        let res = inf.finish(out, limit);
        if self.params.remote_no_context_takeover {
            self.inflater = None;
        }
        res
    }

    /// Frees the compressor and decompressor (the connection closed).
    pub(crate) fn release(&mut self) {
        self.inflater = None;
        self.deflater = None;
    }

    /// Compresses one message, or one fragment of it (`fin` on the last):
    /// RFC 7692 §7.2.1, the tail is stripped at the end of the message.
    pub(crate) fn compress(&mut self, input: &[u8], fin: bool) -> Bytes {
        let (level, bits) = (self.level, self.params.local_max_window_bits);
        let def = self
            .deflater
            .get_or_insert_with(|| Deflater::new(level, bits));
        let mut out = Vec::with_capacity(input.len() / 2 + 16);
        def.compress(input, &mut out);
        if fin {
            debug_assert!(out.ends_with(&TAIL));
            if out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            }
            if self.params.local_no_context_takeover {
                self.deflater = None;
            }
        }
        Bytes::from(out)
    }

    /// Forgets our compressor's history (keeping its memory): a message
    /// compressed elsewhere went out, so the peer's window now holds text
    /// our compressor never saw, and no later message may refer back
    /// across it.
    pub(crate) fn reset_compressor(&mut self) {
        if let Some(d) = &mut self.deflater {
            d.c.reset();
        }
    }
}

/// Compresses one whole message with a fresh compressor (an empty
/// history) and strips the tail (RFC 7692 §7.2.1): a payload any peer that
/// negotiated a window of at least `window_bits` can inflate, whatever it
/// received before.
pub(crate) fn compress_standalone(level: u8, window_bits: u8, input: &[u8]) -> Bytes {
    let mut def = Deflater::new(level, window_bits.clamp(8, 15));
    let mut out = Vec::with_capacity(input.len() / 2 + 16);
    def.compress(input, &mut out);
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn inflate_all(inf: &mut Inflater, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        inf.inflate(payload, &mut out, usize::MAX).unwrap();
        inf.finish(&mut out, usize::MAX).unwrap();
        out.to_vec()
    }

    // ------------------------------------------------ RFC 7692 §7.2.3 ----

    #[test]
    fn rfc7692_7_2_3_1_hello() {
        let mut inf = Inflater::new();
        let z = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_all(&mut inf, &z), b"Hello");
        // Our compressor produces the same bytes.
        let mut d = Deflate::new(DeflateParams::default(), &DeflateConfig::default());
        assert_eq!(&d.compress(b"Hello", true)[..], &z);
    }

    #[test]
    fn rfc7692_7_2_3_1_fragmented() {
        // The same payload split over two frames, inflated as it arrives.
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        inf.inflate(&[0xf2, 0x48, 0xcd], &mut out, usize::MAX)
            .unwrap();
        inf.inflate(&[0xc9, 0xc9, 0x07, 0x00], &mut out, usize::MAX)
            .unwrap();
        inf.finish(&mut out, usize::MAX).unwrap();
        assert_eq!(&out[..], b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_2_shared_window() {
        let mut inf = Inflater::new();
        assert_eq!(
            inflate_all(&mut inf, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            b"Hello"
        );
        // The second "Hello" is one back-reference into the first message.
        assert_eq!(
            inflate_all(&mut inf, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            b"Hello"
        );
        // Our compressor with context takeover references the first one too.
        let mut d = Deflate::new(DeflateParams::default(), &DeflateConfig::default());
        let first = d.compress(b"Hello", true);
        let second = d.compress(b"Hello", true);
        assert!(second.len() < first.len(), "{second:02x?}");
        let mut inf = Inflater::new();
        assert_eq!(inflate_all(&mut inf, &first), b"Hello");
        assert_eq!(inflate_all(&mut inf, &second), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_3_no_compression() {
        let mut inf = Inflater::new();
        let z = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate_all(&mut inf, &z), b"Hello");
        // Level 0 stores.
        let cfg = DeflateConfig::default().level(0);
        let mut d = Deflate::new(DeflateParams::default(), &cfg);
        assert_eq!(&d.compress(b"Hello", true)[..], &z);
    }

    #[test]
    fn rfc7692_7_2_3_4_bfinal() {
        let mut inf = Inflater::new();
        let z = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(inflate_all(&mut inf, &z), b"Hello");
        // The next message starts a new stream and may use the window.
        assert_eq!(
            inflate_all(&mut inf, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            b"Hello"
        );
        assert_eq!(inflate_all(&mut inf, &z), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_5_two_blocks() {
        let mut inf = Inflater::new();
        let z = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(inflate_all(&mut inf, &z), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_6_empty() {
        let mut inf = Inflater::new();
        assert_eq!(inflate_all(&mut inf, &[0x00]), b"");
        let mut d = Deflate::new(DeflateParams::default(), &DeflateConfig::default());
        assert_eq!(&d.compress(b"", true)[..], &[0x00]);
        // An empty compressed payload is a valid empty message too.
        assert_eq!(inflate_all(&mut inf, &[]), b"");
    }

    // ---------------------------------------------------------- inflate --

    #[test]
    fn corrupt_input_is_an_error() {
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        // BTYPE 11 is reserved.
        assert_eq!(
            inf.inflate(&[0xff, 0xff], &mut out, usize::MAX),
            Err(InflateError::Corrupt)
        );
        // A stored block whose NLEN does not match LEN.
        let mut inf = Inflater::new();
        assert_eq!(
            inf.inflate(&[0x00, 0x05, 0x00, 0x00, 0x00], &mut out, usize::MAX),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let mut d = Deflate::new(DeflateParams::default(), &DeflateConfig::default());
        let z = d.compress(&vec![0u8; 4 << 20], true);
        assert!(z.len() < 8 << 10, "{}", z.len());
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        let limit = 100_000;
        assert_eq!(
            inf.inflate(&z, &mut out, limit),
            Err(InflateError::TooLarge)
        );
        assert!(out.len() <= limit);
    }

    // --------------------------------------------------------- compress --

    /// A DEFLATE decoder for tests: returns the output and the largest
    /// back-reference distance seen. `history` is the output of earlier
    /// messages (context takeover).
    fn reference_inflate(data: &[u8], history: &mut Vec<u8>) -> usize {
        struct Bits<'a> {
            d: &'a [u8],
            pos: usize,
        }
        impl Bits<'_> {
            fn bit(&mut self) -> u32 {
                let b = (self.d[self.pos / 8] >> (self.pos % 8)) & 1;
                self.pos += 1;
                u32::from(b)
            }
            fn bits(&mut self, n: u32) -> u32 {
                (0..n).fold(0, |acc, i| acc | (self.bit() << i))
            }
            fn align(&mut self) {
                self.pos = self.pos.div_ceil(8) * 8;
            }
        }
        /// Canonical Huffman code: the count of codes per length and the
        /// symbols in code order (RFC 1951 §3.2.2).
        fn table(lens: &[u8]) -> ([u32; 16], Vec<usize>) {
            let mut counts = [0u32; 16];
            for &l in lens {
                counts[l as usize] += 1;
            }
            counts[0] = 0;
            let mut syms = Vec::new();
            for len in 1..16u8 {
                syms.extend((0..lens.len()).filter(|&s| lens[s] == len));
            }
            (counts, syms)
        }
        fn decode(b: &mut Bits<'_>, t: &([u32; 16], Vec<usize>)) -> usize {
            let (mut code, mut first, mut index) = (0u32, 0u32, 0u32);
            for len in 1..16 {
                code |= b.bit();
                let count = t.0[len];
                if code < first + count {
                    return t.1[(index + code - first) as usize];
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            panic!("bad code");
        }
        const LBASE: [usize; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
            115, 131, 163, 195, 227, 258,
        ];
        const LEXT: [u32; 29] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        const DBASE: [usize; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
            1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        let mut data = data.to_vec();
        data.extend_from_slice(&TAIL);
        let mut b = Bits { d: &data, pos: 0 };
        let mut max_dist = 0;
        while b.pos + 3 <= data.len() * 8 {
            let last = b.bit();
            let btype = b.bits(2);
            match btype {
                0 => {
                    b.align();
                    if b.pos / 8 + 4 > data.len() {
                        break;
                    }
                    let len = b.bits(16) as usize;
                    let nlen = b.bits(16) as usize;
                    assert_eq!(len, !nlen & 0xffff);
                    let start = b.pos / 8;
                    history.extend_from_slice(&data[start..start + len]);
                    b.pos += len * 8;
                }
                1 | 2 => {
                    let (lit, dist) = if btype == 1 {
                        let mut l = [8u8; 288];
                        l[144..256].fill(9);
                        l[256..280].fill(7);
                        (table(&l), table(&[5u8; 30]))
                    } else {
                        let hlit = b.bits(5) as usize + 257;
                        let hdist = b.bits(5) as usize + 1;
                        let hclen = b.bits(4) as usize + 4;
                        const ORDER: [usize; 19] = [
                            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                        ];
                        let mut cl = [0u8; 19];
                        for &o in &ORDER[..hclen] {
                            cl[o] = b.bits(3) as u8;
                        }
                        let ct = table(&cl);
                        let mut lens = Vec::new();
                        while lens.len() < hlit + hdist {
                            match decode(&mut b, &ct) {
                                s @ 0..=15 => lens.push(s as u8),
                                16 => {
                                    let p = *lens.last().unwrap();
                                    let n = 3 + b.bits(2);
                                    lens.extend((0..n).map(|_| p));
                                }
                                17 => lens.extend((0..3 + b.bits(3)).map(|_| 0)),
                                _ => lens.extend((0..11 + b.bits(7)).map(|_| 0)),
                            }
                        }
                        (table(&lens[..hlit]), table(&lens[hlit..]))
                    };
                    loop {
                        let s = decode(&mut b, &lit);
                        match s {
                            0..=255 => history.push(s as u8),
                            256 => break,
                            _ => {
                                let len = LBASE[s - 257] + b.bits(LEXT[s - 257]) as usize;
                                let ds = decode(&mut b, &dist);
                                let ext = if ds < 4 { 0 } else { (ds as u32 - 2) / 2 };
                                let d = DBASE[ds] + b.bits(ext) as usize;
                                max_dist = max_dist.max(d);
                                assert!(d <= history.len(), "distance before the start");
                                for _ in 0..len {
                                    history.push(history[history.len() - d]);
                                }
                            }
                        }
                    }
                }
                _ => panic!("reserved block type"),
            }
            if last == 1 {
                break;
            }
        }
        max_dist
    }

    fn sample(len: usize, seed: u32) -> Vec<u8> {
        // Compressible but not trivial: words from a small vocabulary with
        // a pseudo-random choice, so matches exist at every distance.
        let words: [&[u8]; 8] = [
            b"alpha ",
            b"beta ",
            b"gamma ",
            b"delta ",
            b"epsilon ",
            b"zeta ",
            b"eta ",
            b"theta ",
        ];
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.extend_from_slice(words[(x % 8) as usize]);
            if x % 7 == 0 {
                v.extend_from_slice(&x.to_le_bytes());
            }
        }
        v.truncate(len);
        v
    }

    #[test]
    fn back_references_stay_inside_the_window() {
        for bits in 8..=15u8 {
            for level in [1u8, 6, 9] {
                for nct in [false, true] {
                    let params = DeflateParams {
                        local_max_window_bits: bits,
                        local_no_context_takeover: nct,
                        ..DeflateParams::default()
                    };
                    let mut d = Deflate::new(params, &DeflateConfig::default().level(level));
                    let mut history = Vec::new();
                    let mut max = 0;
                    for (i, len) in [40_000usize, 3000, 50_000].into_iter().enumerate() {
                        let msg = sample(len, i as u32 + u32::from(bits));
                        let z = d.compress(&msg, true);
                        if nct {
                            history.clear();
                        }
                        let before = history.len();
                        max = max.max(reference_inflate(&z, &mut history));
                        assert_eq!(&history[before..], &msg[..], "bits {bits} level {level}");
                    }
                    assert!(
                        max <= 1 << bits,
                        "bits {bits} level {level}: distance {max}"
                    );
                    assert!(max > 0, "bits {bits} level {level}: no matches at all");
                }
            }
        }
    }

    #[test]
    fn fragments_compress_as_one_stream() {
        let mut d = Deflate::new(DeflateParams::default(), &DeflateConfig::default());
        let msg = sample(50_000, 3);
        let mut wire = Vec::new();
        for (i, piece) in msg.chunks(7000).enumerate() {
            let last = (i + 1) * 7000 >= msg.len();
            wire.extend_from_slice(&d.compress(piece, last));
        }
        let mut inf = Inflater::new();
        assert_eq!(inflate_all(&mut inf, &wire), msg);
        // And the next message still shares the context.
        let z = d.compress(&msg[..5000], true);
        assert_eq!(inflate_all(&mut inf, &z), &msg[..5000]);
    }

    #[test]
    fn no_context_takeover_drops_state() {
        let params = DeflateParams {
            local_no_context_takeover: true,
            remote_no_context_takeover: true,
            ..DeflateParams::default()
        };
        let mut d = Deflate::new(params, &DeflateConfig::default());
        let z = d.compress(b"Hello", true);
        assert!(d.deflater.is_none());
        let mut out = Vec::new();
        d.inflate(&z, None, 0, &mut out, usize::MAX).unwrap();
        assert!(d.inflater.is_some());
        d.finish_inflate(&mut out, usize::MAX).unwrap();
        assert!(d.inflater.is_none());
        assert_eq!(&out[..], b"Hello");
        // Each message stands alone.
        assert_eq!(d.compress(b"Hello", true), z);
    }

    #[test]
    fn masked_input_is_unmasked_in_pieces() {
        let mut d = Deflate::new(DeflateParams::default(), &DeflateConfig::default());
        let msg = sample(40_000, 9);
        let mut z = d.compress(&msg, true).to_vec();
        let key = [1, 2, 3, 4];
        apply_mask(&mut z, key, 0);
        let mut out = Vec::new();
        // Split at an odd place to exercise the mask offset.
        let (a, b) = z.split_at(4099);
        d.inflate(a, Some(key), 0, &mut out, usize::MAX).unwrap();
        d.inflate(b, Some(key), 4099, &mut out, usize::MAX).unwrap();
        d.finish_inflate(&mut out, usize::MAX).unwrap();
        assert_eq!(&out[..], &msg[..]);
    }

    // ------------------------------------------------------ negotiation --

    #[test]
    fn header_parsing() {
        let e = parse_extensions(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", x-foo , ,bar;a=b",
        );
        assert_eq!(e.len(), 3);
        let e0 = e[0].clone().unwrap();
        assert_eq!(e0.name, "permessage-deflate");
        assert_eq!(
            e0.params,
            vec![
                ("client_max_window_bits".to_string(), None),
                ("server_max_window_bits".to_string(), Some("10".to_string()))
            ]
        );
        assert_eq!(e[1].clone().unwrap().name, "x-foo");
        assert_eq!(e[2].clone().unwrap().params[0].1.as_deref(), Some("b"));
        // A quoted comma does not split.
        let e = parse_extensions("a; p=\"x,y\", b");
        assert_eq!(e.len(), 2);
        assert!(e[0].is_err()); // "x,y" is not a token
        assert!(e[1].is_ok());
        assert_eq!(parse_extensions("a; p=\"x"), vec![Err(())]);
        assert!(parse_extensions("a;")[0].is_err());
        assert!(parse_extensions("a b")[0].is_err());
        assert!(parse_extensions("a; =1")[0].is_err());
    }

    #[test]
    fn window_bits_values() {
        for v in 8..=15u8 {
            assert_eq!(window_bits(&v.to_string()), Some(v));
        }
        for bad in ["", "7", "16", "08", "+9", "9 ", "abc", "100", "-9"] {
            assert_eq!(window_bits(bad), None, "{bad:?}");
        }
    }

    fn server(cfg: DeflateConfig, offers: &[&str]) -> Option<(String, DeflateParams)> {
        cfg.accept_offers(&headers(offers))
    }

    #[test]
    fn server_accepts_a_plain_offer() {
        let (h, p) = server(DeflateConfig::default(), &["permessage-deflate"]).unwrap();
        assert_eq!(h, "permessage-deflate");
        assert_eq!(p, DeflateParams::default());
        let (h, _) = server(
            DeflateConfig::default(),
            &["permessage-deflate; client_max_window_bits"],
        )
        .unwrap();
        assert_eq!(h, "permessage-deflate");
    }

    #[test]
    fn server_honours_the_offer() {
        let (h, p) = server(
            DeflateConfig::default(),
            &["permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"],
        )
        .unwrap();
        assert_eq!(
            h,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
        assert_eq!(
            p,
            DeflateParams {
                local_max_window_bits: 10,
                local_no_context_takeover: true,
                remote_max_window_bits: 12,
                remote_no_context_takeover: true,
            }
        );
    }

    #[test]
    fn server_applies_its_own_limits() {
        let cfg = DeflateConfig::default()
            .server_max_window_bits(11)
            .client_max_window_bits(9)
            .server_no_context_takeover(true)
            .client_no_context_takeover(true);
        let (h, p) = server(cfg.clone(), &["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(
            h,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9"
        );
        assert_eq!((p.local_max_window_bits, p.remote_max_window_bits), (11, 9));
        // The smaller of both limits wins.
        let (h, p) = server(
            cfg.clone(),
            &["permessage-deflate; server_max_window_bits=9; client_max_window_bits=8"],
        )
        .unwrap();
        // The client already promised 8: no need to answer it.
        assert!(h.ends_with("server_max_window_bits=9"), "{h}");
        assert_eq!((p.local_max_window_bits, p.remote_max_window_bits), (9, 8));
        // A client that cannot be limited is accepted anyway.
        let (h, p) = server(cfg, &["permessage-deflate"]).unwrap();
        assert!(!h.contains("client_max_window_bits"), "{h}");
        assert_eq!(p.remote_max_window_bits, 15);
    }

    #[test]
    fn server_falls_back_to_the_next_offer() {
        let bad = [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=\"16\"",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; mux",
            "permessage-deflate; x=\"unterminated",
            "permessage-deflate;",
        ];
        for b in bad {
            assert_eq!(server(DeflateConfig::default(), &[b]), None, "{b}");
            let (h, p) = server(
                DeflateConfig::default(),
                &[b, "permessage-deflate; server_max_window_bits=12"],
            )
            .unwrap_or_else(|| panic!("{b}"));
            assert_eq!(h, "permessage-deflate; server_max_window_bits=12", "{b}");
            assert_eq!(p.local_max_window_bits, 12);
        }
        // Several offers in one header, other extensions skipped, and the
        // first acceptable one wins.
        let (h, _) = server(
            DeflateConfig::default(),
            &[
                "x-webkit-deflate-frame, permessage-deflate; foo, permessage-deflate; server_max_window_bits=\"9\", permessage-deflate",
            ],
        )
        .unwrap();
        assert_eq!(h, "permessage-deflate; server_max_window_bits=9");
        // Offers split across header lines keep their order.
        let (h, _) = server(
            DeflateConfig::default(),
            &[
                "permessage-deflate; bogus",
                "permessage-deflate; server_no_context_takeover",
            ],
        )
        .unwrap();
        assert_eq!(h, "permessage-deflate; server_no_context_takeover");
    }

    #[test]
    fn server_declines_cleanly() {
        assert_eq!(server(DeflateConfig::default(), &[]), None);
        assert_eq!(
            server(DeflateConfig::default(), &["x-foo, y-bar; a=1"]),
            None
        );
        assert_eq!(
            server(
                DeflateConfig::default(),
                &[
                    "permessage-deflate; a",
                    "permessage-deflate; server_max_window_bits=20"
                ]
            ),
            None
        );
    }

    #[test]
    fn client_offer_strings() {
        assert_eq!(
            DeflateConfig::default().client_offer(),
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(
            DeflateConfig::default()
                .client_max_window_bits(10)
                .server_max_window_bits(9)
                .client_no_context_takeover(true)
                .server_no_context_takeover(true)
                .client_offer(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10"
        );
        // Out-of-range settings are clamped.
        assert_eq!(
            DeflateConfig::default()
                .client_max_window_bits(3)
                .server_max_window_bits(99)
                .client_offer(),
            "permessage-deflate; client_max_window_bits=8"
        );
    }

    #[test]
    fn client_accepts_valid_responses() {
        let cfg = DeflateConfig::default();
        assert_eq!(cfg.check_response(&headers(&[])), Ok(None));
        assert_eq!(
            cfg.check_response(&headers(&["permessage-deflate"])),
            Ok(Some(DeflateParams::default()))
        );
        let p = cfg
            .check_response(&headers(&[
                "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10; client_no_context_takeover; server_no_context_takeover",
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            DeflateParams {
                local_max_window_bits: 9,
                local_no_context_takeover: true,
                remote_max_window_bits: 10,
                remote_no_context_takeover: true,
            }
        );
        // Our own limits apply when the server says nothing.
        let cfg = DeflateConfig::default()
            .client_max_window_bits(11)
            .client_no_context_takeover(true)
            .server_max_window_bits(12)
            .server_no_context_takeover(true);
        let p = cfg
            .check_response(&headers(&[
                "permessage-deflate; server_max_window_bits=12; server_no_context_takeover",
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(p.local_max_window_bits, 11);
        assert!(p.local_no_context_takeover);
        let p = cfg
            .check_response(&headers(&[
                "permessage-deflate; server_max_window_bits=8; server_no_context_takeover; client_max_window_bits=10",
            ]))
            .unwrap()
            .unwrap();
        assert_eq!((p.local_max_window_bits, p.remote_max_window_bits), (10, 8));
    }

    #[test]
    fn client_rejects_bad_responses() {
        let cfg = DeflateConfig::default();
        for bad in [
            "x-foo",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate, x-foo",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=yes",
            "permessage-deflate; unknown",
            "permessage-deflate; a=\"b",
        ] {
            assert!(cfg.check_response(&headers(&[bad])).is_err(), "{bad}");
        }
        // Two header lines each accepting it.
        assert!(cfg
            .check_response(&headers(&["permessage-deflate", "permessage-deflate"]))
            .is_err());
        // Values outside the offer.
        let cfg = DeflateConfig::default()
            .client_max_window_bits(10)
            .server_max_window_bits(10)
            .server_no_context_takeover(true);
        for bad in [
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11",
        ] {
            assert!(cfg.check_response(&headers(&[bad])).is_err(), "{bad}");
        }
        // client_max_window_bits when it was not offered.
        let offered = PmdParams::default();
        assert!(check_response(
            &offered,
            &headers(&["permessage-deflate; client_max_window_bits=10"])
        )
        .is_err());
        assert!(check_response(&offered, &headers(&["permessage-deflate"])).is_ok());
    }
}
