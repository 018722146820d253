"""Identity and access: organizations, users, devices, tokens, certificates and broker hooks."""
