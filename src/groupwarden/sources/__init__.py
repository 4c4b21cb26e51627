"""Identity-provider clients. Each yields a normalised, complete Snapshot or raises SyncError."""
