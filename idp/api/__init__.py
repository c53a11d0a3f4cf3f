"""JSON admin API (/api/v1), authorised by the provider's own access tokens; see openapi.json."""
