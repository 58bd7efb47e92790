//! Configuration layering: defaults < TOML file < `COCOON_*` environment < command-line overrides.
//!
//! A role's config is a serde struct with `#[serde(default, deny_unknown_fields)]`. Every top-level key
//! `some_key` can be set by the environment variable `COCOON_SOME_KEY` and by the flag
//! `--set some_key=value` (dotted keys reach into tables). Values are TOML literals (`8080`, `true`,
//! `[1, 2]`); a value that is not a literal, or that lands on a key whose default is a string, is taken
//! as a string. Loading never binds a port: callers run [`Validate::validate`] next, then bind.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use toml::{Table, Value};

/// Configuration errors (all reported before anything starts).
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Parser message.
        message: String,
    },
    /// An override is not `key=value`.
    #[error("override `{0}` is not key=value")]
    BadOverride(String),
    /// The merged config does not fit the role's schema.
    #[error("invalid configuration: {0}")]
    Schema(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {field}: {message}")]
    Invalid {
        /// The key.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Semantic checks a role runs on its merged config.
pub trait Validate {
    /// Ok when the config can run.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Where a config comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Optional TOML file.
    pub file: Option<std::path::PathBuf>,
    /// Environment (normally `std::env::vars()`; tests pass their own).
    pub env: BTreeMap<String, String>,
    /// `key=value` overrides from the command line, applied last in order.
    pub overrides: Vec<String>,
}

impl Sources {
    /// File plus the process environment plus overrides.
    pub fn from_process(file: Option<&Path>, overrides: Vec<String>) -> Sources {
        Sources {
            file: file.map(Path::to_path_buf),
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
            overrides,
        }
    }
}

/// Prefix of environment variables.
pub const ENV_PREFIX: &str = "COCOON_";

/// A [`ConfigError::Invalid`] for config key `field`.
pub fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// Merges the layers into `T` and validates it.
pub fn load<T>(sources: &Sources) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default + Validate,
{
    let defaults = Table::try_from(T::default()).map_err(|e| ConfigError::Schema(e.to_string()))?;
    let mut merged = defaults.clone();
    if let Some(path) = &sources.file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: shown,
                message: e.message().to_owned(),
            })?;
        merge(&mut merged, file);
    }
    let mut keys: Vec<String> = defaults.keys().cloned().collect();
    keys.extend(merged.keys().cloned());
    keys.sort();
    keys.dedup();
    for key in &keys {
        let var = format!("{ENV_PREFIX}{}", key.to_uppercase());
        if let Some(raw) = sources.env.get(&var) {
            set_path(&mut merged, &defaults, key, raw)?;
        }
    }
    for item in &sources.overrides {
        let (key, raw) = item
            .split_once('=')
            .ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
        set_path(&mut merged, &defaults, key.trim(), raw)?;
    }
    let config: T = merged
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Schema(e.message().to_owned()))?;
    config.validate()?;
    Ok(config)
}

fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut Table, defaults: &Table, key: &str, raw: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return Err(ConfigError::BadOverride(key.to_owned()));
    };
    let mut default_here = Some(defaults);
    let mut here = table;
    for p in parents {
        default_here = default_here
            .and_then(|d| d.get(*p))
            .and_then(Value::as_table);
        let entry = here
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        here = match entry {
            Value::Table(t) => t,
            _ => return Err(ConfigError::BadOverride(key.to_owned())),
        };
    }
    let is_string = matches!(
        default_here.and_then(|d| d.get(*last)),
        Some(Value::String(_))
    );
    let value = if is_string {
        Value::String(raw.to_owned())
    } else {
        literal(raw)
    };
    here.insert(last.to_string(), value);
    Ok(())
}

fn literal(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        listen: String,
        port: u16,
        verbose: bool,
        limits: Limits,
    }
    #[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Limits {
        body: u64,
    }
    impl Default for Demo {
        fn default() -> Self {
            Demo {
                listen: "127.0.0.1".into(),
                port: 1,
                verbose: false,
                limits: Limits { body: 10 },
            }
        }
    }
    impl Validate for Demo {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.port == 0 {
                return Err(ConfigError::Invalid {
                    field: "port",
                    message: "must not be 0".into(),
                });
            }
            Ok(())
        }
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "port = 2\nverbose = true\n[limits]\nbody = 20\n").unwrap();
        let mut s = Sources {
            file: Some(file),
            ..Default::default()
        };
        let c: Demo = load(&s).unwrap();
        assert_eq!(
            (c.port, c.verbose, c.limits.body, c.listen.as_str()),
            (2, true, 20, "127.0.0.1")
        );
        s.env.insert("COCOON_PORT".into(), "3".into());
        s.env.insert("COCOON_LISTEN".into(), "10".into());
        let c: Demo = load(&s).unwrap();
        assert_eq!((c.port, c.listen.as_str()), (3, "10"));
        s.overrides = vec!["port=4".into(), "limits.body=30".into()];
        let c: Demo = load(&s).unwrap();
        assert_eq!((c.port, c.limits.body), (4, 30));
    }

    #[test]
    fn rejects_unknown_keys_bad_types_and_invalid_values() {
        let mut s = Sources {
            overrides: vec!["nope=1".into()],
            ..Default::default()
        };
        assert!(matches!(load::<Demo>(&s), Err(ConfigError::Schema(_))));
        s.overrides = vec!["port=\"x\"".into()];
        assert!(matches!(load::<Demo>(&s), Err(ConfigError::Schema(_))));
        s.overrides = vec!["port=0".into()];
        assert!(matches!(
            load::<Demo>(&s),
            Err(ConfigError::Invalid { field: "port", .. })
        ));
        s.overrides = vec!["port".into()];
        assert!(matches!(load::<Demo>(&s), Err(ConfigError::BadOverride(_))));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "port = [").unwrap();
        let s = Sources {
            file: Some(file),
            ..Default::default()
        };
        assert!(matches!(load::<Demo>(&s), Err(ConfigError::Parse { .. })));
    }
}
