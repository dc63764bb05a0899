"""Building blocks, one module per course concept."""
