//! Settings by the sample's variable names (ARCHITECTURE §4): a command-line flag wins, then the
//! process environment, then `--env-file`s in order (later files win), then the dotenv files idp0
//! wrote in the data directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Variables read from the environment and dotenv files.
pub(crate) struct Settings(HashMap<String, String>);

impl Settings {
    /// Loads `env_files`, falling back to `<data_dir>/<default_file>` when none is given.
    pub(crate) fn load(
        env_files: &[PathBuf],
        data_dir: &Path,
        default_file: &str,
    ) -> anyhow::Result<Self> {
        let mut vars = HashMap::new();
        let default = data_dir.join(default_file);
        let files: Vec<PathBuf> = if env_files.is_empty() {
            default.exists().then_some(default).into_iter().collect()
        } else {
            env_files.to_vec()
        };
        for file in files {
            let entries = dotenvy::from_path_iter(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            for entry in entries {
                let (key, value) = entry.with_context(|| format!("parsing {}", file.display()))?;
                vars.insert(key, value);
            }
        }
        Ok(Self(vars))
    }

    /// A value: `flag`, else the process environment, else the files.
    pub(crate) fn get(&self, flag: Option<&str>, name: &str) -> Option<String> {
        flag.map(str::to_owned)
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(|| self.0.get(name).cloned().filter(|v| !v.is_empty()))
    }

    /// A required value, with an error that names the flag and the variable.
    pub(crate) fn require(
        &self,
        flag: Option<&str>,
        flag_name: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        self.get(flag, name).with_context(|| {
            format!("missing {flag_name} (or {name} in the environment or an --env-file)")
        })
    }
}
