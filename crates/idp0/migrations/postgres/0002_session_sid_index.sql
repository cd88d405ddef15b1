-- Token exchange checks that an ID token's SSO session (`sid`) is still live: one indexed lookup.
CREATE INDEX sso_sessions_sid ON sso_sessions (sid);
