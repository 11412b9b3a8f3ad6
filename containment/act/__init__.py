"""The isolated containment worker: the only code that changes customer resources."""
