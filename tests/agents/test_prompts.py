"""Template parsing, checking and rendering."""

import pytest

from agents import prompts


def test_placeholders_in_order_without_duplicates():
    assert prompts.placeholders("Hi {name}, I am {agent_name}. {name}!") == ["name", "agent_name"]


def test_literal_braces_are_not_placeholders():
    assert prompts.placeholders('JSON like {{"a": 1}} and {x}') == ["x"]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("Hello {name", "broken template"),
        ("Hello name}", "broken template"),
        ("Hello {}", "positional"),
        ("Hello {0}", "positional"),
        ("Hello {user.name}", "plain name"),
        ("Hello {user[0]}", "plain name"),
        ("Hello {x:{y}}", "nested"),
    ],
)
def test_broken_templates_name_the_problem(template, fragment):
    with pytest.raises(prompts.TemplateError, match=fragment):
        prompts.placeholders(template)


def test_check_names_unknown_placeholders():
    with pytest.raises(prompts.TemplateError, match=r"\{applicant\}"):
        prompts.check("Hi {applicant}, I am {agent_name}", {"agent_name"})
    assert prompts.check("I am {agent_name}", {"agent_name"}) == ["agent_name"]


def test_render_fills_and_reports_missing_values():
    assert prompts.render("I am {a}, {b}.", {"a": "Myra", "b": 1}) == "I am Myra, 1."
    with pytest.raises(prompts.TemplateError, match=r"\{b\}"):
        prompts.render("I am {a}, {b}.", {"a": "Myra"})
