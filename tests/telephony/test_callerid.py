"""Caller-ID normalisation: examples from real PBXs/providers and property-based checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.callerid import extension_of, normalise, normalise_dialed

ALICE = "+447700900123"


@pytest.mark.parametrize(
    "raw",
    [
        "07700 900123",
        "07700-900-123",
        "(07700) 900.123",
        "+44 7700 900123",
        "+44 (0)7700 900123",
        "0044 7700 900123",
        "447700900123",  # Vonage / Telnyx style: country code, no '+'
        "sip:+447700900123@carrier.example.net",
        "sips:+447700900123@carrier.example.net;user=phone",
        "<sip:+447700900123@carrier.example.net;user=phone>",
        '"Alice Smith" <sip:07700900123@10.0.0.1:5060;transport=udp>',
        "tel:+44-7700-900123",
        "tel:07700900123;phone-context=+44",
    ],
)
def test_formats_of_one_number_give_one_e164(raw: str) -> None:
    caller = normalise(raw, "GB")
    assert caller.e164 == ALICE
    assert caller.valid and not caller.withheld
    assert caller.raw == raw.strip()


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("020 7946 0123", "GB", "+442079460123"),
        ("+1 (415) 555-0123", "GB", "+14155550123"),
        ("14155550123", "GB", "+14155550123"),
        ("011 44 20 7946 0123", "US", "+442079460123"),
        ("0044 20 7946 0123", "US", "+442079460123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("030 901820", "DE", "+4930901820"),
    ],
)
def test_regions_and_international_prefixes(raw: str, region: str, expected: str) -> None:
    assert normalise(raw, region).e164 == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "anonymous",
        "Anonymous",
        "ANONYMOUS",
        "private",
        "Restricted",
        "unknown",
        "<unknown>",
        "unavailable",
        "Withheld",
        "sip:anonymous@anonymous.invalid",
        '"Anonymous" <sip:anonymous@anonymous.invalid>',
        "+266696687",  # Twilio's keypad spelling of ANONYMOUS
    ],
)
def test_withheld_forms_are_flagged_and_never_get_e164(raw: str | None) -> None:
    caller = normalise(raw)
    assert caller.withheld
    assert caller.e164 is None
    assert not caller.valid


@pytest.mark.parametrize("raw", ["201", "12", "hello", "+999123", "0000", "07700 9001"])
def test_invalid_numbers_kept_raw_and_flagged(raw: str) -> None:
    caller = normalise(raw)
    assert caller.raw == raw
    assert caller.e164 is None
    assert not caller.valid
    assert not caller.withheld


def test_dialed_number_is_e164_or_the_uri_user() -> None:
    assert normalise_dialed("442079460000", "GB") == "+442079460000"
    assert normalise_dialed("sip:sales@pbx.example.com", "GB") == "sales"
    assert normalise_dialed("", "GB") is None
    assert normalise_dialed(None, "GB") is None


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("PJSIP/201", "201"),
        ("PJSIP/201-0000001a", "201"),
        ("SIP/alice-00000012", "alice"),
        ("Local/201@from-queue/n", "201"),
        ("sip:201@pbx.example.com", "201"),
        ("1000@default", "1000"),
        ("", None),
    ],
)
def test_extension_of_devices(device: str, expected: str | None) -> None:
    assert extension_of(device) == expected


# --- properties -------------------------------------------------------------------------

# Real, valid UK and US numbers in national significant form (drama and fictional ranges).
_NUMBERS = st.sampled_from(
    [("GB", "7700900", 3), ("GB", "2079460", 3), ("GB", "1134960", 3), ("US", "415555", 4)]
).flatmap(
    lambda spec: st.tuples(
        st.just(spec[0]),
        st.just(spec[1]),
        st.text("0123456789", min_size=spec[2], max_size=spec[2]),
    )
)
_SEPARATORS = st.sampled_from(["", " ", "-", ".", "  "])


@settings(max_examples=200, deadline=None)
@given(_NUMBERS, _SEPARATORS, st.sampled_from(["plus", "00", "national", "sip", "tel", "bare"]))
def test_any_formatting_of_a_valid_number_gives_the_same_e164(
    number: tuple[str, str, str], sep: str, style: str
) -> None:
    region, prefix, tail = number
    if region == "US" and not tail.startswith("01"):
        tail = "01" + tail[2:]  # keep to 555-01xx, the range reserved for fiction
    national = prefix + tail
    cc = "44" if region == "GB" else "1"
    expected = f"+{cc}{national}"
    grouped = sep.join([national[:3], national[3:6], national[6:]])
    text = {
        "plus": f"+{cc}{sep}{grouped}",
        "00": f"00{cc}{sep}{grouped}",
        "national": ("0" if region == "GB" else "") + grouped,
        "sip": f"sip:+{cc}{national}@carrier.example.net;user=phone",
        "tel": f"tel:+{cc}-{national}",
        "bare": f"{cc}{national}",
    }[style]
    caller = normalise(text, region)
    assert caller.e164 == expected, text
    assert caller.valid


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["anonymous", "private", "restricted", "unknown", "unavailable", "withheld"]),
    st.sampled_from(["{}", "{}", "<{}>", '"{}"', "sip:{}@anonymous.invalid", " {} "]),
    st.booleans(),
)
def test_withheld_forms_never_produce_e164(word: str, shape: str, upper: bool) -> None:
    text = shape.format(word.upper() if upper else word.capitalize())
    caller = normalise(text)
    assert caller.withheld and caller.e164 is None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["GB", "US", "DE", "ZZ", "FR"]))
def test_never_raises_and_is_consistent_on_arbitrary_text(text: str, region: str) -> None:
    caller = normalise(text, region)
    assert caller.raw == text.strip()
    # Invariants: an E.164 is '+' and digits; withheld/invalid never carry one.
    if caller.e164 is not None:
        assert caller.valid and not caller.withheld
        assert caller.e164[0] == "+" and caller.e164[1:].isdigit()
    else:
        assert not caller.valid
    normalise_dialed(text, region)
