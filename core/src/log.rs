//! One private logging macro family: routes to `defmt` or `log` when those features are on, to
//! nothing otherwise, so call sites carry no `cfg`. Arguments must be integers or `&str`
//! (formattable by both back ends).

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::debug!($($arg)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        log::debug!($($arg)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        {
            let _ = || ($($arg)*,);
        }
    }};
}

macro_rules! warning {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($($arg)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        log::warn!($($arg)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        {
            let _ = || ($($arg)*,);
        }
    }};
}

pub(crate) use {debug, warning};
