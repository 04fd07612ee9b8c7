//! Standard Webhooks signatures: `v1,` and the base64 of HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of every secret, as Standard Webhooks writes them.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret.
const SECRET_BYTES: usize = 32;

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret (the base64 after `whsec_`).
fn key(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(b64).unwrap_or_else(|_| b64.as_bytes().to_vec())
}

/// The `webhook-signature` header of a message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key(secret)) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (checked with Python's hmac).
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_kepu_vector_agrees_with_an_independent_hmac() {
        // hmac.new(base64.b64decode("a2VwdS13ZWJob29rLXRlc3Qta2V5LTAxMjM0NTY3"),
        //          b'0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b.1764460800.{"type":"webhook.test"}',
        //          hashlib.sha256)
        let sig = sign(
            "whsec_a2VwdS13ZWJob29rLXRlc3Qta2V5LTAxMjM0NTY3",
            "0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b",
            1_764_460_800,
            r#"{"type":"webhook.test"}"#,
        );
        assert_eq!(sig, "v1,+y0u/s+rMgrO6f9G4hx+TIpXpwYBRraosBdxIQ8RcJs=");
    }

    #[test]
    fn new_secrets_are_random_and_long_enough() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(key(&a).len(), SECRET_BYTES);
    }
}
