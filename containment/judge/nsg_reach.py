"""What an NSG rule really lets through. Pure arithmetic over address, port and protocol
ranges, so that "a higher-precedence Deny already blocks it" is computed, not guessed.

Traffic is a set of boxes: (IP version, first address, last address, first port, last
port, protocol). A rule admits the boxes of its sources (or, outbound, destinations) times
its destination ports times its protocols; a Deny with precedence removes its own boxes
when its other side (destination, or source outbound) covers the rule's.

Service tags: `*`, `Any` and `Internet` are taken as every address; `AzureCloud` (and its
regional forms) too, since it holds every Azure customer's addresses. Every other tag
(`VirtualNetwork`, `AzureLoadBalancer`, platform tags) names addresses Azure manages for
the customer and is not judged.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah")
_FULL = {4: (0, 2**32 - 1), 6: (0, 2**128 - 1)}
_EVERYWHERE = {"*", "any", "internet", "0.0.0.0/0", "::/0"}


@dataclass(frozen=True)
class Box:
    version: int
    first: int
    last: int
    low_port: int
    high_port: int
    protocol: str


class UnreadableRule(ValueError):
    """A prefix, port or protocol that is not one Azure accepts."""


def is_untrusted_tag(prefix: str) -> bool:
    lowered = prefix.strip().lower()
    return lowered in _EVERYWHERE or lowered == "azurecloud" or lowered.startswith("azurecloud.")


def address_ranges(prefix: str) -> list[tuple[int, int, int]] | None:
    """(version, first, last) ranges of a prefix; None for a service tag that is not judged."""
    text = prefix.strip()
    if is_untrusted_tag(text):
        if text in ("0.0.0.0/0",):
            return [(4, *_FULL[4])]
        if text in ("::/0",):
            return [(6, *_FULL[6])]
        return [(4, *_FULL[4]), (6, *_FULL[6])]
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        if text.replace(".", "").replace("-", "").isalnum() and not text[:1].isdigit():
            return None  # a service tag such as VirtualNetwork
        raise UnreadableRule(f"address prefix {prefix!r} is neither an IP, a CIDR nor a service tag") from None
    return [(network.version, int(network.network_address), int(network.broadcast_address))]


def _ports(rule: dict, side: str) -> list[tuple[int, int]]:
    properties = rule.get("properties") or {}
    ranges = list(properties.get(f"{side}PortRanges") or []) or [properties.get(f"{side}PortRange") or "*"]
    result = []
    for item in ranges:
        text = str(item).strip()
        if text == "*":
            result.append((0, 65535))
            continue
        low, _, high = text.partition("-")
        try:
            low_port, high_port = int(low), int(high or low)
        except ValueError:
            raise UnreadableRule(f"port range {item!r} is not a number or a range") from None
        if not 0 <= low_port <= high_port <= 65535:
            raise UnreadableRule(f"port range {item!r} is outside 0-65535")
        result.append((low_port, high_port))
    return result


def protocols(rule: dict) -> tuple[str, ...]:
    protocol = str((rule.get("properties") or {}).get("protocol") or "*").lower()
    if protocol == "*":
        return PROTOCOLS
    if protocol not in PROTOCOLS:
        raise UnreadableRule(f"protocol {protocol!r} is not one of *, {', '.join(PROTOCOLS)}")
    return (protocol,)


def prefixes(rule: dict, side: str) -> list[str]:
    """A rule's source or destination prefixes (`side`: source, destination)."""
    properties = rule.get("properties") or {}
    listed = [str(p) for p in properties.get(f"{side}AddressPrefixes") or []]
    single = properties.get(f"{side}AddressPrefix")
    return listed or ([str(single)] if single else [])


def _judged_side(rule: dict) -> tuple[str, str]:
    """(the side whose addresses are judged, the other side): who reaches the data inbound,
    where the data can go outbound."""
    inbound = str((rule.get("properties") or {}).get("direction", "")).lower() == "inbound"
    return ("source", "destination") if inbound else ("destination", "source")


def carried_families(rule: dict) -> set[int]:
    """The address families the rule can carry: a rule joins addresses of one family, so
    where its other side names IP prefixes (an IPv4 destination), traffic of the other family
    never matches it; `*`, tags and application security groups carry both."""
    _, other = _judged_side(rule)
    found = set()
    for prefix in prefixes(rule, other):
        try:
            found.add(ipaddress.ip_network(prefix.strip(), strict=False).version)
        except ValueError:
            return {4, 6}
    return found or {4, 6}


def boxes(rule: dict, address_prefixes: list[str] | None = None) -> list[Box]:
    side, _ = _judged_side(rule)
    families = carried_families(rule)
    result = []
    for prefix in address_prefixes if address_prefixes is not None else prefixes(rule, side):
        for version, first, last in [r for r in address_ranges(prefix) or [] if r[0] in families]:
            for low, high in _ports(rule, "destination"):
                for protocol in protocols(rule):
                    result.append(Box(version, first, last, low, high, protocol))
    return result


def subtract(minuend: list[Box], subtrahend: list[Box]) -> list[Box]:
    """The boxes of `minuend` not covered by any box of `subtrahend`."""
    remaining = list(minuend)
    for cut in subtrahend:
        pieces = []
        for box in remaining:
            if (box.version != cut.version or box.protocol != cut.protocol or cut.last < box.first
                    or cut.first > box.last or cut.high_port < box.low_port or cut.low_port > box.high_port):
                pieces.append(box)
                continue
            # Split off what lies outside the cut, address-wise then port-wise.
            if box.first < cut.first:
                pieces.append(Box(box.version, box.first, cut.first - 1, box.low_port, box.high_port, box.protocol))
            if box.last > cut.last:
                pieces.append(Box(box.version, cut.last + 1, box.last, box.low_port, box.high_port, box.protocol))
            first, last = max(box.first, cut.first), min(box.last, cut.last)
            if box.low_port < cut.low_port:
                pieces.append(Box(box.version, first, last, box.low_port, cut.low_port - 1, box.protocol))
            if box.high_port > cut.high_port:
                pieces.append(Box(box.version, first, last, cut.high_port + 1, box.high_port, box.protocol))
        remaining = pieces
    return remaining


def allowed_boxes(allowed_cidrs, rule: dict) -> list[Box]:
    """The traffic the allowlist trusts: its CIDRs on every port and protocol."""
    return [Box(network.version, int(network.network_address), int(network.broadcast_address), 0, 65535, protocol)
            for network in allowed_cidrs for protocol in PROTOCOLS]


def _covers(deny_prefixes: list[str], rule_prefixes: list[str]) -> bool:
    """Whether a Deny's other side includes every address of the rule's other side."""
    lowered = {p.strip().lower() for p in deny_prefixes}
    if lowered & {"*", "any"}:
        return True
    if not rule_prefixes:  # the rule's other side is application security groups: only `*` covers them
        return False
    for prefix in rule_prefixes:
        if prefix.strip().lower() in lowered:
            continue
        try:
            network = ipaddress.ip_network(prefix.strip(), strict=False)
        except ValueError:
            return False
        if not any(_within(network, other) for other in deny_prefixes):
            return False
    return True


def _within(network, other: str) -> bool:
    try:
        candidate = ipaddress.ip_network(other.strip(), strict=False)
    except ValueError:
        return False
    return network.version == candidate.version and network.subnet_of(candidate)


def all_rules(nsg: dict) -> list[dict]:
    properties = nsg.get("properties") or {}
    return list(properties.get("securityRules") or []) + list(properties.get("defaultSecurityRules") or [])


def untrusted_reach(rule: dict, nsg: dict, allowed_cidrs) -> list[Box]:
    """What the rule admits from (inbound) or to (outbound) untrusted addresses that no
    higher-precedence Deny already blocks; [] when it admits nothing untrusted."""
    properties = rule.get("properties") or {}
    if str(properties.get("access", "")).lower() != "allow":
        return []
    reach = subtract(boxes(rule), allowed_boxes(allowed_cidrs, rule))
    side, other = _judged_side(rule)
    direction = str(properties.get("direction", "")).lower()
    priority = properties.get("priority", 65535)
    for candidate in sorted(all_rules(nsg), key=lambda r: (r.get("properties") or {}).get("priority", 65535)):
        deny = candidate.get("properties") or {}
        if not reach or deny.get("priority", 65535) >= priority:
            break
        if str(deny.get("access", "")).lower() != "deny" or str(deny.get("direction", "")).lower() != direction:
            continue
        if _covers(prefixes(candidate, other), prefixes(rule, other)):
            reach = subtract(reach, boxes(candidate))
    return reach


def untrusted_prefixes(rule: dict, allowed_cidrs) -> list[str]:
    """The rule's judged-side prefixes, narrowed to what is outside the allowlist: as
    written where no allowed CIDR overlaps it, else the CIDRs left after excluding them."""
    side, _ = _judged_side(rule)
    families = carried_families(rule)
    result = []
    for prefix in prefixes(rule, side):
        ranges = address_ranges(prefix)
        if ranges is None:
            continue  # a trusted service tag
        ranges = [r for r in ranges if r[0] in families]
        # Internet and AzureCloud hold public addresses only: private allowed ranges never overlap them.
        tag = prefix.strip().lower()
        candidates = [n for n in allowed_cidrs if n.is_global] \
            if tag == "internet" or tag == "azurecloud" or tag.startswith("azurecloud.") else list(allowed_cidrs)
        overlapping = [n for n in candidates if any(n.version == v and not (int(n.broadcast_address) < first
                                                                             or int(n.network_address) > last)
                                                     for v, first, last in ranges)]
        if not overlapping:
            result.append(prefix)
            continue
        for version, first, last in ranges:
            address = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
            for network in ipaddress.summarize_address_range(address(first), address(last)):
                result += [str(n) for n in _exclude_all(network, [a for a in overlapping if a.version == version])]
    return list(dict.fromkeys(result))


def _exclude_all(network, excluded) -> list:
    pieces = [network]
    for cut in excluded:
        next_pieces = []
        for piece in pieces:
            if cut.subnet_of(piece):
                next_pieces += list(piece.address_exclude(cut))
            elif piece.subnet_of(cut):
                continue
            else:
                next_pieces.append(piece)
        pieces = next_pieces
    return sorted(pieces)
