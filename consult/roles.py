"""The two roles in a consultation."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["ROLES", "Role", "partner_of"]

Role = Literal["customer", "stylist"]
ROLES: tuple[Role, ...] = get_args(Role)


def partner_of(role: Role) -> Role:
    return "stylist" if role == "customer" else "customer"
