//! UTF-8 validation for text that arrives in pieces.
//!
//! The connection keeps the bytes of a code point split across reads or frames in front
//! of the next input, so validation itself is stateless: every call sees the carried
//! bytes again, followed by the new ones.

/// Invalid UTF-8: a sequence that no continuation could make valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error {
    /// The length of the valid prefix before the invalid sequence.
    pub valid_up_to: usize,
}

impl core::fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "invalid UTF-8 after {} bytes", self.valid_up_to)
    }
}

impl core::error::Error for Utf8Error {}

/// Validates `bytes` as the continuation of a text stream that may be cut anywhere.
///
/// Returns the length of the longest prefix that ends on a character boundary; the rest
/// (at most 3 bytes) is the start of a character that may still be completed. Fails as
/// soon as the bytes cannot be the prefix of valid UTF-8 (fail-fast), even mid-character.
///
/// ```
/// use sockeye_proto::utf8::validate_prefix;
/// assert_eq!(validate_prefix("aé".as_bytes()), Ok(3));
/// assert_eq!(validate_prefix(&[b'a', 0xE2, 0x82]), Ok(1)); // "€" cut after two bytes
/// assert!(validate_prefix(&[b'a', 0xF4, 0x90]).is_err()); // beyond U+10FFFF already
/// ```
#[inline]
pub fn validate_prefix(bytes: &[u8]) -> Result<usize, Utf8Error> {
    match simdutf8::compat::from_utf8(bytes) {
        Ok(_) => Ok(bytes.len()),
        Err(error) => match error.error_len() {
            None => Ok(error.valid_up_to()),
            Some(_) => Err(Utf8Error {
                valid_up_to: error.valid_up_to(),
            }),
        },
    }
}

/// Like [`validate_prefix`], but returns the complete prefix as `&str`. Valid input is
/// scanned once; a second (short) pass runs only when a character is cut at the end.
///
/// ```
/// use sockeye_proto::utf8::complete_prefix;
/// assert_eq!(complete_prefix(&[b'o', b'k', 0xE2, 0x82]), Ok("ok"));
/// ```
#[inline]
pub fn complete_prefix(bytes: &[u8]) -> Result<&str, Utf8Error> {
    match simdutf8::compat::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) if error.error_len().is_none() => {
            validate_complete(&bytes[..error.valid_up_to()])
        }
        Err(error) => Err(Utf8Error {
            valid_up_to: error.valid_up_to(),
        }),
    }
}

/// Validates `bytes` as a whole: every character complete.
#[inline]
pub fn validate_complete(bytes: &[u8]) -> Result<&str, Utf8Error> {
    simdutf8::compat::from_utf8(bytes).map_err(|error| Utf8Error {
        valid_up_to: error.valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_of_valid_text_is_a_valid_prefix() {
        let text = "κόσμε €𝄞 ascii";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let n = validate_prefix(&bytes[..cut]).unwrap();
            assert!(text.is_char_boundary(n));
            assert!(cut - n < 4);
            assert!(n == cut || !text.is_char_boundary(cut));
        }
    }

    #[test]
    fn invalid_sequences_fail_before_they_complete() {
        for bad in [
            &[0xC0][..],
            &[0xED, 0xA0],
            &[0xF4, 0x90],
            &[0xF8],
            &[0x80],
            &[b'a', 0xE2, 0x28],
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate_complete(&[0xE2, 0x82]),
            Err(Utf8Error { valid_up_to: 0 })
        );
    }
}
