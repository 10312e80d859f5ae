"""Pure rules for which events the deployment acts on: only buckets that are bucket names, only
its own buckets, only keys S3 could hold (``docs/behaviour.md``, "Only its own buckets").

Why a rule before any request: an event can be forged by anyone allowed to send to the queue or
invoke the function, and the names it carries go into S3 requests. A bucket "name" that is an ARN
or an access point alias is routed by the SDK to another host or another account's data; a name
not in the deployment's list may be readable and would have its totals written into this
deployment's bucket. Refused here, such an event costs no request and is never retried.

No S3, no Lambda: each rule is tested on strings alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from handler.outcomes import Reason

if TYPE_CHECKING:
    from handler.events import ObjectEvent
    from handler.rules.settings import Settings

#: S3's limit on a key: 1024 bytes of UTF-8. A longer key cannot exist; S3 answers
#: ``KeyTooLongError`` for it, and the result key (as long) could not be written either.
MAX_KEY_BYTES: Final = 1024

# AWS's rules for general purpose bucket names (S3 User Guide, "General purpose bucket naming
# rules"): 3-63 characters of lowercase letters, digits, dots and hyphens, beginning and ending
# with a letter or digit, no two adjacent dots, not an IP address, and none of the prefixes and
# suffixes S3 reserves for other things that look like buckets.
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS: Final = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_RESERVED_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
#: ``-s3alias``: an access point alias; ``--ol-s3``: an Object Lambda access point alias;
#: ``--op-s3``: an Outposts access point alias; ``--x-s3``: a directory bucket; ``.mrap``: a
#: Multi-Region Access Point; ``--table-s3``: a table bucket's alias.
_RESERVED_SUFFIXES: Final = ("-s3alias", "--ol-s3", "--op-s3", "--x-s3", ".mrap", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not the name of a general purpose S3 bucket, or ``None`` where it is.

    Catches what an event might name in its place: an ARN (``arn:aws:s3:...``, with ``:`` and
    ``/``), an access point or Object Lambda alias, a path. Buckets created in us-east-1 before
    March 2018 could break these rules (capitals, underscores, up to 255 characters); such a
    bucket cannot be used with this function (``docs/configuration.md``).
    """
    if not 3 <= len(name) <= 63:
        return f"a bucket name has 3 to 63 characters, this has {len(name)}"
    if not _NAME.fullmatch(name):
        return (
            "a bucket name has only lowercase letters, digits, dots and hyphens, and begins "
            "and ends with a letter or digit (an ARN or a path is not a bucket name)"
        )
    if ".." in name:
        return "a bucket name has no two adjacent dots"
    if _IP_ADDRESS.fullmatch(name):
        return "a bucket name is not an IP address"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "S3 reserves this prefix or suffix for access points and other non-buckets"
    return None


def refusal(bucket: str, key: str, *, owns: bool) -> Reason | None:
    """The skip reason of an event for ``bucket``/``key`` that the deployment must not act on,
    or ``None``: a name that is not a bucket name first (whatever the list says), then a bucket
    not its own (``owns``: ``Settings.owns``), then a key longer than S3 allows."""
    if bucket_name_problem(bucket):
        return Reason.NOT_A_BUCKET_NAME
    if not owns:
        return Reason.NOT_OWN_BUCKET
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return Reason.KEY_TOO_LONG
    return None


def ignore_reason(event: ObjectEvent, settings: Settings) -> Reason | None:
    """Why the function does nothing for ``event`` before any request, or ``None``: a bucket
    not its own or not a bucket name, a key S3 could not hold (``refusal``); an event neither a
    creation nor a deletion; a key that is not an input. Both flows ask it first."""
    if refused := refusal(event.bucket, event.key, owns=settings.owns(event.bucket)):
        return refused
    if not (event.created or event.deleted):
        return Reason.NOT_OBJECT_CREATED
    if not settings.is_input(event.key):
        return Reason.NOT_AN_INPUT_KEY
    return None
