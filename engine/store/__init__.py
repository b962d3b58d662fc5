"""Storage: the SQL system of record (models, engine, migrations, prepared
statements) and the Redis server the embedded defaults start. Imports nothing
from the other groups."""
