//! Keys the server derives from the master key of the secrets at rest, one per purpose, so that no key is ever
//! used for two things (the master key itself only seals secrets in the store). Every node of a deployment shares
//! the master key, so every node derives the same keys: a page token made by one node opens on another.
//!
//! A subkey is `HMAC-SHA256(master key, label)`, the label naming the purpose and its version (HKDF's expand
//! step for one block, with the master key as the pseudo-random key).

use std::fmt;

use hmac::{Hmac, Mac};
use oc_store::MasterKey;
use sha2::Sha256;

/// The label of the key of the hub passthrough's page tokens.
const PAGE_TOKENS: &str = "ocpoll/v1/hub-page-tokens";

/// A derived 256-bit key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SubKey([u8; 32]);

impl SubKey {
    /// The key's bytes, for a MAC.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubKey(********)")
    }
}

/// The keys of a server, derived from its master key.
#[derive(Debug, Clone)]
pub struct ServerKeys {
    page_tokens: SubKey,
}

impl ServerKeys {
    /// The keys of the deployment whose master key is `master`.
    pub fn derive(master: &MasterKey) -> ServerKeys {
        let bytes = master_bytes(master);
        ServerKeys { page_tokens: subkey(&bytes, PAGE_TOKENS) }
    }

    /// The key that seals the hub passthrough's `elements-next-page-token`s.
    pub fn page_tokens(&self) -> &SubKey {
        &self.page_tokens
    }
}

/// The 32 bytes of the master key (its only accessor is the hex text of the key file).
fn master_bytes(master: &MasterKey) -> [u8; 32] {
    let hex = master.to_hex();
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or_default();
    }
    bytes
}

fn subkey(master: &[u8; 32], label: &str) -> SubKey {
    // HMAC pads a key shorter than its block with zeros: a padded key is the same key, and taking the block
    // whole cannot fail
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(master);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    mac.update(label.as_bytes());
    mac.update(&[1]);
    SubKey(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_depend_on_the_master_key_and_the_purpose_and_are_never_printed() {
        let a = ServerKeys::derive(&MasterKey::from_bytes([7; 32]));
        let again = ServerKeys::derive(&MasterKey::from_bytes([7; 32]));
        let b = ServerKeys::derive(&MasterKey::from_bytes([8; 32]));
        assert_eq!(a.page_tokens(), again.page_tokens(), "every node derives the same key");
        assert_ne!(a.page_tokens(), b.page_tokens());
        assert_ne!(a.page_tokens().bytes(), &[7; 32], "not the master key itself");
        assert_ne!(subkey(&[7; 32], PAGE_TOKENS), subkey(&[7; 32], "ocpoll/v1/something-else"));
        // the padded block is the key itself: the same MAC as HMAC keyed with the 32 bytes
        let mut plain = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        plain.update(PAGE_TOKENS.as_bytes());
        plain.update(&[1]);
        assert_eq!(subkey(&[7; 32], PAGE_TOKENS).bytes()[..], plain.finalize().into_bytes()[..]);
        assert_eq!(master_bytes(&MasterKey::from_bytes([0xab; 32])), [0xab; 32]);
        assert_eq!(format!("{a:?}"), "ServerKeys { page_tokens: SubKey(********) }");
    }
}
