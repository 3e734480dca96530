"""Schemathesis hooks for the conformance run: what Writ checks that a JSON Schema cannot say.

The OpenAPI document describes every rule a schema can express (lengths, non-blank patterns,
formats, item counts). Three rules remain that depend on data outside the request shape:

- a phone number must be valid in its country's numbering plan: the document names the format
  `phone`, and this draws numbers for it from a list of valid ones in several spellings;
- a `validation` is a signature by a registered key over the order's digest, which a generator
  cannot make: positive cases that carry one are dropped (negative ones still run);
- `time_window.to` must be after `time_window.from`: positive cases that break it are dropped.

Only positive cases are filtered, so the negative-data checks see every generated request.

HI-1 bodies (`application/xml`) are drawn from ETSI's example requests shipped in
tests/etsi/examples (the sender `XX/ACTOR01`, which the run registers for the signing
authority), each with a fresh transaction identifier, so that Writ parses and answers them
rather than refusing random text.
"""

import re
import uuid
from datetime import datetime
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

VALID_PHONE_NUMBERS = [
    "+33612345678",
    "+33 6 12 34 56 78",
    "+447911123456",
    "+44 7911 123456",
    "+12025550123",
    "+1 (202) 555-0123",
    "+4930901820",
    "+49 30 901820",
]

schemathesis.openapi.format("phone", st.sampled_from(VALID_PHONE_NUMBERS))


def _time(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None


def _orders(body):
    """The order objects of a submission or a message body."""
    if isinstance(body, dict) and isinstance(body.get("order"), dict):
        yield body["order"]


def _outside_the_schema(body):
    if not isinstance(body, dict):
        return False
    if isinstance(body.get("validation"), str):
        return True
    for order in _orders(body):
        window = order.get("time_window")
        if isinstance(window, dict):
            start, end = _time(window.get("from")), _time(window.get("to"))
            if start is not None and end is not None and end <= start:
                return True
    return False


@schemathesis.hook
def filter_case(context, case):
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return True
    return not _outside_the_schema(case.body)


@schemathesis.hook
def before_add_examples(context, examples):
    # Examples from the schema are positive cases that skip `filter_case`.
    examples[:] = [case for case in examples if not _outside_the_schema(case.body)]


EXAMPLES = Path(__file__).resolve().parents[2] / "tests" / "etsi" / "examples"
SENDER = re.compile(
    r"<SenderIdentifier>\s*<CountryCode>XX</CountryCode>\s*<UniqueIdentifier>ACTOR01</UniqueIdentifier>"
)
ACTION = re.compile(r"<ActionIdentifier>([^<]*)</ActionIdentifier>")
TRANSACTION = re.compile(r"<TransactionIdentifier>[^<]*</TransactionIdentifier>")


def _sendable(text):
    """Sent by XX/ACTOR01, with distinct action identifiers (one of ETSI's examples repeats
    one, which TS 103 120 forbids and Writ refuses as a whole)."""
    actions = ACTION.findall(text)
    return SENDER.search(text) is not None and len(actions) == len(set(actions))


HI1_REQUESTS = sorted(
    text for path in EXAMPLES.glob("request*.xml") if _sendable(text := path.read_text("utf-8"))
)


@st.composite
def hi1_request(draw):
    text = draw(st.sampled_from(HI1_REQUESTS))
    fresh = f"<TransactionIdentifier>{uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))}</TransactionIdentifier>"
    return TRANSACTION.sub(fresh, text, count=1).encode("utf-8")


if HI1_REQUESTS:
    schemathesis.openapi.media_type("application/xml", hi1_request())
