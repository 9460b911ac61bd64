//! Timestamps as npm writes them: ISO 8601 in UTC with milliseconds (`2024-05-01T12:00:00.000Z`).
//! Stored as text so that they sort and compare as written.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const ISO_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub fn now_iso() -> String {
    iso(OffsetDateTime::now_utc())
}

pub fn iso(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(ISO_MILLIS)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_npm() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_714_564_800_123_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(iso(at), "2024-05-01T12:00:00.123Z");
        assert_eq!(now_iso().len(), 24);
    }
}
