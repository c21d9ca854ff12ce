"""Where the local platform keeps its files by default (importable without importing Beam)."""

DEFAULT_WAREHOUSE = "warehouse/ecommerce.duckdb"
DEFAULT_DEAD_LETTER_DIR = "warehouse/dead_letter"
