"""/docs and /redoc work offline: every file they load is served by chute itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest
from chute.entrypoints.http.docs import ASSETS

# A URL with a scheme, or protocol-relative: anything that may leave the host.
OFF_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|(?<![:/])//[^/\s]")


class References(HTMLParser):
    """The URLs a page loads: `src` and `href` of its tags, and the spec URL of ReDoc."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value is not None:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_a_docs_page_loads_only_files_that_chute_serves(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert not OFF_HOST.search(response.text), OFF_HOST.search(response.text)
    urls = references(response.text)
    assert any(url.startswith(ASSETS) and url.endswith(".js") for url in urls), urls
    for url in urls:
        assert url.startswith("/"), url
        loaded = await client.get(url)
        assert loaded.status_code == 200, url
        assert loaded.content, url


async def test_swagger_ui_loads_the_description_and_sends_it_to_no_validator(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/docs")).text

    assert "url: '/openapi.json'" in page
    assert '"validatorUrl": null' in page
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
        ("favicon.png", "image/png"),
    ],
)
async def test_a_docs_file_is_served_with_its_media_type(
    client: httpx.AsyncClient, name: str, media_type: str
) -> None:
    response = await client.get(ASSETS + name)

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["index.html", "..%2F..%2Fpyproject.toml", "LICENSE"])
async def test_no_other_file_is_served_from_the_docs_files(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await client.get(ASSETS + name)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
