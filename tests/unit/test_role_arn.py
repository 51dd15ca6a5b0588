"""The role ARN check accepts every role IAM can create and refuses what STS would refuse.

IAM: a path is ``/`` or ``/`` + printable ASCII (``\\u0021-\\u007E``) + ``/``, at most 512
characters; a role name is 1-64 of ``[\\w+=,.@-]``. STS: ``RoleArn`` is 20-2048 characters.
"""

from __future__ import annotations

import pytest

from webid_provider._errors import ConfigurationError
from webid_provider._validation import MAX_ROLE_ARN_CHARS, validate_role_arn

PREFIX = "arn:aws:iam::123456789012:role"
PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


@pytest.mark.parametrize(
    "arn",
    [
        f"{PREFIX}/name",
        f"{PREFIX}/a~b/name",
        f"{PREFIX}/team!#$%&'()*+,-.:;<=>?@[]^_`{{|}}~/name",
        f"{PREFIX}/{PRINTABLE_ASCII}/name",
        f"{PREFIX}/deep/ly/nested/path/name",
        f"{PREFIX}//name",
        f"{PREFIX}/service-role/Name_With+Chars=,.@-",
        f"{PREFIX}/{'p' * 510}/name",
        f"{PREFIX}/{'n' * 64}",
        "arn:aws-cn:iam::123456789012:role/path~1/name",
        "arn:aws-us-gov:iam::123456789012:role/name",
    ],
)
def test_roles_iam_accepts_are_accepted(arn: str) -> None:
    assert validate_role_arn(arn) == arn


@pytest.mark.parametrize(
    "arn",
    [
        f"{PREFIX}/",
        f"{PREFIX}/path/",
        f"{PREFIX}/a b/name",
        f"{PREFIX}/a\tb/name",
        f"{PREFIX}/caf\u00e9/name",
        f"{PREFIX}/name~tilde",
        f"{PREFIX}/name/with space",
        f"{PREFIX}/{'n' * 65}",
        f"{PREFIX}/{'p' * 511}/name",
        "arn:aws:iam::123:role/name",
        "arn:aws:iam::123456789012:user/name",
        "arn:aws:sts::123456789012:assumed-role/name/session",
        "role/name",
    ],
)
def test_what_iam_or_sts_refuses_is_refused_naming_the_field(arn: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        validate_role_arn(arn)
    assert info.value.field == "role_arn"


def test_overlong_arns_are_refused_with_a_short_message() -> None:
    arn = f"{PREFIX}/{'p' * MAX_ROLE_ARN_CHARS}/name"
    with pytest.raises(ConfigurationError) as info:
        validate_role_arn(arn)
    assert len(str(info.value)) < 600
