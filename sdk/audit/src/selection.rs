//! Which records a proof bundle holds: the query of the gateway's `GET /cocoon/v1/bundle`, parsed by
//! the gateway and written by `cocoon receipt export`.

/// Longest `x-request-id` a gateway echoes, stores and selects by.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a request id can be echoed, stored and selected by as is: 1 to 128 characters of
/// `A-Z a-z 0-9 - _ . :` (UUIDs, ULIDs, OpenAI's `req_…`), nothing a log line or a header could be
/// confused by.
pub fn is_sane_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Which records go into a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Lowest record id (inclusive).
    pub from: Option<u64>,
    /// Highest record id (inclusive).
    pub to: Option<u64>,
    /// Only the last N records of the range.
    pub last: Option<usize>,
    /// Only the record of this `x-request-id`.
    pub request_id: Option<String>,
    /// Carry the request and response bytes (otherwise hashes only). Off unless asked for
    /// (`bodies=1`): the bytes are every prompt and answer.
    pub include_bodies: bool,
}

/// Why a bundle query was refused (the message is shown to the caller as is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectionError(String);

impl From<SelectionError> for String {
    fn from(e: SelectionError) -> String {
        e.0
    }
}

impl Selection {
    /// One record.
    pub fn one(id: u64) -> Self {
        Selection {
            from: Some(id),
            to: Some(id),
            ..Default::default()
        }
    }

    /// This selection with the request and response bytes (`bodies=1`).
    pub fn with_bodies(mut self) -> Self {
        self.include_bodies = true;
        self
    }

    /// Parses `id=N`, `from=N`, `to=N`, `last=N`, `request_id=ID` and `bodies=0|1` (default 0:
    /// hashes only) (`application/x-www-form-urlencoded`).
    pub fn from_query(query: &str) -> Result<Selection, SelectionError> {
        let mut s = Selection::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            s.set(&k, &v)?;
        }
        Ok(s)
    }

    fn set(&mut self, k: &str, v: &str) -> Result<(), SelectionError> {
        let num = || {
            v.parse::<u64>().map_err(|_| {
                SelectionError(format!("{k} must be a non-negative integer, not {v:?}"))
            })
        };
        match k {
            "id" => {
                let id = num()?;
                self.from = Some(id);
                self.to = Some(id);
            }
            "from" => self.from = Some(num()?),
            "to" => self.to = Some(num()?),
            "last" => {
                self.last = Some(
                    usize::try_from(num()?)
                        .map_err(|_| SelectionError("last is too large".into()))?,
                );
            }
            "request_id" if is_sane_request_id(v) => self.request_id = Some(v.to_owned()),
            "request_id" => {
                return Err(SelectionError(
                    "request_id must be 1 to 128 characters of A-Z a-z 0-9 - _ . :".into(),
                ));
            }
            "bodies" => {
                self.include_bodies = match v {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(SelectionError(format!("bodies must be 0 or 1, not {v:?}"))),
                }
            }
            _ => return Err(SelectionError(format!("unknown bundle parameter {k:?}"))),
        }
        Ok(())
    }

    /// The query string [`Selection::from_query`] reads back as this selection.
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from == to
        {
            q.append_pair("id", &from.to_string());
        } else {
            for (k, v) in [("from", self.from), ("to", self.to)] {
                if let Some(v) = v {
                    q.append_pair(k, &v.to_string());
                }
            }
        }
        if let Some(n) = self.last {
            q.append_pair("last", &n.to_string());
        }
        if let Some(r) = &self.request_id {
            q.append_pair("request_id", r);
        }
        if self.include_bodies {
            q.append_pair("bodies", "1");
        }
        q.finish()
    }

    /// Whether the record `id` (answering `request_id`) is in the selected range.
    pub fn contains(&self, id: u64, request_id: Option<&str>) -> bool {
        self.from.is_none_or(|f| id >= f)
            && self.to.is_none_or(|t| id <= t)
            && self
                .request_id
                .as_deref()
                .is_none_or(|r| request_id == Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_select_ranges_and_bodies() {
        let s = Selection::from_query("from=2&to=5&bodies=0").unwrap();
        assert_eq!((s.from, s.to, s.include_bodies), (Some(2), Some(5), false));
        assert!(s.contains(2, Some("a")) && s.contains(5, Some("a")));
        assert!(!s.contains(6, Some("a")) && !s.contains(1, Some("a")));
        let by_id = Selection::from_query("request_id=req_1").unwrap();
        assert!(by_id.contains(9, Some("req_1")) && !by_id.contains(9, Some("req_2")));
        assert!(Selection::from_query("request_id=a%20b").is_err());
        assert_eq!(Selection::from_query("id=7").unwrap(), Selection::one(7));
        assert_eq!(Selection::from_query("last=3").unwrap().last, Some(3));
        assert_eq!(Selection::from_query("").unwrap(), Selection::default());
        assert!(
            !Selection::default().include_bodies,
            "bodies only when asked"
        );
        assert!(Selection::from_query("bodies=1").unwrap().include_bodies);
        assert!(Selection::from_query("from=x").is_err());
        assert!(Selection::from_query("bodies=maybe").is_err());
        assert!(Selection::from_query("color=red").is_err());
    }

    #[test]
    fn a_selection_survives_its_query_string() {
        let cases = [
            Selection::default(),
            Selection::one(4),
            Selection {
                from: Some(2),
                to: None,
                last: Some(3),
                request_id: Some("app-7f3c.trace:1".into()),
                include_bodies: true,
            },
        ];
        for s in cases {
            assert_eq!(Selection::from_query(&s.to_query()).unwrap(), s, "{s:?}");
        }
    }

    #[test]
    fn sane_request_ids() {
        assert!(is_sane_request_id("3f2a-UUID_like.v1:7"));
        for bad in ["", "has space", "quote\"", "ünï", &"x".repeat(129)] {
            assert!(!is_sane_request_id(bad), "{bad:?}");
        }
    }
}
