"""One engine per database URL and process (service/store/engine.py)."""

from __future__ import annotations

from pathlib import Path

from service.store import migrations
from service.store.engine import Engines


def test_one_engine_per_url_readied_once_and_again_after_clear(tmp_path: Path) -> None:
    engines = Engines()
    url = f"sqlite:///{tmp_path / 'alvo.sqlite'}"
    first = engines.get(url)
    assert engines.get(url) is first
    assert migrations.current(first) == migrations.head()

    engines.clear()  # a test that puts another database file under the same URL
    (tmp_path / "alvo.sqlite").unlink()
    again = engines.get(url)
    assert again is not first
    assert migrations.current(again) == migrations.head()
