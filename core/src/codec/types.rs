//! Enumerations of the wire vocabulary: commands (docs/protocol.md §3), ack types (§5.1), statuses
//! (§5.2) and OOF reasons (§7.4).

use core::fmt;

/// The `c` header: what a frame is (docs/protocol.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CommandKind {
    /// `logon` (C→S, §6.1).
    // From 1, so `None` of an `Option<CommandKind>` is 0 and an empty header is all zeros: a
    // session's initial state is then zero-filled, not copied from a 304-byte template in flash.
    Logon = 1,
    /// `p` / `publish`: a publish (C→S) or a delivery (S→C).
    Publish,
    /// `delta_publish` (C→S, §6.3).
    DeltaPublish,
    /// `subscribe` (C→S, §6.4).
    Subscribe,
    /// `delta_subscribe` (C→S, §6.5).
    DeltaSubscribe,
    /// `sow`: a query (C→S) or a result batch (S→C, §7.2).
    Sow,
    /// `sow_and_subscribe` (C→S, §6.7).
    SowAndSubscribe,
    /// `sow_and_delta_subscribe` (C→S, §6.7).
    SowAndDeltaSubscribe,
    /// `sow_delete` (C→S, §6.8).
    SowDelete,
    /// `unsubscribe` (C→S, §6.9).
    Unsubscribe,
    /// `flush` (C→S, §6.10).
    Flush,
    /// `heartbeat` (both, §9).
    Heartbeat,
    /// `ack` (S→C, §5).
    Ack,
    /// `group_begin` (S→C, §7.3).
    GroupBegin,
    /// `group_end` (S→C, §7.3).
    GroupEnd,
    /// `oof` (S→C, §7.4).
    Oof,
    /// `start_timer` (legacy; acked and ignored, §3).
    StartTimer,
    /// `stop_timer` (legacy; acked and ignored, §3).
    StopTimer,
}

/// The wire names of [`CommandKind`] by discriminant (it starts at 1).
const COMMAND_NAMES: [&str; 19] = [
    "",
    "logon",
    "p",
    "delta_publish",
    "subscribe",
    "delta_subscribe",
    "sow",
    "sow_and_subscribe",
    "sow_and_delta_subscribe",
    "sow_delete",
    "unsubscribe",
    "flush",
    "heartbeat",
    "ack",
    "group_begin",
    "group_end",
    "oof",
    "start_timer",
    "stop_timer",
];

/// [`COMMAND_NAMES`] packed: what microcontrollers read, where a table of `&str` costs 152 B of
/// flash and a `match` of names some 300 B of code. Hosts, which read the names on every
/// encode and decode, keep the table and the `match`.
#[cfg(any(test, not(target_pointer_width = "64")))]
static COMMAND_LIST: [u8; crate::strlist::packed_len(&COMMAND_NAMES)] =
    crate::strlist::pack(&COMMAND_NAMES);

impl CommandKind {
    /// Every kind, for tests and tables.
    pub const ALL: [CommandKind; 18] = [
        CommandKind::Logon,
        CommandKind::Publish,
        CommandKind::DeltaPublish,
        CommandKind::Subscribe,
        CommandKind::DeltaSubscribe,
        CommandKind::Sow,
        CommandKind::SowAndSubscribe,
        CommandKind::SowAndDeltaSubscribe,
        CommandKind::SowDelete,
        CommandKind::Unsubscribe,
        CommandKind::Flush,
        CommandKind::Heartbeat,
        CommandKind::Ack,
        CommandKind::GroupBegin,
        CommandKind::GroupEnd,
        CommandKind::Oof,
        CommandKind::StartTimer,
        CommandKind::StopTimer,
    ];

    /// Parse a `c` value. `p` and `publish` both map to [`CommandKind::Publish`] (§3).
    pub fn from_wire(s: &[u8]) -> Option<CommandKind> {
        #[cfg(not(target_pointer_width = "64"))]
        return Self::from_list(s);
        #[cfg(target_pointer_width = "64")]
        Some(match s {
            b"p" | b"publish" => CommandKind::Publish,
            b"ack" => CommandKind::Ack,
            b"sow" => CommandKind::Sow,
            b"oof" => CommandKind::Oof,
            b"heartbeat" => CommandKind::Heartbeat,
            b"logon" => CommandKind::Logon,
            b"subscribe" => CommandKind::Subscribe,
            b"delta_publish" => CommandKind::DeltaPublish,
            b"delta_subscribe" => CommandKind::DeltaSubscribe,
            b"sow_and_subscribe" => CommandKind::SowAndSubscribe,
            b"sow_and_delta_subscribe" => CommandKind::SowAndDeltaSubscribe,
            b"sow_delete" => CommandKind::SowDelete,
            b"unsubscribe" => CommandKind::Unsubscribe,
            b"flush" => CommandKind::Flush,
            b"group_begin" => CommandKind::GroupBegin,
            b"group_end" => CommandKind::GroupEnd,
            b"start_timer" => CommandKind::StartTimer,
            b"stop_timer" => CommandKind::StopTimer,
            _ => return None,
        })
    }

    /// [`CommandKind::from_wire`] searching [`COMMAND_LIST`].
    #[cfg(any(test, not(target_pointer_width = "64")))]
    fn from_list(s: &[u8]) -> Option<CommandKind> {
        if s == b"publish" {
            return Some(CommandKind::Publish);
        }
        let i = crate::strlist::items(&COMMAND_LIST).position(|k| k == s)?;
        // Item 0 is the empty name before `Logon`.
        CommandKind::ALL.get(i.checked_sub(1)?).copied()
    }

    /// The value encoders send: `p` for publish (§3), full names otherwise.
    pub fn wire_name(self) -> &'static str {
        #[cfg(target_pointer_width = "64")]
        return COMMAND_NAMES.get(self as usize).copied().unwrap_or("");
        #[cfg(not(target_pointer_width = "64"))]
        crate::strlist::nth_str(&COMMAND_LIST, self as usize)
    }

    /// True for commands that create a subscription (§6.4–§6.7).
    pub const fn is_subscribe(self) -> bool {
        matches!(
            self,
            CommandKind::Subscribe
                | CommandKind::DeltaSubscribe
                | CommandKind::SowAndSubscribe
                | CommandKind::SowAndDeltaSubscribe
        )
    }

    /// True for commands that run a SOW query (§6.6, §6.7).
    pub const fn is_sow_query(self) -> bool {
        matches!(
            self,
            CommandKind::Sow | CommandKind::SowAndSubscribe | CommandKind::SowAndDeltaSubscribe
        )
    }

    /// True for state-changing commands a publish store sequences (§8.4).
    pub const fn is_sequenced(self) -> bool {
        matches!(
            self,
            CommandKind::Publish | CommandKind::DeltaPublish | CommandKind::SowDelete
        )
    }

    /// The acks this command can produce (docs/protocol.md §5.3 support matrix).
    pub const fn supported_acks(self) -> AckTypes {
        use AckType::*;
        match self {
            CommandKind::Logon => AckTypes::of(Received).with(Processed),
            CommandKind::Publish | CommandKind::DeltaPublish => AckTypes::of(Received)
                .with(Processed)
                .with(Completed)
                .with(Persisted),
            CommandKind::Subscribe => AckTypes::of(Received)
                .with(Processed)
                .with(Completed)
                .with(Persisted),
            CommandKind::DeltaSubscribe => AckTypes::of(Received)
                .with(Processed)
                .with(Completed)
                .with(Persisted)
                .with(Stats),
            CommandKind::Sow | CommandKind::SowAndSubscribe | CommandKind::SowAndDeltaSubscribe => {
                AckTypes::of(Received)
                    .with(Processed)
                    .with(Completed)
                    .with(Stats)
            }
            CommandKind::SowDelete => AckTypes::of(Received)
                .with(Processed)
                .with(Completed)
                .with(Persisted)
                .with(Stats),
            CommandKind::Unsubscribe | CommandKind::Heartbeat => {
                AckTypes::of(Received).with(Processed)
            }
            CommandKind::Flush => AckTypes::of(Received)
                .with(Processed)
                .with(Completed)
                .with(Persisted),
            CommandKind::StartTimer | CommandKind::StopTimer => {
                AckTypes::of(Received).with(Processed)
            }
            CommandKind::Ack
            | CommandKind::GroupBegin
            | CommandKind::GroupEnd
            | CommandKind::Oof => AckTypes::NONE,
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// One acknowledgement type (docs/protocol.md §5.1). The discriminant is the client bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AckType {
    /// `received`: the command arrived.
    Received = 1,
    /// `parsed`: exists in client enums; never produced.
    Parsed = 2,
    /// `processed`: the command was processed; carries errors.
    Processed = 4,
    /// `persisted`: durable.
    Persisted = 8,
    /// `completed`: the command (or its immediate part) finished.
    Completed = 16,
    /// `stats`: counters after completion.
    Stats = 32,
}

impl AckType {
    /// In the order the wire lists them and acks arrive (§5.4).
    pub const ALL: [AckType; 6] = [
        AckType::Received,
        AckType::Parsed,
        AckType::Processed,
        AckType::Persisted,
        AckType::Completed,
        AckType::Stats,
    ];

    /// Parse one wire name (case-insensitive).
    pub fn from_wire(s: &str) -> Option<AckType> {
        let s = s.trim();
        AckType::ALL
            .into_iter()
            .find(|a| a.wire_name().eq_ignore_ascii_case(s))
    }

    /// The wire name.
    pub const fn wire_name(self) -> &'static str {
        match self {
            AckType::Received => "received",
            AckType::Parsed => "parsed",
            AckType::Processed => "processed",
            AckType::Persisted => "persisted",
            AckType::Completed => "completed",
            AckType::Stats => "stats",
        }
    }
}

impl fmt::Display for AckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// A set of [`AckType`]s, as requested in a command's `a` header (`"processed,completed"`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AckTypes(u8);

impl AckTypes {
    /// The empty set (`none`).
    pub const NONE: AckTypes = AckTypes(0);

    /// A set of one.
    pub const fn of(a: AckType) -> AckTypes {
        AckTypes(a as u8)
    }
    /// This set plus `a`.
    pub const fn with(self, a: AckType) -> AckTypes {
        AckTypes(self.0 | a as u8)
    }
    /// This set without `a`.
    pub const fn without(self, a: AckType) -> AckTypes {
        AckTypes(self.0 & !(a as u8))
    }
    /// Union.
    pub const fn union(self, o: AckTypes) -> AckTypes {
        AckTypes(self.0 | o.0)
    }
    /// Intersection.
    pub const fn intersect(self, o: AckTypes) -> AckTypes {
        AckTypes(self.0 & o.0)
    }
    /// Membership.
    pub const fn contains(self, a: AckType) -> bool {
        self.0 & a as u8 != 0
    }
    /// True for the empty set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The raw bits (the client enum values of §5.1).
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Members in wire order.
    pub fn iter(self) -> impl Iterator<Item = AckType> {
        AckType::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// Parse a comma list; `none` and empty items are ignored. Unknown names are returned as
    /// `Err(name)` so a caller can decide (the broker ignores them, §5.3).
    pub fn parse(s: &str) -> Result<AckTypes, &str> {
        let mut set = AckTypes::NONE;
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() || item.eq_ignore_ascii_case("none") {
                continue;
            }
            set = set.with(AckType::from_wire(item).ok_or(item)?);
        }
        Ok(set)
    }

    /// Bytes of the comma-separated wire form (`Display`, and the `a` field a command writes).
    pub fn wire_len(self) -> usize {
        self.iter()
            .map(|a| a.wire_name().len() + 1)
            .sum::<usize>()
            .saturating_sub(1)
    }
}

impl fmt::Debug for AckTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for AckTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, a) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(a.wire_name())?;
        }
        Ok(())
    }
}

impl From<AckType> for AckTypes {
    fn from(a: AckType) -> Self {
        AckTypes::of(a)
    }
}

impl core::ops::BitOr for AckType {
    type Output = AckTypes;
    fn bitor(self, rhs: AckType) -> AckTypes {
        AckTypes::of(self).with(rhs)
    }
}

impl core::ops::BitOr<AckType> for AckTypes {
    type Output = AckTypes;
    fn bitor(self, rhs: AckType) -> AckTypes {
        self.with(rhs)
    }
}

/// The `status` of an ack (docs/protocol.md §5.2), compared case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `success`.
    Success,
    /// `failure`; the ack's `reason` says why (§15).
    Failure,
    /// `retry`: a logon challenge (§8.2) or "try again".
    Retry,
}

impl Status {
    /// Parse (case-insensitive). Unknown text is `None`.
    pub fn from_wire(s: &str) -> Option<Status> {
        if s.eq_ignore_ascii_case("success") {
            Some(Status::Success)
        } else if s.eq_ignore_ascii_case("failure") {
            Some(Status::Failure)
        } else if s.eq_ignore_ascii_case("retry") {
            Some(Status::Retry)
        } else {
            None
        }
    }
    /// The wire text (lowercase).
    pub const fn wire_name(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Retry => "retry",
        }
    }
}

/// Why a record went out of focus (docs/protocol.md §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OofReason {
    /// `match`: the record no longer matches (payload: the updated record).
    Match,
    /// `deleted` (also `delete`, §17.7): removed by sow_delete (payload: the previous record).
    Deleted,
    /// `expired`: SOW expiration.
    Expired,
    /// `entitlement`: the user lost permission.
    Entitlement,
    /// Any other text.
    Other,
}

impl OofReason {
    /// Parse (case-insensitive); unknown text is [`OofReason::Other`].
    pub fn from_wire(s: &str) -> OofReason {
        if s.eq_ignore_ascii_case("match") {
            OofReason::Match
        } else if s.eq_ignore_ascii_case("deleted") || s.eq_ignore_ascii_case("delete") {
            OofReason::Deleted
        } else if s.eq_ignore_ascii_case("expired") {
            OofReason::Expired
        } else if s.eq_ignore_ascii_case("entitlement") {
            OofReason::Entitlement
        } else {
            OofReason::Other
        }
    }
    /// The wire text the broker sends.
    pub const fn wire_name(self) -> &'static str {
        match self {
            OofReason::Match => "match",
            OofReason::Deleted => "deleted",
            OofReason::Expired => "expired",
            OofReason::Entitlement => "entitlement",
            OofReason::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_round_trip() {
        for k in CommandKind::ALL {
            assert_eq!(CommandKind::from_wire(k.wire_name().as_bytes()), Some(k));
        }
        assert_eq!(
            CommandKind::from_wire(b"publish"),
            Some(CommandKind::Publish)
        );
        assert_eq!(CommandKind::from_wire(b"bogus"), None);
    }

    /// The packed list of microcontrollers names and finds what the table and `match` do.
    #[test]
    fn command_list_agrees_with_the_match() {
        for (i, k) in CommandKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i + 1);
            assert_eq!(
                crate::strlist::nth_str(&COMMAND_LIST, k as usize),
                k.wire_name()
            );
        }
        let names = CommandKind::ALL.map(CommandKind::wire_name);
        for s in names
            .iter()
            .chain(&["publish", "", "bogus", "logo", "logonx", "P"])
        {
            let b = s.as_bytes();
            assert_eq!(
                CommandKind::from_list(b),
                CommandKind::from_wire(b),
                "{s:?}"
            );
        }
    }

    #[test]
    fn ack_sets_parse_and_print_in_wire_order() {
        let s = AckTypes::parse("stats, Completed,processed,,none").unwrap();
        assert_eq!(s.to_string(), "processed,completed,stats");
        assert_eq!(s.wire_len(), "processed,completed,stats".len());
        assert_eq!(AckTypes::parse("processed,bogus"), Err("bogus"));
        assert_eq!(AckTypes::NONE.to_string(), "none");
    }

    #[test]
    fn support_matrix_follows_protocol_5_3() {
        assert!(
            !CommandKind::Logon
                .supported_acks()
                .contains(AckType::Completed)
        );
        assert!(CommandKind::Sow.supported_acks().contains(AckType::Stats));
        assert!(
            !CommandKind::Subscribe
                .supported_acks()
                .contains(AckType::Stats)
        );
        assert!(
            CommandKind::DeltaSubscribe
                .supported_acks()
                .contains(AckType::Stats)
        );
        assert!(
            !CommandKind::Sow
                .supported_acks()
                .contains(AckType::Persisted)
        );
    }

    #[test]
    fn statuses_and_reasons_are_case_insensitive() {
        assert_eq!(Status::from_wire("SUCCESS"), Some(Status::Success));
        assert_eq!(Status::from_wire("nope"), None);
        assert_eq!(OofReason::from_wire("delete"), OofReason::Deleted);
        assert_eq!(OofReason::from_wire("whatever"), OofReason::Other);
    }
}
