"""What Azure Table Storage accepts, stated apart from the ledger's own arithmetic so that a
test can hold every entity the app wrote to it. Azurite is more lenient (it counts the
request body in UTF-8), so entities are read back from Azurite and measured here.

Limits: https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model
(1 MiB per entity, 255 properties with the three system ones, 64 KiB per string in UTF-16).
Size: https://learn.microsoft.com/en-us/archive/blogs/avkashchauhan/how-the-size-of-an-entity-is-caclulated-in-windows-azure-table-storage
"""
from __future__ import annotations


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def problems(entity: dict) -> list[str]:
    """Why Azure would refuse this entity (empty: it would take it)."""
    keys = _units(entity["PartitionKey"]) + _units(entity["RowKey"])
    size, found = 4 + 2 * keys, []
    names = [name for name in entity if name not in ("PartitionKey", "RowKey")]
    for name in names:
        value = entity[name]
        if isinstance(value, str):
            if _units(value) > 32 * 1024:
                found.append(f"{name}: {_units(value)} UTF-16 characters, above 32K")
            value_size = 4 + 2 * _units(value)
        else:
            value_size = 1 if isinstance(value, bool) else 8
        size += 8 + 2 * _units(name) + value_size
    if len(names) + 3 > 255:  # with PartitionKey, RowKey and Timestamp
        found.append(f"{len(names) + 3} properties, above 255")
    if size > 1024 * 1024:
        found.append(f"{size} bytes, above 1 MiB")
    return found


def every_entity_fits(table) -> int:
    """Assert that every entity in the table fits; how many there are."""
    entities = list(table.list_entities())
    refused = {(e["PartitionKey"], e["RowKey"]): problems(e) for e in entities}
    assert not any(refused.values()), {key: found for key, found in refused.items() if found}
    return len(entities)
