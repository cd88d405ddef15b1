use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::{AGENT_KEY_FILE, Topology, ensure, read_env_file, write_env_files};
use idp0::config::ConfigFile;

const ISSUER: &str = "https://localhost:29400";
const SAMPLE: SampleTopology = SampleTopology {
    agent_port: 23100,
    app_port: 25101,
    mcp_port: 25102,
};

/// The stack on 23000 / 25001 / 25002 over https, with the sample beside it.
fn stack(sample: Option<SampleTopology>) -> Topology {
    Topology {
        sample,
        ..Topology::on_localhost("https", 23000, 25001, 25002)
    }
}

fn env(path: &Path) -> HashMap<String, String> {
    read_env_file(path).unwrap().into_iter().collect()
}

fn names(env: &HashMap<String, String>) -> Vec<&str> {
    let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn config(data: &Path) -> ConfigFile {
    toml::from_str(&std::fs::read_to_string(data.join(CONFIG_FILE)).unwrap()).unwrap()
}

fn uris(data: &Path, id: &str) -> (Vec<String>, Vec<String>) {
    let file = config(data);
    let client = file.clients.iter().find(|c| c.client_id == id).unwrap();
    (
        client.redirect_uris.clone(),
        client.post_logout_redirect_uris.clone(),
    )
}

fn secret(data: &Path, id: &str) -> String {
    let file = config(data);
    let client = file.clients.iter().find(|c| c.client_id == id).unwrap();
    client.client_secret.clone().unwrap()
}

#[test]
fn the_four_files_say_what_the_samples_services_read() {
    let (data, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (data, root) = (data.path(), root.path());
    ensure(data, Some(&stack(Some(SAMPLE)))).unwrap();
    let written = write_sample_env(data, &format!("{ISSUER}/"), &SAMPLE, root).unwrap();
    let files: Vec<_> = SAMPLE_ENV_FILES.iter().map(|f| root.join(f)).collect();
    assert_eq!(written.files, files);
    assert!(written.backups.is_empty());
    assert!(!written.llm_kept);
    let as_issuer = "https://localhost:29400/oauth2/todo0";
    let resource = "https://localhost:25002/mcp";

    let agent_app = env(&files[0]);
    assert_eq!(
        names(&agent_app),
        [
            "OKTA_CLIENT_ID",
            "OKTA_CLIENT_SECRET",
            "OKTA_DOMAIN",
            "OKTA_REDIRECT_URI",
            "PORT",
            "SESSION_SECRET"
        ]
    );
    assert_eq!(agent_app["PORT"], "23100");
    assert_eq!(
        agent_app["OKTA_DOMAIN"], "localhost:29400",
        "bare, as the sample reads it"
    );
    assert_eq!(agent_app["OKTA_CLIENT_ID"], "agent0");
    assert_eq!(agent_app["OKTA_CLIENT_SECRET"], secret(data, "agent0"));
    assert_eq!(
        agent_app["OKTA_REDIRECT_URI"], "http://localhost:23100/callback",
        "the sample serves plain http"
    );
    let session = &agent_app["SESSION_SECRET"];
    assert!(session.len() == 64 && session.bytes().all(|b| b.is_ascii_hexdigit()));

    let agent = env(&files[1]);
    assert_eq!(
        names(&agent),
        [
            "AI_AGENT_ID",
            "AI_AGENT_PRIVATE_KEY_FILE",
            "AI_AGENT_PRIVATE_KEY_KID",
            "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
            "ANTHROPIC_MODEL",
            "MCP_AUTHORIZATION_SERVER",
            "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT",
            "MCP_RESOURCE_INDICATOR",
            "MCP_SERVER_URL",
            "OKTA_DOMAIN"
        ]
    );
    assert_eq!(
        agent["MCP_SERVER_URL"], resource,
        "the stack's own MCP server"
    );
    assert_eq!(agent["MCP_RESOURCE_INDICATOR"], resource);
    assert_eq!(agent["OKTA_DOMAIN"], "localhost:29400");
    assert_eq!(agent["AI_AGENT_ID"], "agent0-agent");
    let key = std::fs::canonicalize(data.join(AGENT_KEY_FILE)).unwrap();
    assert_eq!(
        agent["AI_AGENT_PRIVATE_KEY_FILE"],
        key.display().to_string()
    );
    assert!(Path::new(&agent["AI_AGENT_PRIVATE_KEY_FILE"]).is_absolute());
    let kid = config(data).agents[0].jwks.as_ref().unwrap().keys[0]
        .common
        .key_id
        .clone()
        .unwrap();
    assert_eq!(agent["AI_AGENT_PRIVATE_KEY_KID"], kid);
    assert_eq!(
        agent["AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST"],
        "mcp:connect mcp:tools:read mcp:tools:manage"
    );
    assert_eq!(agent["MCP_AUTHORIZATION_SERVER"], as_issuer);
    assert_eq!(
        agent["MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT"],
        format!("{as_issuer}/v1/token")
    );
    let text = std::fs::read_to_string(&files[1]).unwrap();
    assert!(text.contains("FILL IN"), "{text}");
    assert!(
        text.contains("\n# ANTHROPIC_API_KEY=your_anthropic_api_key_here\n"),
        "{text}"
    );

    let todo_app = env(&files[2]);
    assert_eq!(
        names(&todo_app),
        [
            "EXPECTED_AUDIENCE",
            "OKTA_CLIENT_ID",
            "OKTA_CLIENT_SECRET",
            "OKTA_ISSUER",
            "OKTA_REDIRECT_URI",
            "PORT",
            "SESSION_SECRET"
        ]
    );
    assert_eq!(todo_app["PORT"], "25101");
    assert_eq!(todo_app["OKTA_ISSUER"], as_issuer);
    assert_eq!(todo_app["OKTA_CLIENT_ID"], "todo0");
    assert_eq!(todo_app["OKTA_CLIENT_SECRET"], secret(data, "todo0"));
    assert_eq!(
        todo_app["OKTA_REDIRECT_URI"],
        "http://localhost:25101/callback"
    );
    assert_eq!(todo_app["EXPECTED_AUDIENCE"], resource);
    assert_ne!(&todo_app["SESSION_SECRET"], session, "each app its own");

    let mcp = env(&files[3]);
    assert_eq!(
        names(&mcp),
        ["MCP_EXPECTED_AUDIENCE", "MCP_OKTA_ISSUER", "MCP_PORT"]
    );
    assert_eq!(mcp["MCP_PORT"], "25102");
    assert_eq!(mcp["MCP_OKTA_ISSUER"], as_issuer);
    assert_eq!(mcp["MCP_EXPECTED_AUDIENCE"], resource);

    #[cfg(unix)]
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    // Nothing else: in particular no second copy of the private key.
    let mut found = Vec::new();
    for package in ["agent0", "todo0"] {
        for entry in std::fs::read_dir(root.join("packages").join(package)).unwrap() {
            found.push(entry.unwrap().path());
        }
    }
    found.sort();
    let mut expected = files.clone();
    expected.sort();
    assert_eq!(found, expected);
}

#[test]
fn the_samples_uris_follow_ours_until_a_start_without_them() {
    let (data, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (data, root) = (data.path(), root.path());
    ensure(data, Some(&stack(None))).unwrap();
    assert_eq!(uris(data, "agent0").0, ["https://localhost:23000/callback"]);

    // Added to the existing clients, after the stack's own (which the env files use).
    ensure(data, Some(&stack(Some(SAMPLE)))).unwrap();
    assert_eq!(
        uris(data, "agent0"),
        (
            vec![
                "https://localhost:23000/callback".to_owned(),
                "http://localhost:23100/callback".to_owned()
            ],
            vec![
                "https://localhost:23000/".to_owned(),
                "https://localhost:23000".to_owned(),
                "http://localhost:23100/".to_owned(),
                "http://localhost:23100".to_owned()
            ]
        )
    );
    assert_eq!(
        uris(data, "todo0"),
        (
            vec![
                "https://localhost:25001/callback".to_owned(),
                "http://localhost:25101/callback".to_owned()
            ],
            vec![
                "https://localhost:25001/".to_owned(),
                "https://localhost:25001".to_owned(),
                "http://localhost:25101/".to_owned(),
                "http://localhost:25101".to_owned(),
                // Where the sample's todo0 always sends people after logout.
                "http://localhost:5001/".to_owned()
            ]
        )
    );
    write_env_files(data, ISSUER).unwrap();
    assert_eq!(
        env(&data.join(crate::AGENT0_ENV))["OKTA_REDIRECT_URI"],
        "https://localhost:23000/callback"
    );
    write_sample_env(data, ISSUER, &SAMPLE, root).unwrap();

    // A generated configuration created with the sample registers it as well.
    let fresh = tempfile::tempdir().unwrap();
    ensure(fresh.path(), Some(&stack(Some(SAMPLE)))).unwrap();
    assert_eq!(uris(fresh.path(), "todo0"), uris(data, "todo0"));

    // A later start without the sample drops its URIs; the files cannot be written for it then.
    ensure(data, Some(&stack(None))).unwrap();
    assert_eq!(uris(data, "agent0").1.len(), 2);
    assert_eq!(uris(data, "todo0").0, ["https://localhost:25001/callback"]);
    let error = write_sample_env(data, ISSUER, &SAMPLE, root)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("http://localhost:23100/callback") && error.contains(CONFIG_FILE),
        "{error}"
    );
}

#[test]
fn writing_again_keeps_what_a_person_set_and_loses_no_earlier_version() {
    let (data, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (data, root) = (data.path(), root.path());
    ensure(data, Some(&stack(Some(SAMPLE)))).unwrap();
    let files: Vec<_> = SAMPLE_ENV_FILES.iter().map(|f| root.join(f)).collect();
    // The person's own files: an agent with a model key of theirs, an MCP server of theirs.
    let theirs_agent = "MCP_SERVER_URL=http://localhost:5002/mcp\n\
                        ANTHROPIC_API_KEY=test-anthropic-key\nANTHROPIC_MODEL=claude-test\n";
    let theirs_mcp = "MCP_PORT=5002\n";
    std::fs::create_dir_all(files[1].parent().unwrap()).unwrap();
    std::fs::create_dir_all(files[3].parent().unwrap()).unwrap();
    std::fs::write(&files[1], theirs_agent).unwrap();
    std::fs::write(&files[3], theirs_mcp).unwrap();

    let first = write_sample_env(data, ISSUER, &SAMPLE, root).unwrap();
    let bak = |file: &Path, suffix: &str| {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        file.with_file_name(format!("{name}{suffix}.backup"))
    };
    assert_eq!(
        first.backups,
        [
            (files[1].clone(), bak(&files[1], "")),
            (files[3].clone(), bak(&files[3], ""))
        ]
    );
    assert_eq!(
        std::fs::read_to_string(bak(&files[1], "")).unwrap(),
        theirs_agent
    );
    assert_eq!(
        std::fs::read_to_string(bak(&files[3], "")).unwrap(),
        theirs_mcp
    );
    #[cfg(unix)]
    assert_eq!(mode(&bak(&files[1], "")), 0o600);
    assert!(first.llm_kept);
    let agent = env(&files[1]);
    assert_eq!(agent["ANTHROPIC_API_KEY"], "test-anthropic-key");
    assert_eq!(agent["ANTHROPIC_MODEL"], "claude-test");
    assert_eq!(agent["MCP_SERVER_URL"], "https://localhost:25002/mcp");
    assert!(
        !std::fs::read_to_string(&files[1])
            .unwrap()
            .contains("FILL IN")
    );

    // The same stack again: nothing changes, nothing is backed up.
    let texts = |files: &[std::path::PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    };
    let before = texts(&files);
    let again = write_sample_env(data, ISSUER, &SAMPLE, root).unwrap();
    assert!(again.backups.is_empty(), "{:?}", again.backups);
    assert_eq!(texts(&files), before);

    // Other ports: the files naming them change (not .env.agent, which names the stack's MCP
    // server); the earlier versions are kept, beside the person's own.
    let moved = SampleTopology {
        agent_port: 23200,
        app_port: 25201,
        mcp_port: 25202,
    };
    ensure(data, Some(&stack(Some(moved.clone())))).unwrap();
    let third = write_sample_env(data, ISSUER, &moved, root).unwrap();
    assert_eq!(
        third.backups,
        [
            (files[0].clone(), bak(&files[0], "")),
            (files[2].clone(), bak(&files[2], "")),
            (files[3].clone(), bak(&files[3], ".1"))
        ]
    );
    assert_eq!(
        std::fs::read_to_string(bak(&files[3], "")).unwrap(),
        theirs_mcp
    );
    assert_eq!(
        std::fs::read_to_string(bak(&files[3], ".1")).unwrap(),
        before[3]
    );
    assert_eq!(
        std::fs::read_to_string(bak(&files[0], "")).unwrap(),
        before[0]
    );
    assert_eq!(env(&files[3])["MCP_PORT"], "25202");
    let app = env(&files[0]);
    assert_eq!(app["PORT"], "23200");
    assert_eq!(
        app["SESSION_SECRET"],
        env(&bak(&files[0], ""))["SESSION_SECRET"],
        "kept: writing again signs nobody out"
    );
    assert_eq!(env(&files[1])["ANTHROPIC_API_KEY"], "test-anthropic-key");
}

#[test]
fn a_template_key_or_session_secret_is_not_kept() {
    let (data, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (data, root) = (data.path(), root.path());
    ensure(data, Some(&stack(Some(SAMPLE)))).unwrap();
    let agent0 = root.join("packages/agent0");
    std::fs::create_dir_all(&agent0).unwrap();
    std::fs::write(
        agent0.join(".env.agent"),
        "ANTHROPIC_API_KEY=your_anthropic_api_key_here\nANTHROPIC_MODEL=claude-3-5-sonnet\n",
    )
    .unwrap();
    std::fs::write(
        agent0.join(".env.app"),
        "PORT=3000\nSESSION_SECRET=your-session-secret-change-in-production\n",
    )
    .unwrap();
    let written = write_sample_env(data, ISSUER, &SAMPLE, root).unwrap();
    assert!(!written.llm_kept);
    let agent = env(&agent0.join(".env.agent"));
    assert!(!agent.contains_key("ANTHROPIC_API_KEY"));
    assert_eq!(agent["ANTHROPIC_MODEL"], "claude-sonnet-4-6");
    let secret = &env(&agent0.join(".env.app"))["SESSION_SECRET"];
    assert_eq!(secret.len(), 64);
}

#[test]
fn an_error_names_the_file() {
    let (data, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (data, root) = (data.path(), root.path());
    ensure(data, Some(&stack(Some(SAMPLE)))).unwrap();
    std::fs::write(root.join("packages"), "not a folder").unwrap();
    let error = format!(
        "{:#}",
        write_sample_env(data, ISSUER, &SAMPLE, root).unwrap_err()
    );
    assert!(
        error.contains(&root.join("packages/agent0").display().to_string()),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn a_backup_keeps_the_exact_bytes_and_a_planted_link_is_never_followed() {
    let (data, root, outside) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (data, root) = (data.path(), root.path());
    ensure(data, Some(&stack(Some(SAMPLE)))).unwrap();
    let app = root.join(SAMPLE_ENV_FILES[0]);
    std::fs::create_dir_all(app.parent().unwrap()).unwrap();
    let theirs: &[u8] = b"PORT=3100\n# caf\xe9 (latin-1)\n";
    std::fs::write(&app, theirs).unwrap();
    // A link where the temporary file goes, pointing at a file of the person's elsewhere.
    let victim = outside.path().join("precious.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let victim_mode = mode(&victim);
    std::os::unix::fs::symlink(
        &victim,
        app.with_file_name(".env.app.secure-agent-tmp.backup"),
    )
    .unwrap();
    let written = write_sample_env(data, ISSUER, &SAMPLE, root).unwrap();
    let backup = app.with_file_name(".env.app.backup");
    assert_eq!(written.backups[0], (app.clone(), backup.clone()));
    assert_eq!(std::fs::read(&backup).unwrap(), theirs, "byte for byte");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert_eq!(mode(&victim), victim_mode, "not chmod-ed through the link");
    assert!(
        std::fs::read_to_string(&app)
            .unwrap()
            .contains("OKTA_CLIENT_ID=")
    );
}
