"""Delivery: results going out. Streamed exports, IIIF annotations, and the
webhook outbox with its sender. The outbox is written in the same SQL
transaction as the change it reports, so quality and intake record into it."""
