"""What people do: approve, deny, break-glass, release and exempt, over HTTP or the command line."""
