"""Data: the embedded corpus or the user's text, tokenizers, token shards, seeded batches."""
