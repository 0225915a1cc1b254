"""Data: source readers, validation, language ID, prepared datasets (``mmoe prep``), training-time batches."""
