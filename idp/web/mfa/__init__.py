"""Second-factor pages: the sign-in challenge, setting one up, managing them."""
