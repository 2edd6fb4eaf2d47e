//! SHA-256 for the bytes pgsteward streams (dumps, archives), from aws-lc through rustls's
//! crypto provider, already linked for TLS: its hand-written assembly uses the CPU's SHA
//! extensions whatever the build's opt-level, where the `sha2` crate, built for size like
//! the rest, hashes ~4× slower — CPU that pg_dump's compression and the archive's gzip need.

pub type Sha256 = Box<dyn rustls::crypto::hash::Context>;

pub fn sha256() -> Sha256 {
    let hash = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .expect("a TLS 1.3 suite")
        .common
        .hash_provider;
    debug_assert_eq!(
        hash.algorithm(),
        rustls::crypto::hash::HashAlgorithm::SHA256
    );
    hash.start()
}

/// Lower-case hex, as manifests record digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The finished digest in hex, leaving `h` usable (a fork of it is finished).
pub fn hex_digest(h: &Sha256) -> String {
    hex(h.fork_finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_sha256_whatever_the_pieces() {
        use sha2::{Digest, Sha256};
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        assert_eq!(
            hex(sha256().finish().as_ref()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = sha256();
        h.update(b"abc");
        assert_eq!(
            hex_digest(&h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut h = sha256();
        for piece in data.chunks(65_537) {
            h.update(piece);
        }
        assert_eq!(hex(h.finish().as_ref()), hex(&Sha256::digest(&data)));
    }
}
