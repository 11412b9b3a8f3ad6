"""checkov checks of the project (see containment_checks.py)."""
