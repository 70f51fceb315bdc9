//! Join tokens: HS256 JWTs signed with the server's secret.
//!
//! A token names the call, the participant's identity and display name, their role and languages, and an
//! expiry. Verification is explicit about time (`now` is passed in) so tests need no clock tricks.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, SignalError};
use crate::role::Role;
use crate::routing::InterpretationMode;

/// Longest accepted call id, identity or name, in bytes.
pub const MAX_FIELD_BYTES: usize = 128;
/// Most languages one token may carry.
pub const MAX_LANGUAGES: usize = 8;

/// The claims of a join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The call to join.
    pub call: String,
    /// Stable identity of the participant within the call (the JWT subject).
    #[serde(rename = "sub")]
    pub identity: String,
    /// Display name shown to the others.
    pub name: String,
    pub role: Role,
    /// Languages the participant speaks, as language codes (`ko`, `en`, `th`, …). For an interpreter,
    /// their pair.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// How the call is interpreted (`consecutive` when absent). Read from the token of the
    /// participant whose join creates the call; later joiners' modes are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<InterpretationMode>,
}

impl JoinClaims {
    /// Check the fields a token may not get wrong even when correctly signed.
    pub fn validate_fields(&self) -> Result<(), TokenError> {
        for (field, value) in [
            ("call", &self.call),
            ("sub", &self.identity),
            ("name", &self.name),
        ] {
            if value.is_empty() || value.len() > MAX_FIELD_BYTES {
                return Err(TokenError::BadClaim(format!(
                    "{field} must be 1 to {MAX_FIELD_BYTES} bytes"
                )));
            }
            if value.chars().any(char::is_control) {
                return Err(TokenError::BadClaim(format!(
                    "{field} contains control characters"
                )));
            }
        }
        if self.languages.len() > MAX_LANGUAGES {
            return Err(TokenError::BadClaim(format!(
                "at most {MAX_LANGUAGES} languages are allowed"
            )));
        }
        if let Some(bad) = self.languages.iter().find(|l| !is_language_code(l)) {
            return Err(TokenError::BadClaim(format!(
                "{bad:?} is not a language code (2-8 letters, optionally with a region, e.g. en or pt-BR)"
            )));
        }
        if self.role == Role::Interpreter {
            let mut distinct: Vec<&String> = self.languages.iter().collect();
            distinct.sort();
            distinct.dedup();
            if distinct.len() != 2 {
                return Err(TokenError::BadClaim(format!(
                    "an interpreter token needs exactly two different languages (the pair), not {:?}",
                    self.languages
                )));
            }
        }
        Ok(())
    }
}

/// A loose BCP 47 shape check: `en`, `ko`, `pt-BR`, `zh-Hant`.
pub fn is_language_code(code: &str) -> bool {
    let mut parts = code.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token's signature does not verify with this server's secret")]
    BadSignature,
    #[error("the token expired {0} s ago")]
    Expired(u64),
    #[error("the token is not valid for another {0} s")]
    NotYetValid(u64),
    #[error("the token has a bad claim: {0}")]
    BadClaim(String),
    #[error("could not sign the token: {0}")]
    Signing(String),
}

impl From<TokenError> for SignalError {
    fn from(err: TokenError) -> Self {
        let code = match err {
            TokenError::Expired(_) | TokenError::NotYetValid(_) => ErrorCode::TokenExpired,
            _ => ErrorCode::InvalidToken,
        };
        SignalError::new(code, err.to_string())
    }
}

/// Signs and verifies join tokens with one shared HS256 secret.
#[derive(Clone)]
pub struct TokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<secret>)")
    }
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        TokenKey {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Sign `claims` into a compact JWT.
    pub fn sign(&self, claims: &JoinClaims) -> Result<String, TokenError> {
        claims.validate_fields()?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Verify a token's signature, shape and validity at `now_unix` (seconds since the epoch).
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<JoinClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Time is checked below against the caller's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<JoinClaims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => {
                    TokenError::Malformed("only HS256 tokens are accepted".into())
                }
                ErrorKind::Json(inner) => TokenError::BadClaim(inner.to_string()),
                _ => TokenError::Malformed(e.to_string()),
            },
        )?;
        let claims = data.claims;
        if claims.exp <= now_unix {
            return Err(TokenError::Expired(now_unix - claims.exp));
        }
        if let Some(nbf) = claims.nbf
            && nbf > now_unix
        {
            return Err(TokenError::NotYetValid(nbf - now_unix));
        }
        claims.validate_fields()?;
        Ok(claims)
    }
}

/// Seconds since the Unix epoch, for callers with a real clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> JoinClaims {
        JoinClaims {
            call: "booth-3-0900".into(),
            identity: "buyer-1".into(),
            name: "Somchai".into(),
            role: Role::Buyer,
            languages: vec!["th".into()],
            exp,
            nbf: None,
            mode: None,
        }
    }

    #[test]
    fn signs_and_verifies() {
        let key = TokenKey::new(b"secret");
        let token = key.sign(&claims(2_000)).unwrap();
        assert_eq!(key.verify(&token, 1_000).unwrap(), claims(2_000));
    }

    #[test]
    fn refuses_expired_tokens() {
        let key = TokenKey::new(b"secret");
        let token = key.sign(&claims(1_000)).unwrap();
        assert_eq!(key.verify(&token, 1_030), Err(TokenError::Expired(30)));
        let err: SignalError = key.verify(&token, 1_030).unwrap_err().into();
        assert_eq!(err.code, ErrorCode::TokenExpired);
    }

    #[test]
    fn refuses_tokens_not_yet_valid() {
        let key = TokenKey::new(b"secret");
        let mut early = claims(5_000);
        early.nbf = Some(2_000);
        let token = key.sign(&early).unwrap();
        assert_eq!(key.verify(&token, 1_500), Err(TokenError::NotYetValid(500)));
    }

    #[test]
    fn refuses_forged_tokens() {
        let token = TokenKey::new(b"attacker").sign(&claims(2_000)).unwrap();
        assert_eq!(
            TokenKey::new(b"secret").verify(&token, 1_000),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn refuses_garbage_and_bad_claims() {
        let key = TokenKey::new(b"secret");
        assert!(matches!(
            key.verify("not.a.jwt", 0),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(key.verify("", 0), Err(TokenError::Malformed(_))));
        let mut bad = claims(2_000);
        bad.languages = vec!["english please".into()];
        assert!(matches!(key.sign(&bad), Err(TokenError::BadClaim(_))));
        bad.languages.clear();
        bad.name = String::new();
        assert!(matches!(key.sign(&bad), Err(TokenError::BadClaim(_))));
    }

    #[test]
    fn an_interpreter_token_carries_exactly_one_pair() {
        let key = TokenKey::new(b"secret");
        let mut interpreter = claims(2_000);
        interpreter.role = Role::Interpreter;
        for bad in [&[][..], &["ko"], &["ko", "ko"], &["ko", "en", "th"]] {
            interpreter.languages = bad.iter().map(|l| (*l).to_owned()).collect();
            assert!(
                matches!(key.sign(&interpreter), Err(TokenError::BadClaim(_))),
                "{bad:?}"
            );
        }
        // A pair, even written twice, is fine; so is a bilingual buyer.
        interpreter.languages = vec!["ko".into(), "en".into(), "ko".into()];
        let token = key.sign(&interpreter).unwrap();
        assert_eq!(key.verify(&token, 1_000).unwrap(), interpreter);
        let mut buyer = claims(2_000);
        buyer.languages = vec!["th".into(), "en".into(), "zh".into()];
        assert!(key.sign(&buyer).is_ok());
        // A token signed elsewhere with a bad pair is refused on verify too.
        interpreter.languages = vec!["ko".into()];
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &interpreter,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        let err: SignalError = key.verify(&forged, 1_000).unwrap_err().into();
        assert_eq!(err.code, ErrorCode::InvalidToken);
    }

    #[test]
    fn the_mode_claim_is_optional() {
        let key = TokenKey::new(b"secret");
        let mut simultaneous = claims(2_000);
        simultaneous.mode = Some(InterpretationMode::Simultaneous);
        let token = key.sign(&simultaneous).unwrap();
        assert_eq!(
            key.verify(&token, 1_000).unwrap().mode,
            Some(InterpretationMode::Simultaneous)
        );
        let body = serde_json::json!({"call":"c","sub":"i","name":"n","role":"buyer","exp":9_999,
                                      "mode":"whispered"});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(matches!(
            key.verify(&token, 0),
            Err(TokenError::BadClaim(_))
        ));
    }

    #[test]
    fn refuses_unknown_roles() {
        // A correctly signed token whose role is not one of ours.
        let key = TokenKey::new(b"secret");
        let body =
            serde_json::json!({"call":"c","sub":"i","name":"n","role":"janitor","exp":9_999});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(matches!(
            key.verify(&token, 0),
            Err(TokenError::BadClaim(_))
        ));
    }

    #[test]
    fn language_codes() {
        for ok in ["en", "ko", "th", "pt-BR", "zh-Hant"] {
            assert!(is_language_code(ok), "{ok}");
        }
        for bad in ["", "e", "english please", "en_", "en--US", "123"] {
            assert!(!is_language_code(bad), "{bad}");
        }
    }
}
