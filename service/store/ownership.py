"""Who may change what: owners of datasets and campaigns, and the oracles they invite.

With ``auth=anonymous`` (the desktop default) everyone is the same anonymous
user and nothing here refuses anything. With ``auth=header`` the user the
proxy names owns what they create:

* a **dataset** is shared read-only: everyone may train on it, classify it,
  build a campaign on it; only its owner may ingest into it;
* a **campaign** is shared read-only too; its owner runs its iterations, and
  labels come from the owner and the *oracles* the owner named (``*``: every
  signed-in user);
* a **private** dataset (``PRIVATE=yes`` at ingest, ``POST /datasets/{name}/readers``,
  ``alvo dataset share``) is not shared at all: its rows, and those of the campaigns,
  labels and predictions built on it, appear over TAP only to its owner and the
  *readers* the owner invited (:mod:`service.store.privacy`);
* anything created anonymously (before ``auth=header`` was switched on) has no
  owner and stays open to every signed-in user.

Anonymous callers may not change anything at all under ``auth=header``
(:mod:`service.http.access`). Refusals are ``PermissionError`` here, HTTP 403
for requests and a named error for jobs (:class:`NotYoursError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.reasons import AlvoError, Reason

EVERYONE = "*"


def may_change(owner: str | None, user: str | None) -> bool:
    """Whether ``user`` may change a thing ``owner`` created (None: made anonymously)."""
    return owner is None or owner == user


def may_read(owner: str | None, private: bool, readers: Sequence[str], user: str | None) -> bool:
    """Whether ``user`` may see the rows of a dataset (everyone, unless it is private)."""
    if not private:
        return True
    return user is not None and (user == owner or user in readers)


def may_label(owner: str | None, oracles: Sequence[str], user: str | None) -> bool:
    """Whether ``user`` may label a campaign of ``owner`` that invited ``oracles``."""
    invited = user is not None and (user in oracles or EVERYONE in oracles)
    return may_change(owner, user) or invited


class NotYoursError(AlvoError, PermissionError):
    """A refusal of a change to someone else's dataset or campaign (HTTP 403).

    Also a ``PermissionError``, so callers that only know the standard library's
    idea of "not allowed" (the UWS runner, thread pools) still recognise it.
    """


def refusal(kind: str, name: str, owner: str | None, what: str) -> NotYoursError:
    """The one way to say no: who owns it, and what the caller can do instead."""
    return NotYoursError(Reason.NOT_YOURS, f"{kind} {name!r} belongs to {owner}; {what}")


def parse_oracles(value: Any) -> tuple[str, ...]:
    """Oracles as given to the API: a list of user names or one comma-separated string."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise AlvoError(
            Reason.BAD_PARAMETER, "oracles: a list of user names, or '*' for every signed-in user"
        )
    names = tuple(dict.fromkeys(str(item).strip() for item in value if str(item).strip()))
    if any(len(name) > 255 or "," in name for name in names):
        raise AlvoError(
            Reason.BAD_PARAMETER, "oracles: user names of at most 255 characters, without commas"
        )
    return names
