"""A run's results: Arrow schemas, streaming Parquet writers, the run folder, recovery."""
