//! [`Utf8Bytes`]: a [`Bytes`] known to hold UTF-8, the payload of a text message.

use std::borrow::Borrow;
use std::boxed::Box;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::string::String;
use std::vec::Vec;

use bytes::Bytes;

/// Text as shared bytes: a [`Bytes`] known to be UTF-8, the payload of
/// [`Message::Text`](crate::Message::Text). Cloning it copies no text (a reference count
/// goes up), so one message can go to many connections.
///
/// It reads as a `str` (`Deref`, [`as_str`](Self::as_str), comparisons with `str` and
/// `String`) and turns into [`Bytes`] without a copy.
///
/// ```
/// # use sockeye_engine::Utf8Bytes;
/// let hello = Utf8Bytes::from_static("hello");
/// assert_eq!(hello, "hello");
/// assert_eq!(hello.to_uppercase(), "HELLO");
///
/// let owned = Utf8Bytes::from(String::from("κόσμε"));
/// assert_eq!(owned.len(), 10);
///
/// // Bytes from elsewhere are checked once, here.
/// assert!(Utf8Bytes::try_from(vec![0xC3, 0xA9]).is_ok());
/// assert!(Utf8Bytes::try_from(vec![0xC3]).is_err());
/// ```
///
/// Reading it as a `str` checks the bytes again (at SIMD speed, a few GB/s and more),
/// because turning bytes into a `str` without a check takes `unsafe`, which this crate
/// forbids. Length, emptiness, equality, ordering and the byte views need no check.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utf8Bytes {
    /// Always valid UTF-8: every constructor takes a `str` or checks the bytes, and
    /// `Bytes` cannot be changed in place.
    bytes: Bytes,
}

impl Utf8Bytes {
    /// Text with a `'static` lifetime, taken without a copy.
    pub const fn from_static(text: &'static str) -> Self {
        Utf8Bytes {
            bytes: Bytes::from_static(text.as_bytes()),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The bytes are UTF-8 (see the field), so the check always passes; if it ever
        // did not, an empty string is a safer answer than a panic.
        simdutf8::basic::from_utf8(&self.bytes).unwrap_or_default()
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text's bytes, shared (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The text as a `String`: its own buffer, without a copy, when nothing else
    /// shares it (as a received message's text does not); otherwise a copy. Either way
    /// the bytes are checked once more (see the type's notes).
    pub fn into_string(self) -> String {
        match self.bytes.try_into_mut() {
            Ok(unique) => String::from_utf8(Vec::from(unique)).unwrap_or_default(),
            Err(shared) => String::from(Utf8Bytes { bytes: shared }.as_str()),
        }
    }

    /// The length in bytes (no check of the text).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// Hashes like the `str` it holds (as `Borrow<str>` requires), so a map keyed by
/// `Utf8Bytes` can be looked up with a `&str`.
impl Hash for Utf8Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

// Comparisons with the string types compare bytes: equal UTF-8 bytes are equal text.
impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.bytes == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.bytes == other.as_bytes()
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.bytes == other.as_bytes()
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        other == self
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        other == *self
    }
}

impl PartialEq<Utf8Bytes> for String {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        other == self
    }
}

/// Takes the string's buffer without a copy.
impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Utf8Bytes {
            bytes: Bytes::from(text.into_bytes()),
        }
    }
}

/// Copies the string (any lifetime). A literal can be taken without a copy with
/// [`Utf8Bytes::from_static`].
impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Utf8Bytes {
            bytes: Bytes::copy_from_slice(text.as_bytes()),
        }
    }
}

/// Copies the string.
impl From<&String> for Utf8Bytes {
    fn from(text: &String) -> Self {
        Utf8Bytes::from(text.as_str())
    }
}

/// Takes the string's buffer without a copy.
impl From<Box<str>> for Utf8Bytes {
    fn from(text: Box<str>) -> Self {
        Utf8Bytes::from(String::from(text))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.bytes
    }
}

/// Without a copy when nothing else shares the text (see [`Utf8Bytes::into_string`]).
impl From<Utf8Bytes> for String {
    fn from(text: Utf8Bytes) -> Self {
        text.into_string()
    }
}

/// Checks that the bytes are UTF-8; takes them without a copy.
impl TryFrom<Bytes> for Utf8Bytes {
    type Error = FromUtf8Error;

    fn try_from(bytes: Bytes) -> Result<Self, FromUtf8Error> {
        match simdutf8::compat::from_utf8(&bytes) {
            Ok(_) => Ok(Utf8Bytes { bytes }),
            Err(error) => Err(FromUtf8Error {
                valid_up_to: error.valid_up_to(),
                error_len: error.error_len(),
                bytes,
            }),
        }
    }
}

/// Checks that the bytes are UTF-8; takes them without a copy.
impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = FromUtf8Error;

    fn try_from(bytes: Vec<u8>) -> Result<Self, FromUtf8Error> {
        Utf8Bytes::try_from(Bytes::from(bytes))
    }
}

/// Bytes that are not UTF-8, from [`Utf8Bytes`]'s `TryFrom`: where the first bad
/// sequence is (as [`std::str::Utf8Error`] says it), and the bytes given back.
///
/// ```
/// # use sockeye_engine::Utf8Bytes;
/// let error = Utf8Bytes::try_from(b"ok\xFFrest".to_vec()).unwrap_err();
/// assert_eq!((error.valid_up_to(), error.error_len()), (2, Some(1)));
/// assert_eq!(error.into_bytes(), &b"ok\xFFrest"[..]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromUtf8Error {
    bytes: Bytes,
    valid_up_to: usize,
    error_len: Option<usize>,
}

impl FromUtf8Error {
    /// How many bytes from the start are valid UTF-8.
    pub fn valid_up_to(&self) -> usize {
        self.valid_up_to
    }

    /// The length of the invalid sequence after them; `None` when the input ended in
    /// the middle of a character (more bytes could have completed it).
    pub fn error_len(&self) -> Option<usize> {
        self.error_len
    }

    /// The bytes that were not UTF-8.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes that were not UTF-8, given back.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// Worded as [`std::str::Utf8Error`] words it.
impl fmt::Display for FromUtf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_len {
            Some(len) => write!(
                f,
                "invalid utf-8 sequence of {len} bytes from index {}",
                self.valid_up_to
            ),
            None => write!(
                f,
                "incomplete utf-8 byte sequence from index {}",
                self.valid_up_to
            ),
        }
    }
}

impl std::error::Error for FromUtf8Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn invalid_utf8_is_rejected_with_its_position() {
        for (bytes, valid_up_to, error_len) in [
            (&b"\xFF"[..], 0, Some(1)),
            (b"abc\xC3", 3, None),
            (b"ab\xE2\x82", 2, None),
            (b"a\xE2\x82z", 1, Some(2)),
            // A surrogate (U+D800) encoded in UTF-8 is not UTF-8.
            (b"\xED\xA0\x80", 0, Some(1)),
            (b"overlong \xC0\xAF", 9, Some(1)),
        ] {
            let from_vec = Utf8Bytes::try_from(bytes.to_vec()).unwrap_err();
            let from_bytes = Utf8Bytes::try_from(Bytes::copy_from_slice(bytes)).unwrap_err();
            assert_eq!(from_vec, from_bytes);
            let std = std::str::from_utf8(bytes).unwrap_err();
            assert_eq!(from_vec.valid_up_to(), valid_up_to, "{bytes:?}");
            assert_eq!(from_vec.valid_up_to(), std.valid_up_to(), "{bytes:?}");
            assert_eq!(from_vec.error_len(), error_len, "{bytes:?}");
            assert_eq!(from_vec.error_len(), std.error_len(), "{bytes:?}");
            assert_eq!(from_vec.as_bytes(), bytes);
            assert_eq!(from_vec.to_string(), std.to_string());
            assert_eq!(from_vec.into_bytes(), bytes);
        }
    }

    #[test]
    fn valid_utf8_is_taken_without_a_copy() {
        let text = "κόσμε €𝄞".to_owned();
        let at = text.as_ptr();
        let from_string = Utf8Bytes::from(text);
        assert_eq!(from_string, "κόσμε €𝄞");
        assert_eq!(from_string.as_bytes().as_ptr(), at);

        let bytes = from_string.clone().into_bytes();
        let checked = Utf8Bytes::try_from(bytes).unwrap();
        assert_eq!(checked.as_bytes().as_ptr(), at);
        assert_eq!(checked, from_string);
        assert_eq!(Bytes::from(checked).as_ptr(), at);

        let vec = b"plain".to_vec();
        let at_vec = vec.as_ptr();
        assert_eq!(
            Utf8Bytes::try_from(vec).unwrap().as_bytes().as_ptr(),
            at_vec
        );

        // Back to a `String`: its own buffer while nothing else shares it.
        let mut spare = String::with_capacity(64);
        spare.push_str("roomy");
        let at_spare = spare.as_ptr();
        let unique = Utf8Bytes::from(spare);
        assert_eq!(unique.as_bytes().as_ptr(), at_spare);
        let back = unique.into_string();
        assert_eq!((back.as_str(), back.as_ptr()), ("roomy", at_spare));
        assert!(back.capacity() >= 64);
        let exact = Utf8Bytes::from(String::from("exact"));
        let at_exact = exact.as_bytes().as_ptr();
        let exact = String::from(exact);
        assert_eq!(exact.as_ptr(), at_exact);
        // Shared (or static) text is copied.
        let shared = Utf8Bytes::from(String::from("shared"));
        let other = shared.clone();
        let copied = shared.into_string();
        assert_eq!(copied, "shared");
        assert_ne!(copied.as_ptr(), other.as_bytes().as_ptr());
        assert_eq!(Utf8Bytes::from_static("static").into_string(), "static");
    }

    #[test]
    fn conversions_keep_the_text() {
        const GREETING: Utf8Bytes = Utf8Bytes::from_static("hi");
        assert_eq!(GREETING, "hi");
        let static_text: &'static str = "static";
        let from_static = Utf8Bytes::from_static(static_text);
        assert_eq!(from_static.as_bytes().as_ptr(), static_text.as_ptr());
        // Any `&str` (and `&String`) is taken by copying it.
        let borrowed = String::from("borrowed");
        let from_str = Utf8Bytes::from(borrowed.as_str());
        assert_eq!(from_str, "borrowed");
        assert_ne!(from_str.as_bytes().as_ptr(), borrowed.as_ptr());
        assert_eq!(Utf8Bytes::from(&borrowed), from_str);
        assert_eq!(Utf8Bytes::from(static_text), from_static);
        assert_eq!(Utf8Bytes::from(Box::<str>::from("boxed")), "boxed");
        assert_eq!(Utf8Bytes::default(), "");
        assert!(Utf8Bytes::default().is_empty());
        assert_eq!(from_static.len(), 6);
        assert_eq!(from_static.clone().into_bytes(), &b"static"[..]);
        let as_str: &str = from_static.as_ref();
        let as_bytes: &[u8] = from_static.as_ref();
        assert_eq!((as_str, as_bytes), ("static", &b"static"[..]));
        // `Deref` to `str`: its methods work.
        assert!(from_static.starts_with("sta"));
    }

    #[test]
    fn equality_ordering_hashing_and_formatting_follow_the_text() {
        let a = Utf8Bytes::from("apple");
        let b = Utf8Bytes::from(String::from("banana"));
        assert_eq!(a, "apple");
        assert_eq!(a, *"apple");
        assert_eq!(a, String::from("apple"));
        assert_eq!("apple", a);
        assert_eq!(*"apple", a);
        assert_eq!(String::from("apple"), a);
        assert_ne!(a, b);
        assert_ne!(a, "apples");
        assert!(a < b);
        assert_eq!(
            Utf8Bytes::from("é").cmp(&Utf8Bytes::from("z")),
            "é".cmp("z")
        );

        let mut map = HashMap::new();
        map.insert(a.clone(), 1);
        assert_eq!(map.get("apple"), Some(&1));

        assert_eq!(format!("{a}"), "apple");
        assert_eq!(format!("{a:?}"), "\"apple\"");
        assert_eq!(format!("{:>7}", a), "  apple");
    }
}
