"""The dashboard's forms (Flask-WTF: each carries its CSRF token) and their error texts, which
follow the GOV.UK Design System's wording."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo


class LoginForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    email = StringField("Email address", validators=[DataRequired("Enter your email address")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])


class PasswordChangeForm(FlaskForm):  # type: ignore[misc]
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password")]
    )
    new_password = PasswordField("New password", validators=[DataRequired("Enter a new password")])
    confirm_password = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Enter the new password again"),
            EqualTo("new_password", "The new passwords do not match"),
        ],
    )


def choice_items(field: Field, chosen: str = "selected") -> list[dict[str, Any]]:
    """A select's or radios' choices as GOV.UK Frontend items, the field's value marked
    `chosen` ("selected" for a select, "checked" for radios)."""
    return [
        {"value": value, "text": label, chosen: str(value) == str(field.data)}
        for value, label in field.choices
    ]
