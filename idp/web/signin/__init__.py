"""The sign-in pages, forgotten password, My account and sign out."""
