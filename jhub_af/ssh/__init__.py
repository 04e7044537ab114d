"""af-ssh: SSH on demand with a hub token as the password (its own issue)."""
