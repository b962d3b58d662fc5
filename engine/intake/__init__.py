"""Intake: a charity's bulk upload becomes a job, its items become tasks.
Importers (zip, CSV, JSON, IIIF), safe archive and URL reading, the media
store, the job runner, and the demo's sample projects."""
