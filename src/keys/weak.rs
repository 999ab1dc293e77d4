//! Keys a key document may hold that must never be trusted, refused when
//! the document is read so that each is skipped with a reason.
//!
//! The crypto backend parses these without complaint. Some it then
//! refuses at every check (an RSA modulus of 2,047 bits, an even
//! exponent), which left a key that looked loaded but refused every
//! token as a bad signature. One it does not refuse: an Ed25519 public
//! key of small order verifies a constant signature for any message
//! (RFC 8032 section 5.1.7 does not ask verifiers to reject it), so a key
//! set holding one would let anyone mint tokens.

/// The RSA modulus sizes the backend verifies with (its
/// `RSA_*_2048_8192_*` parameters); 2048 bits is also the floor NIST SP
/// 800-131A sets for RSA signatures.
const RSA_MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// The longest public exponent the backend accepts, in bits.
const RSA_EXPONENT_MAX_BITS: usize = 33;

/// The y coordinates (little-endian, sign bit clear) of the eight points
/// of order dividing 8 on edwards25519: the identity (y = 1), the point
/// of order 2 (y = p - 1), those of order 4 (y = 0) and of order 8.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = [
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
];

/// Says why an RSA key (big-endian, leading zeros stripped) must not be
/// used, or `None` when it may.
pub(super) fn rsa_weakness(n: &[u8], e: &[u8]) -> Option<String> {
    let bits = bit_length(n);
    if bits < *RSA_MODULUS_BITS.start() {
        return Some(format!("RSA modulus of {bits} bits is too small"));
    }
    if bits > *RSA_MODULUS_BITS.end() {
        return Some(format!("RSA modulus of {bits} bits is too large"));
    }
    if n.last().is_none_or(|low| low % 2 == 0) {
        return Some("RSA modulus is even".into());
    }
    if e.is_empty() {
        return Some("RSA exponent is zero".into());
    }
    if e == [1] || e.last().is_none_or(|low| low % 2 == 0) {
        return Some("RSA exponent is 1 or even".into());
    }
    if bit_length(e) > RSA_EXPONENT_MAX_BITS {
        return Some(format!(
            "RSA exponent is longer than {RSA_EXPONENT_MAX_BITS} bits"
        ));
    }
    None
}

/// Says why a 32-byte Ed25519 public key must not be used, or `None` when
/// it may: a non-canonical encoding (y not below p) or a point of small
/// order, whatever the sign bit.
pub(super) fn ed25519_weakness(x: &[u8]) -> Option<&'static str> {
    let mut y: [u8; 32] = x.try_into().ok()?;
    y[31] &= 0x7f;
    // p = 2^255 - 19: y >= p only when every byte above the lowest is
    // all ones (0x7f at the top) and the lowest is at least 0xed.
    if y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed {
        return Some("Ed25519 key is not canonically encoded");
    }
    if ED25519_SMALL_ORDER_Y.contains(&y) {
        return Some("Ed25519 key is a point of small order");
    }
    None
}

fn bit_length(number: &[u8]) -> usize {
    let Some(at) = number.iter().position(|&b| b != 0) else {
        return 0;
    };
    (number.len() - at) * 8 - number[at].leading_zeros() as usize
}

const fn hex32(text: &str) -> [u8; 32] {
    let text = text.as_bytes();
    let mut out = [0u8; 32];
    let mut at = 0;
    while at < 32 {
        out[at] = nibble(text[2 * at]) << 4 | nibble(text[2 * at + 1]);
        at += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bit_length_counts_from_the_highest_set_bit() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x7f, 0]), 15);
        assert_eq!(bit_length(&[0x80, 0]), 16);
    }

    #[test]
    fn rsa_keys_outside_what_the_backend_verifies_with_are_weak() {
        let mut n = vec![0xc3u8; 256];
        assert_eq!(rsa_weakness(&n, &[1, 0, 1]), None);
        assert_eq!(rsa_weakness(&n, &[3]), None);
        n[0] = 0x7f;
        assert!(rsa_weakness(&n, &[1, 0, 1]).is_some(), "2047 bits");
        n[0] = 0xc3;
        for e in [&[][..], &[1], &[2], &[1, 0, 0], &[3, 0, 0, 0, 1]] {
            assert!(rsa_weakness(&n, e).is_some(), "e = {e:?}");
        }
        n[255] = 0xc2;
        assert!(rsa_weakness(&n, &[1, 0, 1]).is_some(), "even modulus");
    }

    #[test]
    fn small_order_and_non_canonical_ed25519_keys_are_weak() {
        for y in ED25519_SMALL_ORDER_Y {
            let mut negative = y;
            negative[31] |= 0x80;
            assert!(ed25519_weakness(&y).is_some());
            assert!(ed25519_weakness(&negative).is_some());
        }
        let mut p_plus_one = [0xffu8; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        assert!(ed25519_weakness(&p_plus_one).is_some());
        let mut below_p = p_plus_one;
        below_p[0] = 0xeb;
        assert_eq!(ed25519_weakness(&below_p), None, "y = p - 2");
    }
}
