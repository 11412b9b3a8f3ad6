"""The vocabulary every other layer speaks: ARM IDs, events, findings, decision records,
settings and the clock. Imports nothing else of the app, and no Azure SDK."""
