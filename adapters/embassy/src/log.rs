//! Logging that routes to `defmt` with the `defmt` feature and to nothing otherwise, so call
//! sites carry no `cfg`. Arguments must be integers, `&str` or types
//! that derive `defmt::Format` under the feature.

macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::info!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        {
            let _ = || ($($arg)*,);
        }
    }};
}

macro_rules! warning {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        {
            let _ = || ($($arg)*,);
        }
    }};
}

pub(crate) use {info, warning};
