"""What to do about findings: the containment actions (declared per family beside the
rules they fix), the writes that carry them out, release plans, and the decision (every
outcome is decided here). Pure: no SDK, no I/O."""
