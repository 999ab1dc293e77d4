//! Why a token or request was refused: the one list, used for the
//! `WWW-Authenticate` error, the JSON body and the verdict metric.

/// Names why a request was not let through on its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No `Authorization: Bearer` credentials at all (or another scheme).
    Missing,
    /// Not a well-formed compact JWS, or several `Authorization` headers.
    Malformed,
    /// `exp` is in the past, beyond the leeway.
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    NotYetValid,
    /// The signature does not verify with the selected key.
    BadSignature,
    /// No key in the provider's key set matches the token's `kid`.
    UnknownKid,
    /// No provider is configured for the token's `iss`.
    WrongIssuer,
    /// The token's audience holds none of the provider's audiences.
    WrongAudience,
    /// The algorithm is `none`, unknown, outside the allowlist, or does not
    /// fit the key's type.
    DisallowedAlg,
    /// A required claim is missing, of the wrong type, or cannot be
    /// forwarded safely as a header value.
    InvalidClaims,
    /// The token is fine but the caller lacks every role the rule accepts.
    InsufficientRole,
    /// The provider has no usable keys at all: a fault on our side.
    NoKeys,
    /// The token verifies but was revoked: issued before the provider's
    /// cut-off, or its `jti` or `sub` is on the provider's denylist.
    Revoked,
}

impl Reason {
    /// Lists every reason, in the order used for metric handles.
    pub const ALL: [Reason; 13] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::BadSignature,
        Reason::UnknownKid,
        Reason::WrongIssuer,
        Reason::WrongAudience,
        Reason::DisallowedAlg,
        Reason::InvalidClaims,
        Reason::InsufficientRole,
        Reason::NoKeys,
        Reason::Revoked,
    ];

    /// Returns the stable snake_case label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::BadSignature => "bad_signature",
            Reason::UnknownKid => "unknown_kid",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::DisallowedAlg => "disallowed_alg",
            Reason::InvalidClaims => "invalid_claims",
            Reason::InsufficientRole => "insufficient_role",
            Reason::NoKeys => "no_keys",
            Reason::Revoked => "revoked",
        }
    }

    /// Returns the human-readable `error_description`.
    ///
    /// These are fixed phrases: nothing from the request is ever echoed, so
    /// a response cannot carry the token or attacker-chosen text.
    pub fn description(self) -> &'static str {
        match self {
            Reason::Missing => "a bearer token is required",
            Reason::Malformed => "the token is not a well-formed JWT",
            Reason::Expired => "the token has expired",
            Reason::NotYetValid => "the token is not valid yet",
            Reason::BadSignature => "the token signature is invalid",
            Reason::UnknownKid => "the token was signed with an unknown key",
            Reason::WrongIssuer => "the token issuer is not trusted",
            Reason::WrongAudience => "the token is not meant for this service",
            Reason::DisallowedAlg => "the token signing algorithm is not allowed",
            Reason::InvalidClaims => "the token claims are invalid",
            Reason::InsufficientRole => "the token lacks a role this route requires",
            Reason::NoKeys => "no signing keys are available to check the token",
            Reason::Revoked => "the token has been revoked",
        }
    }

    /// Returns this reason's position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_sits_at_its_own_index() {
        for (at, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), at, "{reason:?}");
        }
    }
}
