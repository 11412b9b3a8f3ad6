"""Whether a resource exposes synthetic data: the rules, one module per resource family,
and the arithmetic they need (NSG reach, role permissions, scope). Pure: no SDK, no I/O."""
