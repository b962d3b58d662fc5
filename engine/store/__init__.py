"""Storage: the SQL system of record (models, engine, migrations, prepared
statements), the Redis server the embedded defaults start, and the background
jobs' timings kept in Redis. Imports nothing from the other groups."""
