"""Charity staff's access to the console: passwords and one-time links (staff),
the organisation's API tokens (api_tokens), and the email that carries links
(mail). Identity (who a token belongs to) stays in the root's vocabulary."""
