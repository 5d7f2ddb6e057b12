"""Choosing the PostgreSQL record store in the settings: the URL alone chooses it; conflicts are errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mentor_server.api.settings import ServiceSettings

URL = "postgresql://mentor:secret@db:5432/mentor"


def test_a_url_alone_chooses_postgres_and_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_RECORD_URL", URL)
    settings = ServiceSettings()
    assert settings.record_backend == "postgres" and settings.record_path is None
    assert settings.record_url is not None and settings.record_url.get_secret_value() == URL
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"record_backend": "postgres"}, "needs a postgresql:// URL"),
        ({"record_backend": "sqlite", "record_url": URL}, "which writes a file"),
        ({"record_url": "mysql://db/x"}, "starts with postgresql://"),
    ],
    ids=["backend-without-url", "url-with-sqlite", "other-scheme"],
)
def test_inconsistent_record_settings_are_refused(fields: dict[str, str], needle: str) -> None:
    with pytest.raises(ValidationError, match="record_url") as info:
        ServiceSettings(**fields)  # type: ignore[arg-type]
    assert needle in str(info.value)
