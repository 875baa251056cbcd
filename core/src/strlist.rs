//! Lists of short strings packed as `[length, bytes...]` records, built at compile time.
//!
//! On a microcontroller a table of `&str` costs eight bytes of flash per entry besides the text
//! (a pointer and a length); a packed record costs one. The key list of 32-bit targets, the
//! failure-reason patterns and the field names use this: lists read rarely or searched in
//! order anyway.

/// Bytes `items` take packed.
// `i < items.len()` guards the index; `const fn` cannot use `get`.
#[allow(clippy::indexing_slicing)]
pub(crate) const fn packed_len(items: &[&str]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < items.len() {
        n += 1 + items[i].len();
        i += 1;
    }
    n
}

/// `items` packed into `N` bytes (`N` is [`packed_len`] of them; each item is under 256 bytes).
// Indices stay below `N`, which counts exactly the bytes written (checked at compile time).
#[allow(clippy::indexing_slicing)]
pub(crate) const fn pack<const N: usize>(items: &[&str]) -> [u8; N] {
    assert!(
        packed_len(items) == N,
        "the list's length is not the packed length"
    );
    let mut out = [0u8; N];
    let (mut at, mut i) = (0, 0);
    while i < items.len() {
        let s = items[i].as_bytes();
        assert!(s.len() < 256, "an item too long for a one-byte length");
        out[at] = s.len() as u8;
        let mut j = 0;
        while j < s.len() {
            out[at + 1 + j] = s[j];
            j += 1;
        }
        at += 1 + s.len();
        i += 1;
    }
    out
}

/// The items of a packed list, in order (a malformed tail ends the list).
pub(crate) fn items(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = list;
    core::iter::from_fn(move || {
        let (len, tail) = rest.split_first()?;
        let (item, next) = tail.split_at_checked(usize::from(*len))?;
        rest = next;
        Some(item)
    })
}

/// The `i`-th item as text (`"?"` if there is none or it is not UTF-8).
pub(crate) fn nth_str(list: &[u8], i: usize) -> &str {
    items(list)
        .nth(i)
        .and_then(|s| core::str::from_utf8(s).ok())
        .unwrap_or("?")
}

/// A fieldless enum whose `Debug` prints the variant's name from a packed list (a derived
/// `Debug` keeps two tables of four bytes per variant).
macro_rules! packed_debug_enum {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident { $($(#[$vm:meta])* $v:ident,)* }
    ) => {
        $(#[$m])*
        $vis enum $name { $($(#[$vm])* $v,)* }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                const NAMES: &[&str] = &[$(stringify!($v)),*];
                static LIST: [u8; $crate::strlist::packed_len(NAMES)] =
                    $crate::strlist::pack(NAMES);
                f.write_str($crate::strlist::nth_str(&LIST, *self as usize))
            }
        }
    };
}
pub(crate) use packed_debug_enum;

#[cfg(test)]
mod tests {
    use super::*;

    const L: [&str; 3] = ["ab", "", "xyz"];
    static P: [u8; packed_len(&L)] = pack(&L);

    #[test]
    fn a_packed_list_gives_back_its_items() {
        assert_eq!(P.len(), 8);
        let got: alloc::vec::Vec<&[u8]> = items(&P).collect();
        assert_eq!(got, [&b"ab"[..], b"", b"xyz"]);
        assert_eq!(nth_str(&P, 2), "xyz");
        assert_eq!(nth_str(&P, 3), "?");
        // A truncated list ends early instead of failing.
        assert_eq!(items(&P[..5]).count(), 2);
    }

    packed_debug_enum! {
        #[derive(Clone, Copy)]
        enum Colour {
            Red,
            /// Documented variants keep their docs.
            DarkGreen,
            Blue,
        }
    }

    #[test]
    fn a_packed_debug_prints_the_variant_name() {
        let names = [Colour::Red, Colour::DarkGreen, Colour::Blue].map(|c| alloc::format!("{c:?}"));
        assert_eq!(names, ["Red", "DarkGreen", "Blue"]);
    }
}
