"""Why a unit is quarantined: stable strings, stored in the lineage DB and queried.

Readers set the reasons they find while parsing (malformed_json, malformed_csv, too_deep,
invalid_unicode) on the unit; `checks` sets the others and turns every one into a quarantine entry.
"""

MALFORMED_JSON = "malformed_json"
MALFORMED_CSV = "malformed_csv"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
EMPTY_FIELD = "empty_field"
WRONG_TYPE = "wrong_type"
# Bytes that are not valid in the file's encoding (UTF-8 unless a BOM says otherwise).
INVALID_UTF8 = "invalid_utf8"
# A lone surrogate (\ud800..\udfff escape) in a JSON string: not encodable text.
INVALID_UNICODE = "invalid_unicode"
TOO_DEEP = "too_deep"
TOO_LONG = "too_long"
DUPLICATE = "duplicate"

Problem = tuple[str, str]  # (reason, detail): why a unit is quarantined
