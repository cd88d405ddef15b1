//! Which model answers, from the sample's environment variables: `LLM_PROVIDER`
//! (`anthropic`, `bedrock`, `openai`, `offline`) when set; otherwise Anthropic when
//! `ANTHROPIC_API_KEY` is set, Bedrock when `BEDROCK_MODEL_ID` and AWS credentials are, an
//! OpenAI-compatible server when `OPENAI_BASE_URL` is, and the built-in offline model when
//! nothing is configured. A half-configured provider is an error naming what is missing.

use std::sync::Arc;

use protocol::Clock;
use secrecy::SecretString;
use url::Url;

use super::Model;
use super::anthropic::{AnthropicConfig, AnthropicModel};
use super::bedrock::{BedrockConfig, BedrockModel};
use super::offline::OfflineModel;
use super::openai::{OpenAiConfig, OpenAiModel};

/// The default region for Bedrock when `AWS_REGION` is unset.
const DEFAULT_AWS_REGION: &str = "us-east-1";

/// Builds the configured model. `get` reads a setting by name (flag, env, env file).
pub fn from_settings(
    get: &dyn Fn(&str) -> Option<String>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Model>, String> {
    let provider = match get("LLM_PROVIDER") {
        Some(p) => p.trim().to_ascii_lowercase(),
        None if get("ANTHROPIC_API_KEY").is_some() => "anthropic".into(),
        None if get("BEDROCK_MODEL_ID").is_some() => "bedrock".into(),
        None if get("OPENAI_BASE_URL").is_some() => "openai".into(),
        None => "offline".into(),
    };
    let require = |name: &str| {
        let value =
            get(name).ok_or_else(|| format!("LLM_PROVIDER={provider} needs {name} to be set"))?;
        not_placeholder(name, value)
    };
    let url = |name: &str, value: String| {
        Url::parse(&value).map_err(|e| format!("{name} {value:?} is not a URL: {e}"))
    };
    let refused = |e: super::LlmError| e.to_string();
    match provider.as_str() {
        "anthropic" => {
            let mut config =
                AnthropicConfig::new(SecretString::from(require("ANTHROPIC_API_KEY")?));
            if let Some(model) = get("ANTHROPIC_MODEL") {
                config.model = model;
            }
            if let Some(base) = get("ANTHROPIC_BASE_URL") {
                config.base_url = url("ANTHROPIC_BASE_URL", base)?;
            }
            Ok(Arc::new(AnthropicModel::new(config).map_err(refused)?))
        }
        "bedrock" => {
            let mut config = BedrockConfig::new(
                get("AWS_REGION")
                    .or_else(|| get("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| DEFAULT_AWS_REGION.to_owned()),
                require("AWS_ACCESS_KEY_ID")?,
                SecretString::from(require("AWS_SECRET_ACCESS_KEY")?),
                require("BEDROCK_MODEL_ID")?,
            );
            config.session_token = get("AWS_SESSION_TOKEN").map(SecretString::from);
            if let Some(endpoint) = get("BEDROCK_ENDPOINT_URL") {
                config.endpoint = Some(url("BEDROCK_ENDPOINT_URL", endpoint)?);
            }
            Ok(Arc::new(BedrockModel::new(config, clock).map_err(refused)?))
        }
        "openai" => {
            let base = url("OPENAI_BASE_URL", require("OPENAI_BASE_URL")?)?;
            let mut config = OpenAiConfig::new(base, require("OPENAI_MODEL")?);
            config.api_key = get("OPENAI_API_KEY")
                .map(|key| not_placeholder("OPENAI_API_KEY", key))
                .transpose()?
                .map(SecretString::from);
            Ok(Arc::new(OpenAiModel::new(config).map_err(refused)?))
        }
        "offline" => Ok(Arc::new(OfflineModel::new())),
        other => Err(format!(
            "LLM_PROVIDER {other:?} is not one of anthropic, bedrock, openai, offline"
        )),
    }
}

/// Refuses the placeholders the sample's bootstrap and templates write (such as
/// `ANTHROPIC_API_KEY=your_anthropic_api_key_here`): started with one, every chat would fail
/// with a provider error much later; at start the fix is one sentence.
fn not_placeholder(name: &str, value: String) -> Result<String, String> {
    let lower = value.trim().to_ascii_lowercase();
    let placeholder = lower.starts_with("your_")
        || lower.starts_with("your-")
        || lower.ends_with("_here")
        || lower.contains("placeholder")
        || lower.contains("changeme")
        || lower.contains("replace_me")
        || (lower.starts_with('<') && lower.ends_with('>'));
    if placeholder {
        return Err(format!(
            "{name} still holds a placeholder, not a real value: put your real value there, or \
             remove the line (and LLM_PROVIDER) to use the built-in offline model"
        ));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use protocol::SystemClock;

    use super::*;

    fn pick(vars: &[(&str, &str)]) -> Result<String, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_settings(&|name| vars.get(name).cloned(), Arc::new(SystemClock))
            .map(|m| format!("{}/{}", m.info().provider, m.info().model))
    }

    #[test]
    fn the_provider_follows_what_is_configured() {
        assert!(pick(&[]).is_ok_and(|m| m.starts_with("offline/")));
        assert!(
            pick(&[("ANTHROPIC_API_KEY", "k"), ("ANTHROPIC_MODEL", "claude-x")])
                .is_ok_and(|m| m == "anthropic/claude-x")
        );
        assert!(
            pick(&[
                ("BEDROCK_MODEL_ID", "anthropic.claude"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ])
            .is_ok_and(|m| m.starts_with("bedrock/"))
        );
        assert!(
            pick(&[
                ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
                ("OPENAI_MODEL", "llama3.2")
            ])
            .is_ok_and(|m| m == "openai/llama3.2")
        );
        assert!(
            pick(&[("LLM_PROVIDER", "offline"), ("ANTHROPIC_API_KEY", "k")])
                .is_ok_and(|m| m.starts_with("offline/"))
        );
    }

    #[test]
    fn half_configurations_name_what_is_missing() {
        let error = pick(&[("BEDROCK_MODEL_ID", "m")]).unwrap_err();
        assert!(error.contains("AWS_ACCESS_KEY_ID"), "{error}");
        let error = pick(&[("OPENAI_BASE_URL", "http://x/v1")]).unwrap_err();
        assert!(error.contains("OPENAI_MODEL"), "{error}");
        let error = pick(&[("OPENAI_BASE_URL", "nope"), ("OPENAI_MODEL", "m")]).unwrap_err();
        assert!(error.contains("is not a URL"), "{error}");
        let error = pick(&[("ANTHROPIC_API_KEY", "your_anthropic_api_key_here")]).unwrap_err();
        assert!(
            error.contains("ANTHROPIC_API_KEY still holds a placeholder")
                && error.contains("offline model"),
            "{error}"
        );
        let error = pick(&[
            ("BEDROCK_MODEL_ID", "m"),
            ("AWS_ACCESS_KEY_ID", "<your access key>"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ])
        .unwrap_err();
        assert!(error.contains("AWS_ACCESS_KEY_ID"), "{error}");
        let error = pick(&[("LLM_PROVIDER", "gpt")]).unwrap_err();
        assert!(error.contains("not one of"), "{error}");
    }
}
