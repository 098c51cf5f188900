"""On-disk schemas, atomic writers, readers and the dataset registry (no model code)."""
