"""Second factors: authenticator app (TOTP), passkeys/security keys (WebAuthn), SMS and email codes,
recovery codes."""
