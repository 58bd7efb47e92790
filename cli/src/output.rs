//! Results on stdout: aligned `key: value` text for people, one JSON object with `--json`.
//!
//! Field names are the JSON keys and are stable; docs/cli.md lists them per command. Amounts are
//! decimal TON strings (`"1.5"`) next to integer nanoTON strings (`*_nano`), never floats.

use std::io::Write;

use clap::Args;
use serde_json::{Map, Value};

/// The `--json` switch of read commands.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct OutputArgs {
    /// Print one JSON object instead of text (stable field names, see docs/cli.md).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// One field's value: a JSON scalar or array, a nested object, or a list of objects.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Plain(Value),
    Nested(Fields),
    List(Vec<Fields>),
}

/// An ordered set of result fields; nested objects and lists of objects keep their order in text.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Fields {
    entries: Vec<(String, Entry)>,
}

impl Fields {
    /// No fields.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a field.
    pub(crate) fn add(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.entries
            .push((key.to_string(), Entry::Plain(value.into())));
        self
    }

    /// Adds a nested object.
    pub(crate) fn nest(mut self, key: &str, fields: Fields) -> Self {
        self.entries.push((key.to_string(), Entry::Nested(fields)));
        self
    }

    /// Adds a list of objects.
    pub(crate) fn list(mut self, key: &str, items: Vec<Fields>) -> Self {
        self.entries.push((key.to_string(), Entry::List(items)));
        self
    }

    /// Appends all of `other`'s fields.
    pub(crate) fn extend(mut self, other: Fields) -> Self {
        self.entries.extend(other.entries);
        self
    }

    /// Adds an amount as two fields: `key` (decimal TON) and `key_nano` (integer string).
    pub(crate) fn ton(self, key: &str, nanotons: u128) -> Self {
        self.add(key, cocoon_ton::format_ton(nanotons))
            .add(&format!("{key}_nano"), nanotons.to_string())
    }

    /// The JSON object.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (k, v) in &self.entries {
            let value = match v {
                Entry::Plain(v) => v.clone(),
                Entry::Nested(f) => f.to_json(),
                Entry::List(items) => Value::Array(items.iter().map(Fields::to_json).collect()),
            };
            map.insert(k.clone(), value);
        }
        Value::Object(map)
    }

    /// The text form: one `key  value` line per field, nested objects indented.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, 0);
        out
    }

    fn write_text(&self, out: &mut String, indent: usize) {
        let width = self
            .entries
            .iter()
            .filter(|(_, v)| matches!(v, Entry::Plain(_)))
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0);
        let pad = " ".repeat(indent);
        for (key, entry) in &self.entries {
            match entry {
                Entry::Plain(value) => {
                    out.push_str(&format!("{pad}{key:width$}  {}\n", scalar(value)));
                }
                Entry::Nested(fields) => {
                    out.push_str(&format!("{pad}{key}:\n"));
                    fields.write_text(out, indent + 2);
                }
                Entry::List(items) if items.is_empty() => {
                    out.push_str(&format!("{pad}{key}: (none)\n"));
                }
                Entry::List(items) => {
                    out.push_str(&format!("{pad}{key}: {}\n", items.len()));
                    for item in items {
                        out.push_str(&format!("{pad}  -\n"));
                        item.write_text(out, indent + 4);
                    }
                }
            }
        }
    }

    /// Prints the fields on stdout as text or JSON.
    pub(crate) fn print(&self, json: bool) -> anyhow::Result<()> {
        let text = if json {
            let mut s = serde_json::to_string_pretty(&self.to_json())?;
            s.push('\n');
            s
        } else {
            self.to_text()
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        Value::Array(items) if items.is_empty() => "(none)".to_string(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Prints one diagnostic line on stderr.
pub(crate) fn note(message: impl std::fmt::Display) {
    eprintln!("{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_aligns_and_json_keeps_every_field() {
        let f = Fields::new()
            .add("address", "EQabc")
            .ton("balance", 1_500_000_000)
            .nest("wallet", Fields::new().add("seqno", 3).add("active", true))
            .add("models", Vec::<Value>::new());
        let text = f.to_text();
        assert_eq!(
            text,
            "address       EQabc\nbalance       1.5\nbalance_nano  1500000000\n\
             wallet:\n  seqno   3\n  active  true\nmodels        (none)\n"
        );
        let json = f.to_json();
        assert_eq!(json["balance"], "1.5");
        assert_eq!(json["balance_nano"], "1500000000");
        assert_eq!(json["wallet"]["seqno"], 3);
    }
}
