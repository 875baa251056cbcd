//! [`Params`]: what the Python client takes as keyword arguments of its named commands
//! (`subscribe(topic, filter, options, timeout, sub_id)`, `sow(topic, filter, batch_size,
//! top_n, order_by, bookmark, …)`), as one builder every named method accepts. A filter alone
//! (`&str`), or `None`/`Some(filter)`, converts into it, so the short forms stay short:
//!
//! ```
//! use amps_host::Params;
//! use std::time::Duration;
//!
//! let by_filter: Params<'_> = "/qty > 100".into();
//! let none: Params<'_> = None.into();
//! let full = Params::filter("/qty > 100")
//!     .top_n(10)
//!     .order_by("/qty DESC")
//!     .batch_size(50)
//!     .options("oof")
//!     .timeout(Duration::from_secs(2));
//! # let _ = (by_filter, none, full);
//! ```

use std::time::Duration;

use amps_core::codec::Command;

/// Optional headers of a named command (see the module docs). Each is left out of the command
/// when not set; commands that do not use one ignore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    filter: Option<&'a str>,
    sub_id: Option<&'a str>,
    options: Option<&'a str>,
    bookmark: Option<&'a str>,
    order_by: Option<&'a str>,
    batch_size: Option<u64>,
    top_n: Option<u64>,
    timeout: Option<Duration>,
}

impl<'a> Params<'a> {
    /// Nothing set.
    pub const fn new() -> Self {
        Params {
            filter: None,
            sub_id: None,
            options: None,
            bookmark: None,
            order_by: None,
            batch_size: None,
            top_n: None,
            timeout: None,
        }
    }

    /// Start with a content filter.
    pub const fn filter(filter: &'a str) -> Self {
        Params::new().with_filter(filter)
    }

    /// The content filter (`f`).
    pub const fn with_filter(mut self, filter: &'a str) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The subscription id (`sub_id`): a stable one resumes a bookmark subscription after a
    /// restart; the client picks one otherwise.
    pub const fn sub_id(mut self, sub_id: &'a str) -> Self {
        self.sub_id = Some(sub_id);
        self
    }

    /// Command options (`o`), comma-separated: see [`amps_core::codec::options`].
    pub const fn options(mut self, options: &'a str) -> Self {
        self.options = Some(options);
        self
    }

    /// Where a subscription starts in the transaction log (`bm`): a bookmark, or
    /// [`crate::bookmark`]'s `EPOCH`, `NOW`, `MOST_RECENT`.
    pub const fn bookmark(mut self, bookmark: &'a str) -> Self {
        self.bookmark = Some(bookmark);
        self
    }

    /// The order of query results (`orderby`), e.g. `/qty DESC`.
    pub const fn order_by(mut self, order_by: &'a str) -> Self {
        self.order_by = Some(order_by);
        self
    }

    /// Records per `sow` message (`bs`; the client asks 10 when not set).
    pub const fn batch_size(mut self, n: u64) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// At most this many records (`top_n`).
    pub const fn top_n(mut self, n: u64) -> Self {
        self.top_n = Some(n);
        self
    }

    /// This command's time limit instead of the client's command timeout.
    pub const fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Whether a filter is set.
    pub(crate) fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// `cmd` with every parameter that is set.
    pub fn apply(&self, mut cmd: Command<'a>) -> Command<'a> {
        if let Some(v) = self.filter {
            cmd = cmd.filter(v);
        }
        if let Some(v) = self.sub_id {
            cmd = cmd.sub_id(v);
        }
        if let Some(v) = self.options {
            cmd = cmd.options(v);
        }
        if let Some(v) = self.bookmark {
            cmd = cmd.bookmark(v);
        }
        if let Some(v) = self.order_by {
            cmd = cmd.order_by(v);
        }
        if let Some(v) = self.batch_size {
            cmd = cmd.batch_size(v);
        }
        if let Some(v) = self.top_n {
            cmd = cmd.top_n(v);
        }
        if let Some(t) = self.timeout {
            cmd = cmd.timeout(t);
        }
        cmd
    }
}

impl<'a> From<&'a str> for Params<'a> {
    fn from(filter: &'a str) -> Self {
        Params::filter(filter)
    }
}

impl<'a> From<Option<&'a str>> for Params<'a> {
    fn from(filter: Option<&'a str>) -> Self {
        match filter {
            Some(f) => Params::filter(f),
            None => Params::new(),
        }
    }
}

impl<'a> From<&'a String> for Params<'a> {
    fn from(filter: &'a String) -> Self {
        Params::filter(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::codec::CommandKind;

    #[test]
    fn every_parameter_reaches_the_command_and_unset_ones_stay_out() {
        let p = Params::filter("/a = 1")
            .sub_id("s")
            .options("oof")
            .bookmark("0")
            .order_by("/a")
            .batch_size(5)
            .top_n(7)
            .timeout(Duration::from_millis(1500));
        let c = p.apply(Command::sow("t"));
        assert_eq!(c.kind, CommandKind::Sow);
        assert_eq!(
            (c.filter, c.sub_id, c.options, c.bookmark, c.order_by),
            (
                Some("/a = 1"),
                Some("s"),
                Some("oof"),
                Some("0"),
                Some("/a")
            )
        );
        assert_eq!((c.batch_size, c.top_n), (Some(5), Some(7)));
        assert_eq!(c.timeout.map(|t| t.as_millis()), Some(1500));
        let bare = Params::from(None).apply(Command::subscribe("t"));
        assert_eq!(bare, Command::subscribe("t"));
    }
}
