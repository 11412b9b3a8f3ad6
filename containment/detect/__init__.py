"""Finding exposures: the event pipeline shared by every ARM event trigger, one assess step
per resource family, the egress scan over Log Analytics, and the drift sweep."""
