"""The lab behind tests/lab/labctl, by concern (docs/lab.md)."""
