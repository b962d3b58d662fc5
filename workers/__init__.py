"""The RQ door into the engine: thin job functions that receive ids."""
