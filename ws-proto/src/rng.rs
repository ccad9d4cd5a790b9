//! The seeded CSPRNG behind mask keys and the client nonce.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

/// A cryptographically secure generator seeded by the caller.
///
/// `ws-proto` never reads the OS: adapters seed it from the OS CSPRNG
/// (e.g. `getrandom`), tests seed it with fixed bytes so output is exact.
/// Unpredictable mask keys are what protect intermediaries from cache
/// poisoning (RFC 6455 §10.3), so never seed it with a constant in
/// production.
#[derive(Clone)]
pub struct Rng(ChaCha12Rng);

impl Rng {
    /// Creates a generator from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Rng(ChaCha12Rng::from_seed(seed))
    }

    /// A fresh 4-byte mask key.
    pub fn mask_key(&mut self) -> [u8; 4] {
        // Little-endian, so that a fixed seed gives the same bytes on every
        // platform.
        self.0.next_u32().to_le_bytes()
    }

    /// Fills `dst` with random bytes.
    pub fn fill(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng(..)")
    }
}
