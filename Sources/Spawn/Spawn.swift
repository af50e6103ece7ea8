// Spawn
