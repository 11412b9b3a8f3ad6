"""Local Azure for development and tests: an ARM + Log Analytics emulator and Azurite.

Nothing here is deployed (see .funcignore). The app reaches this emulator only through the
LOCAL_AZURE_* settings, which it honours for loopback addresses alone.
"""
