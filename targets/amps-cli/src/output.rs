//! Writing received messages to standard output: the data alone (default), a spark `-format`
//! template, or one JSON object per message with its headers.

use std::io::{self, BufWriter, Write};

use amps::Message;
use amps::core::codec::CommandKind;

use crate::conn::Failure;

/// A header a template can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Command,
    Topic,
    Data,
    Bookmark,
    SowKey,
    Timestamp,
    SubId,
    CorrelationId,
    Expiration,
    Length,
    Lease,
    Reason,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name.to_ascii_lowercase().replace('_', "").as_str() {
            "command" => Field::Command,
            "topic" => Field::Topic,
            "data" => Field::Data,
            "bookmark" => Field::Bookmark,
            "sowkey" => Field::SowKey,
            "timestamp" => Field::Timestamp,
            "subid" => Field::SubId,
            "correlationid" => Field::CorrelationId,
            "expiration" => Field::Expiration,
            "length" => Field::Length,
            "lease" | "leaseperiod" => Field::Lease,
            "reason" => Field::Reason,
            _ => return None,
        })
    }
}

/// A piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Field(Field),
}

/// How messages are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The payload alone.
    Data,
    /// One JSON object per message.
    Json,
    /// A `{field}` template.
    Template(Vec<Piece>),
}

impl Format {
    /// `None` → data; `json` → JSON; anything else a template (`{{` and `}}` are braces).
    pub(crate) fn parse(spec: Option<&str>) -> Result<Format, Failure> {
        let Some(spec) = spec else {
            return Ok(Format::Data);
        };
        if spec.eq_ignore_ascii_case("json") {
            return Ok(Format::Json);
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = spec;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("{{") || rest.starts_with("}}") {
                text.push(c);
                rest = &rest[2..];
            } else if c == '{' {
                let end = rest
                    .find('}')
                    .ok_or_else(|| Failure::Usage(format!("-format: unclosed `{{` in `{spec}`")))?;
                let name = &rest[1..end];
                let field = Field::parse(name).ok_or_else(|| {
                    Failure::Usage(format!(
                        "-format: unknown field `{{{name}}}` (command, topic, data, bookmark, \
                         sowkey, timestamp, subid, correlationid, expiration, length, lease, \
                         reason)"
                    ))
                })?;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Field(field));
                rest = &rest[end + 1..];
            } else {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Format::Template(pieces))
    }
}

/// Writes messages to standard output, buffered; [`Printer::flush`] when idle.
pub(crate) struct Printer {
    out: BufWriter<io::StdoutLock<'static>>,
    format: Format,
    delimiter: u8,
}

/// A message worth printing: records and deliveries; out-of-focus notices only with a format
/// that can tell them apart. Acks and group markers are never printed.
pub(crate) fn printable(m: &Message, format: &Format) -> bool {
    match m.command() {
        CommandKind::Publish | CommandKind::DeltaPublish | CommandKind::Sow => true,
        CommandKind::Oof => *format != Format::Data,
        _ => false,
    }
}

impl Printer {
    /// A printer for `format`, ending each message with `delimiter`.
    pub(crate) fn new(format: Format, delimiter: u8) -> Printer {
        Printer {
            out: BufWriter::with_capacity(64 << 10, io::stdout().lock()),
            format,
            delimiter,
        }
    }

    /// The format.
    pub(crate) fn format(&self) -> &Format {
        &self.format
    }

    /// Write `m`, if it is printable.
    pub(crate) fn print(&mut self, m: &Message) -> io::Result<()> {
        if !printable(m, &self.format) {
            return Ok(());
        }
        match &self.format {
            Format::Data => self.out.write_all(m.data())?,
            Format::Json => write_json(&mut self.out, m)?,
            Format::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Text(t) => self.out.write_all(t.as_bytes())?,
                        Piece::Field(f) => write_field(&mut self.out, m, *f)?,
                    }
                }
            }
        }
        self.out.write_all(&[self.delimiter])
    }

    /// Write a line of text (results that are not messages).
    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(&[self.delimiter])
    }

    /// Push what is buffered to standard output.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn write_field(out: &mut impl Write, m: &Message, f: Field) -> io::Result<()> {
    let text = match f {
        Field::Command => Some(m.command().to_string()),
        Field::Data => return out.write_all(m.data()),
        Field::Length => Some(m.data().len().to_string()),
        Field::Expiration => m.expiration().map(|e| e.to_string()),
        Field::Topic => m.topic().map(str::to_owned),
        Field::Bookmark => m.bookmark().map(str::to_owned),
        Field::SowKey => m.sow_key().map(str::to_owned),
        Field::Timestamp => m.timestamp().map(str::to_owned),
        Field::SubId => m.sub_id().map(str::to_owned),
        Field::CorrelationId => m.correlation_id().map(str::to_owned),
        Field::Lease => m.lease_period().map(str::to_owned),
        Field::Reason => m.reason().map(str::to_owned),
    };
    out.write_all(text.unwrap_or_default().as_bytes())
}

/// `{"command":"p","topic":"t",...,"data":"..."}`: the headers present, the payload as a
/// string (invalid UTF-8 replaced).
fn write_json(out: &mut impl Write, m: &Message) -> io::Result<()> {
    let mut obj = serde_json::Map::new();
    let mut put = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            obj.insert(k.to_owned(), v);
        }
    };
    let s = |v: Option<&str>| v.map(|x| serde_json::Value::from(x.to_owned()));
    put("command", Some(m.command().to_string().into()));
    put("topic", s(m.topic()));
    put("sub_id", s(m.sub_id()));
    put("sow_key", s(m.sow_key()));
    put("bookmark", s(m.bookmark()));
    put("timestamp", s(m.timestamp()));
    put("correlation_id", s(m.correlation_id()));
    put("expiration", m.expiration().map(Into::into));
    put("lease_period", s(m.lease_period()));
    put("reason", s(m.reason()));
    put(
        "data",
        Some(String::from_utf8_lossy(m.data()).into_owned().into()),
    );
    serde_json::to_writer(&mut *out, &obj).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_into_text_and_fields() {
        let f = Format::parse(Some("{command} {topic}:{data} {{x}}")).unwrap();
        assert_eq!(
            f,
            Format::Template(vec![
                Piece::Field(Field::Command),
                Piece::Text(" ".into()),
                Piece::Field(Field::Topic),
                Piece::Text(":".into()),
                Piece::Field(Field::Data),
                Piece::Text(" {x}".into()),
            ])
        );
        assert_eq!(
            Format::parse(Some("{sow_key},{SowKey}")).unwrap(),
            Format::Template(vec![
                Piece::Field(Field::SowKey),
                Piece::Text(",".into()),
                Piece::Field(Field::SowKey),
            ])
        );
        assert_eq!(Format::parse(Some("JSON")).unwrap(), Format::Json);
        assert_eq!(Format::parse(None).unwrap(), Format::Data);
    }

    #[test]
    fn bad_templates_are_usage_errors() {
        let e = Format::parse(Some("{nope}")).unwrap_err();
        assert!(
            matches!(&e, Failure::Usage(t) if t.contains("`{nope}`")),
            "{e:?}"
        );
        assert!(matches!(
            Format::parse(Some("{data")),
            Err(Failure::Usage(_))
        ));
    }
}
