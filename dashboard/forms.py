"""The dashboard's forms (Flask-WTF: each carries its CSRF token) and their error texts, which
follow the GOV.UK Design System's wording."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
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


class LogoutForm(FlaskForm):  # type: ignore[misc]
    """No fields: only the CSRF token."""
