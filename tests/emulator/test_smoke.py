"""One round trip through every real client: the management SDK against the emulator, the
Log Analytics client, TableClient and QueueClient against Azurite (`python -m localazure smoke`)."""
from localazure.__main__ import smoke


def test_smoke_round_trip():
    result = smoke()
    assert result["arm"]["allowBlobPublicAccess"] == {"before": True, "after": False}
    assert result["log_analytics"] == [["Anonymous", 1048576]]
    assert result["table"] == "contained"
    assert result["queue"] == ["hello"]
