"""ProfileSpawner and the profile catalogue (the "Profile spawner" issue builds it)."""
