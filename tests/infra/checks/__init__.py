"""checkov checks of the project (see containment_checks.py and app_service_authentication.yaml)."""
