"""Turning a decision into evidence: record it once (or claim it and queue the containment
request), notify, settle approvals, and read the ledger back as incidents and exports."""
