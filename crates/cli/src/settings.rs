//! Settings by the sample's variable names (ARCHITECTURE §4): a command-line flag wins, then the
//! process environment, then `--env-file`s in order (later files win), then the dotenv files idp0
//! wrote in the data directory. The files are read as the sample's own loader reads them
//! ([`devstack::dotenv`]), and a relative path in a file means a path beside that file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A value and the file it came from (`None`: the process environment or a flag).
struct Value {
    text: String,
    file: Option<PathBuf>,
}

/// Variables read from the environment and dotenv files.
pub(crate) struct Settings(HashMap<String, Value>);

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
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading the env file {}", file.display()))?;
            let entries = devstack::dotenv::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}:{}: {}", file.display(), e.line, e.problem))?;
            for (key, text) in entries {
                let file = Some(file.clone());
                vars.insert(key, Value { text, file });
            }
        }
        Ok(Self(vars))
    }

    /// A value: `flag`, else the process environment, else the files.
    pub(crate) fn get(&self, flag: Option<&str>, name: &str) -> Option<String> {
        flag.map(str::to_owned)
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(|| {
                self.0
                    .get(name)
                    .map(|v| v.text.clone())
                    .filter(|v| !v.is_empty())
            })
    }

    /// A file path: as given in a flag or the environment (relative to the working directory),
    /// or, from an env file, relative to that file's folder (the sample writes
    /// `AI_AGENT_PRIVATE_KEY_FILE` relative to the folder of its `.env.agent`).
    pub(crate) fn path(&self, flag: Option<&Path>, name: &str) -> Option<PathBuf> {
        if let Some(flag) = flag {
            return Some(flag.to_owned());
        }
        if let Some(value) = std::env::var_os(name).filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(value));
        }
        let value = self.0.get(name).filter(|v| !v.text.is_empty())?;
        let path = PathBuf::from(&value.text);
        Some(match value.file.as_deref().and_then(Path::parent) {
            Some(folder) if path.is_relative() => folder.join(path),
            _ => path,
        })
    }

    /// The first of `names` that is set (after `flag`): a setting the sample spells several ways.
    pub(crate) fn get_any(&self, flag: Option<&str>, names: &[&str]) -> Option<String> {
        flag.map(str::to_owned)
            .or_else(|| names.iter().find_map(|name| self.get(None, name)))
    }

    /// [`Self::get_any`], required, with an error that names the flag and every variable.
    pub(crate) fn require_any(
        &self,
        flag: Option<&str>,
        flag_name: &str,
        names: &[&str],
    ) -> anyhow::Result<String> {
        self.get_any(flag, names).with_context(|| {
            format!(
                "missing {flag_name} (or {} in the environment or an --env-file)",
                names.join(" or ")
            )
        })
    }

    /// The agent's private key for `private_key_jwt`: `flag_key` or `AI_AGENT_PRIVATE_KEY_FILE`
    /// (see [`Self::path`]) with `flag_kid` or `AI_AGENT_PRIVATE_KEY_KID`; `None` when no key file
    /// is configured.
    pub(crate) fn agent_key(
        &self,
        flag_key: Option<&Path>,
        flag_kid: Option<&str>,
    ) -> anyhow::Result<Option<protocol::keys::SigningKey>> {
        let Some(path) = self.path(flag_key, "AI_AGENT_PRIVATE_KEY_FILE") else {
            return Ok(None);
        };
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("AI_AGENT_PRIVATE_KEY_FILE: reading {}", path.display()))?;
        let kid = self.get(flag_kid, "AI_AGENT_PRIVATE_KEY_KID");
        let key = protocol::keys::SigningKey::from_pem(&pem, kid).with_context(|| {
            format!(
                "AI_AGENT_PRIVATE_KEY_FILE {} is not a usable private key",
                path.display()
            )
        })?;
        Ok(Some(key))
    }

    /// [`Self::agent_key`], required.
    pub(crate) fn require_agent_key(
        &self,
        flag_key: Option<&Path>,
        flag_kid: Option<&str>,
    ) -> anyhow::Result<protocol::keys::SigningKey> {
        self.agent_key(flag_key, flag_kid)?.context(
            "missing --key (or AI_AGENT_PRIVATE_KEY_FILE in the environment or an --env-file)",
        )
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_path_in_a_file_is_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("packages/agent0");
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join(".env.agent");
        std::fs::write(
            &file,
            "AI_AGENT_PRIVATE_KEY_FILE=./agent.pem\nABSOLUTE_KEY_FILE=/etc/key.pem\n",
        )
        .unwrap();
        let settings = Settings::load(std::slice::from_ref(&file), dir.path(), "x.env").unwrap();
        assert_eq!(
            settings.path(None, "AI_AGENT_PRIVATE_KEY_FILE").unwrap(),
            folder.join("./agent.pem")
        );
        assert_eq!(
            settings.path(None, "ABSOLUTE_KEY_FILE").unwrap(),
            PathBuf::from("/etc/key.pem")
        );
        assert_eq!(
            settings
                .path(Some(Path::new("flag.pem")), "AI_AGENT_PRIVATE_KEY_FILE")
                .unwrap(),
            PathBuf::from("flag.pem")
        );
    }

    #[test]
    fn a_bad_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".env.app");
        std::fs::write(&file, "PORT=3000\nSESSION_SECRET='abc\n").unwrap();
        let error = Settings::load(std::slice::from_ref(&file), dir.path(), "x.env")
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains(&format!("{}:2: SESSION_SECRET", file.display())),
            "{error}"
        );
    }
}
