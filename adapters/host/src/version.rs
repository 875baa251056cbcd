//! The server's version, from its logon ack.

use std::fmt;

/// The version of the server the client is logged on to (the Python client's
/// `get_server_version_info()`), e.g. `5.3.5.0`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerVersion(String);

impl ServerVersion {
    pub(crate) fn new(text: &str) -> Option<ServerVersion> {
        (!text.is_empty()).then(|| ServerVersion(text.to_owned()))
    }

    /// The text as the server sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version as one number for comparisons, as the Python client's
    /// `get_server_version()` and `convert_version_to_number()` give it: two decimal digits per
    /// part after the first, four parts (`5.3.5.0` is 5030500, `5.2` is 5020000). `None` when
    /// a part is not a number below 100 (only the major part may be larger).
    pub fn number(&self) -> Option<u64> {
        let mut n: u64 = 0;
        let mut parts = 0;
        for (i, p) in self.0.split('.').take(4).enumerate() {
            // Servers may append a build tag to the last part (`5.3.5.0-abc`).
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            let v: u64 = digits.parse().ok()?;
            if i > 0 && v >= 100 {
                return None;
            }
            n = n.checked_mul(100)?.checked_add(v)?;
            parts += 1;
        }
        for _ in parts..4 {
            n = n.checked_mul(100)?;
        }
        Some(n)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_the_python_client_gives_them() {
        let n = |s: &str| ServerVersion::new(s).and_then(|v| v.number());
        assert_eq!(n("5.3.5.0"), Some(5_030_500));
        assert_eq!(n("5.2"), Some(5_020_000));
        assert_eq!(n("5.3.5.0-build7"), Some(5_030_500));
        assert_eq!(n("10.0.1.2"), Some(10_000_102));
        assert_eq!(n("5.x"), None);
        assert_eq!(n("5.300"), None);
        assert!(ServerVersion::new("").is_none());
    }
}
