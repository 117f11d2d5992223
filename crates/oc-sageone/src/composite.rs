//! The cursor of a composite resource (`items`: products, then services): which Sage list is being read, the
//! totals of the lists seen so far, and that list's own `$next`. It travels as the port's opaque
//! [`PageCursor::Next`](oc_model::ports::PageCursor::Next) text, so the engine reads a composite resource as it
//! reads any other: page after page until `next` is `None`.
//!
//! The text is `ocpoll-lists:1;{list};{totals};{next}`: `{list}` the index of the list, `{totals}` one entry per
//! list separated by `,` (empty when unknown), `{next}` Sage's `$next` of that list, empty to start it.

use oc_model::ports::ProviderError;

const PREFIX: &str = "ocpoll-lists:1;";

/// Where a read of a composite resource stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListsCursor {
    /// The index of the list being read.
    pub(crate) list: usize,
    /// The latest total of each list, when known.
    pub(crate) totals: Vec<Option<u64>>,
    /// Sage's `$next` in that list; `None` to read its first page.
    pub(crate) next: Option<String>,
}

impl ListsCursor {
    /// The start of a read of `lists` lists.
    pub(crate) fn start(lists: usize) -> ListsCursor {
        ListsCursor { list: 0, totals: vec![None; lists], next: None }
    }

    /// The text of the cursor.
    pub(crate) fn encode(&self) -> String {
        let totals: Vec<String> = self.totals.iter().map(|t| t.map(|t| t.to_string()).unwrap_or_default()).collect();
        format!("{PREFIX}{};{};{}", self.list, totals.join(","), self.next.as_deref().unwrap_or(""))
    }

    /// Reads a cursor of a resource of `lists` lists.
    pub(crate) fn decode(text: &str, lists: usize) -> Result<ListsCursor, ProviderError> {
        let bad = || ProviderError::Other(format!("not a cursor of a resource of {lists} sage lists: {text:?}"));
        let rest = text.strip_prefix(PREFIX).ok_or_else(bad)?;
        let mut parts = rest.splitn(3, ';');
        let (Some(list), Some(totals), Some(next)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let list: usize = list.parse().map_err(|_| bad())?;
        let totals: Vec<Option<u64>> = totals
            .split(',')
            .map(|t| if t.is_empty() { Ok(None) } else { t.parse().map(Some).map_err(|_| bad()) })
            .collect::<Result<_, _>>()?;
        if list >= lists || totals.len() != lists {
            return Err(bad());
        }
        Ok(ListsCursor { list, totals, next: (!next.is_empty()).then(|| next.to_string()) })
    }

    /// The sum of the totals, when every one is known.
    pub(crate) fn total(&self) -> Option<u64> {
        self.totals.iter().try_fold(0u64, |sum, t| t.map(|t| sum.saturating_add(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cursor: ListsCursor, text: &str) {
        assert_eq!(cursor.encode(), text);
        assert_eq!(ListsCursor::decode(text, cursor.totals.len()).unwrap(), cursor);
    }

    #[test]
    fn cursors_round_trip() {
        check(ListsCursor::start(2), "ocpoll-lists:1;0;,;");
        check(
            ListsCursor { list: 0, totals: vec![Some(450), Some(3)], next: Some("/products?page=2;x=1".into()) },
            "ocpoll-lists:1;0;450,3;/products?page=2;x=1",
        );
        check(ListsCursor { list: 1, totals: vec![Some(450), None], next: None }, "ocpoll-lists:1;1;450,;");
        assert_eq!(ListsCursor { list: 1, totals: vec![Some(4), Some(3)], next: None }.total(), Some(7));
        assert_eq!(ListsCursor::start(2).total(), None);
    }

    #[test]
    fn other_texts_are_refused() {
        for text in [
            "/products?page=2",
            "ocpoll-lists:1;2;,;",
            "ocpoll-lists:1;0;1;",
            "ocpoll-lists:1;x;,;",
            "ocpoll-lists:1;0;a,;",
        ] {
            assert!(ListsCursor::decode(text, 2).is_err(), "{text}");
        }
    }
}
