"""Authenticity checks of every webhook adapter, signed with real keys and real libraries."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

import jwt
import pytest
from nacl.signing import SigningKey
from telephony_helpers import NOW, PUBLIC_URL, fixture_bytes, fixture_json, form_body, make_request
from twilio.request_validator import RequestValidator

from telephony.base import WebhookRequest
from telephony.errors import (
    BadSignature,
    NotConfigured,
    StaleTimestamp,
    TelephonyError,
)
from telephony.generic import sign_generic
from telephony.registry import ADAPTERS

TELNYX_KEY = SigningKey.generate()
TELNYX_PUBLIC = base64.b64encode(bytes(TELNYX_KEY.verify_key)).decode()
OTHER_TELNYX_PUBLIC = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


@dataclass(frozen=True)
class Case:
    """How to sign a request for one provider."""

    name: str
    secret: str
    wrong_secret: str
    sign: Callable[[str, int], WebhookRequest]  # (secret, unix time) -> signed request
    signature_headers: tuple[str, ...]
    timestamped: bool


def _generic(secret: str, t: int) -> WebhookRequest:
    body = fixture_bytes("generic_offered.json")
    return make_request(
        "/telephony/generic/events",
        body,
        content_type="application/json",
        headers={"X-Screenpop-Signature": sign_generic(secret, body, t)},
    )


def _twilio(secret: str, t: int) -> WebhookRequest:
    fields = fixture_json("twilio_voice.form.json")
    url = PUBLIC_URL + "/telephony/twilio/voice"
    signature = RequestValidator(secret).compute_signature(url, fields)
    return make_request(
        "/telephony/twilio/voice",
        form_body(fields),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


def _telnyx(secret_unused: str, t: int, key: SigningKey = TELNYX_KEY) -> WebhookRequest:
    body = fixture_bytes("telnyx_call_initiated.json")
    signature = key.sign(f"{t}|".encode() + body).signature
    return make_request(
        "/telephony/telnyx/events",
        body,
        content_type="application/json",
        headers={
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": str(t),
        },
    )


def _vonage(secret: str, t: int) -> WebhookRequest:
    body = fixture_bytes("vonage_event_started.json")
    claims = {
        "iat": t,
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "a1b2c3d4",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    return make_request(
        "/telephony/vonage/events",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def _amazon(secret: str, t: int) -> WebhookRequest:
    return make_request(
        "/telephony/amazon-connect/events",
        fixture_bytes("amazon_connect_queued.json"),
        content_type="application/json",
        headers={"X-API-Key": secret},
    )


def _kamailio(secret: str, t: int) -> WebhookRequest:
    return make_request(
        "/telephony/kamailio/events",
        form_body(fixture_json("kamailio_offered.form.json")),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Screenpop-Token": secret},
    )


CASES = [
    Case("generic", "whsec-3f9a", "whsec-other", _generic, ("x-screenpop-signature",), True),
    Case("twilio", "f1e2d3c4b5a6", "0a9b8c7d6e5f", _twilio, ("x-twilio-signature",), False),
    Case(
        "telnyx",
        TELNYX_PUBLIC,
        OTHER_TELNYX_PUBLIC,
        _telnyx,
        ("telnyx-signature-ed25519", "telnyx-timestamp"),
        True,
    ),
    Case(
        "vonage",
        "vonage-signature-secret-0123456789abcdef",
        "vonage-signature-secret-fedcba9876543210",
        _vonage,
        ("authorization",),
        True,
    ),
    Case("amazon-connect", "ak-7d1e", "ak-0000", _amazon, ("x-api-key",), False),
    Case("kamailio", "kam-token-1", "kam-token-2", _kamailio, ("x-screenpop-token",), False),
]
IDS = [c.name for c in CASES]
T = int(NOW.timestamp())


def _tamper(request: WebhookRequest) -> WebhookRequest:
    body = request.body.replace(b"7700", b"7701", 1)
    assert body != request.body
    return replace(request, body=body)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_valid_signature_accepted_and_parses(case: Case) -> None:
    adapter = ADAPTERS[case.name]
    request = case.sign(case.secret, T)
    adapter.verify(request, case.secret, dev=False, now=NOW)
    events = adapter.parse(request, default_region="GB")
    assert events and events[0].source == case.name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tampered_body_rejected(case: Case) -> None:
    request = _tamper(case.sign(case.secret, T))
    if case.name in ("amazon-connect", "kamailio"):
        # Token schemes do not sign the body; the token alone authenticates.
        ADAPTERS[case.name].verify(request, case.secret, dev=False, now=NOW)
        return
    with pytest.raises(BadSignature):
        ADAPTERS[case.name].verify(request, case.secret, dev=False, now=NOW)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_secret_rejected(case: Case) -> None:
    request = case.sign(case.secret, T)
    with pytest.raises(BadSignature):
        ADAPTERS[case.name].verify(request, case.wrong_secret, dev=False, now=NOW)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_signature_header_rejected(case: Case) -> None:
    request = case.sign(case.secret, T)
    headers = {k: v for k, v in request.headers.items() if k not in case.signature_headers}
    with pytest.raises(BadSignature) as info:
        ADAPTERS[case.name].verify(
            replace(request, headers=headers), case.secret, dev=False, now=NOW
        )
    assert info.value.status_code == 401


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_secret_unset_is_not_configured_unless_dev(case: Case) -> None:
    request = case.sign(case.secret, T)
    unsigned = replace(
        request, headers={k: v for k, v in request.headers.items() if k == "content-type"}
    )
    with pytest.raises(NotConfigured) as info:
        ADAPTERS[case.name].verify(unsigned, None, dev=False, now=NOW)
    assert info.value.status_code == 401
    with pytest.raises(NotConfigured):
        ADAPTERS[case.name].verify(unsigned, "", dev=False, now=NOW)
    # Dev mode accepts unsigned events when no secret is set.
    ADAPTERS[case.name].verify(unsigned, None, dev=True, now=NOW)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dev_mode_still_checks_when_a_secret_is_set(case: Case) -> None:
    request = case.sign(case.secret, T)
    with pytest.raises(BadSignature):
        ADAPTERS[case.name].verify(request, case.wrong_secret, dev=True, now=NOW)


@pytest.mark.parametrize("case", [c for c in CASES if c.timestamped], ids=lambda c: c.name)
@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_timestamp_rejected(case: Case, skew: int) -> None:
    request = case.sign(case.secret, T + skew)
    with pytest.raises(StaleTimestamp) as info:
        ADAPTERS[case.name].verify(request, case.secret, dev=False, now=NOW)
    assert info.value.status_code == 401


@pytest.mark.parametrize("case", [c for c in CASES if c.timestamped], ids=lambda c: c.name)
def test_timestamp_at_the_edge_of_the_window_accepted(case: Case) -> None:
    ADAPTERS[case.name].verify(case.sign(case.secret, T - 299), case.secret, dev=False, now=NOW)
    ADAPTERS[case.name].verify(case.sign(case.secret, T + 299), case.secret, dev=False, now=NOW)


# --- provider specifics ------------------------------------------------------------------


def test_generic_accepts_any_of_several_v1_signatures() -> None:
    request = _generic("new-secret", T)
    old = sign_generic("old-secret", request.body, T).split(",")[1]
    header = request.headers["x-screenpop-signature"] + "," + old
    request = replace(request, headers={**request.headers, "x-screenpop-signature": header})
    ADAPTERS["generic"].verify(request, "old-secret", dev=False, now=NOW)
    ADAPTERS["generic"].verify(request, "new-secret", dev=False, now=NOW)


def test_generic_sign_helper_matches_the_documented_scheme() -> None:
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"s3", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_generic("s3", body, 1700000000) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize("header", ["v1=abc", "t=abc,v1=abc", "t=1", "garbage"])
def test_generic_malformed_signature_header(header: str) -> None:
    request = _generic("s", T)
    request = replace(request, headers={**request.headers, "x-screenpop-signature": header})
    with pytest.raises(BadSignature):
        ADAPTERS["generic"].verify(request, "s", dev=False, now=NOW)


def test_twilio_url_with_or_without_port_both_accepted() -> None:
    fields = fixture_json("twilio_status_completed.form.json")
    secret = "f1e2d3c4b5a6"
    # Twilio signed without the port; we were configured with it (and vice versa).
    signed_url = PUBLIC_URL + "/telephony/twilio/status"
    signature = RequestValidator(secret).compute_signature(signed_url, fields)
    request = make_request(
        "/telephony/twilio/status",
        form_body(fields),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    with_port = replace(request, url="https://screenpop.example.com:443/telephony/twilio/status")
    ADAPTERS["twilio"].verify(with_port, secret, dev=False, now=NOW)
    signature_with_port = RequestValidator(secret).compute_signature(with_port.url, fields)
    request2 = replace(
        request, headers={**request.headers, "x-twilio-signature": signature_with_port}
    )
    ADAPTERS["twilio"].verify(request2, secret, dev=False, now=NOW)


def test_twilio_signature_covers_the_query_string() -> None:
    secret = "f1e2d3c4b5a6"
    fields = fixture_json("twilio_voice.form.json")
    url = PUBLIC_URL + "/telephony/twilio/voice?queue=sales"
    signature = RequestValidator(secret).compute_signature(url, fields)
    request = make_request(
        "/telephony/twilio/voice",
        form_body(fields),
        query={"queue": "sales"},
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    ADAPTERS["twilio"].verify(request, secret, dev=False, now=NOW)
    assert RequestValidator(secret).validate(request.url, fields, signature)
    moved = replace(request, url=PUBLIC_URL + "/telephony/twilio/voice?queue=support")
    with pytest.raises(BadSignature):
        ADAPTERS["twilio"].verify(moved, secret, dev=False, now=NOW)


def test_twilio_json_body_sha256_variant() -> None:
    secret = "f1e2d3c4b5a6"
    body = json.dumps({"CallSid": "CA1", "CallStatus": "ringing", "From": "+447700900123"})
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = f"{PUBLIC_URL}/telephony/twilio/status?{urlencode({'bodySHA256': digest})}"
    validator = RequestValidator(secret)
    signature = validator.compute_signature(url, {})
    assert validator.validate(url, body, signature)  # the official library agrees
    request = make_request(
        "/telephony/twilio/status",
        body.encode(),
        query={"bodySHA256": digest},
        content_type="application/json",
        headers={"X-Twilio-Signature": signature},
    )
    ADAPTERS["twilio"].verify(request, secret, dev=False, now=NOW)
    events = ADAPTERS["twilio"].parse(request, default_region="GB")
    assert [e.kind for e in events] == ["queued"]
    with pytest.raises(BadSignature, match="bodySHA256"):
        ADAPTERS["twilio"].verify(_tamper(request), secret, dev=False, now=NOW)


def test_twilio_repeated_form_keys_signed_like_the_official_library() -> None:
    from telephony.twilio import compute_signature

    secret = "f1e2d3c4b5a6"
    pairs = [("Digits", "2"), ("Digits", "1"), ("CallSid", "CA1"), ("Digits", "1")]

    class MultiDict(dict[str, list[str]]):
        def getall(self, key: str) -> list[str]:
            return self[key]

    multi = MultiDict({"Digits": ["2", "1", "1"], "CallSid": ["CA1"]})
    url = PUBLIC_URL + "/telephony/twilio/status"
    assert compute_signature(secret, url, pairs) == RequestValidator(secret).compute_signature(
        url, multi
    )


def test_twilio_hmac_sha256_signature_settings() -> None:
    secret = "shared-key-secret"
    fields = fixture_json("twilio_voice.form.json")
    url = PUBLIC_URL + "/telephony/twilio/voice"
    signature = RequestValidator(secret).compute_signature(url, fields, "HMAC_SHA256")
    request = make_request(
        "/telephony/twilio/voice",
        form_body(fields),
        content_type="application/x-www-form-urlencoded",
        headers={
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": (
                "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
            ),
        },
    )
    ADAPTERS["twilio"].verify(request, secret, dev=False, now=NOW)
    sha1_only = replace(
        request,
        headers={k: v for k, v in request.headers.items() if not k.endswith("settings")},
    )
    with pytest.raises(BadSignature):
        ADAPTERS["twilio"].verify(sha1_only, secret, dev=False, now=NOW)


def test_telnyx_signature_from_another_key_rejected() -> None:
    request = _telnyx("", T, key=SigningKey.generate())
    with pytest.raises(BadSignature):
        ADAPTERS["telnyx"].verify(request, TELNYX_PUBLIC, dev=False, now=NOW)


@pytest.mark.parametrize("bad_key", ["not base64!!", base64.b64encode(b"short").decode()])
def test_telnyx_misconfigured_public_key(bad_key: str) -> None:
    with pytest.raises(NotConfigured):
        ADAPTERS["telnyx"].verify(_telnyx("", T), bad_key, dev=False, now=NOW)


def test_telnyx_timestamp_is_part_of_the_signed_message() -> None:
    request = _telnyx("", T)
    moved = replace(request, headers={**request.headers, "telnyx-timestamp": str(T + 1)})
    with pytest.raises(BadSignature):
        ADAPTERS["telnyx"].verify(moved, TELNYX_PUBLIC, dev=False, now=NOW)


def test_vonage_jwt_without_payload_hash_rejected_for_a_body() -> None:
    secret = "vonage-signature-secret-0123456789abcdef"
    body = fixture_bytes("vonage_event_started.json")
    token = jwt.encode({"iat": T, "iss": "Vonage"}, secret, algorithm="HS256")
    request = make_request(
        "/telephony/vonage/events",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    with pytest.raises(BadSignature, match="payload_hash"):
        ADAPTERS["vonage"].verify(request, secret, dev=False, now=NOW)


def test_vonage_answer_get_signed_without_body() -> None:
    secret = "vonage-signature-secret-0123456789abcdef"
    token = jwt.encode({"iat": T, "iss": "Vonage"}, secret, algorithm="HS256")
    request = make_request(
        "/telephony/vonage/answer",
        method="GET",
        query=fixture_json("vonage_answer.query.json"),
        headers={"Authorization": f"Bearer {token}"},
    )
    ADAPTERS["vonage"].verify(request, secret, dev=False, now=NOW)


def test_vonage_rejects_alg_none_tokens() -> None:
    body = fixture_bytes("vonage_event_started.json")
    token = jwt.encode(
        {"iat": T, "payload_hash": hashlib.sha256(body).hexdigest()}, None, algorithm="none"
    )
    request = make_request(
        "/telephony/vonage/events",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    with pytest.raises(BadSignature):
        ADAPTERS["vonage"].verify(
            request, "vonage-signature-secret-0123456789abcdef", dev=False, now=NOW
        )


def test_every_error_is_a_telephony_error_with_detail() -> None:
    with pytest.raises(TelephonyError) as info:
        ADAPTERS["kamailio"].verify(_kamailio("a", T), "b", dev=False, now=NOW)
    assert info.value.detail


def test_now_is_taken_from_the_caller_not_the_clock() -> None:
    # Signed an hour "ago" relative to a caller-supplied now: stale, whatever the real clock.
    request = _generic("s", T)
    with pytest.raises(StaleTimestamp):
        ADAPTERS["generic"].verify(request, "s", dev=False, now=NOW + timedelta(hours=1))
    ADAPTERS["generic"].verify(request, "s", dev=False, now=datetime.fromtimestamp(T, NOW.tzinfo))
