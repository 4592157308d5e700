//! Bearer tokens: random, shown once, stored only as a SHA-256 hash.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A new token: 256 random bits in hex, with a prefix that says what it is.
pub fn new_token() -> String {
    format!("tk_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// What the relay stores of a token.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.trim().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of an `Authorization: Bearer ...` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a), token_hash(&format!(" {a} ")));
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
