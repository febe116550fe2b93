"""`${{ env "DECK_..." }}` substitution in decK files."""

from __future__ import annotations

import pytest

from lockgate.deck.errors import DeckError
from lockgate.deck.template import EnvSubstitution


def test_substitutes_inside_longer_strings_and_whole_values() -> None:
    sub = EnvSubstitution({"DECK_OPENAI_API_KEY": "sk-123", "DECK_HOST": "api.example.com"})
    document = {
        "auth": {"header_value": 'Bearer ${{ env "DECK_OPENAI_API_KEY" }}'},
        "hosts": ['${{env "DECK_HOST"}}', 'x-${{  env   "DECK_HOST"  }}-y'],
        "port": 443,
        "enabled": True,
        "nothing": None,
    }

    result = sub.apply(document, "kong.yaml")
    sub.check()

    assert result == {
        "auth": {"header_value": "Bearer sk-123"},
        "hosts": ["api.example.com", "x-api.example.com-y"],
        "port": 443,
        "enabled": True,
        "nothing": None,
    }
    assert sub.used_values == {"sk-123", "api.example.com"}


def test_missing_variable_is_an_error_naming_it_and_the_file() -> None:
    sub = EnvSubstitution({})
    sub.apply({"v": 'Bearer ${{ env "DECK_X" }}'}, "kong.yaml")

    with pytest.raises(DeckError) as info:
        sub.check()

    assert info.value.messages == ("environment variable DECK_X is not set (used in kong.yaml)",)


def test_variable_without_deck_prefix_is_refused_even_if_the_caller_has_it() -> None:
    sub = EnvSubstitution({"HOME": "/root"})
    result = sub.apply(['${{ env "HOME" }}'], "a.yaml")

    with pytest.raises(DeckError) as info:
        sub.check()

    assert info.value.messages == (
        "environment variable HOME is not allowed: only DECK_-prefixed variables can be used "
        "(used in a.yaml)",
    )
    assert result == [""]  # and check() guarantees it is never sent


def test_every_problem_is_reported_once() -> None:
    sub = EnvSubstitution({})
    sub.apply(['${{ env "DECK_A" }}', '${{ env "DECK_A" }}${{ env "DECK_B" }}'], "a.yaml")
    sub.apply(['${{ env "DECK_A" }}'], "b.yaml")

    with pytest.raises(DeckError) as info:
        sub.check()

    assert info.value.messages == (
        "environment variable DECK_A is not set (used in a.yaml)",
        "environment variable DECK_B is not set (used in a.yaml)",
        "environment variable DECK_A is not set (used in b.yaml)",
    )


def test_other_template_expressions_are_errors() -> None:
    sub = EnvSubstitution({"DECK_X": "x"})
    sub.apply("${{ env DECK_X }}", "a.yaml")

    with pytest.raises(DeckError) as info:
        sub.check()

    assert info.value.messages == (
        'unsupported template ${{ env DECK_X }} in a.yaml: only ${{ env "DECK_NAME" }} is '
        "supported",
    )


def test_plain_dollar_strings_are_left_alone() -> None:
    sub = EnvSubstitution({})
    result = sub.apply({"lua": "local s = '$x ${y} {{z}}'"}, "a.yaml")
    sub.check()
    assert result == {"lua": "local s = '$x ${y} {{z}}'"}
