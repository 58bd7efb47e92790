//! Engine configuration, validated before anything is loaded or bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::EngineError;

/// Which backend serves requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The deterministic zero-latency echo backend ([`crate::FixedBackend`]); needs no model file.
    Fixed,
    /// A GGUF llama-family model on candle ([`crate::GgufBackend`]).
    #[default]
    Gguf,
}

impl std::str::FromStr for BackendKind {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fixed" => Ok(Self::Fixed),
            "gguf" => Ok(Self::Gguf),
            other => Err(EngineError::Config(format!(
                "unknown backend '{other}': expected 'fixed' or 'gguf'"
            ))),
        }
    }
}

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Which backend to run.
    pub backend: BackendKind,
    /// The GGUF file (required for [`BackendKind::Gguf`]).
    pub model_path: Option<PathBuf>,
    /// The model id clients send and `/v1/models` lists; default: the GGUF file stem, or
    /// [`crate::FIXED_MODEL_ID`] for the fixed backend.
    pub model_id: Option<String>,
    /// Compute threads for the GGUF backend (its own rayon pool); `None` = available cores.
    pub threads: Option<usize>,
    /// Concurrent generations; `None` = 2 for GGUF, 256 for fixed.
    pub slots: Option<usize>,
    /// Requests allowed to wait for a slot before new ones get 503 `engine_overloaded`;
    /// `None` = 64 for GGUF, 4096 for fixed.
    pub max_queued: Option<usize>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Caps the model's context length (prompt + completion tokens); `None` = the model's own.
    pub max_context: Option<usize>,
    /// Address the binary binds (`serve` takes an already bound listener instead).
    pub listen: SocketAddr,
}

/// Default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

impl EngineConfig {
    /// The fixed backend with defaults.
    pub fn fixed() -> Self {
        Self {
            backend: BackendKind::Fixed,
            model_path: None,
            model_id: None,
            threads: None,
            slots: None,
            max_queued: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_context: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// The GGUF backend on `model_path` with defaults.
    pub fn gguf(model_path: impl Into<PathBuf>) -> Self {
        Self {
            backend: BackendKind::Gguf,
            model_path: Some(model_path.into()),
            ..Self::fixed()
        }
    }

    /// Generation slots after defaults.
    pub fn effective_slots(&self) -> usize {
        self.slots.unwrap_or(match self.backend {
            BackendKind::Fixed => 256,
            BackendKind::Gguf => 2,
        })
    }

    /// Queue length after defaults.
    pub fn effective_max_queued(&self) -> usize {
        self.max_queued.unwrap_or(match self.backend {
            BackendKind::Fixed => 4096,
            BackendKind::Gguf => 64,
        })
    }

    /// Compute threads after defaults.
    pub fn effective_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// Checks the configuration without touching the network; the model file must exist.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |m: String| Err(EngineError::Config(m));
        if self.backend == BackendKind::Gguf {
            match &self.model_path {
                None => return bad("the gguf backend needs a model path (--model)".into()),
                Some(p) if !p.is_file() => {
                    return bad(format!("model file {} does not exist", p.display()));
                }
                Some(_) => {}
            }
        }
        if self.threads == Some(0) || self.threads.is_some_and(|t| t > 1024) {
            return bad("threads must be between 1 and 1024".into());
        }
        if self.slots == Some(0) || self.slots.is_some_and(|s| s > 65_536) {
            return bad("slots must be between 1 and 65536".into());
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > 1 << 30 {
            return bad("max body size must be between 1 KiB and 1 GiB".into());
        }
        if self.max_context.is_some_and(|c| c < 2) {
            return bad("max context must be at least 2 tokens".into());
        }
        if let Some(id) = &self.model_id
            && (id.is_empty() || id.len() > 256)
        {
            return bad("model id must be 1 to 256 characters".into());
        }
        Ok(())
    }
}

/// The model `make setup` fetches, under `.cache/models/` at the repository root.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The environment variable that names the model file when no flag or config value does.
pub const MODEL_PATH_ENV: &str = "COCOON_MODEL_PATH";

/// Where to look for the GGUF model, in this order: an explicit path (a `--model` flag or a config
/// value), then `$COCOON_MODEL_PATH`, then `.cache/models/` + [`DEFAULT_MODEL_FILE`] in the start
/// directory and each parent up to the repository root (the first one holding `.git`).
///
/// An explicit or environment path that does not exist is an error, not a reason to look further:
/// the user asked for that file.
#[derive(Debug, Clone)]
pub struct ModelSearch {
    /// the flag or config value, and the name to report it by (e.g. `--model`)
    pub explicit: Option<(PathBuf, String)>,
    /// the value of [`MODEL_PATH_ENV`], if set and not empty
    pub env: Option<PathBuf>,
    /// where the upward search starts (the current directory)
    pub start: PathBuf,
}

impl ModelSearch {
    /// The search for a process: `explicit` from the flag named `flag`, the real environment and the
    /// current directory.
    pub fn from_process(explicit: Option<&Path>, flag: &str) -> Self {
        Self {
            explicit: explicit.map(|p| (p.to_path_buf(), flag.to_string())),
            env: std::env::var_os(MODEL_PATH_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            start: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }

    /// The model file, or an error naming every place looked at.
    pub fn find(&self) -> Result<PathBuf, EngineError> {
        if let Some((path, flag)) = &self.explicit {
            return existing(path, flag);
        }
        if let Some(path) = &self.env {
            return existing(path, MODEL_PATH_ENV);
        }
        let candidates = cache_candidates(&self.start);
        if let Some(found) = candidates.iter().find(|p| p.is_file()) {
            return Ok(found.clone());
        }
        let flag = "--model";
        let mut msg = format!(
            "no model file found; looked at:\n  {flag}: not given\n  {MODEL_PATH_ENV}: not set"
        );
        for c in &candidates {
            msg.push_str(&format!("\n  {}: absent", c.display()));
        }
        msg.push_str(&format!(
            "\nrun `make setup` in the repository (it fetches {DEFAULT_MODEL_FILE} into .cache/models/), \
             or pass {flag} PATH or set {MODEL_PATH_ENV}"
        ));
        Err(EngineError::Config(msg))
    }
}

/// Finds the model as a binary does: `explicit` is the value of its `--model` flag.
pub fn locate_model(explicit: Option<&Path>) -> Result<PathBuf, EngineError> {
    ModelSearch::from_process(explicit, "--model").find()
}

fn existing(path: &Path, from: &str) -> Result<PathBuf, EngineError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(EngineError::Config(format!(
            "model file {} (from {from}) does not exist; run `make setup` for the default model",
            path.display()
        )))
    }
}

/// `.cache/models/<DEFAULT_MODEL_FILE>` in `start` and each parent, up to and including the first
/// directory that holds `.git` (the repository root), or up to `/` outside a repository.
fn cache_candidates(start: &Path) -> Vec<PathBuf> {
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let mut out = Vec::new();
    for dir in start.ancestors() {
        out.push(dir.join(".cache").join("models").join(DEFAULT_MODEL_FILE));
        if dir.join(".git").exists() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_values() {
        assert!(EngineConfig::fixed().validate().is_ok());
        assert!(
            EngineConfig::gguf("/nonexistent/model.gguf")
                .validate()
                .is_err()
        );
        let zero_slots = EngineConfig {
            slots: Some(0),
            ..EngineConfig::fixed()
        };
        assert!(zero_slots.validate().is_err());
        let zero_threads = EngineConfig {
            threads: Some(0),
            ..EngineConfig::fixed()
        };
        assert!(zero_threads.validate().is_err());
        assert!("fixed".parse::<BackendKind>().is_ok());
        assert!("gpu".parse::<BackendKind>().is_err());
    }

    fn search(dir: &Path, explicit: Option<PathBuf>, env: Option<PathBuf>) -> ModelSearch {
        ModelSearch {
            explicit: explicit.map(|p| (p, "--model".to_string())),
            env,
            start: dir.to_path_buf(),
        }
    }

    /// A fresh folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("cocoon-model-search-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A repository at `<tmp>/repo` with the model in `.cache/models/` and a nested folder.
    fn repo_with_model() -> (TempDir, PathBuf, PathBuf) {
        let tmp = TempDir::new();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join(".cache/models")).unwrap();
        std::fs::create_dir_all(repo.join("cli/src")).unwrap();
        let model = repo.join(".cache/models").join(DEFAULT_MODEL_FILE);
        std::fs::write(&model, b"gguf").unwrap();
        (tmp, repo, model)
    }

    #[test]
    fn model_is_found_from_any_folder_of_the_repository() {
        let (_tmp, repo, model) = repo_with_model();
        assert_eq!(search(&repo, None, None).find().unwrap(), model);
        assert_eq!(
            search(&repo.join("cli/src"), None, None).find().unwrap(),
            model
        );
    }

    #[test]
    fn flag_beats_environment_beats_cache() {
        let (tmp, repo, cached) = repo_with_model();
        let flag = tmp.path().join("flag.gguf");
        let env = tmp.path().join("env.gguf");
        std::fs::write(&flag, b"gguf").unwrap();
        std::fs::write(&env, b"gguf").unwrap();
        let s = search(&repo, Some(flag.clone()), Some(env.clone()));
        assert_eq!(s.find().unwrap(), flag);
        assert_eq!(search(&repo, None, Some(env.clone())).find().unwrap(), env);
        assert_eq!(search(&repo, None, None).find().unwrap(), cached);
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error_not_a_fallback() {
        let (tmp, repo, _) = repo_with_model();
        let gone = tmp.path().join("gone.gguf");
        let err = search(&repo, Some(gone.clone()), None)
            .find()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gone.gguf") && err.contains("--model"),
            "{err}"
        );
        let err = search(&repo, None, Some(gone))
            .find()
            .unwrap_err()
            .to_string();
        assert!(err.contains(MODEL_PATH_ENV), "{err}");
    }

    #[test]
    fn nothing_found_names_every_place_looked_and_stops_at_the_repository_root() {
        let tmp = TempDir::new();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("a/b")).unwrap();
        // a model above the repository root is not found
        std::fs::create_dir_all(tmp.path().join(".cache/models")).unwrap();
        std::fs::write(
            tmp.path().join(".cache/models").join(DEFAULT_MODEL_FILE),
            b"x",
        )
        .unwrap();
        let err = search(&repo.join("a/b"), None, None)
            .find()
            .unwrap_err()
            .to_string();
        for dir in [repo.join("a/b"), repo.join("a"), repo.clone()] {
            let c = dir.join(".cache/models").join(DEFAULT_MODEL_FILE);
            assert!(err.contains(&c.display().to_string()), "{err}");
        }
        let above = tmp.path().join(".cache/models").join(DEFAULT_MODEL_FILE);
        assert!(!err.contains(&above.display().to_string()), "{err}");
        assert!(
            err.contains("--model") && err.contains(MODEL_PATH_ENV) && err.contains("make setup"),
            "{err}"
        );
    }
}
