//! The hub passthrough's `elements-next-page-token`: where the provider's list stands (the provider's own
//! cursor, e.g. Sage's `$next`), bound to the instance and to the query it belongs to, and sealed with an HMAC
//! so that a client can hand a token back (`?nextPage=`) but can neither make one nor alter one.
//!
//! A token is the URL-safe base64 (no padding) of
//!
//! ```text
//! version (1 byte, 1) | instance id (8, big endian) | query digest (16) | page size (4, big endian) | cursor (UTF-8)
//!     | HMAC-SHA256 of everything before it, under the server's page-token key (32)
//! ```
//!
//! The query digest is the first 16 bytes of the SHA-256 of the compiled query (hub, resource, provider path,
//! query pairs and the locally evaluated rest), so a token works with the same `where`, `orderBy` and `fields`
//! however they are encoded, and with `page`/`pageSize` left out, but not with another query. The cursor is
//! readable (it is no secret: the client's own query), not forgeable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use oc_model::InstanceId;
use oc_model::ports::CompiledQuery;
use sha2::{Digest, Sha256};

use crate::keys::SubKey;

const VERSION: u8 = 1;
const DIGEST_LEN: usize = 16;
const TAG_LEN: usize = 32;
const HEAD_LEN: usize = 1 + 8 + DIGEST_LEN + 4;
/// Longest token accepted (in characters), far above any cursor a provider gives.
const MAX_TOKEN_LEN: usize = 8192;

/// The digest of the query a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryDigest([u8; DIGEST_LEN]);

impl QueryDigest {
    /// The digest of `query` compiled for `hub`.
    pub fn of(hub: &str, query: &CompiledQuery) -> QueryDigest {
        let mut h = Sha256::new();
        let mut part = |bytes: &[u8]| {
            // length-prefixed, so that no two different queries give the same bytes
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        part(hub.as_bytes());
        part(query.resource.as_bytes());
        part(query.path.as_bytes());
        for (k, v) in &query.query {
            part(k.as_bytes());
            part(v.as_bytes());
        }
        part(query.local.as_ref().map(|l| l.describe()).unwrap_or_default().as_bytes());
        let full = h.finalize();
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&full[..DIGEST_LEN]);
        QueryDigest(digest)
    }
}

/// Where the next page of a hub list starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePosition {
    /// The provider's cursor ([`Page::next`](oc_model::ports::Page::next)).
    pub cursor: String,
    /// The page size of the pages before (the provider's cursor may carry it: it cannot change midway).
    pub page_size: u32,
}

/// Why a `nextPage` token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this server's form: truncated, mangled, or not a token at all.
    #[error(
        "not a page token (truncated or mangled): pass the elements-next-page-token header of the previous page as it is"
    )]
    Malformed,
    /// The form is right but the seal is not: altered, or made by a server with another key.
    #[error("the page token was altered or was not made by this server")]
    Forged,
    /// A token of another instance.
    #[error("the page token belongs to another instance")]
    OtherInstance,
    /// A token of another query of this instance.
    #[error(
        "the page token belongs to another query: send the same hub, resource, where, orderBy and fields as the request that returned it"
    )]
    OtherQuery,
}

/// Makes and opens page tokens under one key.
#[derive(Debug, Clone)]
pub struct PageTokens {
    key: SubKey,
}

impl PageTokens {
    /// Tokens under `key` (the server's page-token key, [`ServerKeys::page_tokens`](crate::keys::ServerKeys)).
    pub fn new(key: SubKey) -> PageTokens {
        PageTokens { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(self.key.bytes());
        <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into())
    }

    /// The token of `position` in the list of `query` read by `instance`.
    pub fn seal(&self, instance: InstanceId, query: &QueryDigest, position: &PagePosition) -> String {
        let mut bytes = Vec::with_capacity(HEAD_LEN + position.cursor.len() + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&instance.to_be_bytes());
        bytes.extend_from_slice(&query.0);
        bytes.extend_from_slice(&position.page_size.to_be_bytes());
        bytes.extend_from_slice(position.cursor.as_bytes());
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position sealed in `token`, when this server made it for `instance` and `query`.
    pub fn open(&self, token: &str, instance: InstanceId, query: &QueryDigest) -> Result<PagePosition, TokenError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TokenError::Malformed)?;
        if bytes.len() < HEAD_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = self.mac();
        mac.update(signed);
        // constant time
        mac.verify_slice(tag).map_err(|_| TokenError::Forged)?;
        let field = |range: std::ops::Range<usize>| signed.get(range).ok_or(TokenError::Malformed);
        let mut id = [0u8; 8];
        id.copy_from_slice(field(1..9)?);
        if InstanceId::from_be_bytes(id) != instance {
            return Err(TokenError::OtherInstance);
        }
        if field(9..9 + DIGEST_LEN)? != query.0 {
            return Err(TokenError::OtherQuery);
        }
        let mut size = [0u8; 4];
        size.copy_from_slice(field(9 + DIGEST_LEN..HEAD_LEN)?);
        let cursor = std::str::from_utf8(field(HEAD_LEN..signed.len())?).map_err(|_| TokenError::Malformed)?;
        Ok(PagePosition { cursor: cursor.to_string(), page_size: u32::from_be_bytes(size) })
    }
}

#[cfg(test)]
mod tests {
    use oc_model::ports::CompiledQuery;

    use super::*;

    fn tokens(byte: u8) -> PageTokens {
        PageTokens::new(
            crate::keys::ServerKeys::derive(&oc_store::MasterKey::from_bytes([byte; 32])).page_tokens().clone(),
        )
    }

    fn query(pairs: &[(&str, &str)]) -> CompiledQuery {
        CompiledQuery {
            resource: "customers".into(),
            path: "/contacts".into(),
            query: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            page_size: Some(50),
            page: None,
            has_deleted_feed: true,
            local: None,
            warnings: vec![],
        }
    }

    fn position() -> PagePosition {
        PagePosition { cursor: "/contacts?page=2&items_per_page=50&contact_type_id=CUSTOMER".into(), page_size: 50 }
    }

    #[test]
    fn a_token_opens_for_its_instance_and_query_only() {
        let t = tokens(1);
        let q = QueryDigest::of("finance", &query(&[("contact_type_id", "CUSTOMER")]));
        let token = t.seal(7, &q, &position());
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        assert_eq!(t.open(&token, 7, &q), Ok(position()));
        // another node of the deployment (same master key) opens it
        assert_eq!(tokens(1).open(&token, 7, &q), Ok(position()));
        assert_eq!(t.open(&token, 8, &q), Err(TokenError::OtherInstance));
        let other = QueryDigest::of("finance", &query(&[("contact_type_id", "CUSTOMER"), ("search", "a")]));
        assert_eq!(t.open(&token, 7, &other), Err(TokenError::OtherQuery));
        assert_eq!(tokens(2).open(&token, 7, &q), Err(TokenError::Forged), "another deployment's key");
    }

    #[test]
    fn the_digest_is_the_query_not_its_page() {
        let mut a = query(&[("contact_type_id", "CUSTOMER")]);
        let d = QueryDigest::of("finance", &a);
        a.page_size = Some(10);
        a.page = Some(3);
        assert_eq!(QueryDigest::of("finance", &a), d);
        a.resource = "vendors".into();
        assert_ne!(QueryDigest::of("finance", &a), d);
        // pairs do not run into each other
        let ab = QueryDigest::of("finance", &query(&[("ab", "c")]));
        assert_ne!(ab, QueryDigest::of("finance", &query(&[("a", "bc")])));
    }

    #[test]
    fn altered_truncated_and_foreign_texts_are_refused() {
        let t = tokens(1);
        let q = QueryDigest::of("finance", &query(&[]));
        let token = t.seal(7, &q, &position());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        // a cursor rewritten to another page
        let at = bytes.len() - TAG_LEN - 30;
        bytes[at] ^= 1;
        assert_eq!(t.open(&URL_SAFE_NO_PAD.encode(&bytes), 7, &q), Err(TokenError::Forged));
        // another instance id written in
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[8] = 8;
        assert_eq!(t.open(&URL_SAFE_NO_PAD.encode(&bytes), 8, &q), Err(TokenError::Forged));
        for bad in [
            &token[..token.len() - 1],
            &token[..token.len() / 2],
            "",
            "2",
            "not a token!",
            "eyJwYWdlIjoyfQ",
            &"A".repeat(MAX_TOKEN_LEN + 1),
        ] {
            let got = t.open(bad, 7, &q);
            assert!(matches!(got, Err(TokenError::Malformed | TokenError::Forged)), "{bad}: {got:?}");
        }
        assert_eq!(t.open("2", 7, &q), Err(TokenError::Malformed));
    }
}
