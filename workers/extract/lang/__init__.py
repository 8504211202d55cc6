"""Language data, one module per language code: plain constants, no logic."""
